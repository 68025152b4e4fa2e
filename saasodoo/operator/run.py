"""``saasodoo operator run``: the operator process, the same program on a laptop against the
simulated cluster and in the platform's Deployment.

Wiring, client-go's shape:

- an ``Informer`` lists then watches the OdooTenants of the platform namespace; an event
  that changes what a reconcile reads (generation, annotations, finalizers, deletion) puts
  the object's name on the work queue; the operator's own status writes do not. Its cache
  keeps what the handlers and sweeps read (``cached``: no managedFields, no status lists);
- one ``Informer`` per request kind (``OdooTenantBackup``, ...: ``saasodoo.core.operations``)
  keeps the ``RequestIndex`` of requests not finished; an event on one puts its
  ``spec.tenant`` on the work queue, and the workers run it in the tenant's turn
  (``saasodoo.operator.requests``: the tenant's oldest pending request, else its reconcile);
- a ``WorkQueue`` (per-item exponential back-off and an overall rate limit, client-go's
  defaults) feeds ``Settings.operator_workers`` worker threads (default 20; at most
  ``Settings.operator_helm_concurrency`` helm processes run at once, default 10); a name
  is never reconciled by two workers at once; each reconcile runs on the worker's own
  event loop (pyhelm3 is asyncio);
- every ``Settings.operator_resync_seconds`` (± 10 %) a sweep reads every tenant from a few
  list requests (namespaces, Helm's storage records and Services, metadata only) and the
  workload informers' caches, and queues only the
  tenants that need a look: a generation not observed, a release not in sync, workloads
  not ready or missing. A fleet in sync costs no helm call and a constant number of
  requests, whatever its size. The same sweep deletes the finished requests older than
  ``Settings.operator_request_ttl_seconds`` (read from the informers' caches) and queues the
  tenants with a request pending. After it, the C allocator hands its free memory back
  to the system (``release_free_memory``: glibc's ``malloc_trim``);
- a ``LeaderElector`` on a Lease: only the leader starts workers; when a leadership term
  ends (the Lease taken over, or not renewed within the renew deadline), the reconciles in
  flight are cancelled (pyhelm3 terminates its helm process), the workers joined, and the
  process stands by again (client-go controllers exit instead; a local operator has no
  supervisor to restart it). Operation locks name the term (``operator:<identity>#<term>``):
  a lock of an earlier term, this replica's or another's, is dead, so a term never waits
  on work a cancelled one left. On SIGTERM/SIGINT the work in flight is cancelled, then the
  Lease is released so a standby takes over at once;
- an ``Informer`` on the tenants' backup CronJobs (every namespace, slimmed in its cache:
  ``backups.slim_cronjob``) writes the outcome of each scheduled backup on its OdooTenant in
  the tenant's turn (``saasodoo.operator.backups``);
- an ``Informer`` on the tenants' Deployments and one on their StatefulSets (every
  namespace, slimmed in their caches) queue a tenant when one of them changes readiness or
  is deleted (``saasodoo.operator.workloads``): Ready is written as soon as the pods are, and
  a workload deleted by hand is put back at once; the sweep reads the workloads from them;
- with ``Settings.metrics_port`` the Prometheus metrics (``saasodoo.adapters.metrics``:
  reconciles, their durations, queue depth, helm calls, leadership, tenants by condition)
  are served on that port; the tenant gauges only by the leader.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import json
import logging
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from saasodoo.adapters.kube.informer import DELETED, Informer, InformerStats
from saasodoo.adapters.metrics import OperatorMetrics, serve
from saasodoo.adapters.resources import TenantResources
from saasodoo.context import Context
from saasodoo.core import operations
from saasodoo.core.crd import FINALIZER, GROUP, PLURAL, RECONCILE_REQUESTED_AT, VERSION
from saasodoo.core.spec import TENANT_LABEL
from saasodoo.operator.backups import BACKUP_CRONJOBS, ScheduledBackups, slim_cronjob
from saasodoo.operator.controller import Result, TenantController
from saasodoo.operator.election import LeaderElector
from saasodoo.operator.requests import RequestController, RequestIndex
from saasodoo.operator.workloads import (
    TENANT_WORKLOADS,
    WorkloadWatch,
    ready_in,
    slim,
    workloads_of,
)
from saasodoo.operator.workqueue import WorkQueue
from saasodoo.reconciler import Reconciler

log = logging.getLogger(__name__)

#: How often an idle worker looks whether it should stop (seconds).
POLL = 0.5
#: How often the gauges of ``OperatorMetrics`` are brought up to date (seconds).
METRICS_EVERY = 5.0
#: How long a new term waits for the request informers' first lists (seconds).
REQUESTS_SYNC_SECONDS = 10.0


def identity() -> str:
    """This replica's name in the Lease: the pod's name (downward API ``POD_NAME``) or
    ``host:pid`` for a local process."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}:{os.getpid()}"


