"""The reconciler (saasodoo.reconciler): every action next_action can choose has its
executor, the loop's outcome names what was done, and each executor's success and failure
path, the operation lock and the stalled state, against small fakes (tests/fakes.py)."""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from saasodoo import release as release_module
from saasodoo.adapters.helm import Revision
from saasodoo.context import Context
from saasodoo.core.reconcile import Action, Applied, OperationLock, State, next_action
from saasodoo.core.record import (
    FAILED_DIGEST_ANNOTATION,
    OPERATION_ANNOTATION,
    SPEC_ANNOTATION,
    UNFINISHED_ANNOTATION,
    applied_of,
    entries_of_annotations,
    unfinished_of,
)
from saasodoo.core.spec import TenantSpec
from saasodoo.core.status import SetPod, StatefulSetPods
from saasodoo.core.values import ADMIN_SECRET_NAME
from saasodoo.errors import HelmFailure, InvalidInput
from saasodoo.reconciler import EXECUTORS, EnsureResult, Outcome, Reconciler, outcome_of
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.fakes import FakeHelm, FakeKube, HelmRan

pytestmark = pytest.mark.unit

#: What the loop handles itself: nothing to do, come back later, a human decides.
NOT_ACTING = {Action.NONE, Action.WAIT, Action.REPORT}


def test_every_chosen_action_has_an_executor_and_no_executor_is_idle() -> None:
    chosen = {next_action(s, force=f) for s in State for f in (False, True)}
    assert chosen - NOT_ACTING == set(EXECUTORS)
    assert set(Action) - NOT_ACTING == set(EXECUTORS)


@pytest.mark.parametrize(
    ("actions", "outcome"),
    [
        ([], Outcome.UNCHANGED),
        ([Action.INSTALL], Outcome.INSTALLED),
        ([Action.UPGRADE], Outcome.UPGRADED),
        ([Action.UPGRADE, Action.ROLLBACK], Outcome.ROLLED_BACK),
        ([Action.UNLOCK, Action.ROLLBACK, Action.UPGRADE], Outcome.RECOVERED),
        ([Action.ADOPT], Outcome.RECOVERED),
        ([Action.REINSTALL], Outcome.RECOVERED),
    ],
)
def test_the_outcome_names_what_was_done(actions: list[Action], outcome: Outcome) -> None:
    assert outcome_of(actions) is outcome


# -- each executor's success and failure path, against tests/fakes.py -----------------------


@dataclass
class World:
    tenants: Tenants
    kube: FakeKube
    helm: FakeHelm

    @property
    def reconciler(self) -> Reconciler:
        return Reconciler(self.tenants.ctx)

    def ensure(self, tenant_id: str = "acme", *, force: bool = False) -> EnsureResult:
        return asyncio.run(self.reconciler.ensure(tenant_id, force=force))

    def annotations(self) -> dict[str, str]:
        """The tenant's record, wherever it is kept; one kept on its OdooTenant leaves none
        on its namespace."""
        found = self.tenants.ctx.record.read(NS)
        assert found is not None
        if "acme" in self.kube.odootenants:
            assert not entries_of_annotations(found.annotations), found.annotations
        return dict(found.record)

    def statuses(self) -> list[str]:
        return [r.revision.status for r in self.helm.releases[KEY]]

    def record(self, spec: TenantSpec, lock: OperationLock | None = None) -> None:
        """The desired spec as a process records it before helm runs (with its lock)."""
        self.tenants.ctx.record.write(spec, False, lock=lock if lock else False)


SETTINGS = Settings(base_domain="odoo.test")
NS, KEY = "tenant-acme", ("tenant-acme", "acme")
SPEC = TenantSpec.parse({"id": "acme", "admin_email": "a@acme.example", "odoo_version": "18.0"})
#: A holder on this host whose process is gone (beyond any pid_max).
DEAD = f"{socket.gethostname()}:{2**23 + 7}"


@pytest.fixture(params=("namespace", "odootenant"))
def world(request: pytest.FixtureRequest) -> World:
    """A cluster whose tenant ``acme`` keeps its record on its namespace (no OdooTenant) or
    on its OdooTenant."""
    helm = FakeHelm(SETTINGS)
    kube = FakeKube(helm=helm)
    if request.param == "odootenant":
        kube.odootenants["acme"] = {"metadata": {"name": "acme", "generation": 1}}
    return World(Tenants(Context(SETTINGS, helm=helm, kube=kube)), kube, helm)


