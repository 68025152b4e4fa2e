"""The lifecycle (saasodoo.tenants) against small fakes of Kube and Helm (tests/fakes.py):
what each operation writes, and what its error paths leave behind (nothing half-created,
the lock released, the previous spec restored)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from saasodoo.context import Context
from saasodoo.core.record import (
    APPLIED_ANNOTATION,
    OPERATION_ANNOTATION,
    SUSPENDED_ANNOTATION,
    applied_of,
    entries_of_annotations,
    spec_of,
)
from saasodoo.core.spec import TENANT_LABEL, TenantSpec
from saasodoo.core.values import ADMIN_SECRET_NAME, get_path
from saasodoo.domains import Domains, HostTaken, NotVerified
from saasodoo.errors import Conflict, HelmFailure, InvalidInput, NotFound
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.fakes import FakeHelm, FakeKube, FakeResolver, _with_status

pytestmark = pytest.mark.unit

SETTINGS = Settings(base_domain="odoo.test")
NS = "tenant-acme"
KEY = (NS, "acme")


@dataclass
class World:
    tenants: Tenants
    kube: FakeKube
    helm: FakeHelm

    def annotations(self, ns: str = NS) -> dict[str, str]:
        """The namespace's annotations with the tenant's record, wherever it is kept. A
        tenant with an OdooTenant has its record there and none on its namespace."""
        found = self.tenants.ctx.record.read(ns)
        assert found is not None
        if found.labels.get(TENANT_LABEL) in self.kube.odootenants:
            assert not entries_of_annotations(found.annotations), found.annotations
        return {**found.annotations, **found.record}

    def recorded(self, ns: str = NS) -> TenantSpec:
        """The recorded spec, without what the tenant was created with (test_creation_facts)."""
        found = self.annotations(ns)
        return spec_of(found, {}, ns).model_copy(update={"created_with": None})

    def claims(self) -> dict[str, str]:
        """Claimed host -> holding tenant."""
        return {cm.data["host"]: cm.data["tenant"] for cm in self.kube.configmaps.values()}


#: Where the tenants' records are kept: on their namespaces (no OdooTenant: ``--local`` on
#: a cluster without the operator), or on their OdooTenants (every lifecycle operation the
#: operator or ``--local`` runs on an operator-managed tenant).
STORES = ("namespace", "odootenant")


@pytest.fixture(params=STORES)
def world(request: pytest.FixtureRequest) -> World:
    kube, helm = FakeKube(), FakeHelm(SETTINGS)
    if request.param == "odootenant":
        for tid in ("acme", "beta", "owner"):
            kube.odootenants[tid] = {"metadata": {"name": tid, "generation": 1}}
    return World(Tenants(Context(SETTINGS, helm=helm, kube=kube)), kube, helm)


def spec(tenant_id: str = "acme", **fields: Any) -> TenantSpec:
    return TenantSpec.parse(
        {"id": tenant_id, "admin_email": "a@acme.example", "odoo_version": "18.0", **fields}
    )


def created(world: World, **fields: Any) -> World:
    asyncio.run(world.tenants.create(spec(**fields), owner="u1"))
    return world


# -- create ------------------------------------------------------------------------------------


def test_create_writes_namespace_secret_release_and_record(world: World) -> None:
    tenant = asyncio.run(world.tenants.create(spec(), owner="u1"))
    assert tenant.owner == "u1" and tenant.url == "https://acme.odoo.test"
    assert (NS, ADMIN_SECRET_NAME) in world.kube.secrets
    assert [r.revision.revision for r in world.helm.releases[KEY]] == [1]
    annotations = world.annotations()
    assert OPERATION_ANNOTATION not in annotations  # the create's lock is released
    assert applied_of(annotations) is not None and applied_of(annotations).revision == 1  # type: ignore[union-attr]


def test_create_refused_by_the_chart_leaves_nothing(world: World) -> None:
    world.helm.fail_next = InvalidInput("the chart refused the values")
    with pytest.raises(InvalidInput, match="chart refused"):
        asyncio.run(world.tenants.create(spec(custom_domains=["shop.acme.example"])))
    assert world.kube.namespaces == {} and world.claims() == {}
    assert world.kube.calls[-1] == f"delete namespace {NS}"


def test_a_failed_install_keeps_the_namespace_and_releases_the_lock(world: World) -> None:
    world.helm.fail_next = HelmFailure("helm install timed out")
    with pytest.raises(HelmFailure):
        asyncio.run(world.tenants.create(spec()))
    annotations = world.annotations()
    assert OPERATION_ANNOTATION not in annotations and APPLIED_ANNOTATION not in annotations
    assert world.recorded() == spec()  # ensure installs it later


def test_create_of_a_taken_host_is_refused_before_any_write(world: World) -> None:
    """Taken: another tenant proved the host (an unproven claim only makes it contested)."""
    created(world, custom_domains=["shop.example.com"])
    proved = spec(custom_domains=["shop.example.com"], verified_domains=["shop.example.com"])
    world.tenants.ctx.record.write_spec(proved)
    writes = list(world.kube.calls)
    with pytest.raises(HostTaken, match=r"custom_domains\[0\]"):
        asyncio.run(world.tenants.create(spec("beta", custom_domains=["shop.example.com"])))
    assert world.kube.calls == writes and "tenant-beta" not in world.kube.namespaces


def test_an_unproven_claim_leaves_the_host_contested(world: World) -> None:
    created(world, custom_domains=["shop.example.com"])
    tenant = asyncio.run(world.tenants.create(spec("beta", custom_domains=["shop.example.com"])))
    assert tenant.spec.custom_domains == ("shop.example.com",)
    assert world.claims() == {"shop.example.com": "acme"}  # still acme's, not routed by beta
    assert [s.state for s in world.tenants.domain_states("beta")] == ["contested"]


def test_create_forgets_verified_domains(world: World) -> None:
    fields: dict[str, Any] = {
        "custom_domains": ["shop.example.com"],
        "verified_domains": ["shop.example.com"],
    }
    tenant = asyncio.run(world.tenants.create(spec(**fields)))
    assert tenant.spec.verified_domains == () and world.recorded().verified_domains == ()


# -- update, suspend, resume ---------------------------------------------------------------


def test_update_records_the_new_spec_and_releases_dropped_hosts(world: World) -> None:
    created(world, custom_domains=["old.example.com"])
    tenant = asyncio.run(world.tenants.update("acme", custom_domains=["new.example.com"]))
    assert tenant.spec.custom_domains == ("new.example.com",)
    assert world.recorded().custom_domains == ("new.example.com",)
    assert world.claims() == {"new.example.com": "acme"}
    assert world.helm.releases[KEY][-1].revision.description == "saasodoo: update custom_domains"


def test_helm_runs_with_install_only_for_a_release_without_a_live_revision(world: World) -> None:
    # create: --install; an update of a release with a stored revision: a plain upgrade
    world.kube.helm = world.helm  # helm's storage records, read from the fake release list
    created(world)
    asyncio.run(world.tenants.update("acme", custom_domains=["a.example.com"]))
    assert world.helm.installs == [True, False]
    # a history that ends uninstalled (a hand `helm uninstall --keep-history`): helm would
    # refuse a plain upgrade, so --install, with which helm installs again
    head = world.helm.releases[KEY][-1]
    head.revision = _with_status(head.revision, "uninstalled")
    asyncio.run(world.tenants.update("acme", custom_domains=["b.example.com"]))
    assert world.helm.installs == [True, False, True]


def test_a_failed_update_restores_the_previous_spec_and_claims(world: World) -> None:
    created(world, custom_domains=["old.example.com"])
    world.helm.fail_next = HelmFailure("upgrade failed")
    with pytest.raises(HelmFailure):
        asyncio.run(
            world.tenants.update("acme", plan="standard", custom_domains=["new.example.com"])
        )
    assert world.recorded() == spec(custom_domains=["old.example.com"])
    assert OPERATION_ANNOTATION not in world.annotations()
    assert world.claims() == {"old.example.com": "acme"}


def test_update_refusals_come_before_any_change(world: World) -> None:
    with pytest.raises(InvalidInput, match=r"nothing to update: \(body\)"):
        asyncio.run(world.tenants.update("nosuch"))  # no cluster read needed
    with pytest.raises(NotFound, match="tenant 'nosuch' not found"):
        asyncio.run(world.tenants.update("nosuch", plan="standard"))
    created(world)
    writes = list(world.kube.calls)
    with pytest.raises(InvalidInput, match="plan"):
        asyncio.run(world.tenants.update("acme", plan="gold"))
    for version in ("17.0", "19.0"):
        with pytest.raises(
            InvalidInput, match=f"odoo_version: cannot change from Odoo 18.0 to {version}"
        ):
            asyncio.run(world.tenants.update("acme", odoo_version=version))
    assert world.kube.calls == writes


def test_one_odoo_worker_is_refused_before_any_change(world: World) -> None:
    """``odoo.config.workers: 1`` prints no PDF (wkhtmltopdf asks the same server for
    the report's assets): refused on create and update, naming the field and why (#22, 11)."""
    overrides = {"odoo": {"config": {"workers": 1}}}
    rule = r"values\.odoo\.config\.workers: 1 is refused: Odoo prints no PDF report.*0 \(threaded\)"
    with pytest.raises(InvalidInput, match=rule):
        asyncio.run(world.tenants.create(spec(overrides=overrides), owner="u1"))
    assert world.kube.calls == [] and world.helm.releases == {}
    created(world)
    writes = list(world.kube.calls)
    with pytest.raises(InvalidInput, match=rule):
        asyncio.run(world.tenants.update("acme", overrides=overrides))
    assert world.kube.calls == writes
    for workers in (0, 2):
        asyncio.run(
            world.tenants.update("acme", overrides={"odoo": {"config": {"workers": workers}}})
        )


def test_suspend_and_resume_scale_odoo_and_keep_the_spec(world: World) -> None:
    created(world, plan="standard")
    asyncio.run(world.tenants.suspend("acme"))
    assert world.annotations()[SUSPENDED_ANNOTATION] == "true"
    assert get_path(world.helm.releases[KEY][-1].values, "odoo.replicas") == 0
    assert world.recorded().plan == "standard"
    asyncio.run(world.tenants.resume("acme"))
    assert SUSPENDED_ANNOTATION not in world.annotations()
    assert get_path(world.helm.releases[KEY][-1].values, "odoo.replicas") != 0


def test_a_failed_suspend_leaves_the_tenant_running(world: World) -> None:
    created(world)
    world.helm.fail_next = HelmFailure("upgrade failed")
    with pytest.raises(HelmFailure):
        asyncio.run(world.tenants.suspend("acme"))
    assert SUSPENDED_ANNOTATION not in world.annotations()
    assert OPERATION_ANNOTATION not in world.annotations()


# -- rollback -------------------------------------------------------------------------------------


def test_rollback_returns_to_the_previous_revision_and_its_spec(world: World) -> None:
    created(world)
    asyncio.run(world.tenants.update("acme", plan="standard"))
    tenant = asyncio.run(world.tenants.rollback("acme"))
    assert tenant.spec.plan == "starter" and world.recorded().plan == "starter"
    assert world.helm.commands[-1] == f"rollback {NS}/acme to 1"
    assert applied_of(world.annotations()).revision == 3  # type: ignore[union-attr]


def test_rollback_refusals(world: World) -> None:
    created(world)
    with pytest.raises(Conflict, match="no previous revision"):
        asyncio.run(world.tenants.rollback("acme"))
    with pytest.raises(NotFound, match=r"no revision 5 \(known: 1\)"):
        asyncio.run(world.tenants.rollback("acme", 5))
    # A revision of 19.0 made below the checks (by hand): neither way across is allowed.
    on_18 = world.recorded()
    on_19 = on_18.model_copy(update={"odoo_version": "19.0"})
    asyncio.run(world.tenants.upgrade_to(on_19, False, (on_18, False), "x", "x", wait=True))
    with pytest.raises(InvalidInput, match="revision: revision 1 runs Odoo 18.0; the tenant's "
                       "database \\(its PostgreSQL data\\) is of Odoo 19.0"):  # fmt: skip
        asyncio.run(world.tenants.rollback("acme", 1))
    assert len(world.helm.releases[KEY]) == 2


def test_a_failed_rollback_releases_the_lock(world: World) -> None:
    created(world)
    asyncio.run(world.tenants.update("acme", plan="standard"))
    world.helm.fail_next = HelmFailure("rollback failed")
    with pytest.raises(HelmFailure):
        asyncio.run(world.tenants.rollback("acme", 1))
    assert OPERATION_ANNOTATION not in world.annotations()
    assert world.recorded().plan == "standard"


# -- delete ---------------------------------------------------------------------------------------


def test_delete_uninstalls_and_frees_the_hosts(world: World) -> None:
    created(world, custom_domains=["shop.example.com"])
    asyncio.run(world.tenants.delete("acme", final_backup=False, keep_volumes=True))
    assert KEY not in world.helm.releases and NS not in world.kube.namespaces
    assert world.claims() == {}
    assert f"retain volumes {NS}" in world.kube.calls


def test_delete_uninstalls_under_the_operation_lock(world: World) -> None:
    """#23 point 3: helm uninstall runs under the lock (ensure waits instead of installing
    the tenant again meanwhile); a failed uninstall releases it and deletes nothing."""
    created(world)
    seen: list[str | None] = []
    real = world.helm.uninstall

    async def uninstall(release: str, namespace: str, *, wait: bool = True) -> bool:
        seen.append(world.annotations().get(OPERATION_ANNOTATION))
        if len(seen) == 1:
            raise HelmFailure("helm uninstall timed out")
        return await real(release, namespace, wait=wait)

    world.helm.uninstall = uninstall  # type: ignore[method-assign]
    with pytest.raises(HelmFailure):
        asyncio.run(world.tenants.delete("acme", final_backup=False))
    assert OPERATION_ANNOTATION not in world.annotations() and NS in world.kube.namespaces
    asyncio.run(world.tenants.delete("acme", final_backup=False))
    assert [lock and '"operation": "delete"' in lock for lock in seen] == [True, True]
    assert NS not in world.kube.namespaces


def backup_cronjob(volume: dict[str, Any]) -> dict[str, Any]:
    """A backup CronJob as the chart renders it, reduced to what the final backup reads."""
    container = {"name": "backup", "command": ["python3", "backup.py", "--dest=/backups"]}
    pod = {"containers": [container], "volumes": [{"name": "backups", **volume}]}
    return {
        "metadata": {"name": "acme-backup", "namespace": NS, "uid": "cj-1"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}},
    }


