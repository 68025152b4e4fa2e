"""Custom domains against the cluster, with helm 3 and helm 4 where helm acts (the claim
registry's own rules and the refusals made before any helm call with helm 4 only:
``claims_only``): no host takeover on any path (create, update, CLI, fleet ensure, racing
creates), and a domain is routed only once its
DNS proof is found by a real DNS server on 127.0.0.1 (dnslib).

Issue 18, point 1: customer B could create a tenant with A's subdomain, A's custom domain,
the base domain or ``api.<base>`` as a custom domain and got an Ingress rule and a TLS host
for it. ``takeover_hosts`` lists those forms; ``assert_takeover_refused`` is the check the
real-node test (with Traefik) can reuse, with ``tests.takeover``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner
from kubernetes import client

from saasodoo.cli import cli
from saasodoo.context import Context
from saasodoo.core.domains import claim_name
from saasodoo.core.record import SPEC_ANNOTATION
from saasodoo.core.spec import TenantSpec
from saasodoo.domains import HostTaken, NotVerified
from saasodoo.errors import InvalidInput, NotFound, SaasodooError
from saasodoo.fleet import Fleet
from saasodoo.reconciler import Outcome
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.dns_server import Zone, dns_server
from tests.support import Cluster, eventually
from tests.takeover import TAKEOVER_FORMS, attempt_takeover, owners_of, routed_hosts, takeover_hosts

pytestmark = pytest.mark.cluster

BASE = "odoo.test"
SYSTEM = "saasodoo-system"


@dataclass
class World:
    major: int
    settings: Settings
    tenants: Tenants
    zone: Zone
    a: str  # the victim, with a verified custom domain
    a_domain: str
    b: str  # the attacker, an existing tenant

    def fresh(self) -> Tenants:
        """Another Tenants (its own API client), as a second process would have."""
        return Tenants(Context(self.settings))


def make_settings(kube: Cluster, major: int, zone: Zone) -> Settings:
    return Settings(
        kubeconfig=kube.kubeconfig,
        helm_binary=str(kube.tools.helm(major)),
        base_domain=BASE,
        helm_timeout="5m",
        dns_nameserver="127.0.0.1",
        dns_port=zone.port,
        dns_timeout=3,
    )


def cleanup(tenants: Tenants, *ids: str, wait: bool = True) -> None:
    """Delete the tenants ``ids`` (absent ones are skipped). Each deletion returns once its
    hosts are freed and its namespace deletion started; with ``wait`` (an id reused next),
    their namespaces are then awaited together: the namespace controller holds each one
    5 s before it starts, so waiting one by one cost ~10 s a tenant. Without ``wait`` (the
    end of a test: its ids are not reused) they finish deleting in the background."""
    for tid in ids:
        try:
            asyncio.run(tenants.delete(tid, final_backup=False, wait=False))
        except NotFound:
            pass
    if wait:
        for tid in ids:
            tenants.ctx.kube.wait_namespace_gone(f"tenant-{tid}", timeout=300)


def spec(tid: str, *domains: str) -> TenantSpec:
    return TenantSpec.parse(
        {"id": tid, "admin_email": f"admin@{tid}.example", "custom_domains": list(domains)}
    )


def publish_proof(world: World, tid: str, host: str) -> None:
    (state,) = [s for s in world.tenants.domain_states(tid) if s.host == host]
    assert state.challenge is not None, state
    world.zone.set(state.challenge.txt_name, "TXT", state.challenge.txt_value)


@pytest.fixture(scope="module")
def zone() -> Iterator[Zone]:
    with dns_server() as z:
        yield z


#: The tests of the claim registry alone (who may hold a host, for how long) and of refusals
#: made before any helm call (a takeover, a rollback to a revision routing another's host):
#: helm only installs the tenants they need, so they run with helm 4 only (issue 18: "helm 3
#: and helm 4 where helm is involved"); routing and deletion, where helm acts, run with both;
#: the world's helm-4 instance is shared (indirect).
claims_only = pytest.mark.parametrize("world", [4], ids=["helm4"], indirect=True)


@pytest.fixture(scope="module", params=[3, 4], ids=["helm3", "helm4"])
def world(request: pytest.FixtureRequest, kube: Cluster, zone: Zone) -> Iterator[World]:
    major = request.param
    settings = make_settings(kube, major, zone)
    tenants = Tenants(Context(settings))
    a, b = f"dom-a-h{major}", f"dom-b-h{major}"
    a_domain = f"shop-h{major}.alpha.example"  # names nothing of A's id
    cleanup(tenants, a, b)
    asyncio.run(tenants.create(spec(a, a_domain), wait=False))
    asyncio.run(tenants.create(spec(b), wait=False))
    w = World(major, settings, tenants, zone, a, a_domain, b)
    publish_proof(w, a, a_domain)
    asyncio.run(tenants.verify_domain(a, a_domain, wait=False))
    assert owners_of(kube, a_domain) == [f"tenant-{a}"]
    yield w
    cleanup(tenants, a, b, wait=False)
    zone.clear()


def assert_takeover_refused(world: World, kube: Cluster, form: str, host: str) -> None:
    """B can neither create a tenant with ``host`` nor add it to its own; nothing changes."""
    c = f"dom-c-h{world.major}"
    expected: type[SaasodooError] = HostTaken if form.startswith("custom-domain") else InvalidInput
    before = asyncio.run(world.tenants.get(world.b))
    on_create, on_update = attempt_takeover(world.fresh(), world.b, c, host)
    assert isinstance(on_create, expected), on_create
    assert isinstance(on_update, expected), on_update
    assert "custom_domains[1]" in on_create.message, on_create.message
    assert "custom_domains[0]" in on_update.message, on_update.message
    if expected is HostTaken:  # the holder is never named
        assert world.a not in on_create.message and world.a not in on_update.message
    assert kube.core.list_namespace(field_selector=f"metadata.name=tenant-{c}").items == []
    assert c not in {r["name"] for r in kube.helm_releases(world.major)}
    assert world.tenants.ctx.kube.read_configmap(SYSTEM, claim_name("ok.takeover.example")) is None

    after = asyncio.run(world.tenants.get(world.b))
    assert after.spec == before.spec
    assert after.status.revision == before.status.revision
    routed = routed_hosts(kube)
    assert host.lower().rstrip(".") not in routed.get(f"tenant-{world.b}", set())
    assert owners_of(kube, world.a_domain) == [f"tenant-{world.a}"]


@claims_only  # refused before any helm call
@pytest.mark.parametrize("form", TAKEOVER_FORMS)
def test_takeover_is_refused(world: World, kube: Cluster, form: str) -> None:
    host = takeover_hosts(world.a, world.a_domain, BASE)[form]
    assert_takeover_refused(world, kube, form, host)


@claims_only
def test_racing_creates_one_wins(world: World, kube: Cluster) -> None:
    """Four creates at once, each with the same new host: exactly one tenant claims it; the
    others see it contested (claimed without proof: their own proof would win it) and
    nothing routes it."""
    host = f"race-h{world.major}.example"
    ids = [f"dom-r{i}-h{world.major}" for i in range(4)]
    cleanup(world.tenants, *ids)
    start = threading.Barrier(len(ids))
    results: dict[str, BaseException | None] = {}

    def create(tid: str) -> None:
        tenants = world.fresh()
        start.wait()
        try:
            asyncio.run(tenants.create(spec(tid, host), wait=False))
            results[tid] = None
        except BaseException as exc:  # noqa: BLE001 - collected and checked below
            results[tid] = exc

    threads = [threading.Thread(target=create, args=(tid,)) for tid in ids]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert all(exc is None for exc in results.values()), results
        claim = world.tenants.ctx.kube.read_configmap(SYSTEM, claim_name(host))
        assert claim is not None
        winner = claim.labels["saasodoo.dev/tenant"]
        for tid in ids:
            (state,) = world.tenants.domain_states(tid)
            assert state.state == ("pending" if tid == winner else "contested"), (tid, state)
            assert host not in routed_hosts(kube).get(f"tenant-{tid}", set())
    finally:
        cleanup(world.tenants, *ids, wait=False)
    assert world.tenants.ctx.kube.read_configmap(SYSTEM, claim_name(host)) is None


def _record_spec(kube: Cluster, tid: str, doc: dict[str, Any]) -> None:
    kube.core.patch_namespace(
        f"tenant-{tid}", {"metadata": {"annotations": {SPEC_ANNOTATION: json.dumps(doc)}}}
    )


@claims_only  # not applied: no helm call
@pytest.mark.parametrize("form", ["custom-domain", "api"])
def test_fleet_ensure_does_not_apply_a_conflicting_spec(
    world: World, kube: Cluster, form: str
) -> None:
    """A spec recorded on B's namespace (by hand, or by an old version) that names A's host
    or a platform host is not applied by ensure: the tenant is reported failed, untouched."""
    host = takeover_hosts(world.a, world.a_domain, BASE)[form]
    original = asyncio.run(world.tenants.get(world.b))
    doc = original.spec.model_dump(mode="json")
    _record_spec(kube, world.b, {**doc, "custom_domains": [host], "verified_domains": [host]})
    try:
        fleet = Fleet(world.fresh().ctx)
        result = asyncio.run(fleet.reconciler.ensure(world.b))
        assert result.outcome is Outcome.FAILED, result
        rule = "belongs to another tenant" if form == "custom-domain" else "belongs to the platform"
        assert rule in result.detail and "custom_domains[0]" in result.detail
        summary = asyncio.run(fleet.ensure_all([world.b]))
        assert [r.outcome for r in summary.results] == [Outcome.FAILED]
        assert asyncio.run(world.tenants.get(world.b)).status.revision == original.status.revision
        assert host not in routed_hosts(kube).get(f"tenant-{world.b}", set())
        assert owners_of(kube, world.a_domain) == [f"tenant-{world.a}"]
    finally:
        _record_spec(kube, world.b, doc)


def test_domain_is_routed_only_once_proven(world: World, kube: Cluster) -> None:
    b, tenants = world.b, world.tenants
    erp, www = f"erp.{b}.example", f"www.{b}.example"
    ns = f"tenant-{b}"
    try:
        asyncio.run(tenants.update(b, custom_domains=[erp, www], wait=False))
        states = {s.host: s for s in tenants.domain_states(b)}
        assert {h: s.state for h, s in states.items()} == {erp: "pending", www: "pending"}
        assert not {erp, www} & routed_hosts(kube)[ns]

        # No record yet: refused, with the record to create; nothing changes.
        with pytest.raises(NotVerified) as exc:
            asyncio.run(tenants.verify_domain(b, erp, wait=False))
        ch = states[erp].challenge
        assert ch is not None and ch.txt_name in exc.value.message
        assert ch.txt_value in exc.value.message and exc.value.exit_code == 4
        # A's proof (another tenant's token) proves nothing for B.
        a_state = tenants.domain_states(world.a)[0]
        assert a_state.challenge is not None
        world.zone.set(ch.txt_name, "TXT", a_state.challenge.txt_value)
        with pytest.raises(NotVerified):
            asyncio.run(tenants.verify_domain(b, erp, wait=False))

        # The TXT proof: erp is routed (rule and TLS host), www still is not.
        world.zone.set(ch.txt_name, "TXT", "v=spf1 -all", ch.txt_value)
        verified = asyncio.run(tenants.verify_domain(b, erp.upper(), wait=False))
        assert verified.spec.verified_domains == (erp,)
        ingress = client.NetworkingV1Api(kube.api).list_namespaced_ingress(ns).items[0]
        assert erp in {r.host for r in ingress.spec.rules}
        assert erp in {h for t in ingress.spec.tls for h in t.hosts}
        assert www not in routed_hosts(kube)[ns]

        # The CNAME proof: to the tenant's own target, not to <id>.<base> (which any later
        # tenant of the same id would inherit).
        world.zone.set(www, "CNAME", f"{b}.{BASE}")
        with pytest.raises(NotVerified):
            asyncio.run(tenants.verify_domain(b, www, wait=False))
        www_ch = states[www].challenge
        assert www_ch is not None and www_ch.cname_target.endswith(f".{b}.{BASE}")
        world.zone.set(www, "CNAME", www_ch.cname_target)
        asyncio.run(tenants.verify_domain(b, www, wait=False))
        assert {erp, www} <= routed_hosts(kube)[ns]
        assert {s.state for s in tenants.domain_states(b)} == {"verified"}

        # Dropping a domain stops routing it and frees it for others.
        asyncio.run(tenants.update(b, custom_domains=[www], wait=False))
        assert erp not in routed_hosts(kube)[ns] and www in routed_hosts(kube)[ns]
        assert tenants.ctx.kube.read_configmap(SYSTEM, claim_name(erp)) is None
        tenants.ctx.domains.check(spec(world.a, erp))  # available to another tenant now
        # Added again, it is pending (not routed) until verified again; the proof is the
        # tenant's (bound to its namespace), so its record still counts.
        asyncio.run(tenants.update(b, custom_domains=[www, erp], wait=False))
        assert erp not in routed_hosts(kube)[ns]
        asyncio.run(tenants.verify_domain(b, erp, wait=False))
        assert erp in routed_hosts(kube)[ns]
    finally:
        asyncio.run(tenants.update(b, custom_domains=[], wait=False))
        world.zone.clear()
        publish_proof(world, world.a, world.a_domain)
    assert not {erp, www} & routed_hosts(kube)[ns]
    assert tenants.ctx.domains.claims_of(b) == {}


def test_deleted_tenant_frees_its_hosts(world: World, kube: Cluster) -> None:
    """Deleting a tenant releases its hosts; so does deleting its namespace by hand (the
    claim is owned by the namespace and a stale claim is replaced)."""
    d = f"dom-d-h{world.major}"
    host, other = f"gone-h{world.major}.example", f"hand-h{world.major}.example"
    cleanup(world.tenants, d)
    asyncio.run(world.tenants.create(spec(d, host), wait=False))
    asyncio.run(world.tenants.delete(d, final_backup=False))
    assert world.tenants.ctx.kube.read_configmap(SYSTEM, claim_name(host)) is None

    asyncio.run(world.tenants.create(spec(d, other), wait=False))
    claim = world.tenants.ctx.kube.read_configmap(SYSTEM, claim_name(other))
    assert claim is not None and claim.owners
    asyncio.run(world.tenants.ctx.helm.uninstall(d, f"tenant-{d}", wait=True))
    kube.core.delete_namespace(f"tenant-{d}")
    eventually(
        lambda: not kube.core.list_namespace(field_selector=f"metadata.name=tenant-{d}").items,
        timeout=120,
        what=f"namespace tenant-{d} gone",
    )
    try:
        asyncio.run(world.tenants.update(world.b, custom_domains=[other], wait=False))
        claim = world.tenants.ctx.kube.read_configmap(SYSTEM, claim_name(other))
        assert claim is not None and claim.labels["saasodoo.dev/tenant"] == world.b
    finally:
        asyncio.run(world.tenants.update(world.b, custom_domains=[], wait=False))


@pytest.fixture
def run_cli(world: World, kube: Cluster, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SAASODOO_KUBECONFIG", str(kube.kubeconfig))
    monkeypatch.setenv("SAASODOO_HELM_BINARY", world.settings.helm_binary)
    monkeypatch.setenv("SAASODOO_BASE_DOMAIN", BASE)
    monkeypatch.setenv("SAASODOO_DNS_NAMESERVER", "127.0.0.1")
    monkeypatch.setenv("SAASODOO_DNS_PORT", str(world.zone.port))
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


@claims_only  # refused before any helm call
def test_cli_refuses_takeovers_and_shows_domains(world: World, kube: Cluster, run_cli) -> None:  # type: ignore[no-untyped-def]
    c = f"dom-c-h{world.major}"
    result = run_cli("tenant", "create", c, "--email", "c@c.example", "--domain", f"api.{BASE}")
    assert result.exit_code == 2, result.output
    assert "custom_domains[0]" in result.stderr and "belongs to the platform" in result.stderr
    result = run_cli("tenant", "create", c, "--email", "c@c.example", "--domain", world.a_domain)
    assert result.exit_code == 4, result.output
    assert "custom_domains[0]" in result.stderr and world.a not in result.stderr
    result = run_cli("tenant", "update", world.b, "--domain", f"{world.a}.{BASE}")
    assert result.exit_code == 2 and "custom_domains[0]" in result.stderr
    assert "Traceback" not in result.output
    assert kube.core.list_namespace(field_selector=f"metadata.name=tenant-{c}").items == []

    shown = json.loads(run_cli("tenant", "domains", world.a, "-o", "json").stdout)
    assert [(d["host"], d["state"]) for d in shown] == [(world.a_domain, "verified")]
    pending = f"cli.{world.b}.example"
    try:
        assert run_cli("tenant", "update", world.b, "--domain", pending).exit_code == 0
        table = run_cli("tenant", "domains", world.b)
        assert table.exit_code == 0
        assert "pending" in table.stdout and f"_saasodoo-challenge.{pending}" in table.stdout
        result = run_cli("tenant", "verify-domain", world.b, pending)
        assert result.exit_code == 4 and "not verified yet" in result.stderr
    finally:
        run_cli("tenant", "update", world.b, "--clear-domains")


@claims_only  # refused before helm runs (the updates before it are routing's, run with both)
def test_rollback_refuses_a_host_now_anothers(world: World, kube: Cluster) -> None:
    """B rolls back to a revision that routed a host B has since dropped and A has claimed:
    refused before helm runs; B stays as it is."""
    b, tenants = world.b, world.tenants
    host = f"moved-h{world.major}.example"
    try:
        asyncio.run(tenants.update(b, custom_domains=[host], wait=False))
        publish_proof(world, b, host)
        routed = asyncio.run(tenants.verify_domain(b, host, wait=False)).status.revision
        asyncio.run(tenants.update(b, custom_domains=[], wait=False))
        asyncio.run(tenants.update(world.a, custom_domains=[world.a_domain, host], wait=False))
        before = asyncio.run(tenants.get(b))
        with pytest.raises(HostTaken, match="belongs to another tenant"):
            asyncio.run(tenants.rollback(b, routed))
        after = asyncio.run(tenants.get(b))
        assert after.status.revision == before.status.revision
        assert after.spec == before.spec
        assert host not in routed_hosts(kube).get(f"tenant-{b}", set())
    finally:
        asyncio.run(tenants.update(world.a, custom_domains=[world.a_domain], wait=False))
        asyncio.run(tenants.update(b, custom_domains=[], wait=False))


@claims_only
def test_a_claim_left_pending_too_long_can_be_taken(world: World, kube: Cluster) -> None:
    """Nobody squats a host: a claim without proof of control past ``domain_pending_hours``
    may be taken by another tenant; a verified one never is."""
    b = world.b
    host = f"squat-h{world.major}.example"
    c, d = f"dom-sc-h{world.major}", f"dom-sd-h{world.major}"
    expiring = Tenants(Context(world.settings.model_copy(update={"domain_pending_hours": 0})))
    cleanup(world.tenants, c, d)
    try:
        asyncio.run(world.tenants.update(b, custom_domains=[host], wait=False))
        asyncio.run(world.fresh().create(spec(c, host), wait=False))  # fresh: still B's
        assert [s.state for s in world.tenants.domain_states(c)] == ["contested"]
        claim = world.tenants.ctx.kube.read_configmap(SYSTEM, claim_name(host))
        assert claim is not None and claim.labels["saasodoo.dev/tenant"] == b
        asyncio.run(world.tenants.delete(c, final_backup=False))
        asyncio.run(expiring.create(spec(c, host), wait=False))
        claim = world.tenants.ctx.kube.read_configmap(SYSTEM, claim_name(host))
        assert claim is not None and claim.labels["saasodoo.dev/tenant"] == c
        # C's claim is unproven too: B sees the host contested, and only a proof wins it.
        assert [s.state for s in world.tenants.domain_states(b)] == ["contested"]
        with pytest.raises(NotVerified):
            asyncio.run(world.tenants.verify_domain(b, host, wait=False))
        # A's domain is verified: it never expires.
        with pytest.raises(HostTaken):
            asyncio.run(expiring.create(spec(d, world.a_domain), wait=False))
        assert owners_of(kube, world.a_domain) == [f"tenant-{world.a}"]
    finally:
        cleanup(world.tenants, c, d, wait=False)
        asyncio.run(world.tenants.update(b, custom_domains=[], wait=False))


@claims_only
def test_recycled_id_does_not_inherit_a_cname_proven_host(world: World, kube: Cluster) -> None:
    """Issue 22, point 6 (a): a customer proves a host by CNAME, then deletes the tenant; the
    CNAME stays in their DNS. Another owner creates the same id and lists the host: it is not
    routed for them, and the customer's CNAME does not verify it (the target carried the first
    tenant's token; ``<id>.<base>`` alone proves nothing)."""
    r = f"dom-rc-h{world.major}"
    host = f"recycled-h{world.major}.example"
    cleanup(world.tenants, r)
    try:
        asyncio.run(world.tenants.create(spec(r, host), owner="first-customer", wait=False))
        (state,) = world.tenants.domain_states(r)
        assert state.challenge is not None
        world.zone.set(host, "CNAME", state.challenge.cname_target)
        asyncio.run(world.tenants.verify_domain(r, host, wait=False))
        assert host in routed_hosts(kube)[f"tenant-{r}"]
        asyncio.run(world.tenants.delete(r, final_backup=False))

        asyncio.run(world.fresh().create(spec(r, host), owner="second-customer", wait=False))
        (again,) = world.tenants.domain_states(r)
        assert again.state == "pending" and again.challenge is not None
        assert again.challenge.cname_target != state.challenge.cname_target
        with pytest.raises(NotVerified):
            asyncio.run(world.tenants.verify_domain(r, host, wait=False))
        world.zone.set(host, "CNAME", f"{r}.{BASE}")  # the old, shared target: no proof either
        with pytest.raises(NotVerified):
            asyncio.run(world.tenants.verify_domain(r, host, wait=False))
        assert host not in routed_hosts(kube).get(f"tenant-{r}", set())
        assert asyncio.run(world.tenants.get(r)).spec.verified_domains == ()
    finally:
        cleanup(world.tenants, r, wait=False)
        world.zone.clear()
        publish_proof(world, world.a, world.a_domain)


