"""Backups of tenants, driven from the control plane: the ``Backups`` facade.

The programs that do the work are the chart's ``backup.py`` and ``restore.py``; they run in
the tenant namespace as Jobs made from the tenant's backup CronJob (``saasodoo.backups.jobs``).
This module finds the CronJob, resolves the backup storage from it (an S3-compatible bucket,
or a directory where the backup PVC is reachable) to list and prune, starts backups and
verifications, and hands restores to their choreography (``saasodoo.backups.restore``). The
results are ``saasodoo.backups.results``.

The retention rule and the backup names are the chart's own ``files/retention.py``, imported
rather than copied (``saasodoo.backups.retention`` is that very file), so both sides decide
the same way.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from saasodoo.adapters.kube import Kube
from saasodoo.adapters.records import RecordStore
from saasodoo.adapters.storage import (
    BackupStore,
    DirectoryStore,
    S3Location,
    S3Store,
    StorageUnavailable,
)
from saasodoo.backups import importing
from saasodoo.backups.dumpformat import manifest_series, odoo_series
from saasodoo.backups.finals import FinalBackup, KeptFinals, refused, storage_of
from saasodoo.backups.jobs import (
    POD_JOB_LABEL,
    SERVE_PORT,
    SERVE_SECONDS,
    JobRunner,
    backup_container,
    command_args,
    fetch_policy,
    job_from_cronjob,
    job_name,
    job_timeout,
    reader_token,
    serve_policy,
)
from saasodoo.backups.restore import RestoreChoreography
from saasodoo.backups.results import (
    BackupInfo,
    BackupResult,
    JobOutcome,
    PruneResult,
    RestoreResult,
)
from saasodoo.backups.retention import (
    KINDS,
    STAMP_FORMAT,
    Policy,
    free_moment,
    parse_name,
    retention,
)
from saasodoo.core.limits import load_json
from saasodoo.core.record import spec_of
from saasodoo.core.spec import COMPONENT_LABEL, TENANT_LABEL, check_tenant_id, namespace_for
from saasodoo.errors import Conflict, InvalidInput, NotFound, SaasodooError, TransientClusterError
from saasodoo.settings import S3_KEYS, Settings

log = logging.getLogger(__name__)

StoreFactory = Callable[[str, dict[str, Any]], BackupStore]


class Backups:
    """On-demand backups, listing, restore, verification and retention of tenants."""

    def __init__(
        self,
        settings: Settings,
        *,
        kube: Kube | None = None,
        s3_endpoint: str | None = None,
        pvc_root: Path | None = None,
        store_factory: StoreFactory | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        """``s3_endpoint`` overrides the endpoint the tenant's pods use (when the control
        plane reaches the bucket by another address; default ``settings.backup_s3_endpoint``,
        empty: the pods' own); ``pvc_root`` is where the tenants' backup PVCs are reachable
        from here (``<pvc_root>/<tenant>``), if anywhere."""
        self.settings = settings
        self._kube = kube
        self.s3_endpoint = s3_endpoint or settings.backup_s3_endpoint or None
        self.pvc_root = pvc_root
        self.store_factory = store_factory
        self.poll_seconds = poll_seconds

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = Kube(self.settings)
        return self._kube

    @property
    def jobs(self) -> JobRunner:
        return JobRunner(self.kube, poll_seconds=self.poll_seconds)

    # -- the tenant's backup CronJob ---------------------------------------------------------

    def cronjob(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's backup CronJob, as a plain dict (camelCase, as the API shows it)."""
        check_tenant_id(tenant_id)
        namespace = namespace_for(tenant_id)
        if self.kube.read_namespace(namespace) is None:
            raise NotFound(f"tenant '{tenant_id}' not found")
        selector = f"{COMPONENT_LABEL}=backup,{TENANT_LABEL}={tenant_id}"
        items = self.kube.list_cronjobs(namespace, selector)
        if not items:
            raise NotFound(f"tenant '{tenant_id}' has no backup CronJob (backup.enabled=false?)")
        return items[0]

    def policy(self, tenant_id: str, cronjob: dict[str, Any] | None = None) -> Policy:
        """The tenant's retention policy, as its CronJob applies it."""
        container = backup_container(cronjob or self.cronjob(tenant_id))
        args = command_args(list(container.get("command") or []))
        default = Policy()

        def arg(name: str, fallback: int) -> int:
            value = args.get(name)
            return int(value) if value not in (None, "") else fallback

        return Policy(
            daily=arg("keep", default.daily),
            weekly=arg("keep-weekly", default.weekly),
            monthly=arg("keep-monthly", default.monthly),
            pre_update=arg("keep-pre-update", default.pre_update),
            on_demand=arg("keep-on-demand", default.on_demand),
            on_demand_days=arg("keep-on-demand-days", default.on_demand_days),
        )

    # -- storage -----------------------------------------------------------------------------

    def store(self, tenant_id: str, cronjob: dict[str, Any] | None = None) -> BackupStore:
        """The tenant's backup folder, as the CronJob's pod reaches it."""
        cronjob = cronjob or self.cronjob(tenant_id)
        if self.store_factory is not None:
            return self.store_factory(tenant_id, cronjob)
        container = backup_container(cronjob)
        args = command_args(list(container.get("command") or []))
        tenant = args.get("tenant") or tenant_id
        if "s3" in args:
            env = {e["name"]: e for e in container.get("env") or []}
            namespace = cronjob["metadata"]["namespace"]

            def value(name: str) -> str:
                entry = env.get(name) or {}
                if "value" in entry:
                    return str(entry["value"])
                ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    secret = self.kube.read_secret_value(namespace, ref["name"], ref["key"])
                    if secret is None:
                        raise NotFound(f"secret {namespace}/{ref['name']} has no key {ref['key']}")
                    return secret
                return ""

            location = S3Location(
                endpoint=self.s3_endpoint or value("S3_ENDPOINT"),
                bucket=value("S3_BUCKET"),
                prefix=value("S3_PREFIX"),
                access_key_id=value("AWS_ACCESS_KEY_ID"),
                secret_access_key=value("AWS_SECRET_ACCESS_KEY"),
                region=value("S3_REGION") or "us-east-1",
            )
            return S3Store(location, tenant)
        if self.pvc_root is not None:
            return DirectoryStore(self.pvc_root / tenant)
        raise InvalidInput(
            f"tenant '{tenant_id}' keeps its backups on its PVC, which is not reachable from "
            "here: use backup.storage=s3, or give the directory where the PVCs are mounted"
        )

    def location(self, tenant_id: str, cronjob: dict[str, Any] | None = None) -> dict[str, str]:
        """Where the tenant's backups are, without credentials, in the form of an
        OdooTenant's ``status.backupStorage``: ``{"type": "s3", "endpoint", "bucket",
        "prefix", "region"}`` (the endpoint as this process reaches it) or ``{"type":
        "pvc"}``. NotFound without a backup CronJob."""
        cronjob = cronjob or self.cronjob(tenant_id)
        container = backup_container(cronjob)
        if "s3" not in command_args(list(container.get("command") or [])):
            return {"type": "pvc"}
        env = {e["name"]: str(e.get("value", "")) for e in container.get("env") or []}
        return {
            "type": "s3",
            "endpoint": self.s3_endpoint or env.get("S3_ENDPOINT", ""),
            "bucket": env.get("S3_BUCKET", ""),
            "prefix": env.get("S3_PREFIX", ""),
            "region": env.get("S3_REGION") or "us-east-1",
        }

    def download(
        self, tenant_id: str, name: str, where: Mapping[str, str] | None = None
    ) -> tuple[int, Iterator[bytes]]:
        """The size in bytes and the content (chunks of up to 1 MiB, read as they are
        iterated) of the tenant's backup ``name``. ``where``: see ``platform_store``; None:
        the storage as ``store`` reaches it from here. NotFound (no such backup), Conflict
        (from ``platform_store``), StorageError/StorageUnavailable from S3."""
        store = self.store(tenant_id) if where is None else self.platform_store(tenant_id, where)
        return store.stream(name)

    def platform_store(self, tenant_id: str, where: Mapping[str, str]) -> BackupStore:
        """The tenant's backup folder as ``where`` describes it (an OdooTenant's
        ``status.backupStorage``, or ``core.values.backup_storage`` of its values), reached
        with the platform's S3 key pair (``Settings.backup_s3_access_key_id`` and
        ``_secret_access_key``): no tenant Secret or CronJob is read. Conflict for a backup
        volume (only a pod in the tenant's namespace reads it) or without that key pair."""
        if where.get("type") != "s3":
            raise Conflict(
                f"tenant '{tenant_id}' keeps its backups on its backup volume, which the "
                "platform's API does not mount: a download goes through the operator's reader "
                "pod (OdooTenantDownload); an import needs S3 (the platform chart's "
                "tenants.values backup.storage=s3)"
            )
        key_id, secret = self.platform_key_pair()
        location = S3Location(
            endpoint=self.s3_endpoint or where.get("endpoint", ""),
            bucket=where.get("bucket", ""),
            prefix=where.get("prefix", ""),
            access_key_id=key_id,
            secret_access_key=secret,
            region=where.get("region") or "us-east-1",
        )
        return S3Store(location, tenant_id)

    def platform_key_pair(self) -> tuple[str, str]:
        """The platform's S3 access key pair: ``Settings.backup_s3_access_key_id`` and
        ``_secret_access_key`` (the API's, set by the platform chart), else the keys of the
        Secret ``Settings.backup_s3_secret`` (the operator's: it copies that Secret into the
        tenants' namespaces, so it reads it). Conflict naming both when neither is there."""
        key_id = self.settings.backup_s3_access_key_id
        secret = self.settings.backup_s3_secret_access_key
        if key_id is not None and secret is not None:
            return key_id.get_secret_value(), secret.get_secret_value()
        source = self.settings.backup_s3_secret
        if source:
            namespace, _, name = source.partition("/")
            pair = [self.kube.read_secret_value(namespace, name, key) for key in S3_KEYS]
            if pair[0] and pair[1]:
                return pair[0], pair[1]
        raise Conflict(
            "the platform's S3 key pair is not set (SAASODOO_BACKUP_S3_ACCESS_KEY_ID and "
            "SAASODOO_BACKUP_S3_SECRET_ACCESS_KEY; the platform chart sets them from "
            "tenants.backupS3Secret), nor readable from SAASODOO_BACKUP_S3_SECRET"
        )

    def list_backups(self, tenant_id: str, *, timeout: float | None = None) -> list[BackupInfo]:
        """Complete backups of the tenant, oldest first. Read here when the storage is
        reachable from here (S3, a mounted PVC directory); else (the tenant's backup PVC) by
        a short-lived Job from the tenant's CronJob, which mounts the PVC read-only and runs
        ``restore.py --list`` (one Job, its RESULT line: a summary per backup, no manifest;
        a few seconds on a live node). SaasodooError: the Job failed or its log was not
        readable."""
        cronjob = self.cronjob(tenant_id)
        try:
            store = self.store(tenant_id, cronjob)
        except InvalidInput:
            return self.list_by_job(tenant_id, cronjob, timeout=timeout)
        return list_store(store)

    def list_by_job(
        self, tenant_id: str, cronjob: dict[str, Any], *, timeout: float | None = None
    ) -> list[BackupInfo]:
        """The tenant's backups as a Job in its namespace sees them (see ``list_backups``)."""
        body = self.jobs.restore_job(tenant_id, cronjob, None, mode="list")
        outcome = self.run_job(body, timeout=job_timeout(cronjob, timeout))
        report = outcome.result or {}
        if not outcome.succeeded or not report.get("ok"):
            why = report.get("error") or outcome.reason or "no RESULT in its log"
            raise SaasodooError(
                f"listing the backups of '{tenant_id}' failed: job {outcome.name}: {why}"
            )
        try:
            found = [BackupInfo.from_summary(b) for b in report.get("backups") or []]
        except (TypeError, ValueError) as exc:
            raise SaasodooError(f"listing the backups of '{tenant_id}': job {outcome.name} "
                                f"reported an unreadable list: {exc}") from None  # fmt: skip
        return sorted(found, key=lambda b: (b.timestamp, b.name))

    def prune(
        self, tenant_id: str, policy: Policy | None = None, *, dry_run: bool = False
    ) -> PruneResult:
        """Apply the retention policy (default: the tenant's) to its stored backups."""
        cronjob = self.cronjob(tenant_id)
        return prune_store(
            self.store(tenant_id, cronjob), policy or self.policy(tenant_id, cronjob), dry_run
        )

    # -- jobs --------------------------------------------------------------------------------

    def run_job(self, body: dict[str, Any], *, timeout: float) -> JobOutcome:
        """Create the Job and follow it until it completes or fails (or ``timeout``)."""
        return self.jobs.run(body, timeout=timeout)

    def create(
        self, tenant_id: str, *, kind: str = "on-demand", timeout: float | None = None
    ) -> BackupResult:
        """An on-demand (or pre-update, final) backup: a Job from the tenant's CronJob,
        followed until done. The backup.py in it applies the retention afterwards. The new
        backup is found in the storage when it is readable from here, else in backup.py's
        `RESULT` line (None when neither says: no container ran, or no log)."""
        if kind not in KINDS or kind == "scheduled":
            raise InvalidInput(f"backup kind must be one of on-demand, pre-update, final: {kind}")
        cronjob = self.cronjob(tenant_id)
        body = job_from_cronjob(cronjob, job_name(cronjob, "manual"), purpose="backup", kind=kind)
        outcome = self.run_job(body, timeout=job_timeout(cronjob, timeout))
        if not outcome.succeeded:
            raise SaasodooError(f"backup of '{tenant_id}' failed: job {outcome.name}: "
                                f"{outcome.reason}")  # fmt: skip
        backup = self.taken(tenant_id, cronjob, kind, outcome.started, outcome.result)
        return BackupResult(tenant_id, kind, outcome, backup)

    def taken(
        self,
        tenant_id: str,
        cronjob: dict[str, Any],
        kind: str,
        started: datetime,
        reported: dict[str, Any] | None,
    ) -> BackupInfo | None:
        """The backup of ``kind`` a Job started at ``started`` took: the newest such in the
        storage when it is readable from here, else backup.py's ``RESULT`` (``reported``:
        the storage is a PVC); None when neither says."""
        backup = None
        try:
            store = self.store(tenant_id, cronjob)
        except InvalidInput:
            store = None
        if store is not None:
            since = started - timedelta(seconds=5)
            mine = [
                b for b in list_store(store) if b.kind == kind and b.timestamp >= since
            ]  # fmt: skip
            backup = mine[-1] if mine else None
        reported = reported or {}
        if backup is None and reported.get("ok") and reported.get("name"):
            # The storage is not readable from here (a PVC): backup.py's RESULT line says.
            backup = BackupInfo.from_manifest(str(reported["name"]), reported)
        return backup

    def check(
        self,
        tenant_id: str,
        backup: str,
        *,
        cronjob: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> JobOutcome:
        """Prove ``backup`` readable where it is stored: a Job from the tenant's CronJob runs
        ``restore.py --check-only`` (fetch the zip, check every checksum against its
        manifest; no database). The outcome's ``result`` is restore.py's report (None when
        the Job's log could not be read)."""
        cronjob = cronjob or self.cronjob(tenant_id)
        body = self.jobs.restore_job(tenant_id, cronjob, backup, mode="check")
        return self.run_job(body, timeout=job_timeout(cronjob, timeout))

    def take_final(self, tenant_id: str, *, timeout: float | None = None) -> FinalBackup:
        """The final backup before ``tenant_id`` is deleted: taken (a Job from its CronJob),
        then proven readable where it is stored (``check``). FinalBackupRefused (nothing
        deleted) when backups are off, when the backup volume is an emptyDir (the zip would go
        with its pod), or when the backup or its check fails or cannot be read. With pvc
        storage the result names the volume to keep (``finals.KeptFinals``)."""
        try:
            cronjob = self.cronjob(tenant_id)
        except NotFound:
            raise refused(tenant_id, "it has no backup CronJob (backup.enabled=false), so no "
                          "final backup can be taken") from None  # fmt: skip
        storage, claim = storage_of(cronjob)
        if storage == "emptyDir":
            raise refused(tenant_id, "its backups go to an emptyDir (backup.storage=pvc with "
                          "backup.persistence.enabled=false): a final backup would be lost "
                          "with its pod")  # fmt: skip
        try:
            result = self.create(tenant_id, kind="final", timeout=timeout)
        except (SaasodooError, TransientClusterError) as exc:
            raise refused(tenant_id, f"its final backup failed ({exc.message})") from None
        if result.backup is None:
            raise refused(tenant_id, f"its final backup (job {result.job.name}) cannot be "
                          "verified: the Job's log has no RESULT line (no container ran, or the "
                          "log cannot be read)")  # fmt: skip
        name = result.backup.name
        outcome = self.check(tenant_id, name, cronjob=cronjob, timeout=timeout)
        report = outcome.result or {}
        if not outcome.succeeded or not report.get("ok"):
            why = report.get("error") or outcome.reason or "no report in the Job's log"
            raise refused(tenant_id, f"its final backup {name} could not be proven readable "
                          f"(job {outcome.name}: {why})")  # fmt: skip
        kept = KeptFinals(self.settings, self.kube, poll_seconds=self.poll_seconds)
        volume = kept.volume_of(tenant_id, claim) if claim else None
        where = str((result.job.result or {}).get("storage") or "")
        if storage == "s3" and not where:
            where = self.store(tenant_id, cronjob).describe()
        location = f"{where.rstrip('/')}/{name}" if storage == "s3" else name
        return FinalBackup(
            tenant_id, name, storage, location, sha256=report.get("sha256"),
            size=report.get("size"), volume=volume,
        )  # fmt: skip

    def import_zip(
        self,
        tenant_id: str,
        source: Path,
        *,
        drop_previous: bool = False,
        timeout: float | None = None,
        max_bytes: int = importing.MAX_IMPORT_BYTES,
        work_dir: Path | None = None,
        moved: bool = False,
    ) -> RestoreResult:
        """Bring a zip made elsewhere (Odoo's database manager, another host) into the
        tenant: ``stage_import``, then restored like one of its backups (scratch copy,
        checks, switch). The restored database gets a new ``database.uuid`` and
        ``database.secret`` (a copy), unless ``moved`` (the same database moving here:
        they are kept). When the restore does not succeed, the stored zip and its manifest
        are deleted again (``discard``): a failed import leaves no backup behind (retention
        never counts it)."""
        name = self.stage_import(
            tenant_id, source, max_bytes=max_bytes, work_dir=work_dir, moved=moved
        )
        try:
            return self.restore(tenant_id, name, drop_previous=drop_previous, timeout=timeout)
        except BaseException:
            self.discard(tenant_id, name)
            raise

    def stage_import(
        self,
        tenant_id: str,
        source: Path,
        *,
        max_bytes: int = importing.MAX_IMPORT_BYTES,
        work_dir: Path | None = None,
        moved: bool = False,
        where: tuple[Mapping[str, str], str] | None = None,
    ) -> str:
        """The first half of an import: ``source`` checked and rewritten into our format by
        the import worker, in a temporary directory under ``work_dir`` (default: the
        system's; see ``saasodoo.backups.importing``; refused with InvalidInput before
        anything is stored), then stored beside the tenant's backups. Returns the stored
        backup's name (restore it, or ``discard`` it). ``moved`` marks the database as
        moving here (a restore keeps its uuid and secret) rather than a copy. ``where``:
        the storage (see ``platform_store``) and the tenant's Odoo series, when the caller
        knows them from the OdooTenant (the platform's API, which reads no tenant object);
        None: both read from the tenant's CronJob and namespace."""
        if where is not None:
            store, version = self.platform_store(tenant_id, where[0]), where[1]
        else:
            cronjob = self.cronjob(tenant_id)
            store = self.store(tenant_id, cronjob)
            version = self.recorded_odoo_version(cronjob["metadata"]["namespace"], tenant_id)
        if work_dir is not None:
            work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="saasodoo-import-", dir=work_dir) as work:
            prepared = importing.prepare(
                source, Path(work), tenant=tenant_id, odoo_version=version,
                max_bytes=max_bytes, moved=moved,
                stamp=free_moment(store.names, "on-demand", datetime.now(UTC)).strftime(
                    STAMP_FORMAT),
            )  # fmt: skip
            # Names are the UTC second (the retention's format): another import or backup of
            # the same second would be overwritten, and a restore pending on it would then
            # restore other data. The second was free above; one stored since (by another
            # process, or the tenant's backup Job) is refused rather than overwritten.
            if {prepared.name, prepared.name + ".json"} & set(store.names()):
                raise Conflict(
                    f"a backup named {prepared.name} already exists for '{tenant_id}' (another "
                    "import or backup in the same second): try again"
                )
            try:
                store.upload(prepared.name, prepared.path)
                store.upload(prepared.name + ".json", prepared.manifest_path)
            except BaseException:
                _forget(store, tenant_id, prepared.name)
                raise
        log.info("import into %s: stored %s (from %s, identity %s)", tenant_id, prepared.name,
                 source.name, prepared.identity)  # fmt: skip
        return prepared.name

    def discard(self, tenant_id: str, name: str, where: Mapping[str, str] | None = None) -> None:
        """Delete the staged import ``name`` (zip and manifest) from the tenant's storage,
        best effort (a failure is logged): what a failed import leaves behind. ``where``:
        as ``stage_import``'s storage."""
        store = self.store(tenant_id) if where is None else self.platform_store(tenant_id, where)
        _forget(store, tenant_id, name)

    def recorded_odoo_version(self, namespace: str, tenant_id: str) -> str:
        """The tenant's Odoo series (``"18.0"``), from the spec saasodoo records for it (on
        its OdooTenant, or its namespace); NotFound without the namespace, SaasodooError for
        an unreadable spec."""
        ns = RecordStore(lambda: self.kube, self.settings.system_namespace).read(namespace)
        if ns is None:
            raise NotFound(f"tenant '{tenant_id}': no namespace {namespace}")
        return str(spec_of(ns.record, ns.labels, ns.name).odoo_version)

    def check_restore(
        self, tenant_id: str, backup: str | None = None, *, series: bool = True
    ) -> dict[str, Any]:
        """Everything a restore or a verify checks before its first write; the CLI (through
        ``restore``/``verify``) and the API (before it queues the job) call it alike.

        Returns the tenant's backup CronJob (NotFound when backups are off). Where the
        storage is readable from here (S3 when reachable; a PVC, or a bucket this process
        cannot reach, is read by restore.py in the Job itself, which checks the same),
        NotFound unless ``backup`` is a complete backup (zip and manifest) of the tenant's
        storage, or, with ``backup`` None (the newest), unless there is at least one; with
        ``series`` (a restore, not a verification), InvalidInput naming both series when
        the backup's manifest is of another Odoo series than the tenant's."""
        cronjob = self.cronjob(tenant_id)
        try:
            store = self.store(tenant_id, cronjob)
            names = set(store.names())
        except InvalidInput:
            return cronjob  # a PVC: restore.py checks the name itself
        except StorageUnavailable as exc:
            # The bucket may be reachable only from inside the cluster: the Job checks.
            log.warning("backups of %s not listed from here (%s); the Job checks", tenant_id, exc)
            return cronjob
        complete = {n for n in names if n.endswith(".zip") and n + ".json" in names}
        if backup is None and not complete:
            raise NotFound(f"tenant '{tenant_id}' has no backups yet")
        if backup is not None and backup not in complete:
            raise NotFound(f"tenant '{tenant_id}' has no complete backup {backup}")
        if series:
            self.check_series(tenant_id, cronjob, store, backup or max(complete))
        return cronjob

    def check_series(
        self, tenant_id: str, cronjob: dict[str, Any], store: BackupStore, backup: str
    ) -> None:
        """InvalidInput when ``backup`` (its stored manifest) is of another Odoo series than
        the tenant's: Odoo's data of one series does not run under another's code (only
        Odoo's upgrade scripts move it forward). A manifest unreadable from here, or naming
        no series, is left to restore.py, which checks the same."""
        try:
            manifest = load_json(store.read(backup + ".json"), backup + ".json")
        except (NotFound, ValueError):
            return
        theirs = manifest_series(manifest) if isinstance(manifest, dict) else ""
        if not theirs:
            return  # restore.py refuses a backup of no known series itself
        ours = self.recorded_odoo_version(cronjob["metadata"]["namespace"], tenant_id)
        if theirs != odoo_series(ours):
            raise InvalidInput(
                f"backup {backup} is of Odoo {theirs or 'an unknown series'}; tenant "
                f"'{tenant_id}' runs Odoo {ours}. A backup restores only into its own series: "
                f"restore a backup of Odoo {ours}, or upgrade the data with Odoo's upgrade "
                "service (or OpenUpgrade) and import it into a tenant of the new series"
            )

    def serve(
        self,
        tenant_id: str,
        backup: str,
        token_sha256: str,
        *,
        timeout: float = 120,
        from_namespace: str | None = None,
        from_job: str | None = None,
    ) -> dict[str, Any]:
        """A reader pod for ``backup`` on the tenant's backup volume (``JobRunner.serve_job``:
        restore.py ``--serve``, reachable from ``from_namespace`` only: default the
        platform's; or only from the pod of Job ``from_job`` there: a staging copy's fetch),
        started and followed until it listens:
        ``{"address": "<pod IP>:<port>", "job", "expiresAt"}`` (ISO 8601, UTC; it serves
        once, until then). Conflict when the tenant keeps its
        backups in S3 (read there); NotFound without backups, or when the reader ends at
        once (no such backup: its error); TransientClusterError when it does not listen
        within ``timeout`` seconds."""
        cronjob = self.cronjob(tenant_id)
        kept = storage_of(cronjob)[0]
        if kept != "pvc":
            where = "in S3: read them there" if kept == "s3" else "on no volume (emptyDir)"
            raise Conflict(f"tenant '{tenant_id}' keeps its backups {where}")
        body = self.jobs.serve_job(tenant_id, cronjob, backup, token_sha256)
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        uid = self.kube.create_job(body)
        peer = from_namespace or self.settings.system_namespace
        self.kube.create_network_policy(serve_policy(body, uid, peer, from_job))
        started = datetime.now(UTC)
        deadline = time.monotonic() + timeout
        while True:
            for pod in self.kube.list_pods(namespace, f"{POD_JOB_LABEL}={name}"):
                if pod.ready and pod.ip:
                    log.info("backup %s of %s served by %s", backup, tenant_id, pod.name)
                    until = started + timedelta(seconds=SERVE_SECONDS)
                    return {"address": f"{pod.ip}:{SERVE_PORT}", "job": name,
                            "expiresAt": until.strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
                if pod.finished:
                    why = (self.jobs.result(namespace, name) or {}).get("error")
                    why = why or f"its reader pod {pod.name} ended at once"
                    raise NotFound(f"backup {backup} of '{tenant_id}' cannot be served: {why}")
            if time.monotonic() > deadline:
                raise TransientClusterError(
                    f"the reader pod of job {namespace}/{name} did not listen within {timeout:.0f}s"
                )
            time.sleep(self.poll_seconds)

    def verify(
        self, tenant_id: str, backup: str | None = None, *, timeout: float | None = None
    ) -> RestoreResult:
        """Restore ``backup`` (default: the newest) into a scratch database in the cluster,
        check it against its manifest, drop it; Odoo keeps running. NotFound as
        ``check_restore``."""
        cronjob = self.check_restore(tenant_id, backup, series=False)
        body = self.jobs.restore_job(tenant_id, cronjob, backup, mode="verify")
        outcome = self.run_job(body, timeout=job_timeout(cronjob, timeout))
        return RestoreResult(tenant_id, backup, outcome, {}, verify_only=True)

    def restore(
        self,
        tenant_id: str,
        backup: str | None = None,
        *,
        drop_previous: bool = False,
        timeout: float | None = None,
        source_tenant: str | None = None,
        as_copy: bool = False,
    ) -> RestoreResult:
        """Scale Odoo to zero, restore into a fresh database and filestore, switch over only
        when the copy matches its manifest (restore.py), scale Odoo back, report (see
        ``saasodoo.backups.restore``). The data before the restore is kept (renamed) unless
        ``drop_previous``; a failed restore leaves it live. ``source_tenant``: a backup of
        that tenant, read from its S3 folder (a staging copy's refresh; restore.py checks
        it, the series included); ``as_copy``: another tenant's backup carried into this
        one's own storage, restored as a copy whatever its manifest says. NotFound as
        ``check_restore``; Conflict while another restore runs."""
        if source_tenant or as_copy:
            cronjob = self.cronjob(tenant_id)
        else:
            cronjob = self.check_restore(tenant_id, backup)
        choreography = RestoreChoreography(
            self.kube, self.jobs, self.run_job, poll_seconds=self.poll_seconds
        )
        return choreography.run(
            tenant_id, cronjob, backup, drop_previous=drop_previous, timeout=timeout,
            source_tenant=source_tenant, as_copy=as_copy,
        )  # fmt: skip

    def carry_over(
        self,
        source: str,
        tenant_id: str,
        backup: str,
        name: str,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """The transfer Job pair that brings ``backup`` of ``source``, kept on its volume,
        into ``tenant_id``'s own storage (a staging copy): a reader pod in the source's
        namespace (``serve``, admitting only the pod of ``tenant_id``'s Job ``name``) and
        that Job (restore.py ``--fetch``: checks every checksum, stores zip and manifest),
        with the token in a Secret of the same name (written first, then owned by the Job)
        and a NetworkPolicy letting its pod reach the reader and nothing more; ``labels``
        added to the Job's. Follow the Job with ``jobs.follow``. When Job ``name`` exists
        already (an earlier attempt, its reader serving it), nothing is done."""
        namespace = namespace_for(tenant_id)
        try:
            self.kube.read_job(namespace, name)
            return
        except NotFound:
            pass
        token, digest = reader_token()
        served = self.serve(source, backup, digest, from_namespace=namespace, from_job=name)
        body = self.jobs.fetch_job(tenant_id, self.cronjob(tenant_id), backup,
                                   str(served["address"]), name)  # fmt: skip
        body["metadata"]["name"] = name
        body["metadata"]["labels"].update(labels or {})
        # The token before the Job that reads it (a pod never waits for a missing Secret);
        # a later attempt writes its own token over an earlier one's.
        self.kube.put_secret(namespace, name, {"token": token}, labels={TENANT_LABEL: tenant_id})
        uid = self.kube.create_job(body)
        self.kube.own_secret(namespace, name, {"apiVersion": "batch/v1", "kind": "Job",
                                               "name": name, "uid": uid})  # fmt: skip
        self.kube.create_network_policy(
            fetch_policy(body, uid, namespace_for(source), str(served["job"]))
        )


def _forget(store: BackupStore, tenant_id: str, name: str) -> None:
    """Delete an imported zip and its manifest (the manifest first: a zip without one is
    never a complete backup); a failure to is logged, the import's own error is the one
    reported."""
    for item in (name + ".json", name):
        try:
            store.delete(item)
        except Exception:  # noqa: BLE001  (best effort; the caller re-raises its own error)
            log.warning("import into %s: could not delete %s again", tenant_id, item, exc_info=True)
    log.info("import into %s failed: %s deleted again", tenant_id, name)


def list_store(store: BackupStore) -> list[BackupInfo]:
    """Complete backups (zip + manifest) of a store, oldest first."""
    names = set(store.names())
    out = []
    for name in sorted(names):
        if not name.endswith(".zip") or name + ".json" not in names:
            continue
        try:
            manifest = load_json(store.read(name + ".json"), name + ".json")
        except (NotFound, ValueError):
            continue  # deleted meanwhile, or not ours
        out.append(BackupInfo.from_manifest(name, manifest))
    return sorted(out, key=lambda b: (b.timestamp, b.name))


def prune_store(store: BackupStore, policy: Policy, dry_run: bool = False) -> PruneResult:
    """Delete what the policy does not keep (the manifest first: the backup stops counting)."""
    names = set(store.names())
    entries = [
        e
        for e in (parse_name(n) for n in names if n.endswith(".zip"))
        if e is not None and e.name + ".json" in names
    ]
    keep = retention(entries, policy)
    doomed = sorted(e.name for e in entries if e.name not in keep)
    if not dry_run:
        for name in doomed:
            store.delete(name + ".json")
            store.delete(name)
    return PruneResult(keep, doomed, dry_run)