@pytest.mark.parametrize(
    ("cronjobs", "why"),
    [
        pytest.param([], "no backup CronJob", id="backups-disabled"),
        pytest.param(
            [backup_cronjob({"emptyDir": {"sizeLimit": "1Gi"}})], "lost with its pod",
            id="backup-volume-is-an-emptydir",
        ),
    ],
)  # fmt: skip
def test_delete_refuses_when_no_final_backup_can_be_kept(
    world: World, cronjobs: list[dict[str, Any]], why: str
) -> None:
    """#22 point 1: a final backup that cannot be kept outside the tenant refuses the
    deletion, naming why and `--no-final-backup`; nothing is deleted."""
    created(world, custom_domains=["shop.example.com"])
    world.kube.cronjobs[NS] = cronjobs
    with pytest.raises(Conflict, match=f"not deleted: .*{why}.*--no-final-backup"):
        asyncio.run(world.tenants.delete("acme"))
    assert KEY in world.helm.releases and NS in world.kube.namespaces
    assert world.claims() == {"shop.example.com": "acme"}
    assert not [c for c in world.kube.calls if c.startswith(("delete", "retain"))]


def test_delete_of_a_missing_tenant_is_not_found(world: World) -> None:
    with pytest.raises(NotFound, match="tenant 'nosuch' not found"):
        asyncio.run(world.tenants.delete("nosuch", final_backup=False))
    assert world.helm.commands == []