def lock(holder: str, digest: str = "d", minutes: int = 10) -> OperationLock:
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    return OperationLock(holder=holder, operation="update", digest=digest, expires=expires)


def created(world: World) -> World:
    asyncio.run(world.tenants.create(SPEC))
    return world


def only_namespace(world: World) -> World:
    """A create that died after the namespace: spec recorded, no Secret, no release."""
    world.tenants.ctx.record.store.create(NS, "acme", {}, {SPEC_ANNOTATION: SPEC.model_dump_json()})
    return world


def test_in_sync_does_nothing(world: World) -> None:
    created(world)
    calls = list(world.helm.commands)
    result = world.ensure()
    assert (result.outcome, result.steps, result.revision) == (Outcome.UNCHANGED, [], 1)
    assert world.helm.commands == calls


def test_install_creates_the_secret_and_records_what_it_applied(world: World) -> None:
    only_namespace(world)
    result = world.ensure()
    assert (result.outcome, result.steps) == (Outcome.INSTALLED, ["absent -> install"])
    assert (NS, ADMIN_SECRET_NAME) in world.kube.secrets
    assert applied_of(world.annotations()) is not None
    assert OPERATION_ANNOTATION not in world.annotations()


def test_a_failed_install_is_tried_once_more_then_fails(world: World) -> None:
    only_namespace(world)
    world.helm.failing["acme"] = HelmFailure("helm timed out")
    result = world.ensure()
    assert result.outcome is Outcome.FAILED
    assert result.steps == ["absent -> install", "absent -> install"]
    assert "install: helm timed out" in result.detail
    assert OPERATION_ANNOTATION not in world.annotations()  # the lock is released


def test_refused_values_fail_at_once(world: World) -> None:
    only_namespace(world)
    world.helm.fail_next = InvalidInput("the chart refused the values")
    result = world.ensure()
    assert (result.outcome, result.steps) == (Outcome.FAILED, ["absent -> install"])


def test_a_failed_first_install_is_reinstalled(world: World) -> None:
    world.helm.fail_next = HelmRan("helm timed out")
    with pytest.raises(HelmRan):
        asyncio.run(world.tenants.create(SPEC))
    assert world.statuses() == ["failed"]
    assert UNFINISHED_ANNOTATION in world.annotations()  # saasodoo's failed revision
    result = world.ensure()
    assert result.outcome is Outcome.RECOVERED
    assert result.steps == ["failed-install -> reinstall"]
    assert f"uninstall {NS}/acme" in world.helm.commands and world.statuses() == ["deployed"]
    assert UNFINISHED_ANNOTATION not in world.annotations()


def test_a_changed_spec_is_upgraded(world: World) -> None:
    created(world)
    world.record(SPEC.model_copy(update={"plan": "standard"}))
    result = world.ensure()
    assert (result.outcome, result.steps, result.revision) == (
        Outcome.UPGRADED, ["out-of-date -> upgrade"], 2,
    )  # fmt: skip
    assert world.ensure().outcome is Outcome.UNCHANGED


def test_a_failed_upgrade_is_rolled_back_then_stalls_until_forced(world: World) -> None:
    created(world)
    world.record(SPEC.model_copy(update={"plan": "standard"}))
    world.helm.fail_next = HelmFailure("upgrade failed")
    result = world.ensure()
    assert result.outcome is Outcome.ROLLED_BACK, result
    assert result.steps == ["out-of-date -> upgrade", "failed-upgrade -> rollback"]
    assert world.statuses() == ["superseded", "failed", "deployed"]
    assert FAILED_DIGEST_ANNOTATION in world.annotations()
    stalled = world.ensure()
    assert (stalled.outcome, stalled.steps) == (Outcome.STALLED, [])
    forced = world.ensure(force=True)
    assert (forced.outcome, forced.steps) == (Outcome.UPGRADED, ["stalled -> upgrade"])
    assert FAILED_DIGEST_ANNOTATION not in world.annotations()


def test_a_live_operation_lock_means_busy(world: World) -> None:
    created(world)
    world.record(
        SPEC.model_copy(update={"plan": "standard"}), lock(f"{socket.gethostname()}:{os.getpid()}")
    )
    calls = list(world.helm.commands)
    result = world.ensure()
    assert result.outcome is Outcome.BUSY and "operating: update" in result.detail
    assert world.helm.commands == calls