@claims_only
def test_a_proof_beats_an_unproven_claim(world: World, kube: Cluster) -> None:
    """Issue 22, point 6 (b): a squatter (B) claims a host first and never proves it; the
    real owner (O), who controls its DNS, adds it (contested, with its own record), publishes
    the record and verifies: O gets the claim and the route. B's drop and re-add gains
    nothing: the host is O's, proven."""
    b, o = world.b, f"dom-own-h{world.major}"
    host = f"owned-h{world.major}.example"
    cleanup(world.tenants, o)
    try:
        asyncio.run(world.tenants.update(b, custom_domains=[host], wait=False))
        asyncio.run(world.fresh().create(spec(o, host), wait=False))
        (state,) = world.tenants.domain_states(o)
        assert state.state == "contested" and state.challenge is not None
        world.zone.set(state.challenge.txt_name, "TXT", state.challenge.txt_value)
        verified = asyncio.run(world.fresh().verify_domain(o, host, wait=False))
        assert verified.spec.verified_domains == (host,)
        assert host in routed_hosts(kube)[f"tenant-{o}"]
        claim = world.tenants.ctx.kube.read_configmap(SYSTEM, claim_name(host))
        assert claim is not None and claim.labels["saasodoo.dev/tenant"] == o
        assert [s.state for s in world.tenants.domain_states(b)] == ["taken"]
        # The squatter drops and re-adds it: refused now (O proved it); nothing of O's moves.
        asyncio.run(world.tenants.update(b, custom_domains=[], wait=False))
        with pytest.raises(HostTaken):
            asyncio.run(world.tenants.update(b, custom_domains=[host], wait=False))
        assert owners_of(kube, host) == [f"tenant-{o}"]
    finally:
        cleanup(world.tenants, o, wait=False)
        asyncio.run(world.tenants.update(b, custom_domains=[], wait=False))
        world.zone.clear()
        publish_proof(world, world.a, world.a_domain)


