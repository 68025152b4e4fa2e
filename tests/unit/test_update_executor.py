"""The operator's update executor (saasodoo.operator.updates.UpdateExecutor) over small fakes:
the controller records what is reported, the cluster's answers per step are given by the test
(``observe``), and the work started is listed (``start``). The decisions themselves are the
pure core's (tests/unit/test_update_steps.py); this checks the executor's turn: what it writes
before and after each step, when it hands back to the ordinary reconcile, Stalled, force."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from saasodoo.core import updates as up
from saasodoo.core.copies import ABSENT, FAILED_WORK, RUNNING, SUCCEEDED
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import Conflict, SaasodooError, TransientClusterError
from saasodoo.operator.controller import Result
from saasodoo.operator.updates import Proceed, UpdateExecutor, odoo_pods_left

pytestmark = pytest.mark.unit

CHANGE = up.CodeChange(("image",), ("Odoo image a:18.0 -> a:18.0-2",), "a:18.0", "a:18.0-2")


@dataclass
class Reports:
    """The controller as the executor sees it: reports make the object's status."""

    obj: dict[str, Any]
    force: bool = False
    reports: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def report(self, obj: dict[str, Any], **kw: Any) -> Result:
        self.reports.append(kw)
        status = self.obj.setdefault("status", {})
        if kw.get("update") is not None:
            status["update"] = kw["update"]
        if kw.get("reason"):
            status["reason"] = kw["reason"]
        status["outcome"] = kw["outcome"]
        if kw.get("handled_force"):
            self.force = False
        if kw.get("handled_resolved"):
            status.pop("update", None)
            self.resolved = False
        return Result(requeue_after=kw.get("requeue"))

    def event(self, obj: Any, kind: str, reason: str, note: str, action: str) -> None:
        self.events.append((kind, reason, note))

    def force_requested(self, obj: Any) -> bool:
        return self.force

    resolved: bool = False
    patched: list[dict[str, Any]] = field(default_factory=list)

    def update_resolved(self, obj: Any) -> bool:
        return self.resolved

    def patch_status(self, name: str, status: dict[str, Any], previous: Any) -> None:
        self.patched.append(status)
        self.resolved = False

    @staticmethod
    def has_record(ns: Any) -> bool:
        return True

    @property
    def resources(self) -> Reports:
        return self

    def get(self, name: str) -> dict[str, Any]:
        return self.obj


class Executor(UpdateExecutor):
    """The executor with the cluster played by ``answers``: per step, the states its work is
    seen in, one per look (the last one repeats)."""

    def __init__(self, controller: Reports, change: up.CodeChange | None = CHANGE) -> None:
        self.controller = controller  # type: ignore[assignment]
        self.change = change
        self.answers: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        self.started: list[str] = []
        self.begun: set[tuple[str, Any]] = set()
        self.fail_start: dict[str, Any] = {}
        self.changes_asked = 0

    async def change_of(self, spec: Any, ns: Any, suspended: bool) -> up.CodeChange | None:
        self.changes_asked += 1
        return self.change

    def backup_refusal(self, spec: Any, suspended: bool) -> None:
        return None

    def head(self, spec: Any) -> Any:
        return type("Head", (), {"revision": 4, "status": "deployed"})()

    async def observe(
        self, step: str, spec: Any, progress: dict[str, Any], names: dict[str, str]
    ) -> tuple[str, str, dict[str, Any]]:
        if step in (up.DONE, up.STALLED):
            return SUCCEEDED, "", {}
        if (step, progress.get("attempt")) not in self.begun:  # a new attempt: new names
            return ABSENT, "", {}
        seen = self.answers.get(step) or [(SUCCEEDED, "", {})]
        return seen.pop(0) if len(seen) > 1 else seen[0]

    async def start(
        self, step: str, spec: Any, progress: dict[str, Any], names: dict[str, str]
    ) -> None:
        self.started.append(step)
        self.begun.add((step, progress.get("attempt")))
        if step in self.fail_start:
            error = self.fail_start[step]
            raise error if isinstance(error, SaasodooError) else SaasodooError(error)


