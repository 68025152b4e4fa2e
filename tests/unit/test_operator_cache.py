"""What the operator's informers cache of OdooTenants and backup CronJobs: enough for every
handler and sweep that reads the cache, and nothing of the lists a reconcile reads fresh."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from saasodoo.adapters.metrics import OperatorMetrics
from saasodoo.core.conditions import ready_for, scheduled_backup
from saasodoo.core.spec import TENANT_LABEL
from saasodoo.operator.backups import slim_cronjob
from saasodoo.operator.run import CACHED_STATUS, LAST_APPLIED, cached, trigger
from saasodoo.operator.sweep import requested

pytestmark = pytest.mark.unit


def tenant(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "saasodoo.dev/v1alpha1",
        "kind": "OdooTenant",
        "metadata": {
            "name": "acme", "namespace": "saasodoo-system", "generation": 3,
            "resourceVersion": "812", "finalizers": ["saasodoo.dev/finalizer"],
            "annotations": {LAST_APPLIED: '{"spec": "the whole object"}',
                            "saasodoo.dev/reconcile-requested-at": "t1"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"plan": "starter", "odooVersion": "18.0"},
        "status": {
            "observedGeneration": 3, "revision": 7, "inventory": ["Deployment/acme-odoo"],
            "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 3}],
            "lastHandledReconcileAt": "t0",
            "lastBackup": {"name": "b", "outcome": "succeeded", "time": "2026-12-01T03:00:00Z"},
            "backups": [{"name": f"b{i}"} for i in range(30)],
            "releases": [{"revision": r} for r in range(20)],
            "history": [{"operation": "upgrade"}] * 10,
            "domains": [{"host": "erp.acme.test"}],
            "record": {"spec": '{"id": "acme"}', "applied": {"digest": "d", "revision": 7}},
            **status,
        },
    }  # fmt: skip


def test_a_cached_odootenant_keeps_what_the_handlers_read_and_drops_the_lists() -> None:
    full = tenant()
    small = cached(full)
    meta = small["metadata"]
    assert "managedFields" not in meta and LAST_APPLIED not in meta["annotations"]
    assert meta["annotations"]["saasodoo.dev/reconcile-requested-at"] == "t1"
    assert set(small["status"]) == set(CACHED_STATUS) - {"lastHandledForceAt",
                                                         "lastSuccessfulBackup"}  # fmt: skip
    assert small["spec"] == full["spec"] and small["kind"] == "OdooTenant"
    # What reads the cache decides the same on both.
    assert ready_for(small) and requested(small) == requested(full) is True
    assert not trigger(cached(tenant()), small)
    edited = tenant()
    edited["metadata"]["generation"] = 4
    assert trigger(small, cached(edited))
    metrics = OperatorMetrics()
    metrics.observe_tenants([small])
    assert metrics.tenants  # the gauges' series, as from the full object
    assert "managedFields" in full["metadata"]  # the informer's input is left alone


def test_a_cached_odootenant_without_a_status_has_an_empty_one() -> None:
    obj = {"metadata": {"name": "new", "generation": 1}, "spec": {}}
    assert cached(obj) == {"metadata": {"name": "new", "generation": 1}, "spec": {},
                           "status": {}}  # fmt: skip


def test_a_slim_backup_cronjob_gives_the_same_scheduled_backup() -> None:
    cronjob = {
        "metadata": {"name": "acme-backup", "namespace": "tenant-acme", "resourceVersion": "9",
                     "labels": {TENANT_LABEL: "acme", "app.kubernetes.io/name": "odoo-tenant"},
                     "managedFields": [{"manager": "helm"}]},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {}}}},
        "status": {"lastScheduleTime": "2026-12-05T03:00:00Z",
                   "lastSuccessfulTime": "2026-12-05T03:02:10Z"},
    }  # fmt: skip
    slim = slim_cronjob(cronjob)
    assert slim == {
        "metadata": {"name": "acme-backup", "namespace": "tenant-acme", "resourceVersion": "9",
                     "labels": {TENANT_LABEL: "acme"}},
        "status": {"lastScheduleTime": "2026-12-05T03:00:00Z",
                   "lastSuccessfulTime": "2026-12-05T03:02:10Z"},
    }  # fmt: skip
    report = scheduled_backup(slim)
    assert report == scheduled_backup(cronjob)
    assert report is not None and report.time == datetime(2026, 12, 5, 3, 2, 10, tzinfo=UTC)
