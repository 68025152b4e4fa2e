"""ensure against the cluster: crash recovery, failed upgrades, SRE hand changes (helm 3 and 4)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from saasodoo.adapters.resources import TenantResources, apply_crd
from saasodoo.context import Context
from saasodoo.core.crd import crd_manifest
from saasodoo.core.reconcile import State
from saasodoo.core.record import (
    APPLIED_ANNOTATION,
    OPERATION_ANNOTATION,
    SPEC_ANNOTATION,
    entries_of_annotations,
)
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import NotFound
from saasodoo.fleet import Fleet
from saasodoo.reconciler import EnsureResult, Outcome, Reconciler
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.support import ROOT, Cluster

pytestmark = pytest.mark.cluster

#: Overrides whose Odoo pod can never be scheduled: an upgrade to them times out.
UNSCHEDULABLE = {
    "odoo": {"resources": {"requests": {"cpu": "500"}, "limits": {"cpu": "500"}}},
    "quota": {"hard": {"requests.cpu": "2000", "limits.cpu": "2000"}},
}


@pytest.fixture(params=[3, 4], ids=["helm3", "helm4"])
def major(request: pytest.FixtureRequest) -> int:
    return int(request.param)


#: The cases whose helm steps are those of another case already run with both helms (an
#: upgrade killed or failed, a hand upgrade seen as the SRE rollback is): helm 4 only, for CI
#: time; the killed create, the failed upgrade's rollback, the SRE rollback and the stuck
#: StatefulSet pod run with both.
helm4_only = pytest.mark.parametrize("major", [4], ids=["helm4"], indirect=True)


#: The platform namespace of the OdooTenants these tests make (no operator watches it).
SYSTEM_NAMESPACE = "saasodoo-rectest"


def make_tenants(kube: Cluster, major: int, timeout: str = "5m") -> Tenants:
    return Tenants(
        Context(
            Settings(
                kubeconfig=kube.kubeconfig,
                helm_binary=str(kube.tools.helm(major)),
                helm_timeout=timeout,
                system_namespace=SYSTEM_NAMESPACE,
            )
        )
    )


def cleanup(tenants: Tenants, *ids: str, wait: bool = True) -> None:
    for tid in ids:
        try:
            asyncio.run(tenants.delete(tid, final_backup=False, wait=wait))
        except NotFound:
            pass


@pytest.fixture
def tenant_id(request: pytest.FixtureRequest, major: int, kube: Cluster) -> Iterator[str]:
    prefix = {
        "test_killed_create": "reck",
        "test_killed_upgrade": "recu",
        "test_failed_upgrade": "recf",
        "test_failed_plan": "recv",
        "test_sre": "recs",
        "test_hand_upgrade_that_succeeded": "rech",
        "test_hand_upgrade_that_failed": "recx",
        "test_stuck_statefulset_pod": "recp",
        "test_killed_operator_managed": "reco",
    }
    name = next(v for k, v in prefix.items() if request.node.name.startswith(k))
    tid = f"{name}-h{major}"
    tenants = make_tenants(kube, major)
    cleanup(tenants, tid)
    yield tid
    cleanup(tenants, tid, wait=False)


def release_statuses(kube: Cluster, tid: str) -> dict[int, str]:
    secrets = kube.core.list_namespaced_secret(
        f"tenant-{tid}", label_selector=f"owner=helm,name={tid}"
    ).items
    return {int(s.metadata.labels["version"]): s.metadata.labels["status"] for s in secrets}


def kill_during_helm(kube: Cluster, major: int, tid: str, call: str, revision: int) -> None:
    """Run ``call`` (a Tenants method call on ``t``) in an orchestrator process of its own and
    SIGKILL it, helm child included (as a pod kill does), once revision ``revision`` of the
    release is pending."""
    code = (
        "import asyncio\n"
        "from saasodoo.context import Context\n"
        "from saasodoo.core.spec import TenantSpec\n"
        "from saasodoo.settings import Settings\n"
        "from saasodoo.tenants import Tenants\n"
        f"t = Tenants(Context(Settings(kubeconfig={str(kube.kubeconfig)!r}, "
        f"helm_binary={str(kube.tools.helm(major))!r}, helm_timeout='5m', "
        f"system_namespace={SYSTEM_NAMESPACE!r})))\n"
        f"asyncio.run({call})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"{call} finished before helm was caught at work"
            try:
                if release_statuses(kube, tid).get(revision, "").startswith("pending-"):
                    break
            except Exception:  # noqa: BLE001 - the namespace may not exist yet
                pass
            assert time.monotonic() < deadline, "helm never started"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def rolled_back_after(
    tenants: Tenants, tid: str, email: str, bad: dict[str, object]
) -> tuple[TenantSpec, EnsureResult]:
    """Create the tenant, record a spec changed by ``bad`` (as the API records it) whose
    upgrade fails, run ensure, check that it rolled back: (the good spec, ensure's result)."""
    spec = TenantSpec.parse({"id": tid, "admin_email": email, "plan": "starter"})
    asyncio.run(tenants.create(spec))
    failing = TenantSpec.parse({**spec.model_dump(), **bad})
    tenants.ctx.kube.patch_namespace(
        f"tenant-{tid}", annotations={SPEC_ANNOTATION: failing.model_dump_json()}
    )
    result = asyncio.run(Reconciler(tenants.ctx).ensure(tid))
    assert result.outcome is Outcome.ROLLED_BACK, result
    assert result.steps == ["out-of-date -> upgrade", "failed-upgrade -> rollback"]
    return spec, result


def test_killed_create_is_recovered_by_ensure(kube: Cluster, major: int, tenant_id: str) -> None:
    tid = tenant_id
    spec = f"TenantSpec.parse({{'id': {tid!r}, 'admin_email': 'a@crash.example'}})"
    kill_during_helm(kube, major, tid, f"t.create({spec})", revision=1)
    assert release_statuses(kube, tid) == {1: "pending-install"}
    ns = kube.core.read_namespace(f"tenant-{tid}")
    assert OPERATION_ANNOTATION in ns.metadata.annotations  # the dead process's lease

    tenants = make_tenants(kube, major)
    reconciler = Reconciler(tenants.ctx)
    assert reconciler.state_of(asyncio.run(reconciler.observe(tid))) is State.LOCKED
    result = asyncio.run(reconciler.ensure(tid))
    assert result.outcome is Outcome.RECOVERED, result
    assert result.steps[0] == "locked -> unlock"
    status = asyncio.run(tenants.get(tid))
    assert status.status.reason in ("InstallSucceeded", "UpgradeSucceeded"), status.status
    assert status.status.release_status == "deployed"
    ns = kube.core.read_namespace(f"tenant-{tid}")
    assert OPERATION_ANNOTATION not in (ns.metadata.annotations or {})
    # Converged: the next ensure does nothing, without running helm beyond its status look.
    assert asyncio.run(reconciler.ensure(tid)).outcome is Outcome.UNCHANGED


@helm4_only
def test_killed_upgrade_is_finished_by_ensure(kube: Cluster, major: int, tenant_id: str) -> None:
    tid = tenant_id
    ns_name = f"tenant-{tid}"
    tenants = make_tenants(kube, major)
    asyncio.run(tenants.create(TenantSpec.parse({"id": tid, "admin_email": "a@kill.example"})))
    change = {"odoo": {"config": {"workers": 3}}}
    kill_during_helm(kube, major, tid, f"t.update({tid!r}, overrides={change!r})", revision=2)
    assert release_statuses(kube, tid) == {1: "deployed", 2: "pending-upgrade"}
    annotations = kube.core.read_namespace(ns_name).metadata.annotations
    assert OPERATION_ANNOTATION in annotations  # the dead process's lease
    # The desired spec was recorded before helm ran: the update is not lost with the process.
    assert json.loads(annotations[SPEC_ANNOTATION])["overrides"] == change

    reconciler = Reconciler(tenants.ctx)
    assert reconciler.state_of(asyncio.run(reconciler.observe(tid))) is State.LOCKED
    result = asyncio.run(reconciler.ensure(tid))
    assert result.outcome is Outcome.RECOVERED, result
    assert result.steps == [
        "locked -> unlock", "failed-upgrade -> rollback", "out-of-date -> upgrade",
    ]  # fmt: skip
    statuses = release_statuses(kube, tid)
    assert statuses[2] == "failed" and statuses[max(statuses)] == "deployed"
    values = json.loads(kube.helm(major, "get", "values", tid, "-n", ns_name, "-o", "json").stdout)
    assert values["odoo"]["config"]["workers"] == 3  # the killed update, finished
    tenant = asyncio.run(tenants.get(tid))
    assert (
        tenant.status.reason in ("InstallSucceeded", "UpgradeSucceeded")
        and tenant.spec.overrides == change
    )
    annotations = kube.core.read_namespace(ns_name).metadata.annotations
    assert OPERATION_ANNOTATION not in annotations
    assert json.loads(annotations[APPLIED_ANNOTATION])["revision"] == max(statuses)
    assert asyncio.run(reconciler.ensure(tid)).outcome is Outcome.UNCHANGED


@helm4_only
def test_killed_operator_managed_upgrade_is_finished_by_ensure(
    kube: Cluster, major: int, tenant_id: str
) -> None:
    """A tenant with an OdooTenant keeps its record (the lock among it) in the object's
    status.record and none on its namespace: a process killed during helm leaves its lock
    there, and ensure recovers the tenant from it as from a namespace's."""
    tid = tenant_id
    ns_name = f"tenant-{tid}"
    tenants = make_tenants(kube, major)
    ctx = tenants.ctx
    apply_crd(ctx.kube, crd_manifest())
    ctx.kube.create_namespace_if_absent(ctx.settings.system_namespace)
    resources = TenantResources(ctx.kube, ctx.settings.system_namespace)
    if resources.get(tid) is None:
        resources.create({"metadata": {"name": tid}, "spec": {"adminEmail": "a@kill.example"}})

    def record() -> dict[str, Any]:
        obj = resources.get(tid)
        assert obj is not None
        return dict((obj.get("status") or {}).get("record") or {})

    def namespace_record() -> dict[str, str]:
        notes = kube.core.read_namespace(ns_name).metadata.annotations or {}
        return entries_of_annotations(notes)

    try:
        asyncio.run(tenants.create(TenantSpec.parse({"id": tid, "admin_email": "a@kill.example"})))
        assert namespace_record() == {}
        assert record()["applied"]["revision"] == 1 and "operation" not in record()
        change = {"odoo": {"config": {"workers": 3}}}
        kill_during_helm(kube, major, tid, f"t.update({tid!r}, overrides={change!r})", revision=2)
        assert release_statuses(kube, tid) == {1: "deployed", 2: "pending-upgrade"}
        held = record()
        assert held["operation"]["operation"] == "update"  # the dead process's lock
        assert json.loads(held["spec"])["overrides"] == change  # recorded before helm ran
        assert namespace_record() == {}

        reconciler = Reconciler(ctx)
        assert reconciler.state_of(asyncio.run(reconciler.observe(tid))) is State.LOCKED
        result = asyncio.run(reconciler.ensure(tid))
        assert result.outcome is Outcome.RECOVERED, result
        statuses = release_statuses(kube, tid)
        held = record()
        assert "operation" not in held and held["applied"]["revision"] == max(statuses)
        assert namespace_record() == {}
        assert asyncio.run(reconciler.ensure(tid)).outcome is Outcome.UNCHANGED
    finally:
        cleanup(tenants, tid, wait=False)
        resources.delete(tid)


def test_failed_upgrade_is_rolled_back_and_stalled(
    kube: Cluster, major: int, tenant_id: str
) -> None:
    tid = tenant_id
    ns_name = f"tenant-{tid}"
    tenants = make_tenants(kube, major, timeout="12s")
    reconciler = Reconciler(tenants.ctx)
    # The desired spec changes to values that cannot become ready.
    bad = {"overrides": UNSCHEDULABLE}
    spec, result = rolled_back_after(tenants, tid, "a@fail.example", bad)
    assert "upgrade:" in result.detail  # the helm error is reported
    history = asyncio.run(tenants.history(tid))
    assert [(r.revision, r.status) for r in history][:2] == [(1, "superseded"), (2, "failed")]
    assert history[-1].revision == 3 and history[-1].status == "deployed"
    assert asyncio.run(tenants.get(tid)).status.reason in ("InstallSucceeded", "UpgradeSucceeded")
    applied = json.loads(kube.core.read_namespace(ns_name).metadata.annotations[APPLIED_ANNOTATION])
    assert applied["revision"] == 3

    # Not retried on the next pass (no helm upgrade): stalled until the spec changes.
    calls = tenants.ctx.helm.calls
    stalled = asyncio.run(reconciler.ensure(tid))
    assert stalled.outcome is Outcome.STALLED, stalled
    assert tenants.ctx.helm.calls - calls == 1  # helm status only
    # Back to the good spec: in sync with the rolled-back release, nothing to do.
    tenants.ctx.kube.patch_namespace(ns_name, annotations={SPEC_ANNOTATION: spec.model_dump_json()})
    assert asyncio.run(reconciler.ensure(tid)).outcome is Outcome.UNCHANGED


@helm4_only
def test_failed_plan_upgrade_is_rolled_back_with_grown_volumes_kept(
    kube: Cluster, major: int, tenant_id: str
) -> None:
    """The failed upgrade had already grown the volumes (starter -> standard): a plain helm
    rollback would try to shrink them, which Kubernetes refuses. Ensure rolls back with the
    good revision's values and the volumes at their current size."""
    tid = tenant_id
    ns_name = f"tenant-{tid}"
    tenants = make_tenants(kube, major, timeout="12s")
    reconciler = Reconciler(tenants.ctx)
    bad = {"plan": "standard", "overrides": UNSCHEDULABLE}
    spec, _ = rolled_back_after(tenants, tid, "a@grow.example", bad)
    sizes = {
        p.metadata.name: p.spec.resources.requests["storage"]
        for p in kube.core.list_namespaced_persistent_volume_claim(ns_name).items
    }
    assert sizes[f"{tid}-odoo-tenant-filestore"] == "20Gi"  # grown by the failed upgrade, kept
    history = asyncio.run(tenants.history(tid))
    assert [r.status for r in history] == ["superseded", "failed", "deployed"]
    assert "rollback to 1" in history[-1].description
    assert "volumes kept" in history[-1].description
    tenant = asyncio.run(tenants.get(tid))
    assert tenant.status.reason in ("InstallSucceeded", "UpgradeSucceeded")
    odoo = kube.apps.list_namespaced_deployment(
        ns_name, label_selector="app.kubernetes.io/component=odoo"
    ).items[0]
    assert odoo.spec.template.spec.containers[0].resources.requests["cpu"] == "250m"  # starter
    assert asyncio.run(reconciler.ensure(tid)).outcome is Outcome.STALLED
    # Back to the starter spec: in sync (the volumes stay as Kubernetes forces them).
    tenants.ctx.kube.patch_namespace(ns_name, annotations={SPEC_ANNOTATION: spec.model_dump_json()})
    assert asyncio.run(reconciler.ensure(tid)).outcome is Outcome.UNCHANGED


def test_sre_rollback_is_reported_as_unmanaged_and_kept(
    kube: Cluster, major: int, tenant_id: str
) -> None:
    tid = tenant_id
    ns_name = f"tenant-{tid}"
    tenants = make_tenants(kube, major)
    reconciler = Reconciler(tenants.ctx)
    asyncio.run(tenants.create(TenantSpec.parse({"id": tid, "admin_email": "a@sre.example"})))
    asyncio.run(tenants.update(tid, overrides={"odoo": {"config": {"workers": 3}}}))
    kube.helm(major, "rollback", tid, "1", "-n", ns_name, "--wait")  # by hand

    results = asyncio.run(Fleet(tenants.ctx).ensure_all([tid]))
    (unmanaged,) = results.results
    assert unmanaged.outcome is Outcome.UNMANAGED, unmanaged
    assert "revision 3" in unmanaged.detail and "recorded revision 2" in unmanaged.detail
    history = asyncio.run(tenants.history(tid))
    assert history[-1].revision == 3 and "Rollback to 1" in history[-1].description
    values = json.loads(kube.helm(major, "get", "values", tid, "-n", ns_name, "-o", "json").stdout)
    assert values["odoo"]["config"]["workers"] == 2  # the SRE's rollback (to the plan's) stands

    forced = asyncio.run(reconciler.ensure(tid, force=True))
    assert forced.outcome is Outcome.UPGRADED, forced
    assert forced.steps == ["unmanaged -> upgrade"]
    values = json.loads(kube.helm(major, "get", "values", tid, "-n", ns_name, "-o", "json").stdout)
    assert values["odoo"]["config"]["workers"] == 3
    assert asyncio.run(reconciler.ensure(tid)).outcome is Outcome.UNCHANGED


# -- issue 22, point 13: one rule for every hand-made revision, failed or not ---------------

CHART = str(ROOT / "charts" / "odoo-tenant")


def hand_upgrade(
    kube: Cluster, major: int, tid: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """An SRE's ``helm upgrade --reuse-values ... --wait`` of the tenant's release."""
    namespace = f"tenant-{tid}"
    upgrade = ["upgrade", tid, CHART, "-n", namespace, "--reuse-values", "--wait", *args]
    return kube.helm(major, *upgrade, check=False)


def hand_revision_left_alone(tenants: Tenants, kube: Cluster, tid: str, status: str) -> None:
    """fleet ensure, twice: revision 2, made by hand with ``status``, is reported unmanaged
    and left as it is (helm looks only: no upgrade, no rollback)."""
    for _ in range(2):
        calls = tenants.ctx.helm.calls
        (result,) = asyncio.run(Fleet(tenants.ctx).ensure_all([tid])).results
        assert (result.outcome, result.steps) == (Outcome.UNMANAGED, []), result
        assert f"revision 2 ({status})" in result.detail and "changed by hand" in result.detail
        assert tenants.ctx.helm.calls - calls <= 2
        first = "superseded" if status == "deployed" else "deployed"
        assert release_statuses(kube, tid) == {1: first, 2: status}


@helm4_only
def test_hand_upgrade_that_succeeded_is_reported_as_unmanaged_and_kept(
    kube: Cluster, major: int, tenant_id: str
) -> None:
    tid = tenant_id
    ns_name = f"tenant-{tid}"
    tenants = make_tenants(kube, major)
    asyncio.run(tenants.create(TenantSpec.parse({"id": tid, "admin_email": "a@hand.example"})))
    assert hand_upgrade(kube, major, tid, "--set", "odoo.config.workers=3").returncode == 0

    hand_revision_left_alone(tenants, kube, tid, "deployed")
    values = json.loads(kube.helm(major, "get", "values", tid, "-n", ns_name, "-o", "json").stdout)
    assert values["odoo"]["config"]["workers"] == 3  # the SRE's upgrade stands

    forced = asyncio.run(Reconciler(tenants.ctx).ensure(tid, force=True))
    assert (forced.outcome, forced.steps) == (Outcome.UPGRADED, ["unmanaged -> upgrade"])
    values = json.loads(kube.helm(major, "get", "values", tid, "-n", ns_name, "-o", "json").stdout)
    assert values["odoo"]["config"]["workers"] == 2


@helm4_only
def test_hand_upgrade_that_failed_is_reported_as_unmanaged_and_kept(
    kube: Cluster, major: int, tenant_id: str, tmp_path: Path
) -> None:
    """Seen on the real node: without --force, ensure rolled back a failed revision an SRE
    had made by hand. A failed hand revision is a hand change like any other."""
    tid = tenant_id
    tenants = make_tenants(kube, major)
    asyncio.run(tenants.create(TenantSpec.parse({"id": tid, "admin_email": "a@handx.example"})))
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps(UNSCHEDULABLE))
    assert hand_upgrade(kube, major, tid, "-f", str(bad), "--timeout", "12s").returncode != 0

    hand_revision_left_alone(tenants, kube, tid, "failed")

    forced = asyncio.run(Reconciler(tenants.ctx).ensure(tid, force=True))
    assert (forced.outcome, forced.steps) == (Outcome.UPGRADED, ["unmanaged -> upgrade"])
    statuses = release_statuses(kube, tid)
    assert statuses[max(statuses)] == "deployed"
    assert asyncio.run(tenants.get(tid)).status.reason in ("InstallSucceeded", "UpgradeSucceeded")
    assert asyncio.run(Reconciler(tenants.ctx).ensure(tid)).outcome is Outcome.UNCHANGED


# -- issue 22, point 14: remediation finishes when a StatefulSet pod is stuck ---------------

#: Overrides whose pods no node selects: PostgreSQL's pod of that revision stays Pending.
NOWHERE = {"nodeSelector": {"saasodoo.dev/nowhere": "true"}}


def test_stuck_statefulset_pod_of_the_failed_revision_is_replaced_by_the_rollback(
    kube: Cluster, major: int, tenant_id: str
) -> None:
    """The upgrade moves the pods where no node is (as a dropped node pool did on the real
    node): PostgreSQL's StatefulSet replaces its pod by one that stays Pending, the upgrade
    times out. The rollback reverts the template, but the StatefulSet controller never
    replaces a pod that is not Ready (kubernetes#67250), so a plain rollback waits until its
    timeout. The remediation deletes that pod once the rollback's template is in place, and
    the rollback finishes."""
    tid = tenant_id
    ns_name = f"tenant-{tid}"
    tenants = make_tenants(kube, major, timeout="40s")
    reconciler = Reconciler(tenants.ctx)
    rolled_back_after(tenants, tid, "a@stuck.example", {"overrides": NOWHERE})
    statuses = release_statuses(kube, tid)
    assert statuses[2] == "failed" and statuses[3] == "deployed", statuses
    pods = kube.core.list_namespaced_pod(
        ns_name, label_selector="app.kubernetes.io/component=postgresql"
    ).items
    assert [p.status.phase for p in pods] == ["Running"]
    assert not (pods[0].spec.node_selector or {}).get("saasodoo.dev/nowhere")
    assert asyncio.run(tenants.get(tid)).status.reason in ("InstallSucceeded", "UpgradeSucceeded")
    assert asyncio.run(reconciler.ensure(tid)).outcome is Outcome.STALLED
