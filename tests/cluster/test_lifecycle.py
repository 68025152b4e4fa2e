"""The tenant lifecycle through saasodoo's library, with helm 3 and helm 4, checked in the cluster.

On the simulated cluster pods are scheduled and marked Ready by kwok; no Odoo or
PostgreSQL process runs, so these tests check what Kubernetes and Helm record.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from saasodoo.context import Context
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import Conflict, InvalidInput, NotFound
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.support import Cluster

pytestmark = pytest.mark.cluster


@pytest.fixture(params=[3, 4], ids=["helm3", "helm4"])
def tenants(request: pytest.FixtureRequest, kube: Cluster) -> Iterator[Tenants]:
    settings = Settings(
        kubeconfig=kube.kubeconfig,
        helm_binary=str(kube.tools.helm(request.param)),
        base_domain="odoo.test",
        helm_timeout="5m",
    )
    yield Tenants(Context(settings))


def _cleanup(tenants: Tenants, *ids: str, wait: bool = True) -> None:
    """Delete the tenants ``ids`` (absent ones skipped); ``wait`` for their namespaces to go
    (an id created again next). At the end of a test, without: waiting costs ~10 s a tenant
    (the namespace controller holds a deleted namespace 5 s before it starts)."""
    for tenant_id in ids:
        try:
            asyncio.run(tenants.delete(tenant_id, final_backup=False, wait=wait))
        except NotFound:
            pass


def _deployment(kube: Cluster, namespace: str, component: str) -> object:
    items = kube.apps.list_namespaced_deployment(
        namespace, label_selector=f"app.kubernetes.io/component={component}"
    ).items
    assert len(items) == 1, [d.metadata.name for d in items]
    return items[0]


@dataclass
class Life:
    """One tenant taken through the whole lifecycle once (module fixture ``life``), each
    step's result (or error) and what the cluster showed right after it kept by name, so
    each behaviour is its own test and one failure does not hide the others."""

    tenants: Tenants
    tid: str
    steps: dict[str, Any] = field(default_factory=dict)

    @property
    def ns(self) -> str:
        return f"tenant-{self.tid}"

    def run(self, name: str, fn: Callable[[], Any]) -> None:
        try:
            self.steps[name] = fn()
        except Exception as exc:  # noqa: BLE001 - kept for the tests that look at it
            self.steps[name] = exc

    def __getitem__(self, name: str) -> Any:
        found = self.steps[name]
        if isinstance(found, Exception):
            pytest.fail(f"step {name!r} raised {found!r}")
        return found

    def error(self, name: str) -> Exception:
        found = self.steps[name]
        assert isinstance(found, Exception), f"step {name!r} did not raise: {found!r}"
        return found


@pytest.fixture(scope="module", params=[3, 4], ids=["helm3", "helm4"])
def life(request: pytest.FixtureRequest, kube: Cluster) -> Iterator[Life]:
    """create, the Secret, update, suspend, resume, history, two rollbacks, an unknown
    revision, list, a duplicate create and delete, in that order, each step run once."""
    settings = Settings(
        kubeconfig=kube.kubeconfig,
        helm_binary=str(kube.tools.helm(request.param)),
        base_domain="odoo.test",
        helm_timeout="5m",
    )
    tenants = Tenants(Context(settings))
    life = Life(tenants, f"life-h{tenants.ctx.helm.major}")
    tid, ns, major = life.tid, life.ns, tenants.ctx.helm.major
    _cleanup(tenants, tid)
    spec = TenantSpec.parse({"id": tid, "admin_email": "owner@life.example", "plan": "starter"})

    def cpu() -> str:
        odoo: Any = _deployment(kube, ns, "odoo")
        return str(odoo.spec.template.spec.containers[0].resources.requests["cpu"])

    def replicas() -> int:
        odoo: Any = _deployment(kube, ns, "odoo")
        return int(odoo.spec.replicas)

    def claims() -> list[Any]:
        return list(kube.core.list_namespaced_persistent_volume_claim(ns).items)

    try:
        life.run("create", lambda: asyncio.run(tenants.create(spec)))
        life.run("namespace labels", lambda: kube.core.read_namespace(ns).metadata.labels)
        life.run(
            "values", lambda: kube.helm(major, "get", "values", tid, "-n", ns, "-o", "json").stdout
        )
        life.run("secret", lambda: kube.core.read_namespaced_secret("saasodoo-admin", ns))
        life.run("update", lambda: asyncio.run(tenants.update(tid, plan="standard")))
        life.run("update cpu", cpu)
        life.run("update labels", lambda: kube.core.read_namespace(ns).metadata.labels)
        life.run("suspend", lambda: asyncio.run(tenants.suspend(tid)))
        life.run("suspended replicas", replicas)
        life.run("suspended claims", claims)
        life.run("resume", lambda: asyncio.run(tenants.resume(tid)))
        life.run("resumed replicas", replicas)
        life.run("history", lambda: asyncio.run(tenants.history(tid)))
        life.run("rollback to 1", lambda: asyncio.run(tenants.rollback(tid, 1)))
        life.run("rollback to 1 cpu", cpu)
        life.run("rollback to 1 claims", claims)
        life.run("rollback to 1 history", lambda: asyncio.run(tenants.history(tid)))
        life.run("rollback", lambda: asyncio.run(tenants.rollback(tid)))
        life.run("rollback history", lambda: asyncio.run(tenants.history(tid)))
        life.run("rollback to 42", lambda: asyncio.run(tenants.rollback(tid, 42)))
        life.run("list", tenants.list_tenants)
        life.run("create again", lambda: asyncio.run(tenants.create(spec)))
        # Delete takes a final backup first (a Job from the tenant's CronJob, followed to
        # completion) and proves it readable: on the simulated cluster the Job completes
        # without running anything, so the deletion is refused (#22 point 1) unless told to
        # go without one.
        life.run("delete refused", lambda: asyncio.run(tenants.delete(tid)))
        life.run(
            "namespaces after refusal",
            lambda: kube.core.list_namespace(field_selector=f"metadata.name={ns}").items,
        )
        life.run("delete", lambda: asyncio.run(tenants.delete(tid, final_backup=False)))
        life.run(
            "namespaces after delete",
            lambda: kube.core.list_namespace(field_selector=f"metadata.name={ns}").items,
        )
        life.run("releases after delete", lambda: kube.helm_releases(major))
        life.run("get after delete", lambda: asyncio.run(tenants.get(tid)))
        yield life
    finally:
        _cleanup(tenants, tid)


def test_create_makes_a_ready_tenant_in_a_restricted_namespace(life: Life) -> None:
    created = life["create"]
    assert created.status.reason in ("InstallSucceeded", "UpgradeSucceeded"), created.status
    assert created.status.revision == 1
    assert created.url == f"https://{life.tid}.odoo.test"
    labels = life["namespace labels"]
    assert labels["saasodoo.dev/tenant"] == life.tid
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_admin_password_is_in_a_secret_never_in_the_values(life: Life) -> None:
    password = base64.b64decode(life["secret"].data["admin-password"]).decode()
    assert len(password) >= 24
    assert password not in life["values"]
    assert json.loads(life["values"])["odoo"]["admin"]["existingSecret"] == "saasodoo-admin"


def test_a_plan_change_is_a_new_revision_with_the_plans_resources(life: Life) -> None:
    updated = life["update"]
    assert updated.status.reason in ("InstallSucceeded", "UpgradeSucceeded")
    assert (updated.status.revision, updated.spec.plan) == (2, "standard")
    assert life["update cpu"] == "500m"
    assert life["update labels"]["saasodoo.dev/plan"] == "standard"


def test_suspend_scales_odoo_to_zero_and_keeps_the_volumes(life: Life) -> None:
    assert life["suspend"].status.reason == "Suspended", life["suspend"].status
    assert life["suspended replicas"] == 0
    pvcs = life["suspended claims"]
    assert pvcs and all(p.status.phase == "Bound" for p in pvcs)


def test_resume_brings_odoo_back_and_keeps_the_plan(life: Life) -> None:
    resumed = life["resume"]
    assert resumed.status.reason in ("InstallSucceeded", "UpgradeSucceeded")
    assert life["resumed replicas"] == 1
    assert resumed.spec.plan == "standard"


def test_history_lists_every_revision(life: Life) -> None:
    history = life["history"]
    assert [r.revision for r in history] == [1, 2, 3, 4]
    assert history[-1].status == "deployed"
    assert "resume" in history[-1].description


def test_a_rollback_past_grown_volumes_keeps_their_size(life: Life) -> None:
    # Rollback to revision 1 (starter) creates revision 5. The standard plan grew the
    # volumes and Kubernetes cannot shrink them, so revision 1's values are applied with
    # the volumes kept at their size, and the spec goes back to the starter plan.
    rolled = life["rollback to 1"]
    assert (rolled.status.revision, rolled.status.reason) == (5, "UpgradeSucceeded")
    assert rolled.spec.plan == "starter"
    assert life["rollback to 1 cpu"] == "250m"
    sizes = {
        p.metadata.name: p.spec.resources.requests["storage"] for p in life["rollback to 1 claims"]
    }
    assert sizes[f"{life.tid}-odoo-tenant-filestore"] == "20Gi"
    last = life["rollback to 1 history"][-1]
    assert "rollback to 1" in last.description and "volumes kept" in last.description


def test_a_rollback_to_the_previous_revision_is_a_plain_helm_rollback(life: Life) -> None:
    rolled = life["rollback"]
    assert rolled.status.revision == 6
    assert "Rollback to 4" in life["rollback history"][-1].description
    assert rolled.spec.plan == "standard"  # revision 4 ran the standard plan


def test_a_rollback_to_an_unknown_revision_is_not_found(life: Life) -> None:
    error = life.error("rollback to 42")
    assert isinstance(error, NotFound) and "no revision 42" in error.message


def test_the_list_shows_the_tenant(life: Life) -> None:
    listed = {t.spec.id: t for t in life["list"]}
    assert listed[life.tid].status.reason in ("InstallSucceeded", "UpgradeSucceeded")
    assert listed[life.tid].status.revision == 6


def test_a_second_create_is_a_conflict(life: Life) -> None:
    error = life.error("create again")
    assert isinstance(error, Conflict) and "already exists" in error.message


def test_delete_without_a_provable_final_backup_is_refused(life: Life) -> None:
    error = life.error("delete refused")
    assert isinstance(error, Conflict) and "--no-final-backup" in error.message
    assert "cannot be verified" in error.message
    assert len(life["namespaces after refusal"]) == 1  # nothing deleted


def test_delete_removes_the_namespace_and_the_release(life: Life) -> None:
    deleted = life["delete"]
    assert deleted.to_dict() == {
        "id": life.tid, "deleted": True, "kept_volumes": False, "final_backup": None,
    }  # fmt: skip
    assert life["namespaces after delete"] == []
    assert life.tid not in {r["name"] for r in life["releases after delete"]}
    assert isinstance(life.error("get after delete"), NotFound)


def test_sre_changes_made_with_helm_show_truthfully(tenants: Tenants, kube: Cluster) -> None:
    tid = f"sre-h{tenants.ctx.helm.major}"
    ns = f"tenant-{tid}"
    major = tenants.ctx.helm.major
    _cleanup(tenants, tid)
    spec = TenantSpec.parse({"id": tid, "admin_email": "sre@sre.example"})
    try:
        asyncio.run(tenants.create(spec))
        asyncio.run(tenants.update(tid, overrides={"odoo": {"config": {"workers": 3}}}))
        # An SRE rolls back by hand, then changes a value by hand.
        kube.helm(major, "rollback", tid, "1", "-n", ns, "--wait")
        status = asyncio.run(tenants.get(tid))
        assert status.status.revision == 3
        assert status.status.release_status == "deployed"
        history = asyncio.run(tenants.history(tid))
        assert history[-1].revision == 3
        assert "Rollback to 1" in history[-1].description
        kube.helm(
            major,
            "upgrade",
            tid,
            str(tenants.ctx.settings.chart),
            "-n",
            ns,
            "--reuse-values",
            "--set",
            "odoo.replicas=0",
            "--wait",
        )
        # Odoo scaled to zero by hand is not an ordinary suspended tenant: every view says
        # the release was changed by hand (#23), status and list alike.
        status = asyncio.run(tenants.get(tid))
        assert status.status.revision == 4
        assert status.status.reason == "Unmanaged"
        assert "changed by hand: revision 4 is not saasodoo's" in status.status.message
        listed = {t.spec.id: t for t in tenants.list_tenants()}
        assert listed[tid].status.revision == 4
        assert listed[tid].status.reason == "Unmanaged"
        assert listed[tid].status.message == status.status.message
    finally:
        _cleanup(tenants, tid, wait=False)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"id": "Bad_Id"}, "id"),
        ({"id": "www"}, "id"),
        ({"id": "x" * 31}, "id"),
        ({"admin_email": "not-an-email"}, "admin_email"),
        ({"plan": "platinum"}, "plan"),
        ({"odoo_version": "15.0"}, "odoo_version"),
        ({"overrides": {"odoo": {"replcas": 2}}}, "values"),
    ],
)
def test_bad_input_creates_nothing(
    tenants: Tenants, kube: Cluster, data: dict[str, object], field: str
) -> None:
    before = {n.metadata.name for n in kube.core.list_namespace().items}
    request = {"id": "badinput", "admin_email": "a@bad.example", **data}
    with pytest.raises(InvalidInput) as exc:
        spec = TenantSpec.parse(request)
        asyncio.run(tenants.create(spec))
    assert field in [f.field for f in exc.value.fields] or field in exc.value.message
    after = {n.metadata.name for n in kube.core.list_namespace().items}
    assert not after - before  # no namespace made (one an earlier test deleted may have gone)
