"""Status classification from what the cluster shows: the conditions of an OdooTenant."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from saasodoo.core.conditions import CONDITION_TYPES
from saasodoo.core.crd import Condition
from saasodoo.core.status import (
    Observation,
    OperationLock,
    ReleaseInfo,
    SetPod,
    StatefulSetPods,
    TenantStatus,
    Workload,
    classify,
    stuck_pods,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
OLD = NOW - timedelta(hours=2)
ODOO_READY = Workload("Deployment", "acme-odoo", "odoo", desired=1, ready=1, updated=1)
ODOO_WAIT = Workload("Deployment", "acme-odoo", "odoo", desired=1, ready=0, updated=1)
ODOO_ZERO = Workload("Deployment", "acme-odoo", "odoo", desired=0, ready=0, updated=0)
PG_READY = Workload("StatefulSet", "acme-postgresql", "postgresql", desired=1, ready=1, updated=1)


def rel(status: str = "deployed", revision: int = 1, updated: datetime = OLD) -> ReleaseInfo:
    return ReleaseInfo(revision=revision, status=status, updated=updated, description="boom")


def conditions(status: TenantStatus) -> dict[str, tuple[str, str]]:
    """Each condition's (status, reason), by type."""
    return {c["type"]: (c["status"], c["reason"]) for c in status.conditions}


RELEASED_1 = {"Released": ("True", "InstallSucceeded")}
PROGRESSING = {"Ready": ("Unknown", "Progressing"), "Reconciling": ("True", "Progressing")}


@pytest.mark.parametrize(
    ("ns_phase", "release", "workloads", "expected", "kstatus", "message"),
    [
        pytest.param("Active", rel(), (ODOO_READY, PG_READY),
                     {"Ready": ("True", "InstallSucceeded"), **RELEASED_1}, "Current",
                     "Helm install succeeded (revision 1)", id="deployed and ready"),
        pytest.param("Active", rel(revision=3), (ODOO_READY, PG_READY),
                     {"Ready": ("True", "UpgradeSucceeded"),
                      "Released": ("True", "UpgradeSucceeded")}, "Current",
                     "Helm upgrade succeeded (revision 3)", id="upgraded and ready"),
        pytest.param("Active", rel(), (ODOO_ZERO, PG_READY),
                     {"Ready": ("True", "Suspended"), **RELEASED_1}, "Current",
                     "suspended: Odoo scaled to zero; data kept", id="suspended"),
        pytest.param("Active", rel("pending-install"), (), PROGRESSING, "InProgress",
                     "helm install in progress", id="pending install"),
        pytest.param("Active", rel("pending-upgrade"), (ODOO_READY,), PROGRESSING, "InProgress",
                     "helm upgrade in progress", id="pending upgrade"),
        pytest.param("Active", rel("pending-rollback"), (ODOO_READY,), PROGRESSING,
                     "InProgress", "helm rollback in progress", id="pending rollback"),
        pytest.param("Active", rel("failed"), (ODOO_READY,),
                     {"Ready": ("False", "InstallFailed"), "Released": ("False", "InstallFailed")},
                     "InProgress", "revision 1 failed: boom", id="install failed"),
        pytest.param("Active", rel("failed", revision=4), (ODOO_READY,),
                     {"Ready": ("False", "UpgradeFailed"), "Released": ("False", "UpgradeFailed")},
                     "InProgress", "revision 4 failed: boom", id="upgrade failed"),
        pytest.param("Active", rel(), (ODOO_WAIT, PG_READY), {**PROGRESSING, **RELEASED_1},
                     "InProgress", "Helm install succeeded (revision 1); waiting for the "
                     "workloads to become ready: deployment/acme-odoo 0/1 ready",
                     id="workloads not ready"),
        pytest.param("Active", rel(), (), {**PROGRESSING, **RELEASED_1}, "InProgress",
                     "waiting for the workloads to become ready: no workloads found",
                     id="no workloads"),
        pytest.param("Active", None, (),
                     {"Ready": ("False", "InstallFailed"), "Released": ("False", "InstallFailed")},
                     "InProgress", "namespace prepared, release not installed; saasodoo fleet "
                     "ensure installs it", id="missing release"),
        pytest.param("Active", rel("uninstalling"), (ODOO_READY,),
                     {"Ready": ("False", "Deleting"), "Reconciling": ("True", "Progressing")},
                     "Terminating", "being deleted", id="uninstalling"),
        pytest.param("Terminating", rel(), (ODOO_READY,),
                     {"Ready": ("False", "Deleting"), "Reconciling": ("True", "Progressing")},
                     "Terminating", "being deleted", id="namespace terminating"),
        pytest.param("Active", rel("superseded"), (ODOO_READY,),
                     {"Ready": ("Unknown", "Progressing")}, "InProgress",
                     "release status is superseded", id="odd head"),
    ],
)  # fmt: skip
def test_classify_computes_the_operators_conditions(
    ns_phase: str,
    release: ReleaseInfo | None,
    workloads: tuple[Workload, ...],
    expected: dict[str, tuple[str, str]],
    kstatus: str,
    message: str,
) -> None:
    """What --local observes (namespace, release head, workloads) in the conditions and
    reasons the operator writes on an OdooTenant (#23 points 4 and 5)."""
    status = classify(Observation("acme", ns_phase, release, workloads), NOW)
    assert conditions(status) == expected, status.conditions
    assert (status.ready, status.reason) == expected["Ready"]
    assert status.kstatus == kstatus
    assert message in status.message, status.message
    assert list(conditions(status)) == [t for t in CONDITION_TYPES if t in expected]  # ordered
    for condition in status.conditions:  # valid metav1.Conditions, as the CRD's schema says
        Condition.model_validate(condition)
        assert "observedGeneration" not in condition  # no object, no generation
    assert status.to_status()["revision"] == (release.revision if release else None)


