"""Conditions and status of an OdooTenant: metav1.Condition form, Flux's vocabulary, kstatus'
rules, and a status that is rewritten only when something changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jsonschema
import pytest

from saasodoo.core import conditions as c
from saasodoo.core.conditions import ReconcileReport
from saasodoo.core.crd import crd_manifest
from saasodoo.reconciler import Outcome

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 5, 10, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
T2 = T0 + timedelta(minutes=2)


def types(status: dict[str, Any]) -> list[str]:
    return [cond["type"] for cond in status["conditions"]]


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found = c.get_condition(status["conditions"], type_)
    assert found is not None, f"{type_} missing from {types(status)}"
    return found


def report(outcome: str, **kw: Any) -> ReconcileReport:
    return ReconcileReport(**{"generation": 1, "outcome": outcome, **kw})


# --- set/remove/get -----------------------------------------------------------------------


def test_set_condition_keeps_transition_time_while_status_holds() -> None:
    first = c.set_condition([], "Ready", "False", "Progressing", "starting", 1, T0)
    assert first == [
        {
            "type": "Ready",
            "status": "False",
            "observedGeneration": 1,
            "lastTransitionTime": "2026-12-05T10:00:00Z",
            "reason": "Progressing",
            "message": "starting",
        }
    ]
    # Reason, message and generation change; the status does not: the time stays.
    second = c.set_condition(first, "Ready", "False", "UpgradeFailed", "boom", 2, T1)
    assert second[0]["lastTransitionTime"] == "2026-12-05T10:00:00Z"
    assert (second[0]["reason"], second[0]["message"], second[0]["observedGeneration"]) == (
        "UpgradeFailed",
        "boom",
        2,
    )
    third = c.set_condition(second, "Ready", "True", "UpgradeSucceeded", "ok", 2, T2)
    assert third[0]["lastTransitionTime"] == "2026-12-05T10:02:00Z"
    assert first[0]["message"] == "starting"  # inputs are not changed


def test_set_remove_get() -> None:
    conds = c.set_condition([], "Ready", "True", "InstallSucceeded", "", 1, T0)
    conds = c.set_condition(conds, "Released", "True", "InstallSucceeded", "", 1, T0)
    assert [x["type"] for x in conds] == ["Ready", "Released"]
    assert c.get_condition(conds, "Released") == conds[1]
    assert c.get_condition(conds, "Stalled") is None
    assert c.get_condition(None, "Ready") is None
    assert [x["type"] for x in c.remove_condition(conds, "Ready")] == ["Released"]
    assert c.remove_condition(conds, "Stalled") == conds
    with pytest.raises(ValueError, match="True, False or Unknown"):
        c.set_condition(conds, "Ready", "true", "X", "", 1, T0)


def test_messages_are_bounded_and_times_utc() -> None:
    conds = c.set_condition([], "Ready", "False", "X", "m" * 40000, 1, T0)
    assert len(conds[0]["message"]) == c.MAX_MESSAGE
    naive = datetime(2026, 12, 5, 10, 0, 0)
    plus_two = datetime(2026, 12, 5, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert c.timestamp(naive) == "2026-12-05T10:00:00Z"
    assert c.timestamp(plus_two) == "2026-12-05T12:00:00Z"


# --- next_status per outcome --------------------------------------------------------------

# outcome, operation, extra report fields ->
#   Ready (status, reason), Reconciling?, Stalled?, Released, Remediated, Drifted
CASES: list[tuple[str, str | None, dict[str, Any], tuple[str, str], bool, bool, Any, Any, Any]] = [
    ("installed", "install", {"revision": 1}, ("True", "InstallSucceeded"), False, False,
     ("True", "InstallSucceeded"), None, ("False", "NoDriftDetected")),
    ("upgraded", "upgrade", {"revision": 2}, ("True", "UpgradeSucceeded"), False, False,
     ("True", "UpgradeSucceeded"), None, ("False", "NoDriftDetected")),
    ("recovered", "unlock", {"revision": 3}, ("True", "UpgradeSucceeded"), False, False,
     ("True", "UpgradeSucceeded"), None, ("False", "NoDriftDetected")),
    ("unchanged", None, {"revision": 1}, ("True", "InstallSucceeded"), False, False,
     ("True", "InstallSucceeded"), None, ("False", "NoDriftDetected")),
    ("unchanged", None, {"revision": 4}, ("True", "UpgradeSucceeded"), False, False,
     ("True", "UpgradeSucceeded"), None, ("False", "NoDriftDetected")),
    ("installed", "install", {"revision": 1, "suspended": True}, ("True", "Suspended"), False,
     False, ("True", "InstallSucceeded"), None, ("False", "NoDriftDetected")),
    ("upgraded", "upgrade", {"revision": 2, "workloads_ready": False}, ("Unknown", "Progressing"),
     True, False, ("True", "UpgradeSucceeded"), None, ("False", "NoDriftDetected")),
    ("progressing", "upgrade", {}, ("Unknown", "Progressing"), True, False, None, None, None),
    ("busy", None, {}, ("Unknown", "Progressing"), True, False, None, None, None),
    ("failed", "install", {}, ("False", "InstallFailed"), False, False,
     ("False", "InstallFailed"), None, ("False", "NoDriftDetected")),
    ("failed", "upgrade", {}, ("False", "UpgradeFailed"), False, False,
     ("False", "UpgradeFailed"), None, ("False", "NoDriftDetected")),
    ("failed", None, {"state": "absent"}, ("False", "InstallFailed"), False, False,
     ("False", "InstallFailed"), None, ("False", "NoDriftDetected")),
    ("failed", "rollback to 3", {}, ("False", "RollbackFailed"), False, False, None,
     ("False", "RollbackFailed"), ("False", "NoDriftDetected")),
    ("rolled-back", "upgrade", {"revision": 5}, ("False", "RollbackSucceeded"), False, False,
     ("False", "UpgradeFailed"), ("True", "RollbackSucceeded"), ("False", "NoDriftDetected")),
    ("stalled", None, {}, ("False", "RetriesExceeded"), False, True, None, None,
     ("False", "NoDriftDetected")),
    ("gave-up", None, {}, ("False", "RetriesExceeded"), False, True, None, None, None),
    ("invalid", None, {}, ("False", "InvalidSpec"), False, True, None, None, None),
    ("unmanaged", None, {}, ("False", "Unmanaged"), False, False, None, None,
     ("True", "DriftDetected")),
    ("progressing", "uninstall", {"deleting": True}, ("False", "Deleting"), True, False, None,
     None, None),
    ("final-backup-failed", None, {"deleting": True}, ("False", "FinalBackupFailed"), False,
     False, None, None, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("outcome", "operation", "extra", "ready", "reconciling", "stalled", "released", "remediated",
     "drifted"),
    CASES,
)  # fmt: skip
def test_conditions_of_each_outcome(
    outcome: str,
    operation: str | None,
    extra: dict[str, Any],
    ready: tuple[str, str],
    reconciling: bool,
    stalled: bool,
    released: Any,
    remediated: Any,
    drifted: Any,
) -> None:
    status = c.next_status({}, report(outcome, operation=operation, detail="d", **extra), T0)
    got = cond(status, "Ready")
    assert (got["status"], got["reason"]) == ready
    assert got["observedGeneration"] == 1
    # Reconciling and Stalled are present only when True.
    assert (c.get_condition(status["conditions"], "Reconciling") is not None) == reconciling
    assert (c.get_condition(status["conditions"], "Stalled") is not None) == stalled
    for type_ in ("Reconciling", "Stalled"):
        present = c.get_condition(status["conditions"], type_)
        assert present is None or present["status"] == "True"
    for type_, expected in (
        ("Released", released),
        ("Remediated", remediated),
        ("Drifted", drifted),
    ):
        found = c.get_condition(status["conditions"], type_)
        assert (None if found is None else (found["status"], found["reason"])) == expected, type_
    assert types(status)[0] == "Ready"
    jsonschema.validate(status, status_schema())


def status_schema() -> dict[str, Any]:
    (version,) = crd_manifest()["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    return schema


def test_outcomes_are_the_reconcilers() -> None:
    """The core takes the reconciler's outcomes as strings: every one of them is known."""
    assert {o.value for o in Outcome} - {"skipped"} <= c.OUTCOMES
    with pytest.raises(ValueError, match="unknown reconcile outcome"):
        c.next_status({}, report("skipped"), T0)
    with pytest.raises(ValueError, match="only applies while deleting"):
        c.next_status({}, report("final-backup-failed"), T0)


