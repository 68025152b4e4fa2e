"""Prometheus metrics of the operator and the API (the official ``prometheus_client``), served in
the Prometheus text format on a port of their own (``serve``), never through the API's public
Ingress. The alert rules that read them: ``charts/saasodoo/files/prometheus-rules.yaml``
(checked and unit-tested with ``promtool``).

Names follow Prometheus' conventions (``saasodoo_`` prefix, base units, ``_total`` counters,
``_seconds`` durations, ``_timestamp_seconds`` times). Labels are bounded: results, helm
actions, condition types and routes are small fixed sets; ``tenant`` is one series per tenant
(a fleet of 2,000 tenants is 2,000 series per per-tenant metric).

The operator:

- ``saasodoo_reconciles_total{result}``: reconciles ended, by ``result`` (``success``,
  ``failure``, ``cancelled``, ``error``: an exception);
- ``saasodoo_reconcile_duration_seconds``: their durations (histogram);
- ``saasodoo_workqueue_depth``: keys waiting in the work queue;
- ``saasodoo_helm_call_duration_seconds{action}``: helm processes by action (``install``,
  ``upgrade``, ``rollback``, ``uninstall``, ``history``, ``test``, ...), histogram;
- ``saasodoo_leader``: 1 while this replica holds the Lease, else 0;
- ``saasodoo_tenants{condition,status}``: OdooTenants by condition type and status, from the
  informer's cache (the per-tenant gauges too: only the leading replica exports them, so a
  tenant has one series);
- ``saasodoo_tenant_ready{tenant}``: 1 when the tenant's ``Ready`` is True for its current
  generation, else 0;
- ``saasodoo_tenant_last_backup_success_timestamp_seconds{tenant}``: when the tenant's last
  successful backup ended (its status' ``lastSuccessfulBackup``, kept when a later backup
  fails), absent before the first one;
- ``saasodoo_tenant_last_backup_succeeded{tenant}``: 1 when the tenant's last backup
  (scheduled, on-demand or final: ``lastBackup``) succeeded, 0 when it failed.

The API:

- ``saasodoo_api_requests_total{method,route,status}`` and
  ``saasodoo_api_request_duration_seconds{method,route}`` (histogram); ``route`` is the URL
  rule (``/api/tenants/<tenant_id>``), never the path, so ids do not make series.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from saasodoo.core.conditions import ready_for

#: Buckets of reconciles and helm calls (seconds): a no-op reconcile is milliseconds, an
#: install of a new tenant minutes.
SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
#: Buckets of API requests (seconds).
API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

RESULTS = ("success", "failure", "cancelled", "error")
#: The HTTP methods the API's request metrics name; any other is ``other``.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def unix_seconds(stamp: str) -> float | None:
    """An RFC 3339 time (``metav1.Time``: ``2026-12-06T07:00:00Z``) as Unix seconds; None
    when it is not one."""
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


class OperatorMetrics:
    """The operator's metrics in a registry of their own (one per process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconciles = Counter(
            "saasodoo_reconciles", "Reconciles ended, by result.", ["result"], registry=r
        )
        for result in RESULTS:  # present at 0 from the start: rate() needs a first sample
            self.reconciles.labels(result)
        self.reconcile_seconds = Histogram(
            "saasodoo_reconcile_duration_seconds", "Duration of reconciles.",
            buckets=SLOW_BUCKETS, registry=r,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "saasodoo_workqueue_depth", "Keys waiting in the work queue.", registry=r
        )
        self.helm_seconds = Histogram(
            "saasodoo_helm_call_duration_seconds", "Duration of helm processes, by action.",
            ["action"], buckets=SLOW_BUCKETS, registry=r,
        )  # fmt: skip
        self.leader = Gauge(
            "saasodoo_leader", "1 while this replica holds the operator's Lease.", registry=r
        )
        self.tenants = Gauge(
            "saasodoo_tenants", "OdooTenants by condition type and status.",
            ["condition", "status"], registry=r,
        )  # fmt: skip
        self.tenant_ready = Gauge(
            "saasodoo_tenant_ready", "1 when the tenant is Ready for its current generation.",
            ["tenant"], registry=r,
        )  # fmt: skip
        self.last_backup = Gauge(
            "saasodoo_tenant_last_backup_success_timestamp_seconds",
            "When the tenant's last successful backup ended (Unix time).",
            ["tenant"], registry=r,
        )  # fmt: skip
        self.last_backup_ok = Gauge(
            "saasodoo_tenant_last_backup_succeeded",
            "1 when the tenant's last backup (scheduled or not) succeeded, 0 when it failed.",
            ["tenant"], registry=r,
        )  # fmt: skip
        self._lock = threading.Lock()

    def reconciled(self, result: str, seconds: float) -> None:
        """One reconcile ended with ``result`` (one of ``RESULTS``) after ``seconds``."""
        self.reconciles.labels(result).inc()
        self.reconcile_seconds.observe(seconds)

    def helm_seconds_observe(self, action: str, seconds: float) -> None:
        """One helm process ran ``action`` for ``seconds`` (``CountingCommand.observer``)."""
        self.helm_seconds.labels(action).observe(seconds)

    def observe_tenants(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """Set the per-condition and per-tenant gauges from OdooTenant objects (the informer's
        cache); tenants no longer there lose their series."""
        counts: dict[tuple[str, str], int] = {}
        ready: dict[str, float] = {}
        backups: dict[str, float] = {}
        outcomes: dict[str, float] = {}
        for obj in objects:
            name = str(obj["metadata"]["name"])
            status = obj.get("status") or {}
            for condition in status.get("conditions") or []:
                key = (str(condition.get("type")), str(condition.get("status")))
                counts[key] = counts.get(key, 0) + 1
            ready[name] = 1.0 if ready_for(obj) else 0.0
            last = status.get("lastBackup") or {}
            if last.get("outcome") in ("succeeded", "failed"):
                outcomes[name] = 1.0 if last["outcome"] == "succeeded" else 0.0
            good = status.get("lastSuccessfulBackup") or (
                last if last.get("outcome") == "succeeded" else {}
            )
            seconds = unix_seconds(str(good["time"])) if good.get("time") else None
            if seconds is not None:
                backups[name] = seconds
        with self._lock:
            self.tenants.clear()
            for (condition, state), n in counts.items():
                self.tenants.labels(condition, state).set(n)
            self.tenant_ready.clear()
            for name, value in ready.items():
                self.tenant_ready.labels(name).set(value)
            self.last_backup.clear()
            for name, seconds in backups.items():
                self.last_backup.labels(name).set(seconds)
            self.last_backup_ok.clear()
            for name, value in outcomes.items():
                self.last_backup_ok.labels(name).set(value)


class ApiMetrics:
    """The API's metrics in a registry of their own (one per process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "saasodoo_api_requests", "API requests answered, by route and status.",
            ["method", "route", "status"], registry=self.registry,
        )  # fmt: skip
        self.seconds = Histogram(
            "saasodoo_api_request_duration_seconds", "Duration of API requests, by route.",
            ["method", "route"], buckets=API_BUCKETS, registry=self.registry,
        )  # fmt: skip

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request answered; a method outside HTTP's standard ones counts as ``other``
        (anyone may send any method through the Ingress: labels stay a bounded set)."""
        method = method if method in HTTP_METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.seconds.labels(method, route).observe(seconds)


def serve(registry: CollectorRegistry, port: int, address: str = "0.0.0.0") -> None:
    """Serve ``registry`` at ``http://<address>:<port>/metrics`` (and ``/``) from a daemon
    thread (``prometheus_client.start_http_server``). ``OSError`` when the port is taken."""
    start_http_server(port, addr=address, registry=registry)
