"""The operator's update executor on the simulated cluster (issue 25 point 2): an OdooTenant
whose spec moves to another Odoo image of its series is reconciled turn by turn, as the work
queue would, against the real API server and real helm. What kwok cannot run is played
here: its Jobs complete without running a container (odoo-init --update and the restore are
tested on real Odoo in tests/odoo/test_update.py), no backup storage is reachable (the
pre-update backup's name is given by a stub when the test wants the backup to be known), and
the signed-in check (helm test) is a stub. Real pods: tests/realnode/test_update_on_real_node.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from saasodoo.backups.results import BackupInfo
from saasodoo.core import updates as up
from saasodoo.core.crd import UPDATE_RESOLVED_AT
from saasodoo.operator.controller import FORCE_ANNOTATION, TenantController
from tests.cluster.test_copy_executor import condition, controller_in, converge, status, turn
from tests.support import Cluster, namespace_record

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-updexec"
NEW_TAG = {"odoo": {"image": {"tag": "18.0-20990101"}}}


@pytest.fixture(scope="module")
def ctl(kube: Cluster) -> Iterator[TenantController]:
    yield from controller_in(kube, NAMESPACE)


def history(kube: Cluster, name: str) -> list[dict[str, Any]]:
    out = kube.helm(4, "history", name, "-n", f"tenant-{name}", "-o", "json").stdout
    return list(json.loads(out))


def image_of(kube: Cluster, name: str) -> str:
    out = kube.kubectl("-n", f"tenant-{name}", "get", "deploy", "-l",
                       "app.kubernetes.io/component=odoo", "-o",
                       "jsonpath={.items[0].spec.template.spec.containers[0].image}")  # fmt: skip
    return str(out)


def steps_seen(ctl: TenantController, name: str, limit: float = 240) -> list[str]:
    """Turns until the update is over; the steps ``status.update`` showed."""
    seen: list[str] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        result = turn(ctl, name)
        step = str((status(ctl, name).get("update") or {}).get("step"))
        if not seen or seen[-1] != step:
            seen.append(step)
        if step in (up.DONE, up.STALLED):
            return seen
        time.sleep(min(result.requeue_after or 1.0, 2.0))
    raise AssertionError(f"{name}: the update did not end: {status(ctl, name)}")


def create(ctl: TenantController, name: str) -> None:
    spec = {"adminEmail": f"boss@{name}.example", "finalBackup": False}
    ctl.resources.create({"metadata": {"name": name}, "spec": spec})
    converge(ctl, name)
    assert condition(ctl, name, "Ready")["status"] == "True", status(ctl, name)


def test_a_new_image_goes_through_stop_backup_update_rollout_and_check(
    ctl: TenantController, kube: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "upd-good"
    create(ctl, name)
    before = history(kube, name)[-1]["revision"]
    checks: list[str] = []

    async def signed_in(spec: Any, *, timeout: str | None = None) -> None:
        checks.append(spec.id)

    def taken(tenant_id: str, cronjob: Any, kind: str, started: datetime, reported: Any) -> Any:
        return BackupInfo(f"{started:%Y%m%dT%H%M%SZ}-pre-update.zip", tenant_id, kind,
                          datetime.now(UTC), "18.0", tenant_id, {})  # fmt: skip

    monkeypatch.setattr(ctl.tenants, "check_ready", signed_in)
    monkeypatch.setattr(ctl.updater.backups, "taken", taken)
    ctl.resources.patch(name, {"spec": {"overrides": NEW_TAG}})
    seen = steps_seen(ctl, name)
    assert seen == [up.STOP, up.BACKUP, up.UPDATE, up.ROLLOUT, up.DONE], seen
    progress = status(ctl, name)["update"]
    assert progress["change"]["reasons"] == ["image"]
    assert progress["change"]["toImage"].endswith(":18.0-20990101")
    assert progress["fromRevision"] == before and progress["backup"].endswith("-pre-update.zip")
    assert progress["job"] == up.work_names(name, ctl.resources.get(name)["metadata"]["uid"],
                                            progress["generation"])[up.UPDATE]  # fmt: skip
    assert checks == [name]
    # The update Job ran the staged revision's odoo-init with --update and the new image.
    job = kube.kubectl("-n", f"tenant-{name}", "get", "job", progress["job"], "-o", "json")
    container = json.loads(job)["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-1] == "--update" and container["image"].endswith("20990101")
    assert image_of(kube, name).endswith(":18.0-20990101")
    converge(ctl, name)  # the ordinary reconcile: the spec as it is (the Ingress back), Ready
    assert condition(ctl, name, "Ready")["status"] == "True", status(ctl, name)
    # Three revisions: the stop (Odoo at zero, the new code staged), the rollout without an
    # Ingress (no user writes to the new code before the signed-in check passed), then the
    # ordinary reconcile's, with it.
    revisions = history(kube, name)
    assert [r["revision"] for r in revisions][-3:] == [before + 1, before + 2, before + 3]
    assert "update stop" in revisions[-3]["description"]
    assert "no Ingress until the signed-in check" in revisions[-2]["description"]
    for revision, ingress in ((before + 2, False), (before + 3, True)):
        got = kube.helm(4, "get", "values", name, "-n", f"tenant-{name}", "--revision",
                        str(revision), "-o", "json")  # fmt: skip
        values = json.loads(got.stdout)
        assert values.get("ingress", {}).get("enabled", True) is ingress, (revision, values)
    assert kube.kubectl("-n", f"tenant-{name}", "get", "ingress", "-o", "name").strip()
    converge(ctl, name)
    assert len(history(kube, name)) == len(revisions)
    # The record the helm steps wrote: on the OdooTenant, none on the namespace.
    assert namespace_record(kube, name) == {}
    record = status(ctl, name)["record"]
    assert record["applied"]["revision"] == before + 3 and "operation" not in record


def test_an_update_whose_backup_is_not_known_is_rolled_back_and_stalled(
    ctl: TenantController, kube: Cluster
) -> None:
    """Without a reachable storage or a log the pre-update backup has no name: the update is
    not run (it could not be undone), the release goes back to its revision before, Stalled."""
    name = "upd-bad"
    create(ctl, name)
    before = history(kube, name)[-1]["revision"]
    old_image = image_of(kube, name)
    ctl.resources.patch(name, {"spec": {"overrides": NEW_TAG}})
    seen = steps_seen(ctl, name)
    assert seen == [up.STOP, up.BACKUP, up.ROLLBACK, up.STALLED], seen
    progress = status(ctl, name)["update"]
    assert progress["failedStep"] == up.BACKUP and progress["reverted"] is True
    assert "its backup is not known" in progress["message"]
    stalled = condition(ctl, name, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "PreUpdateBackupFailed"
    assert "rolled back to revision" in stalled["message"]
    assert condition(ctl, name, "Ready")["status"] == "False"
    # Flux's remediation terms: the target is not released, the rollback remediated it.
    released, remediated = condition(ctl, name, "Released"), condition(ctl, name, "Remediated")
    assert (released["status"], released["reason"]) == ("False", "UpgradeFailed")
    assert (remediated["status"], remediated["reason"]) == ("True", "RollbackSucceeded")
    revisions = history(kube, name)
    assert revisions[-1]["description"] == f"Rollback to {before}", revisions
    assert image_of(kube, name) == old_image
    # Held: later turns change nothing (no helm call, no new revision).
    assert turn(ctl, name).requeue_after is None
    assert len(history(kube, name)) == len(revisions)
    uid = ctl.resources.get(name)["metadata"]["uid"]
    names = up.work_names(name, uid, progress["generation"])
    job = ctl.ctx.kube.read_job(f"tenant-{name}", names[up.BACKUP])
    assert job.labels[up.UPDATE_JOB_LABEL] == up.BACKUP
    # A later spec change that asks for the same code (a pod annotation beside the same
    # image) is held too: the failing update is not started again, nothing is applied.
    pod_note = {"odoo": {**NEW_TAG["odoo"], "podAnnotations": {"example.com/note": "x"}}}
    ctl.resources.patch(name, {"spec": {"overrides": pod_note}})
    assert turn(ctl, name).requeue_after is None
    assert len(history(kube, name)) == len(revisions)
    assert status(ctl, name)["update"]["generation"] == progress["generation"]
    held = condition(ctl, name, "Stalled")
    generation = ctl.resources.get(name)["metadata"]["generation"]
    assert held["status"] == "True" and held["observedGeneration"] == generation, held
    assert f"Generation {generation} asks for the same Odoo code" in held["message"]
    assert condition(ctl, name, "Ready")["status"] == "False"
    # Another image is another target: a new update starts (and fails the same way here).
    other = {"odoo": {"image": {"tag": "18.0-20990102"}}}
    ctl.resources.patch(name, {"spec": {"overrides": other}})
    assert steps_seen(ctl, name)[0] == up.STOP
    assert status(ctl, name)["update"]["generation"] == generation + 1


def rolled_back_by_hand_at_the_backup(
    ctl: TenantController, kube: Cluster, name: str
) -> tuple[int, str]:
    """A tenant whose update to NEW_TAG an SRE interrupts with ``helm rollback`` to the
    revision before it while the pre-update backup runs, then one turn; the revision before
    the update and the image it runs."""
    create(ctl, name)
    before = history(kube, name)[-1]["revision"]
    old_image = image_of(kube, name)
    ctl.resources.patch(name, {"spec": {"overrides": NEW_TAG}})
    deadline = time.monotonic() + 120
    while (status(ctl, name).get("update") or {}).get("step") != up.BACKUP:
        assert time.monotonic() < deadline, status(ctl, name)
        turn(ctl, name)
        time.sleep(0.5)
    progress = status(ctl, name)["update"]
    assert progress["headRevision"] == progress["stagedRevision"] == before + 1, progress
    kube.helm(4, "rollback", name, str(before), "-n", f"tenant-{name}", "--wait")
    assert turn(ctl, name).requeue_after is None
    return before, old_image


def test_an_sres_helm_rollback_during_an_update_stops_it_and_a_force_undoes_it(
    ctl: TenantController, kube: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SRE rolls the release back by hand while the update waits for its pre-update
    backup: the update stops there (Stalled UpdateChangedByHand, its later steps never run
    over the hand's revision, nothing undone), held on later turns; a force runs its revert
    (the rollback to the revision before the update: no data changed yet)."""
    name = "upd-hand"
    before, old_image = rolled_back_by_hand_at_the_backup(ctl, kube, name)
    hand = before + 2
    progress = status(ctl, name)["update"]
    assert progress["step"] == up.STALLED and progress["interruptedBy"] == {
        "revision": hand, "step": up.BACKUP, "revertFrom": up.ROLLBACK}, progress  # fmt: skip
    stalled = condition(ctl, name, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", up.CHANGED_BY_HAND), stalled
    assert f"revision {hand} of the release was made outside it" in stalled["message"]
    assert condition(ctl, name, "Ready")["status"] == "False"
    # Held: no revision over the hand's, the old image serves.
    assert turn(ctl, name).requeue_after is None
    assert [r["revision"] for r in history(kube, name)][-1] == hand
    assert image_of(kube, name) == old_image
    # A force undoes the update: the rollback to the revision before it, then held
    # reverted (the target is not retried by itself).
    ctl.resources.patch(
        name, {"metadata": {"annotations": {FORCE_ANNOTATION: "2026-12-07T15:00:00Z"}}}
    )
    assert steps_seen(ctl, name)[-2:] == [up.ROLLBACK, up.STALLED]
    progress = status(ctl, name)["update"]
    assert progress["reverted"] is True and progress["attempt"] == 2, progress
    assert status(ctl, name)["lastHandledForceAt"] == "2026-12-07T15:00:00Z"
    revisions = history(kube, name)
    assert revisions[-1]["description"] == f"Rollback to {before}", revisions
    stalled = condition(ctl, name, "Stalled")
    assert stalled["reason"] == up.CHANGED_BY_HAND, stalled
    assert f"release rolled back to revision {before}" in stalled["message"]
    assert image_of(kube, name) == old_image


def test_a_stalled_update_said_resolved_by_hand_hands_the_tenant_back(
    ctl: TenantController, kube: Cluster
) -> None:
    """The other way out of an interrupted update (not reverted: held whatever the spec):
    saasodoo.dev/update-resolved-at. status.update is dropped, the value echoed, and the
    ordinary reconcile takes the tenant back from what runs, the hand's revision: the spec
    still asks for the new image, whose -u the database never saw (the update was stopped
    at its backup), so a new update starts, never a plain helm upgrade to the new code. A
    spec set to the image that runs is then applied as any spec change: Ready."""
    name = "upd-resolved"
    before, old_image = rolled_back_by_hand_at_the_backup(ctl, kube, name)
    assert condition(ctl, name, "Stalled")["reason"] == up.CHANGED_BY_HAND
    ctl.resources.patch(
        name, {"metadata": {"annotations": {UPDATE_RESOLVED_AT: "2026-12-07T15:30:00Z"}}}
    )
    turn(ctl, name)
    got = status(ctl, name)
    assert "update" not in got and got["lastHandledUpdateResolvedAt"] == "2026-12-07T15:30:00Z"
    reasons = kube.kubectl("-n", NAMESPACE, "get", "events", "--field-selector",
                           f"involvedObject.name={name}", "-o",
                           "jsonpath={.items[*].reason}")  # fmt: skip
    assert "UpdateResolvedByHand" in reasons.split()
    turn(ctl, name)
    progress = status(ctl, name)["update"]
    assert progress["step"] == up.STOP and progress["fromRevision"] == before + 2, progress
    assert progress["change"]["fromImage"] == old_image, progress
    assert steps_seen(ctl, name)[-1] == up.STALLED  # (kwok: its backup is not known)
    assert image_of(kube, name) == old_image
    # The spec set to what runs: no code change from it, applied, Ready.
    ctl.resources.patch(name, {"spec": {"overrides": None}})
    converge(ctl, name)
    assert condition(ctl, name, "Ready")["status"] == "True", status(ctl, name)
    assert image_of(kube, name) == old_image