class Tenants:
    async def settled(self, ns: Any) -> TenantSpec:
        return SPEC

    async def check_change(self, spec: Any, current: Any) -> None:
        return None


SPEC = TenantSpec.parse({"id": "acme", "admin_email": "a@acme.example"})


def tenant(generation: int = 7, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "acme", "uid": "1a2b3c4d-0000", "generation": generation},
            "spec": {}, "status": dict(status)}  # fmt: skip


def executor(obj: dict[str, Any], change: up.CodeChange | None = CHANGE) -> Executor:
    made = Executor(Reports(obj), change)
    made.tenants = Tenants()  # type: ignore[assignment]
    return made


def turn(made: Executor) -> Result | Proceed:
    return asyncio.run(made.step(made.controller.obj, SPEC, object()))  # type: ignore[arg-type]


def update_of(made: Executor) -> dict[str, Any]:
    return dict(made.controller.obj["status"]["update"])


def test_no_code_change_is_the_ordinary_reconcile() -> None:
    made = executor(tenant(), change=None)
    assert turn(made) == Proceed(made.controller.obj)
    assert made.controller.reports == [] and made.started == []


def test_an_update_starts_by_stopping_odoo_and_says_so() -> None:
    made = executor(tenant())
    result = turn(made)
    assert result == Result(requeue_after=5.0)
    progress = update_of(made)
    assert progress["step"] == up.STOP and progress["generation"] == 7
    assert progress["attempt"] == 1 and progress["fromRevision"] == 4
    assert progress["change"] == {"reasons": ["image"], "fromImage": "a:18.0",
                                  "toImage": "a:18.0-2"}  # fmt: skip
    assert made.started == [up.STOP]
    assert made.controller.obj["status"]["reason"] == "UpdateStopping"
    assert ("Normal", "UpdateProgressing", "update started: Odoo image a:18.0 -> a:18.0-2") in (
        made.controller.events
    )


def test_a_good_update_goes_through_every_step_then_hands_back() -> None:
    made = executor(tenant())
    made.answers[up.BACKUP] = [(SUCCEEDED, "", {"backup": "b.zip", "backupJob": "j"})]
    made.answers[up.UPDATE] = [(RUNNING, "", {}),
                               (SUCCEEDED, "", {"result": {"ok": True, "updated": 9}})]  # fmt: skip
    results = [turn(made) for _ in range(8)]
    assert made.started == list(up.FORWARD)
    assert results[-1] == Proceed(made.controller.obj)  # done: the ordinary reconcile goes on
    progress = update_of(made)
    assert progress["step"] == up.DONE and progress["backup"] == "b.zip"
    assert progress["result"] == {"ok": True, "updated": 9} and "finishedAt" in progress
    assert [e for e in made.controller.events if e[1] == "UpdateSucceeded"]
    # Once done for this generation, no update and no comparison of values.
    asked = made.changes_asked
    assert isinstance(turn(made), Proceed) and made.changes_asked == asked


def test_the_update_job_is_recorded_right_after_it_is_created() -> None:
    made = executor(tenant())
    made.answers[up.UPDATE] = [(RUNNING, "", {})]
    for _ in range(4):
        turn(made)
    progress = update_of(made)
    assert progress["step"] == up.UPDATE and progress["work"] == up.UPDATE
    assert progress["job"] == "acme-update-1a2b3c4d-7"


def test_a_failed_module_update_restores_rolls_back_and_stalls_naming_the_backup() -> None:
    made = executor(tenant())
    made.answers[up.BACKUP] = [(SUCCEEDED, "", {"backup": "pre.zip", "backupJob": "j"})]
    made.answers[up.UPDATE] = [(FAILED_WORK, "job acme-update-1a2b3c4d-7 failed: boom", {})]
    results = [turn(made) for _ in range(8)]
    assert made.started == [up.STOP, up.BACKUP, up.UPDATE, up.RESTORE, up.ROLLBACK]
    progress = update_of(made)
    assert progress["step"] == up.STALLED and progress["reverted"] is True
    assert progress["failedStep"] == up.UPDATE
    assert made.controller.reports[-1]["outcome"] == "stalled"
    assert made.controller.obj["status"]["reason"] == "ModuleUpdateFailed"
    message = made.controller.reports[-1]["detail"]
    assert "failed: boom" in message and "pre-update backup pre.zip restored" in message
    assert "rolled back to revision 4" in message
    assert results[-1] == Result(requeue_after=None)
    warnings = [e[1] for e in made.controller.events if e[0] == "Warning"]
    assert warnings == ["ModuleUpdateFailed", "ModuleUpdateFailed"]  # the step, then Stalled
    # Held: the same generation is not tried again, nothing is compared or started.
    asked, started = made.changes_asked, list(made.started)
    assert turn(made) == Result(requeue_after=None)
    assert made.changes_asked == asked and made.started == started


