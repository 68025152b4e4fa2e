"""Converge one tenant to its spec: the ``ensure`` loop and one small function per action.

The loop (see ``saasodoo.core.reconcile`` for states and actions): observe the tenant,
``determine_state``, ``next_action``, act, record, observe again; at most ``MAX_STEPS``
times, ending in a named ``Outcome``. Each acting ``Action`` has its executor below
(``unlock``, ``adopt``, ``install``, ``upgrade``, ``reinstall``, ``rollback``), picked from
``EXECUTORS``, as Flux's helm-controller runs one small reconciler per action.

What ensure does with hand changes (SREs): a release whose newest revision is not the
one saasodoo recorded (``helm rollback``/``helm upgrade`` by hand) is **unmanaged**: it is
reported and left as it is; ``force=True`` upgrades it back to the spec. A failed upgrade
is rolled back to the last good revision and the tenant is **stalled** on the failed
digest: not retried until the spec changes or ``force=True``.

A killed operation (the orchestrator died while helm ran: the release is left pending, the
operation lock names a dead process) is **locked**: ensure unlocks it (marks the pending
revision failed, as Flux does), rolls back to the last good revision if there is one, and
applies the spec again. Create, update, suspend/resume and fleet upgrades record the desired
spec before helm runs, so the next ensure finishes what the dead process started; nothing
stalls, since the values did not fail.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from saasodoo.adapters.kube import Namespace
from saasodoo.context import Context
from saasodoo.core.reconcile import (
    GOOD_STATUSES,
    Action,
    Applied,
    ReconcileObservation,
    State,
    determine_state,
    next_action,
)
from saasodoo.core.spec import TenantSpec
from saasodoo.core.status import ReleaseInfo
from saasodoo.core.values import TenantValues, get_path
from saasodoo.domains import HostTaken
from saasodoo.errors import InvalidInput, NotFound, SaasodooError
from saasodoo.tenants import Tenants, revision_spec

log = logging.getLogger(__name__)

#: Bound of the ensure loop: the longest path is unlock -> reinstall -> record.
MAX_STEPS = 6


class Outcome(StrEnum):
    UNCHANGED = "unchanged"  # in sync: nothing done, no helm call
    INSTALLED = "installed"
    UPGRADED = "upgraded"
    RECOVERED = "recovered"  # a locked or interrupted operation brought to the spec
    ROLLED_BACK = "rolled-back"  # a failed upgrade rolled back to the last good revision
    UNMANAGED = "unmanaged"  # changed by hand: reported, left alone (force reconciles)
    STALLED = "stalled"  # a digest that failed before: not retried (force retries)
    BUSY = "busy"  # another operation runs or the tenant is being deleted
    FAILED = "failed"
    GAVE_UP = "gave-up"  # the loop bound was reached
    SKIPPED = "skipped"  # fleet upgrade: not attempted (reason given)


#: Outcomes that mean something is wrong (a non-zero exit code in the CLI).
BAD_OUTCOMES = frozenset({Outcome.FAILED, Outcome.GAVE_UP, Outcome.ROLLED_BACK})


@dataclass
class EnsureResult:
    tenant_id: str
    outcome: Outcome
    detail: str = ""
    steps: list[str] = field(default_factory=list)
    revision: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.tenant_id,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "steps": list(self.steps),
            "revision": self.revision,
        }


@dataclass
class ObservedTenant:
    """One tenant as ensure sees it: namespace, desired spec, values and the observation."""

    namespace: Namespace
    spec: TenantSpec
    suspended: bool
    values: TenantValues
    observation: ReconcileObservation

    @property
    def revision(self) -> int | None:
        rel = self.observation.release
        return rel.revision if rel else None


class Reconciler:
    """Observe, classify and converge single tenants of one context (its lifecycle,
    ``Tenants``, and its adapters)."""

    def __init__(self, ctx: Context, *, stale_after: timedelta | None = None) -> None:
        self.ctx = ctx
        self.tenants = Tenants(ctx)
        self.stale_after = stale_after or ctx.stale_after
        #: tenant id -> ((spec as JSON, suspended, chart version), desired digest): what
        #: ``sweep_state`` computed last (a sweep asks for every tenant's digest).
        self._digests: dict[str, tuple[tuple[str, bool, str], str]] = {}

    # -- observing --------------------------------------------------------------------

    async def observed(
        self, ns: Namespace, release: ReleaseInfo | None, last_good: int | None = None
    ) -> ObservedTenant:
        """The tenant of namespace ``ns`` with ``release`` (its head, as listed or read)."""
        spec = await self.tenants.settled(ns)
        suspended = self.ctx.record.suspended(ns)
        values, digest = await self.tenants.desired(spec, suspended=suspended)
        obs = self._observation(ns, spec, release, digest, last_good)
        return ObservedTenant(ns, spec, suspended, values, obs)

    async def sweep_state(self, ns: Namespace, release: ReleaseInfo | None) -> State:
        """The state of the tenant of ``ns`` with ``release`` (its head), as
        ``state_of(observed(...))`` says, for a sweep over every tenant: the desired digest
        is computed again only when the tenant's spec, suspension or the chart version
        changed since this Reconciler last computed it (values take about 2.5 ms a tenant;
        the spec's JSON about 0.05)."""
        spec = await self.tenants.settled(ns)
        suspended = self.ctx.record.suspended(ns)
        key = (spec.model_dump_json(), suspended, await self.ctx.helm.digest_chart_version())
        known = self._digests.get(spec.id)
        if known is not None and known[0] == key:
            digest = known[1]
        else:
            _, digest = await self.tenants.desired(spec, suspended=suspended)
            self._digests[spec.id] = (key, digest)
        obs = self._observation(ns, spec, release, digest, None)
        return determine_state(obs, datetime.now(UTC), self.stale_after)

    def _observation(
        self,
        ns: Namespace,
        spec: TenantSpec,
        release: ReleaseInfo | None,
        digest: str,
        last_good: int | None,
    ) -> ReconcileObservation:
        return ReconcileObservation(
            tenant_id=spec.id,
            namespace_phase=ns.phase,
            release=release,
            desired_digest=digest,
            applied=self.ctx.record.applied(ns),
            failed_digest=self.ctx.record.failed_digest(ns),
            lock=self.ctx.record.lock(ns),
            unfinished=self.ctx.record.unfinished(ns),
            last_good_revision=last_good,
        )

    async def observe(self, tenant_id: str) -> ObservedTenant:
        """One tenant, closely: namespace, helm status and, for a failed head, history."""
        ns = self.ctx.record.namespace(tenant_id)
        spec = self.ctx.record.spec(ns)
        release = await self.ctx.helm.status(spec.release, spec.namespace)
        last_good = None
        if release is not None and release.status == "failed":
            last_good = await self._last_good(spec, release.revision)
        return await self.observed(ns, release, last_good)

    async def _last_good(self, spec: TenantSpec, below: int) -> int | None:
        history = await self.ctx.helm.history(spec.release, spec.namespace)
        good = [r.revision for r in history if r.status in GOOD_STATUSES and r.revision < below]
        return max(good) if good else None

    def state_of(self, tenant: ObservedTenant) -> State:
        return determine_state(tenant.observation, datetime.now(UTC), self.stale_after)

    # -- ensure ---------------------------------------------------------------------

    async def ensure(
        self, tenant_id: str, *, force: bool = False, first: ObservedTenant | None = None
    ) -> EnsureResult:
        """Converge one tenant to its spec; see the module docstring for hand changes."""
        steps: list[str] = []
        actions: list[Action] = []
        errors: list[str] = []
        tenant = first
        for _ in range(MAX_STEPS):
            if tenant is None:
                try:
                    tenant = await self.observe(tenant_id)
                except NotFound as exc:
                    return EnsureResult(tenant_id, Outcome.FAILED, exc.message, steps)
            obs = tenant.observation
            state = self.state_of(tenant)
            action = next_action(state, force=force)
            revision = tenant.revision
            if action is Action.NONE:
                if obs.lock is not None:  # a stale lock of a dead process: drop it
                    self.ctx.record.unlock(tenant.spec.namespace)
                return EnsureResult(
                    tenant_id, outcome_of(actions), _detail(actions, errors), steps, revision
                )
            if action is Action.WAIT:
                why = obs.lock.operation if obs.lock and state is State.OPERATING else ""
                detail = f"{state.value}{': ' + why if why else ''}; try again later"
                return EnsureResult(tenant_id, Outcome.BUSY, detail, steps, revision)
            if action is Action.REPORT:
                return _report(tenant, state, actions, errors, steps)
            steps.append(f"{state.value} -> {action.value}")
            actions.append(action)
            try:
                await EXECUTORS[action](self, tenant)
            except SaasodooError as exc:
                errors.append(f"{action.value}: {exc.message}")
                retried = steps.count(steps[-1]) > 1
                if (
                    action not in (Action.INSTALL, Action.UPGRADE, Action.REINSTALL)
                    or isinstance(exc, (InvalidInput, HostTaken))
                    or retried
                ):
                    # Refused values leave no revision behind; nothing to remediate.
                    return EnsureResult(
                        tenant_id, Outcome.FAILED, "; ".join(errors), steps, revision
                    )
                # A failed install/upgrade leaves a failed revision: the next pass
                # rolls it back (or reinstalls) and reports.
            tenant = None
        return EnsureResult(
            tenant_id,
            Outcome.GAVE_UP,
            f"not converged after {MAX_STEPS} steps; " + "; ".join(errors),
            steps,
        )

    async def digest_of(self, tenant: ObservedTenant, revision: int) -> str:
        """Digest of what ``revision`` deployed (its values and chart version)."""
        applied = tenant.observation.applied
        if applied is not None and applied.revision == revision:
            return applied.digest
        spec = tenant.spec
        values = await self.ctx.helm.get_values(spec.release, spec.namespace, revision)
        history = {r.revision: r for r in await self.ctx.helm.history(spec.release, spec.namespace)}
        chart = history[revision].chart if revision in history else ""
        version = chart.rsplit("-", 1)[-1] if "-" in chart else chart
        return TenantValues(values).digest(version)


# -- the actions, one executor each ------------------------------------------------------


async def unlock(r: Reconciler, tenant: ObservedTenant) -> None:
    """Mark the locked pending revision failed (as Flux does)."""
    spec, rel = tenant.spec, tenant.observation.release
    assert rel is not None
    before = r.ctx.kube.unlock_release(
        spec.namespace,
        spec.release,
        rel.revision,
        f"saasodoo: unlocked a stale {rel.status} (its operation ended without a result)",
    )
    log.warning("tenant %s: unlocked stale %s revision %d", spec.id, before, rel.revision)
    # The dead holder's lock stays until the rollback: it tells that this failed
    # revision was a killed operation, not values that failed to deploy.


async def adopt(r: Reconciler, tenant: ObservedTenant) -> None:
    """Record what the dead process applied (its lock names the digest)."""
    spec, obs = tenant.spec, tenant.observation
    rel = obs.release
    assert rel is not None and obs.lock is not None
    values = await r.ctx.helm.get_values(spec.release, spec.namespace, rel.revision)
    recorded = get_path(values, "tenant.spec")
    applied_spec = revision_spec(recorded, values) if isinstance(recorded, dict) else spec
    suspended = get_path(values, "odoo.replicas") == 0
    r.ctx.record.write(applied_spec, suspended, applied=Applied(obs.lock.digest, rel.revision))


async def install(r: Reconciler, tenant: ObservedTenant) -> None:
    """``helm install`` of the spec (no release yet)."""
    _claim_domains(r, tenant)
    await _apply(r, tenant, Action.INSTALL)


async def upgrade(r: Reconciler, tenant: ObservedTenant) -> None:
    """``helm upgrade`` to the spec."""
    _claim_domains(r, tenant)
    await _apply(r, tenant, Action.UPGRADE)


async def reinstall(r: Reconciler, tenant: ObservedTenant) -> None:
    """Uninstall the failed first install, then install the spec again."""
    _claim_domains(r, tenant)
    obs = tenant.observation
    await r.ctx.release.reinstall(tenant.spec, tenant.suspended, tenant.values, obs.desired_digest)


def _claim_domains(r: Reconciler, tenant: ObservedTenant) -> None:
    """A recorded spec naming a platform host, a host another tenant proved, or routing one
    another tenant claims at all is not applied (HostTaken, before any change)."""
    spec = tenant.spec
    r.ctx.domains.claim(spec.id, spec.custom_domains, routed=spec.verified_domains)


async def _apply(r: Reconciler, tenant: ObservedTenant, action: Action) -> None:
    """Install or upgrade to the spec under the operation lock, then record it."""
    digest = tenant.observation.desired_digest
    await r.ctx.release.apply(tenant.spec, tenant.suspended, tenant.values, digest, action)


async def rollback(r: Reconciler, tenant: ObservedTenant) -> None:
    """Back to the last good revision (volume-safe); the tenant stalls on the failed digest
    unless the failure was a killed operation."""
    spec, obs = tenant.spec, tenant.observation
    rel = obs.release
    assert rel is not None and obs.last_good_revision is not None
    good = obs.last_good_revision
    digest = await r.digest_of(tenant, good)
    # Stalled (not retried) only when the values themselves failed to deploy. A failed
    # head under a dead holder's lock is a killed operation (saasodoo releases its
    # lock when helm fails): its values are tried again on the next step.
    killed = obs.lock is not None
    failed = obs.desired_digest if obs.desired_digest != digest and not killed else None
    # Volume-safe: a failed plan upgrade may have grown volumes already.
    await r.ctx.release.rollback(spec, good, digest, failed_digest=failed, wait=True)


#: The executor of each acting ``Action`` (``next_action`` returns no other).
EXECUTORS: dict[Action, Callable[[Reconciler, ObservedTenant], Awaitable[None]]] = {
    Action.UNLOCK: unlock,
    Action.ADOPT: adopt,
    Action.INSTALL: install,
    Action.UPGRADE: upgrade,
    Action.REINSTALL: reinstall,
    Action.ROLLBACK: rollback,
}


# -- results --------------------------------------------------------------------------------


def _report(
    tenant: ObservedTenant,
    state: State,
    actions: list[Action],
    errors: list[str],
    steps: list[str],
) -> EnsureResult:
    obs = tenant.observation
    rel = obs.release
    revision = tenant.revision
    tid = tenant.spec.id
    if Action.ROLLBACK in actions:
        return EnsureResult(tid, Outcome.ROLLED_BACK, _detail(actions, errors), steps, revision)
    if state is State.UNMANAGED:
        recorded = obs.applied.revision if obs.applied else None
        detail = (
            f"release at revision {revision} ({rel.status if rel else '?'}), saasodoo "
            f"recorded revision {recorded}: changed by hand (helm rollback/upgrade); "
            "left as it is, ensure --force reconciles it to the spec"
        )
        return EnsureResult(tid, Outcome.UNMANAGED, detail, steps, revision)
    if state is State.UNMANAGED_LOCKED:
        detail = (
            f"release at revision {revision} ({rel.status if rel else '?'}) since "
            f"{rel.updated.isoformat(timespec='seconds') if rel and rel.updated else '?'}, "
            "left pending by a helm operation saasodoo did not run; left as it is, "
            "ensure --force marks it failed and reconciles the tenant to the spec"
        )
        return EnsureResult(tid, Outcome.UNMANAGED, detail, steps, revision)
    if state is State.ROLLBACK_FAILED:
        why = rel.description.strip() if rel else ""
        detail = (
            f"saasodoo's {obs.unfinished.operation if obs.unfinished else 'rollback'} failed "
            f"(revision {revision}{': ' + why if why else ''}); not retried: see "
            "`saasodoo tenant status` and the tenant's pods, ensure --force tries the "
            "rollback again"
        )
        return EnsureResult(tid, Outcome.STALLED, detail, steps, revision)
    if state is State.STALLED:
        detail = (
            "the spec's values failed to deploy before and were rolled back; not retried "
            "until the spec changes (ensure --force retries)"
        )
        return EnsureResult(tid, Outcome.STALLED, detail, steps, revision)
    status = rel.status if rel else "none"
    return EnsureResult(tid, Outcome.FAILED, f"release status '{status}'", steps, revision)


def outcome_of(actions: list[Action]) -> Outcome:
    """The outcome of a loop that converged after ``actions`` (in order)."""
    if not actions:
        return Outcome.UNCHANGED
    if any(a in (Action.UNLOCK, Action.ADOPT, Action.REINSTALL) for a in actions):
        return Outcome.RECOVERED
    if Action.ROLLBACK in actions:
        return Outcome.ROLLED_BACK
    if Action.INSTALL in actions:
        return Outcome.INSTALLED
    return Outcome.UPGRADED


def _detail(actions: list[Action], errors: list[str]) -> str:
    text = ", ".join(a.value for a in actions)
    if errors:
        text += ("; " if text else "") + "; ".join(errors)
    return text
