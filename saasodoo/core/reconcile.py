"""Reconcile, the pure part: what state a tenant's release is in, and what to do next.

Modelled on Flux's helm-controller: *observe* the release (head revision and status),
what saasodoo last applied (digest and revision, in the tenant's record) and who
operates on it now (the operation lock, in the record too); *classify* that into one
``State``; derive the next ``Action`` from the state alone; act; record; observe again.
``Reconciler.ensure`` in ``saasodoo.reconciler`` runs that loop a bounded number of times
and ends in a named outcome.

The digest (``TenantValues.digest``: chart version + computed values) decides whether
anything changed: equal digests and an unchanged revision mean no helm call at all.

SREs and hand changes. saasodoo records the revision its last operation produced, and the
revision an operation of its own left failed or pending (``Unfinished``). One rule for
every other revision (``helm rollback`` or ``helm upgrade`` by hand, deployed, failed or
left pending): the release is **unmanaged** (Flux's word: saasodoo no longer knows what it
is): ensure reports it and leaves it alone, never undoing an SRE's change, failed or not;
``force`` reconciles it to the spec (a hand revision left pending is unlocked first).
When an upgrade failed and was rolled back, the digest that failed is remembered and not
retried (**stalled**, Flux's word for retries exhausted) until the spec changes or
``force`` is given. A rollback of saasodoo's that failed is not run again either
(``ROLLBACK_FAILED``, reported as stalled with helm's reason) until ``force``.

The state names follow Flux's ``internal/reconcile/state.go`` where saasodoo has the same
state: ``LOCKED`` is a pending release (Flux's Locked) whose operator is gone, which
``UNLOCK`` marks failed; ``UNMANAGED`` and ``OUT_OF_DATE`` (Flux's OutOfSync) as above.
``UNMANAGED_LOCKED`` and ``ROLLBACK_FAILED`` are saasodoo's own.
saasodoo does not detect Flux's *Drifted* (cluster objects that differ from the manifest).
``OPERATING`` (another saasodoo process holds the lock) and ``STALLED`` are saasodoo's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from saasodoo.core.status import OperationLock as OperationLock
from saasodoo.core.status import ReleaseInfo

PENDING_STATUSES = frozenset({"pending-install", "pending-upgrade", "pending-rollback"})
#: Statuses of revisions one can roll back to.
GOOD_STATUSES = frozenset({"deployed", "superseded"})


class State(StrEnum):
    DELETING = "deleting"  # namespace terminating or release uninstalling: leave it
    OPERATING = "operating"  # another saasodoo process holds the operation lock
    ABSENT = "absent"  # no release yet
    IN_PROGRESS = "in-progress"  # a pending release nobody of ours holds, young: a hand operation
    LOCKED = "locked"  # a pending release of saasodoo's whose operator died: Flux's Locked
    FAILED_INSTALL = "failed-install"  # saasodoo's newest revision failed, nothing good before
    FAILED_UPGRADE = "failed-upgrade"  # saasodoo's newest revision failed, a good one exists
    ROLLBACK_FAILED = "rollback-failed"  # saasodoo's rollback failed: not retried unless forced
    UNRECORDED = "unrecorded"  # deployed, but saasodoo recorded nothing (older tenants)
    INTERRUPTED = "interrupted"  # deployed by a saasodoo process that died before recording
    UNMANAGED = "unmanaged"  # newest revision is not one saasodoo made: changed by hand
    UNMANAGED_LOCKED = "unmanaged-locked"  # a hand operation left pending past the timeout
    STALLED = "stalled"  # desired digest failed before and was rolled back: not retried
    OUT_OF_DATE = "out-of-date"  # spec or chart changed: desired digest != applied digest
    IN_SYNC = "in-sync"  # applied digest == desired, revision unchanged: nothing to do
    UNKNOWN = "unknown"  # a release status saasodoo does not know


class Action(StrEnum):
    NONE = "none"  # nothing to do: in sync
    WAIT = "wait"  # someone else operates: come back later
    REPORT = "report"  # a human decides (unmanaged, stalled, unknown status)
    INSTALL = "install"
    UPGRADE = "upgrade"
    UNLOCK = "unlock"  # mark the locked pending revision failed (as Flux does)
    ROLLBACK = "rollback"  # to the last good revision
    REINSTALL = "reinstall"  # uninstall the failed first install, install again
    ADOPT = "adopt"  # record what the dead process applied (its lock names the digest)


@dataclass(frozen=True)
class Applied:
    """What saasodoo's last successful operation left: digest and the revision it made."""

    digest: str
    revision: int


