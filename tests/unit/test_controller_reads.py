"""What one reconcile turn of the operator (saasodoo.operator.controller) asks the Kubernetes
API, over the fakes of tests/fakes.py: each object is read at most once per turn where its
answer cannot have changed (the OdooTenant, the namespace, the release's revisions), and
once more only after helm ran (the record it wrote, the new revision); labels the namespace
has already are not written again. The counts a fleet upgrade pays per tenant (issue: 21
requests a turn, of which the OdooTenant 4 and the namespace 3-4)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from saasodoo.adapters.kube import Namespace
from saasodoo.adapters.resources import TenantResources
from saasodoo.context import Context
from saasodoo.core.crd import FINALIZER, OWNER_LABEL, from_tenant_spec, owner_label
from saasodoo.core.spec import TenantSpec
from saasodoo.core.status import ReleaseInfo, Workload
from saasodoo.operator.controller import TenantController
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.fakes import FakeHelm, FakeKube

pytestmark = pytest.mark.unit

SETTINGS = Settings(base_domain="odoo.test")
SPEC = TenantSpec.parse(
    {
        "id": "acme",
        "admin_email": "a@acme.example",
        "overrides": {"odoo": {"config": {"workers": 2}}},
        "created_with": {"persistence.storageClass": None, "nodePool": None},
    }
)


@dataclass
class Counted(FakeKube):
    """FakeKube that names each read as well: ``asked`` counts them by kind (a call of the
    adapter's: ``list_workloads`` is two requests to the API)."""

    asked: Counter[str] = field(default_factory=Counter)

    def read_namespace(self, name: str) -> Namespace | None:
        self.asked["read namespace"] += 1
        return super().read_namespace(name)

    def list_release_heads(
        self, namespace: str | None = None, *, explain_failed: bool = False
    ) -> dict[tuple[str, str], ReleaseInfo]:
        self.asked["list release heads"] += 1
        return super().list_release_heads(namespace, explain_failed=explain_failed)

    def release_revisions(self, namespace: str, release: str) -> list[ReleaseInfo]:
        self.asked["list release revisions"] += 1
        return super().release_revisions(namespace, release)

    def release_revision(self, namespace: str, release: str, revision: int) -> ReleaseInfo | None:
        self.asked["read release revision"] += 1
        return next((r for r in super().release_revisions(namespace, release)
                     if r.revision == revision), None)  # fmt: skip

    def release_values(self, namespace: str, release: str, revision: int) -> dict[str, Any] | None:
        self.asked["read release values"] += 1
        return super().release_values(namespace, release, revision)

    def list_workloads(self, namespace: str | None = None) -> dict[str, list[Workload]]:
        self.asked["list workloads"] += 1
        return {}

    def mend_replicas_ownership(self, namespace: str) -> list[str]:
        self.asked["list deployments"] += 1
        return super().mend_replicas_ownership(namespace)

    def patch_namespace(self, name: str, **kw: Any) -> None:
        self.asked["patch namespace"] += 1
        super().patch_namespace(name, **kw)

    def call_json(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: Any = None,
    ) -> Any:
        if path.endswith("/events"):
            self.asked["event"] += 1
            return {}
        if path.endswith("/services"):
            self.asked["list services"] += 1
            return {"items": []}
        kind = "status" if path.endswith("/status") else "odootenant"
        self.asked[f"{method} {kind}"] += 1
        return super().call_json(method, path, query, headers, body)


def tenant() -> tuple[Counted, TenantController]:
    """``acme`` installed (revision 1, its record on its OdooTenant), its OdooTenant
    reconciled once: finalizer, owner label, Ready at generation 1."""
    kube = Counted()
    helm = FakeHelm(SETTINGS)
    kube.helm = helm
    spec = from_tenant_spec(SPEC, suspended=False, owner=None)
    kube.odootenants["acme"] = {
        "metadata": {"name": "acme", "generation": 1, "finalizers": [FINALIZER],
                     "labels": {OWNER_LABEL: owner_label(None)}, "resourceVersion": "1"},
        "spec": spec, "status": {},
    }  # fmt: skip
    ctx = Context(SETTINGS, helm=helm, kube=kube)
    asyncio.run(Tenants(ctx).create(SPEC))
    controller = TenantController(ctx, TenantResources(kube, SETTINGS.system_namespace))
    asyncio.run(controller.reconcile("acme"))
    return kube, controller


def turn(kube: Counted, controller: TenantController) -> Counter[str]:
    kube.asked.clear()
    asyncio.run(controller.reconcile("acme"))
    return Counter(kube.asked)


def test_a_turn_in_sync_reads_the_odootenant_and_the_namespace_once() -> None:
    kube, controller = tenant()
    asked = turn(kube, controller)
    assert asked["GET odootenant"] == 1 and asked["read namespace"] == 1
    assert asked["list release heads"] == 1 and asked["list workloads"] == 1
    assert not asked["PATCH status"] and not asked["patch namespace"]


def test_a_spec_change_reads_each_object_once_before_helm_and_once_after() -> None:
    kube, controller = tenant()
    obj = kube.odootenants["acme"]
    obj["spec"]["overrides"] = {"odoo": {"config": {"workers": 3}}}
    obj["metadata"]["generation"] = 2
    asked = turn(kube, controller)
    assert kube.helm is not None and len(kube.helm.releases[("tenant-acme", "acme")]) == 2
    record = obj["status"]["record"]
    assert record["applied"]["revision"] == 2 and "operation" not in record
    assert obj["status"]["revision"] == 2 and obj["status"]["observedGeneration"] == 2
    # The OdooTenant: at the turn's start only; the answers of the status writes stand for
    # it after (the record's writes carry the controller's status: StatusRider).
    assert asked["GET odootenant"] == 1
    assert asked["read namespace"] == 1  # its record comes with the OdooTenant
    # The head: the update's code-change check, and before helm (what the call leaves). The
    # applied values are the recorded spec's (same digest): its release record is not read.
    assert asked["list release heads"] == 2 and asked["read release values"] == 0
    # After helm: the revisions once (head and history alike), the new one read.
    assert asked["list release revisions"] == 1 and asked["read release revision"] == 1
    assert asked["list workloads"] == 1  # after helm only; the tenant is not read back
    assert asked["patch namespace"] == 0  # its plan label is the one it has
    # Reconciling with the lock, what was applied, the final status.
    assert asked["PATCH status"] == 3 and asked["event"] == 2
    assert asked["list deployments"] == 1  # helm 4's ownership mend, before helm
    # 14 requests in all to the API (the workloads are two lists, one per kind), 15 with
    # the Services of a Ready tenant's inventory; 34 before each was read once.
    assert sum(asked.values()) == 13


def test_reconciling_rides_on_the_locks_write() -> None:
    """The status a spec change's turn writes with the operation lock (one request) says
    Reconciling at the new generation while the lock is held; the record's write of what
    was applied leaves the lock released and nothing else changed, and the final status
    follows."""
    kube, controller = tenant()
    obj = kube.odootenants["acme"]
    obj["spec"]["overrides"] = {"odoo": {"config": {"workers": 3}}}
    obj["metadata"]["generation"] = 2
    seen: list[dict[str, Any]] = []
    send = kube.call_json

    def spy(method: str, path: str, query: Any, headers: Any, body: Any = None) -> Any:
        if method == "PATCH" and path.endswith("/status"):
            seen.append(body["status"])
        return send(method, path, query, headers, body)

    kube.call_json = spy  # type: ignore[method-assign]
    turn(kube, controller)
    assert len(seen) == 3
    locked, applied, final = seen
    assert "operation" in locked["record"]
    reconciling = {c["type"]: c for c in locked["conditions"]}["Reconciling"]
    assert reconciling["status"] == "True" and reconciling["observedGeneration"] == 2
    # The record alone: a merge patch from the status as read before would drop the rest.
    assert set(applied) == {"record"} and applied["record"]["operation"] is None
    assert obj["status"]["releases"] and obj["status"]["record"]["applied"]["revision"] == 2
    # The fake has no workloads: Ready is Unknown, at the new generation.
    ready = {c["type"]: c for c in final["conditions"]}["Ready"]
    assert ready["observedGeneration"] == 2 and "record" not in final


def test_a_plan_change_writes_the_namespace_label_once() -> None:
    kube, controller = tenant()
    obj = kube.odootenants["acme"]
    obj["spec"]["plan"] = "premium"
    obj["metadata"]["generation"] = 2
    asked = turn(kube, controller)
    assert kube.namespaces["tenant-acme"].labels["saasodoo.dev/plan"] == "premium"
    # With the lock; what was applied compares with the labels as the turn read them.
    assert 1 <= asked["patch namespace"] <= 2


def test_the_applied_values_are_the_recorded_specs_when_their_digest_is_the_applied_one() -> None:
    """``Tenants.code_change_of``: a new image is seen from the recorded spec's values (their
    digest is the applied one: no read of the release record); once the recorded spec is not
    what was applied (a crash after the lock's write), the release record is read."""
    kube, controller = tenant()
    tenants, record = controller.tenants, controller.ctx.record
    image = {"odoo": {"image": {"tag": "18.0-20250218"}}}
    new = SPEC.model_copy(update={"overrides": image})

    def change() -> Any:
        ns = record.namespace("acme")
        kube.asked.clear()
        return asyncio.run(tenants.code_change_of(new, ns, False, "1.0.0"))

    seen = change()
    assert seen is not None and "image" in seen.reasons
    assert kube.asked["read release values"] == 0 and kube.asked["list release heads"] == 1
    record.write_spec(SPEC.model_copy(update={"plan": "premium"}))  # not what was applied
    again = change()
    assert again is not None and again.reasons == seen.reasons
    assert kube.asked["read release values"] == 1
