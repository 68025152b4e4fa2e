"""The fleet's bookkeeping (saasodoo.fleet) against small fakes (tests/fakes.py): which
tenants are selected, canaries first (a failed canary stops the rollout), the failure
threshold, and what ensure_all costs for tenants in sync."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from saasodoo.context import Context
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import HelmFailure, InvalidInput, NotFound, NotReady
from saasodoo.fleet import CANARY_LABEL, Fleet, FleetSummary, FleetTarget
from saasodoo.reconciler import Outcome
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.fakes import FakeHelm, FakeKube

pytestmark = pytest.mark.unit

SETTINGS = Settings(base_domain="odoo.test")
IDS = ("alpha", "bravo", "charlie", "delta")
#: A rollout of every Odoo pod that changes no Odoo code (a new image is refused without the
#: operator: test_a_new_image_is_refused_at_the_canary_without_the_operator).
NEW_BUILD = FleetTarget(overrides={"odoo": {"podAnnotations": {"saasodoo.dev/rollout": "2"}}})
#: A new build of the tenants' series: a code change (core.updates.code_change).
NEW_IMAGE = FleetTarget(overrides={"odoo": {"image": {"tag": "18.0-20250218"}}})


@dataclass
class World:
    fleet: Fleet
    kube: FakeKube
    helm: FakeHelm

    def upgrade(self, *ids: str, **kw: object) -> FleetSummary:
        return asyncio.run(self.fleet.upgrade(NEW_BUILD, list(ids) or None, concurrency=1, **kw))  # type: ignore[arg-type]

    def outcomes(self, summary: FleetSummary) -> dict[str, Outcome]:
        return {r.tenant_id: r.outcome for r in summary.results}

    def upgraded(self) -> list[str]:
        return sorted(c.split("/")[1] for c in self.helm.commands[len(IDS) :] if "upgrade" in c)


@pytest.fixture
def world() -> World:
    helm = FakeHelm(SETTINGS)
    kube = FakeKube(helm=helm)
    tenants = Tenants(Context(SETTINGS, helm=helm, kube=kube))
    for tid in IDS:
        spec = {"id": tid, "admin_email": f"a@{tid}.example", "odoo_version": "18.0"}
        asyncio.run(tenants.create(TenantSpec.parse(spec)))
    return World(Fleet(tenants.ctx), kube, helm)


def test_the_first_tenant_is_the_canary_and_the_rest_follow(world: World) -> None:
    summary = world.upgrade()
    assert set(world.outcomes(summary).values()) == {Outcome.UPGRADED}
    assert summary.stopped is None and world.upgraded() == sorted(IDS)
    assert world.helm.commands[len(IDS)] == "upgrade tenant-alpha/alpha"  # the canary first


def test_a_failed_canary_stops_the_rollout(world: World) -> None:
    world.helm.failing["alpha"] = HelmFailure("upgrade failed")
    summary = world.upgrade()
    outcomes = world.outcomes(summary)
    assert outcomes["alpha"] is Outcome.FAILED
    assert {outcomes[t] for t in IDS[1:]} == {Outcome.SKIPPED}
    assert summary.stopped == "canary alpha failed"
    assert world.upgraded() == ["alpha"]  # nobody else was touched


def test_labelled_canaries_go_first(world: World) -> None:
    ns = world.kube.namespaces["tenant-charlie"]
    world.kube.patch_namespace(ns.name, labels={CANARY_LABEL: "true"})
    world.helm.failing["charlie"] = HelmFailure("upgrade failed")
    summary = world.upgrade(canaries=3)
    assert summary.stopped == "canary charlie failed"
    assert world.upgraded() == ["charlie"]


@pytest.mark.parametrize(("max_failures", "upgraded"), [(0, 2), (1, 3)])
def test_the_rollout_stops_once_failures_pass_the_threshold(
    world: World, max_failures: int, upgraded: int
) -> None:
    world.helm.failing["bravo"] = HelmFailure("upgrade failed")
    world.helm.failing["charlie"] = HelmFailure("upgrade failed")
    summary = world.upgrade(max_failures=max_failures)
    outcomes = world.outcomes(summary)
    assert outcomes["alpha"] is Outcome.UPGRADED and outcomes["bravo"] is Outcome.FAILED
    assert len(world.upgraded()) == upgraded
    allowed = f"more than the {max_failures} allowed"
    assert summary.stopped is not None and allowed in summary.stopped
    assert outcomes["delta"] is Outcome.SKIPPED


def test_selection_by_id_and_unknown_ids(world: World) -> None:
    summary = world.upgrade("bravo", "delta", canaries=0)
    assert world.outcomes(summary) == {"bravo": Outcome.UPGRADED, "delta": Outcome.UPGRADED}
    with pytest.raises(NotFound, match="tenants not found: nosuch"):
        world.upgrade("alpha", "nosuch")


@pytest.mark.parametrize("version", ["19.0", "17.0"])
def test_another_odoo_series_refuses_the_whole_upgrade_before_any_change(
    world: World, version: str
) -> None:
    commands = list(world.helm.commands)
    with pytest.raises(InvalidInput, match=r"4 tenant\(s\) would change Odoo series \(alpha,"):
        asyncio.run(world.fleet.upgrade(FleetTarget(odoo_version=version)))
    assert world.helm.commands == commands


def test_ensure_all_costs_no_helm_call_for_tenants_in_sync(world: World) -> None:
    commands = list(world.helm.commands)
    summary = asyncio.run(world.fleet.ensure_all())
    assert set(world.outcomes(summary).values()) == {Outcome.UNCHANGED}
    assert world.helm.commands == commands


def test_each_upgrade_must_pass_the_signed_in_check(world: World) -> None:
    """Issue #22 point 2: an upgraded tenant counts as upgraded only once its signed-in check
    (`helm test`) passes; /web/health answering is not enough."""
    summary = world.upgrade("alpha", canaries=0)
    assert world.outcomes(summary) == {"alpha": Outcome.UPGRADED}
    assert world.helm.commands[-2:] == ["upgrade tenant-alpha/alpha", "test tenant-alpha/alpha"]


def test_a_canary_failing_its_signed_in_check_is_rolled_back_and_stops_the_rollout(
    world: World,
) -> None:
    world.helm.failing_tests["alpha"] = NotReady("sign-in as admin: psycopg2.errors.Undefined")
    before = world.fleet.ctx.record.spec(world.fleet.ctx.record.namespace("alpha"))
    summary = world.upgrade()
    outcomes = world.outcomes(summary)
    assert outcomes["alpha"] is Outcome.FAILED
    assert {outcomes[t] for t in IDS[1:]} == {Outcome.SKIPPED}
    assert summary.stopped == "canary alpha failed" and world.upgraded() == ["alpha"]
    [alpha] = [r for r in summary.results if r.tenant_id == "alpha"]
    assert "failed its signed-in check: sign-in as admin" in alpha.detail, alpha.detail
    assert "rolled back to 1" in alpha.detail
    assert world.helm.commands[-1] == "rollback tenant-alpha/alpha to 1"
    ns = world.fleet.ctx.record.namespace("alpha")
    assert world.fleet.ctx.record.spec(ns) == before  # its previous spec, recorded again
    # Nothing left for ensure: the rolled-back revision is the recorded one.
    commands = list(world.helm.commands)
    assert asyncio.run(world.fleet.ensure_all(["alpha"])).count(Outcome.UNCHANGED) == 1
    assert world.helm.commands == commands


def test_a_new_image_is_refused_at_the_canary_without_the_operator(world: World) -> None:
    """Without the operator nothing runs an update's steps (pre-update backup, `odoo -u`,
    signed-in check, restore): a new image fails the canary before helm runs, and the
    fleet stops there."""
    summary = asyncio.run(world.fleet.upgrade(NEW_IMAGE, None, concurrency=1))
    outcomes = world.outcomes(summary)
    assert outcomes["alpha"] is Outcome.FAILED
    assert {outcomes[t] for t in IDS[1:]} == {Outcome.SKIPPED}
    [canary] = [r for r in summary.results if r.tenant_id == "alpha"]
    assert "alters the Odoo code its database runs" in canary.detail, canary.detail
    assert "through the operator" in canary.detail
    assert world.upgraded() == []  # no helm upgrade at all


def test_a_new_image_for_one_tenant_is_refused_without_the_operator(world: World) -> None:
    """`tenant update` without the operator (the CLI's --local, the API's in-process jobs):
    a change of the Odoo code is refused before any change, naming why; the operator's own
    call (its update executor ran the steps, or saw no code change) passes `allow_code_change`."""
    tenants = world.fleet.tenants
    overrides = {"odoo": {"image": {"tag": "18.0-20250218"}}}
    with pytest.raises(InvalidInput, match="alters the Odoo code its database runs"):
        asyncio.run(tenants.update("alpha", overrides=overrides))
    assert world.upgraded() == []
    asyncio.run(tenants.update("alpha", overrides={"odoo": {"podAnnotations": {"a": "b"}}}))
    assert world.upgraded() == ["alpha"]  # no code change: upgraded as before
    asyncio.run(tenants.update("bravo", overrides=overrides, allow_code_change=True))
    assert world.upgraded() == ["alpha", "bravo"]