def test_a_killed_upgrade_is_unlocked_rolled_back_and_applied_again(world: World) -> None:
    created(world)
    wanted = SPEC.model_copy(update={"plan": "standard"})
    world.record(wanted, lock(DEAD))
    world.helm.add_revision(NS, "acme", "pending-upgrade", {}, "Upgrade in progress")
    result = world.ensure()
    assert result.outcome is Outcome.RECOVERED, result
    assert result.steps == [
        "locked -> unlock", "failed-upgrade -> rollback", "out-of-date -> upgrade",
    ]  # fmt: skip
    assert (
        world.statuses()[-1] == "deployed" and FAILED_DIGEST_ANNOTATION not in world.annotations()
    )
    assert OPERATION_ANNOTATION not in world.annotations()


def test_what_a_dead_process_deployed_is_adopted(world: World) -> None:
    created(world)
    wanted = SPEC.model_copy(update={"plan": "standard"})
    values, digest = asyncio.run(world.tenants.desired(wanted))
    world.record(wanted, lock(DEAD, digest))
    world.helm.add_revision(NS, "acme", "deployed", values.values, "Upgrade complete")
    result = world.ensure()
    assert (result.outcome, result.steps) == (Outcome.RECOVERED, ["interrupted -> adopt"])
    assert applied_of(world.annotations()) == Applied(digest, 2)


def test_a_hand_change_is_reported_and_left_unless_forced(world: World) -> None:
    created(world)
    world.helm.add_revision(NS, "acme", "deployed", {}, "Rollback to 1")
    result = world.ensure()
    assert result.outcome is Outcome.UNMANAGED and "changed by hand" in result.detail
    assert len(world.statuses()) == 2
    assert world.ensure(force=True).outcome is Outcome.UPGRADED


def test_a_missing_tenant_fails(world: World) -> None:
    result = world.ensure("nosuch")
    assert (result.outcome, result.detail) == (Outcome.FAILED, "tenant 'nosuch' not found")


# -- issue 22, point 13: one rule for every hand-made revision, failed or not ---------------


def test_a_hand_upgrade_that_succeeded_is_reported_and_left_unless_forced(world: World) -> None:
    created(world)
    hand = asyncio.run(world.helm.get_values("acme", NS))
    hand["odoo"]["config"]["workers"] = 5
    world.helm.add_revision(NS, "acme", "deployed", hand, "Upgrade complete")
    result = world.ensure()
    assert result.outcome is Outcome.UNMANAGED and "changed by hand" in result.detail
    assert world.statuses() == ["superseded", "deployed"]
    forced = world.ensure(force=True)
    assert (forced.outcome, forced.steps) == (Outcome.UPGRADED, ["unmanaged -> upgrade"])


@pytest.mark.parametrize("why", ['Upgrade "acme" failed: timed out', 'Rollback "acme" failed'])
def test_a_failed_hand_revision_is_reported_and_left_unless_forced(world: World, why: str) -> None:
    """A failed revision an SRE made (helm upgrade or rollback by hand) is left as it is,
    like a deployed one: no rollback without force (before: rolled back at once)."""
    created(world)
    world.helm.add_revision(NS, "acme", "failed", {}, why)
    calls = list(world.helm.commands)
    result = world.ensure()
    assert (result.outcome, result.steps) == (Outcome.UNMANAGED, []), result
    assert "revision 2 (failed)" in result.detail and "changed by hand" in result.detail
    assert world.helm.commands == calls and world.statuses() == ["deployed", "failed"]
    forced = world.ensure(force=True)
    assert (forced.outcome, forced.steps) == (Outcome.UPGRADED, ["unmanaged -> upgrade"])
    assert world.statuses()[-1] == "deployed"


def test_a_hand_revision_left_pending_is_reported_and_unlocked_only_when_forced(
    world: World,
) -> None:
    created(world)
    rev = world.helm.add_revision(NS, "acme", "pending-upgrade", {}, "Upgrade in progress")
    key_revs = world.helm.releases[KEY]
    old = datetime.now(UTC) - timedelta(hours=1)
    key_revs[-1].revision = type(rev)(rev.revision, rev.status, old, rev.description, rev.chart)
    result = world.ensure()
    assert (result.outcome, result.steps) == (Outcome.UNMANAGED, []), result
    assert "did not run" in result.detail and world.statuses()[-1] == "pending-upgrade"
    forced = world.ensure(force=True)
    assert forced.steps == ["unmanaged-locked -> unlock", "unmanaged -> upgrade"], forced
    assert world.statuses()[-1] == "deployed"