def test_re_adding_a_host_keeps_its_first_claim_time(world: World) -> None:
    """Issue 22, point 6 (b): the pending time counts from the first claim, whatever drops
    and re-adds (remembered on the namespace and copied into each new claim)."""
    created(world, custom_domains=["shop.example.com"])
    (first,) = world.kube.configmaps.values()
    asyncio.run(world.tenants.update("acme", custom_domains=["other.example.com"]))
    assert world.claims() == {"other.example.com": "acme"}
    asyncio.run(world.tenants.update("acme", custom_domains=["shop.example.com"]))
    (again,) = world.kube.configmaps.values()
    assert again.created != first.created and again.data["since"] == first.data["since"]
    remembered = world.annotations()["saasodoo.dev/domain-first-claims"]
    assert "shop.example.com" in remembered and "other.example.com" in remembered


# -- custom domains: the proof and who wins a host (issue 22, point 6) -------------------------


def _resolver(world: World) -> FakeResolver:
    resolver = FakeResolver()
    world.tenants.ctx.domains = Domains(SETTINGS, world.kube, resolver)
    return resolver


def test_a_recycled_id_does_not_inherit_a_cname_left_in_dns(world: World) -> None:
    dns = _resolver(world)
    created(world, custom_domains=["shop.example.com"])
    (state,) = world.tenants.domain_states("acme")
    assert state.challenge is not None
    dns.records[("shop.example.com", "CNAME")] = [state.challenge.cname_target]
    asyncio.run(world.tenants.verify_domain("acme", "shop.example.com"))
    assert world.recorded().verified_domains == ("shop.example.com",)
    asyncio.run(world.tenants.delete("acme", final_backup=False))

    asyncio.run(world.tenants.create(spec(custom_domains=["shop.example.com"]), owner="u2"))
    (again,) = world.tenants.domain_states("acme")
    assert again.state == "pending" and again.challenge is not None
    assert again.challenge.cname_target != state.challenge.cname_target
    for left in (state.challenge.cname_target, "acme.odoo.test"):
        dns.records[("shop.example.com", "CNAME")] = [left]
        with pytest.raises(NotVerified, match="is not verified yet"):
            asyncio.run(world.tenants.verify_domain("acme", "shop.example.com"))
    assert world.recorded().verified_domains == ()


