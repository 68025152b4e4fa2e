"""The Jobs of the backups: built from the tenant's backup CronJob and followed to their end.

Every Job is the one ``kubectl create job --from=cronjob/...`` makes from the tenant's backup
CronJob (its pod template: image, identity, volumes, node, NetworkPolicy), with only the
command or the backup kind changed: a backup (``backup.py``), or ``restore.py`` in one of its
modes (restore, verify, recover). All cluster calls go through ``saasodoo.adapters.kube``.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any, Literal

from saasodoo.adapters.kube import Kube
from saasodoo.backups.results import JobOutcome
from saasodoo.core.copies import WEB_START_ARGS
from saasodoo.core.limits import load_json
from saasodoo.errors import SaasodooError, TransientClusterError

log = logging.getLogger(__name__)

#: On the Jobs saasodoo runs (and their pods): what for (backup, restore, verify, recover).
JOB_LABEL = "saasodoo.dev/backup-job"
KIND_ANNOTATION = "saasodoo.dev/backup-kind"
#: Where the chart mounts its programs (backup.py, restore.py) in the backup pod.
SCRIPTS = "/opt/odoo-tenant"

RestoreMode = Literal["restore", "verify", "recover", "check", "list", "serve", "fetch"]
#: The port restore.py ``--serve`` listens on in its pod.
SERVE_PORT = 8070
#: Seconds a reader pod waits for its one download (restore.py SAASODOO_SERVE_SECONDS).
SERVE_SECONDS = 600


def container_of(pod_spec: dict[str, Any], name: str = "backup") -> dict[str, Any]:
    """The container ``name`` of a pod spec (a copy); SaasodooError if there is none."""
    for c in pod_spec.get("containers") or []:
        if c.get("name") == name:
            return dict(c)
    raise SaasodooError(f"the backup CronJob has no container {name!r}")


def backup_container(cronjob: dict[str, Any]) -> dict[str, Any]:
    """The ``backup`` container of the CronJob's pod template."""
    return container_of(cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"])


def command_args(command: list[str]) -> dict[str, str]:
    """`--key=value` and `--flag` arguments of a command, as a dict (a flag's value is "")."""
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
    the job template, ``cronjob.kubernetes.io/instantiate: manual``, the CronJob as owner),
    changed only as asked: the backup kind, the command, the filestore writable.

    The owner reference has no ``controller`` flag, as kubectl's has none: the CronJob
    controller counts, limits and deletes only the Jobs it controls, so its history limits
    (``successfulJobsHistoryLimit: 0`` included) never delete a Job saasodoo is following,
    while the garbage collector still deletes them with the CronJob."""
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
                }
            ],
        },
        "spec": spec,
    }


def job_name(cronjob: dict[str, Any], tag: str) -> str:
    """A fresh Job name: the CronJob's (at most 40 characters), ``tag``, a millisecond stamp."""
    base = str(cronjob["metadata"]["name"])[:40].rstrip("-")
    return f"{base}-{tag}-{int(time.time() * 1000) % 10**10}"


def job_timeout(cronjob: dict[str, Any], timeout: float | None) -> float:
    """Seconds to follow a Job: ``timeout``, else the CronJob's activeDeadlineSeconds (default
    3600) plus a minute."""
    if timeout is not None:
        return timeout
    deadline = cronjob["spec"]["jobTemplate"]["spec"].get("activeDeadlineSeconds") or 3600
    return float(deadline) + 60


