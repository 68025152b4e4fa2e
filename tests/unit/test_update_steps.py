"""Updates that cannot break a tenant (saasodoo.core.updates): what is a code change, the
update's plan and every move of its step machine (restart re-entry, failures, a failing
revert, suspension and spec changes meanwhile, a force), its names, status and Job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from saasodoo.core import updates as up
from saasodoo.core.copies import ABSENT, FAILED_WORK, RUNNING, SUCCEEDED
from saasodoo.core.status import OperationLock, ReleaseInfo
from saasodoo.core.values import helm_merge
from saasodoo.errors import InvalidInput
from saasodoo.settings import Settings

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
STALE = timedelta(minutes=10)
FULL = list(up.FORWARD)
SUSPENDED = [up.STOP, up.BACKUP, up.UPDATE]
DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "b" * 64

#: The chart's own values of the Odoo image and options (values.yaml), as merged.
CHART = {
    "odoo": {
        "version": "18.0",
        "image": {
            "registry": "docker.io",
            "repository": "library/odoo",
            "tag": "",
            "digest": "",
            "pullPolicy": "IfNotPresent",
        },
        "replicas": 1,
        "config": {"workers": 2, "extraOptions": {}},
    },
}


def values(**odoo: Any) -> dict[str, Any]:
    return helm_merge(CHART, {"odoo": odoo})


# -- code_change ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(values(), values(), id="same"),
        pytest.param(values(), values(image={"tag": "18.0"}), id="tag-spelled-as-version"),
        pytest.param(values(), values(replicas=0), id="suspension"),
        pytest.param(values(), values(config={"workers": 4}), id="workers"),
        pytest.param(values(), values(image={"pullPolicy": "Always"}), id="pull-policy"),
        pytest.param(
            values(), values(config={"extraOptions": {"limit_request": 8192}}), id="other-option"
        ),
        pytest.param(
            values(image={"tag": "18.0-20250101", "digest": DIGEST}),
            values(image={"tag": "18.0-20250202", "digest": DIGEST}),
            id="same-digest-other-tag",
        ),
        pytest.param(
            values(config={"extraOptions": {"server_wide_modules": ""}}),
            values(config={"extraOptions": {"server_wide_modules": "web, base"}}),
            id="server-wide-default-spelled-out",
        ),
        pytest.param(values(modules=["sale", "crm"]), values(modules=["crm"]), id="module-removed"),
    ],
)
def test_not_a_code_change(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert up.code_change(old, new, "0.2.0", "0.2.0") is None


def test_a_chart_version_alone_is_no_code_change() -> None:
    assert up.code_change(values(), values(), "0.2.0", "0.3.0") is None


def test_a_new_build_of_the_series_is_a_code_change() -> None:
    change = up.code_change(values(), values(image={"tag": "18.0-20251201"}), "0.2.0", "0.2.0")
    assert change is not None
    assert change.reasons == (up.IMAGE,)
    assert change.from_image == "docker.io/library/odoo:18.0"
    assert change.to_image == "docker.io/library/odoo:18.0-20251201"
    assert "18.0-20251201" in change.message
    target = up.code_target(values(image={"tag": "18.0-20251201"}))
    assert change.to_status() == {"reasons": ["image"], "fromImage": change.from_image,
                                  "toImage": change.to_image, "target": target}  # fmt: skip


def test_the_code_target_names_the_code_not_the_rest_of_the_values() -> None:
    new = values(image={"tag": "18.0-20251201"})
    # Replicas, workers, another option, a server-wide list in another order: same code.
    same = helm_merge(new, {"odoo": {"replicas": 0, "config": {"workers": 4, "extraOptions": {
        "limit_request": 8192}}}})  # fmt: skip
    assert up.code_target(same) == up.code_target(new)
    wide = {"config": {"extraOptions": {"server_wide_modules": "base,web,queue_job"}}}
    reordered = {"config": {"extraOptions": {"server_wide_modules": "queue_job,web,base"}}}
    assert up.code_target(helm_merge(new, {"odoo": wide})) == up.code_target(
        helm_merge(new, {"odoo": reordered}))  # fmt: skip
    # Another image, code option or module: another target.
    assert up.code_target(values(image={"tag": "18.0-20251202"})) != up.code_target(new)
    assert up.code_target(helm_merge(new, {"odoo": wide})) != up.code_target(new)
    assert up.code_target(helm_merge(new, {"odoo": {"modules": ["sale"]}})) != up.code_target(new)


def test_a_later_spec_change_does_not_retry_the_code_of_a_reverted_update() -> None:
    change = up.code_change(values(), values(image={"tag": "18.0-20251201"}), "1", "1")
    assert change is not None
    stalled = {"step": up.STALLED, "reverted": True, "generation": 3,
               "change": change.to_status()}  # fmt: skip
    assert up.retries_failed_target(stalled, change)
    other = up.code_change(values(), values(image={"tag": "18.0-20251202"}), "1", "1")
    assert other is not None and not up.retries_failed_target(stalled, other)
    # Not reverted (held whatever the spec: update_due), done, or recorded before targets.
    assert not up.retries_failed_target({**stalled, "reverted": False}, change)
    assert not up.retries_failed_target({**stalled, "step": up.DONE}, change)
    assert not up.retries_failed_target({**stalled, "change": {"toImage": "x"}}, change)
    assert not up.retries_failed_target(None, change)


def test_a_chart_whose_defaults_move_the_image_is_a_code_change() -> None:
    """The values are merged over each chart version's own: a new default digest shows."""
    old = values()
    new = values(image={"digest": DIGEST})
    change = up.code_change(old, new, "0.2.0", "0.3.0")
    assert change is not None and change.reasons == (up.IMAGE,)
    assert change.to_status()["toChart"] == "0.3.0"


