"""Backups and restores of tenants.

Rooms: ``service`` (the ``Backups`` facade: create, list, prune, verify, restore, import, the
storage of a tenant), ``jobs`` (Jobs built from the backup CronJob and followed to their end),
``restore`` (the restore choreography: stop Odoo, run, recover, give the replicas back),
``results`` (what they report), ``importing`` (zips made elsewhere, checked and rewritten by
``importcheck``, a standard-library program run as a worker process under hard bounds),
``finals`` (final backups kept after a tenant's deletion).

``retention`` and ``dumpformat`` are the chart's own ``files/retention.py`` and
``files/dumpformat.py`` (symlinks): the backup names and retention rule, and the dump's table
checksums, the member-name rule and the Odoo series of a manifest, that the pods apply,
imported rather than copied. Nothing else of the chart's
programs (the pg_dump driver, the S3 client, the CLI) is imported here.
"""

from saasodoo.backups.jobs import job_from_cronjob
from saasodoo.backups.results import (
    BackupInfo,
    BackupResult,
    JobOutcome,
    PruneResult,
    RestoreResult,
    human_size,
)
from saasodoo.backups.retention import KINDS, Entry, Policy, parse_name, retention
from saasodoo.backups.service import Backups, list_store, prune_store

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
