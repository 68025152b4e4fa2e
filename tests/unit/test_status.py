"""Status classification from what the cluster shows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from saasodoo.core.status import (
    Observation,
    OperationLock,
    Phase,
    ReleaseInfo,
    SetPod,
    StatefulSetPods,
    Workload,
    classify,
    stuck_pods,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
OLD = NOW - timedelta(hours=2)
ODOO_READY = Workload("Deployment", "acme-odoo", "odoo", desired=1, ready=1, updated=1)
ODOO_WAIT = Workload("Deployment", "acme-odoo", "odoo", desired=1, ready=0, updated=1)
ODOO_ZERO = Workload("Deployment", "acme-odoo", "odoo", desired=0, ready=0, updated=0)
PG_READY = Workload("StatefulSet", "acme-postgresql", "postgresql", desired=1, ready=1, updated=1)


def rel(status: str = "deployed", revision: int = 1, updated: datetime = OLD) -> ReleaseInfo:
    return ReleaseInfo(revision=revision, status=status, updated=updated, description="boom")


@pytest.mark.parametrize(
    ("ns_phase", "release", "workloads", "phase", "reason"),
    [
        ("Active", None, (), Phase.CREATING, "release not installed yet"),
        ("Active", rel("pending-install"), (), Phase.CREATING, "helm install in progress"),
        ("Active", rel(), (ODOO_READY, PG_READY), Phase.READY, "all workloads ready"),
        ("Active", rel(updated=NOW), (ODOO_WAIT, PG_READY), Phase.CREATING, "starting: "),
        ("Active", rel(), (ODOO_WAIT, PG_READY), Phase.DEGRADED, "acme-odoo 0/1 ready"),
        (
            "Active",
            rel(revision=2, updated=NOW),
            (ODOO_WAIT, PG_READY),
            Phase.DEGRADED,
            "acme-odoo 0/1 ready",
        ),
        ("Active", rel(), (ODOO_ZERO, PG_READY), Phase.SUSPENDED, "scaled to zero"),
        ("Active", rel("failed"), (ODOO_READY,), Phase.FAILED, "revision 1 failed: boom"),
        ("Active", rel("pending-upgrade"), (ODOO_READY,), Phase.DEGRADED, "upgrade in progress"),
        ("Active", rel("pending-rollback"), (ODOO_READY,), Phase.DEGRADED, "rollback in progress"),
        ("Active", rel("uninstalling"), (ODOO_READY,), Phase.DELETING, "being deleted"),
        ("Terminating", rel(), (ODOO_READY,), Phase.DELETING, "being deleted"),
        ("Active", rel(), (), Phase.DEGRADED, "no workloads found"),
    ],  # fmt: skip
)
def test_classify(
    ns_phase: str,
    release: ReleaseInfo | None,
    workloads: tuple[Workload, ...],
    phase: Phase,
    reason: str,
) -> None:
    status = classify(Observation("acme", ns_phase, release, workloads), NOW)
    assert status.phase is phase
    assert reason in status.reason, status.reason


def test_reasons_name_the_waiting_workload() -> None:
    status = classify(Observation("acme", "Active", rel(), (ODOO_WAIT, PG_READY)), NOW)
    assert "deployment/acme-odoo 0/1 ready" in status.reason
    failed = classify(Observation("acme", "Active", rel("failed"), ()), NOW)
    assert "boom" in failed.reason


# -- issue 22, point 14: a lock older than its operation's timeout is never "in progress" ----

TIMEOUT = timedelta(minutes=12)
EXPIRES = NOW - timedelta(minutes=20)


def lock(alive: bool | None, expires: datetime) -> OperationLock:
    return OperationLock("other:1", "rollback to 3", "d", expires, alive=alive)


@pytest.mark.parametrize(
    ("release", "held", "reason"),
    [
        (
            rel("pending-rollback"),
            lock(None, EXPIRES),
            "locked (operation 'rollback to 3' expired at 2026-01-01T11:40:00+00:00)",
        ),
        (
            rel("pending-upgrade", updated=NOW),
            lock(False, NOW + TIMEOUT),
            "locked (operation 'rollback to 3' ended (its process other:1 is gone))",
        ),
        (
            rel("pending-rollback", updated=OLD),
            None,
            "locked (pending-rollback since 2026-01-01T10:00:00+00:00, operation expired at "
            "2026-01-01T10:12:00+00:00)",
        ),
        (rel("pending-install", updated=OLD), None, "locked (pending-install since"),
        (rel("pending-rollback", updated=NOW), lock(None, NOW + TIMEOUT), "rollback in progress"),
        (rel("pending-rollback", updated=NOW), lock(True, NOW + TIMEOUT), "rollback in progress"),
        (rel("pending-upgrade", updated=NOW - timedelta(minutes=5)), None, "upgrade in progress"),
    ],  # fmt: skip
)
def test_an_expired_lock_is_shown_locked_not_in_progress(
    release: ReleaseInfo, held: OperationLock | None, reason: str
) -> None:
    obs = Observation("acme", "Active", release, (ODOO_READY,), held, TIMEOUT)
    status = classify(obs, NOW)
    assert reason in status.reason, status.reason
    if reason.startswith("locked"):
        assert status.phase is Phase.DEGRADED and "in progress" not in status.reason


def sts(*pods: SetPod, observed: bool = True, ordered: bool = True) -> StatefulSetPods:
    return StatefulSetPods("acme-pg", "rev-good", observed, ordered, pods)


@pytest.mark.parametrize(
    ("sets", "stuck"),
    [
        ((sts(SetPod("pg-0", "rev-bad", ready=False)),), ["pg-0"]),
        ((sts(SetPod("pg-0", "rev-bad", ready=True)),), []),  # Ready: the controller moves on
        ((sts(SetPod("pg-0", "rev-good", ready=False)),), []),  # the template's: starting
        ((sts(SetPod("pg-0", "rev-bad", ready=False, deleting=True)),), []),
        ((sts(SetPod("pg-0", "rev-bad", ready=False), observed=False),), []),  # not seen yet
        ((sts(SetPod("pg-0", "rev-bad", ready=False), ordered=False),), []),  # Parallel
    ],
)
def test_stuck_pods_are_those_the_statefulset_controller_never_replaces(
    sets: tuple[StatefulSetPods, ...], stuck: list[str]
) -> None:
    assert stuck_pods(sets) == stuck


def test_a_hand_rollback_to_a_suspended_revision_is_not_shown_as_suspended() -> None:
    """An SRE's `helm rollback` to a revision where Odoo was scaled to zero: the head is not
    the revision saasodoo applied, so every view says it was changed by hand (#23)."""
    obs = Observation("acme", "Active", rel(revision=3), (ODOO_ZERO, PG_READY),
                      saasodoo_revisions=(2,))  # fmt: skip
    seen = classify(obs, NOW)
    assert seen.phase is Phase.DEGRADED
    assert "changed by hand: revision 3 is not saasodoo's (its last is 2)" in seen.reason
    # saasodoo's own head (applied, or the one its failed operation left): as before
    mine = classify(replace(obs, saasodoo_revisions=(3,)), NOW)
    assert mine.phase is Phase.SUSPENDED
    unknown = classify(replace(obs, saasodoo_revisions=()), NOW)
    assert unknown.phase is Phase.SUSPENDED  # nothing recorded: no claim either way
