"""An OdooTenant's conditions and status: Kubernetes' ``metav1.Condition`` form with Flux's
vocabulary, computed from what one reconcile did.

Conditions (``status.conditions``, a list keyed by ``type``; each carries the
``observedGeneration`` it was set for):

- ``Ready``: the summary, present once the operator reconciled the resource. True only
  when the latest spec is applied (a success of the reconciler) and the workloads are not
  known to be unready; reason ``InstallSucceeded``/``UpgradeSucceeded``, or ``Suspended``
  for a suspended tenant in sync (its release applied, its workloads scaled to zero: the
  tenant is what its spec asks for). Unknown with ``Progressing``/``ProgressingWithRetry``
  while an operation runs or the workloads start; False with the reason of the failure
  (``InstallFailed``, ``UpgradeFailed``, ``RollbackSucceeded``, ``RollbackFailed``,
  ``RetriesExceeded``, ``InvalidSpec``, ``Unmanaged``, ``Deleting``,
  ``FinalBackupFailed``).
- ``Reconciling`` (reason ``Progressing`` or ``ProgressingWithRetry``) and ``Stalled``
  (``RetriesExceeded``, ``InvalidSpec``) are present only while True (kstatus'
  abnormal-true conditions).
- ``Released``: the last install/upgrade for the latest desired state
  (``InstallSucceeded``/``UpgradeSucceeded``, ``InstallFailed``/``UpgradeFailed``).
- ``Remediated``: a failed upgrade was rolled back (``RollbackSucceeded``; False with
  ``RollbackFailed``); it stays until the next success.
- ``Drifted``: True (``DriftDetected``) when the release's head is not the revision the
  operator made (an SRE's ``helm rollback``/``upgrade``: the reconciler's *unmanaged*),
  False (``NoDriftDetected``) when a reconcile saw the operator's own revision.
- ``BackupSucceeded``: the last scheduled or on-demand backup (``BackupSucceeded``,
  ``BackupFailed``).

``lastTransitionTime`` changes only when a condition's ``status`` changes (its reason and
message may change without it), and callers write status only when ``status_changed``:
every write is a watch event, so rewriting an unchanged status would reconcile forever.

Sources: Flux helm-controller ``api/v2/condition_types.go``, ``internal/reconcile/``
(v1.6.3); kstatus ``kubernetes-sigs/cli-utils:pkg/kstatus/status/generic.go`` and
``core.go`` (v0.37.2); ``k8s.io/apimachinery/pkg/apis/meta/v1`` ``Condition``.
Pure: no I/O; outcomes are ``saasodoo.reconciler.Outcome`` values taken as strings.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
RELEASED = "Released"
REMEDIATED = "Remediated"
DRIFTED = "Drifted"
BACKUP_SUCCEEDED = "BackupSucceeded"
#: The order conditions are listed in (any other type keeps its place after them).
CONDITION_TYPES = (READY, RECONCILING, STALLED, RELEASED, REMEDIATED, DRIFTED, BACKUP_SUCCEEDED)

#: Entries kept in ``status.history`` (newest first).
HISTORY_LIMIT = 10
#: Backups listed in an OdooTenant's status (the newest).
BACKUPS_LIMIT = 30
#: Longest condition message (``metav1.Condition``'s limit).
MAX_MESSAGE = 32768

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"
#: What Ready and Reconciling say while a release's workloads start.
WAITING = "waiting for the workloads to become ready"


class Reason(StrEnum):
    """Condition reasons: Flux's, then saasodoo's own."""

    INSTALL_SUCCEEDED = "InstallSucceeded"
    UPGRADE_SUCCEEDED = "UpgradeSucceeded"
    INSTALL_FAILED = "InstallFailed"
    UPGRADE_FAILED = "UpgradeFailed"
    ROLLBACK_SUCCEEDED = "RollbackSucceeded"
    ROLLBACK_FAILED = "RollbackFailed"
    PROGRESSING = "Progressing"
    PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
    RETRIES_EXCEEDED = "RetriesExceeded"
    DRIFT_DETECTED = "DriftDetected"
    NO_DRIFT_DETECTED = "NoDriftDetected"
    SUSPENDED = "Suspended"
    DELETING = "Deleting"
    FINAL_BACKUP_FAILED = "FinalBackupFailed"
    INVALID_SPEC = "InvalidSpec"
    UNMANAGED = "Unmanaged"
    BACKUP_SUCCEEDED = "BackupSucceeded"
    BACKUP_FAILED = "BackupFailed"


# Outcomes of ``saasodoo.reconciler.Outcome`` (as strings: the core does not import it) ...
UNCHANGED = "unchanged"
INSTALLED = "installed"
UPGRADED = "upgraded"
RECOVERED = "recovered"
ROLLED_BACK = "rolled-back"
UNMANAGED = "unmanaged"
STALLED_OUTCOME = "stalled"
BUSY = "busy"
FAILED = "failed"
GAVE_UP = "gave-up"
# ... and the operator's own.
#: An operation starts or runs (written before helm, so users see it).
PROGRESSING = "progressing"
#: The spec was refused by saasodoo (a reserved id, an unknown plan, ...): not retried
#: until the spec changes.
INVALID = "invalid"
#: Deletion is held: the final backup failed (the message says how to override it).
FINAL_BACKUP_FAILED = "final-backup-failed"

SUCCESS_OUTCOMES = frozenset({UNCHANGED, INSTALLED, UPGRADED, RECOVERED})
OUTCOMES = SUCCESS_OUTCOMES | {
    ROLLED_BACK, UNMANAGED, STALLED_OUTCOME, BUSY, FAILED, GAVE_UP,
    PROGRESSING, INVALID, FINAL_BACKUP_FAILED,
}  # fmt: skip
#: Outcomes of a reconcile that has not ended: the generation is not observed yet.
UNFINISHED_OUTCOMES = frozenset({PROGRESSING, BUSY})


@dataclass(frozen=True)
class BackupReport:
    """A scheduled or on-demand backup that ended."""

    name: str
    succeeded: bool
    time: datetime
    message: str = ""


@dataclass(frozen=True)
class ReconcileReport:
    """What one reconcile of an OdooTenant did, for ``next_status``.

    ``outcome``: one of ``OUTCOMES`` (a ``saasodoo.reconciler.Outcome`` value, or
    ``progressing``/``invalid``/``final-backup-failed``); ``detail`` the human message;
    ``state`` the ``saasodoo.core.reconcile.State`` value it started from ("" if none);
    ``revision``/``chart_version``/``digest`` the release the reconcile left; ``operation``
    the helm operation it ran (install, upgrade, rollback, ...; None when none ran) and
    ``started_at`` when; ``workloads_ready`` None when unknown; ``reconcile_requested_at``
    the value of the annotation ``saasodoo.dev/reconcile-requested-at`` it handled;
    ``backup`` a backup that ended (None: none)."""

    generation: int
    outcome: str
    detail: str = ""
    state: str = ""
    revision: int | None = None
    chart_version: str | None = None
    digest: str | None = None
    url: str | None = None
    suspended: bool = False
    workloads_ready: bool | None = None
    deleting: bool = False
    reconcile_requested_at: str | None = None
    operation: str | None = None
    started_at: datetime | None = None
    backup: BackupReport | None = None


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC at second precision (``metav1.Time``); a naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_condition(
    conditions: Iterable[Mapping[str, Any]] | None, type: str
) -> dict[str, Any] | None:
    """The condition of type ``type`` (a copy), or None."""
    for condition in conditions or ():
        if condition.get("type") == type:
            return dict(condition)
    return None


def set_condition(
    conditions: list[dict[str, Any]],
    type: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """``conditions`` with the condition ``type`` set (a new list; the input is not
    changed). Its ``lastTransitionTime`` is kept when its status does not change, else
    ``now``; a new type is appended. ``ValueError`` for a status other than True, False,
    Unknown. The message is cut at ``MAX_MESSAGE`` characters."""
    if status not in (TRUE, FALSE, UNKNOWN):
        raise ValueError(f"condition status must be True, False or Unknown, got {status!r}")
    old = get_condition(conditions, type)
    keep = old is not None and old.get("status") == status and old.get("lastTransitionTime")
    new = {
        "type": type,
        "status": status,
        "observedGeneration": generation,
        "lastTransitionTime": old["lastTransitionTime"] if keep and old else timestamp(now),
        "reason": str(reason),
        "message": message[:MAX_MESSAGE],
    }
    out = [dict(c) for c in conditions]
    for i, condition in enumerate(out):
        if condition.get("type") == type:
            out[i] = new
            return out
    return [*out, new]


def remove_condition(conditions: list[dict[str, Any]], type: str) -> list[dict[str, Any]]:
    """``conditions`` without the condition ``type`` (a new list)."""
    return [dict(c) for c in conditions if c.get("type") != type]


def ready_for(obj: Mapping[str, Any]) -> bool:
    """Whether the resource ``obj`` (a dict as the API server returns it) is Ready for its
    current spec: ``Ready`` is True, ``status.observedGeneration`` equals
    ``metadata.generation``, and so does the condition's own ``observedGeneration`` (a
    previous generation's Ready says nothing about the current spec)."""
    generation = (obj.get("metadata") or {}).get("generation")
    status = obj.get("status") or {}
    ready = get_condition(status.get("conditions"), READY)
    return (
        generation is not None
        and ready is not None
        and ready.get("status") == TRUE
        and status.get("observedGeneration") == generation
        and ready.get("observedGeneration") == generation
    )