def test_a_stop_that_helm_refuses_rolls_back_without_a_restore() -> None:
    made = executor(tenant())
    made.fail_start[up.STOP] = "helm upgrade failed: quota"
    turn(made)
    turn(made)
    progress = update_of(made)
    assert made.started == [up.STOP, up.ROLLBACK]
    assert progress["step"] == up.STALLED and progress["failedStep"] == up.STOP
    assert made.controller.obj["status"]["reason"] == "UpdateStopFailed"


@pytest.mark.parametrize(
    "error",
    [TransientClusterError("the API server did not answer"),
     Conflict("operating: backup; try again later")],
)  # fmt: skip
def test_a_step_whose_start_meets_a_blip_or_a_lock_is_started_again_not_failed(
    error: SaasodooError,
) -> None:
    """An API error or another operation's lock when a step's work is started is not the
    step's failure (which would roll back and hold the update, or leave a restore half-way):
    the step is started again next turn."""
    made = executor(tenant())
    made.answers[up.BACKUP] = [(SUCCEEDED, "", {"backup": "pre.zip"})]
    made.fail_start[up.UPDATE] = error
    result = None
    for _ in range(5):  # stop, pre-update backup, then the update's start meets the error
        result = turn(made)
        if up.UPDATE in made.started:
            break
    assert result is not None and result.requeue_after is not None
    progress = update_of(made)
    assert progress["step"] == up.UPDATE and "failedStep" not in progress
    assert made.controller.reports[-1]["outcome"] == "progressing"
    assert "trying again" in made.controller.reports[-1]["detail"]
    del made.fail_start[up.UPDATE]
    made.begun.discard((up.UPDATE, progress.get("attempt")))
    turn(made)
    assert made.started.count(up.UPDATE) == 2 and up.RESTORE not in made.started
    assert update_of(made)["step"] != up.STALLED


def test_an_update_under_way_owns_the_tenant() -> None:
    assert up.in_progress({"step": up.UPDATE}) and up.in_progress({"step": up.RESTORE})
    assert not up.in_progress(None) and not up.in_progress({})
    assert not up.in_progress({"step": up.DONE}) and not up.in_progress({"step": up.STALLED})


def stalled_by_a_failed_restore() -> Executor:
    """An update whose ``-u`` failed, then its restore: stalled, Odoo at zero."""
    made = executor(tenant())
    made.answers[up.BACKUP] = [(SUCCEEDED, "", {"backup": "pre.zip"})]
    made.answers[up.UPDATE] = [(FAILED_WORK, "update failed", {})]
    made.answers[up.RESTORE] = [(FAILED_WORK, "restore failed", {})]
    for _ in range(6):
        turn(made)
    return made


def test_a_failed_restore_stalls_without_rollback_and_a_force_retries_it() -> None:
    made = stalled_by_a_failed_restore()
    progress = update_of(made)
    assert progress["reverted"] is False and progress["revertFailedStep"] == up.RESTORE
    assert up.ROLLBACK not in made.started
    assert made.controller.obj["status"]["reason"] == "UpdateRestoreFailed"
    assert turn(made) == Result(requeue_after=None)  # held, whatever the spec
    made.controller.force = True
    made.answers[up.RESTORE] = [(SUCCEEDED, "", {})]
    for _ in range(3):
        turn(made)
    progress = update_of(made)
    assert progress["attempt"] == 2 and progress["reverted"] is True
    assert made.started.count(up.RESTORE) == 2 and made.started[-1] == up.ROLLBACK
    assert made.controller.force is False  # the force was handled once


