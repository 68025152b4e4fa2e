"""Tenant spec validation: every rule has its own message naming the field."""

from __future__ import annotations

import pytest

from saasodoo.core.spec import MAX_ID_LENGTH, TenantSpec, check_tenant_id
from saasodoo.errors import InvalidInput

pytestmark = pytest.mark.unit

GOOD = {"id": "acme", "admin_email": "boss@acme.example"}


def test_minimal_spec_gets_defaults() -> None:
    spec = TenantSpec.parse(GOOD)
    assert spec.plan == "starter"
    assert spec.odoo_version == "18.0"
    assert spec.namespace == "tenant-acme"
    assert spec.release == "acme"


@pytest.mark.parametrize(
    ("tenant_id", "rule"),
    [
        ("ab", "3 to 30 characters"),
        ("a" * (MAX_ID_LENGTH + 1), "3 to 30 characters"),
        ("Acme", "DNS label"),
        ("acme_corp", "DNS label"),
        ("-acme", "DNS label"),
        ("acme-", "DNS label"),
        ("xn--acme", "reserved for IDN"),
        ("www", "reserved"),
        ("admin", "reserved"),
        ("mail", "reserved"),
        ("api", "reserved"),
    ],
)
def test_bad_ids_are_refused_naming_field_and_rule(tenant_id: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        TenantSpec.parse({**GOOD, "id": tenant_id})
    assert [f.field for f in exc.value.fields] == ["id"]
    assert rule in exc.value.message


def test_longest_id_is_accepted() -> None:
    assert TenantSpec.parse({**GOOD, "id": "a" * MAX_ID_LENGTH}).id == "a" * MAX_ID_LENGTH


@pytest.mark.parametrize("email", ["nope", "a@b", "a b@c.example", "@acme.example", "a@-x.example"])
def test_bad_email(email: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        TenantSpec.parse({**GOOD, "admin_email": email})
    assert exc.value.fields[0].field == "admin_email"


def test_email_domain_is_lowercased() -> None:
    assert TenantSpec.parse({**GOOD, "admin_email": "Boss@ACME.example"}).admin_email == (
        "Boss@acme.example"
    )


def test_unknown_odoo_version() -> None:
    with pytest.raises(InvalidInput) as exc:
        TenantSpec.parse({**GOOD, "odoo_version": "16.0"})
    assert exc.value.fields[0].field == "odoo_version"
    assert "17.0" in exc.value.message


def test_custom_domains_validated_and_unique() -> None:
    spec = TenantSpec.parse({**GOOD, "custom_domains": ["ERP.Acme.example."]})
    assert spec.custom_domains == ("erp.acme.example",)
    with pytest.raises(InvalidInput) as exc:
        TenantSpec.parse({**GOOD, "custom_domains": ["not a host"]})
    assert exc.value.fields[0].field.startswith("custom_domains")
    with pytest.raises(InvalidInput, match="listed twice"):
        TenantSpec.parse({**GOOD, "custom_domains": ["a.example", "a.example"]})


def test_unknown_field_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        TenantSpec.parse({**GOOD, "plna": "starter"})
    assert exc.value.fields[0].field == "plna"


def test_several_errors_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as exc:
        TenantSpec.parse({"id": "WWW", "admin_email": "x"})
    assert {f.field for f in exc.value.fields} == {"id", "admin_email"}


def test_check_tenant_id() -> None:
    assert check_tenant_id("acme") == "acme"
    with pytest.raises(InvalidInput, match="id:"):
        check_tenant_id("www")
