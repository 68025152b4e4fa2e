"""The operator's watch on the tenants' Deployments (Odoo's web and cron) and StatefulSets
(PostgreSQL): a tenant is queued when one of its workloads changes readiness or is deleted,
instead of when the next poll or resync comes round (controller-runtime's ``Owns``); and the
sweep reads every tenant's workloads from these caches instead of listing them
(``workloads_of``).

Two things get faster: a new or updated tenant is marked Ready as soon as its pods are (the
reconcile polls a tenant that is not Ready every ``controller.POLL_SECONDS``, 5 s, which a
sign-up waited for on top of Odoo's start), and a workload deleted by hand is put back at
once (before, at the next resync: ``Settings.operator_resync_seconds``, 300 s).

One list and one watch per kind over every namespace (``TENANT_WORKLOADS``), whatever the
number of tenants; each object is cached slimmed to what ``readiness`` reads (``slim``:
about 0.5 KiB, where a whole Deployment is 5-8 KiB), so the sweep parses no workload at all:
before, it listed every tenant's Deployments and StatefulSets whole, pages of 500, and each
sweep left CPython's and glibc's allocators holding tens of MiB at 1,000 tenants. Only a
change of ``readiness`` (the wanted replicas, or whether they are all ready and updated)
queues the tenant: the status writes of a rolling update that change neither (a condition's
heartbeat, a surge pod's count, a new ReplicaSet's name) cost no reconcile.
"""

from __future__ import annotations

import threading
from typing import Any

from saasodoo.core.spec import COMPONENT_LABEL, TENANT_LABEL, namespace_for
from saasodoo.core.status import Workload, add_workloads

#: The label selector of the tenants' Deployments and StatefulSets (the odoo-tenant chart's
#: labels; ``Kube.list_workloads`` selects the same).
TENANT_WORKLOADS = TENANT_LABEL

#: The status fields that make a Deployment's readiness (kstatus reads the same).
_STATUS = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
           "availableReplicas", "unavailableReplicas")  # fmt: skip


def slim(obj: dict[str, Any]) -> dict[str, Any]:
    """A Deployment or StatefulSet reduced to its identity, its tenant label, its
    generation, its wanted replicas and the status fields of ``_STATUS`` (the informer's
    cache holds only this; ``add_workloads`` reads no more)."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "resourceVersion": meta.get("resourceVersion"),
            "generation": meta.get("generation"),
            "labels": {
                k: v
                for k, v in (meta.get("labels") or {}).items()
                if k in (TENANT_LABEL, COMPONENT_LABEL)
            },
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas")},
        "status": {k: status[k] for k in _STATUS if k in status},
    }


def readiness(obj: dict[str, Any]) -> tuple[int, bool]:
    """What of a (slimmed) Deployment or StatefulSet its tenant's status is judged on: the
    wanted replicas and whether they are ready and of the current generation
    (``core.status.Workload.is_ready``, from ``add_workloads``). The intermediate counts of
    a rolling update (a surge pod ready, the old ReplicaSet scaled down, the observed
    generation catching up) change neither, so they queue no reconcile: on a fleet upgrade
    they queued three more turns per tenant after its helm upgrade (12 API requests each),
    all finding nothing to do. A tenant not Ready is looked at every ``POLL_SECONDS``
    anyway; this queue is for the moment it becomes Ready, or stops being."""
    (workload,) = add_workloads({}, "workload", [obj]).popitem()[1]
    return workload.desired, workload.is_ready


class WorkloadWatch:
    """Which tenant a workload event queues (``observe``); thread-safe (the informers'
    threads call it, a new leadership term may ``forget`` everything).

    A tenant being reconciled (``begin`` to ``end``) is not queued by its events: its
    rolling update's readiness changes arrive while the turn that ran helm waits for it,
    and queued it for a second turn (six requests on a fleet upgrade) that found nothing to
    do. ``end`` says whether one arrived; the worker then queues the tenant only when the
    status its turn wrote disagrees with the workloads as cached now (``ready_in``)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        self._turning: set[str] = set()
        self._touched: set[str] = set()
        self._lock = threading.Lock()

    def begin(self, tenant: str) -> None:
        """A worker starts a turn of ``tenant``."""
        with self._lock:
            self._turning.add(tenant)

    def end(self, tenant: str) -> bool:
        """The turn of ``tenant`` is over: whether an event that would have queued it
        arrived meanwhile."""
        with self._lock:
            self._turning.discard(tenant)
            touched = tenant in self._touched
            self._touched.discard(tenant)
        return touched

    def observe(
        self,
        kind: str,
        obj: dict[str, Any],
        *,
        first_list: bool = False,
        workload: str = "Deployment",
    ) -> str | None:
        """The tenant to queue for the event ``kind`` (``ADDED``, ``MODIFIED``, ``DELETED``,
        ``RESYNC``) on ``obj``, a ``workload`` (Deployment or StatefulSet), or None. A
        deletion always queues (the reconcile puts the workload back); a change of
        ``readiness`` or a new workload queues; a resync, a change of nothing ``readiness``
        reads, or the informer's ``first_list`` (a new leadership term queues every tenant
        itself) does not; nor does a readiness change while the tenant's turn runs (``end``
        tells; a deletion queues it still: the turn may have listed the workload before)."""
        meta = obj.get("metadata") or {}
        tenant = (meta.get("labels") or {}).get(TENANT_LABEL)
        if not tenant:
            return None
        key = (workload, str(meta.get("namespace")), str(meta.get("name")))
        with self._lock:
            if kind == "DELETED":
                self._seen.pop(key, None)
                queue = True
            else:
                now = readiness(obj)
                before = self._seen.get(key)
                self._seen[key] = now
                queue = not (first_list or kind == "RESYNC" or before == now)
            if queue and kind != "DELETED" and tenant in self._turning:
                self._touched.add(str(tenant))
                return None
        return str(tenant) if queue else None


def ready_in(
    tenant: str, deployments: list[dict[str, Any]], statefulsets: list[dict[str, Any]]
) -> bool | None:
    """Whether every workload of ``tenant`` among the (slimmed) ``deployments`` and
    ``statefulsets`` is ready (``Workload.is_ready``); None when it has none."""
    namespace = namespace_for(tenant)

    def mine(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [o for o in items if (o.get("metadata") or {}).get("namespace") == namespace]

    found = workloads_of(mine(deployments), mine(statefulsets)).get(tenant)
    return all(w.is_ready for w in found) if found else None


def workloads_of(
    deployments: list[dict[str, Any]], statefulsets: list[dict[str, Any]]
) -> dict[str, list[Workload]]:
    """Every tenant's workloads from the two informers' caches (slimmed objects): what
    ``Kube.list_workloads`` answers, without a request."""
    out: dict[str, list[Workload]] = {}
    add_workloads(out, "Deployment", deployments)
    return add_workloads(out, "StatefulSet", statefulsets)
