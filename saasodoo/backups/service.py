"""Backups of tenants, driven from the control plane.

The programs that do the work are the chart's ``backup.py`` and ``restore.py``; they run in
the tenant namespace as Jobs made from the tenant's backup CronJob (its pod template: image,
identity, volumes, node, NetworkPolicy), exactly as ``kubectl create job --from=cronjob/...``
makes them, with only the command or the backup kind changed. This module creates those Jobs
and follows them, scales Odoo around a restore, and reads the backup storage (an S3-compatible
bucket, or a directory where the backup PVC is reachable) to list and prune.

The format (manifest, checksums) and the retention rule are those of the chart's backup.py,
imported from it (``chart_backup`` is that very file), so both sides decide the same way.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from kubernetes import client

from saasodoo.adapters.kube import Kube, translate
from saasodoo.adapters.storage import BackupStore, DirectoryStore, S3Location, S3Store
from saasodoo.backups import chart_backup as fmt
from saasodoo.backups import importing
from saasodoo.core.limits import load_json
from saasodoo.core.record import spec_of
from saasodoo.core.spec import TENANT_LABEL, check_tenant_id, namespace_for
from saasodoo.errors import Conflict, InvalidInput, NotFound, SaasodooError, TransientClusterError
from saasodoo.settings import Settings

log = logging.getLogger(__name__)

Policy = fmt.Policy
KINDS = fmt.KINDS
COMPONENT_LABEL = "app.kubernetes.io/component"
JOB_LABEL = "saasodoo.dev/backup-job"
KIND_ANNOTATION = "saasodoo.dev/backup-kind"
#: On Odoo's Deployments while a restore has them at zero: the replicas to give back (a
#: restore after a failed one must not take zero for the tenant's size).
REPLICAS_ANNOTATION = "saasodoo.dev/replicas-before-restore"
#: How long a recovery Job may take (it renames directories and drops scratch copies).
RECOVER_SECONDS = 600
SCRIPTS = "/opt/odoo-tenant"
#: The components whose pods use the database and the filestore (stopped during a restore).
ODOO_COMPONENTS = ("odoo", "cron")


@dataclass(frozen=True)
class BackupInfo:
    """A complete backup in storage, from its manifest."""

    name: str
    tenant: str
    kind: str
    timestamp: datetime
    odoo_version: str
    db_name: str
    sizes: dict[str, int]
    manifest: dict[str, Any] = field(repr=False)

    @classmethod
    def from_manifest(cls, name: str, manifest: dict[str, Any]) -> BackupInfo:
        entry = fmt.parse_name(name)
        stamp = entry.timestamp if entry else datetime.fromtimestamp(0, UTC)
        return cls(
            name=name,
            tenant=str(manifest.get("tenant", "")),
            kind=str(manifest.get("kind", entry.kind if entry else "")),
            timestamp=stamp,
            odoo_version=str(manifest.get("odoo_version", manifest.get("version", ""))),
            db_name=str(manifest.get("db_name", "")),
            sizes={k: int(v) for k, v in (manifest.get("sizes") or {}).items()},
            manifest=manifest,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tenant": self.tenant,
            "kind": self.kind,
            "timestamp": self.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "odoo_version": self.odoo_version,
            "db_name": self.db_name,
            "sizes": dict(self.sizes),
            "dump_sha256": (self.manifest.get("checksums") or {}).get("dump.sql"),
            "modules": len(self.manifest.get("modules") or {}),
            "tables": len(self.manifest.get("tables") or {}),
            "imported_from": self.manifest.get("imported_from"),
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

    @property
    def ok(self) -> bool:
        return self.job.succeeded and (self.job.result is None or bool(self.job.result.get("ok")))

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "backup": self.backup,
            "mode": "verify" if self.verify_only else "restore",
            "ok": self.ok,
            "job": self.job.to_dict(),
            "scaled_back": dict(self.scaled_back),
        }


@dataclass(frozen=True)
class PruneResult:
    kept: dict[str, str]
    deleted: list[str]
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {"kept": dict(self.kept), "deleted": list(self.deleted), "dry_run": self.dry_run}


def _container(pod_spec: dict[str, Any], name: str = "backup") -> dict[str, Any]:
    for c in pod_spec.get("containers") or []:
        if c.get("name") == name:
            return dict(c)
    raise SaasodooError(f"the backup CronJob has no container {name!r}")


def _args(command: list[str]) -> dict[str, str]:
    """`--key=value` and `--flag` arguments of a command, as a dict."""
    out: dict[str, str] = {}
    for part in command:
        if part.startswith("--"):
            key, _, value = part[2:].partition("=")
            out[key] = value
    return out


def _set_env(container: dict[str, Any], name: str, value: dict[str, Any]) -> None:
    env = [e for e in container.get("env") or [] if e.get("name") != name]
    env.append({"name": name, **value})
    container["env"] = env


def job_from_cronjob(
    cronjob: dict[str, Any],
    name: str,
    *,
    purpose: str,
    kind: str | None = None,
    command: list[str] | None = None,
    writable_filestore: bool = False,
    drop_affinity: bool = False,
    extra_env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The Job ``kubectl create job --from=cronjob/<name>`` creates (labels and annotations of
    the job template, ``cronjob.kubernetes.io/instantiate: manual``, the CronJob as controller
    owner), changed only as asked: the backup kind, the command, the filestore writable."""
    template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    meta = template.get("metadata") or {}
    spec: dict[str, Any] = template["spec"]
    labels = {**(meta.get("labels") or {}), JOB_LABEL: purpose}
    annotations = {**(meta.get("annotations") or {}), "cronjob.kubernetes.io/instantiate": "manual"}
    if kind:
        annotations[KIND_ANNOTATION] = kind
    pod = spec["template"]["spec"]
    containers = []
    for c in pod["containers"]:
        if c.get("name") == "backup":
            c = copy.deepcopy(c)
            if kind:
                _set_env(c, "BACKUP_KIND", {"value": kind})
            if command is not None:
                c["command"] = command
            for env in extra_env or []:
                _set_env(c, env["name"], {k: v for k, v in env.items() if k != "name"})
            if writable_filestore:
                for mount in c.get("volumeMounts") or []:
                    if mount.get("name") == "filestore":
                        mount["readOnly"] = False
        containers.append(c)
    pod["containers"] = containers
    if writable_filestore:
        for volume in pod.get("volumes") or []:
            claim = volume.get("persistentVolumeClaim")
            if volume.get("name") == "filestore" and claim:
                claim["readOnly"] = False
    if drop_affinity and pod.get("affinity"):
        pod["affinity"].pop("podAffinity", None)
        if not pod["affinity"]:
            del pod["affinity"]
    spec["template"].setdefault("metadata", {}).setdefault("labels", {})[JOB_LABEL] = purpose
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": cronjob["metadata"]["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": cronjob["metadata"]["name"],
                    "uid": cronjob["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


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
        plane reaches the bucket by another address); ``pvc_root`` is where the tenants'
        backup PVCs are reachable from here (``<pvc_root>/<tenant>``), if anywhere."""
        self.settings = settings
        self._kube = kube
        self.s3_endpoint = s3_endpoint
        self.pvc_root = pvc_root
        self.store_factory = store_factory
        self.poll_seconds = poll_seconds

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = Kube(self.settings)
        return self._kube

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.kube.api)

    # -- the tenant's backup CronJob ---------------------------------------------------------

    def cronjob(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's backup CronJob, as a plain dict (camelCase, as the API shows it)."""
        check_tenant_id(tenant_id)
        namespace = namespace_for(tenant_id)
        if self.kube.read_namespace(namespace) is None:
            raise NotFound(f"tenant '{tenant_id}' not found")
        selector = f"{COMPONENT_LABEL}=backup,{TENANT_LABEL}={tenant_id}"
        with translate(f"list backup CronJobs of {namespace}"):
            items = self.batch.list_namespaced_cron_job(
                namespace, label_selector=selector, _request_timeout=self.kube.timeout
            ).items
        if not items:
            raise NotFound(f"tenant '{tenant_id}' has no backup CronJob (backup.enabled=false?)")
        doc: dict[str, Any] = self.kube.api.sanitize_for_serialization(items[0])
        return doc

    def _command(self, cronjob: dict[str, Any]) -> list[str]:
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return list(_container(pod).get("command") or [])

    def policy(self, tenant_id: str, cronjob: dict[str, Any] | None = None) -> fmt.Policy:
        """The tenant's retention policy, as its CronJob applies it."""
        args = _args(self._command(cronjob or self.cronjob(tenant_id)))
        default = fmt.Policy()
        return fmt.Policy(
            daily=int(args.get("keep") or default.daily),
            weekly=int(args.get("keep-weekly") or default.weekly),
            monthly=int(args.get("keep-monthly") or default.monthly),
            pre_update=int(args.get("keep-pre-update") or default.pre_update),
        )

    # -- storage -----------------------------------------------------------------------------

    def store(self, tenant_id: str, cronjob: dict[str, Any] | None = None) -> BackupStore:
        """The tenant's backup folder, as the CronJob's pod reaches it."""
        cronjob = cronjob or self.cronjob(tenant_id)
        if self.store_factory is not None:
            return self.store_factory(tenant_id, cronjob)
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        container = _container(pod)
        args = _args(list(container.get("command") or []))
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
                    return self._secret_value(namespace, ref["name"], ref["key"])
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

    def _secret_value(self, namespace: str, name: str, key: str) -> str:
        with translate(f"read secret {namespace}/{name}"):
            secret = self.kube.core.read_namespaced_secret(
                name, namespace, _request_timeout=self.kube.timeout
            )
        raw = (secret.data or {}).get(key)
        if raw is None:
            raise NotFound(f"secret {namespace}/{name} has no key {key}")
        return base64.b64decode(raw).decode()

    def list_backups(self, tenant_id: str) -> list[BackupInfo]:
        """Complete backups of the tenant, oldest first, with their manifest data."""
        store = self.store(tenant_id)
        return list_store(store)

    def prune(
        self, tenant_id: str, policy: fmt.Policy | None = None, *, dry_run: bool = False
    ) -> PruneResult:
        """Apply the retention policy (default: the tenant's) to its stored backups."""
        cronjob = self.cronjob(tenant_id)
        return prune_store(
            self.store(tenant_id, cronjob), policy or self.policy(tenant_id, cronjob), dry_run
        )

    # -- jobs --------------------------------------------------------------------------------

    def _job_name(self, cronjob: dict[str, Any], tag: str) -> str:
        base = str(cronjob["metadata"]["name"])[:40].rstrip("-")
        return f"{base}-{tag}-{int(time.time() * 1000) % 10**10}"

    def run_job(self, body: dict[str, Any], *, timeout: float) -> JobOutcome:
        """Create the Job and follow it until it completes or fails (or ``timeout``)."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        started = datetime.now(UTC)
        with translate(f"create job {namespace}/{name}"):
            self.batch.create_namespaced_job(namespace, body, _request_timeout=self.kube.timeout)
        log.info("job %s/%s created", namespace, name)
        deadline = time.monotonic() + timeout
        while True:
            with translate(f"read job {namespace}/{name}"):
                job = self.batch.read_namespaced_job_status(
                    name, namespace, _request_timeout=self.kube.timeout
                )
            for cond in job.status.conditions or []:
                if cond.status != "True":
                    continue
                if cond.type in ("Complete", "SuccessCriteriaMet"):
                    return JobOutcome(
                        name, True, cond.reason or "Complete", started, datetime.now(UTC),
                        self._result(namespace, name),
                    )  # fmt: skip
                if cond.type in ("Failed", "FailureTarget"):
                    reason = f"{cond.reason or 'Failed'}: {cond.message or ''}".strip(": ")
                    return JobOutcome(
                        name, False, reason, started, datetime.now(UTC),
                        self._result(namespace, name),
                    )  # fmt: skip
            if time.monotonic() > deadline:
                raise TransientClusterError(
                    f"job {namespace}/{name} not finished after {timeout:.0f}s; still running"
                )
            time.sleep(self.poll_seconds)

    def _result(self, namespace: str, job: str) -> dict[str, Any] | None:
        """The `RESULT {...}` line of the Job's pod log, if the log can be read."""
        try:
            pods = self.kube.core.list_namespaced_pod(
                namespace, label_selector=f"job-name={job}", _request_timeout=self.kube.timeout
            ).items
            for pod in pods:
                text = self.kube.core.read_namespaced_pod_log(
                    pod.metadata.name, namespace, container="backup",
                    _request_timeout=self.kube.timeout,
                )  # fmt: skip
                for line in reversed(str(text).splitlines()):
                    if line.startswith("RESULT "):
                        result: dict[str, Any] = load_json(line.removeprefix("RESULT "), "RESULT")
                        return result
        except Exception:  # noqa: BLE001 - logs are a bonus (none on a simulated cluster)
            log.debug("no log for job %s/%s", namespace, job, exc_info=True)
        return None

    def _timeout(self, cronjob: dict[str, Any], timeout: float | None) -> float:
        if timeout is not None:
            return timeout
        deadline = cronjob["spec"]["jobTemplate"]["spec"].get("activeDeadlineSeconds") or 3600
        return float(deadline) + 60

    def create(
        self, tenant_id: str, *, kind: str = "on-demand", timeout: float | None = None
    ) -> BackupResult:
        """An on-demand (or pre-update, final) backup: a Job from the tenant's CronJob,
        followed until done. The backup.py in it applies the retention afterwards."""
        if kind not in fmt.KINDS or kind == "scheduled":
            raise InvalidInput(f"backup kind must be one of on-demand, pre-update, final: {kind}")
        cronjob = self.cronjob(tenant_id)
        body = job_from_cronjob(
            cronjob, self._job_name(cronjob, "manual"), purpose="backup", kind=kind
        )
        outcome = self.run_job(body, timeout=self._timeout(cronjob, timeout))
        if not outcome.succeeded:
            raise SaasodooError(f"backup of '{tenant_id}' failed: job {outcome.name}: "
                                f"{outcome.reason}")  # fmt: skip
        backup = None
        try:
            store = self.store(tenant_id, cronjob)
        except InvalidInput:
            store = None
        if store is not None:
            since = outcome.started - timedelta(seconds=5)
            mine = [
                b for b in list_store(store) if b.kind == kind and b.timestamp >= since
            ]  # fmt: skip
            backup = mine[-1] if mine else None
        return BackupResult(tenant_id, kind, outcome, backup)

    def _restore_job(
        self,
        tenant_id: str,
        cronjob: dict[str, Any],
        backup: str | None,
        *,
        mode: Literal["restore", "verify", "recover"],
        drop_previous: bool = False,
    ) -> dict[str, Any]:
        """A Job running restore.py in ``mode``: ``restore`` (Odoo stopped), ``verify`` (into
        a scratch database beside the running Odoo) or ``recover`` (finish or undo a restore
        that was killed, see restore.py)."""
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        container = _container(pod)
        args = _args(list(container.get("command") or []))
        command = ["python3", f"{SCRIPTS}/restore.py"]
        command += ["--s3"] if "s3" in args else [f"--dest={args.get('dest') or '/backups'}"]
        command += [f"--tenant={args.get('tenant') or tenant_id}", "--work=/backups"]
        if "filestore" in args:
            command.append(f"--filestore={args['filestore']}")
        if backup:
            command.append(f"--backup={backup}")
        if mode == "verify":
            command.append("--verify-only")
        elif mode == "recover":
            command.append("--recover")
        if drop_previous:
            command.append("--drop-previous")
        extra = self._admin_env(cronjob["metadata"]["namespace"], container)
        job = job_from_cronjob(
            cronjob,
            self._job_name(cronjob, mode),
            purpose=mode,
            command=command,
            writable_filestore=mode != "verify",
            # Odoo is scaled to zero for a restore: no pod to be next to; the volume's own
            # node affinity still puts the Job where the RWO filestore is.
            drop_affinity=mode != "verify",
            extra_env=extra,
        )
        job["spec"]["backoffLimit"] = 0
        return job

    def _admin_env(self, namespace: str, container: dict[str, Any]) -> list[dict[str, Any]]:
        """PGADMINUSER/PGADMINPASSWORD: the chart PostgreSQL's superuser, whose password is in
        the same Secret as the tenant role's; an external database's role needs CREATEDB."""
        env = {e["name"]: e for e in container.get("env") or []}
        ref = ((env.get("PGPASSWORD") or {}).get("valueFrom") or {}).get("secretKeyRef")
        if not ref:
            return []
        with translate(f"read secret {namespace}/{ref['name']}"):
            secret = self.kube.core.read_namespaced_secret(
                ref["name"], namespace, _request_timeout=self.kube.timeout
            )
        if "postgres-password" not in (secret.data or {}):
            return []
        return [
            {"name": "PGADMINUSER", "value": "postgres"},
            {
                "name": "PGADMINPASSWORD",
                "valueFrom": {"secretKeyRef": {"name": ref["name"], "key": "postgres-password"}},
            },
        ]

    def import_zip(
        self,
        tenant_id: str,
        source: Path,
        *,
        drop_previous: bool = False,
        timeout: float | None = None,
        max_bytes: int = importing.MAX_IMPORT_BYTES,
    ) -> RestoreResult:
        """Bring a zip made elsewhere (Odoo's database manager, another host) into the
        tenant: checked and rewritten into our format (see ``saasodoo.backups.importing``;
        refused with InvalidInput before anything is stored), stored beside the tenant's
        backups, then restored like one of them (scratch copy, checks, switch). When the
        restore does not succeed, the stored zip and its manifest are deleted again: a failed
        import leaves no backup behind (retention never counts it)."""
        cronjob = self.cronjob(tenant_id)
        store = self.store(tenant_id, cronjob)
        version = self._odoo_version(cronjob["metadata"]["namespace"], tenant_id)
        with tempfile.TemporaryDirectory(prefix="saasodoo-import-") as work:
            prepared = importing.prepare(
                source, Path(work), tenant=tenant_id, odoo_version=version, max_bytes=max_bytes
            )
            try:
                store.upload(prepared.name, prepared.path)
                store.write(
                    prepared.name + ".json",
                    json.dumps(prepared.manifest, sort_keys=True).encode(),
                )
            except BaseException:
                _forget(store, tenant_id, prepared.name)
                raise
        log.info("import into %s: stored %s (from %s)", tenant_id, prepared.name, source.name)
        try:
            return self.restore(
                tenant_id, prepared.name, drop_previous=drop_previous, timeout=timeout
            )
        except BaseException:
            _forget(store, tenant_id, prepared.name)
            raise

    def _odoo_version(self, namespace: str, tenant_id: str) -> str:
        """The tenant's Odoo series, from the spec saasodoo records on its namespace."""
        ns = self.kube.read_namespace(namespace)
        if ns is None:
            raise NotFound(f"tenant '{tenant_id}': no namespace {namespace}")
        return str(spec_of(ns.annotations, ns.labels, ns.name).odoo_version)

    def verify(
        self, tenant_id: str, backup: str | None = None, *, timeout: float | None = None
    ) -> RestoreResult:
        """Restore ``backup`` (default: the newest) into a scratch database in the cluster,
        check it against its manifest, drop it; Odoo keeps running."""
        cronjob = self.cronjob(tenant_id)
        body = self._restore_job(tenant_id, cronjob, backup, mode="verify")
        outcome = self.run_job(body, timeout=self._timeout(cronjob, timeout))
        return RestoreResult(tenant_id, backup, outcome, {}, verify_only=True)

    def restore(
        self,
        tenant_id: str,
        backup: str | None = None,
        *,
        drop_previous: bool = False,
        timeout: float | None = None,
    ) -> RestoreResult:
        """Scale Odoo to zero, restore into a fresh database and filestore, switch over only
        when the copy matches its manifest (restore.py), scale Odoo back, report. The data
        before the restore is kept (renamed) unless ``drop_previous``; a failed restore
        leaves it live."""
        cronjob = self.cronjob(tenant_id)
        if backup is not None:
            try:
                names = set(self.store(tenant_id, cronjob).names())
            except InvalidInput:
                names = None  # a PVC: restore.py checks the name itself
            if names is not None and (backup not in names or backup + ".json" not in names):
                raise NotFound(f"tenant '{tenant_id}' has no complete backup {backup}")
        namespace = cronjob["metadata"]["namespace"]
        body = self._restore_job(
            tenant_id, cronjob, backup, mode="restore", drop_previous=drop_previous
        )
        if any(self._running_restores(namespace)):
            raise Conflict(f"a restore of '{tenant_id}' is already running")
        deployments = self._odoo_deployments(namespace)
        replicas = {name: count for name, (count, _) in deployments.items()}
        log.info("restore of %s: scaling Odoo to zero (%s)", tenant_id, replicas)
        # Odoo starts again only on data known to be consistent: untouched (the Job never
        # ran), restored, or put right by a recovery. Otherwise it stays at zero.
        safe = True
        outcome = recovered = None
        try:
            for name, (count, generation) in deployments.items():
                # Noted with the generation this very update gives the Deployment (one patch,
                # one increment): trusted later only if nothing changed it since (a helm
                # upgrade, `tenant resume`).
                self._set_odoo_replicas(namespace, name, 0, f"{count}@{generation + 1}")
            self._wait_no_odoo_pods(namespace, timeout=300)
            safe = False
            outcome = self.run_job(body, timeout=self._timeout(cronjob, timeout))
            # A RESULT line means restore.py ended on its own terms, having switched over or
            # cleaned up; without one it died (killed, evicted, deadline), maybe mid-switch.
            safe = outcome.succeeded or outcome.result is not None
            if not safe:
                log.warning("restore job %s died (%s): recovering", outcome.name, outcome.reason)
                recovered = self._recover(tenant_id, cronjob, outcome.name)
                safe = recovered.succeeded
        finally:
            if safe:
                for name, count in replicas.items():
                    self._set_odoo_replicas(namespace, name, count, None)
        assert outcome is not None
        error = (outcome.result or {}).get("error") or outcome.reason
        if recovered is not None and not recovered.succeeded:
            raise SaasodooError(
                f"restore of '{tenant_id}' failed (job {outcome.name}: {error}) and so did its "
                f"recovery (job {recovered.name}: {recovered.reason}); Odoo is left stopped: "
                "`saasodoo backup restore` recovers first, then restores; "
                f"`saasodoo tenant resume {tenant_id}` starts Odoo again"
            )
        if recovered is not None:
            what = (recovered.result or {}).get("recovered") or "the data is consistent"
            raise SaasodooError(
                f"restore of '{tenant_id}' failed (job {outcome.name}: {error}); "
                f"recovered by job {recovered.name} ({what}); Odoo started again"
            )
        result = RestoreResult(tenant_id, backup, outcome, replicas)
        if not result.ok:
            raise SaasodooError(
                f"restore of '{tenant_id}' failed (job {outcome.name}): {error}; "
                "the previous data is still live"
            )
        return result

    def _recover(self, tenant_id: str, cronjob: dict[str, Any], died: str) -> JobOutcome:
        """Run `restore.py --recover` once the dead restore's pod is gone (restore.py's
        filestore lock also makes the recovery wait for it)."""
        namespace = cronjob["metadata"]["namespace"]
        deadline = time.monotonic() + RECOVER_SECONDS
        while True:
            with translate(f"list pods of job {namespace}/{died}"):
                pods = self.kube.core.list_namespaced_pod(
                    namespace, label_selector=f"job-name={died}",
                    _request_timeout=self.kube.timeout,
                ).items  # fmt: skip
            if all(p.status.phase in ("Succeeded", "Failed") for p in pods):
                break
            if time.monotonic() > deadline:
                raise TransientClusterError(f"pods of job {namespace}/{died} still running")
            time.sleep(self.poll_seconds)
        body = self._restore_job(tenant_id, cronjob, None, mode="recover")
        body["spec"]["activeDeadlineSeconds"] = RECOVER_SECONDS
        return self.run_job(body, timeout=RECOVER_SECONDS + 60)

    def _set_odoo_replicas(self, namespace: str, name: str, count: int, note: str | None) -> None:
        """Scale an Odoo Deployment and set (or, with None, remove) the replicas note; Helm
        stays the owner of ``.spec.replicas`` (see ``Kube.scale_deployment``)."""
        self.kube.scale_deployment(namespace, name, count, {REPLICAS_ANNOTATION: note})

    def _odoo_deployments(self, namespace: str) -> dict[str, tuple[int, int]]:
        """Odoo's Deployments: name -> (replicas to give back after a restore, generation)."""
        selector = f"{COMPONENT_LABEL} in ({','.join(ODOO_COMPONENTS)})"
        with translate(f"list Odoo deployments of {namespace}"):
            items = self.kube.apps.list_namespaced_deployment(
                namespace, label_selector=selector, _request_timeout=self.kube.timeout
            ).items
        return {
            d.metadata.name: (_replicas_before(d), int(d.metadata.generation or 0)) for d in items
        }

    def _running_restores(self, namespace: str) -> list[str]:
        with translate(f"list restore jobs of {namespace}"):
            items = self.batch.list_namespaced_job(
                namespace, label_selector=f"{JOB_LABEL} in (restore,recover)",
                _request_timeout=self.kube.timeout,
            ).items  # fmt: skip
        return [j.metadata.name for j in items if not j.status.completion_time and
                not j.status.failed]  # fmt: skip

    def _wait_no_odoo_pods(self, namespace: str, timeout: float) -> None:
        selector = f"{COMPONENT_LABEL} in ({','.join(ODOO_COMPONENTS)})"
        deadline = time.monotonic() + timeout
        while True:
            with translate(f"list Odoo pods of {namespace}"):
                pods = self.kube.core.list_namespaced_pod(
                    namespace, label_selector=selector, _request_timeout=self.kube.timeout
                ).items
            if not pods:
                return
            if time.monotonic() > deadline:
                raise TransientClusterError(
                    f"Odoo pods of {namespace} still there after {timeout:.0f}s"
                )
            time.sleep(self.poll_seconds)


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


def _replicas_before(deployment: Any) -> int:
    """Odoo's replicas to give back after a restore: the Deployment's, or, when a restore that
    failed left it at zero untouched since, what that restore noted."""
    count = int(deployment.spec.replicas or 0)
    note = (deployment.metadata.annotations or {}).get(REPLICAS_ANNOTATION) or ""
    noted, _, generation = note.partition("@")
    if count == 0 and noted.isdigit() and generation == str(deployment.metadata.generation):
        return int(noted)
    return count


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


def prune_store(store: BackupStore, policy: fmt.Policy, dry_run: bool = False) -> PruneResult:
    """Delete what the policy does not keep (the manifest first: the backup stops counting)."""
    names = set(store.names())
    entries = [
        e
        for e in (fmt.parse_name(n) for n in names if n.endswith(".zip"))
        if e is not None and e.name + ".json" in names
    ]
    keep = fmt.retention(entries, policy)
    doomed = sorted(e.name for e in entries if e.name not in keep)
    if not dry_run:
        for name in doomed:
            store.delete(name + ".json")
            store.delete(name)
    return PruneResult(keep, doomed, dry_run)


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
