"""What the backups report: a backup in storage, a Job followed to its end, and the results
of a backup, a restore (or verification) and a prune, each with ``to_dict`` for the CLI's JSON
and the API. Pure data, no I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from saasodoo.backups.retention import parse_name


@dataclass(frozen=True)
class BackupInfo:
    """A complete backup in storage, from its manifest (``from_manifest``) or from the
    summary restore.py's ``--list`` prints (``from_summary``, the ``to_dict`` shape)."""

    name: str
    tenant: str
    kind: str
    timestamp: datetime
    odoo_version: str
    db_name: str
    sizes: dict[str, int]
    dump_sha256: str | None = None
    #: Modules and tables the manifest records (counted).
    modules: int = 0
    tables: int = 0
    imported_from: str | None = None
    #: The whole manifest when it was read here (empty from a summary).
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_manifest(cls, name: str, manifest: dict[str, Any]) -> BackupInfo:
        entry = parse_name(name)
        stamp = entry.timestamp if entry else datetime.fromtimestamp(0, UTC)
        return cls(
            name=name,
            tenant=str(manifest.get("tenant", "")),
            kind=str(manifest.get("kind", entry.kind if entry else "")),
            timestamp=stamp,
            odoo_version=str(manifest.get("odoo_version", manifest.get("version", ""))),
            db_name=str(manifest.get("db_name", "")),
            sizes={k: int(v) for k, v in (manifest.get("sizes") or {}).items()},
            dump_sha256=(manifest.get("checksums") or {}).get("dump.sql"),
            modules=len(manifest.get("modules") or {}),
            tables=len(manifest.get("tables") or {}),
            imported_from=manifest.get("imported_from"),
            manifest=manifest,
        )

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> BackupInfo:
        """From one entry of restore.py's ``--list`` report (the ``to_dict`` shape); the
        timestamp is the name's, as for ``from_manifest``. ValueError: no name."""
        name = str(summary.get("name") or "")
        if not name:
            raise ValueError("a listed backup without a name")
        entry = parse_name(name)
        return cls(
            name=name,
            tenant=str(summary.get("tenant", "")),
            kind=str(summary.get("kind") or (entry.kind if entry else "")),
            timestamp=entry.timestamp if entry else datetime.fromtimestamp(0, UTC),
            odoo_version=str(summary.get("odoo_version", "")),
            db_name=str(summary.get("db_name", "")),
            sizes={k: int(v) for k, v in (summary.get("sizes") or {}).items()},
            dump_sha256=summary.get("dump_sha256"),
            modules=int(summary.get("modules") or 0),
            tables=int(summary.get("tables") or 0),
            imported_from=summary.get("imported_from"),
        )

    def to_status(self) -> dict[str, Any]:
        """As the OdooTenant's ``status.backups`` lists it (``core.crd.StoredBackup``)."""
        entry: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "time": self.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "odooVersion": self.odoo_version,
            "dbName": self.db_name,
            "sizes": dict(self.sizes),
            "modules": self.modules,
            "tables": self.tables,
        }
        if self.dump_sha256:
            entry["dumpSha256"] = self.dump_sha256
        if self.imported_from:
            entry["importedFrom"] = self.imported_from
        return entry

    @classmethod
    def from_status(cls, tenant: str, entry: dict[str, Any]) -> BackupInfo:
        """From one entry of an OdooTenant's ``status.backups`` (``to_status``)."""
        return cls.from_summary({
            "name": entry.get("name"), "tenant": tenant, "kind": entry.get("kind"),
            "odoo_version": entry.get("odooVersion", ""), "db_name": entry.get("dbName", ""),
            "sizes": entry.get("sizes") or {}, "dump_sha256": entry.get("dumpSha256"),
            "modules": entry.get("modules"), "tables": entry.get("tables"),
            "imported_from": entry.get("importedFrom"),
        })  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tenant": self.tenant,
            "kind": self.kind,
            "timestamp": self.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "odoo_version": self.odoo_version,
            "db_name": self.db_name,
            "sizes": dict(self.sizes),
            "dump_sha256": self.dump_sha256,
            "modules": self.modules,
            "tables": self.tables,
            "imported_from": self.imported_from,
        }


@dataclass(frozen=True)
class JobOutcome:
    """A Job saasodoo ran, followed to its end."""

    name: str
    succeeded: bool
    reason: str
    started: datetime
    finished: datetime
    #: The `RESULT {...}` line of restore.py, when the pod's log could be read.
    result: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["started"] = self.started.isoformat()
        out["finished"] = self.finished.isoformat()
        out["seconds"] = round((self.finished - self.started).total_seconds(), 1)
        return out


@dataclass(frozen=True)
class BackupResult:
    tenant: str
    kind: str
    job: JobOutcome
    #: The new backup as found in storage; None when the storage is not readable from here
    #: (a PVC) or nothing was written (on a simulated cluster no container runs).
    backup: BackupInfo | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "kind": self.kind,
            "job": self.job.to_dict(),
            "backup": self.backup.to_dict() if self.backup else None,
        }


@dataclass(frozen=True)
class RestoreResult:
    tenant: str
    backup: str | None
    job: JobOutcome
    #: Replicas Odoo's Deployments were scaled back to.
    scaled_back: dict[str, int]
    verify_only: bool = False
    #: Seconds from scaling Odoo back until its Deployments were Ready (None: not waited for).
    ready_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.job.succeeded and (self.job.result is None or bool(self.job.result.get("ok")))

    @property
    def previous(self) -> dict[str, Any] | None:
        """The replaced data the restore kept (restore.py's report): ``database``,
        ``filestore``, ``bytes`` and ``kept_until`` (UTC); None when it was dropped, or the
        report could not be read."""
        previous = (self.job.result or {}).get("previous")
        return dict(previous) if isinstance(previous, dict) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "backup": self.backup,
            "mode": "verify" if self.verify_only else "restore",
            "ok": self.ok,
            "job": self.job.to_dict(),
            "scaled_back": dict(self.scaled_back),
            "previous": self.previous,
            "odoo_ready_after_seconds": self.ready_seconds,
        }


@dataclass(frozen=True)
class PruneResult:
    kept: dict[str, str]
    deleted: list[str]
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {"kept": dict(self.kept), "deleted": list(self.deleted), "dry_run": self.dry_run}


def human_size(n: int | None) -> str:
    """A byte count for people: ``512 B``, ``3.4 MiB``; ``-`` when unknown."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
