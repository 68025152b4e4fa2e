"""The tenant lifecycle through saasodoo's library, with helm 3 and helm 4, checked in the cluster.

On the simulated cluster pods are scheduled and marked Ready by kwok; no Odoo or
PostgreSQL process runs, so these tests check what Kubernetes and Helm record.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator

import pytest

from saasodoo.core.spec import TenantSpec
from saasodoo.core.status import Phase
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
    yield Tenants(settings)


def _cleanup(tenants: Tenants, *ids: str) -> None:
    for tenant_id in ids:
        try:
            asyncio.run(tenants.delete(tenant_id, final_backup=False))
        except NotFound:
            pass


def _deployment(kube: Cluster, namespace: str, component: str) -> object:
    items = kube.apps.list_namespaced_deployment(
        namespace, label_selector=f"app.kubernetes.io/component={component}"
    ).items
    assert len(items) == 1, [d.metadata.name for d in items]
    return items[0]


def test_whole_lifecycle(tenants: Tenants, kube: Cluster) -> None:
    tid = f"life-h{tenants.helm.major}"
    ns = f"tenant-{tid}"
    _cleanup(tenants, tid)
    spec = TenantSpec.parse({"id": tid, "admin_email": "owner@life.example", "plan": "starter"})
    try:
        created = asyncio.run(tenants.create(spec))
        assert created.status.phase is Phase.READY, created.status
        assert created.status.revision == 1
        namespace = kube.core.read_namespace(ns)
        assert namespace.metadata.labels["saasodoo.dev/tenant"] == tid
        assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert created.url == f"https://{tid}.odoo.test"

        # The admin password is in a Secret, never in the release's values.
        values = kube.helm(tenants.helm.major, "get", "values", tid, "-n", ns, "-o", "json")
        secret = kube.core.read_namespaced_secret("saasodoo-admin", ns)
        password = base64.b64decode(secret.data["admin-password"]).decode()
        assert len(password) >= 24
        assert password not in values.stdout
        assert json.loads(values.stdout)["odoo"]["admin"]["existingSecret"] == "saasodoo-admin"

        # Plan change: a new revision with the plan's resources.
        updated = asyncio.run(tenants.update(tid, plan="standard"))
        assert updated.status.phase is Phase.READY
        assert updated.status.revision == 2
        assert updated.spec.plan == "standard"
        odoo = _deployment(kube, ns, "odoo")
        assert odoo.spec.template.spec.containers[0].resources.requests["cpu"] == "500m"
        assert kube.core.read_namespace(ns).metadata.labels["saasodoo.dev/plan"] == "standard"

        # Suspend: Odoo at zero replicas, volumes kept; resume brings it back.
        suspended = asyncio.run(tenants.suspend(tid))
        assert suspended.status.phase is Phase.SUSPENDED, suspended.status
        assert _deployment(kube, ns, "odoo").spec.replicas == 0
        pvcs = kube.core.list_namespaced_persistent_volume_claim(ns).items
        assert pvcs and all(p.status.phase == "Bound" for p in pvcs)
        resumed = asyncio.run(tenants.resume(tid))
        assert resumed.status.phase is Phase.READY
        assert _deployment(kube, ns, "odoo").spec.replicas == 1
        assert resumed.spec.plan == "standard"  # resume keeps the plan

        history = asyncio.run(tenants.history(tid))
        assert [r.revision for r in history] == [1, 2, 3, 4]
        assert history[-1].status == "deployed"
        assert "resume" in history[-1].description

        # Rollback to revision 1 (starter) creates revision 5. The standard plan grew the
        # volumes and Kubernetes cannot shrink them, so revision 1's values are applied with
        # the volumes kept at their size, and the spec goes back to the starter plan.
        rolled = asyncio.run(tenants.rollback(tid, 1))
        assert rolled.status.revision == 5
        assert rolled.status.phase is Phase.READY
        assert rolled.spec.plan == "starter"
        odoo = _deployment(kube, ns, "odoo")
        assert odoo.spec.template.spec.containers[0].resources.requests["cpu"] == "250m"
        sizes = {
            p.metadata.name: p.spec.resources.requests["storage"]
            for p in kube.core.list_namespaced_persistent_volume_claim(ns).items
        }
        assert sizes[f"{tid}-odoo-tenant-filestore"] == "20Gi"
        last = asyncio.run(tenants.history(tid))[-1]
        assert "rollback to 1" in last.description and "volumes kept" in last.description

        # Back to the previous revision (4): no volume shrinks, so a plain helm rollback.
        rolled = asyncio.run(tenants.rollback(tid))
        assert rolled.status.revision == 6
        assert "Rollback to 4" in asyncio.run(tenants.history(tid))[-1].description
        assert rolled.spec.plan == "standard"  # revision 4 ran the standard plan
        with pytest.raises(NotFound, match="no revision 42"):
            asyncio.run(tenants.rollback(tid, 42))

        listed = {t.spec.id: t for t in tenants.list_tenants()}
        assert listed[tid].status.phase is Phase.READY
        assert listed[tid].status.revision == 6

        with pytest.raises(Conflict):
            asyncio.run(tenants.create(spec))

        # Delete takes a final backup first (a Job from the tenant's CronJob, followed to
        # completion; on the simulated cluster it completes without running anything).
        asyncio.run(tenants.delete(tid))
    finally:
        _cleanup(tenants, tid)

    assert kube.core.list_namespace(field_selector=f"metadata.name={ns}").items == []
    releases = {r["name"] for r in kube.helm_releases(tenants.helm.major)}
    assert tid not in releases
    with pytest.raises(NotFound):
        asyncio.run(tenants.get(tid))


def test_sre_changes_made_with_helm_show_truthfully(tenants: Tenants, kube: Cluster) -> None:
    tid = f"sre-h{tenants.helm.major}"
    ns = f"tenant-{tid}"
    major = tenants.helm.major
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
            str(tenants.settings.chart),
            "-n",
            ns,
            "--reuse-values",
            "--set",
            "odoo.replicas=0",
            "--wait",
        )
        status = asyncio.run(tenants.get(tid))
        assert status.status.revision == 4
        assert status.status.phase is Phase.SUSPENDED
        listed = {t.spec.id: t for t in tenants.list_tenants()}
        assert listed[tid].status.revision == 4
        assert listed[tid].status.phase is Phase.SUSPENDED
    finally:
        _cleanup(tenants, tid)


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
    assert after == before
