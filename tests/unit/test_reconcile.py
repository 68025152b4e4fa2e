"""determine_state and next_action: the whole decision table of ensure, without a cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from saasodoo.core.reconcile import (
    Action,
    Applied,
    OperationLock,
    ReconcileObservation,
    State,
    Unfinished,
    determine_state,
    next_action,
    parse_duration,
)
from saasodoo.core.status import ReleaseInfo

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
STALE = timedelta(minutes=12)
OLD = NOW - timedelta(hours=1)
YOUNG = NOW - timedelta(seconds=30)
LIVE = OperationLock("host:1", "update", "d-new", NOW + timedelta(minutes=5), alive=True)
DEAD = OperationLock("host:1", "create", "d-new", NOW + timedelta(minutes=5), alive=False)
EXPIRED = OperationLock("other:1", "update", "d-new", NOW - timedelta(seconds=1), alive=None)
APPLIED = Applied("d1", 3)
REMOTE = OperationLock("other:1", "update", "d-new", NOW + timedelta(minutes=5), alive=None)
#: The revision 4 that saasodoo's failed update (or rollback) left.
LEFT = Unfinished(4, "update", "d-new")
LEFT_BY_ROLLBACK = Unfinished(4, "rollback to 3", "d1")


def rel(revision: int, status: str = "deployed", updated: datetime = OLD) -> ReleaseInfo:
    return ReleaseInfo(revision=revision, status=status, updated=updated)


def obs(
    release: ReleaseInfo | None,
    *,
    desired: str = "d1",
    applied: Applied | None = APPLIED,
    failed: str | None = None,
    lock: OperationLock | None = None,
    unfinished: Unfinished | None = None,
    last_good: int | None = None,
    phase: str | None = "Active",
) -> ReconcileObservation:
    return ReconcileObservation(
        tenant_id="t1",
        namespace_phase=phase,
        release=release,
        desired_digest=desired,
        applied=applied,
        failed_digest=failed,
        lock=lock,
        unfinished=unfinished,
        last_good_revision=last_good,
    )


@pytest.mark.parametrize(
    ("observation", "state"),
    [
        pytest.param(obs(rel(3)), State.IN_SYNC, id="same digest, same revision"),
        pytest.param(obs(rel(3), desired="d2"), State.OUT_OF_DATE, id="spec or chart changed"),
        pytest.param(
            obs(rel(3), desired="d2", failed="d2"), State.STALLED, id="digest failed before"
        ),
        pytest.param(
            obs(rel(3), desired="d1", failed="d1"), State.IN_SYNC, id="in sync beats held"
        ),
        pytest.param(obs(rel(4)), State.UNMANAGED, id="newer revision made by hand"),
        pytest.param(obs(rel(2)), State.UNMANAGED, id="older revision: reinstalled by hand"),
        pytest.param(obs(rel(4), desired="d2"), State.UNMANAGED, id="drift wins over change"),
        pytest.param(obs(rel(1), applied=None), State.UNRECORDED, id="tenant from before"),
        pytest.param(obs(None, applied=None), State.ABSENT, id="no release"),
        pytest.param(obs(None, lock=DEAD, applied=None), State.ABSENT, id="crash pre-install"),
        pytest.param(obs(None, lock=LIVE, applied=None), State.OPERATING, id="create running"),
        pytest.param(obs(rel(3), lock=LIVE), State.OPERATING, id="live lock"),
        pytest.param(obs(rel(3), lock=REMOTE), State.OPERATING, id="other host, not expired"),
        pytest.param(
            obs(rel(1, "pending-install"), lock=DEAD, applied=None),
            State.LOCKED,
            id="killed during install",
        ),
        pytest.param(
            obs(rel(4, "pending-upgrade", YOUNG), lock=EXPIRED), State.LOCKED, id="lock expired"
        ),
        pytest.param(
            obs(rel(4, "pending-upgrade", YOUNG)), State.IN_PROGRESS, id="hand upgrade running"
        ),
        pytest.param(
            obs(rel(4, "pending-rollback", OLD)), State.UNMANAGED_LOCKED, id="old hand pending"
        ),
        pytest.param(
            obs(rel(4, "pending-upgrade", OLD), unfinished=LEFT), State.LOCKED, id="old, ours"
        ),
        pytest.param(
            obs(rel(4, "pending-upgrade", YOUNG), unfinished=LEFT),
            State.IN_PROGRESS,
            id="ours cancelled, helm may still run",
        ),
        pytest.param(
            obs(rel(4, "failed"), last_good=3, unfinished=LEFT),
            State.FAILED_UPGRADE,
            id="our upgrade failed",
        ),
        pytest.param(
            obs(rel(4, "failed"), last_good=3, lock=DEAD),
            State.FAILED_UPGRADE,
            id="our killed upgrade, unlocked",
        ),
        pytest.param(obs(rel(4, "failed"), last_good=3), State.UNMANAGED, id="hand upgrade failed"),
        pytest.param(
            obs(rel(4, "failed"), last_good=3, unfinished=Unfinished(2, "update", "d0")),
            State.UNMANAGED,
            id="hand upgrade failed after a failure of ours",
        ),
        pytest.param(
            obs(rel(5, "failed"), last_good=3, applied=Applied("d1", 4)),
            State.UNMANAGED,
            id="hand rollback failed",
        ),
        pytest.param(
            obs(rel(4, "failed"), last_good=3, unfinished=LEFT_BY_ROLLBACK),
            State.ROLLBACK_FAILED,
            id="our rollback failed",
        ),
        pytest.param(
            obs(rel(4, "failed"), last_good=3, unfinished=LEFT_BY_ROLLBACK, lock=DEAD),
            State.FAILED_UPGRADE,
            id="our rollback killed: rolled back again",
        ),
        pytest.param(
            obs(rel(1, "failed"), applied=None, unfinished=Unfinished(1, "create", "d1")),
            State.FAILED_INSTALL,
            id="our install failed",
        ),
        pytest.param(
            obs(rel(1, "failed"), applied=None), State.UNMANAGED, id="hand install failed"
        ),
        pytest.param(
            obs(rel(4), lock=DEAD), State.INTERRUPTED, id="killed after helm, before record"
        ),
        pytest.param(
            obs(rel(1), lock=DEAD, applied=None), State.INTERRUPTED, id="killed after install"
        ),
        pytest.param(obs(rel(3), lock=DEAD), State.IN_SYNC, id="stale lock, nothing ran"),
        pytest.param(obs(rel(3), phase="Terminating"), State.DELETING, id="terminating"),
        pytest.param(obs(rel(3, "uninstalling")), State.DELETING, id="uninstalling"),
        pytest.param(obs(rel(3, "superseded")), State.UNKNOWN, id="odd head status"),
    ],
)
def test_determine_state(observation: ReconcileObservation, state: State) -> None:
    assert determine_state(observation, NOW, STALE) is state


@pytest.mark.parametrize(
    ("state", "force", "action"),
    [
        (State.IN_SYNC, False, Action.NONE),
        (State.IN_SYNC, True, Action.NONE),
        (State.ABSENT, False, Action.INSTALL),
        (State.OUT_OF_DATE, False, Action.UPGRADE),
        (State.UNRECORDED, False, Action.UPGRADE),
        (State.UNMANAGED, False, Action.REPORT),
        (State.UNMANAGED, True, Action.UPGRADE),
        (State.UNMANAGED_LOCKED, False, Action.REPORT),
        (State.UNMANAGED_LOCKED, True, Action.UNLOCK),
        (State.ROLLBACK_FAILED, False, Action.REPORT),
        (State.ROLLBACK_FAILED, True, Action.ROLLBACK),
        (State.STALLED, False, Action.REPORT),
        (State.STALLED, True, Action.UPGRADE),
        (State.LOCKED, False, Action.UNLOCK),
        (State.FAILED_UPGRADE, False, Action.ROLLBACK),
        (State.FAILED_INSTALL, False, Action.REINSTALL),
        (State.INTERRUPTED, False, Action.ADOPT),
        (State.OPERATING, True, Action.WAIT),
        (State.IN_PROGRESS, False, Action.WAIT),
        (State.DELETING, True, Action.WAIT),
        (State.UNKNOWN, True, Action.REPORT),
    ],
)
def test_next_action(state: State, force: bool, action: Action) -> None:
    assert next_action(state, force=force) is action


def test_every_state_has_an_action() -> None:
    for state in State:
        assert isinstance(next_action(state), Action)
        assert isinstance(next_action(state, force=True), Action)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300), ("1h30m", 5400), ("90s", 90), ("300", 300), ("1.5s", 1.5), ("250ms", 0.25)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "1h-"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