def test_success_message_names_revision_and_chart() -> None:
    status = c.next_status(
        {}, report("upgraded", operation="upgrade", revision=4, chart_version="0.9.0"), T0
    )
    assert cond(status, "Ready")["message"] == "Helm upgrade succeeded (revision 4, chart 0.9.0)"
    assert cond(status, "Released")["message"] == cond(status, "Ready")["message"]


def test_suspended_in_sync_is_ready_with_reason_suspended() -> None:
    status = c.next_status({}, report("unchanged", revision=3, suspended=True), T0)
    ready = cond(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Suspended")
    assert "scaled to zero" in ready["message"]
    # Suspended and failing is not Ready.
    status = c.next_status(status, report("failed", operation="upgrade", suspended=True), T1)
    assert cond(status, "Ready")["status"] == "False"


def test_unfinished_reconcile_does_not_observe_the_generation() -> None:
    done = c.next_status({}, report("installed", operation="install", revision=1), T0)
    assert done["observedGeneration"] == 1
    progressing = c.next_status(
        done,
        ReconcileReport(generation=2, outcome="progressing", detail="upgrading",
                        reconcile_requested_at="r2", operation="upgrade"),
        T1,
    )  # fmt: skip
    assert progressing["observedGeneration"] == 1
    assert cond(progressing, "Ready")["observedGeneration"] == 2
    assert cond(progressing, "Ready")["status"] == "Unknown"
    assert cond(progressing, "Reconciling")["message"] == "upgrading"
    assert "lastHandledReconcileAt" not in progressing
    assert len(progressing["history"]) == 1  # the install only: the upgrade has not ended
    finished = c.next_status(
        progressing,
        ReconcileReport(generation=2, outcome="upgraded", revision=2, operation="upgrade",
                        reconcile_requested_at="r2"),
        T2,
    )  # fmt: skip
    assert finished["observedGeneration"] == 2
    assert finished["lastHandledReconcileAt"] == "r2"
    assert "Reconciling" not in types(finished)
    # Ready went Unknown -> True: a transition.
    assert cond(finished, "Ready")["lastTransitionTime"] == "2026-12-05T10:02:00Z"


def test_stalled_and_reconciling_disappear_on_success() -> None:
    status = c.next_status({}, report("stalled", detail="failed before"), T0)
    assert cond(status, "Stalled")["status"] == "True"
    status = c.next_status(status, report("progressing"), T1)
    assert "Stalled" not in types(status)
    assert "Reconciling" in types(status)
    status = c.next_status(status, report("upgraded", operation="upgrade", revision=2), T2)
    assert types(status) == ["Ready", "Released", "Drifted"]


def test_remediated_stays_until_the_next_success() -> None:
    status = c.next_status({}, report("installed", operation="install", revision=1), T0)
    status = c.next_status(status, report("rolled-back", operation="upgrade", revision=3), T1)
    assert cond(status, "Remediated")["status"] == "True"
    assert status["revision"] == 3  # the rollback's revision
    for outcome in ("stalled", "progressing", "failed", "unmanaged"):
        status = c.next_status(status, report(outcome, operation="upgrade"), T1)
        assert cond(status, "Remediated")["reason"] == "RollbackSucceeded", outcome
    status = c.next_status(status, report("upgraded", operation="upgrade", revision=4), T2)
    assert "Remediated" not in types(status)
    assert cond(status, "Drifted")["status"] == "False"


def test_failure_counters() -> None:
    status = c.next_status({}, report("failed", operation="install"), T0)
    assert (status["failures"], status["installFailures"]) == (1, 1)
    assert "upgradeFailures" not in status
    status = c.next_status(status, report("installed", operation="install", revision=1), T0)
    for counter in ("failures", "installFailures", "upgradeFailures"):
        assert counter not in status  # reset on success
    status = c.next_status(status, report("failed", operation="upgrade"), T1)
    status = c.next_status(status, report("rolled-back", operation="upgrade"), T1)
    status = c.next_status(status, report("gave-up"), T1)
    assert (status["failures"], status["upgradeFailures"]) == (3, 2)
    assert "installFailures" not in status
    # Unfinished, stalled, invalid and unmanaged reconciles count nothing.
    for outcome in ("progressing", "busy", "stalled", "invalid", "unmanaged"):
        assert c.next_status(status, report(outcome), T2)["failures"] == 3
    # A retry after a failure progresses "with retry".
    retry = c.next_status(status, report("progressing"), T2)
    assert cond(retry, "Reconciling")["reason"] == "ProgressingWithRetry"
    assert cond(retry, "Ready")["reason"] == "ProgressingWithRetry"


def test_history_newest_first_bounded_and_only_for_operations() -> None:
    status: dict[str, Any] = {}
    for revision in range(1, 13):
        status = c.next_status(
            status,
            report("upgraded", operation="upgrade", revision=revision, digest=f"d{revision}",
                   started_at=T0, detail=f"r{revision}"),
            T1,
        )  # fmt: skip
    history = status["history"]
    assert len(history) == c.HISTORY_LIMIT == 10
    assert [h["revision"] for h in history] == list(range(12, 2, -1))
    assert history[0] == {
        "operation": "upgrade",
        "outcome": "upgraded",
        "revision": 12,
        "digest": "d12",
        "startedAt": "2026-12-05T10:00:00Z",
        "finishedAt": "2026-12-05T10:01:00Z",
        "message": "r12",
    }
    unchanged = c.next_status(status, report("unchanged", revision=12), T2)
    assert unchanged["history"] == history
    jsonschema.validate(status, status_schema())


def test_applied_fields() -> None:
    status = c.next_status(
        {},
        report("installed", operation="install", revision=1, chart_version="0.9.0", digest="abc",
               url="https://acme.example"),
        T0,
    )  # fmt: skip
    assert status["revision"] == 1
    assert status["chartVersion"] == "0.9.0"
    assert status["appliedDigest"] == "abc"
    assert status["lastAppliedAt"] == "2026-12-05T10:00:00Z"
    assert status["url"] == "https://acme.example"
    again = c.next_status(status, report("unchanged", revision=1, digest="abc"), T2)
    assert again["lastAppliedAt"] == "2026-12-05T10:00:00Z"  # nothing applied since
    failed = c.next_status(status, report("failed", operation="upgrade", digest="new"), T2)
    assert failed["appliedDigest"] == "abc"


def test_a_repeated_reconcile_changes_nothing() -> None:
    """Every status write is a watch event: the same result at a later time must give the
    same status, so the caller writes nothing (no self-reconcile loop)."""
    for outcome in ("unchanged", "stalled", "unmanaged", "invalid", "busy", "progressing"):
        r = report(outcome, revision=2, detail="same", reconcile_requested_at="x")
        first = c.next_status({"observedGeneration": 1}, r, T0)
        second = c.next_status(first, r, T2)
        assert not c.status_changed(first, second), outcome
    assert c.status_changed({}, c.next_status({}, report("unchanged"), T0))
    assert not c.status_changed(None, {})


def test_fields_it_does_not_manage_are_kept() -> None:
    backup = {"name": "b1", "outcome": "succeeded", "time": "2026-12-05T09:00:00Z"}
    custom = {"type": "Custom", "status": "True", "reason": "X", "message": "",
              "lastTransitionTime": "2026-12-05T09:00:00Z"}  # fmt: skip
    previous = {"lastBackup": backup, "conditions": [custom]}
    status = c.next_status(previous, report("unchanged", revision=1), T0)
    assert status["lastBackup"] == previous["lastBackup"]
    assert types(status)[-1] == "Custom"
    assert previous["conditions"][0] == c.get_condition(status["conditions"], "Custom")


def test_backups() -> None:
    ok = c.BackupReport(name="acme-1.zip", succeeded=True, time=T0)
    status = c.next_status({}, report("unchanged", revision=1, backup=ok), T0)
    assert status["lastBackup"] == {
        "name": "acme-1.zip",
        "outcome": "succeeded",
        "time": "2026-12-05T10:00:00Z",
    }
    assert cond(status, "BackupSucceeded")["reason"] == "BackupSucceeded"
    bad = c.BackupReport(name="acme-2.zip", succeeded=False, time=T1, message="S3 refused")
    after = c.record_backup(status, bad, 1, T1)
    backup = cond(after, "BackupSucceeded")
    assert (backup["status"], backup["reason"], backup["message"]) == (
        "False",
        "BackupFailed",
        "S3 refused",
    )
    assert cond(after, "Ready") == cond(status, "Ready")  # a backup does not change Ready
    # The last good one is kept when a later one fails (the age alert measures from it).
    assert after["lastSuccessfulBackup"] == status["lastBackup"]
    assert after["lastBackup"]["outcome"] == "failed"
    jsonschema.validate(after, status_schema())


def cronjob(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "acme-backup", "namespace": "tenant-acme"}, "status": status}


