"""CPU and memory used by tenants, from the metrics.k8s.io API (metrics-server).

One list request for the whole fleet (PodMetrics of every pod labelled as a tenant's),
summed per tenant. CPU in millicores, memory in bytes (working set), as metrics-server
reports them over its window (15 s by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from saasodoo.adapters.kube import Kube
from saasodoo.core.spec import TENANT_LABEL, check_tenant_id, namespace_for
from saasodoo.core.values import parse_quantity
from saasodoo.errors import NotFound


@dataclass(frozen=True)
class PodUsage:
    namespace: str
    pod: str
    component: str
    cpu_millicores: float
    memory_bytes: int
    window: str = ""
    timestamp: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "pod": self.pod,
            "component": self.component,
            "cpu_millicores": round(self.cpu_millicores, 3),
            "memory_bytes": self.memory_bytes,
            "window": self.window,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True)
class TenantUsage:
    tenant_id: str
    pods: tuple[PodUsage, ...]

    @property
    def cpu_millicores(self) -> float:
        return sum(p.cpu_millicores for p in self.pods)

    @property
    def memory_bytes(self) -> int:
        return sum(p.memory_bytes for p in self.pods)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.tenant_id,
            "cpu_millicores": round(self.cpu_millicores, 3),
            "memory_bytes": self.memory_bytes,
            "pods": [p.to_dict() for p in self.pods],
        }


def _pod_usage(item: dict[str, Any]) -> PodUsage:
    meta = item.get("metadata", {})
    cpu = Decimal(0)
    memory = Decimal(0)
    for container in item.get("containers") or []:
        usage = container.get("usage") or {}
        cpu += parse_quantity(usage.get("cpu", "0"))
        memory += parse_quantity(usage.get("memory", "0"))
    return PodUsage(
        namespace=str(meta.get("namespace", "")),
        pod=str(meta.get("name", "")),
        component=str((meta.get("labels") or {}).get("app.kubernetes.io/component", "")),
        cpu_millicores=float(cpu * 1000),
        memory_bytes=int(memory),
        window=str(item.get("window", "")),
        timestamp=str(item.get("timestamp", "")),
    )


def tenant_usage(kube: Kube, tenant_id: str | None = None) -> list[TenantUsage]:
    """Usage of every tenant with running pods (or of ``tenant_id``), sorted by id.

    A tenant whose namespace exists but has no pod metrics yet (just created, or
    suspended with only PostgreSQL left) is listed with what it has, possibly nothing.
    """
    namespace = None
    if tenant_id is not None:
        check_tenant_id(tenant_id)
        namespace = namespace_for(tenant_id)
        if kube.read_namespace(namespace) is None:
            raise NotFound(f"tenant '{tenant_id}' not found")
    by_tenant: dict[str, list[PodUsage]] = {}
    for item in kube.list_pod_metrics(namespace):
        labels = (item.get("metadata") or {}).get("labels") or {}
        tid = labels.get(TENANT_LABEL)
        if not tid:
            continue
        by_tenant.setdefault(str(tid), []).append(_pod_usage(item))
    if tenant_id is not None:
        by_tenant.setdefault(tenant_id, [])
    return [
        TenantUsage(tid, tuple(sorted(pods, key=lambda p: p.pod)))
        for tid, pods in sorted(by_tenant.items())
    ]
