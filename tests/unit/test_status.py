"""Status classification from what the cluster shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from saasodoo.core.status import Observation, Phase, ReleaseInfo, Workload, classify

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
