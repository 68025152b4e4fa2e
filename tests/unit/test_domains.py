"""The pure rules of custom domains: canonical form, the platform's names, the DNS proof."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from saasodoo.core.domains import (
    FIRST_CLAIM_MEMORY_DAYS,
    FIRST_CLAIM_MEMORY_MAX,
    canonical_host,
    challenge,
    check_custom_domains,
    claim_name,
    first_claim_since,
    first_claims,
    platform_rule,
    proven,
    remember_first_claim,
    standing,
)
from saasodoo.core.plans import Catalog, Plan
from saasodoo.core.spec import TenantSpec
from saasodoo.core.values import Platform, compute_values
from saasodoo.errors import InvalidInput

pytestmark = pytest.mark.unit

BASE = "odoo.example.com"
GOOD = {"id": "bravo", "admin_email": "b@bravo.example"}


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("ERP.Acme.example.", "erp.acme.example"),
        ("  erp.acme.example ", "erp.acme.example"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("ＥＲＰ。acme。example", "erp.acme.example"),  # full-width letters and dots
    ],
)
def test_canonical_form(given: str, canonical: str) -> None:
    assert canonical_host(given) == canonical


@pytest.mark.parametrize(
    ("given", "rule"),
    [
        ("*.acme.example", "wildcards are not supported"),
        ("*", "wildcards are not supported"),
        ("a..example", "not a valid host name"),
        ("", "empty"),
        (".", "empty"),
        ("localhost", "at least two labels"),
        ("10.0.0.1", "at least two labels"),
        ("a_b.example", "not a valid host name"),
        ("not a host", "not a valid host name"),
        ("xn--zz.example", "not a valid host name"),
        ("-acme.example", "not a valid host name"),
        ("a" * 64 + ".example", "not a valid host name"),
    ],
)
def test_invalid_hosts(given: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        canonical_host(given)


@pytest.mark.parametrize(
    "host",
    [
        BASE,  # the base domain itself
        f"alpha.{BASE}",  # another tenant's subdomain
        f"api.{BASE}",  # the platform's API
        f"deep.alpha.{BASE}",
        f"bravo.{BASE}",  # the tenant's own host: routed anyway
    ],
)
def test_platform_names_are_never_custom_domains(host: str) -> None:
    assert platform_rule(canonical_host(host), "bravo", BASE) is not None


def test_platform_rule_names_the_rule_and_allows_the_rest() -> None:
    assert "belongs to the platform" in str(platform_rule(f"api.{BASE}", "bravo", BASE))
    assert "own host" in str(platform_rule(f"bravo.{BASE}", "bravo", BASE))
    assert platform_rule("shop.bravo.example", "bravo", BASE) is None
    # A name that merely ends like the base domain is not under it.
    assert platform_rule(f"evil{BASE}", "bravo", BASE) is None
    # Reserved domains elsewhere (e.g. the API's own host) count as the platform too.
    assert platform_rule("x.api.saas.example", "bravo", BASE, ["API.saas.example."])


def test_check_names_each_offending_index() -> None:
    with pytest.raises(InvalidInput) as exc:
        check_custom_domains("bravo", ["ok.bravo.example", f"alpha.{BASE}", f"api.{BASE}"], BASE)
    assert [f.field for f in exc.value.fields] == ["custom_domains[1]", "custom_domains[2]"]
    assert exc.value.exit_code == 2 and exc.value.http_status == 422


def test_spec_puts_hosts_in_canonical_form_and_names_the_index() -> None:
    spec = TenantSpec.parse({**GOOD, "custom_domains": ["Shop.Bravo.Example.", "bücher.example"]})
    assert spec.custom_domains == ("shop.bravo.example", "xn--bcher-kva.example")
    with pytest.raises(InvalidInput) as exc:
        TenantSpec.parse({**GOOD, "custom_domains": ["ok.example", "*.bravo.example"]})
    assert exc.value.fields[0].field == "custom_domains[1]"
    assert "wildcards" in exc.value.fields[0].message
    # Two spellings of one host are one host.
    with pytest.raises(InvalidInput, match="listed twice"):
        TenantSpec.parse({**GOOD, "custom_domains": ["bücher.example", "XN--BCHER-KVA.example."]})


def test_overrides_cannot_set_hosts() -> None:
    for key in ("customDomains", "subdomain", "baseDomain"):
        with pytest.raises(InvalidInput) as exc:
            TenantSpec.parse({**GOOD, "overrides": {"ingress": {key: "x"}}})
        assert exc.value.fields[0].field == "overrides"
        assert f"ingress.{key}" in exc.value.fields[0].message
    TenantSpec.parse({**GOOD, "overrides": {"ingress": {"annotations": {"a": "b"}}}})


def test_verified_domains_follow_custom_domains() -> None:
    spec = TenantSpec.parse(
        {
            **GOOD,
            "custom_domains": ["a.bravo.example", "b.bravo.example"],
            "verified_domains": ["b.bravo.example", "other.example"],
        }
    )
    assert spec.verified_domains == ("b.bravo.example",)
    dropped = TenantSpec.parse({**spec.model_dump(), "custom_domains": ["a.bravo.example"]})
    assert dropped.verified_domains == ()


def test_only_verified_domains_are_routed() -> None:
    catalog = Catalog(base={}, plans={"starter": Plan(name="starter")})
    platform = Platform(base_domain=BASE)
    spec = TenantSpec.parse(
        {
            **GOOD,
            "custom_domains": ["a.bravo.example", "b.bravo.example"],
            "verified_domains": ["b.bravo.example"],
        }
    )
    ingress = compute_values(spec, catalog, platform).values["ingress"]
    assert ingress["customDomains"] == ["b.bravo.example"]
    pending = TenantSpec.parse({**GOOD, "custom_domains": ["a.bravo.example"]})
    assert compute_values(pending, catalog, platform).values["ingress"]["customDomains"] == []


def test_challenge_is_per_tenant_host_and_claim() -> None:
    one = challenge("bravo", "shop.bravo.example", "uid-1", BASE)
    assert one.txt_name == "_saasodoo-challenge.shop.bravo.example"
    assert one.txt_value.startswith("saasodoo-verify=") and len(one.txt_value) > 40
    token = one.txt_value.removeprefix("saasodoo-verify=")
    assert one.cname_target == f"{token}.bravo.{BASE}"
    assert one == challenge("bravo", "shop.bravo.example", "uid-1", BASE)
    others = [
        challenge("alpha", "shop.bravo.example", "uid-1", BASE),
        challenge("bravo", "www.bravo.example", "uid-1", BASE),
        challenge("bravo", "shop.bravo.example", "uid-2", BASE),  # another life of the id
    ]
    assert one.txt_value not in {o.txt_value for o in others}
    assert one.cname_target not in {o.cname_target for o in others}
    assert len({o.cname_target for o in others}) == 3


def test_cname_proof_is_bound_to_the_tenant_not_to_its_id() -> None:
    """Issue 22, point 6 (a): ``<host> CNAME <id>.<base>`` was the proof for every tenant of
    that id, so whoever created a deleted tenant's id again inherited the customer's host
    through the CNAME left in their DNS. The CNAME target now carries the tenant's token: a
    later tenant of the same id (another namespace uid) needs its own record."""
    first = challenge("bravo", "shop.example", "ns-uid-of-the-first-bravo", BASE)
    second = challenge("bravo", "shop.example", "ns-uid-of-the-second-bravo", BASE)
    assert proven(first, [], first.cname_target)
    assert not proven(second, [], first.cname_target)  # the CNAME the first one left
    assert not proven(second, [], f"bravo.{BASE}")  # the old, shared target
    assert not proven(first, [], f"bravo.{BASE}")
    label = first.cname_target.split(".")[0]
    assert len(label) <= 63 and canonical_host(first.cname_target) == first.cname_target


def test_proof_by_txt_or_cname() -> None:
    expected = challenge("bravo", "shop.bravo.example", "uid-1", BASE)
    assert proven(expected, ["v=spf1 -all", expected.txt_value], None)
    assert proven(expected, [], expected.cname_target.upper() + ".")
    assert not proven(expected, [], None)
    assert not proven(expected, [expected.txt_value + "x"], None)
    assert not proven(expected, [challenge("alpha", expected.host, "uid-1", BASE).txt_value], None)
    assert not proven(expected, [], challenge("alpha", expected.host, "uid-1", BASE).cname_target)
    assert not proven(expected, [], "not a host")


NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("alive", "verified", "age_hours", "expected"),
    [
        (False, True, 1, "stale"),  # its tenant is gone: even a verified claim
        (True, True, 10_000, "verified"),  # proved: never taken over, however old
        (True, False, 1, "pending"),  # unproven: another tenant's proof replaces it
        (True, False, 168, "stale"),  # unproven past the pending time: anyone may take it
    ],
)
def test_standing_of_a_claim(alive: bool, verified: bool, age_hours: float, expected: str) -> None:
    got = standing(
        holder_alive=alive,
        verified_by_holder=verified,
        since=NOW - timedelta(hours=age_hours),
        now=NOW,
        pending_hours=168,
    )
    assert got == expected


def test_first_claim_is_remembered_across_drop_and_re_add() -> None:
    """Issue 22, point 6 (b): the pending time counts from the tenant's first claim of the
    host, so dropping and re-adding it does not start a new period."""
    first = NOW - timedelta(days=3)
    history = remember_first_claim({}, "shop.example", first, first)
    assert history is not None and first_claims(json.dumps(history)) == history
    assert first_claim_since(history, "shop.example", NOW) == first
    assert first_claim_since(history, "other.example", NOW) == NOW  # never claimed: now
    assert remember_first_claim(history, "shop.example", first, NOW) is None  # no change
    # Forgotten after FIRST_CLAIM_MEMORY_DAYS (a host claimed again a month later is new).
    later = first + timedelta(days=FIRST_CLAIM_MEMORY_DAYS + 1)
    assert first_claim_since(history, "shop.example", later) == later
    # Bounded: at most FIRST_CLAIM_MEMORY_MAX hosts, the newest kept.
    many: dict[str, str] = {}
    for i in range(FIRST_CLAIM_MEMORY_MAX + 5):
        when = NOW - timedelta(minutes=FIRST_CLAIM_MEMORY_MAX + 5 - i)
        many = remember_first_claim(many, f"h{i}.example", when, NOW) or many
    assert len(many) == FIRST_CLAIM_MEMORY_MAX and "h0.example" not in many
    assert f"h{FIRST_CLAIM_MEMORY_MAX + 4}.example" in many
    assert first_claims("not json") == {} and first_claims('["a"]') == {}
    assert first_claim_since({"x.example": "garbage"}, "x.example", NOW) == NOW


def test_claim_names_are_stable_valid_object_names() -> None:
    name = claim_name("shop.bravo.example")
    assert name == claim_name("shop.bravo.example") != claim_name("shop.alpha.example")
    assert name.startswith("domain-") and len(name) <= 63 and name.replace("-", "").isalnum()


def test_single_label_base_domain_still_guards_its_names() -> None:
    assert platform_rule("api.localhost", "bravo", "localhost")
    assert platform_rule("shop.example", "bravo", "LOCALHOST.") is None
    assert challenge("bravo", "shop.example", "u", "Localhost").cname_target.endswith(
        ".bravo.localhost"
    )