def test_another_digest_or_registry_is_a_code_change() -> None:
    a = values(image={"digest": DIGEST})
    assert up.code_change(a, values(image={"digest": OTHER_DIGEST}), "1", "1") is not None
    mirror = values(image={"registry": "mirror.example"})
    assert up.code_change(values(), mirror, "1", "1") is not None


def test_a_series_change_is_refused_here_too() -> None:
    with pytest.raises(InvalidInput) as err:
        up.code_change(values(), values(version="19.0"), "1", "1", tenant_id="acme")
    assert err.value.fields[0].field == "values.odoo.image.tag"
    assert "18.0" in err.value.fields[0].message and "19.0" in err.value.fields[0].message


@pytest.mark.parametrize("key", up.CODE_OPTIONS)
def test_a_code_bearing_option_is_a_code_change(key: str) -> None:
    new = values(config={"extraOptions": {key: "/mnt/more-addons,queue_job"}})
    change = up.code_change(values(), new, "1", "1")
    assert change is not None and change.reasons == (up.CONFIG,)
    assert key in change.message


def test_an_added_module_is_a_code_change_and_reasons_keep_their_order() -> None:
    old = values(modules=["crm"])
    options = {"server_wide_modules": "base,web,queue_job"}
    new = values(modules=["crm", "sale"], image={"tag": "18.0-20251201"},
                 config={"extraOptions": options})  # fmt: skip
    change = up.code_change(old, new, "1", "1")
    assert change is not None
    assert change.reasons == (up.IMAGE, up.CONFIG, up.MODULES)
    assert "modules added: sale" in change.message


def test_values_without_an_image_are_an_error() -> None:
    with pytest.raises(ValueError, match="odoo.image"):
        up.code_change({}, values(), "1", "1")


# -- the plan ---------------------------------------------------------------------------

CHANGE = up.CodeChange((up.IMAGE,), ("Odoo image a -> b",), "a", "b")


def test_update_plan() -> None:
    assert up.update_plan(None, initialized=True, suspended=False) == []
    assert up.update_plan(CHANGE, initialized=False, suspended=False) == []
    assert up.update_plan(CHANGE, initialized=True, suspended=False) == FULL
    assert up.update_plan(CHANGE, initialized=True, suspended=True) == SUSPENDED


def test_update_plan_refuses_an_update_that_cannot_be_undone() -> None:
    with pytest.raises(InvalidInput) as err:
        up.update_plan(CHANGE, initialized=True, suspended=False, backups=False)
    assert err.value.fields[0].field == "values.backup.enabled"
    assert up.update_plan(None, initialized=True, suspended=False, backups=False) == []


@pytest.mark.parametrize(
    ("backup", "field"),
    [
        ({"enabled": False}, "values.backup.enabled"),
        ({"enabled": True, "keepPreUpdate": 0}, "values.backup.keepPreUpdate"),
        ({"enabled": True, "storage": "pvc", "persistence": {"enabled": False}},
         "values.backup.persistence.enabled"),
        ({"enabled": True, "storage": "s3", "persistence": {"enabled": False}}, None),
        ({"enabled": True, "keepPreUpdate": 3, "persistence": {"enabled": True}}, None),
    ],
)  # fmt: skip
def test_an_update_needs_a_pre_update_backup_that_survives(
    backup: dict[str, Any], field: str | None
) -> None:
    """keepPreUpdate 0 would prune the zip backup.py just wrote; a pvc storage on an
    emptyDir loses it with its pod: either way nothing could undo odoo -u."""
    refusal = up.backup_refusal({"backup": backup})
    assert (refusal.field if refusal else None) == field
    if refusal is not None:
        with pytest.raises(InvalidInput) as err:
            up.update_plan(CHANGE, initialized=True, suspended=False, refusal=refusal)
        assert err.value.fields[0].field == field
        assert CHANGE.message in err.value.fields[0].message


