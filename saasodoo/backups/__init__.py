"""Backups and restores of tenants: see ``saasodoo.backups.service``.

``chart_backup`` is the chart's own ``files/backup.py`` (a symlink): the format and the
retention rule the pods apply, imported rather than copied.
"""

from saasodoo.backups.chart_backup import KINDS, Entry, Policy, parse_name, retention
from saasodoo.backups.service import (
    BackupInfo,
    BackupResult,
    Backups,
    JobOutcome,
    PruneResult,
    RestoreResult,
    human_size,
    job_from_cronjob,
    list_store,
    prune_store,
)

__all__ = [
    "KINDS",
    "BackupInfo",
    "BackupResult",
    "Backups",
    "Entry",
    "JobOutcome",
    "Policy",
    "PruneResult",
    "RestoreResult",
    "human_size",
    "job_from_cronjob",
    "list_store",
    "parse_name",
    "prune_store",
    "retention",
]
