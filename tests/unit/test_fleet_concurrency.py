"""The fleet's concurrency model (``saasodoo.fleet.TenantWorkers``): tenants' reconciles and
upgrades overlap even though each one makes blocking Kubernetes calls, at most
``concurrency`` at once, and cancelling a fleet pass cancels the tenants' work.

The fake Kubernetes adapter blocks the calling thread as the real (synchronous) client does,
until two calls are in flight together (a barrier): tenants run one after the other, as a
single event loop making blocking calls runs them, break the barrier, and the tenants fail.
No wall-clock threshold: the barrier's timeout only bounds a failing run.
"""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from saasodoo.context import Context
from saasodoo.core.reconcile import State
from saasodoo.core.spec import TenantSpec
from saasodoo.fleet import Fleet, FleetTarget, TenantWorkers
from saasodoo.reconciler import EnsureResult, Outcome
from saasodoo.settings import Settings

pytestmark = pytest.mark.unit

IDS = ["t-one", "t-two", "t-three", "t-four"]


class SlowKube:
    """A Kubernetes adapter whose read blocks its thread until ``together`` reads are in
    flight at once; it notes the most in flight and the threads that read."""

    def __init__(self, together: int) -> None:
        self.barrier = threading.Barrier(together, timeout=30)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.threads: set[str] = set()

    def read_namespace(self, name: str) -> None:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.threads.add(threading.current_thread().name)
        try:
            self.barrier.wait()  # BrokenBarrierError unless another tenant reads meanwhile
        finally:
            with self.lock:
                self.in_flight -= 1


def subject(tid: str) -> Any:
    spec = TenantSpec.parse({"id": tid, "admin_email": f"a@{tid}.example.com"})
    return SimpleNamespace(
        spec=spec, namespace=SimpleNamespace(labels={}), suspended=False,
        observation=SimpleNamespace(lock=None, release=None),
    )  # fmt: skip


def fleet_with(kube: SlowKube, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    fleet = Fleet(Context(Settings(), kube=kube))  # type: ignore[arg-type]
    subjects = [subject(tid) for tid in IDS]

    async def all_subjects(*_: Any) -> list[Any]:
        return subjects

    monkeypatch.setattr(fleet, "subjects", all_subjects)
    monkeypatch.setattr(fleet.reconciler, "state_of", lambda s: State.OUT_OF_DATE)
    return fleet


def test_reconciles_with_blocking_kube_calls_overlap_two_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube = SlowKube(together=2)
    fleet = fleet_with(kube, monkeypatch)

    async def ensure(tenant_id: str, *, force: bool = False) -> EnsureResult:
        kube.read_namespace(f"tenant-{tenant_id}")  # blocking, as the real client
        return EnsureResult(tenant_id, Outcome.UPGRADED)

    monkeypatch.setattr(fleet.reconciler, "ensure", ensure)
    summary = asyncio.run(fleet.ensure_all(concurrency=2))
    assert [(r.tenant_id, r.outcome) for r in summary.results] == [
        (tid, Outcome.UPGRADED) for tid in sorted(IDS)
    ]
    assert kube.peak == 2  # overlapped, and never more than the concurrency
    assert len(kube.threads) == 2 and threading.current_thread().name not in kube.threads


def test_fleet_upgrade_runs_tenants_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = SlowKube(together=2)
    fleet = fleet_with(kube, monkeypatch)

    async def upgrade_one(subject: Any, *_: Any) -> EnsureResult:
        kube.read_namespace(subject.spec.namespace)
        return EnsureResult(subject.spec.id, Outcome.UPGRADED)

    monkeypatch.setattr(fleet, "upgrade_tenant", upgrade_one)
    summary = asyncio.run(fleet.upgrade(FleetTarget(), canaries=0, concurrency=2))
    assert summary.ok and summary.count(Outcome.UPGRADED) == len(IDS)
    assert kube.peak == 2


def test_cancelling_the_caller_cancels_the_tenants_work() -> None:
    started = threading.Event()
    cancelled = threading.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # a helm subprocess, say: until cancelled
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def caller() -> None:
        async with TenantWorkers(1) as workers:
            task = asyncio.ensure_future(workers.run(work))
            await asyncio.to_thread(started.wait, 30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(caller())
    assert cancelled.is_set()


def test_a_cancel_after_the_work_ended_is_a_cancel_not_an_error() -> None:
    """The work ends and its thread's loop closes while the caller's loop is busy; the caller
    is cancelled before it sees the result: CancelledError, not 'Event loop is closed'."""

    async def work() -> str:
        return "done"

    async def caller() -> None:
        async with TenantWorkers(1) as workers:
            task = asyncio.ensure_future(workers.run(work))
            await asyncio.sleep(0)  # submitted; now block this loop until the thread is idle
            workers.pool.submit(lambda: None).result(timeout=30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(caller())