def test_a_valid_proof_beats_an_unproven_claim(world: World) -> None:
    dns = _resolver(world)
    created(world, custom_domains=["shop.example.com"])  # acme squats it, unproven
    asyncio.run(world.tenants.create(spec("owner", custom_domains=["shop.example.com"])))
    (state,) = world.tenants.domain_states("owner")
    assert state.state == "contested" and state.challenge is not None
    with pytest.raises(NotVerified):  # no record yet: the squatter keeps its claim
        asyncio.run(world.tenants.verify_domain("owner", "shop.example.com"))
    assert world.claims() == {"shop.example.com": "acme"}
    dns.records[(state.challenge.txt_name, "TXT")] = [state.challenge.txt_value]
    tenant = asyncio.run(world.tenants.verify_domain("owner", "shop.example.com"))
    assert tenant.spec.verified_domains == ("shop.example.com",)
    assert world.claims() == {"shop.example.com": "owner"}
    assert [s.state for s in world.tenants.domain_states("acme")] == ["taken"]
    # The squatter drops and re-adds it: refused (the owner proved it).
    asyncio.run(world.tenants.update("acme", custom_domains=[]))
    with pytest.raises(HostTaken):
        asyncio.run(world.tenants.update("acme", custom_domains=["shop.example.com"]))
    # A proof of the squatter's own would not move a proven host either.
    squat = world.tenants.ctx.domains.challenge_for("acme", "shop.example.com")
    dns.records[(squat.txt_name, "TXT")] = [squat.txt_value]
    assert world.claims() == {"shop.example.com": "owner"}