# -- the step machine -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "step", "seen", "verb", "following"),
    [
        # every forward step: absent -> start, running -> wait (an operator restarted
        # mid-step finds its work and waits for it), succeeded -> the next
        (FULL, up.STOP, ABSENT, "start", ""),
        (FULL, up.STOP, RUNNING, "wait", ""),
        (FULL, up.STOP, SUCCEEDED, "advance", up.BACKUP),
        (FULL, up.BACKUP, ABSENT, "start", ""),
        (FULL, up.BACKUP, RUNNING, "wait", ""),
        (FULL, up.BACKUP, SUCCEEDED, "advance", up.UPDATE),
        (FULL, up.UPDATE, ABSENT, "start", ""),
        (FULL, up.UPDATE, RUNNING, "wait", ""),
        (FULL, up.UPDATE, SUCCEEDED, "advance", up.ROLLOUT),
        (FULL, up.ROLLOUT, ABSENT, "start", ""),
        (FULL, up.ROLLOUT, RUNNING, "wait", ""),
        (FULL, up.ROLLOUT, SUCCEEDED, "advance", up.CHECK),
        (FULL, up.CHECK, ABSENT, "start", ""),
        (FULL, up.CHECK, SUCCEEDED, "advance", up.DONE),
        # a suspended tenant is done after the update
        (SUSPENDED, up.UPDATE, SUCCEEDED, "advance", up.DONE),
        # failures before the data changed: the rollback alone
        (FULL, up.STOP, FAILED_WORK, "fail", up.ROLLBACK),
        (FULL, up.BACKUP, FAILED_WORK, "fail", up.ROLLBACK),
        # failures once -u ran: the restore first
        (FULL, up.UPDATE, FAILED_WORK, "fail", up.RESTORE),
        (FULL, up.ROLLOUT, FAILED_WORK, "fail", up.RESTORE),
        (FULL, up.CHECK, FAILED_WORK, "fail", up.RESTORE),
        (SUSPENDED, up.UPDATE, FAILED_WORK, "fail", up.RESTORE),
        # the revert
        (FULL, up.RESTORE, ABSENT, "start", ""),
        (FULL, up.RESTORE, RUNNING, "wait", ""),
        (FULL, up.RESTORE, SUCCEEDED, "advance", up.ROLLBACK),
        (FULL, up.ROLLBACK, ABSENT, "start", ""),
        (FULL, up.ROLLBACK, RUNNING, "wait", ""),
        (FULL, up.ROLLBACK, SUCCEEDED, "advance", up.STALLED),
        # a revert that fails: stalled, not reverted, nothing more
        (FULL, up.RESTORE, FAILED_WORK, "fail", up.STALLED),
        (FULL, up.ROLLBACK, FAILED_WORK, "fail", up.STALLED),
        (SUSPENDED, up.ROLLBACK, FAILED_WORK, "fail", up.STALLED),
        # terminal, whatever is seen
        (FULL, up.DONE, ABSENT, "done", ""),
        (FULL, up.STALLED, ABSENT, "fail", ""),
        (FULL, up.STALLED, SUCCEEDED, "fail", ""),
    ],
)
def test_next_update_action(
    plan: list[str], step: str, seen: str, verb: str, following: str
) -> None:
    action = up.next_update_action(plan, step, seen)
    assert (action.verb, action.step, action.next_step) == (verb, step, following)


def test_next_update_action_refuses_what_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="not in the plan"):
        up.next_update_action(SUSPENDED, up.ROLLOUT, ABSENT)
    with pytest.raises(ValueError, match="unknown state"):
        up.next_update_action(FULL, up.UPDATE, "maybe")


def test_every_step_has_reasons_and_words_in_flux_style() -> None:
    for step in (*up.FORWARD, *up.REVERT):
        progressing, stalled = up.STEP_REASONS[step]
        assert progressing[0].isupper() and stalled[0].isupper()
        assert " " not in progressing + stalled and stalled.endswith("Failed")
        assert up.STEP_WORDS[step]


def run(plan: list[str], seen_at: dict[str, list[str]]) -> list[str]:
    """Drive the machine as the executor would, each step's work found in the states
    ``seen_at[step]`` turn after turn (the last one repeats); the steps visited."""
    progress: dict[str, Any] | None = None
    visited: list[str] = []
    for _ in range(60):
        step = up.current_step(plan, progress)
        if not visited or visited[-1] != step:
            visited.append(step)
        queue = seen_at.get(step, [SUCCEEDED])
        seen = queue.pop(0) if len(queue) > 1 else queue[0]
        action = up.next_update_action(plan, step, seen)
        if action.verb in ("done",) or (action.verb == "fail" and step == up.STALLED):
            return visited
        if action.verb in ("start", "wait"):
            progress = up.update_status(progress, step=step, now=NOW)
            continue
        progress = up.move(progress or {}, action, now=NOW, why=f"{step} broke")
    raise AssertionError(f"no end: {visited}")


