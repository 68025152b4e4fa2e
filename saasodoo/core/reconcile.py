"""Reconcile, the pure part: what state a tenant's release is in, and what to do next.

Modelled on Flux's helm-controller: *observe* the release (head revision and status),
what saasodoo last applied (digest and revision, recorded on the namespace) and who
operates on it now (the operation lock, an annotation); *classify* that into one
``State``; derive the next ``Action`` from the state alone; act; record; observe again.
``Reconciler.ensure`` in ``saasodoo.reconciler`` runs that loop a bounded number of times
and ends in a named outcome.

The digest (``TenantValues.digest``: chart version + computed values) decides whether
anything changed: equal digests and an unchanged revision mean no helm call at all.

SREs and hand changes. saasodoo records the revision its last operation produced. When
the release's newest revision is another one (``helm rollback`` or ``helm upgrade`` by
hand), the release is **unmanaged** (Flux's word: saasodoo no longer knows what it is):
ensure reports it and leaves it alone, never undoing an SRE's rollback silently; ``force``
reconciles it to the spec. When an upgrade failed and was rolled back, the digest that
failed is remembered and not retried (**stalled**, Flux's word for retries exhausted)
until the spec changes or ``force`` is given.

The state names follow Flux's ``internal/reconcile/state.go`` where saasodoo has the same
state: ``LOCKED`` is a pending release (Flux's Locked) whose operator is gone, which
``UNLOCK`` marks failed; ``UNMANAGED`` and ``OUT_OF_DATE`` (Flux's OutOfSync) as above.
saasodoo does not detect Flux's *Drifted* (cluster objects that differ from the manifest).
``OPERATING`` (another saasodoo process holds the lock) and ``STALLED`` are saasodoo's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from saasodoo.core.status import ReleaseInfo

PENDING_STATUSES = frozenset({"pending-install", "pending-upgrade", "pending-rollback"})
#: Statuses of revisions one can roll back to.
GOOD_STATUSES = frozenset({"deployed", "superseded"})


class State(StrEnum):
    DELETING = "deleting"  # namespace terminating or release uninstalling: leave it
    OPERATING = "operating"  # another saasodoo process holds the operation lock
    ABSENT = "absent"  # no release yet
    IN_PROGRESS = "in-progress"  # a pending release nobody of ours holds, young: a hand operation
    LOCKED = "locked"  # a pending release whose operator died (or is long gone): Flux's Locked
    FAILED_INSTALL = "failed-install"  # newest revision failed, nothing good to go back to
    FAILED_UPGRADE = "failed-upgrade"  # newest revision failed, a good revision exists
    UNRECORDED = "unrecorded"  # deployed, but saasodoo recorded nothing (older tenants)
    INTERRUPTED = "interrupted"  # deployed by a saasodoo process that died before recording
    UNMANAGED = "unmanaged"  # newest revision is not the one saasodoo made: changed by hand
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
class OperationLock:
    """The operation in flight on a tenant (namespace annotation), set before helm runs."""

    holder: str  # host:pid
    operation: str
    digest: str  # the digest the operation applies
    expires: datetime
    alive: bool | None = None  # holder process alive (None: cannot tell, another host)

    def held(self, now: datetime) -> bool:
        """Whether the holder still operates (alive, or unknown and not expired)."""
        if self.alive is not None:
            return self.alive and now < self.expires
        return now < self.expires


@dataclass(frozen=True)
class ReconcileObservation:
    tenant_id: str
    namespace_phase: str | None
    release: ReleaseInfo | None
    desired_digest: str
    applied: Applied | None = None
    failed_digest: str | None = None
    lock: OperationLock | None = None
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
    if rel.status in PENDING_STATUSES:
        if obs.lock is not None:  # ours, and its holder is gone
            return State.LOCKED
        young = rel.updated is not None and now - rel.updated < stale_after
        return State.IN_PROGRESS if young else State.LOCKED
    if rel.status == "failed":
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
