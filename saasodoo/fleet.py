"""The fleet: reconcile every tenant (``ensure_all``) and move tenants to a new chart or Odoo
(``upgrade``), with canaries, bounded concurrency and a failure threshold.

A tenant in sync costs no helm call: the fleet pass reads every namespace, the OdooTenants
holding their records and every release head in three list requests, compares digests, and
hands only the tenants that are not in sync to ``saasodoo.reconciler`` (one tenant's ensure
loop). GitOps export is ``saasodoo.gitops``.

Concurrency model: one tenant's operation is sequential and may block (the Kubernetes
adapter is the synchronous official client; helm runs as an asyncio subprocess through
pyhelm3). Tenants run side by side in ``TenantWorkers``: a bounded pool of threads
(``concurrency`` of them), each running one tenant's coroutine to its end on an event loop
of its own. So a slow API call stalls only its own tenant, and Kubernetes calls overlap as
well as helm processes. The fleet's bookkeeping (results, canaries, the failure threshold)
stays on the caller's event loop, where each tenant's result arrives; no state is shared
between tenants' threads but the adapters (urllib3's pool and the helm client are
thread-safe; ``Kube.requests`` is counted under a lock). Cancelling a fleet pass cancels the
tenants' coroutines in their threads (pyhelm3 then terminates helm), as it did on one loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from saasodoo.adapters.kube import Namespace
from saasodoo.context import Context
from saasodoo.core import updates as up
from saasodoo.core.reconcile import State
from saasodoo.core.spec import TENANT_LABEL, TenantSpec, namespace_for
from saasodoo.core.values import helm_merge
from saasodoo.core.versions import check_version_change
from saasodoo.errors import FieldError, InvalidInput, NotFound, NotReady, SaasodooError
from saasodoo.odootenants import OdooTenants, TenantView
from saasodoo.reconciler import (
    BAD_OUTCOMES,
    EnsureResult,
    ObservedTenant,
    Outcome,
    Reconciler,
)
from saasodoo.tenants import Tenants

#: Seconds a fleet upgrade through the operator follows a tenant past its timeout while an
#: update through odoo -u runs on it: the pre-update backup's and the -u Job's deadlines
#: (an hour each by default).
UPDATE_FOLLOW_SECONDS = 2 * 3600.0

log = logging.getLogger(__name__)

#: Namespace label that makes a tenant a canary of fleet upgrades.
CANARY_LABEL = "saasodoo.dev/canary"

T = TypeVar("T")


class TenantWorkers:
    """A bounded pool of threads, each running one tenant's coroutine on an event loop of its
    own (see the module docstring). Use as an async context manager: leaving it waits, off
    the caller's event loop, for the threads."""

    def __init__(self, size: int) -> None:
        """``size``: how many tenants at most run at once (at least 1)."""
        self.pool = ThreadPoolExecutor(max_workers=max(size, 1), thread_name_prefix="tenant")

    async def __aenter__(self) -> TenantWorkers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.pool.shutdown, wait=True, cancel_futures=True)

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """``work()`` run to its end in a thread of the pool, on that thread's event loop;
        its result or exception. When the caller is cancelled, so is ``work``: before it
        starts (it never does), while it runs, or after it ended (nothing left to cancel)."""
        handle = _WorkHandle()

        async def main() -> T:
            handle.started(asyncio.get_running_loop())
            return await work()

        future = asyncio.get_running_loop().run_in_executor(self.pool, lambda: asyncio.run(main()))
        try:
            return await future
        except asyncio.CancelledError:
            handle.cancel()
            raise