@dataclass(frozen=True)
class Unfinished:
    """A revision a saasodoo operation left failed or pending (helm failed, timed out or was
    cancelled): recorded in the tenant's record, so ensure knows it is saasodoo's and not a hand
    change."""

    revision: int
    operation: str  # e.g. "update", "ensure upgrade", "rollback to 3"
    digest: str  # the digest the operation applied

    @property
    def rollback(self) -> bool:
        """Whether the operation was a rollback (ensure's remediation or a tenant rollback)."""
        return self.operation.startswith("rollback")


@dataclass(frozen=True)
class ReconcileObservation:
    tenant_id: str
    namespace_phase: str | None
    release: ReleaseInfo | None
    desired_digest: str
    applied: Applied | None = None
    failed_digest: str | None = None
    lock: OperationLock | None = None
    #: The revision saasodoo's last failed operation left (None: none recorded).
    unfinished: Unfinished | None = None
    #: Newest revision with status deployed/superseded below the head (None: none or unknown).
    last_good_revision: int | None = None


def determine_state(obs: ReconcileObservation, now: datetime, stale_after: timedelta) -> State:
    """Classify one tenant's release. Pure: same observation, same state."""
    rel = obs.release
    if obs.namespace_phase == "Terminating" or (rel is not None and rel.status == "uninstalling"):
        return State.DELETING
    if obs.lock is not None and obs.lock.held(now):
        return State.OPERATING
    if rel is None:
        return State.ABSENT
    # The one rule for hand changes: a pending or failed head is saasodoo's only when a dead
    # holder's lock is in the record (killed during helm) or saasodoo recorded it as the
    # revision its failed operation left; any other is a hand change, left alone.
    unfinished = obs.unfinished
    ours = obs.lock is not None or (unfinished is not None and unfinished.revision == rel.revision)
    if rel.status in PENDING_STATUSES:
        if obs.lock is not None:  # ours, and its holder is gone
            return State.LOCKED
        if rel.updated is not None and now - rel.updated < stale_after:
            return State.IN_PROGRESS  # helm may still run (a hand operation, or ours cancelled)
        return State.LOCKED if ours else State.UNMANAGED_LOCKED
    if rel.status == "failed":
        if not ours:
            return State.UNMANAGED
        if obs.lock is None and unfinished is not None and unfinished.rollback:
            return State.ROLLBACK_FAILED
        if obs.last_good_revision is None:
            return State.FAILED_INSTALL
        return State.FAILED_UPGRADE
    if rel.status != "deployed":
        return State.UNKNOWN
    applied = obs.applied
    if obs.lock is not None and (applied is None or rel.revision > applied.revision):
        return State.INTERRUPTED
    if applied is None:
        return State.UNRECORDED
    if rel.revision != applied.revision:
        return State.UNMANAGED
    if obs.desired_digest == applied.digest:
        return State.IN_SYNC
    if obs.desired_digest == obs.failed_digest:
        return State.STALLED
    return State.OUT_OF_DATE


def next_action(state: State, *, force: bool = False) -> Action:
    """The one next step for a state. ``force`` reconciles unmanaged and stalled releases."""
    match state:
        case State.IN_SYNC:
            return Action.NONE
        case State.DELETING | State.OPERATING | State.IN_PROGRESS:
            return Action.WAIT
        case State.ABSENT:
            return Action.INSTALL
        case State.LOCKED:
            return Action.UNLOCK
        case State.FAILED_INSTALL:
            return Action.REINSTALL
        case State.FAILED_UPGRADE:
            return Action.ROLLBACK
        case State.INTERRUPTED:
            return Action.ADOPT
        case State.UNRECORDED | State.OUT_OF_DATE:
            return Action.UPGRADE
        case State.UNMANAGED | State.STALLED:
            return Action.UPGRADE if force else Action.REPORT
        case State.UNMANAGED_LOCKED:
            return Action.UNLOCK if force else Action.REPORT
        case State.ROLLBACK_FAILED:
            return Action.ROLLBACK if force else Action.REPORT
        case State.UNKNOWN:
            return Action.REPORT


_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> timedelta:
    """A Go duration as helm takes it (``5m``, ``1h30m``, ``90s``, ``300``) as a timedelta."""
    rest = text.strip()
    if not rest:
        raise ValueError(f"not a duration: {text!r}")
    if rest.isdigit():
        return timedelta(seconds=int(rest))
    total = 0.0
    while rest:
        number = ""
        while rest and (rest[0].isdigit() or rest[0] == "."):
            number, rest = number + rest[0], rest[1:]
        unit = "ms" if rest.startswith("ms") else rest[:1]
        if not number or unit not in _UNITS:
            raise ValueError(f"not a duration: {text!r}")
        total += float(number) * _UNITS[unit]
        rest = rest[len(unit) :]
    return timedelta(seconds=total)
