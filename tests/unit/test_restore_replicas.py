"""Which replicas a restore gives Odoo back (``replicas_before``): the Deployment's own, or the
note a failed restore left when it kept Odoo stopped, if nothing changed the Deployment since."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from saasodoo.adapters.kube import Deployment
from saasodoo.backups.restore import REPLICAS_ANNOTATION, RestoreChoreography, replicas_before
from saasodoo.backups.results import JobOutcome
from saasodoo.errors import InvalidInput, TransientClusterError

pytestmark = pytest.mark.unit


def deployment(replicas: int, generation: int, note: str | None = None) -> Deployment:
    annotations = {REPLICAS_ANNOTATION: note} if note is not None else {}
    return Deployment("odoo", replicas, generation, annotations)


@pytest.mark.parametrize(
    ("replicas", "generation", "note", "expected"),
    [
        (2, 5, None, 2),  # no note: as it is
        (0, 5, None, 0),  # suspended, no note: stays at zero
        (0, 5, "3@5", 3),  # left stopped by a failed restore, untouched since: back to 3
        (0, 6, "3@5", 0),  # changed since (helm upgrade, resume, suspend): the note is stale
        (1, 5, "3@5", 1),  # running: its own count wins
        (0, 5, "three@5", 0),  # a note saasodoo did not write
        (0, 5, "3", 0),  # no generation: not trusted
    ],
)
def test_replicas_to_give_back(replicas: int, generation: int, note: str | None,
                               expected: int) -> None:  # fmt: skip
    assert replicas_before(deployment(replicas, generation, note)) == expected


class StoppedOdoo:
    """The cluster calls of a restore (one Odoo Deployment of 1 replica), recorded."""

    def __init__(self) -> None:
        self.scaled: list[int] = []

    def list_jobs(self, namespace: str, selector: str) -> list[Any]:
        return []

    def list_deployments(self, namespace: str, selector: str) -> list[Deployment]:
        return [deployment(1, 3)]

    def scale_deployment(self, namespace: str, name: str, count: int, notes: Any) -> None:
        self.scaled.append(count)

    def list_pods(self, namespace: str, selector: str) -> list[Any]:
        return []


class OneJob:
    def restore_job(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"spec": {}}


def test_a_backup_the_restore_program_refused_is_bad_input_and_odoo_runs_again() -> None:
    """restore.py refused the backup before touching anything (issue #22: another Odoo
    series, member names it cannot restore): InvalidInput with its reason, Odoo scaled back."""
    now = datetime.now(UTC)
    error = "x.zip is a backup of Odoo 17.0; the tenant runs Odoo 18.0. Restore ..."
    outcome = JobOutcome("acme-restore-1", False, "exit code 3", now, now,
                         {"ok": False, "refused": True, "error": error})  # fmt: skip
    kube = StoppedOdoo()
    choreography = RestoreChoreography(
        kube,  # type: ignore[arg-type]
        OneJob(),  # type: ignore[arg-type]
        lambda body, timeout: outcome,
        poll_seconds=0,
    )
    cronjob = {"metadata": {"name": "backup", "namespace": "tenant-acme"}, "spec": {}}
    with pytest.raises(InvalidInput) as refused:
        choreography.run("acme", cronjob, "x.zip", timeout=60)
    assert refused.value.message == f"restore of 'acme' refused (job acme-restore-1): {error}"
    assert kube.scaled == [0, 1]


def test_a_finished_pod_of_odoo_s_labels_does_not_hold_a_restore() -> None:
    """A staging copy's neutralize Job runs a pod from the web pod's template (its labels):
    once finished it holds no connection, so the restore does not wait for it to go (a
    refresh of a copy waited for it until its deadline)."""
    from saasodoo.adapters.kube import Pod

    class FinishedNeutralizer(StoppedOdoo):
        def list_pods(self, namespace: str, selector: str) -> list[Any]:
            return [Pod("rnstg-copy-neutralize-1-abcde", namespace, phase="Succeeded")]

    class RunningOdoo(StoppedOdoo):
        def list_pods(self, namespace: str, selector: str) -> list[Any]:
            return [Pod("rnstg-odoo-1-abcde", namespace, phase="Running")]

    done = RestoreChoreography(FinishedNeutralizer(), None, None, poll_seconds=0)  # type: ignore[arg-type]
    done.wait_no_odoo_pods("tenant-rnstg", timeout=0)
    waiting = RestoreChoreography(RunningOdoo(), None, None, poll_seconds=0)  # type: ignore[arg-type]
    with pytest.raises(TransientClusterError, match="still there after 0s"):
        waiting.wait_no_odoo_pods("tenant-rnstg", timeout=0)
