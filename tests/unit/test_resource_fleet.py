"""The operator's fleet upgrade (saasodoo.fleet.ResourceFleet.upgrade) with the OdooTenants
played by a small fake: a canary the operator leaves Stalled stops the rollout, as a failed
one does; a Ready one lets it go on."""

from __future__ import annotations

from typing import Any

import pytest

from saasodoo.fleet import FleetTarget, ResourceFleet
from saasodoo.reconciler import Outcome

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