def test_a_missing_release_under_a_live_create_lock_is_progressing() -> None:
    held = OperationLock("me:1", "create", "d", NOW + timedelta(minutes=5), alive=True)
    status = classify(Observation("acme", "Active", None, (), held), NOW)
    assert conditions(status) == PROGRESSING and "helm install in progress" in status.message
    dead = replace(held, alive=False)
    gone = classify(Observation("acme", "Active", None, (), dead), NOW)
    assert (gone.ready, gone.reason) == ("False", "InstallFailed")
    assert "operation 'create' ended (its process me:1 is gone)" in gone.message


def test_a_condition_changed_when_helm_last_deployed() -> None:
    status = classify(Observation("acme", "Active", rel(), (ODOO_READY,)), NOW)
    assert {c["lastTransitionTime"] for c in status.conditions} == {"2026-01-01T10:00:00Z"}
    unknown = classify(Observation("acme", "Active", None, ()), NOW)
    assert {c["lastTransitionTime"] for c in unknown.conditions} == {"2026-01-01T12:00:00Z"}


def test_reasons_name_the_waiting_workload() -> None:
    status = classify(Observation("acme", "Active", rel(), (ODOO_WAIT, PG_READY)), NOW)
    assert status.detail == "deployment/acme-odoo 0/1 ready"
    assert "deployment/acme-odoo 0/1 ready" in status.message
    failed = classify(Observation("acme", "Active", rel("failed"), ()), NOW)
    assert "boom" in failed.message


# -- issue 22, point 14: a lock older than its operation's timeout is never "in progress" ----

TIMEOUT = timedelta(minutes=12)
EXPIRES = NOW - timedelta(minutes=20)


def lock(alive: bool | None, expires: datetime) -> OperationLock:
    return OperationLock("other:1", "rollback to 3", "d", expires, alive=alive)