def test_the_last_scheduled_backup_is_read_from_the_cronjobs_status() -> None:
    """#23 point 1 (the last scheduled backup's outcome), #24 point 7 (the age of the last
    good backup): what the CronJob controller records of its last Job."""
    assert c.scheduled_backup(cronjob()) is None  # never ran
    ran = cronjob(
        lastScheduleTime="2026-12-06T01:00:00Z", lastSuccessfulTime="2026-12-06T01:03:10Z"
    )
    ok = c.scheduled_backup(ran)
    assert ok is not None and ok.succeeded
    assert ok.time == datetime(2026, 12, 6, 1, 3, 10, tzinfo=UTC)
    assert ok.name == f"acme-backup-{int(datetime(2026, 12, 6, 1, tzinfo=UTC).timestamp()) // 60}"
    running = cronjob(lastScheduleTime="2026-12-07T01:00:00Z",
                      lastSuccessfulTime="2026-12-06T01:03:10Z",
                      active=[{"name": "j"}])  # fmt: skip
    assert c.scheduled_backup(running) is None
    failed = c.scheduled_backup(cronjob(lastScheduleTime="2026-12-07T01:00:00Z",
                                        lastSuccessfulTime="2026-12-06T01:03:10Z"))  # fmt: skip
    assert failed is not None and not failed.succeeded
    assert failed.time == datetime(2026, 12, 7, 1, tzinfo=UTC)
    assert "kubectl -n tenant-acme logs job/acme-backup-" in failed.message
    never_ok = c.scheduled_backup(cronjob(lastScheduleTime="2026-12-07T01:00:00Z"))
    assert never_ok is not None and not never_ok.succeeded