@dataclass
class _WorkHandle:
    """One ``TenantWorkers.run``: the task of its work in its thread, and whether the caller
    cancelled it; both sides go through the lock, so a cancel is never lost in between."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    cancelled: bool = False
    task: asyncio.Task[Any] | None = None
    loop: asyncio.AbstractEventLoop | None = None

    def started(self, loop: asyncio.AbstractEventLoop) -> None:
        """In the worker thread, first thing: register, or stop if already cancelled."""
        with self.lock:
            if self.cancelled:
                raise asyncio.CancelledError
            self.task, self.loop = asyncio.current_task(), loop

    def cancel(self) -> None:
        """On the caller's side: cancel the work wherever it is."""
        with self.lock:
            self.cancelled = True
            task, loop = self.task, self.loop
        if task is not None and loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed: the work had ended
                loop.call_soon_threadsafe(task.cancel)


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

    A new chart (or chart version) is given by the context the fleet runs with
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

    def changes(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The update (``Tenants.update``'s keywords) that applies the target to a tenant
        whose overrides are ``overrides``."""
        out: dict[str, Any] = {}
        if self.odoo_version is not None:
            out["odoo_version"] = self.odoo_version
        if self.overrides:
            out["overrides"] = helm_merge(overrides, self.overrides)
        return out


def check_fleet_target(target: FleetTarget, specs: Sequence[TenantSpec]) -> None:
    """Refuse the whole upgrade, before any tenant is touched, when it would change a
    tenant's Odoo series (core.versions: Odoo does not migrate a database across majors):
    ``InvalidInput`` naming ``odoo_version`` (or ``image_tag``, the API's name of the pinned
    tag), both series and the tenants."""
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
        f"fleet upgrade refused: {len(refused)} tenant(s) would change Odoo series ({ids})",
        [FieldError(field, f"{refused[0][0]}: {first.message}")],
    )


class Fleet:
    """Reconcile and upgrade the tenants of one context (its cluster, helm, chart) through
    its lifecycle (``Tenants``); each tenant's loop is the ``reconciler``'s."""

    def __init__(self, ctx: Context, *, stale_after: timedelta | None = None) -> None:
        self.ctx = ctx
        self.tenants = Tenants(ctx)
        self.reconciler = Reconciler(ctx, stale_after=stale_after)

    # -- the fleet ------------------------------------------------------------------

    def check_upgrade(
        self,
        target: FleetTarget,
        tenant_ids: Sequence[str] | None = None,
        selector: str | None = None,
    ) -> None:
        """What ``upgrade`` refuses before touching anything (another Odoo series for any tenant),
        from two list requests: the API calls it before queuing the upgrade."""
        wanted = set(tenant_ids) if tenant_ids else None
        specs = []
        for ns in self.ctx.record.list(selector):
            if wanted is not None and ns.labels.get(TENANT_LABEL) not in wanted:
                continue
            try:
                specs.append(self.ctx.record.spec(ns))
            except (SaasodooError, ValueError):
                continue  # reported by the upgrade itself
        check_fleet_target(target, specs)

    def check_selector(self, selector: str | None) -> None:
        """Before a fleet pass is queued (the API): InvalidInput naming ``selector`` when the
        label selector is malformed (one list request). The CLI meets the same error at
        once, from the pass's own first list."""
        if selector is not None:
            try:
                self.ctx.kube.list_tenant_namespaces(selector)
            except InvalidInput as exc:
                raise InvalidInput(
                    "invalid request", [FieldError("selector", exc.message)]
                ) from None

    async def subjects(
        self, tenant_ids: Sequence[str] | None = None, selector: str | None = None
    ) -> list[ObservedTenant]:
        """Every tenant (or the selected ones) from three list requests (namespaces,
        OdooTenants for their records, Helm's records), no helm call."""
        namespaces = self.ctx.record.list(selector)
        heads = self.ctx.kube.list_release_heads()
        wanted = set(tenant_ids) if tenant_ids else None
        out = []
        for ns in namespaces:
            tid = ns.labels.get(TENANT_LABEL, "")
            if wanted is not None and tid not in wanted:
                continue
            if not self.ctx.record.has_spec(ns):
                log.warning("namespace %s is labelled as a tenant but has no spec", ns.name)
                continue
            try:
                release = heads.get((namespace_for(tid), tid))
                out.append(await self.reconciler.observed(ns, release))
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
        size = concurrency or self.ctx.settings.concurrency
        results: list[EnsureResult] = []

        async def one(workers: TenantWorkers, subject: ObservedTenant) -> None:
            state = self.reconciler.state_of(subject)
            if state is State.IN_SYNC and subject.observation.lock is None:
                rel = subject.observation.release
                result = EnsureResult(
                    subject.spec.id, Outcome.UNCHANGED, revision=rel.revision if rel else None
                )
            else:
                # Look closer (fresh status, history for failed heads) before acting.
                tid = subject.spec.id
                result = await workers.run(lambda: self._safe_ensure(tid, force))
            results.append(result)
            if on_result:
                on_result(result)

        async with TenantWorkers(size) as workers:
            await asyncio.gather(*(one(workers, s) for s in subjects))
        return FleetSummary(sorted(results, key=lambda r: r.tenant_id))

    async def _safe_ensure(self, tenant_id: str, force: bool) -> EnsureResult:
        try:
            return await self.reconciler.ensure(tenant_id, force=force)
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
        the first ``canaries`` tenants by id): if one fails, nothing else is touched. Each
        upgraded tenant (not suspended) must then pass its signed-in check
        (``Tenants.check_ready``: ``helm test``, a sign-in over JSON-RPC, not only
        ``/web/health``); one that fails it is rolled back and counts as failed.
        Then the others, ``concurrency`` at a time; once more than ``max_failures`` have
        failed no new upgrade starts and the rest are skipped. A failed tenant is rolled
        back to its last good revision and keeps its previous spec. Tenants that are not
        in a state to upgrade (unmanaged, stalled, busy, failed) are skipped unless ``force``.
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

        size = concurrency or self.ctx.settings.concurrency

        def upgrade_one(subject: ObservedTenant) -> Callable[[], Awaitable[EnsureResult]]:
            return lambda: self.upgrade_tenant(subject, target, timeout, force)

        async with TenantWorkers(size) as workers:
            for subject in canary:
                if stopped:
                    done(_skipped(subject, stopped))
                    continue
                result = await workers.run(upgrade_one(subject))
                done(result)
                if result.outcome is Outcome.FAILED:
                    failures += 1
                    stopped = f"canary {subject.spec.id} failed"
            # The threshold is checked as each upgrade is about to start: the semaphore
            # holds the others back until a thread is free.
            limit = asyncio.Semaphore(max(size, 1))

            async def one(subject: ObservedTenant) -> None:
                nonlocal failures, stopped
                async with limit:
                    if stopped is None and failures > max_failures:
                        stopped = f"{failures} failures, more than the {max_failures} allowed"
                    if stopped:
                        done(_skipped(subject, stopped))
                        return
                    result = await workers.run(upgrade_one(subject))
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

    async def upgrade_tenant(
        self, subject: ObservedTenant, target: FleetTarget, timeout: str | None, force: bool
    ) -> EnsureResult:
        """One tenant of ``upgrade``: observed afresh, skipped unless in a state to upgrade
        (or ``force``), moved to ``target``, rolled back on failure; its EnsureResult."""
        tid = subject.spec.id
        try:
            fresh = await self.reconciler.observe(tid)
            state = self.reconciler.state_of(fresh)
            upgradable = {State.IN_SYNC, State.OUT_OF_DATE, State.UNRECORDED}
            if state not in upgradable and not (
                force and state in (State.UNMANAGED, State.STALLED)
            ):
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
            # A new image (or code option, or module) needs the update's steps, which only
            # the operator runs: refused here, so a fleet stops at its first canary.
            await self.tenants.refuse_code_change(
                spec, fresh.namespace, fresh.suspended, (values, digest)
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
                remedy = await self.reconciler.ensure(tid)
                detail = f"upgrade failed: {exc.message}; {remedy.outcome.value}: {remedy.detail}"
                return EnsureResult(tid, Outcome.FAILED, detail, remedy.steps, remedy.revision)
            if not fresh.suspended:  # a suspended tenant has no Odoo to sign in to
                try:
                    await self.tenants.check_ready(spec, timeout=timeout)
                except NotReady as exc:
                    return await self.undo_upgrade(fresh, digest, rev.revision, exc.message)
            return EnsureResult(tid, Outcome.UPGRADED, "", ["upgrade", "signed-in check"],
                                rev.revision)  # fmt: skip
        except SaasodooError as exc:
            return EnsureResult(tid, Outcome.FAILED, exc.message)

    async def undo_upgrade(
        self, before: ObservedTenant, digest: str, revision: int, why: str
    ) -> EnsureResult:
        """An upgrade that deployed (``revision``) but failed the signed-in check: back to
        the revision ``before`` ran (volume-safe, as ensure's rollback), its spec recorded
        again and ``digest`` (the upgrade's) recorded as failed; a FAILED result saying so."""
        spec, previous = before.spec, before.revision
        steps = ["upgrade", "signed-in check failed"]
        if previous is None:
            return EnsureResult(spec.id, Outcome.FAILED, why, steps, revision)
        good = await self.reconciler.digest_of(before, previous)
        head = await self.ctx.release.rollback(
            spec, previous, good, restores=(spec, before.suspended), failed_digest=digest,
            wait=True,
        )  # fmt: skip
        now = head if head is not None else revision + 1
        steps.append(f"rolled back to {previous}")
        detail = f"upgrade deployed revision {revision} but {why}; rolled back to {previous}"
        return EnsureResult(spec.id, Outcome.FAILED, detail, steps, now)


def _label(ns: Namespace, key: str) -> str | None:
    value = ns.labels.get(key)
    return str(value) if value is not None else None


def _skipped(subject: ObservedTenant, reason: str) -> EnsureResult:
    rel = subject.observation.release
    return EnsureResult(subject.spec.id, Outcome.SKIPPED, reason, [], rel.revision if rel else None)


# -- the fleet through OdooTenants (the operator applies; Settings.operator) ---------------------


class ResourceFleet:
    """The fleet when the operator applies tenant changes: no helm here. ``request`` asks the
    operator to reconcile tenants now (annotation ``saasodoo.dev/reconcile-requested-at``,
    with ``force`` also ``saasodoo.dev/force-requested-at``) and follows them until each has
    handled it; ``upgrade`` writes a ``FleetTarget`` into the specs in waves (the canaries
    one by one, then ``concurrency`` at a time), each wave followed until its tenants are
    Ready for their new generation, stopping once more than ``max_failures`` failed (a
    tenant Stalled, refused by the checks, or not Ready within ``timeout`` seconds)."""

    def __init__(self, objects: OdooTenants) -> None:
        self.objects = objects

    def selected(self, tenant_ids: Sequence[str] | None) -> list[str]:
        known = [v.id for v in self.objects.list()]
        if not tenant_ids:
            return known
        missing = sorted(set(tenant_ids) - set(known))
        if missing:
            raise NotFound(f"tenants not found: {', '.join(missing)}")
        return sorted(tenant_ids)

    def request(
        self, tenant_ids: Sequence[str] | None = None, *, force: bool = False, timeout: float
    ) -> FleetSummary:
        """Ask for a reconcile of every selected tenant; their outcomes once handled."""
        ids = self.selected(tenant_ids)
        token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for tid in ids:
            self.objects.request_reconcile(tid, token, force=force)
        results = [self.follow(tid, timeout=timeout, token=token) for tid in ids]
        return FleetSummary(results)

    def follow(self, tid: str, *, timeout: float, token: str | None = None) -> EnsureResult:
        """Wait until the operator has handled the tenant's current generation (and the
        request ``token``), as an EnsureResult: upgraded/unchanged when Ready, unmanaged
        when Drifted, stalled, or failed (also when not done within ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        # An update through odoo -u (saasodoo.operator.updates) is followed to its end: its
        # backup and -u Jobs have deadlines of their own, longer than one helm timeout.
        update_deadline = deadline + UPDATE_FOLLOW_SECONDS
        while True:
            obj = self.objects.read(tid)
            status = obj.get("status") or {}
            view = TenantView.of(obj)
            handled = token is None or token in (status.get("lastHandledReconcileAt"),
                                                 status.get("lastHandledForceAt"))  # fmt: skip
            current = view.observed_generation == view.generation and handled
            if current and view.kstatus == "Current" and view.ready == "True":
                return EnsureResult(tid, Outcome.UPGRADED if token is None else Outcome.UNCHANGED,
                                    view.message, revision=view.revision)  # fmt: skip
            if current and view.reason == "Unmanaged":
                return EnsureResult(tid, Outcome.UNMANAGED, view.message, revision=view.revision)
            if current and view.kstatus == "Failed":
                return EnsureResult(tid, Outcome.STALLED, view.message, revision=view.revision)
            # Ready=False without Stalled: the operator is still retrying (MAX_RETRIES).
            now = time.monotonic()
            updating = up.in_progress(status.get("update"))
            if now > deadline and not (updating and now < update_deadline):
                waited = timeout + (UPDATE_FOLLOW_SECONDS if updating else 0)
                return EnsureResult(tid, Outcome.FAILED, f"not Ready after {waited:.0f}s: "
                                    f"{view.message or 'no status'}")  # fmt: skip
            time.sleep(0.5)

    async def upgrade(
        self,
        target: FleetTarget,
        tenant_ids: Sequence[str] | None = None,
        *,
        canaries: int = 1,
        max_failures: int = 0,
        concurrency: int = 4,
        timeout: float,
        on_result: Callable[[EnsureResult], None] | None = None,
    ) -> FleetSummary:
        ids = self.selected(tenant_ids)
        first, rest = ids[:canaries], ids[canaries:]
        waves = [[tid] for tid in first] + [
            rest[i : i + concurrency] for i in range(0, len(rest), concurrency)
        ]
        results: list[EnsureResult] = []
        for n, wave in enumerate(waves):
            started = []
            for tid in wave:
                overrides = (self.objects.read(tid).get("spec") or {}).get("overrides") or {}
                try:
                    await self.objects.update(tid, **target.changes(overrides))
                    started.append(tid)
                except SaasodooError as exc:
                    results.append(EnsureResult(tid, Outcome.FAILED, exc.message))
            for tid in started:
                results.append(self.follow(tid, timeout=timeout))
            for r in results[-len(wave) :]:
                if on_result:
                    on_result(r)
            # A tenant the operator left Stalled failed too (its doc says so): a Stalled
            # canary stops the rollout like a failed one.
            failed = sum(1 for r in results if r.outcome in BAD_OUTCOMES | {Outcome.STALLED})
            if failed > max_failures:
                skipped = [t for w in waves[n + 1 :] for t in w]
                results += [EnsureResult(t, Outcome.SKIPPED, "the fleet upgrade stopped")
                            for t in skipped]  # fmt: skip
                why = "a canary failed" if n < len(first) else f"{failed} tenants failed"
                return FleetSummary(results, stopped=why)
        return FleetSummary(results)