def test_a_good_update_walks_every_step() -> None:
    seen = {s: [ABSENT, RUNNING, SUCCEEDED] for s in FULL}
    assert run(FULL, seen) == [*FULL, up.DONE]


def test_a_failing_update_is_restored_rolled_back_and_stalled() -> None:
    assert run(FULL, {up.UPDATE: [ABSENT, RUNNING, FAILED_WORK]}) == [
        up.STOP, up.BACKUP, up.UPDATE, up.RESTORE, up.ROLLBACK, up.STALLED,
    ]  # fmt: skip
    assert run(FULL, {up.CHECK: [FAILED_WORK]}) == [
        *FULL, up.RESTORE, up.ROLLBACK, up.STALLED,
    ]  # fmt: skip


def test_a_failing_backup_is_only_rolled_back() -> None:
    assert run(FULL, {up.BACKUP: [FAILED_WORK]}) == [
        up.STOP, up.BACKUP, up.ROLLBACK, up.STALLED,
    ]  # fmt: skip


def test_a_failing_restore_never_loops() -> None:
    visited = run(FULL, {up.UPDATE: [FAILED_WORK], up.RESTORE: [FAILED_WORK]})
    assert visited == [up.STOP, up.BACKUP, up.UPDATE, up.RESTORE, up.STALLED]


def test_restart_mid_step_re_enters_the_recorded_step() -> None:
    """status.update.step is written before a step's work starts: a new operator process
    reads it and finds that work (running: wait), never the plan's first step."""
    progress = up.update_status(None, step=up.UPDATE, now=NOW, generation=3, attempt=1)
    step = up.current_step(FULL, progress)
    assert step == up.UPDATE
    assert up.next_update_action(FULL, step, RUNNING).verb == "wait"
    restoring = up.update_status(progress, step=up.RESTORE, now=NOW)
    assert up.current_step(FULL, restoring) == up.RESTORE


def test_current_step() -> None:
    assert up.current_step(FULL, None) == up.STOP
    assert up.current_step(FULL, {}) == up.STOP
    assert up.current_step([], None) == up.DONE
    for step in (up.DONE, up.STALLED, up.RESTORE, up.ROLLBACK):
        assert up.current_step(FULL, {"step": step}) == step
    # suspended meanwhile: the staged revision (Odoo at zero) is the target
    assert up.current_step(SUSPENDED, {"step": up.ROLLOUT}) == up.DONE
    assert up.current_step(SUSPENDED, {"step": up.CHECK}) == up.DONE
    # resumed meanwhile: the rollout and the check follow the update
    assert up.current_step(FULL, {"step": up.UPDATE}) == up.UPDATE
    with pytest.raises(ValueError, match="unknown update step"):
        up.current_step(FULL, {"step": "migrate"})


def test_move_records_failures_and_the_revert() -> None:
    progress = up.update_status(None, step=up.UPDATE, now=NOW, backup="b.zip", fromRevision=4)
    failed = up.move(progress, up.next_update_action(FULL, up.UPDATE, FAILED_WORK), now=NOW,
                     why="job acme-update failed: KeyError")  # fmt: skip
    assert failed["step"] == up.RESTORE and failed["failedStep"] == up.UPDATE
    report = {"ok": True, "previous_database": "acme_p20261206T120000Z",
              "previous": {"database": "acme_p20261206T120000Z",
                           "filestore": "/var/lib/odoo/filestore/acme_p20261206T120000Z",
                           "bytes": 123, "kept_until": "2026-12-09T12:00:00Z"}}  # fmt: skip
    restored = up.move(failed, up.next_update_action(FULL, up.RESTORE, SUCCEEDED), now=NOW,
                       previousData=up.previous_data(report))  # fmt: skip
    assert restored["step"] == up.ROLLBACK and "reverted" not in restored
    assert restored["previousData"] == {
        "database": "acme_p20261206T120000Z", "keptUntil": "2026-12-09T12:00:00Z",
        "filestore": "/var/lib/odoo/filestore/acme_p20261206T120000Z"}  # fmt: skip
    stalled = up.move(restored, up.next_update_action(FULL, up.ROLLBACK, SUCCEEDED), now=NOW)
    assert stalled["step"] == up.STALLED and stalled["reverted"] is True
    assert stalled["finishedAt"] == "2026-12-06T12:00:00Z"
    assert up.stalled_reason(stalled) == "ModuleUpdateFailed"
    message = up.stalled_message(stalled)
    assert "update failed at update: job acme-update failed: KeyError" in message
    assert "pre-update backup b.zip restored" in message and "revision 4" in message
    assert ("as the failed update left it is kept as acme_p20261206T120000Z (and its "
            "filestore) until 2026-12-09T12:00:00Z") in message  # fmt: skip
    # a restore whose report is unknown (no log) or that dropped the replaced data: not named
    for unknown in (None, {"ok": True, "previous_dropped": True}):
        assert up.previous_data(unknown) is None
        bare = up.move(failed, up.next_update_action(FULL, up.RESTORE, SUCCEEDED), now=NOW,
                       previousData=up.previous_data(unknown))  # fmt: skip
        assert "previousData" not in bare
    # start/wait/done change nothing
    assert up.move(stalled, up.UpdateAction("wait", up.STALLED), now=NOW) == stalled


