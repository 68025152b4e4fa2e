"""Helm keeps working on a tenant after saasodoo's own writes (issue #18, point 2).

The only object of a release saasodoo writes outside helm is Odoo's Deployments (a restore
stops Odoo and starts it again). Helm 4 applies server-side without forcing conflicts, so a
field saasodoo took ownership of made every later upgrade that changes it fail ("conflict
with "OpenAPI-Generator" ... .spec.replicas"): suspend after any restore. Here, with helm 3
and helm 4: suspend, resume, update and rollback after a restore, a verify and a backup,
and helm still the only owner of the replicas. On the simulated cluster the Jobs complete
without running restore.py/backup.py (no container runs), which is all saasodoo's side of
them needs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from saasodoo.backups import Backups
from saasodoo.context import Context
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import NotFound
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.support import Cluster

pytestmark = pytest.mark.cluster

ODOO = "app.kubernetes.io/component in (odoo,cron)"


@pytest.fixture(params=[3, 4], ids=["helm3", "helm4"])
def tenants(request: pytest.FixtureRequest, kube: Cluster) -> Iterator[Tenants]:
    settings = Settings(
        kubeconfig=kube.kubeconfig,
        helm_binary=str(kube.tools.helm(request.param)),
        base_domain="odoo.test",
        helm_timeout="5m",
    )
    yield Tenants(Context(settings))


def _replicas(kube: Cluster, namespace: str) -> dict[str, int]:
    items = kube.apps.list_namespaced_deployment(namespace, label_selector=ODOO).items
    return {d.metadata.name: d.spec.replicas for d in items}


def _replicas_owners(kube: Cluster, namespace: str) -> dict[str, set[str]]:
    """Who owns ``.spec.replicas`` of each Deployment of the tenant (manager/operation)."""
    out = {}
    for d in kube.apps.list_namespaced_deployment(namespace).items:
        out[d.metadata.name] = {
            f"{m.manager}/{m.operation}"
            for m in d.metadata.managed_fields or []
            if "f:replicas" in ((m.fields_v1 or {}).get("f:spec") or {})
        }
    return out


def test_helm_upgrades_suspend_resume_and_rollback_after_restore_verify_and_backup(
    tenants: Tenants, kube: Cluster
) -> None:
    major = tenants.ctx.helm.major
    # Helm's field manager is its binary's name; helm 4 applies, helm 3 patches (Update).
    helm_owner = (
        f"{Path(tenants.ctx.settings.helm_binary).name}/{'Apply' if major == 4 else 'Update'}"
    )
    tid = f"own{major}{uuid.uuid4().hex[:5]}"
    spec = TenantSpec.parse({"id": tid, "admin_email": "owner@own.example"})
    ns = spec.namespace
    backups = Backups(tenants.ctx.settings, poll_seconds=0.5)
    try:
        assert asyncio.run(tenants.create(spec)).status.reason in (
            "InstallSucceeded",
            "UpgradeSucceeded",
        )
        running = _replicas(kube, ns)
        assert running and all(n > 0 for n in running.values())

        def helm_alone_owns_the_replicas(after: str) -> None:
            owners = _replicas_owners(kube, ns)
            assert owners and all(o == {helm_owner} for o in owners.values()), (after, owners)

        helm_alone_owns_the_replicas("install")
        operations = {
            "restore": lambda: backups.restore(tid, timeout=120),
            "verify": lambda: backups.verify(tid, timeout=120),
            "backup": lambda: backups.create(tid, timeout=120),
        }
        for step, (name, operation) in enumerate(operations.items()):
            result = operation()
            assert result.job.succeeded, (name, result)
            assert _replicas(kube, ns) == running, name
            helm_alone_owns_the_replicas(name)

            # Suspend (replicas to 0 through helm) and resume (back) after it.
            suspended = asyncio.run(tenants.suspend(tid))
            assert suspended.status.reason == "Suspended", (name, suspended.status)
            assert set(_replicas(kube, ns).values()) == {0}
            resumed = asyncio.run(tenants.resume(tid))
            assert resumed.status.reason in ("InstallSucceeded", "UpgradeSucceeded"), (
                name,
                resumed.status,
            )
            assert _replicas(kube, ns) == running

            # The same operation again, then an update and a rollback that changes replicas.
            assert operation().job.succeeded
            mark = {"commonAnnotations": {"saasodoo.test/step": f"{name}-{step}"}}
            updated = asyncio.run(tenants.update(tid, overrides=mark))
            assert updated.status.reason in ("InstallSucceeded", "UpgradeSucceeded"), (
                name,
                updated.status,
            )
            before_suspend = updated.status.revision
            assert asyncio.run(tenants.suspend(tid)).status.reason == "Suspended"
            assert operation().job.succeeded  # on a suspended tenant: stays at zero
            assert set(_replicas(kube, ns).values()) == {0}
            rolled = asyncio.run(tenants.rollback(tid, before_suspend))
            assert rolled.status.reason in ("InstallSucceeded", "UpgradeSucceeded"), (
                name,
                rolled.status,
            )
            assert _replicas(kube, ns) == running
            helm_alone_owns_the_replicas(f"{name}, then suspend/resume/update/rollback")
        history = asyncio.run(tenants.history(tid))
        assert all(r.status in ("deployed", "superseded") for r in history), history
    finally:
        try:
            asyncio.run(tenants.delete(tid, final_backup=False, wait=False))
        except NotFound:
            pass


def test_a_tenant_an_earlier_restore_left_unupgradable_is_mended(
    tenants: Tenants, kube: Cluster
) -> None:
    """Before the fix a restore scaled Odoo with the client's default field manager
    ("OpenAPI-Generator"), which kept ``.spec.replicas``: helm 4 could never suspend the
    tenant again. The lifecycle hands the field back to helm before it runs."""
    major = tenants.ctx.helm.major
    helm_owner = (
        f"{Path(tenants.ctx.settings.helm_binary).name}/{'Apply' if major == 4 else 'Update'}"
    )
    tid = f"mend{major}{uuid.uuid4().hex[:5]}"
    spec = TenantSpec.parse({"id": tid, "admin_email": "owner@own.example"})
    ns = spec.namespace
    try:
        asyncio.run(tenants.create(spec))
        running = _replicas(kube, ns)
        for name, count in running.items():  # what the earlier restore did
            for replicas in (0, count):
                kube.apps.patch_namespaced_deployment(name, ns, {"spec": {"replicas": replicas}})
        assert set().union(*_replicas_owners(kube, ns).values()) >= {"OpenAPI-Generator/Update"}

        assert asyncio.run(tenants.suspend(tid)).status.reason == "Suspended"
        assert set(_replicas(kube, ns).values()) == {0}
        owners = _replicas_owners(kube, ns)
        assert all(o == {helm_owner} for o in owners.values()), owners
        assert asyncio.run(tenants.resume(tid)).status.reason in (
            "InstallSucceeded",
            "UpgradeSucceeded",
        )
        assert _replicas(kube, ns) == running
    finally:
        try:
            asyncio.run(tenants.delete(tid, final_backup=False, wait=False))
        except NotFound:
            pass