class JobRunner:
    """Builds the restore Jobs (which read the database Secret) and runs Jobs to their end."""

    def __init__(self, kube: Kube, *, poll_seconds: float = 1.0) -> None:
        self.kube = kube
        self.poll_seconds = poll_seconds

    def run(self, body: dict[str, Any], *, timeout: float) -> JobOutcome:
        """Create the Job and follow it until it completes or fails; TransientClusterError
        after ``timeout`` seconds (the Job keeps running)."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        started = datetime.now(UTC)
        self.kube.create_job(body)
        log.info("job %s/%s created", namespace, name)
        return self.follow(namespace, name, timeout=timeout, started=started)

    def follow(
        self, namespace: str, name: str, *, timeout: float, started: datetime | None = None
    ) -> JobOutcome:
        """Follow the Job ``namespace/name`` (created by the caller) until it completes or
        fails; TransientClusterError after ``timeout`` seconds (the Job keeps running)."""
        started = started or datetime.now(UTC)
        deadline = time.monotonic() + timeout
        while True:
            job = self.kube.read_job(namespace, name)
            for cond in job.conditions:
                if cond.status != "True":
                    continue
                if cond.type in ("Complete", "SuccessCriteriaMet"):
                    return JobOutcome(
                        name, True, cond.reason or "Complete", started, datetime.now(UTC),
                        self.result(namespace, name),
                    )  # fmt: skip
                if cond.type in ("Failed", "FailureTarget"):
                    reason = f"{cond.reason or 'Failed'}: {cond.message or ''}".strip(": ")
                    return JobOutcome(
                        name, False, reason, started, datetime.now(UTC),
                        self.result(namespace, name),
                    )  # fmt: skip
            if time.monotonic() > deadline:
                raise TransientClusterError(
                    f"job {namespace}/{name} not finished after {timeout:.0f}s; still running"
                )
            time.sleep(self.poll_seconds)

    def result(self, namespace: str, job: str) -> dict[str, Any] | None:
        """The `RESULT {...}` line of the Job's pod log, if the log can be read."""
        try:
            for text in self.kube.job_pod_logs(namespace, job, "backup"):
                for line in reversed(text.splitlines()):
                    if line.startswith("RESULT "):
                        result: dict[str, Any] = load_json(line.removeprefix("RESULT "), "RESULT")
                        return result
        except Exception:  # noqa: BLE001 - logs are a bonus (none on a simulated cluster)
            log.debug("no log for job %s/%s", namespace, job, exc_info=True)
        return None

    def restore_job(
        self,
        tenant_id: str,
        cronjob: dict[str, Any],
        backup: str | None,
        *,
        mode: RestoreMode,
        drop_previous: bool = False,
        source_tenant: str | None = None,
        as_copy: bool = False,
    ) -> dict[str, Any]:
        """A Job running restore.py in ``mode``: ``restore`` (Odoo stopped), ``verify`` (into
        a scratch database beside the running Odoo), ``recover`` (finish or undo a restore
        that was killed, see restore.py), ``check`` (the zip's checksums against its
        manifest only) or ``list`` (the stored backups' summaries; ``backup`` ignored).
        ``source_tenant``: the backup is read from that tenant's folder of the storage, and a
        restore makes a copy of it (a staging copy: restore.py ``--source-tenant``);
        ``as_copy``: a copy whatever the manifest says, the backup in this tenant's own
        storage (carried over from a source's volume: restore.py ``--as-copy``)."""
        container = backup_container(cronjob)
        args = command_args(list(container.get("command") or []))
        command = ["python3", f"{SCRIPTS}/restore.py"]
        command += ["--s3"] if "s3" in args else [f"--dest={args.get('dest') or '/backups'}"]
        command += [f"--tenant={args.get('tenant') or tenant_id}", "--work=/backups"]
        if "filestore" in args:
            command.append(f"--filestore={args['filestore']}")
        if source_tenant:
            command.append(f"--source-tenant={source_tenant}")
        if as_copy:  # another tenant's backup, carried into this one's own storage
            command.append("--as-copy")
        if backup and mode != "list":
            command.append(f"--backup={backup}")
        if mode == "list":
            command.append("--list")
        elif mode == "verify":
            command.append("--verify-only")
        elif mode == "recover":
            command.append("--recover")
        elif mode == "check":
            command.append("--check-only")
        elif mode == "serve":
            command += ["--serve", f"--port={SERVE_PORT}"]
        if drop_previous:
            command.append("--drop-previous")
        # Only a restore or a recovery creates databases: the others get no admin password.
        extra = (
            self.admin_env(cronjob["metadata"]["namespace"], container)
            if mode in ("restore", "recover", "verify")
            else []
        )
        job = job_from_cronjob(
            cronjob,
            job_name(cronjob, mode),
            purpose=mode,
            command=command,
            writable_filestore=mode in ("restore", "recover"),
            # Odoo is scaled to zero for a restore: no pod to be next to; the volume's own
            # node affinity still puts the Job where the RWO filestore is.
            drop_affinity=mode in ("restore", "recover"),
            extra_env=extra,
        )
        job["spec"]["backoffLimit"] = 0
        if mode in ("restore", "recover"):
            # restore.py prunes the expired previous data itself, under the tenant's lock:
            # the CronJob's prune-previous step would only wait for PostgreSQL once more (a
            # new tenant's restore of its template waits on it).
            pod = job["spec"]["template"]["spec"]
            pod["initContainers"] = [c for c in pod.get("initContainers") or []
                                     if c.get("name") != "prune-previous"]  # fmt: skip
        return job

    def serve_job(
        self, tenant_id: str, cronjob: dict[str, Any], backup: str, token_sha256: str
    ) -> dict[str, Any]:
        """A reader pod's Job: restore.py ``--serve`` of ``backup`` from the backup volume
        (mounted read-only), on ``SERVE_PORT``, to the holder of the token whose SHA-256 is
        ``token_sha256``; Ready once it listens. A pod exposed on the network gets nothing it
        does not need: no Secret-backed variable (database password, S3 keys), no init
        container. It ends after its one download or ``SERVE_SECONDS`` without one; its Job's
        deadline leaves room for the transfer (``transfer_deadline``); the Job is removed a
        minute after it ends."""
        job = self.restore_job(tenant_id, cronjob, backup, mode="serve")
        spec = job["spec"]
        spec["activeDeadlineSeconds"] = transfer_deadline(cronjob)
        spec["ttlSecondsAfterFinished"] = 60
        pod = spec["template"]["spec"]
        pod.pop("initContainers", None)
        for container in pod["containers"]:
            if container.get("name") != "backup":
                continue
            container.pop("envFrom", None)
            container["env"] = [e for e in container.get("env") or [] if "valueFrom" not in e]
            for mount in container.get("volumeMounts") or []:
                if mount.get("name") == "backups":
                    mount["readOnly"] = True
            _set_env(container, "SAASODOO_SERVE_TOKEN_SHA256", {"value": token_sha256})
            _set_env(container, "SAASODOO_SERVE_SECONDS", {"value": str(SERVE_SECONDS)})
            container["ports"] = [{"name": "serve", "containerPort": SERVE_PORT}]
            container["readinessProbe"] = {
                "tcpSocket": {"port": SERVE_PORT}, "periodSeconds": 1, "failureThreshold": 3,
            }  # fmt: skip
        return job

    def fetch_job(
        self, tenant_id: str, cronjob: dict[str, Any], backup: str, address: str, secret: str
    ) -> dict[str, Any]:
        """A Job of ``tenant_id`` running restore.py ``--fetch``: ``backup`` taken from the
        reader pod at ``address`` (``host:port``) into the tenant's own storage, with the
        token in key ``token`` of Secret ``secret`` (SAASODOO_FETCH_TOKEN)."""
        job = self.restore_job(tenant_id, cronjob, backup, mode="fetch", as_copy=False)
        spec = job["spec"]
        spec["activeDeadlineSeconds"] = transfer_deadline(cronjob)
        # Looked at by the step that made it within seconds; gone (with its Secret and
        # NetworkPolicy, which it owns) an hour after it ends.
        spec["ttlSecondsAfterFinished"] = 3600
        for container in spec["template"]["spec"]["containers"]:
            if container.get("name") == "backup":
                container["command"].append(f"--fetch={address}")
                ref = {"secretKeyRef": {"name": secret, "key": "token"}}
                _set_env(container, "SAASODOO_FETCH_TOKEN", {"valueFrom": ref})
        return job

    def admin_env(self, namespace: str, container: dict[str, Any]) -> list[dict[str, Any]]:
        """PGADMINUSER/PGADMINPASSWORD: the chart PostgreSQL's superuser, whose password is in
        the same Secret as the tenant role's; an external database's role needs CREATEDB."""
        env = {e["name"]: e for e in container.get("env") or []}
        ref = ((env.get("PGPASSWORD") or {}).get("valueFrom") or {}).get("secretKeyRef")
        if not ref:
            return []
        if not self.kube.secret_has_key(namespace, ref["name"], "postgres-password"):
            return []
        return [
            {"name": "PGADMINUSER", "value": "postgres"},
            {
                "name": "PGADMINPASSWORD",
                "valueFrom": {"secretKeyRef": {"name": ref["name"], "key": "postgres-password"}},
            },
        ]