def test_only_a_newer_backup_is_news() -> None:
    nightly = c.BackupReport("acme-backup-1", True, T1)
    assert c.newer_backup(None, nightly) and c.newer_backup({}, nightly)
    status = c.record_backup({}, nightly, 1, T1)
    assert not c.newer_backup(status, nightly)  # the same Job again (a resync)
    on_demand = c.record_backup(status, c.BackupReport("b.zip", True, T2), 1, T2)
    assert not c.newer_backup(on_demand, nightly)  # an older scheduled one never overwrites
    assert c.newer_backup(on_demand, c.BackupReport("acme-backup-2", False, T2 + (T2 - T1)))


def test_deleting() -> None:
    ready = c.next_status({}, report("installed", operation="install", revision=1), T0)
    deleting = c.next_status(
        ready, report("progressing", deleting=True, detail="taking the final backup"), T1
    )
    assert cond(deleting, "Ready")["reason"] == "Deleting"
    assert cond(deleting, "Reconciling")["message"] == "taking the final backup"
    held = c.next_status(
        deleting,
        report("final-backup-failed", deleting=True,
               detail="the final backup failed: S3 refused; set spec.finalBackup=false to delete "
                      "without one"),
        T2,
    )  # fmt: skip
    assert cond(held, "Ready")["reason"] == "FinalBackupFailed"
    assert "spec.finalBackup" in cond(held, "Ready")["message"]
    assert "Reconciling" not in types(held)