def test_an_upgrade_of_saasodoo_that_failed_records_its_revision(world: World) -> None:
    created(world)
    world.helm.fail_next = HelmFailure("timed out")
    with pytest.raises(HelmFailure):
        asyncio.run(world.tenants.update("acme", plan="standard"))
    left = unfinished_of(world.annotations())
    assert left is not None and (left.revision, left.operation) == (2, "update")
    assert OPERATION_ANNOTATION not in world.annotations()
    result = world.ensure()
    assert result.steps == ["failed-upgrade -> rollback"], result
    assert UNFINISHED_ANNOTATION not in world.annotations()


def test_a_refused_upgrade_does_not_claim_a_hand_revision(world: World) -> None:
    """A helm call that made no revision (values refused) records none: the failed head an
    SRE left stays a hand change."""
    created(world)
    world.helm.add_revision(NS, "acme", "failed", {}, "by hand")
    revisions = len(world.helm.releases[KEY])

    async def refuse(*args: Any, **kwargs: Any) -> Revision:
        raise InvalidInput("the chart refused the values")

    world.helm.install_or_upgrade = refuse  # type: ignore[method-assign]
    with pytest.raises(InvalidInput):
        asyncio.run(world.tenants.update("acme", plan="standard"))
    assert len(world.helm.releases[KEY]) == revisions
    assert UNFINISHED_ANNOTATION not in world.annotations()
    assert world.ensure().outcome is Outcome.UNMANAGED


def test_a_failed_rollback_of_saasodoo_stops_and_says_so(world: World) -> None:
    """The remediation's rollback failed (e.g. a pod it waited for never became Ready):
    ensure does not run it again and again; it reports why; force tries again."""
    created(world)
    world.record(SPEC.model_copy(update={"plan": "standard"}))
    world.helm.fail_next = HelmFailure("upgrade failed")
    first = world.ensure()
    assert first.steps == ["out-of-date -> upgrade", "failed-upgrade -> rollback"]
    # Now make the same remediation fail at its rollback.
    world.record(SPEC.model_copy(update={"plan": "premium"}))
    world.helm.failing["acme"] = HelmRan("timed out waiting for the condition")
    failed = world.ensure()
    assert failed.outcome is Outcome.FAILED, failed
    world.helm.failing.clear()
    world.helm.releases[KEY][-1].revision = _described(world, "timed out waiting")
    calls = list(world.helm.commands)
    stalled = world.ensure()
    assert (stalled.outcome, stalled.steps) == (Outcome.STALLED, []), stalled
    assert "rollback to" in stalled.detail and "timed out waiting" in stalled.detail
    assert world.helm.commands == calls  # no helm call beyond the look
    forced = world.ensure(force=True)
    assert forced.steps[0] == "rollback-failed -> rollback", forced


def _described(world: World, why: str) -> Revision:
    r = world.helm.releases[KEY][-1].revision
    return Revision(r.revision, r.status, r.updated, why, r.chart)


def test_a_rollback_replaces_the_stuck_pod_of_the_failed_revision(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kubernetes#67250: while the rollback waits, a pod of the failed revision that is not
    Ready, once the controller has the rollback's template, is deleted (the controller makes
    it anew from the template); pods of the template's revision and Ready ones are kept."""
    monkeypatch.setattr(release_module, "STUCK_POD_POLL_SECONDS", 0.01)
    created(world)
    world.helm.add_revision(NS, "acme", "failed", {}, "Upgrade failed")
    world.kube.stateful_sets[NS] = [
        StatefulSetPods(
            "acme-pg", "good", observed=True, ordered_rolling=True,
            pods=(SetPod("acme-pg-0", "bad", ready=False), SetPod("acme-pg-1", "good", False),
                  SetPod("acme-pg-2", "bad", ready=True)),
        ),
    ]  # fmt: skip
    real = world.helm.rollback

    async def waiting_rollback(*args: Any, **kwargs: Any) -> None:
        for _ in range(500):  # as helm --wait does, until the pod is replaced
            if f"delete pod {NS}/acme-pg-0" in world.kube.calls:
                break
            await asyncio.sleep(0.01)
        await real(*args, **kwargs)

    world.helm.rollback = waiting_rollback  # type: ignore[method-assign]
    asyncio.run(world.tenants.rollback("acme", 1))
    deleted = [c for c in world.kube.calls if c.startswith("delete pod")]
    assert deleted == [f"delete pod {NS}/acme-pg-0"]