def serve_policy(
    job: dict[str, Any], uid: str, from_namespace: str, from_job: str | None = None
) -> dict[str, Any]:
    """The NetworkPolicy that lets pods of ``from_namespace`` (the platform's), or only the
    pod of Job ``from_job`` there (a staging copy's fetch Job), reach the reader pod of
    ``job`` (a ``serve_job`` created with ``uid``) on ``SERVE_PORT``, and nothing else: the
    tenant chart's policies deny ingress to backup pods. Owned by the Job, so the garbage
    collector removes it with the Job."""
    peer: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: from_namespace}}
    }
    if from_job:
        peer["podSelector"] = {"matchLabels": {POD_JOB_LABEL: from_job}}
    return _job_policy(job, uid, "Ingress", {"from": [peer]})


def fetch_policy(
    job: dict[str, Any], uid: str, reader_namespace: str, reader_job: str
) -> dict[str, Any]:
    """The NetworkPolicy that lets the pod of ``job`` (a ``fetch_job`` created with ``uid``)
    reach the reader pod of Job ``reader_job`` in ``reader_namespace`` on ``SERVE_PORT``:
    the tenant chart's policies keep backup pods to their database, DNS and storage. Owned
    by the Job."""
    peer = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: reader_namespace}},
        "podSelector": {"matchLabels": {POD_JOB_LABEL: reader_job}},
    }
    return _job_policy(job, uid, "Egress", {"to": [peer]})