# --- ready_for and kstatus ----------------------------------------------------------------


def obj(generation: int, status: dict[str, Any] | None, **meta: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"metadata": {"name": "acme", "generation": generation, **meta}}
    if status is not None:
        out["status"] = status
    return out


def ready_status(generation: int, value: str = "True") -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "conditions": c.set_condition([], "Ready", value, "UpgradeSucceeded", "", generation, T0),
    }


def test_ready_for_needs_the_current_generation() -> None:
    assert c.ready_for(obj(1, ready_status(1)))
    assert not c.ready_for(obj(2, ready_status(1)))  # a previous generation's Ready
    assert not c.ready_for(obj(1, ready_status(1, "False")))
    assert not c.ready_for(obj(1, None))
    # The object observed, but Ready itself is from an older generation.
    stale = ready_status(1)
    stale["observedGeneration"] = 2
    assert not c.ready_for(obj(2, stale))
    # Ready of this generation, but the status' own observedGeneration lags.
    lagging = ready_status(2)
    lagging["observedGeneration"] = 1
    assert not c.ready_for(obj(2, lagging))


def with_condition(status: dict[str, Any], type_: str, value: str = "True") -> dict[str, Any]:
    conditions = c.set_condition(status["conditions"], type_, value, "Progressing", "", 1, T0)
    return {**status, "conditions": conditions}


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (obj(1, ready_status(1), deletionTimestamp="2026-12-05T10:00:00Z"), "Terminating"),
        (obj(2, ready_status(1)), "InProgress"),  # generation not observed
        (obj(1, with_condition(ready_status(1), "Reconciling")), "InProgress"),
        (obj(1, with_condition(ready_status(1), "Stalled")), "Failed"),
        (obj(1, with_condition(ready_status(1), "Stalled", "False")), "Current"),
        (obj(1, ready_status(1)), "Current"),
        (obj(1, ready_status(1, "False")), "InProgress"),
        (obj(1, ready_status(1, "Unknown")), "InProgress"),
        (obj(1, None), "Current"),  # no Ready: kstatus cannot tell, assumes Current
        (obj(1, {"conditions": ready_status(1, "False")["conditions"]}), "InProgress"),
    ],
)
def test_kstatus(resource: dict[str, Any], expected: str) -> None:
    assert c.kstatus(resource) == expected