@claims_only
def test_re_claim_does_not_restart_the_pending_time(world: World, kube: Cluster) -> None:
    """Issue 22, point 6 (b): dropping and re-adding a host does not give the squatter a new
    pending period: it counts from the tenant's first claim, so once it has passed another
    tenant may take the host at once."""
    b, c = world.b, f"dom-rp-h{world.major}"
    host = f"reclaim-h{world.major}.example"
    short = Tenants(Context(world.settings.model_copy(update={"domain_pending_hours": 3 / 3600})))
    cleanup(world.tenants, c)
    try:
        asyncio.run(short.update(b, custom_domains=[host], wait=False))
        first = world.tenants.ctx.kube.read_configmap(SYSTEM, claim_name(host))
        assert first is not None
        time.sleep(4)  # the pending time (3 s) has passed
        asyncio.run(short.update(b, custom_domains=[], wait=False))
        asyncio.run(short.update(b, custom_domains=[host], wait=False))  # claimed anew
        again = world.tenants.ctx.kube.read_configmap(SYSTEM, claim_name(host))
        assert again is not None and again.uid != first.uid
        assert again.data.get("since") == first.data.get("since")
        asyncio.run(short.create(spec(c, host), wait=False))  # expired: C takes it at once
        claim = world.tenants.ctx.kube.read_configmap(SYSTEM, claim_name(host))
        assert claim is not None and claim.labels["saasodoo.dev/tenant"] == c
    finally:
        cleanup(world.tenants, c, wait=False)
        asyncio.run(world.tenants.update(b, custom_domains=[], wait=False))