#: The label Kubernetes gives every namespace: its name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
#: The label the Job controller gives a Job's pods: the Job's name (``job-name``, on every
#: Kubernetes version; ``batch.kubernetes.io/job-name`` only from 1.27).
POD_JOB_LABEL = "job-name"


def _job_policy(
    job: dict[str, Any], uid: str, direction: str, rule: dict[str, Any]
) -> dict[str, Any]:
    name = str(job["metadata"]["name"])
    key = "ingress" if direction == "Ingress" else "egress"
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": job["metadata"]["namespace"],
            "labels": {JOB_LABEL: job["metadata"]["labels"].get(JOB_LABEL, "")},
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid}
            ],
        },
        "spec": {
            "podSelector": {"matchLabels": {POD_JOB_LABEL: name}},
            "policyTypes": [direction],
            key: [{**rule, "ports": [{"protocol": "TCP", "port": SERVE_PORT}]}],
        },
    }


def transfer_deadline(cronjob: dict[str, Any]) -> int:
    """Seconds a reader or fetch Job may run: the wait for its client (``SERVE_SECONDS``)
    plus the backup Jobs' own deadline (the CronJob's ``activeDeadlineSeconds``, default
    3600), which bounds writing the zip and so, at the same pace, carrying it."""
    deadline = cronjob["spec"]["jobTemplate"]["spec"].get("activeDeadlineSeconds") or 3600
    return int(deadline) + SERVE_SECONDS


def reader_token() -> tuple[str, str]:
    """A one-time token for a reader pod and its SHA-256 (hex), which is all the pod gets."""
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).hexdigest()


#: ``JOB_LABEL`` of a template build Job (``template_build_job``).
TEMPLATE_BUILD = "template-build"
#: Arguments of the web pod's ``odoo-init`` that a template build drops: its start
#: arguments (``copies.WEB_START_ARGS``), a templated create's wait and the tenant's
#: language; it keeps the other ``-i base`` flags (demo data).
_TENANT_ONLY_ARGS = (*WEB_START_ARGS, "--from-template", "--template-wait",
                     "--init-flag=--load-language")  # fmt: skip