def test_a_stalled_update_said_resolved_by_hand_hands_back_and_one_under_way_ignores_it() -> None:
    """``saasodoo.dev/update-resolved-at``: a stalled update (here its restore failed: Odoo at
    zero, held whatever the spec) is dropped, the ordinary reconcile follows; set while no
    update is stalled, it is said ignored and marked handled at once (an update stalling
    later is not taken for resolved by it)."""
    made = stalled_by_a_failed_restore()
    assert update_of(made)["step"] == up.STALLED
    assert "update-resolved-at" in made.controller.reports[-1]["detail"]  # the way out
    made.controller.resolved = True
    assert turn(made) == Result(requeue_after=0.1)
    assert "update" not in made.controller.obj["status"] and not made.controller.resolved
    kind, reason, note = made.controller.events[-1]
    assert (kind, reason) == ("Normal", "UpdateResolvedByHand")
    assert "UpdateRestoreFailed; pre-update backup pre.zip" in note
    # under way: the update goes on, the annotation is said ignored and handled
    made = executor(tenant())
    turn(made)
    made.controller.resolved = True
    made.controller.obj["metadata"]["annotations"] = {"saasodoo.dev/update-resolved-at": "t1"}
    started = list(made.started)
    turn(made)
    ignored = [e for e in made.controller.events if e[1] == "UpdateResolvedIgnored"]
    assert ignored == [
        (
            "Warning",
            "UpdateResolvedIgnored",
            "saasodoo.dev/update-resolved-at=t1 ignored: the update is at stop",
        )
    ]
    assert made.controller.patched == [{"lastHandledUpdateResolvedAt": "t1"}]
    assert len(made.started) > len(started) and update_of(made)["step"] != up.STALLED


def test_a_suspended_tenant_is_updated_without_rollout_or_check() -> None:
    obj = tenant()
    obj["spec"]["suspended"] = True
    made = executor(obj)
    made.answers[up.BACKUP] = [(SUCCEEDED, "", {"backup": "pre.zip"})]
    for _ in range(5):
        turn(made)
    assert made.started == [up.STOP, up.BACKUP, up.UPDATE]
    assert update_of(made)["step"] == up.DONE


def test_a_new_generation_after_a_reverted_update_starts_a_new_one() -> None:
    stalled = {"step": up.STALLED, "generation": 7, "attempt": 1, "reverted": True,
               "failedStep": up.UPDATE}  # fmt: skip
    made = executor(tenant(generation=8, update=stalled))
    turn(made)
    progress = update_of(made)
    assert progress["step"] == up.STOP and progress["generation"] == 8
    assert progress["attempt"] == 1 and "failedStep" not in progress


def test_odoo_pods_left_leave_out_jobs_and_finished_pods() -> None:
    pod = type("Pod", (), {})

    def make(name: str, labels: dict[str, str], phase: str = "Running") -> Any:
        found = pod()
        found.name, found.labels, found.phase = name, labels, phase
        return found

    pods = [make("web-1", {}), make("upd", {"job-name": "acme-update-x"}),
            make("cron-1", {}, "Succeeded"), make("cron-2", {}, "Pending")]  # fmt: skip
    assert odoo_pods_left(pods) == ["cron-2", "web-1"]


def test_an_update_does_not_start_while_helm_runs_on_the_release() -> None:
    """A pending head (another operation's helm) is no revision to come back to: the update
    waits, and nothing is started or applied meanwhile."""
    made = executor(tenant())
    made.head = lambda spec: type("Head", (), {"revision": 5, "status": "pending-upgrade"})()  # type: ignore[method-assign]
    result = turn(made)
    assert result is not None and result.requeue_after is not None
    assert made.started == [] and "update" not in made.controller.obj["status"]
    assert made.controller.reports[-1]["outcome"] == "busy"