def test_move_clears_the_revision_a_helm_step_started_from() -> None:
    """``stepFrom`` belongs to one helm step: left from the stop, the rollout's own revision
    would be judged against it and found done before it ran."""
    stopped = up.update_status(None, step=up.STOP, now=NOW, stepFrom=4, work=up.STOP)
    on = up.move(stopped, up.next_update_action(FULL, up.STOP, SUCCEEDED), now=NOW,
                 stagedRevision=5)  # fmt: skip
    assert on["step"] == up.BACKUP and on["stagedRevision"] == 5
    assert "stepFrom" not in on and "work" not in on


def test_move_when_the_restore_fails() -> None:
    progress = {"step": up.RESTORE, "failedStep": up.CHECK, "message": "sign-in refused",
                "backup": "b.zip", "fromRevision": 4}  # fmt: skip
    action = up.next_update_action(FULL, up.RESTORE, FAILED_WORK)
    stalled = up.move(progress, action, now=NOW, why="job acme-update-restore failed")
    assert stalled["step"] == up.STALLED and stalled["reverted"] is False
    assert stalled["message"] == "sign-in refused"  # the first failure is kept
    assert up.stalled_reason(stalled) == "UpdateRestoreFailed"
    message = up.stalled_message(stalled)
    assert "Odoo stays at zero replicas" in message and "b.zip" in message
    assert "force-requested-at" in message


def head(revision: int, status: str = "deployed") -> ReleaseInfo:
    return ReleaseInfo(revision, status, NOW)


@pytest.mark.parametrize(
    ("progress", "newest", "expected"),
    [
        # after the stop (revision 5): the backup and the update steps expect 5
        ({"step": up.BACKUP, "headRevision": 5}, 5, None),
        ({"step": up.BACKUP, "headRevision": 5}, 6, 6),
        ({"step": up.UPDATE, "headRevision": 5}, 6, 6),
        # an update recorded before headRevision: its stagedRevision, at those two steps
        ({"step": up.UPDATE, "stagedRevision": 5}, 6, 6),
        ({"step": up.CHECK, "stagedRevision": 5}, 7, None),
        # after the rollout (6): the check and a restore expect 6
        ({"step": up.CHECK, "headRevision": 6}, 6, None),
        ({"step": up.RESTORE, "headRevision": 6}, 7, 7),
        # helm steps make revisions of their own: not judged
        ({"step": up.ROLLOUT, "headRevision": 5}, 6, None),
        ({"step": up.ROLLBACK, "headRevision": 6}, 7, None),
        ({"step": up.STOP, "fromRevision": 4}, 5, None),
        # no release read: not judged
        ({"step": up.BACKUP, "headRevision": 5}, None, None),
    ],
)
def test_a_revision_made_by_hand_during_an_update(
    progress: dict[str, Any], newest: int | None, expected: int | None
) -> None:
    assert up.hand_revision(progress, head(newest) if newest else None) == expected


