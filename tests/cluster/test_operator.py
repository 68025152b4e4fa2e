"""The OdooTenant controller on the simulated cluster: its reconcile, called here step by step
(the work queue's part), against the real API server and real helm.

On the simulated cluster pods are marked Ready by kwok; no Odoo runs, so a final backup
cannot be taken here (which the deletion tests use: it must hold the deletion).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from saasodoo.adapters.resources import TenantResources, apply_crd
from saasodoo.context import Context
from saasodoo.core.conditions import get_condition, ready_for
from saasodoo.core.crd import FINALIZER, crd_manifest
from saasodoo.core.record import (
    APPLIED_ANNOTATION,
    OPERATION_ANNOTATION,
    SPEC_ANNOTATION,
    applied_of,
    entries_of_status,
)
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import NotFound
from saasodoo.operator.adopt import adopt_all
from saasodoo.operator.controller import FORCE_ANNOTATION, Result, TenantController
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.operator_process import run_cli
from tests.support import Cluster, namespace_record

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def ctl(kube: Cluster) -> Iterator[TenantController]:
    settings = Settings(
        kubeconfig=kube.kubeconfig,
        helm_binary=str(kube.tools.helm(4)),
        base_domain="odoo.test",
        helm_timeout="5m",
        system_namespace="saasodoo-optest",
    )
    tenants = Tenants(Context(settings))
    apply_crd(tenants.ctx.kube, crd_manifest())
    tenants.ctx.kube.create_namespace_if_absent(settings.system_namespace)
    ctl = TenantController(
        tenants.ctx, TenantResources(tenants.ctx.kube, settings.system_namespace)
    )
    yield ctl
    for item in ctl.resources.list().get("items") or []:  # what a failed test left
        remove(ctl, item["metadata"]["name"])
    kube.kubectl("delete", "namespace", settings.system_namespace, "--wait=false")


def converge(ctl: TenantController, name: str, *, limit: float = 120) -> Result:
    """Reconcile ``name`` as the work queue would, until it asks for nothing more."""
    deadline = time.monotonic() + limit
    while True:
        result = asyncio.run(ctl.reconcile(name))
        if not result.failed and result.requeue_after is None:
            return result
        assert time.monotonic() < deadline, f"{name} did not converge: {status(ctl, name)}"
        time.sleep(min(result.requeue_after or 1.0, 2.0))


def status(ctl: TenantController, name: str) -> dict[str, Any]:
    obj = ctl.resources.get(name)
    assert obj is not None
    return dict(obj.get("status") or {})


def new_tenant(ctl: TenantController, name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "metadata": {"name": name},
        "spec": {"adminEmail": f"admin@{name}.example", "finalBackup": False, **spec},
    }
    return ctl.resources.create(body)


def remove(ctl: TenantController, name: str) -> None:
    """Delete the OdooTenant and let the finalizer run (no final backup on kwok)."""
    if ctl.resources.get(name) is None:
        return
    ctl.resources.patch(name, {"spec": {"finalBackup": False}})
    ctl.resources.delete(name)
    converge(ctl, name)
    assert ctl.resources.get(name) is None


def helm_history(kube: Cluster, name: str) -> list[dict[str, Any]]:
    out = kube.helm(4, "history", name, "-n", f"tenant-{name}", "-o", "json").stdout
    return list(json.loads(out))


def test_a_new_odootenant_is_installed_and_ready_for_its_generation(
    ctl: TenantController, kube: Cluster
) -> None:
    name = "op-create"
    try:
        new_tenant(ctl, name, plan="starter")
        converge(ctl, name)
        obj = ctl.resources.get(name)
        assert obj is not None
        assert FINALIZER in obj["metadata"]["finalizers"]
        st = obj["status"]
        assert ready_for(obj), st
        assert st["observedGeneration"] == obj["metadata"]["generation"] == 1
        released = get_condition(st["conditions"], "Released")
        assert released and released["status"] == "True", st
        assert released["reason"] == "InstallSucceeded"
        types = {c["type"] for c in st["conditions"]}
        assert "Reconciling" not in types and "Stalled" not in types, st
        assert st["revision"] == 1
        assert st["url"].startswith("https://op-create.odoo.test")
        assert st["history"][0]["operation"] == "install"
        assert any(i.startswith("Deployment/") for i in st["inventory"]), st
        assert [r["revision"] for r in helm_history(kube, name)] == [1]
        # saasodoo's record is the object's status.record, none of it on the namespace.
        assert namespace_record(kube, name) == {}
        shown = yaml.safe_load(kube.kubectl("-n", ctl.resources.namespace, "get", "odootenant",
                                            name, "-o", "yaml"))  # fmt: skip
        record = shown["status"]["record"]
        assert record["applied"] == {"digest": st["appliedDigest"], "revision": 1}, record
        assert json.loads(record["spec"])["id"] == name and "operation" not in record

        # A resync of an unchanged tenant: no helm call, no status write.
        calls = ctl.ctx.helm.command.calls
        version = obj["metadata"]["resourceVersion"]
        assert converge(ctl, name) == Result()
        after = ctl.resources.get(name)
        assert after is not None and after["metadata"]["resourceVersion"] == version
        assert ctl.ctx.helm.command.calls == calls
        ready = get_condition(after["status"]["conditions"], "Ready")
        assert ready == get_condition(st["conditions"], "Ready")  # lastTransitionTime kept

        # A spec change: a new generation, observed once applied.
        ctl.resources.patch(name, {"spec": {"plan": "standard"}})
        obj = ctl.resources.get(name)
        assert obj is not None and obj["metadata"]["generation"] == 2
        assert not ready_for(obj)  # Ready of generation 1 says nothing of generation 2
        converge(ctl, name)
        obj = ctl.resources.get(name)
        assert obj is not None and ready_for(obj), obj["status"]
        assert obj["status"]["observedGeneration"] == 2
        assert [r["revision"] for r in helm_history(kube, name)] == [1, 2]
        assert obj["status"]["history"][0]["operation"] == "upgrade"
    finally:
        remove(ctl, name)


def test_suspend_and_resume_through_the_spec(ctl: TenantController, kube: Cluster) -> None:
    name = "op-suspend"
    try:
        new_tenant(ctl, name)
        converge(ctl, name)
        ctl.resources.patch(name, {"spec": {"suspended": True}})
        converge(ctl, name)
        dep = kube.apps.list_namespaced_deployment(
            f"tenant-{name}", label_selector="app.kubernetes.io/component=odoo"
        ).items[0]
        assert dep.spec.replicas == 0
        obj = ctl.resources.get(name)
        assert obj is not None and ready_for(obj)
        assert get_condition(obj["status"]["conditions"], "Ready")["reason"] == "Suspended"
        ctl.resources.patch(name, {"spec": {"suspended": False}})
        converge(ctl, name)
        dep = kube.apps.list_namespaced_deployment(
            f"tenant-{name}", label_selector="app.kubernetes.io/component=odoo"
        ).items[0]
        assert dep.spec.replicas == 1
    finally:
        remove(ctl, name)


def test_an_sre_rollback_is_drift_left_alone_until_forced(
    ctl: TenantController, kube: Cluster
) -> None:
    name = "op-drift"
    try:
        new_tenant(ctl, name)
        converge(ctl, name)
        ctl.resources.patch(name, {"spec": {"overrides": {"odoo": {"config": {"workers": 3}}}}})
        converge(ctl, name)
        kube.helm(4, "rollback", name, "1", "-n", f"tenant-{name}", "--wait")
        converge(ctl, name)
        obj = ctl.resources.get(name)
        assert obj is not None
        drifted = get_condition(obj["status"]["conditions"], "Drifted")
        assert drifted and drifted["status"] == "True", obj["status"]
        assert drifted["reason"] == "DriftDetected"
        assert not ready_for(obj)
        assert [r["revision"] for r in helm_history(kube, name)] == [1, 2, 3]  # left alone
        # Forced: back to the spec, the request echoed.
        ctl.resources.patch(
            name, {"metadata": {"annotations": {FORCE_ANNOTATION: "2026-12-06T03:00:00Z"}}}
        )
        converge(ctl, name)
        obj = ctl.resources.get(name)
        assert obj is not None and ready_for(obj), obj["status"]
        assert obj["status"]["lastHandledForceAt"] == "2026-12-06T03:00:00Z"
        assert get_condition(obj["status"]["conditions"], "Drifted")["status"] == "False"
        assert len(helm_history(kube, name)) == 4
    finally:
        remove(ctl, name)


def test_a_deployment_deleted_by_hand_comes_back(ctl: TenantController, kube: Cluster) -> None:
    name = "op-gone"
    try:
        new_tenant(ctl, name)
        converge(ctl, name)
        ns = f"tenant-{name}"
        deps = kube.apps.list_namespaced_deployment(
            ns, label_selector="app.kubernetes.io/component=odoo"
        ).items
        kube.kubectl("delete", "deployment", "-n", ns, deps[0].metadata.name, "--wait=true")
        svc = kube.core.list_namespaced_service(ns).items[0].metadata.name
        kube.kubectl("delete", "service", "-n", ns, svc, "--wait=true")
        converge(ctl, name)
        assert kube.apps.read_namespaced_deployment(deps[0].metadata.name, ns)
        assert kube.core.read_namespaced_service(svc, ns)
        obj = ctl.resources.get(name)
        assert obj is not None and ready_for(obj), obj["status"]
    finally:
        remove(ctl, name)


def test_a_failing_final_backup_holds_the_deletion_until_opted_out(
    ctl: TenantController, kube: Cluster
) -> None:
    name = "op-final"
    new_tenant(ctl, name, finalBackup=True)
    converge(ctl, name)
    ctl.resources.delete(name)
    result = asyncio.run(ctl.reconcile(name))
    assert result.failed
    obj = ctl.resources.get(name)
    assert obj is not None, "deleted without its final backup"
    ready = get_condition(obj["status"]["conditions"], "Ready")
    assert ready and ready["status"] == "False" and ready["reason"] == "FinalBackupFailed"
    assert '"finalBackup":false' in ready["message"]
    assert kube.core.read_namespace(f"tenant-{name}").status.phase == "Active"
    assert [r["revision"] for r in helm_history(kube, name)] == [1]  # nothing uninstalled
    ctl.resources.patch(name, {"spec": {"finalBackup": False}})
    converge(ctl, name)
    assert ctl.resources.get(name) is None
    with pytest.raises(NotFound):
        ctl.ctx.record.namespace(name)


def test_local_writes_the_record_of_an_operator_managed_tenant_on_its_odootenant(
    ctl: TenantController, kube: Cluster
) -> None:
    """``saasodoo tenant --local`` (the operator down) on a tenant with an OdooTenant takes
    the lock and records its outcome where the operator keeps them (status.record, none on
    the namespace): the operator then finds the tenant in sync and runs no helm."""
    name = "op-local"
    try:
        new_tenant(ctl, name)
        converge(ctl, name)
        ctl.resources.patch(name, {"spec": {"suspended": True}})  # no reconcile: "down"
        done = run_cli(kube, {"system_namespace": ctl.resources.namespace},
                       "tenant", "--local", "suspend", name)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert namespace_record(kube, name) == {}
        record = status(ctl, name)["record"]
        assert record["suspended"] is True and "operation" not in record, record
        assert record["applied"]["revision"] == 2
        calls = ctl.ctx.helm.command.calls
        converge(ctl, name)
        assert ctl.ctx.helm.command.calls == calls  # what --local did is not done again
        obj = ctl.resources.get(name)
        assert obj is not None and ready_for(obj), obj["status"]
        assert [r["revision"] for r in helm_history(kube, name)] == [1, 2]
    finally:
        remove(ctl, name)


def test_tenants_of_the_current_version_are_adopted_without_a_helm_upgrade(
    ctl: TenantController, kube: Cluster
) -> None:
    name = "op-adopt"
    tenants = ctl.tenants
    spec = TenantSpec.parse({"id": name, "admin_email": "a@op-adopt.example", "plan": "starter"})
    try:
        asyncio.run(tenants.create(spec, owner="user-1"))  # no OdooTenant: on its namespace
        before = namespace_record(kube, name)
        assert SPEC_ANNOTATION in before and APPLIED_ANNOTATION in before
        first = adopt_all(tenants.ctx, ctl.resources)
        assert name in first.adopted and name in first.moved
        # The record moved onto the OdooTenant, whole; the namespace keeps none of it.
        assert namespace_record(kube, name) == {}
        assert entries_of_status(status(ctl, name)["record"]) == before
        again = adopt_all(tenants.ctx, ctl.resources)
        assert name in again.present and name not in again.adopted  # idempotent
        assert name not in again.moved
        converge(ctl, name)
        obj = ctl.resources.get(name)
        assert obj is not None and ready_for(obj), obj["status"]
        assert obj["spec"]["owner"] == "user-1"
        assert obj["spec"]["plan"] == "starter"
        assert [r["revision"] for r in helm_history(kube, name)] == [1]  # no helm upgrade
        assert namespace_record(kube, name) == {}
        assert applied_of(entries_of_status(status(ctl, name)["record"])) == applied_of(before)
    finally:
        remove(ctl, name)


def test_a_tenant_adopted_by_the_previous_version_has_its_record_moved_by_a_reconcile(
    ctl: TenantController, kube: Cluster
) -> None:
    """The previous version's adoption made the OdooTenant and left the record on the
    namespace: the operator's first reconcile moves it onto the OdooTenant (written first,
    the annotations removed last), without a helm call."""
    name = "op-moved"
    tenants = ctl.tenants
    spec = TenantSpec.parse({"id": name, "admin_email": "a@op-moved.example"})
    try:
        asyncio.run(tenants.create(spec, owner="user-2"))
        before = namespace_record(kube, name)
        # As the previous adopt_all wrote it: the spec only, no status.
        new_tenant(ctl, name, adminEmail="a@op-moved.example", owner="user-2")
        assert "record" not in status(ctl, name)
        converge(ctl, name)
        assert namespace_record(kube, name) == {}
        moved = entries_of_status(status(ctl, name)["record"])
        assert moved[SPEC_ANNOTATION] == before[SPEC_ANNOTATION]
        assert applied_of(moved) == applied_of(before) and OPERATION_ANNOTATION not in moved
        obj = ctl.resources.get(name)
        assert obj is not None and ready_for(obj), obj["status"]
        assert [r["revision"] for r in helm_history(kube, name)] == [1]  # no helm upgrade
    finally:
        remove(ctl, name)
