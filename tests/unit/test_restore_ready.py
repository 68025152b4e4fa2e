"""A restore is complete when Odoo is Ready again, not when it is scaled back (#22, point 15c):
``RestoreChoreography.run`` returns only once Odoo's Deployments report their pods Ready, and
says so when they do not in time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from saasodoo.adapters.kube import Deployment
from saasodoo.backups import restore as restore_module
from saasodoo.backups.restore import RestoreChoreography
from saasodoo.backups.results import JobOutcome
from saasodoo.errors import SaasodooError

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 5, tzinfo=UTC)
CRONJOB = {
    "metadata": {"namespace": "tenant-acme", "name": "acme-backup"},
    "spec": {"jobTemplate": {"spec": {}}},
}


@dataclass
class OdooKube:
    """Odoo's Deployment `acme` (1 replica): scaled as asked; once scaled back it turns Ready
    after ``ready_after`` more reads (never, with None)."""

    ready_after: int | None = 2
    replicas: int = 1
    generation: int = 1
    reads_since_scale: int = 0
    calls: list[str] = field(default_factory=list)

    def list_deployments(self, namespace: str, selector: str) -> list[Deployment]:
        self.reads_since_scale += 1
        ready = (
            self.replicas
            if self.ready_after is not None and self.reads_since_scale > self.ready_after
            else 0
        )
        status = {
            "readyReplicas": ready,
            "updatedReplicas": self.replicas,
            "observedGeneration": self.generation,
        }
        meta = {"name": "acme", "generation": self.generation}
        return [Deployment.from_json({"metadata": meta, "spec": {"replicas": self.replicas},
                                      "status": status})]  # fmt: skip

    def scale_deployment(self, namespace: str, name: str, count: int, notes: Any) -> None:
        self.replicas, self.generation, self.reads_since_scale = count, self.generation + 1, 0
        self.calls.append(f"scale {name} {count}")

    def list_pods(self, namespace: str, selector: str) -> list[Any]:
        return []

    def list_jobs(self, namespace: str, selector: str) -> list[Any]:
        return []


class Jobs:
    def restore_job(self, tenant_id: str, cronjob: Any, backup: Any, **kw: Any) -> dict[str, Any]:
        return {"spec": {}}


def run_job(body: dict[str, Any], *, timeout: float) -> JobOutcome:
    return JobOutcome("acme-restore-1", True, "Complete", NOW, NOW, {"ok": True})


def choreography(kube: OdooKube) -> RestoreChoreography:
    return RestoreChoreography(kube, Jobs(), run_job, poll_seconds=0)  # type: ignore[arg-type]


def test_the_restore_returns_once_odoo_is_ready_again() -> None:
    kube = OdooKube(ready_after=3)
    result = choreography(kube).run("acme", CRONJOB, None)
    assert kube.calls == ["scale acme 0", "scale acme 1"]
    assert kube.reads_since_scale > 3, "returned before Odoo's pods were Ready"
    assert result.ready_seconds is not None
    assert result.to_dict()["odoo_ready_after_seconds"] == result.ready_seconds


def test_odoo_not_ready_in_time_is_an_error_that_says_the_data_was_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(restore_module, "READY_SECONDS", 0.05)
    kube = OdooKube(ready_after=None)
    with pytest.raises(SaasodooError) as caught:
        choreography(kube).run("acme", CRONJOB, None)
    message = str(caught.value)
    assert "restore of 'acme' done (job acme-restore-1)" in message
    assert "Odoo of tenant-acme not Ready after 0s (acme 0/1 ready)" in message
    assert "saasodoo tenant status acme" in message


def test_a_suspended_tenant_is_not_waited_for() -> None:
    kube = OdooKube(ready_after=None, replicas=0)
    result = choreography(kube).run("acme", CRONJOB, None)
    assert result.ready_seconds is not None and result.scaled_back == {"acme": 0}


@pytest.mark.parametrize(
    ("replicas", "generation", "ready_replicas", "updated", "observed", "ready"),
    [
        (2, 3, 2, 2, 3, True),
        (2, 3, 1, 2, 3, False),  # one pod not Ready yet
        (2, 4, 2, 2, 3, False),  # the controller has not seen the scale
        (2, 3, 2, 1, 3, False),  # an old pod still counted as Ready
        (0, 3, 0, 0, 3, True),
    ],
)
def test_deployment_ready(replicas: int, generation: int, ready_replicas: int, updated: int,
                          observed: int, ready: bool) -> None:  # fmt: skip
    obj = {
        "metadata": {"name": "a", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "readyReplicas": ready_replicas,
            "updatedReplicas": updated,
            "observedGeneration": observed,
        },
    }
    assert Deployment.from_json(obj).ready is ready


def test_deployment_status_is_read() -> None:
    obj = {
        "metadata": {"name": "a", "generation": 4},
        "spec": {"replicas": 2},
        "status": {"readyReplicas": 2, "updatedReplicas": 2, "observedGeneration": 4},
    }
    assert Deployment.from_json(obj).ready
    assert not Deployment.from_json({**obj, "status": {}}).ready