def test_an_update_interrupted_by_hand_holds_then_a_force_runs_its_revert() -> None:
    at_update = {"step": up.UPDATE, "generation": 3, "attempt": 1, "fromRevision": 4,
                 "stagedRevision": 5, "headRevision": 5, "backup": "b.zip", "work": up.UPDATE,
                 "startedAt": "2026-12-06T11:00:00Z"}  # fmt: skip
    stopped = up.interrupted(at_update, 6, now=NOW)
    assert stopped["step"] == up.STALLED and stopped["reverted"] is False
    assert stopped["interruptedBy"] == {"revision": 6, "step": up.UPDATE,
                                        "revertFrom": up.RESTORE}  # fmt: skip
    assert stopped["failedStep"] == up.UPDATE and "revertFailedStep" not in stopped
    assert "work" not in stopped and stopped["finishedAt"] == "2026-12-06T12:00:00Z"
    assert up.stalled_reason(stopped) == up.CHANGED_BY_HAND
    message = up.stalled_message(stopped)
    assert message.startswith("update stopped at update: revision 6 of the release was made "
                              "outside it")  # fmt: skip
    assert "odoo -u may have changed the database" in message
    assert "restores the pre-update backup b.zip, then rolls the release back to revision 4" in (
        message
    )
    # held without a force, whatever the spec; a force runs the revert from the restore,
    # expecting the revision made by hand as the newest (else it would stop again at once)
    for generation in (3, 4):
        assert up.update_due(stopped, generation=generation, changed=True, force=False) == (up.HOLD)
    assert up.update_due(stopped, generation=3, changed=True, force=True) == up.RETRY_REVERT
    again = up.retry_revert(stopped)
    assert again["step"] == up.RESTORE and again["attempt"] == 2
    assert again["headRevision"] == 6 and again["interruptedBy"]["revision"] == 6
    assert up.hand_revision(again, head(6)) is None
    # reverted: still the hand's reason, the ordinary reverted message
    done = up.move(again, up.next_update_action(FULL, up.RESTORE, SUCCEEDED), now=NOW)
    done = up.move(done, up.next_update_action(FULL, up.ROLLBACK, SUCCEEDED), now=NOW)
    assert done["reverted"] is True and up.stalled_reason(done) == up.CHANGED_BY_HAND
    assert "pre-update backup b.zip restored, release rolled back to revision 4" in (
        up.stalled_message(done)
    )
    # the forced revert failing: its own reason and message
    broken = up.move(again, up.next_update_action(FULL, up.RESTORE, FAILED_WORK), now=NOW,
                     why="job acme-update-restore failed")  # fmt: skip
    assert up.stalled_reason(broken) == "UpdateRestoreFailed"
    assert "then restore failed: job acme-update-restore failed" in up.stalled_message(broken)
    # before the update changed data (the backup step): the revert is the rollback alone
    at_backup = {"step": up.BACKUP, "fromRevision": 4, "headRevision": 5}
    early = up.interrupted(at_backup, 6, now=NOW)
    assert early["interruptedBy"]["revertFrom"] == up.ROLLBACK
    assert "may have changed the database" not in up.stalled_message(early)
    assert "(it rolls the release back to revision 4)" in up.stalled_message(early)
    # during the revert's restore: the first failure is kept, the restore runs again
    restoring = {"step": up.RESTORE, "failedStep": up.CHECK, "message": "sign-in refused",
                 "headRevision": 6, "backup": "b.zip", "fromRevision": 4}  # fmt: skip
    late = up.interrupted(restoring, 7, now=NOW)
    assert (late["failedStep"], late["message"]) == (up.CHECK, "sign-in refused")
    assert late["interruptedBy"]["revertFrom"] == up.RESTORE


def test_stalled_reason_without_a_record() -> None:
    assert up.stalled_reason({}) == "UpdateFailed"
    assert up.stalled_reason({"failedStep": up.BACKUP, "reverted": True}) == (
        "PreUpdateBackupFailed"
    )


# -- when an update starts --------------------------------------------------------------


@pytest.mark.parametrize(
    ("progress", "generation", "changed", "force", "due"),
    [
        (None, 1, False, False, up.NONE),
        (None, 1, True, False, up.START),
        # under way: run to its end, whatever the spec says now (a new generation waits)
        ({"step": up.UPDATE, "generation": 1}, 2, True, False, up.RUN),
        ({"step": up.RESTORE, "generation": 1}, 1, False, True, up.RUN),
        # done: a new spec may start another; the same one is not run in a loop
        ({"step": up.DONE, "generation": 1}, 2, True, False, up.START),
        ({"step": up.DONE, "generation": 1}, 1, True, False, up.NONE),
        ({"step": up.DONE, "generation": 1}, 1, True, True, up.START),
        # stalled and reverted: held for this generation, a new one or a force starts again
        ({"step": up.STALLED, "generation": 1, "reverted": True}, 1, True, False, up.HOLD),
        ({"step": up.STALLED, "generation": 1, "reverted": True}, 1, True, True, up.START),
        ({"step": up.STALLED, "generation": 1, "reverted": True}, 2, True, False, up.START),
        ({"step": up.STALLED, "generation": 1, "reverted": True}, 2, False, False, up.NONE),
        # stalled with a failed revert: held whatever the spec; a force retries the revert
        ({"step": up.STALLED, "generation": 1, "reverted": False}, 2, True, False, up.HOLD),
        ({"step": up.STALLED, "generation": 1, "reverted": False}, 2, False, False, up.HOLD),
        (
            {"step": up.STALLED, "generation": 1, "reverted": False},
            1,
            True,
            True,
            up.RETRY_REVERT,
        ),
    ],
)
def test_update_due(
    progress: dict[str, Any] | None, generation: int, changed: bool, force: bool, due: str
) -> None:
    assert up.update_due(progress, generation=generation, changed=changed, force=force) == due


