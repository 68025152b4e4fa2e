"""Each tenant's scheduled backups on its OdooTenant: ``lastBackup``, ``lastSuccessfulBackup``
and the ``BackupSucceeded`` condition follow the nightly CronJob, not only the backups the
operator runs itself (``OdooTenantBackup`` requests, final backups).

The operator's informer on the tenants' backup CronJobs (``BACKUP_CRONJOBS``, every namespace:
one list and one watch, whatever the number of tenants) calls ``ScheduledBackups.observe`` on
every change; the CronJob controller updates a CronJob's status when it starts a Job and when
one completes, so a night costs one or two events per tenant. ``observe`` reads the outcome
of the last scheduled Job from that status (``core.conditions.scheduled_backup``: succeeded,
failed, or still running) and, when it is news for the OdooTenant's status, keeps it and
says which tenant to queue. The status is written in the tenant's turn (``record``, called
by the worker before the tenant's reconcile), so it never races the reconcile's own status
write. A failed scheduled backup is a Warning Event on the OdooTenant too.

After each backup it runs or sees, and after a restore or an import, the operator lists the
tenant's stored backups into ``status.backups`` (``list_into_status``): the API and the web UI
show them from there, whatever the storage (a PVC is read by a short Job).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from saasodoo.adapters.resources import TenantResources
from saasodoo.backups import Backups
from saasodoo.core.conditions import (
    BackupReport,
    newer_backup,
    record_backup,
    record_inventory,
    scheduled_backup,
)
from saasodoo.core.spec import COMPONENT_LABEL, TENANT_LABEL
from saasodoo.errors import SaasodooError

log = logging.getLogger(__name__)

#: The label selector of the tenants' backup CronJobs (the odoo-tenant chart's labels).
BACKUP_CRONJOBS = f"{COMPONENT_LABEL}=backup,{TENANT_LABEL}"


def write_backup(resources: TenantResources, tenant_id: str, report: BackupReport) -> bool:
    """Set the OdooTenant's ``lastBackup`` (and ``lastSuccessfulBackup``) and its
    ``BackupSucceeded`` condition from ``report`` through the status subresource. False
    when there is no such OdooTenant."""
    obj = resources.get(tenant_id)
    if obj is None:
        return False
    previous = dict(obj.get("status") or {})
    generation = int(previous.get("observedGeneration") or obj["metadata"]["generation"])
    status = record_backup(previous, report, generation, datetime.now(UTC))
    resources.patch_status(tenant_id, status, previous)
    return True


def list_into_status(resources: TenantResources, backups: Backups, tenant_id: str) -> bool:
    """List the tenant's stored backups (``Backups.list_backups``: S3 read from here, a
    backup PVC through a short Job) into its OdooTenant's ``status.backups``, which the API
    and the web UI read (their account may read no tenant storage), with where they are
    (``status.backupStorage``, no credentials: the API downloads from S3 with the platform's
    key pair). Best effort: a failed
    listing is logged and keeps the previous list; False then, or when there is no such
    OdooTenant."""
    try:
        found = backups.list_backups(tenant_id)
        where = backups.location(tenant_id)
    except SaasodooError as exc:
        log.warning("tenant %s: backups not listed: %s", tenant_id, exc.message)
        return False
    obj = resources.get(tenant_id)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return False
    previous = dict(obj.get("status") or {})
    status = record_inventory(previous, [b.to_status() for b in found], datetime.now(UTC))
    status["backupStorage"] = where
    resources.patch_status(tenant_id, status, previous)
    return True


#: What of a backup CronJob's status ``scheduled_backup`` reads.
_CRONJOB_STATUS = ("lastScheduleTime", "lastSuccessfulTime", "active")


def slim_cronjob(obj: dict[str, Any]) -> dict[str, Any]:
    """A backup CronJob reduced to what ``ScheduledBackups.observe`` reads (its identity, its
    tenant label and ``_CRONJOB_STATUS``): the informer's cache holds only this, not the
    Job template with its scripts (several KiB per tenant)."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    labels = meta.get("labels") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "resourceVersion": meta.get("resourceVersion"),
            "labels": {k: v for k, v in labels.items() if k == TENANT_LABEL},
        },
        "status": {k: status[k] for k in _CRONJOB_STATUS if k in status},
    }


class ScheduledBackups:
    """The scheduled backups' outcomes waiting to be written (see the module docstring).
    Thread-safe: ``observe`` runs on the informer's thread, ``record`` on the workers'."""

    def __init__(self, resources: TenantResources, backups: Backups) -> None:
        self.resources = resources
        self.backups = backups
        self._news: dict[str, BackupReport] = {}
        self._lock = threading.Lock()

    def observe(self, cronjob: dict[str, Any], tenant: dict[str, Any] | None) -> str | None:
        """A backup CronJob as the API server has it now, and its OdooTenant as the
        operator's cache has it (None if none there yet). Returns the tenant id to queue
        when its last scheduled backup is news for that OdooTenant, else None."""
        tenant_id = ((cronjob.get("metadata") or {}).get("labels") or {}).get(TENANT_LABEL)
        report = scheduled_backup(cronjob)
        if not tenant_id or report is None:
            return None
        if tenant is not None and not newer_backup(tenant.get("status"), report):
            return None
        with self._lock:
            self._news[tenant_id] = report
        return str(tenant_id)

    def pending(self) -> list[str]:
        """Tenants with an outcome waiting to be written (sorted)."""
        with self._lock:
            return sorted(self._news)

    def record(self, tenant_id: str) -> BackupReport | None:
        """In the tenant's turn: write its waiting outcome when it is still news for the
        OdooTenant as the API server has it now; returns what was written."""
        with self._lock:
            report = self._news.pop(tenant_id, None)
        if report is None:
            return None
        try:
            obj = self.resources.get(tenant_id)
            if obj is None or obj["metadata"].get("deletionTimestamp"):
                return None
            if not newer_backup(obj.get("status"), report):
                return None
            write_backup(self.resources, tenant_id, report)
        except Exception:
            with self._lock:  # kept for the tenant's next turn (the worker retries it)
                self._news.setdefault(tenant_id, report)
            raise
        if not report.succeeded:
            self.resources.event(obj, "Warning", "BackupFailed", report.message, "Backup")
        log.info("tenant %s: %s", tenant_id, report.message)
        # The nightly Job also applied the retention: the list changed either way.
        list_into_status(self.resources, self.backups, tenant_id)
        return report