def test_kstatus_of_built_statuses() -> None:
    stalled = c.next_status({}, report("stalled"), T0)
    assert c.kstatus(obj(1, stalled)) == "Failed"
    assert c.kstatus(obj(1, c.next_status({}, report("progressing"), T0))) == "InProgress"
    ready = c.next_status({}, report("installed", operation="install", revision=1), T0)
    assert c.kstatus(obj(1, ready)) == "Current"
    assert c.kstatus(obj(2, ready)) == "InProgress"
    assert c.ready_for(obj(1, ready)) and not c.ready_for(obj(2, ready))


def test_the_inventory_is_kept_newest_first_and_bounded() -> None:
    """#24 point 6: the backups the API and the web UI show, as the operator listed them."""
    entries = [{"name": f"2026120{d}T010000Z-scheduled.zip", "kind": "scheduled",
                "time": f"2026-12-0{d}T01:00:00Z"} for d in range(1, 10)]  # fmt: skip
    status = c.record_inventory({"conditions": []}, entries, T0)
    assert [b["name"][:9] for b in status["backups"][:2]] == ["20261209T", "20261208T"]
    assert status["backupsListedAt"] == "2026-12-05T10:00:00Z"
    many = [dict(e, name=f"x{i}.zip", time=f"2026-11-{i % 28 + 1:02d}T00:00:00Z")
            for i, e in enumerate(entries * 5)]  # fmt: skip
    assert len(c.record_inventory({}, many, T0)["backups"]) == c.BACKUPS_LIMIT
    jsonschema.validate(status, status_schema())


def test_a_failed_update_is_said_in_flux_s_remediation_terms() -> None:
    """After an update through odoo -u failed: Released False UpgradeFailed; Remediated True
    RollbackSucceeded when reverted, False RollbackFailed when the revert failed."""
    base = c.next_status(None, report("stalled", detail="update failed"), T0)["conditions"]
    for reverted, expected in ((True, ("True", "RollbackSucceeded")),
                               (False, ("False", "RollbackFailed"))):  # fmt: skip
        got = {"conditions": c.revert_conditions(base, reverted=reverted, message="m",
                                                 generation=1, now=T1)}  # fmt: skip
        assert (cond(got, "Released")["status"], cond(got, "Released")["reason"]) == (
            "False", "UpgradeFailed")  # fmt: skip
        remediated = cond(got, "Remediated")
        assert (remediated["status"], remediated["reason"]) == expected
        assert remediated["observedGeneration"] == 1 and remediated["message"] == "m"
        assert cond(got, "Stalled")["status"] == "True"  # left as it was