def test_next_attempt() -> None:
    assert up.next_attempt(None, 3) == 1
    assert up.next_attempt({"generation": 2, "attempt": 4}, 3) == 1
    assert up.next_attempt({"generation": 3}, 3) == 2
    assert up.next_attempt({"generation": 3, "attempt": 2}, 3) == 3


def test_retry_revert_re_enters_the_failed_revert_step_under_a_new_attempt() -> None:
    stalled = {"step": up.STALLED, "generation": 3, "attempt": 1, "failedStep": up.UPDATE,
               "message": "KeyError", "backup": "b.zip", "fromRevision": 4, "reverted": False,
               "revertFailedStep": up.RESTORE, "revertMessage": "disk full", "stepFrom": 6,
               "finishedAt": "2026-12-06T12:00:00Z"}  # fmt: skip
    retried = up.retry_revert(stalled)
    assert retried == {"step": up.RESTORE, "generation": 3, "attempt": 2,
                       "failedStep": up.UPDATE, "message": "KeyError", "backup": "b.zip",
                       "fromRevision": 4}  # fmt: skip
    assert up.update_due(retried, generation=9, changed=True, force=False) == up.RUN
    with pytest.raises(ValueError):
        up.retry_revert({**stalled, "reverted": True})
    with pytest.raises(ValueError):
        up.retry_revert({"step": up.RESTORE})


# -- names, status ----------------------------------------------------------------------


def test_work_names_are_fixed_per_object_generation_and_attempt() -> None:
    uid = "1a2b3c4d-0000-4000-8000-000000000000"
    names = up.work_names("acme", uid, 7)
    assert names == {
        up.BACKUP: "acme-preupdate-1a2b3c4d-7",
        up.UPDATE: "acme-update-1a2b3c4d-7",
        up.RESTORE: "acme-update-restore-1a2b3c4d-7",
    }
    assert names == up.work_names("acme", uid, 7)  # a restarted operator finds them
    assert up.work_names("acme", uid, 7, attempt=2)[up.UPDATE] == "acme-update-1a2b3c4d-7-2"
    assert up.work_names("acme", uid, 8)[up.UPDATE] != names[up.UPDATE]
    longest = up.work_names("a" * 30, uid, 10**9, attempt=99)
    assert all(len(name) <= 63 for name in longest.values())


def test_update_status_keeps_the_start_and_drops_none() -> None:
    first = up.update_status(None, step=up.STOP, now=NOW, generation=2, attempt=1,
                             change=CHANGE.to_status(), fromRevision=4)  # fmt: skip
    later = up.update_status(first, step=up.DONE, now=NOW + timedelta(minutes=3),
                             message=None, stagedRevision=5)  # fmt: skip
    assert later["startedAt"] == "2026-12-06T12:00:00Z"
    assert later["finishedAt"] == "2026-12-06T12:03:00Z"
    assert later["fromRevision"] == 4 and later["stagedRevision"] == 5
    assert "message" not in later and "finishedAt" not in first


# -- helm steps as observed -------------------------------------------------------------


def rel(revision: int, status: str, age: timedelta = timedelta(0)) -> ReleaseInfo:
    return ReleaseInfo(revision, status, NOW - age)


HELD = OperationLock(holder="op-1", operation="update", digest="d", expires=NOW + STALE)
GONE = OperationLock(holder="op-1", operation="update", digest="d", expires=NOW - STALE)


@pytest.mark.parametrize(
    ("head", "lock", "seen"),
    [
        (rel(4, "deployed"), None, ABSENT),  # not started (or refused without a revision)
        (rel(4, "deployed"), HELD, RUNNING),  # about to run
        (rel(5, "pending-upgrade"), HELD, RUNNING),
        (rel(5, "pending-upgrade"), None, RUNNING),  # young, no lock: helm may still run
        (rel(5, "pending-upgrade", STALE * 2), None, FAILED_WORK),
        (rel(5, "pending-upgrade"), GONE, FAILED_WORK),  # its operator is gone
        (rel(5, "failed"), None, FAILED_WORK),
        (rel(5, "deployed"), None, SUCCEEDED),
        (None, None, ABSENT),
    ],
)
def test_release_step_state(
    head: ReleaseInfo | None, lock: OperationLock | None, seen: str
) -> None:
    assert up.release_step_state(head, 4, lock, NOW, STALE) == seen