def template_cleanup_job(build: dict[str, Any], name: str) -> dict[str, Any]:
    """The Job that cleans up after a failed template build, from ``build`` (the body
    ``template_build_job`` makes, not the live Job): its pod without the build's steps, so
    only its last container runs, ``odoo-init --drop-template`` as the superuser, which
    drops the scratch database (if it was made) and the build's role. A failed build's pod
    never reached that container, and the next build of that key runs in another tenant's
    namespace."""
    job = copy.deepcopy(build)
    job["metadata"]["name"] = name
    job["spec"]["template"]["spec"]["initContainers"] = []
    job["spec"]["activeDeadlineSeconds"] = 600
    return job


#: The template build pod's memory volume holding its role's libpq password file.
BUILD_RUN_VOLUME = "template-build"
BUILD_RUN_DIR = "/run/template-build"
BUILD_PASSFILE = f"{BUILD_RUN_DIR}/pgpass"


def template_scratch(database: str, key: str) -> str:
    """The scratch database a template build of ``key`` uses beside the tenant's
    ``database``: ``<database>_tpl_<8 hex of the key's SHA-256>`` (at most 63 bytes, as
    PostgreSQL keeps names)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{database[: 63 - 13]}_tpl_{digest}"


def template_build_job(
    deployment: dict[str, Any],
    cronjob: dict[str, Any],
    key: str,
    name: str,
    admin_env: list[dict[str, Any]],
) -> dict[str, Any]:
    """The Job that builds the template ``key`` (issue #25 point 3) in a tenant's namespace,
    from its web Deployment and its backup CronJob (plain JSON objects, as the API serves
    them), one pod in three steps, each a container of theirs with its command changed:

    1. init ``pg-client`` (the CronJob's): the PostgreSQL client programs backup.py runs;
    2. init ``odoo-init`` (the web pod's): ``odoo-init.py --build-template KEY``: through
       ``admin_env`` (the chart PostgreSQL's superuser) makes a role of the build's own, named
       as the scratch database ``template_scratch``, with a password it generates (written
       to a libpq password file on a memory volume of the pod), creates the scratch database
       owned by that role without PUBLIC access (the tenant's role cannot connect to it), and
       runs Odoo's ``-i base`` into it as that role (the tenant's demo flag kept, its language
       not: a template is en_US);
    3. init ``backup`` (the CronJob's): ``backup.py --tenant templates/KEY --no-prune`` of
       the scratch database (as the build's role) and its filestore: the template, an
       ordinary backup zip, in the platform's backup location;
    4. ``odoo-init`` again, ``--drop-template``: drops the scratch database and the role.

    The filestore is an emptyDir of the pod, not the tenant's volume.

    Volumes are the two templates' (the CronJob's ``scripts`` renamed ``backup-scripts``:
    another ConfigMap at the same path); the pod has the backup pods' labels (their
    NetworkPolicy reaches PostgreSQL and the S3 endpoint). ``backoffLimit`` 0 (a failed
    build is seen and another one started later), removed an hour after it ends. ValueError when a
    template lacks a container the build needs."""
    web = copy.deepcopy(deployment["spec"]["template"]["spec"])
    job_template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    backup_pod = job_template["spec"]["template"]
    backup = backup_pod["spec"]
    inits = {c.get("name"): c for c in web.get("initContainers") or []}
    backup_inits = {c.get("name"): c for c in backup.get("initContainers") or []}
    if "odoo-init" not in inits:
        raise ValueError("the web Deployment has no odoo-init init container")
    if "pg-client" not in backup_inits:
        raise ValueError("the backup CronJob has no pg-client init container")
    store = container_of(backup)
    env = {e["name"]: e for e in store.get("env") or []}
    database = str((env.get("PGDATABASE") or {}).get("value") or "")
    if not database or "s3" not in command_args(list(store.get("command") or [])):
        raise ValueError("a template is kept in S3 (backup.storage=s3) from a tenant's database")
    scratch = template_scratch(database, key)

    def scratch_env(container: dict[str, Any]) -> dict[str, Any]:
        container = copy.deepcopy(container)
        _set_env(container, "PGDATABASE", {"value": scratch})
        return container

    def backup_scripts(container: dict[str, Any]) -> dict[str, Any]:
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") == "scripts":
                mount["name"] = "backup-scripts"
        return container

    def build_role(container: dict[str, Any], *, admin: bool) -> dict[str, Any]:
        # The build's own role (odoo-init's build_role): its password, made by the build,
        # reaches the next containers in a libpq password file of a memory volume.
        container.setdefault("volumeMounts", []).append(
            {"name": BUILD_RUN_VOLUME, "mountPath": BUILD_RUN_DIR}
        )
        _set_env(container, "SAASODOO_BUILD_PGPASSFILE", {"value": BUILD_PASSFILE})
        if admin:
            for entry in admin_env:
                _set_env(container, entry["name"], {k: v for k, v in entry.items() if k != "name"})
        return container

    def as_build_role(container: dict[str, Any]) -> dict[str, Any]:
        container["env"] = [e for e in container.get("env") or [] if e.get("name") != "PGPASSWORD"]
        _set_env(container, "PGUSER", {"value": scratch})
        _set_env(container, "PGPASSFILE", {"value": BUILD_PASSFILE})
        return container

    init = scratch_env(inits["odoo-init"])
    command = [p for p in init.get("command") or [] if not p.startswith(_TENANT_ONLY_ARGS)]
    init.pop("readinessProbe", None)
    build = build_role({**copy.deepcopy(init), "command": [*command, f"--build-template={key}"]},
                       admin=True)  # fmt: skip
    # The build never needs the tenant's role: its own is made through the superuser.
    build["env"] = [e for e in build.get("env") or [] if e.get("name") != "PGPASSWORD"]
    drop = {**copy.deepcopy(init), "name": "drop-scratch",
            "command": [*command, "--drop-template"]}  # fmt: skip
    drop = as_build_role(build_role(drop, admin=True))
    store = as_build_role(build_role(backup_scripts(scratch_env(store)), admin=False))
    store["name"] = "store"
    store["command"] = [
        f"--tenant=templates/{key}" if p.startswith("--tenant=") else p
        for p in store.get("command") or []
        if not p.startswith("--keep")
    ] + ["--no-prune"]
    _set_env(store, "BACKUP_KIND", {"value": "on-demand"})
    volumes = {v["name"]: v for v in web.get("volumes") or []}
    for volume in backup.get("volumes") or []:
        volume = copy.deepcopy(volume)
        if volume["name"] == "scripts":
            volume["name"] = "backup-scripts"
        if volume["name"] in volumes and volumes[volume["name"]] != volume:
            if volume["name"] in ("tmp", "backups"):
                continue  # both scratch space, or the same claim: the web pod's will do
            raise ValueError(f"volume {volume['name']!r} differs between the web pod and "
                             "the backup pod")  # fmt: skip
        volumes[volume["name"]] = volume
    # The scratch filestore on a volume of the pod's own, never on the tenant's (whose Odoo
    # could write into a template's attachments while it is built).
    volumes["filestore"] = {"name": "filestore", "emptyDir": {"sizeLimit": "2Gi"}}
    volumes[BUILD_RUN_VOLUME] = {
        "name": BUILD_RUN_VOLUME,
        "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"},
    }
    pod: dict[str, Any] = {
        **{k: v for k, v in web.items() if k not in ("initContainers", "containers", "volumes")},
        "restartPolicy": "Never",
        "initContainers": [
            backup_scripts(copy.deepcopy(backup_inits["pg-client"])),
            build,
            store,
        ],  # fmt: skip
        "containers": [drop],
        "volumes": list(volumes.values()),
    }
    labels = {**(backup_pod.get("metadata") or {}).get("labels", {}), JOB_LABEL: TEMPLATE_BUILD}
    meta = deployment["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {**labels},
            "annotations": {"saasodoo.dev/template": key},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 1800,
            "ttlSecondsAfterFinished": 3600,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