def kstatus(obj: Mapping[str, Any]) -> str:
    """kstatus' status of ``obj``: ``Terminating``, ``InProgress``, ``Failed`` or ``Current``,
    by its generic rules in order: ``metadata.deletionTimestamp`` set -> Terminating;
    ``status.observedGeneration`` present and not ``metadata.generation`` -> InProgress;
    the first of ``Reconciling=True`` (InProgress) or ``Stalled=True`` (Failed) in list
    order; then ``Ready``: True -> Current, False or Unknown -> InProgress; no Ready
    condition -> Current (kstatus cannot tell a resource that sets Ready late).
    What Helm 4's ``--wait`` and Flux's health checks compute for the resource."""
    metadata = obj.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return "Terminating"
    status = obj.get("status") or {}
    generation = metadata.get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        return "InProgress"
    conditions = status.get("conditions") or []
    for condition in conditions:
        if condition.get("status") != TRUE:
            continue
        if condition.get("type") == RECONCILING:
            return "InProgress"
        if condition.get("type") == STALLED:
            return "Failed"
    ready = get_condition(conditions, READY)
    if ready is None or ready.get("status") == TRUE:
        return "Current"
    return "InProgress"


def operation_kind(operation: str | None, state: str = "") -> str:
    """``install``, ``upgrade``, ``rollback`` or ``uninstall`` for a helm operation's name
    (``install``, ``reinstall``, ``upgrade``, ``unlock``, ``rollback to 3``, ...); with no
    operation, from the reconcile state (no release yet: ``install``)."""
    name = (operation or "").strip().lower()
    if name.startswith("rollback"):
        return "rollback"
    if name.startswith("uninstall"):
        return "uninstall"
    if name in ("install", "reinstall") or (not name and state in ("absent", "failed-install")):
        return "install"
    return "upgrade"


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether ``new`` differs from ``old``: write ``.status`` only then."""
    return dict(old or {}) != dict(new)


def next_status(
    previous: Mapping[str, Any] | None, report: ReconcileReport, now: datetime
) -> dict[str, Any]:
    """The whole new ``.status`` of an OdooTenant after the reconcile ``report``, from its
    ``previous`` status (fields this does not manage are kept). ``now`` stamps transitions,
    history and ``lastAppliedAt``. ``ValueError`` for an unknown outcome.

    Per outcome (see the module docstring for the conditions):
    success (unchanged, installed, upgraded, recovered): Released True, Remediated and
    Stalled removed, Drifted False, failure counters reset; Ready True (reason the
    release's, or ``Suspended``), unless the workloads are known unready: then Ready
    Unknown and Reconciling True until they are. progressing/busy: Ready Unknown and
    Reconciling True (``ProgressingWithRetry`` after a failure), the generation not yet
    observed. failed: Released (or Remediated, for a rollback) False, Ready False, counters
    +1. rolled-back: Released False, Remediated True, Ready False ``RollbackSucceeded``.
    stalled/gave-up: Stalled and Ready False ``RetriesExceeded``. invalid: Stalled and Ready
    False ``InvalidSpec``. unmanaged: Drifted True, Ready False ``Unmanaged``.
    While deleting: Ready False ``Deleting`` (``FinalBackupFailed`` when the final backup
    failed), Reconciling True while it progresses.
    History gets an entry (newest first, at most ``HISTORY_LIMIT``) when an operation ran
    and the reconcile ended."""
    outcome = report.outcome
    if outcome not in OUTCOMES:
        raise ValueError(
            f"unknown reconcile outcome {outcome!r}; expected one of {sorted(OUTCOMES)}"
        )
    status: dict[str, Any] = copy.deepcopy(dict(previous or {}))
    conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
    generation = report.generation
    detail = report.detail
    kind = operation_kind(report.operation, report.state)
    failures = int(status.get("failures") or 0)

    def put(type_: str, value: str, reason: str, message: str) -> None:
        nonlocal conditions
        conditions = set_condition(conditions, type_, value, reason, message, generation, now)

    def drop(*types: str) -> None:
        nonlocal conditions
        for type_ in types:
            conditions = remove_condition(conditions, type_)

    def count_failure(kind_counter: str | None) -> None:
        status["failures"] = failures + 1
        if kind_counter:
            status[kind_counter] = int(status.get(kind_counter) or 0) + 1

    progress_reason = Reason.PROGRESSING_WITH_RETRY if failures else Reason.PROGRESSING

    if report.deleting:
        drop(STALLED)
        if outcome == FINAL_BACKUP_FAILED:
            put(READY, FALSE, Reason.FINAL_BACKUP_FAILED, detail or "the final backup failed")
            drop(RECONCILING)
        elif outcome in (FAILED, GAVE_UP):
            put(READY, FALSE, Reason.DELETING, detail or "deleting failed; retrying")
            drop(RECONCILING)
            count_failure(None)
        else:
            put(READY, FALSE, Reason.DELETING, detail or "deleting")
            put(RECONCILING, TRUE, Reason.PROGRESSING, detail or "deleting")
    elif outcome in UNFINISHED_OUTCOMES:
        message = detail or ("another operation runs" if outcome == BUSY else "reconciling")
        put(READY, UNKNOWN, progress_reason, message)
        put(RECONCILING, TRUE, progress_reason, message)
        drop(STALLED)
    elif outcome in SUCCESS_OUTCOMES:
        reason, message = _released(status, conditions, report)
        put(RELEASED, TRUE, reason, message)
        put(DRIFTED, FALSE, Reason.NO_DRIFT_DETECTED, "the release's head is the operator's")
        drop(REMEDIATED, STALLED)
        for counter in ("failures", "installFailures", "upgradeFailures"):
            status.pop(counter, None)
        if report.suspended:
            put(
                READY,
                TRUE,
                Reason.SUSPENDED,
                "suspended (spec.suspended): the release is in sync and the workloads are "
                "scaled to zero",
            )
            drop(RECONCILING)
        elif report.workloads_ready is False:
            wait = waiting(message, detail)
            put(READY, UNKNOWN, Reason.PROGRESSING, wait)
            put(RECONCILING, TRUE, Reason.PROGRESSING, wait)
        else:
            put(READY, TRUE, reason, message)
            drop(RECONCILING)
    elif outcome == FAILED:
        if kind == "rollback":
            reason = Reason.ROLLBACK_FAILED
            put(REMEDIATED, FALSE, reason, detail or "helm rollback failed")
            count_failure(None)
        else:
            install = kind == "install"
            reason = Reason.INSTALL_FAILED if install else Reason.UPGRADE_FAILED
            put(RELEASED, FALSE, reason, detail or f"helm {kind} failed")
            count_failure("installFailures" if install else "upgradeFailures")
        put(READY, FALSE, reason, detail or f"helm {kind} failed")
        put(DRIFTED, FALSE, Reason.NO_DRIFT_DETECTED, "the release's head is the operator's")
        drop(RECONCILING, STALLED)
    elif outcome == ROLLED_BACK:
        message = detail or "the upgrade failed and was rolled back to the last good revision"
        put(RELEASED, FALSE, Reason.UPGRADE_FAILED, message)
        put(REMEDIATED, TRUE, Reason.ROLLBACK_SUCCEEDED, message)
        put(READY, FALSE, Reason.ROLLBACK_SUCCEEDED, message)
        put(DRIFTED, FALSE, Reason.NO_DRIFT_DETECTED, "the release's head is the operator's")
        drop(RECONCILING, STALLED)
        count_failure("upgradeFailures")
    elif outcome in (STALLED_OUTCOME, GAVE_UP):
        message = detail or (
            "this spec failed before and was rolled back: not retried until the spec changes"
            if outcome == STALLED_OUTCOME
            else "gave up after the reconcile's bounded number of steps"
        )
        put(READY, FALSE, Reason.RETRIES_EXCEEDED, message)
        put(STALLED, TRUE, Reason.RETRIES_EXCEEDED, message)
        drop(RECONCILING)
        if outcome == GAVE_UP:
            count_failure(None)
        else:
            put(DRIFTED, FALSE, Reason.NO_DRIFT_DETECTED, "the release's head is the operator's")
    elif outcome == INVALID:
        message = detail or "the spec is invalid"
        put(READY, FALSE, Reason.INVALID_SPEC, message)
        put(STALLED, TRUE, Reason.INVALID_SPEC, message)
        drop(RECONCILING)
    elif outcome == UNMANAGED:
        message = detail or "the release was changed by hand; left alone"
        put(READY, FALSE, Reason.UNMANAGED, message)
        put(DRIFTED, TRUE, Reason.DRIFT_DETECTED, message)
        drop(RECONCILING, STALLED)
    else:  # FINAL_BACKUP_FAILED without deletion: nothing is held
        raise ValueError(f"outcome {outcome!r} only applies while deleting")

    if report.backup is not None:
        conditions = _backup(status, conditions, report.backup, generation, now)
    finished = outcome not in UNFINISHED_OUTCOMES and not (
        report.deleting and outcome not in (FAILED, GAVE_UP, FINAL_BACKUP_FAILED)
    )
    if finished:
        status["observedGeneration"] = generation
        if report.reconcile_requested_at is not None:
            status["lastHandledReconcileAt"] = report.reconcile_requested_at
        if report.operation:
            _record_history(status, report, now)
    if report.url is not None:
        status["url"] = report.url
    if outcome in SUCCESS_OUTCOMES:
        for key, value in (
            ("revision", report.revision),
            ("chartVersion", report.chart_version),
            ("appliedDigest", report.digest),
        ):
            if value is not None:
                status[key] = value
        if outcome != UNCHANGED:
            status["lastAppliedAt"] = timestamp(now)
    elif outcome == ROLLED_BACK and report.revision is not None:
        status["revision"] = report.revision
    status["conditions"] = ordered(conditions)
    return status


def revert_conditions(
    conditions: list[dict[str, Any]],
    *,
    reverted: bool,
    message: str,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """``conditions`` after a failed update through ``odoo -u`` (``saasodoo.core.updates``)
    in Flux's remediation terms: Released False ``UpgradeFailed`` (the target is not what
    runs), and Remediated True ``RollbackSucceeded`` when it was ``reverted`` (the
    pre-update backup restored, the release rolled back), False ``RollbackFailed`` when the
    revert failed. ``message``: the Stalled message (what failed, the backup used)."""
    conditions = set_condition(conditions, RELEASED, FALSE, Reason.UPGRADE_FAILED, message,
                               generation, now)  # fmt: skip
    remediated = (TRUE, Reason.ROLLBACK_SUCCEEDED) if reverted else (
        FALSE, Reason.ROLLBACK_FAILED)  # fmt: skip
    conditions = set_condition(conditions, REMEDIATED, *remediated, message, generation, now)
    return ordered(conditions)


def _released(
    status: Mapping[str, Any], conditions: list[dict[str, Any]], report: ReconcileReport
) -> tuple[str, str]:
    """Reason and message of ``Released`` after a success."""
    revision = report.revision if report.revision is not None else status.get("revision")
    if report.outcome == UNCHANGED:
        old = get_condition(conditions, RELEASED)
        if old is not None and old.get("status") == TRUE:
            return str(old.get("reason")), str(old.get("message", ""))
        install = revision == 1
    elif report.outcome == INSTALLED:
        install = True
    else:
        install = operation_kind(report.operation, report.state) == "install"
    return released(install, revision, report.chart_version or status.get("chartVersion"))


def released(install: bool, revision: int | None, chart: str | None = None) -> tuple[str, str]:
    """Reason and message of ``Released`` True: ``InstallSucceeded``/``UpgradeSucceeded``,
    "Helm install succeeded (revision 1, chart 0.1.0)"."""
    verb = "install" if install else "upgrade"
    reason = Reason.INSTALL_SUCCEEDED if install else Reason.UPGRADE_SUCCEEDED
    message = f"Helm {verb} succeeded"
    if revision is not None:
        message += f" (revision {revision}"
        message += f", chart {chart})" if chart else ")"
    return reason, message


def waiting(released_message: str, detail: str = "") -> str:
    """The Ready and Reconciling message of a release applied whose workloads are not ready
    yet: ``released_message``, and ``detail`` (which workloads) when it says more."""
    out = f"{released_message}; {WAITING}"
    if detail and detail != released_message:
        out += f": {detail}"
    return out


def _backup(
    status: dict[str, Any],
    conditions: list[dict[str, Any]],
    backup: BackupReport,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    status["lastBackup"] = {
        "name": backup.name,
        "outcome": "succeeded" if backup.succeeded else "failed",
        "time": timestamp(backup.time),
    }
    if backup.succeeded:
        status["lastSuccessfulBackup"] = dict(status["lastBackup"])
    value, reason = (
        (TRUE, Reason.BACKUP_SUCCEEDED) if backup.succeeded else (FALSE, Reason.BACKUP_FAILED)
    )
    message = backup.message or f"backup {backup.name} {status['lastBackup']['outcome']}"
    return set_condition(conditions, BACKUP_SUCCEEDED, value, reason, message, generation, now)


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time of the API server (``2026-12-06T01:00:00Z``), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def scheduled_backup(cronjob: Mapping[str, Any]) -> BackupReport | None:
    """The outcome of the last backup the tenant's CronJob ran on its schedule, from the
    CronJob's status as the CronJob controller keeps it (``lastScheduleTime``: when its last
    Job was created; ``lastSuccessfulTime``: when its last Job completed; ``active``: its Jobs
    running). None while that Job runs or when none ran yet.

    - succeeded: ``lastSuccessfulTime`` at or after ``lastScheduleTime``;
    - failed: a Job scheduled after the last success (or with none) ended, none active (the
      controller records only completions: a Job that failed leaves ``lastScheduleTime``
      newer than ``lastSuccessfulTime``); its time is when it was scheduled.

    The name is the Job's, as the CronJob controller makes it (``<cronjob>-<scheduled time
    in minutes since the epoch>``, kubernetes ``pkg/controller/cronjob/utils.go``
    ``getJobName``). Jobs saasodoo makes from the CronJob (on-demand, final) carry no
    controller reference and do not count here."""
    meta = cronjob.get("metadata") or {}
    status = cronjob.get("status") or {}
    scheduled = parse_time(status.get("lastScheduleTime"))
    succeeded = parse_time(status.get("lastSuccessfulTime"))
    name = str(meta.get("name") or "backup")

    def job(moment: datetime) -> str:
        return f"{name}-{int(moment.timestamp()) // 60}"

    if succeeded is not None and (scheduled is None or succeeded >= scheduled):
        run = scheduled or succeeded
        return BackupReport(job(run), True, succeeded, f"scheduled backup {job(run)} succeeded")
    if scheduled is None or status.get("active"):
        return None
    return BackupReport(
        job(scheduled), False, scheduled,
        f"scheduled backup {job(scheduled)} failed (see kubectl -n "
        f"{meta.get('namespace', '<tenant namespace>')} logs job/{job(scheduled)})",
    )  # fmt: skip


def newer_backup(status: Mapping[str, Any] | None, backup: BackupReport) -> bool:
    """Whether ``backup`` is news for ``status``: no backup recorded yet, or the recorded
    one ended before it (or is the same Job with another outcome)."""
    last = (status or {}).get("lastBackup") or {}
    when = parse_time(last.get("time"))
    if when is None:
        return True
    if last.get("name") == backup.name:
        return (last.get("outcome") == "succeeded") != backup.succeeded
    return backup.time > when


def record_inventory(
    previous: Mapping[str, Any] | None, backups: Iterable[Mapping[str, Any]], now: datetime
) -> dict[str, Any]:
    """``previous`` status with ``backups`` (entries in ``StoredBackup``'s form, any order)
    kept newest first, at most ``BACKUPS_LIMIT``, and ``backupsListedAt`` now."""
    status: dict[str, Any] = copy.deepcopy(dict(previous or {}))
    by_time = sorted(backups, key=lambda b: (str(b.get("time", "")), str(b.get("name", ""))))
    status["backups"] = [dict(b) for b in reversed(by_time)][:BACKUPS_LIMIT]
    status["backupsListedAt"] = timestamp(now)
    return status


def record_backup(
    previous: Mapping[str, Any] | None, backup: BackupReport, generation: int, now: datetime
) -> dict[str, Any]:
    """``previous`` status with ``lastBackup`` and ``BackupSucceeded`` set from ``backup``
    (nothing else changes: a backup does not make a tenant more or less Ready)."""
    status: dict[str, Any] = copy.deepcopy(dict(previous or {}))
    conditions = _backup(status, list(status.get("conditions") or []), backup, generation, now)
    status["conditions"] = ordered(conditions)
    return status


def _record_history(status: dict[str, Any], report: ReconcileReport, now: datetime) -> None:
    entry: dict[str, Any] = {"operation": report.operation, "outcome": report.outcome}
    if report.revision is not None:
        entry["revision"] = report.revision
    if report.digest is not None:
        entry["digest"] = report.digest
    if report.started_at is not None:
        entry["startedAt"] = timestamp(report.started_at)
    entry["finishedAt"] = timestamp(now)
    entry["message"] = report.detail[:MAX_MESSAGE]
    status["history"] = [entry, *(status.get("history") or [])][:HISTORY_LIMIT]


def ordered(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Known types in ``CONDITION_TYPES`` order, then any other in its previous order."""
    rank = {t: i for i, t in enumerate(CONDITION_TYPES)}
    return sorted(conditions, key=lambda c: rank.get(str(c.get("type")), len(rank)))
