"""The operator's fleet upgrade (saasodoo.fleet.ResourceFleet.upgrade) with the OdooTenants
played by a small fake: a canary the operator leaves Stalled stops the rollout, as a failed
one does; a Ready one lets it go on. Also with the status the operator writes for an update
through odoo -u (saasodoo.operator.updates): a canary whose update failed and was undone is
Stalled, so the fleet stops before the other tenants get the new image."""

from __future__ import annotations

from typing import Any

import pytest

from saasodoo.context import Context
from saasodoo.fleet import FleetTarget, ResourceFleet
from saasodoo.operator.controller import TenantController
from saasodoo.operator.updates import UpdateExecutor
from saasodoo.reconciler import Outcome
from saasodoo.settings import Settings
from tests.fakes import FakeHelm, FakeKube

pytestmark = pytest.mark.unit


class Tenants:
    """OdooTenants whose update the operator answers at once: Ready, or Stalled for those
    in ``stalls``."""

    def __init__(self, ids: list[str], stalls: set[str]) -> None:
        self.objects = {tid: self.obj(tid, 1, ready=True) for tid in ids}
        self.stalls = stalls
        self.updated: list[str] = []

    @staticmethod
    def obj(tid: str, generation: int, *, ready: bool) -> dict[str, Any]:
        reason = "Succeeded" if ready else "UpgradeFailed"
        conditions = [{"type": "Ready", "status": "True" if ready else "False",
                       "reason": reason, "message": "m"}]  # fmt: skip
        if not ready:
            conditions.append({"type": "Stalled", "status": "True", "reason": "UpgradeFailed",
                               "message": "m"})  # fmt: skip
        return {"metadata": {"name": tid, "generation": generation},
                "spec": {"overrides": {}},
                "status": {"observedGeneration": generation, "conditions": conditions}}  # fmt: skip

    def list(self) -> list[Any]:
        return [type("View", (), {"id": tid})() for tid in self.objects]

    def read(self, tid: str) -> dict[str, Any]:
        return self.objects[tid]

    async def update(self, tid: str, **changes: Any) -> None:
        self.updated.append(tid)
        generation = self.objects[tid]["metadata"]["generation"] + 1
        self.objects[tid] = self.obj(tid, generation, ready=tid not in self.stalls)


def upgrade(tenants: Tenants) -> Any:
    import asyncio

    fleet = ResourceFleet(tenants)  # type: ignore[arg-type]
    target = FleetTarget(overrides={"commonAnnotations": {"saasodoo.dev/probe": "1"}})
    return asyncio.run(fleet.upgrade(target, canaries=1, timeout=5))


def test_a_stalled_canary_stops_the_fleet_upgrade() -> None:
    tenants = Tenants(["a", "b", "c"], stalls={"a"})
    summary = upgrade(tenants)
    assert tenants.updated == ["a"]
    assert [r.outcome for r in summary.results] == [Outcome.STALLED, Outcome.SKIPPED,
                                                    Outcome.SKIPPED]  # fmt: skip
    assert summary.stopped == "a canary failed"


def test_ready_canaries_let_the_rollout_go_on() -> None:
    tenants = Tenants(["a", "b", "c"], stalls=set())
    summary = upgrade(tenants)
    assert tenants.updated == ["a", "b", "c"] and summary.stopped is None


class UpdatingTenants(Tenants):
    """OdooTenants whose update is one the operator's update executor ran: the status is the
    one ``TenantController.report`` writes for it (``UpdateExecutor.stalled`` when the
    tenant's ``odoo -u`` failed and was undone, the ordinary success otherwise)."""

    def __init__(self, ids: list[str], stalls: set[str]) -> None:
        super().__init__(ids, stalls)
        settings = Settings(base_domain="odoo.test")
        ctx = Context(settings, helm=FakeHelm(settings), kube=FakeKube())
        self.controller = TenantController(ctx, self)  # type: ignore[arg-type]
        self.executor = UpdateExecutor(self.controller)

    namespace = "saasodoo-system"

    def get(self, name: str) -> dict[str, Any]:
        return self.objects[name]

    def patch_status(self, name: str, status: dict[str, Any], previous: Any = None) -> None:
        self.objects[name]["status"] = status

    def event(self, *args: Any) -> None:
        pass

    async def update(self, tid: str, **changes: Any) -> None:
        self.updated.append(tid)
        obj = self.objects[tid]
        obj["metadata"]["generation"] += 1
        if tid not in self.stalls:
            self.controller.report(obj, outcome="upgraded", detail="updated",
                                   workloads_ready=True)  # fmt: skip
            return
        progress = {"step": "stalled", "generation": obj["metadata"]["generation"],
                    "failedStep": "update", "message": "job x-update failed: RuntimeError",
                    "backup": "20261207T010000Z-pre-update.zip", "fromRevision": 3,
                    "reverted": True}  # fmt: skip
        self.executor.stalled(obj, progress, announce=True)


def test_a_canary_whose_update_failed_and_was_undone_stops_the_fleet() -> None:
    tenants = UpdatingTenants(["a", "b", "c"], stalls={"a"})
    summary = upgrade(tenants)
    assert tenants.updated == ["a"]
    assert [r.outcome for r in summary.results] == [Outcome.STALLED, Outcome.SKIPPED,
                                                    Outcome.SKIPPED]  # fmt: skip
    assert summary.stopped == "a canary failed"
    assert "pre-update backup 20261207T010000Z-pre-update.zip restored" in (
        summary.results[0].detail
    )
    stalled = [c for c in tenants.objects["a"]["status"]["conditions"] if c["type"] == "Stalled"]
    assert stalled[0]["reason"] == "ModuleUpdateFailed"


def test_updates_that_pass_let_the_fleet_go_on() -> None:
    tenants = UpdatingTenants(["a", "b", "c"], stalls=set())
    summary = upgrade(tenants)
    assert tenants.updated == ["a", "b", "c"] and summary.stopped is None


def test_an_update_under_way_is_followed_past_the_helm_timeout() -> None:
    """A new image is an update through odoo -u (backup, -u, rollout): longer than one helm
    timeout. While status.update is at a step, follow keeps waiting; a tenant that is not
    updating times out as before."""
    reads: list[int] = []
    updating = Tenants.obj("a", 2, ready=False)
    unknown = {"type": "Ready", "status": "Unknown", "reason": "UpdatingModules",
               "message": "odoo -u"}  # fmt: skip
    updating["status"] = {"observedGeneration": 1, "update": {"step": "update"},
                          "conditions": [unknown]}  # fmt: skip
    done = Tenants.obj("a", 2, ready=True)

    class Slow(Tenants):
        def read(self, tid: str) -> dict[str, Any]:
            reads.append(1)
            return updating if len(reads) < 4 else done

    fleet = ResourceFleet(Slow(["a"], set()))  # type: ignore[arg-type]
    result = fleet.follow("a", timeout=0)
    assert result.outcome is Outcome.UPGRADED and len(reads) == 4
    plain = Tenants.obj("a", 2, ready=False)
    plain["status"] = {"observedGeneration": 1, "conditions": []}
    still = ResourceFleet(type("One", (Tenants,), {"read": lambda self, tid: plain})(["a"], set()))
    assert still.follow("a", timeout=0).outcome is Outcome.FAILED  # type: ignore[arg-type]