def test_the_restore_waits_for_the_update_job_s_pod_to_end() -> None:
    """odoo -u's pod outlives its Job's deadline by its grace period: a pod of that Job not
    ended (running or terminating) holds the restore back."""
    pods = [type("Pod", (), {"name": n, "phase": ph})() for n, ph in
            (("u-1", "Running"), ("u-0", "Failed"), ("u-2", "Pending"))]  # fmt: skip
    asked: list[tuple[str, str]] = []

    class Kube:
        def list_pods(self, namespace: str, selector: str) -> list[Any]:
            asked.append((namespace, selector))
            return pods

    made = executor(tenant())
    made.ctx = type("C", (), {"kube": Kube()})()  # type: ignore[assignment]
    assert made.pods_of_job(SPEC.namespace, "acme-update-1a2b3c4d-7") == ["u-1", "u-2"]
    assert asked == [(SPEC.namespace, "job-name=acme-update-1a2b3c4d-7")]


def test_a_deletion_waits_for_the_job_that_writes_the_database() -> None:
    """While odoo -u (or the restore of the pre-update backup) runs, the finalizer's final
    backup would keep a half-done database: the Job that writes is named until it ends."""
    state = {"conditions": [], "pods": ["u-1"]}

    class Kube:
        def read_job(self, namespace: str, name: str) -> Any:
            conditions = [type("C", (), {"type": t, "status": "True"})()
                          for t in state["conditions"]]  # fmt: skip
            return type("Job", (), {"conditions": conditions})()

        def list_pods(self, namespace: str, selector: str) -> list[Any]:
            return [type("Pod", (), {"name": n, "phase": "Running"})() for n in state["pods"]]

    obj = tenant(update={"step": up.UPDATE, "generation": 7, "attempt": 1})
    made = executor(obj)
    made.ctx = type("C", (), {"kube": Kube()})()  # type: ignore[assignment]
    job = up.work_names("acme", "1a2b3c4d-0000", 7)[up.UPDATE]
    assert made.writing_job(obj) == job  # running
    state["conditions"] = ["FailureTarget"]
    assert made.writing_job(obj) == job  # failed, its pod still terminating
    state["pods"] = []
    assert made.writing_job(obj) is None
    assert made.writing_job(tenant(update={"step": up.ROLLOUT})) is None


def test_the_stop_and_the_rollout_wait_for_the_workloads_they_restart() -> None:
    """The stop waits for the workloads its staged revision restarts besides Odoo's (a chart
    version that changes PostgreSQL's pod: the pre-update backup would meet it restarting);
    the rollout for every one. Past the helm timeout, the ones not ready are named."""
    from datetime import UTC, datetime, timedelta

    from saasodoo.core.status import ReleaseInfo, Workload

    now = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    stale = timedelta(minutes=5)
    found: list[Workload] = []
    executor = UpdateExecutor.__new__(UpdateExecutor)
    executor.ctx = type("Ctx", (), {"kube": type("Kube", (), {  # type: ignore[assignment]
        "list_workloads": staticmethod(lambda namespace: {"acme": list(found)})})()})()  # fmt: skip
    young, old = ReleaseInfo(5, "deployed", now - timedelta(seconds=10)), ReleaseInfo(
        5, "deployed", now - timedelta(minutes=6))  # fmt: skip

    def look(head: ReleaseInfo, but: tuple[str, ...] = ()) -> str | None:
        return executor.workloads_not_ready(SPEC, head, now, stale, but=but)

    odoo_at_zero = Workload("Deployment", "acme-odoo", "odoo", 0, 0, 0)
    pg_restarting = Workload("StatefulSet", "acme-postgresql", "postgresql", 1, 0, 0)
    found[:] = [odoo_at_zero, pg_restarting]
    assert look(young, but=("odoo", "cron")) == ""  # waits
    assert look(old, but=("odoo", "cron")) == "StatefulSet/acme-postgresql 0/1"
    found[:] = [Workload("Deployment", "acme-odoo", "odoo", 1, 0, 0),
                Workload("StatefulSet", "acme-postgresql", "postgresql", 1, 1, 1)]  # fmt: skip
    assert look(young, but=("odoo", "cron")) is None  # Odoo's own are not waited for
    assert look(young) == ""  # the rollout waits for Odoo
    found[:] = [odoo_at_zero]  # an external PostgreSQL: nothing else to wait for
    assert look(young, but=("odoo", "cron")) is None
    found[:] = []
    assert look(young) == "" and look(old) == "none found"  # the rollout: no workload at all