def test_a_vanished_update_job_is_a_failure_never_a_second_update() -> None:
    started = {"step": up.UPDATE, "work": up.UPDATE}
    assert up.work_state(up.UPDATE, ABSENT, started) == FAILED_WORK
    assert up.work_state(up.UPDATE, ABSENT, {"step": up.UPDATE}) == ABSENT  # not created yet
    assert up.work_state(up.UPDATE, RUNNING, started) == RUNNING
    # a backup or a restore is taken again
    assert up.work_state(up.RESTORE, ABSENT, {"step": up.RESTORE, "work": up.RESTORE}) == ABSENT
    assert up.work_state(up.BACKUP, ABSENT, {"step": up.BACKUP, "work": up.BACKUP}) == ABSENT
    moved = up.move(started, up.UpdateAction("advance", up.UPDATE, up.ROLLOUT), now=NOW)
    assert "work" not in moved


def test_rollback_state() -> None:
    # the failure came before helm made a revision: nothing to roll back
    assert up.rollback_state(rel(4, "deployed"), 4, 4, None, NOW, STALE) == SUCCEEDED
    assert up.rollback_state(rel(6, "failed"), 4, 6, None, NOW, STALE) == ABSENT
    assert up.rollback_state(rel(7, "deployed"), 4, 6, None, NOW, STALE) == SUCCEEDED
    assert up.rollback_state(rel(7, "failed"), 4, 6, None, NOW, STALE) == FAILED_WORK


# -- the update Job ---------------------------------------------------------------------

IMAGE = "docker.io/library/odoo:18.0-20251201"


def deployment(image: str = IMAGE) -> dict[str, Any]:
    init = {
        "name": "odoo-init",
        "image": image,
        "command": [
            "python3",
            "/opt/odoo-tenant/odoo-init.py",
            "--template=/etc/t/odoo.conf",
            "--config=/run/odoo/odoo.conf",
            "--timeout=300",
            "--initialize",
            "--init-flag=--without-demo=all",
            "--from-template=k",
            "--template-wait=60",
            "--copy",
        ],
        "resources": {"limits": {"memory": "1536Mi"}},
    }
    web = {"name": "odoo", "image": image, "resources": {"limits": {"memory": "3Gi"}}}
    return {
        "metadata": {"name": "acme-odoo", "namespace": "tenant-acme",
                     "labels": {"saasodoo.dev/tenant": "acme"}},  # fmt: skip
        "spec": {"replicas": 0, "template": {
            "metadata": {"labels": {"app.kubernetes.io/component": "odoo"}},
            "spec": {"initContainers": [init], "containers": [web],
                     "volumes": [{"name": "config", "emptyDir": {}}]},
        }},
    }  # fmt: skip


def test_update_job_runs_odoo_init_update_with_the_staged_revision() -> None:
    source = deployment()
    job = up.update_job(source, "acme-update-1a2b3c4d-7", image=IMAGE)
    assert job["metadata"] == {
        "name": "acme-update-1a2b3c4d-7",
        "namespace": "tenant-acme",
        "labels": {"saasodoo.dev/tenant": "acme", up.UPDATE_JOB_LABEL: up.UPDATE},
    }
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 3600
    assert spec["ttlSecondsAfterFinished"] == 7 * 24 * 3600  # kept a week, then removed
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["initContainers"] == []
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == [
        "python3", "/opt/odoo-tenant/odoo-init.py", "--template=/etc/t/odoo.conf",
        "--config=/run/odoo/odoo.conf", "--timeout=300", "--update",
    ]  # fmt: skip
    assert container["resources"] == {"limits": {"memory": "3Gi"}}  # the web container's
    assert container["readinessProbe"]["exec"]["command"] == ["false"]
    assert pod["volumes"] == [{"name": "config", "emptyDir": {}}]
    assert spec["template"]["metadata"]["labels"][up.UPDATE_JOB_LABEL] == up.UPDATE
    assert source == deployment()  # the input is not changed


def test_update_job_memory_and_deadline_come_from_the_settings() -> None:
    source = deployment()
    job = up.update_job(source, "j", image=IMAGE, deadline_seconds=7200, memory="6Gi")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == {"limits": {"memory": "6Gi"}, "requests": {"memory": "6Gi"}}
    assert job["spec"]["activeDeadlineSeconds"] == 7200
    assert source == deployment()  # the web container's resources are not changed
    settings = Settings(update_deadline_seconds=600, update_memory="1500M")
    assert (settings.update_deadline_seconds, settings.update_memory) == (600, "1500M")
    for bad in ("0", "2GB", "lots"):
        with pytest.raises(ValueError, match="update_memory"):
            Settings(update_memory=bad)
    with pytest.raises(ValueError, match="update_deadline_seconds"):
        Settings(update_deadline_seconds=10)


def test_update_job_refuses_the_old_code_and_a_template_without_odoo_init() -> None:
    with pytest.raises(ValueError, match="stop"):
        up.update_job(deployment("docker.io/library/odoo:18.0"), "j", image=IMAGE)
    bare = deployment()
    bare["spec"]["template"]["spec"]["initContainers"] = []
    with pytest.raises(ValueError, match="no odoo-init"):
        up.update_job(bare, "j")