def trigger(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether an object change needs a reconcile: anything but the status (which the
    operator writes itself: reacting to it would loop)."""
    if old is None:
        return True
    o, n = old.get("metadata") or {}, new.get("metadata") or {}
    return any(
        o.get(k) != n.get(k) for k in ("generation", "annotations", "finalizers",
                                       "deletionTimestamp", "labels")
    )  # fmt: skip


#: What of an OdooTenant's status the operator's cache keeps: what ``trigger``, the sweep
#: (``sweep.needs_look``, the tenant's record included), the scheduled backups
#: (``conditions.newer_backup``) and the gauges (``OperatorMetrics.observe_tenants``) read.
#: A reconcile reads its OdooTenant from the API server, so the status' lists (backups,
#: releases, history, domains) stay out.
CACHED_STATUS = (
    "observedGeneration", "conditions", "revision", "inventory", "lastHandledReconcileAt",
    "lastHandledForceAt", "lastBackup", "lastSuccessfulBackup", "record",
)  # fmt: skip
#: kubectl apply's copy of the whole object it applied.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def cached(obj: dict[str, Any]) -> dict[str, Any]:
    """An OdooTenant as the operator's informer caches it: without ``managedFields``, the
    ``LAST_APPLIED`` annotation and the status fields not in ``CACHED_STATUS``. Measured
    on 1,000 OdooTenants with a day-30 status (30 backups, 20 releases, 10 operations
    listed): about 64 KiB each as parsed JSON, 7 KiB each as cached here."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    notes = meta.get("annotations")
    if notes and LAST_APPLIED in notes:
        meta["annotations"] = {k: v for k, v in notes.items() if k != LAST_APPLIED}
    status = obj.get("status") or {}
    rest = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    kept = {k: status[k] for k in CACHED_STATUS if k in status}
    return {**rest, "metadata": meta, "status": kept}


@dataclass
class Stats:
    """What the operator did, for logs, benchmarks and tests."""

    reconciles: int = 0
    failures: int = 0
    sweeps: int = 0
    queued_by_sweep: int = 0
    queued_by_workloads: int = 0  # a tenant's workload changed readiness or was deleted
    # ... during the tenant's turn, whose status the workloads' cache agreed with at its end
    seen_by_turn: int = 0
    requests_expired: int = 0
    cancelled: int = 0
    terms_lost: int = 0
    started: float = field(default_factory=time.monotonic)
    first_sync: float | None = None


class Operator:
    """The operator of one cluster: informer, queue, workers, sweeps, leader election."""

    def __init__(
        self, ctx: Context, *, stats_file: Path | None = None, stats_every: float = 5.0
    ) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.stats_file = stats_file
        self.stats_every = stats_every
        self.identity = identity()
        # Operation locks name this replica; a lock of another replica is dead once this
        # one leads (the Lease says the other stopped), whatever host it ran on.
        self.ctx.record.holder = f"operator:{self.identity}#0"
        self.ctx.record.alive = self.lock_holder_alive
        self.resources = TenantResources(self.ctx.kube, settings.system_namespace)
        self.controller = TenantController(ctx, self.resources)
        self.metrics = OperatorMetrics()
        self.ctx.helm.command.observer = self.metrics.helm_seconds_observe
        # More workers than helm slots: a tenant's reads and status writes around its helm
        # call overlap other tenants' helm calls, which keep every slot busy.
        self.ctx.helm.command.slots = threading.BoundedSemaphore(settings.operator_helm_concurrency)
        self.index = RequestIndex()
        self.turns = RequestController(self.controller, self.index)
        self.queue: WorkQueue[str] = WorkQueue()  # one per leadership term (lead)
        self.workers: list[threading.Thread] = []
        self.term_started = 0.0
        self.stats = Stats()
        self.stopping = threading.Event()
        self.seen: dict[str, dict[str, Any]] = {}
        self.seen_lock = threading.Lock()
        self.informer = Informer.for_custom_objects(
            self.ctx.kube.api, GROUP, VERSION, PLURAL, settings.system_namespace,
            on_event=self.on_event, resync_period=settings.operator_resync_seconds,
            transform=cached,
        )  # fmt: skip
        self.request_informers = {
            op.kind: Informer.for_custom_objects(
                self.ctx.kube.api, GROUP, VERSION, op.plural, settings.system_namespace,
                on_event=functools.partial(self.on_request_event, op.kind),
                resync_period=settings.operator_resync_seconds,
            )
            for op in operations.KINDS.values()
        }  # fmt: skip
        self.scheduled = ScheduledBackups(self.resources, self.turns.backups)
        self.backup_informer = Informer(
            functools.partial(
                client.BatchV1Api(self.ctx.kube.api).list_cron_job_for_all_namespaces,
                label_selector=BACKUP_CRONJOBS,
            ),
            on_event=self.on_cronjob_event, name="cronjobs.batch (backups)",
            resync_period=settings.operator_resync_seconds, transform=slim_cronjob,
        )  # fmt: skip
        self.workloads = WorkloadWatch()
        self.sweeper = Reconciler(self.ctx)  # kept: it remembers the desired digests
        apps = client.AppsV1Api(self.ctx.kube.api)
        self.workload_informers = {
            kind: Informer(
                functools.partial(lister, label_selector=TENANT_WORKLOADS),
                on_event=functools.partial(self.on_workload_event, kind),
                name=f"{plural}.apps (tenants')", resync_period=settings.operator_resync_seconds,
                transform=slim,
            )
            for kind, plural, lister in (
                ("Deployment", "deployments", apps.list_deployment_for_all_namespaces),
                ("StatefulSet", "statefulsets", apps.list_stateful_set_for_all_namespaces),
            )
        }  # fmt: skip
        self.elector = LeaderElector(
            self.ctx.kube.api, settings.operator_lease, settings.system_namespace,
            identity=self.identity, lease_duration=int(settings.operator_lease_seconds),
            renew_deadline=settings.operator_renew_seconds,
            retry_period=settings.operator_retry_seconds,
            on_started_leading=self.lead, on_stopped_leading=self.on_stopped,
        )  # fmt: skip

    # -- events and sweeps ----------------------------------------------------------

    def on_event(self, kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        with self.seen_lock:
            old = self.seen.get(name)
            if kind == "DELETED":
                self.seen.pop(name, None)
            else:
                self.seen[name] = obj
        if kind == "DELETED":
            self.queue.forget(name)
            return
        if trigger(old, obj):  # a re-list's objects too: only what changed is queued
            self.queue.add(name)

    def on_request_event(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        """A request changed: the index follows; a request not finished queues its tenant
        (the operator's own writes of Running do too: one more turn, which finds it done)."""
        if event == DELETED:
            self.index.remove(kind, obj)
            return
        tenant = self.index.update(kind, obj)
        if tenant:
            self.queue.add(tenant)

    def on_cronjob_event(self, kind: str, obj: dict[str, Any]) -> None:
        """A tenant's backup CronJob changed: its tenant is queued when its last scheduled
        backup is news for the OdooTenant (``ScheduledBackups.observe``)."""
        if kind == DELETED:
            return
        tenant = ((obj.get("metadata") or {}).get("labels") or {}).get(TENANT_LABEL)
        with self.seen_lock:
            cached = self.seen.get(tenant) if tenant else None
        queued = self.scheduled.observe(obj, cached)
        if queued:
            self.queue.add(queued)

    def on_workload_event(self, workload: str, kind: str, obj: dict[str, Any]) -> None:
        """A tenant's ``workload`` (Deployment or StatefulSet) changed readiness or was
        deleted: its tenant is queued now, not at its next poll or resync
        (``workloads.WorkloadWatch``)."""
        informer = self.workload_informers[workload]
        tenant = self.workloads.observe(
            kind, obj, first_list=not informer.has_synced(), workload=workload
        )
        if not tenant:
            return
        with self.seen_lock:
            known = tenant in self.seen  # an OdooTenant (not a tenant made without one)
        if known:
            self.stats.queued_by_workloads += 1
            self.queue.add(tenant)

    def end_turn(self, queue: WorkQueue[str], name: str, result: Result | None) -> None:
        """The turn of ``name`` is over: its key done, and queued again when one of its
        workloads changed readiness during the turn (the rollout of its own helm upgrade,
        mostly) unless the status the turn wrote says what the workloads' cache says now
        (``Result.workloads_ready``): on a fleet upgrade that second turn cost every tenant
        six requests and found nothing to do. ``result``: the turn's Result; None after an
        error or a cancellation (its back-off, or the term's end, decides)."""
        if self.workloads.end(name) and result is not None:
            informers = self.workload_informers
            ready = result.workloads_ready
            if (ready is not None and all(i.has_synced() for i in informers.values())
                    and ready_in(name, informers["Deployment"].list(),
                                 informers["StatefulSet"].list()) == ready):  # fmt: skip
                self.stats.seen_by_turn += 1
            else:
                self.stats.queued_by_workloads += 1
                queue.add(name)
        queue.done(name)

    def sweep(self) -> int:
        """Queue the tenants that need a look and the tenants with a request pending, delete
        the finished requests whose time is up (see the module docstring); returns how many
        tenants were queued."""
        from saasodoo.operator.sweep import expire_requests, needs_look

        with self.seen_lock:
            objects = list(self.seen.values())
        cached = None
        if all(i.has_synced() for i in self.workload_informers.values()):
            informers = self.workload_informers
            cached = workloads_of(informers["Deployment"].list(), informers["StatefulSet"].list())
        names = set(asyncio.run(needs_look(self.ctx, objects, workloads=cached,
                                           reconciler=self.sweeper)))  # fmt: skip
        names.update(self.index.tenants())
        for name in sorted(names):
            self.queue.add(name)
        requests = {kind: inf.list() for kind, inf in self.request_informers.items()}
        self.stats.requests_expired += expire_requests(
            self.turns.requests, requests, self.ctx.settings.operator_request_ttl_seconds
        )
        self.stats.sweeps += 1
        self.stats.queued_by_sweep += len(names)
        release_free_memory()
        return len(names)

    def snapshot(self) -> dict[str, Any]:
        """The counters as one JSON-able dict: ``Stats`` (``started`` dropped; ``first_sync``
        in seconds since start), ``uptime`` (s), ``leader`` (bool), ``queued`` (keys ready in
        the work queue), ``informer`` (the ``InformerStats`` of every informer, OdooTenants and
        request kinds, summed, plus their ``requests``),
        ``kube_requests`` (``Kube.requests``: every API request but the informer's and the
        Lease's), ``helm_calls`` (helm processes run) and ``rss_kib`` / ``peak_rss_kib``
        (VmRSS / VmHWM of /proc/self/status; 0 where /proc is missing)."""
        stats = asdict(self.stats)
        stats.pop("started")
        informer = InformerStats()
        for each in (self.informer, self.backup_informer, *self.workload_informers.values(),
                     *self.request_informers.values()):  # fmt: skip
            for key, value in asdict(each.stats).items():
                setattr(informer, key, getattr(informer, key) + value)
        return {
            **stats,
            "uptime": time.monotonic() - self.stats.started,
            "leader": self.elector.is_leader,
            "queued": len(self.queue),
            "informer": {**asdict(informer), "requests": informer.requests},
            "kube_requests": self.ctx.kube.requests,
            "helm_calls": self.ctx.helm.calls,
            **memory_kib(),
        }

    def write_stats(self) -> None:
        """Replace ``stats_file`` with ``snapshot()`` as JSON (written aside, then renamed:
        a reader never sees half a file)."""
        if self.stats_file is None:
            return
        tmp = self.stats_file.with_name(self.stats_file.name + ".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(self.stats_file)

    def lock_holder_alive(self, holder: str) -> bool | None:
        """An operator's lock lives only as long as the term that took it: this term's is
        alive; another's is dead once this term has led longer than the Lease's duration
        plus the renew deadline (by then that term's helm was cancelled: its replica stopped
        at its renew deadline, and a terminated helm has had time to exit)."""
        if holder.startswith("operator:"):
            if holder == self.ctx.record.holder:
                return True
            settings = self.ctx.settings
            grace = settings.operator_lease_seconds + settings.operator_renew_seconds
            return time.monotonic() - self.term_started < grace
        from saasodoo.record import holder_alive

        return holder_alive(holder)

    # -- workers --------------------------------------------------------------------

    def work(self, term: threading.Event, queue: WorkQueue[str]) -> None:
        """One worker of a leadership term: reconciles from the term's ``queue`` until the
        term ends."""
        while not term.is_set():
            name = queue.get(timeout=POLL)
            if name is None:
                continue
            started = time.monotonic()
            self.workloads.begin(name)
            try:
                result = asyncio.run(self.guarded(name, term))
            except asyncio.CancelledError:
                self.stats.cancelled += 1
                self.metrics.reconciled("cancelled", time.monotonic() - started)
                self.end_turn(queue, name, None)
                continue
            except Exception:  # noqa: BLE001 - one tenant's error must not stop the worker
                log.exception("reconcile of %s failed", name)
                self.stats.failures += 1
                self.metrics.reconciled("error", time.monotonic() - started)
                queue.add_rate_limited(name)
                self.end_turn(queue, name, None)
                continue
            self.stats.reconciles += 1
            seconds = time.monotonic() - started
            if result.failed:
                self.stats.failures += 1
                self.metrics.reconciled("failure", seconds)
                if result.requeue_after is not None:  # the controller's retry interval
                    queue.add_after(name, result.requeue_after)
                else:
                    queue.add_rate_limited(name)
            else:
                self.metrics.reconciled("success", seconds)
                queue.forget(name)
                if result.requeue_after is not None:
                    queue.add_after(name, result.requeue_after)
            self.end_turn(queue, name, result)

    async def guarded(self, name: str, term: threading.Event) -> Any:
        """The reconcile of ``name``, cancelled as soon as the leadership term ends (pyhelm3
        then terminates its helm process)."""
        # A scheduled backup's outcome first (a status patch), then the tenant's turn.
        await asyncio.to_thread(self.scheduled.record, name)
        task = asyncio.ensure_future(self.turns.reconcile(name))
        while not task.done():
            if term.is_set():
                task.cancel()
                break
            await asyncio.wait({task}, timeout=0.25)
        return await task

    # -- the whole ------------------------------------------------------------------

    def lead(self, term: threading.Event) -> None:
        """One leadership term (on the elector's thread): the previous term's workers gone,
        a fresh queue filled from the informer's cache, the workers, then, when the term
        ends, the work in flight cancelled and the workers joined. Raising ends the process
        (the elector stops campaigning for good)."""
        try:
            self.run_term(term)
        except Exception:
            log.exception("%s: the leadership term failed: stopping", self.identity)
            self.stopping.set()
            raise

    def run_term(self, term: threading.Event) -> None:
        # A worker of an earlier term still inside a reconcile (a blocking call cancellation
        # cannot interrupt) must be gone before this term takes keys or names locks.
        for old in self.workers:
            while old.is_alive():
                old.join(timeout=1.0)
                if term.is_set():
                    return
        while not self.informer.wait_for_sync(timeout=1.0):
            if term.is_set():
                return
        # The requests' lists, briefly: without their CRDs (an operator newer than the CRDs
        # installed) tenants are still reconciled; a request informer that syncs later
        # queues the tenants of its pending requests then.
        deadline = time.monotonic() + REQUESTS_SYNC_SECONDS
        for kind, informer in self.request_informers.items():
            if not informer.wait_for_sync(timeout=max(0.0, deadline - time.monotonic())):
                log.warning("%s: %s not listed yet (is its CRD installed? `saasodoo "
                            "operator install-crds`); its requests run once it is",
                            self.identity, kind)  # fmt: skip
        queue: WorkQueue[str] = WorkQueue()
        self.queue = queue
        self.ctx.record.holder = f"operator:{self.identity}#{self.elector.terms}"
        self.term_started = time.monotonic()
        for obj in self.informer.list():
            queue.add(obj["metadata"]["name"])
        for tenant in self.index.tenants():  # requests of tenants with no OdooTenant too
            queue.add(tenant)
        for tenant in self.scheduled.pending():  # scheduled backups seen while standing by
            queue.add(tenant)
        log.info("%s leads: %d workers, %d helm slots", self.identity,
                 self.ctx.settings.operator_workers,
                 self.ctx.settings.operator_helm_concurrency)  # fmt: skip
        self.workers = [
            threading.Thread(
                target=self.work, args=(term, queue), name=f"reconcile-{i}", daemon=True
            )  # fmt: skip
            for i in range(self.ctx.settings.operator_workers)
        ]
        for t in self.workers:
            t.start()
        term.wait()
        queue.shutdown()
        for t in self.workers:
            t.join(timeout=60)
        log.info("%s: workers stopped", self.identity)

    def on_stopped(self) -> None:
        if not self.stopping.is_set():
            self.stats.terms_lost += 1
            log.error("%s lost its leadership: the work in flight was cancelled; standing by",
                      self.identity)  # fmt: skip

    def run(self, *, until: Callable[[], bool] | None = None) -> int:
        """Run until SIGTERM/SIGINT (or ``until()`` is true); 0 after a graceful stop."""
        self.informer.start()
        self.backup_informer.start()
        for informer in self.workload_informers.values():
            informer.start()
        for informer in self.request_informers.values():
            informer.start()
        log.info("operator %s: standing by for the Lease %s/%s", self.identity,
                 self.ctx.settings.system_namespace, self.ctx.settings.operator_lease)  # fmt: skip
        self.elector.start()
        if self.ctx.settings.metrics_port:
            serve(self.metrics.registry, self.ctx.settings.metrics_port)
            log.info("metrics on :%d/metrics", self.ctx.settings.metrics_port)
        period = self.ctx.settings.operator_resync_seconds
        next_sweep = time.monotonic() + period * random.uniform(0.9, 1.1)
        next_stats = time.monotonic()
        next_metrics = time.monotonic()
        try:
            while not self.stopping.is_set():
                if until is not None and until():
                    break
                if time.monotonic() >= next_metrics:
                    self.update_metrics()
                    next_metrics = time.monotonic() + METRICS_EVERY
                if self.stats_file is not None and time.monotonic() >= next_stats:
                    self.write_stats()
                    next_stats = time.monotonic() + self.stats_every
                if self.stats.first_sync is None and self.informer.has_synced():
                    self.stats.first_sync = time.monotonic() - self.stats.started
                    log.info("first full list after %.2fs", self.stats.first_sync)
                if time.monotonic() >= next_sweep:
                    if self.elector.is_leader:
                        try:
                            self.sweep()
                        except Exception:  # noqa: BLE001 - the next sweep tries again
                            log.exception("sweep failed")
                    next_sweep = time.monotonic() + period * random.uniform(0.9, 1.1)
                self.stopping.wait(POLL)  # a signal sets it: no poll to wait out
        finally:
            self.stop()
            self.write_stats()
        return 0

    def update_metrics(self) -> None:
        """The gauges: leadership, queue depth and, on the leader only (one series per
        tenant across replicas), the tenants' conditions from the informer's cache."""
        leader = self.elector.is_leader
        self.metrics.leader.set(1 if leader else 0)
        self.metrics.queue_depth.set(len(self.queue) if leader else 0)
        if leader:
            with self.seen_lock:
                objects = list(self.seen.values())
            self.metrics.observe_tenants(objects)
        else:
            self.metrics.observe_tenants([])

    def stop(self) -> None:
        """Graceful: the term ends (work cancelled, workers joined), the Lease released."""
        self.stopping.set()
        self.elector.stop(release=True)
        self.informer.stop()
        self.backup_informer.stop()
        for informer in self.workload_informers.values():
            informer.stop()
        for informer in self.request_informers.values():
            informer.stop()


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library is not glibc (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


_MALLOC_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hand the C allocator's free memory back to the system (glibc's ``malloc_trim(0)``:
    free pages anywhere in its heaps, not only at their top; a no-op elsewhere). A sweep or
    a first pass over 1,000 tenants parses and frees tens of MiB of JSON from ten threads,
    and glibc keeps what they freed resident otherwise (about 25 MiB at 400 tenants,
    measured: docs/benchmarks.md). Takes milliseconds."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def memory_kib() -> dict[str, int]:
    """This process's resident memory now and at its peak, in KiB (``rss_kib``,
    ``peak_rss_kib``: VmRSS and VmHWM of /proc/self/status); zeros without /proc."""
    found = {"VmRSS": 0, "VmHWM": 0}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in found:
                found[key] = int(value.split()[0])
    except OSError:
        pass
    return {"rss_kib": found["VmRSS"], "peak_rss_kib": found["VmHWM"]}


def install_signal_handlers(op: Operator) -> None:
    def handler(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        op.stopping.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


__all__ = ["FINALIZER", "RECONCILE_REQUESTED_AT", "Operator", "identity", "memory_kib", "trigger"]
