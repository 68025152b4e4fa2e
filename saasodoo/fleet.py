"""Converge tenants to their specs: ``ensure`` one, ``ensure_all``, fleet upgrades, GitOps export.

The loop (see ``saasodoo.core.reconcile`` for states and actions): observe the tenant,
``determine_state``, ``next_action``, act, record, observe again; at most ``MAX_STEPS``
times, ending in a named ``Outcome``. A tenant in sync costs no helm call: the fleet pass
reads every namespace and every release head in two list requests, compares digests,
and only looks closer (helm status/history) at tenants that are not in sync.

What ensure does with hand changes (SREs): a release whose newest revision is not the
one saasodoo recorded (``helm rollback``/``helm upgrade`` by hand) is **drifted**: it is
reported and left as it is; ``force=True`` upgrades it back to the spec. A failed upgrade
is rolled back to the last good revision and the failed digest is **held**: not retried
until the spec changes or ``force=True``.

A killed operation (the orchestrator died while helm ran: the release is left pending, the
lease names a dead process) is **stuck**: ensure unlocks it (marks the pending revision
failed, as Flux does), rolls back to the last good revision if there is one, and applies the
spec again. Create, update, suspend/resume and fleet upgrades record the desired spec before
helm runs, so the next ensure finishes what the dead process started; nothing is held, since
the values did not fail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from saasodoo.adapters.kube import Namespace
from saasodoo.core.reconcile import (
    GOOD_STATUSES,
    Action,
    Applied,
    ReconcileObservation,
    State,
    determine_state,
    next_action,
    parse_duration,
)
from saasodoo.core.record import LEASE_MARGIN, SPEC_ANNOTATION
from saasodoo.core.spec import MANAGED_BY, MANAGED_BY_LABEL, TENANT_LABEL, TenantSpec, namespace_for
from saasodoo.core.status import ReleaseInfo
from saasodoo.core.values import (
    ADMIN_SECRET_KEY,
    ADMIN_SECRET_NAME,
    TenantValues,
    get_path,
    helm_merge,
)
from saasodoo.core.versions import check_version_change
from saasodoo.domains import HostTaken
from saasodoo.errors import FieldError, InvalidInput, NotFound, SaasodooError
from saasodoo.settings import REPO_ROOT
from saasodoo.tenants import Tenants

log = logging.getLogger(__name__)

#: Bound of the ensure loop: the longest path is unlock -> reinstall -> record.
MAX_STEPS = 6
#: Namespace label that makes a tenant a canary of fleet upgrades.
CANARY_LABEL = "saasodoo.dev/canary"


class Outcome(StrEnum):
    UNCHANGED = "unchanged"  # in sync: nothing done, no helm call
    INSTALLED = "installed"
    UPGRADED = "upgraded"
    RECOVERED = "recovered"  # a stuck or interrupted operation brought to the spec
    ROLLED_BACK = "rolled-back"  # a failed upgrade rolled back to the last good revision
    DRIFTED = "drifted"  # changed by hand: reported, left alone (force reconciles)
    HELD = "held"  # a digest that failed before: not retried (force retries)
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
class _Subject:
    """One tenant as ensure sees it: namespace, desired spec, values and digest."""

    namespace: Namespace
    spec: TenantSpec
    suspended: bool
    values: TenantValues
    observation: ReconcileObservation


@dataclass
class FleetSummary:
    results: list[EnsureResult]
    stopped: str | None = None

    def count(self, *outcomes: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome in outcomes)

    @property
    def ok(self) -> bool:
        return self.stopped is None and not any(r.outcome in BAD_OUTCOMES for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.outcome.value] = counts.get(r.outcome.value, 0) + 1
        return {
            "stopped": self.stopped,
            "counts": counts,
            "results": [r.to_dict() for r in self.results],
        }


@dataclass(frozen=True)
class FleetTarget:
    """What a fleet upgrade changes in every selected tenant's spec.

    A new chart (or chart version) is given by the ``Tenants`` the fleet runs with
    (``Settings.chart``/``chart_version``); an Odoo image with ``overrides`` such as
    ``{"odoo": {"image": {"tag": "18.0-20250218"}}}``, merged into each spec's overrides.
    """

    odoo_version: str | None = None
    overrides: dict[str, Any] | None = None

    def apply(self, spec: TenantSpec) -> TenantSpec:
        data = spec.model_dump()
        if self.odoo_version is not None:
            data["odoo_version"] = self.odoo_version
        if self.overrides:
            data["overrides"] = helm_merge(spec.overrides, self.overrides)
        return TenantSpec.parse(data)


def check_fleet_target(target: FleetTarget, specs: Sequence[TenantSpec]) -> None:
    """Refuse the whole upgrade, before any tenant is touched, when it would take a tenant
    to an older Odoo (core.versions): ``InvalidInput`` naming ``odoo_version`` (or
    ``image_tag``, the API's name of the pinned tag) and the tenants."""
    refused: list[tuple[str, InvalidInput]] = []
    for spec in specs:
        try:
            new = target.apply(spec)
        except InvalidInput:
            continue  # reported with that tenant's result
        try:
            check_version_change(spec, new)
        except InvalidInput as exc:
            refused.append((spec.id, exc))
    if not refused:
        return
    first = refused[0][1].fields[0]
    field = "odoo_version" if first.field == "odoo_version" else "image_tag"
    ids = ", ".join(tid for tid, _ in refused[:10]) + (", ..." if len(refused) > 10 else "")
    raise InvalidInput(
        f"fleet upgrade refused: {len(refused)} tenant(s) would go to an older Odoo ({ids})",
        [FieldError(field, f"{refused[0][0]}: {first.message}")],
    )


class Fleet:
    """Reconcile and upgrade tenants through one ``Tenants`` (its cluster, helm, chart)."""

    def __init__(self, tenants: Tenants, *, stale_after: timedelta | None = None) -> None:
        self.tenants = tenants
        self.kube = tenants.kube
        self.record = tenants.record
        self.stale_after = stale_after or (
            parse_duration(tenants.settings.helm_timeout) + LEASE_MARGIN
        )

    @property
    def helm(self) -> Any:
        return self.tenants.helm

    # -- observing --------------------------------------------------------------------

    async def _subject(
        self, ns: Namespace, release: ReleaseInfo | None, last_good: int | None = None
    ) -> _Subject:
        spec = self.record.spec(ns)
        suspended = self.record.suspended(ns)
        values, digest = await self.tenants.desired(spec, suspended=suspended)
        obs = ReconcileObservation(
            tenant_id=spec.id,
            namespace_phase=ns.phase,
            release=release,
            desired_digest=digest,
            applied=self.record.applied(ns),
            failed_digest=self.record.failed_digest(ns),
            lease=self.record.lock(ns),
            last_good_revision=last_good,
        )
        return _Subject(ns, spec, suspended, values, obs)

    async def observe(self, tenant_id: str) -> _Subject:
        """One tenant, closely: namespace, helm status and, for a failed head, history."""
        ns = self.record.namespace(tenant_id)
        spec = self.record.spec(ns)
        release = await self.helm.status(spec.release, spec.namespace)
        last_good = None
        if release is not None and release.status == "failed":
            last_good = await self._last_good(spec, release.revision)
        return await self._subject(ns, release, last_good)

    async def _last_good(self, spec: TenantSpec, below: int) -> int | None:
        history = await self.helm.history(spec.release, spec.namespace)
        good = [r.revision for r in history if r.status in GOOD_STATUSES and r.revision < below]
        return max(good) if good else None

    def state_of(self, subject: _Subject) -> State:
        return determine_state(subject.observation, datetime.now(UTC), self.stale_after)

    # -- ensure ---------------------------------------------------------------------

    async def ensure(
        self, tenant_id: str, *, force: bool = False, first: _Subject | None = None
    ) -> EnsureResult:
        """Converge one tenant to its spec; see the module docstring for hand changes."""
        steps: list[str] = []
        actions: list[Action] = []
        errors: list[str] = []
        subject = first
        for _ in range(MAX_STEPS):
            if subject is None:
                try:
                    subject = await self.observe(tenant_id)
                except NotFound as exc:
                    return EnsureResult(tenant_id, Outcome.FAILED, exc.message, steps)
            obs = subject.observation
            state = self.state_of(subject)
            action = next_action(state, force=force)
            revision = obs.release.revision if obs.release else None
            if action is Action.NONE:
                if obs.lease is not None:  # a stale lease of a dead process: drop it
                    self.record.unlock(subject.spec.namespace)
                return EnsureResult(
                    tenant_id, _done_outcome(actions), _detail(actions, errors), steps, revision
                )
            if action is Action.WAIT:
                why = obs.lease.operation if obs.lease and state is State.LOCKED else ""
                detail = f"{state.value}{': ' + why if why else ''}; try again later"
                return EnsureResult(tenant_id, Outcome.BUSY, detail, steps, revision)
            if action is Action.REPORT:
                return self._report(subject, state, actions, errors, steps)
            steps.append(f"{state.value} -> {action.value}")
            actions.append(action)
            try:
                await self._act(action, subject)
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
            subject = None
        return EnsureResult(
            tenant_id,
            Outcome.GAVE_UP,
            f"not converged after {MAX_STEPS} steps; " + "; ".join(errors),
            steps,
        )

    def _report(
        self,
        subject: _Subject,
        state: State,
        actions: list[Action],
        errors: list[str],
        steps: list[str],
    ) -> EnsureResult:
        obs = subject.observation
        rel = obs.release
        revision = rel.revision if rel else None
        tid = subject.spec.id
        if Action.ROLLBACK in actions:
            return EnsureResult(tid, Outcome.ROLLED_BACK, _detail(actions, errors), steps, revision)
        if state is State.DRIFTED:
            recorded = obs.applied.revision if obs.applied else None
            detail = (
                f"release at revision {revision} ({rel.status if rel else '?'}), saasodoo "
                f"recorded revision {recorded}: changed by hand (helm rollback/upgrade); "
                "left as it is, ensure --force reconciles it to the spec"
            )
            return EnsureResult(tid, Outcome.DRIFTED, detail, steps, revision)
        if state is State.HELD:
            detail = (
                "the spec's values failed to deploy before and were rolled back; not retried "
                "until the spec changes (ensure --force retries)"
            )
            return EnsureResult(tid, Outcome.HELD, detail, steps, revision)
        status = rel.status if rel else "none"
        return EnsureResult(tid, Outcome.FAILED, f"release status '{status}'", steps, revision)

    async def _act(self, action: Action, subject: _Subject) -> None:
        spec, obs = subject.spec, subject.observation
        rel = obs.release
        tenants = self.tenants
        if action is Action.UNLOCK:
            assert rel is not None
            before = self.kube.unlock_release(
                spec.namespace,
                spec.release,
                rel.revision,
                f"saasodoo: unlocked a stale {rel.status} (its operation ended without a result)",
            )
            log.warning("tenant %s: unlocked stale %s revision %d", spec.id, before, rel.revision)
            # The dead holder's lease stays until the rollback: it tells that this failed
            # revision was a killed operation, not values that failed to deploy.
        elif action is Action.ADOPT:
            assert rel is not None and obs.lease is not None
            values = await self.helm.get_values(spec.release, spec.namespace, rel.revision)
            recorded = get_path(values, "tenant.spec")
            applied_spec = TenantSpec.model_validate(recorded) if recorded else spec
            suspended = get_path(values, "odoo.replicas") == 0
            self.record.write(
                applied_spec, suspended, applied=Applied(obs.lease.digest, rel.revision)
            )
        elif action in (Action.INSTALL, Action.UPGRADE, Action.REINSTALL):
            # A recorded spec naming a platform host or another tenant's is not applied.
            tenants.domains.claim(spec.id, spec.custom_domains)
            if action is Action.REINSTALL:
                await self.helm.uninstall(spec.release, spec.namespace, wait=True)
            if action is not Action.UPGRADE:
                # A crash between namespace and install may have left no admin Secret.
                self.kube.create_secret_if_absent(
                    spec.namespace,
                    ADMIN_SECRET_NAME,
                    {ADMIN_SECRET_KEY: _password()},
                    labels={TENANT_LABEL: spec.id, MANAGED_BY_LABEL: MANAGED_BY},
                )
            digest = obs.desired_digest
            async with self.record.locked(spec.namespace, f"ensure {action.value}", digest):
                if action is Action.UPGRADE:
                    self.kube.mend_replicas_ownership(spec.namespace)  # helm 4 would conflict
                rev = await self.helm.install_or_upgrade(
                    spec.release,
                    spec.namespace,
                    subject.values.values,
                    description=f"saasodoo: ensure ({action.value} to spec)",
                    wait=True,
                )
            self.record.write(spec, subject.suspended, applied=Applied(digest, rev.revision))
            tenants.domains.release_except(spec.id, spec.custom_domains)
        elif action is Action.ROLLBACK:
            assert rel is not None and obs.last_good_revision is not None
            good = obs.last_good_revision
            digest = await self._digest_of(subject, good)
            async with self.record.locked(spec.namespace, f"rollback to {good}", digest):
                # Volume-safe: a failed plan upgrade may have grown volumes already.
                await tenants.return_to(spec, good, wait=True)
            head = await self.helm.status(spec.release, spec.namespace)
            revision = head.revision if head else rel.revision + 1
            # Held (not retried) only when the values themselves failed to deploy. A failed
            # head under a dead holder's lease is a killed operation (saasodoo releases its
            # lease when helm fails): its values are tried again on the next step.
            killed = obs.lease is not None
            failed = obs.desired_digest if obs.desired_digest != digest and not killed else None
            self.record.write_outcome(spec.namespace, Applied(digest, revision), failed)
        else:  # pragma: no cover - next_action returns no other acting action
            raise AssertionError(action)

    async def _digest_of(self, subject: _Subject, revision: int) -> str:
        """Digest of what ``revision`` deployed (its values and chart version)."""
        applied = subject.observation.applied
        if applied is not None and applied.revision == revision:
            return applied.digest
        spec = subject.spec
        values = await self.helm.get_values(spec.release, spec.namespace, revision)
        history = {r.revision: r for r in await self.helm.history(spec.release, spec.namespace)}
        chart = history[revision].chart if revision in history else ""
        version = chart.rsplit("-", 1)[-1] if "-" in chart else chart
        return TenantValues(values).digest(version)

    # -- the fleet ------------------------------------------------------------------

    def check_upgrade(
        self,
        target: FleetTarget,
        tenant_ids: Sequence[str] | None = None,
        selector: str | None = None,
    ) -> None:
        """What ``upgrade`` refuses before touching anything (an older Odoo for any tenant),
        from one list request: the API calls it before queuing the upgrade."""
        wanted = set(tenant_ids) if tenant_ids else None
        specs = []
        for ns in self.kube.list_tenant_namespaces(selector):
            if wanted is not None and ns.labels.get(TENANT_LABEL) not in wanted:
                continue
            try:
                specs.append(self.record.spec(ns))
            except (SaasodooError, ValueError):
                continue  # reported by the upgrade itself
        check_fleet_target(target, specs)

    async def subjects(
        self, tenant_ids: Sequence[str] | None = None, selector: str | None = None
    ) -> list[_Subject]:
        """Every tenant (or the selected ones) from two list requests, no helm call."""
        namespaces = self.kube.list_tenant_namespaces(selector)
        heads = self.kube.list_release_heads()
        wanted = set(tenant_ids) if tenant_ids else None
        out = []
        for ns in namespaces:
            tid = ns.labels.get(TENANT_LABEL, "")
            if wanted is not None and tid not in wanted:
                continue
            if SPEC_ANNOTATION not in ns.annotations:
                log.warning("namespace %s is labelled as a tenant but has no spec", ns.name)
                continue
            try:
                release = heads.get((namespace_for(tid), tid))
                out.append(await self._subject(ns, release))
            except (SaasodooError, ValueError) as exc:
                log.warning("tenant %s: cannot read its spec: %s", tid, exc)
        if wanted is not None:
            missing = wanted - {s.spec.id for s in out}
            if missing:
                raise NotFound(f"tenants not found: {', '.join(sorted(missing))}")
        return sorted(out, key=lambda s: s.spec.id)

    async def ensure_all(
        self,
        tenant_ids: Sequence[str] | None = None,
        *,
        selector: str | None = None,
        force: bool = False,
        concurrency: int | None = None,
        on_plan: Callable[[int], None] | None = None,
        on_result: Callable[[EnsureResult], None] | None = None,
    ) -> FleetSummary:
        """Reconcile every tenant. In-sync tenants cost nothing beyond the two list calls."""
        subjects = await self.subjects(tenant_ids, selector)
        if on_plan:
            on_plan(len(subjects))
        limit = asyncio.Semaphore(concurrency or self.tenants.settings.concurrency)
        results: list[EnsureResult] = []

        async def one(subject: _Subject) -> None:
            state = self.state_of(subject)
            if state is State.IN_SYNC and subject.observation.lease is None:
                rel = subject.observation.release
                result = EnsureResult(
                    subject.spec.id, Outcome.UNCHANGED, revision=rel.revision if rel else None
                )
            else:
                async with limit:
                    # Look closer (fresh status, history for failed heads) before acting.
                    result = await self._safe_ensure(subject.spec.id, force)
            results.append(result)
            if on_result:
                on_result(result)

        await asyncio.gather(*(one(s) for s in subjects))
        return FleetSummary(sorted(results, key=lambda r: r.tenant_id))

    async def _safe_ensure(self, tenant_id: str, force: bool) -> EnsureResult:
        try:
            return await self.ensure(tenant_id, force=force)
        except SaasodooError as exc:
            return EnsureResult(tenant_id, Outcome.FAILED, exc.message)

    async def upgrade(
        self,
        target: FleetTarget,
        tenant_ids: Sequence[str] | None = None,
        *,
        selector: str | None = None,
        canaries: int = 1,
        max_failures: int = 0,
        concurrency: int | None = None,
        timeout: str | None = None,
        force: bool = False,
        on_plan: Callable[[int], None] | None = None,
        on_result: Callable[[EnsureResult], None] | None = None,
    ) -> FleetSummary:
        """Move the selected tenants to ``target`` (and this Tenants' chart).

        Canaries first, one by one (namespaces labelled ``saasodoo.dev/canary=true``, else
        the first ``canaries`` tenants by id): if one fails, nothing else is touched.
        Then the others, ``concurrency`` at a time; once more than ``max_failures`` have
        failed no new upgrade starts and the rest are skipped. A failed tenant is rolled
        back to its last good revision and keeps its previous spec. Tenants that are not
        in a state to upgrade (drifted, held, busy, failed) are skipped unless ``force``.
        """
        subjects = await self.subjects(tenant_ids, selector)
        check_fleet_target(target, [s.spec for s in subjects])
        if on_plan:
            on_plan(len(subjects))
        labelled = [s for s in subjects if _label(s.namespace, CANARY_LABEL) == "true"]
        canary = labelled or subjects[: max(canaries, 0)]
        canary_ids = {s.spec.id for s in canary}
        rest = [s for s in subjects if s.spec.id not in canary_ids]
        results: list[EnsureResult] = []
        failures = 0
        stopped: str | None = None

        def done(result: EnsureResult) -> None:
            results.append(result)
            if on_result:
                on_result(result)

        for subject in canary:
            if stopped:
                done(_skipped(subject, stopped))
                continue
            result = await self._upgrade_one(subject, target, timeout, force)
            done(result)
            if result.outcome is Outcome.FAILED:
                failures += 1
                stopped = f"canary {subject.spec.id} failed"
        limit = asyncio.Semaphore(concurrency or self.tenants.settings.concurrency)

        async def one(subject: _Subject) -> None:
            nonlocal failures, stopped
            async with limit:
                if stopped is None and failures > max_failures:
                    stopped = f"{failures} failures, more than the {max_failures} allowed"
                if stopped:
                    done(_skipped(subject, stopped))
                    return
                result = await self._upgrade_one(subject, target, timeout, force)
                if result.outcome is Outcome.FAILED:
                    failures += 1
                done(result)

        if stopped:
            for subject in rest:
                done(_skipped(subject, stopped))
        else:
            await asyncio.gather(*(one(s) for s in rest))
            if stopped is None and failures > max_failures:
                stopped = f"{failures} failures, more than the {max_failures} allowed"
        return FleetSummary(sorted(results, key=lambda r: r.tenant_id), stopped)

    async def _upgrade_one(
        self, subject: _Subject, target: FleetTarget, timeout: str | None, force: bool
    ) -> EnsureResult:
        tid = subject.spec.id
        try:
            fresh = await self.observe(tid)
            state = self.state_of(fresh)
            upgradable = {State.IN_SYNC, State.OUT_OF_DATE, State.UNRECORDED}
            if state not in upgradable and not (force and state in (State.DRIFTED, State.HELD)):
                return _skipped(fresh, f"{state.value}: run ensure first")
            spec = target.apply(fresh.spec)
            check_version_change(fresh.spec, spec)  # its spec may have changed since
            values, digest = await self.tenants.desired(spec, suspended=fresh.suspended)
            applied = fresh.observation.applied
            if state is State.IN_SYNC and applied is not None and applied.digest == digest:
                rel = fresh.observation.release
                return EnsureResult(
                    tid,
                    Outcome.UNCHANGED,
                    "already at the target",
                    [],
                    rel.revision if rel else None,
                )
            try:
                # The target spec is recorded before helm runs: if this process dies, the
                # next ensure finishes the upgrade of this tenant.
                rev = await self.tenants.upgrade_to(
                    spec, fresh.suspended, (fresh.spec, fresh.suspended), "fleet upgrade",
                    "saasodoo: fleet upgrade", wait=True, timeout=timeout,
                    desired=(values, digest),
                )  # fmt: skip
            except SaasodooError as exc:
                # The previous spec is the recorded one again: ensure rolls the failed
                # revision back to the last good one.
                remedy = await self.ensure(tid)
                detail = f"upgrade failed: {exc.message}; {remedy.outcome.value}: {remedy.detail}"
                return EnsureResult(tid, Outcome.FAILED, detail, remedy.steps, remedy.revision)
            return EnsureResult(tid, Outcome.UPGRADED, "", ["upgrade"], rev.revision)
        except SaasodooError as exc:
            return EnsureResult(tid, Outcome.FAILED, exc.message)


def _label(ns: Namespace, key: str) -> str | None:
    value = ns.labels.get(key)
    return str(value) if value is not None else None


def _skipped(subject: _Subject, reason: str) -> EnsureResult:
    rel = subject.observation.release
    return EnsureResult(subject.spec.id, Outcome.SKIPPED, reason, [], rel.revision if rel else None)


def _done_outcome(actions: list[Action]) -> Outcome:
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


def _password() -> str:
    import secrets

    return secrets.token_urlsafe(24)


# -- GitOps export ----------------------------------------------------------------------


@dataclass(frozen=True)
class FluxSource:
    """Where Flux finds the chart: a GitRepository (chart path) or a HelmRepository."""

    kind: str = "GitRepository"
    name: str = "saasodoo"
    namespace: str = "flux-system"
    interval: str = "10m"


async def export(
    tenants: Tenants, tenant_id: str, *, flux: bool = False, source: FluxSource | None = None
) -> dict[str, str]:
    """The tenant's computed values file and, with ``flux``, a Flux HelmRelease.

    Returns file name -> YAML text. Both come from the recorded spec, exactly as saasodoo
    computes them; the values hold no secret (the admin password stays in its Secret,
    referenced by name). The HelmRelease manages the same release (name, namespace,
    chart, values), so Flux can take over from saasodoo.
    """
    ns = tenants.record.namespace(tenant_id)
    spec = tenants.record.spec(ns)
    values, digest = await tenants.desired(spec, suspended=tenants.record.suspended(ns))
    chart_version = await tenants.helm.digest_chart_version()
    header = (
        f"# Values of tenant {spec.id} (release {spec.release} in namespace {spec.namespace}),\n"
        f"# computed by saasodoo for chart version {chart_version}; digest {digest}.\n"
    )
    files = {f"{spec.id}.values.yaml": header + yaml.safe_dump(values.values, sort_keys=False)}
    if flux:
        doc = helm_release(tenants, spec, values.values, chart_version, source or FluxSource())
        files[f"{spec.id}.helmrelease.yaml"] = yaml.safe_dump(doc, sort_keys=False)
    return files


def helm_release(
    tenants: Tenants,
    spec: TenantSpec,
    values: dict[str, Any],
    chart_version: str,
    source: FluxSource,
) -> dict[str, Any]:
    """A ``helm.toolkit.fluxcd.io/v2`` HelmRelease for the tenant's release."""
    ref = tenants.settings.chart
    if ref.startswith(("oci://", "http://", "https://")):
        chart = ref.rstrip("/").rsplit("/", 1)[-1]
    else:
        path = Path(ref).resolve()
        try:
            chart = "./" + str(path.relative_to(REPO_ROOT))
        except ValueError:
            chart = str(path)
    if source.kind not in ("GitRepository", "HelmRepository", "Bucket"):
        raise InvalidInput(f"unknown Flux source kind {source.kind!r}")
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {
            "name": spec.release,
            "namespace": spec.namespace,
            "labels": {TENANT_LABEL: spec.id, "app.kubernetes.io/managed-by": "flux"},
        },
        "spec": {
            "releaseName": spec.release,
            "storageNamespace": spec.namespace,
            "interval": source.interval,
            "chart": {
                "spec": {
                    "chart": chart,
                    "version": chart_version,
                    "sourceRef": {
                        "kind": source.kind,
                        "name": source.name,
                        "namespace": source.namespace,
                    },
                }
            },
            "install": {"createNamespace": False, "remediation": {"retries": 3}},
            "upgrade": {"remediation": {"retries": 3, "remediateLastFailure": True}},
            "values": values,
        },
    }