@pytest.mark.parametrize(
    ("release", "held", "reason"),
    [
        (
            rel("pending-rollback"),
            lock(None, EXPIRES),
            "locked (operation 'rollback to 3' expired at 2026-01-01T11:40:00+00:00)",
        ),
        (
            rel("pending-upgrade", updated=NOW),
            lock(False, NOW + TIMEOUT),
            "locked (operation 'rollback to 3' ended (its process other:1 is gone))",
        ),
        (
            rel("pending-rollback", updated=OLD),
            None,
            "locked (pending-rollback since 2026-01-01T10:00:00+00:00, operation expired at "
            "2026-01-01T10:12:00+00:00)",
        ),
        (rel("pending-install", updated=OLD), None, "locked (pending-install since"),
        (rel("pending-rollback", updated=NOW), lock(None, NOW + TIMEOUT), "rollback in progress"),
        (rel("pending-rollback", updated=NOW), lock(True, NOW + TIMEOUT), "rollback in progress"),
        (rel("pending-upgrade", updated=NOW - timedelta(minutes=5)), None, "upgrade in progress"),
    ],  # fmt: skip
)
def test_an_expired_lock_is_shown_locked_not_in_progress(
    release: ReleaseInfo, held: OperationLock | None, reason: str
) -> None:
    obs = Observation("acme", "Active", release, (ODOO_READY,), held, TIMEOUT)
    status = classify(obs, NOW)
    assert reason in status.message, status.message
    if reason.startswith("locked"):
        # Not progressing: nothing runs it any more (ensure, or the operator, recovers it).
        assert status.ready == "False" and "in progress" not in status.message
        assert "Reconciling" not in conditions(status) and status.kstatus == "InProgress"
        kind = release.status.removeprefix("pending-")
        failed = {"install": "InstallFailed", "upgrade": "UpgradeFailed",
                  "rollback": "RollbackFailed"}[kind]  # fmt: skip
        assert status.reason == failed
        assert conditions(status)["Remediated" if kind == "rollback" else "Released"] == (
            "False",
            failed,
        )
    else:
        assert conditions(status) == PROGRESSING


def sts(*pods: SetPod, observed: bool = True, ordered: bool = True) -> StatefulSetPods:
    return StatefulSetPods("acme-pg", "rev-good", observed, ordered, pods)


@pytest.mark.parametrize(
    ("sets", "stuck"),
    [
        ((sts(SetPod("pg-0", "rev-bad", ready=False)),), ["pg-0"]),
        ((sts(SetPod("pg-0", "rev-bad", ready=True)),), []),  # Ready: the controller moves on
        ((sts(SetPod("pg-0", "rev-good", ready=False)),), []),  # the template's: starting
        ((sts(SetPod("pg-0", "rev-bad", ready=False, deleting=True)),), []),
        ((sts(SetPod("pg-0", "rev-bad", ready=False), observed=False),), []),  # not seen yet
        ((sts(SetPod("pg-0", "rev-bad", ready=False), ordered=False),), []),  # Parallel
    ],
)
def test_stuck_pods_are_those_the_statefulset_controller_never_replaces(
    sets: tuple[StatefulSetPods, ...], stuck: list[str]
) -> None:
    assert stuck_pods(sets) == stuck


def test_a_hand_rollback_to_a_suspended_revision_is_not_shown_as_suspended() -> None:
    """An SRE's `helm rollback` to a revision where Odoo was scaled to zero: the head is not
    the revision saasodoo applied, so every view says it was changed by hand: Drifted, as
    the operator says it (#23)."""
    obs = Observation("acme", "Active", rel(revision=3), (ODOO_ZERO, PG_READY),
                      saasodoo_revisions=(2,))  # fmt: skip
    seen = classify(obs, NOW)
    assert conditions(seen) == {"Ready": ("False", "Unmanaged"),
                                "Drifted": ("True", "DriftDetected")}  # fmt: skip
    assert "changed by hand: revision 3 is not saasodoo's (its last is 2)" in seen.message
    assert seen.kstatus == "InProgress"
    # saasodoo's own head (applied, or the one its failed operation left): as before
    mine = classify(replace(obs, saasodoo_revisions=(3,)), NOW)
    assert conditions(mine) == {"Ready": ("True", "Suspended"),
                                "Released": ("True", "UpgradeSucceeded"),
                                "Drifted": ("False", "NoDriftDetected")}  # fmt: skip
    unknown = classify(replace(obs, saasodoo_revisions=()), NOW)
    assert unknown.reason == "Suspended"  # nothing recorded: no claim either way
    assert "Drifted" not in conditions(unknown)
