"""The operator's watch on the tenants' Deployments (Odoo's web and cron): a tenant is queued
when one of its Deployments changes readiness or is deleted, instead of when the next poll or
resync comes round (controller-runtime's ``Owns``).

Two things get faster: a new or updated tenant is marked Ready as soon as its pods are (the
reconcile polls a tenant that is not Ready every ``controller.POLL_SECONDS``, 5 s, which a
sign-up waited for on top of Odoo's start), and a Deployment deleted by hand is put back at
once (before, at the next resync: ``Settings.operator_resync_seconds``, 300 s).

One list and one watch over every namespace (``TENANT_WORKLOADS``), whatever the number of
tenants; each object is cached slimmed to what ``readiness`` reads (``slim``), so 2,000
tenants' Deployments should cost a few MiB (an estimate, not measured), not the tens a full
cache would. Only a change of ``readiness`` queues the tenant: the status writes of a
rolling update that change nothing of it (a condition's heartbeat, a new ReplicaSet's name)
cost no reconcile.
"""

from __future__ import annotations

import threading
from typing import Any

from saasodoo.core.spec import COMPONENT_LABEL, TENANT_LABEL

#: The label selector of the tenants' Odoo Deployments (the odoo-tenant chart's labels).
TENANT_WORKLOADS = f"{COMPONENT_LABEL} in (odoo,cron),{TENANT_LABEL}"

#: The status fields that make a Deployment's readiness (kstatus reads the same).
_STATUS = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
           "availableReplicas", "unavailableReplicas")  # fmt: skip


def slim(obj: dict[str, Any]) -> dict[str, Any]:
    """A Deployment reduced to its identity, its tenant label, its generation, its wanted
    replicas and the status fields of ``_STATUS`` (the informer's cache holds only this)."""
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


def readiness(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What of a (slimmed) Deployment decides whether its tenant is Ready: its generation
    against the observed one, the wanted replicas, and the status counts."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    return (
        meta.get("generation"),
        (obj.get("spec") or {}).get("replicas"),
        *(status.get(k) for k in _STATUS),
    )


class WorkloadWatch:
    """Which tenant a Deployment event queues (``observe``); thread-safe (the informer's
    thread calls it, a new leadership term may ``forget`` everything)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._lock = threading.Lock()

    def observe(self, kind: str, obj: dict[str, Any], *, first_list: bool = False) -> str | None:
        """The tenant to queue for the event ``kind`` (``ADDED``, ``MODIFIED``, ``DELETED``,
        ``RESYNC``) on the Deployment ``obj``, or None. A deletion always queues (the
        reconcile puts the Deployment back); a change of ``readiness`` or a new Deployment
        queues; a resync, a change of nothing ``readiness`` reads, or the informer's
        ``first_list`` (a new leadership term queues every tenant itself) does not."""
        meta = obj.get("metadata") or {}
        tenant = (meta.get("labels") or {}).get(TENANT_LABEL)
        if not tenant:
            return None
        key = (str(meta.get("namespace")), str(meta.get("name")))
        with self._lock:
            if kind == "DELETED":
                self._seen.pop(key, None)
                return str(tenant)
            now = readiness(obj)
            before = self._seen.get(key)
            self._seen[key] = now
        if first_list or kind == "RESYNC" or before == now:
            return None
        return str(tenant)
