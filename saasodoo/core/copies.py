"""Staging copies of a tenant: the copy's spec, its expiry, and the steps that make it.

A copy is an OdooTenant whose ``spec.copyOf`` names its source (``{tenant, backup?}``,
fixed at creation) and, optionally, ``spec.expiresAt`` (the operator deletes it then,
without a final backup). The operator makes it in the steps ``copy_plan`` lists (README,
"Staging copies"): a fresh backup of the source taken online (unless one is named), the
copy's release installed with Odoo at zero replicas, the backup restored into it as a copy
(new ``database.uuid``/``database.secret``: restore.py), neutralized with Odoo's own
``odoo neutralize`` plus the copy's admin password and ``web.base.url`` (odoo-init.py
``--neutralize``), then Odoo started. The source's backup location is only read.

Pure: no I/O. Bad input raises ``InvalidInput`` naming the field and the rule.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from saasodoo.core.crd import COPY_OF_LABEL, SELF_COPY_MESSAGE, parse_spec
from saasodoo.core.limits import load_json
from saasodoo.core.status import OperationLock, ReleaseInfo
from saasodoo.errors import Conflict, FieldError, InvalidInput, NotFound

#: The longest life a copy may be given at creation (``--expires-in``); expiresAt may be
#: moved later by hand.
MAX_EXPIRY = timedelta(days=365)
#: One term of a duration: at most 6 digits (a longer number is no sensible life, and an
#: unbounded one would overflow ``timedelta``).
_DURATION = re.compile(r"(\d{1,6})([dhm])")
_UNITS = {"d": 86400, "h": 3600, "m": 60}

#: The steps of a copy, in order (``copy_plan``).
BACKUP_SOURCE = "backup-source"  # an on-demand backup of the source, online (its CronJob)
INSTALL = "install-stopped"  # the copy's release, Odoo at zero replicas (no `-i base`)
TRANSFER = "transfer"  # a PVC-kept backup carried to the copy's storage (reader + fetch Jobs)
RESTORE = "restore"  # restore.py in the copy's namespace: a copy, a new identity
NEUTRALIZE = "neutralize"  # odoo-init.py --neutralize, before any Odoo starts on it
START = "start"  # Odoo scaled up (unless spec.suspended), followed to Ready

#: Backup storages (the chart's ``backup.storage``) and whether a copy can read them.
S3 = "s3"
PVC = "pvc"


def parse_expires_in(text: str, field: str = "expires_in") -> timedelta:
    """``7d``, ``12h``, ``90m`` or a sum (``1d12h``) as a timedelta: positive, at most
    ``MAX_EXPIRY``. InvalidInput naming ``field`` otherwise."""
    rest = text.strip()
    parts = _DURATION.findall(rest)
    if not rest or "".join(n + u for n, u in parts) != rest:
        raise InvalidInput("invalid copy", [FieldError(field, f"'{text[:40]}' is not a duration "
                                            "like 7d, 12h, 90m or 1d12h")])  # fmt: skip
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds > MAX_EXPIRY.total_seconds():
        raise InvalidInput(
            "invalid copy", [FieldError(field, f"must be at most {MAX_EXPIRY.days}d")]
        )
    delta = timedelta(seconds=seconds)
    if delta <= timedelta(0):
        raise InvalidInput("invalid copy", [FieldError(field, "must be longer than zero")])
    return delta


def check_expires_at(expires_at: datetime, now: datetime, field: str = "expiresAt") -> None:
    """A new expiry must lie in the future (the API server cannot check that: CEL has no
    clock). ``now`` is timezone-aware."""
    if expires_at <= now:
        raise InvalidInput(
            "invalid copy",
            [FieldError(field, f"{expires_at:%Y-%m-%dT%H:%M:%SZ} is not in the future")],
        )


def expired(spec: dict[str, Any], now: datetime) -> bool:
    """Whether the copy with ``.spec`` ``spec`` is past its ``expiresAt`` (False without)."""
    left = seconds_to_expiry(spec, now)
    return left is not None and left <= 0


def seconds_to_expiry(spec: dict[str, Any], now: datetime) -> float | None:
    """Seconds from ``now`` until the copy's ``expiresAt`` (negative: past it), None
    without one: when the operator looks at the copy again (``requeue_after``)."""
    expires_at = parse_spec(spec).expires_at
    return None if expires_at is None else (expires_at - now).total_seconds()


#: Chart values a copy never takes from its source's overrides: its outgoing mail (the SMTP
#: relay and the NetworkPolicy's SMTP egress). The operator forces them off in the copy's
#: values too, whatever the plan says (a second wall behind Odoo's neutralization).
MAIL_VALUES = (("odoo", "smtp"), ("networkPolicy", "egress", "smtp"))


def without_mail(overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` without ``MAIL_VALUES`` (a deep copy where they were; empty parents
    dropped)."""

    def drop(node: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        head, rest = path[0], path[1:]
        if head not in node:
            return node
        out = dict(node)
        if not rest:
            del out[head]
        elif isinstance(out[head], dict):
            out[head] = drop(out[head], rest)
            if not out[head]:
                del out[head]
        return out

    for path in MAIL_VALUES:
        overrides = drop(overrides, path)
    return overrides


def check_copy_ids(source_name: str, new_name: str) -> None:
    """A copy names another tenant than itself: InvalidInput naming ``to`` otherwise."""
    if source_name == new_name:
        raise InvalidInput("invalid copy", [FieldError("to", SELF_COPY_MESSAGE)])


def copy_spec(
    source_name: str,
    source_spec: dict[str, Any],
    new_name: str,
    *,
    backup: str | None = None,
    plan: str | None = None,
    admin_email: str | None = None,
    expires_at: datetime | None = None,
    owner: str | None = None,
) -> dict[str, Any]:
    """The ``.spec`` of the OdooTenant ``new_name``, a copy of ``source_name`` whose
    ``.spec`` is ``source_spec``: the source's admin e-mail (or ``admin_email``), plan (or
    ``plan``), Odoo series and overrides (the database may need what they install) but its
    outgoing mail (``MAIL_VALUES``); no custom domains (a copy has its own hosts:
    ``<new_name>.<base domain>``); the source's owner unless ``owner``. Validated as the
    API server and saasodoo would: InvalidInput naming the field (``to`` for a copy of
    itself)."""
    check_copy_ids(source_name, new_name)
    source = parse_spec(source_spec, field="source.spec")
    fields = source.model_dump()  # the shared fields are not typed on ResourceFields
    body: dict[str, Any] = {
        "adminEmail": admin_email or fields["admin_email"],
        "plan": plan or fields["plan"],
        "odooVersion": fields["odoo_version"],
        "customDomains": [],
        "overrides": without_mail(fields["overrides"]),
        "suspended": False,
        "finalBackup": True,
        "copyOf": {"tenant": source_name, **({"backup": backup} if backup else {})},
    }
    if owner or source.owner:
        body["owner"] = owner or source.owner
    if expires_at is not None:
        body["expiresAt"] = expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    parsed = parse_spec(body)
    out: dict[str, Any] = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def copy_labels(source_name: str) -> dict[str, str]:
    """The labels a copy's OdooTenant (and namespace) carry."""
    return {COPY_OF_LABEL: source_name}


@dataclass(frozen=True)
class SourceFacts:
    """What the operator observed of the source when a copy's turn comes."""

    name: str
    exists: bool
    deleting: bool = False
    odoo_version: str = ""
    #: The chart's ``backup.storage`` of the source: ``s3``, ``pvc``, or "" (backups off).
    storage: str = PVC


def copy_plan(source: SourceFacts, copy_spec_: dict[str, Any]) -> list[str]:
    """The steps that make the copy whose ``.spec`` is ``copy_spec_`` from ``source``, in
    order (a source that keeps its backups on its PVC: the backup carried over first by the
    transfer Job pair, ``TRANSFER``). Refusals (nothing is created): NotFound when the
    source does not exist, Conflict while it is being deleted, InvalidInput naming
    ``spec.odooVersion`` for another series than the source's (Odoo does not migrate a
    database when it starts) and ``spec.copyOf.tenant`` for a source that keeps no
    backups."""
    spec = parse_spec(copy_spec_)
    if spec.copy_of is None:
        raise InvalidInput("not a copy", [FieldError("spec.copyOf", "is not set")])
    if spec.copy_of.tenant != source.name:
        raise ValueError(f"facts of {source.name}, copy of {spec.copy_of.tenant}")
    if not source.exists:
        raise NotFound(f"the source tenant '{source.name}' of the copy does not exist")
    if source.deleting:
        raise Conflict(f"the source tenant '{source.name}' of the copy is being deleted")
    series = spec.model_dump()["odoo_version"]
    if source.odoo_version and series != source.odoo_version:
        raise InvalidInput("invalid copy", [FieldError(
            "spec.odooVersion",
            f"{series} differs from the source's {source.odoo_version}: a copy keeps the "
            "source's Odoo series (a new series is an export, an upgrade and an import)",
        )])  # fmt: skip
    if source.storage not in (S3, PVC):
        raise InvalidInput("invalid copy", [FieldError(
            "spec.copyOf.tenant",
            f"'{source.name}' keeps no backups (backup.enabled is false): a copy is made from one",
        )])  # fmt: skip
    steps = [] if spec.copy_of.backup else [BACKUP_SOURCE]
    steps.append(INSTALL)
    if source.storage == PVC:
        steps.append(TRANSFER)
    steps += [RESTORE, NEUTRALIZE, START]
    return steps


# -- the executor's step machine (the operator runs one step per turn) ---------------------

#: ``status.copy.step`` once the copy's data is in place (restored and neutralized): from
#: then on the copy is reconciled as any tenant (its ``spec.suspended`` honoured).
COPIED = "copied"
#: ``status.copy.step`` of a copy that failed: Stalled until it is deleted.
FAILED = "failed"

#: The Reconciling reason of each step, and the Stalled reason of its failure.
STEP_REASONS = {
    BACKUP_SOURCE: ("CopyBackingUpSource", "CopySourceBackupFailed"),
    INSTALL: ("CopyInstalling", "CopyInstallFailed"),
    TRANSFER: ("CopyTransferring", "CopyTransferFailed"),
    RESTORE: ("CopyRestoring", "CopyRestoreFailed"),
    NEUTRALIZE: ("CopyNeutralizing", "CopyNeutralizeFailed"),
    START: ("CopyStarting", "CopyStartFailed"),
}
#: What each step does, for messages and Events.
STEP_WORDS = {
    BACKUP_SOURCE: "taking a fresh online backup of the source",
    INSTALL: "installing the copy's release with Odoo at zero replicas",
    TRANSFER: "carrying the source's backup to the copy's namespace",
    RESTORE: "restoring the source's backup into the copy",
    NEUTRALIZE: "neutralizing the copy's database",
    START: "starting the copy's Odoo",
}

#: What the operator found of a step's work (a Job, a request, a release).
ABSENT = "absent"  # not started: start it
RUNNING = "running"  # started, not finished: look again later
SUCCEEDED = "succeeded"  # done: the next step
FAILED_WORK = "failed"  # failed: the copy is Stalled


@dataclass(frozen=True)
class CopyAction:
    """What the executor does next for a copy: ``verb`` is ``start`` (create the step's
    work), ``wait`` (look again later), ``advance`` (the step is done: record ``step`` as
    done and go on with ``next_step``), ``fail`` (Stalled) or ``done`` (nothing left: the
    tenant's ordinary reconcile)."""

    verb: str
    step: str
    next_step: str = ""


def current_step(plan: list[str], copy_status: dict[str, Any] | None) -> str:
    """The step a copy is at: ``status.copy.step`` when it is one of ``plan``, ``COPIED``
    or ``FAILED``, else the plan's first (a copy not started, or a status from an older
    plan)."""
    step = (copy_status or {}).get("step")
    if step in (COPIED, FAILED) or step in plan:
        return str(step)
    return plan[0] if plan else COPIED


def next_copy_action(plan: list[str], step: str, seen: str) -> CopyAction:
    """The executor's decision for the copy at ``step`` of ``plan`` whose work was found
    ``seen`` (``ABSENT``, ``RUNNING``, ``SUCCEEDED``, ``FAILED_WORK``). ``START`` has no
    work of its own: the copy is then handed to the ordinary reconcile, which scales Odoo
    up (unless ``spec.suspended``); so ``START`` advances to ``COPIED`` whatever ``seen``.
    ValueError for a step not in ``plan`` or an unknown ``seen``."""
    if step == COPIED:
        return CopyAction("done", step)
    if step == FAILED:
        return CopyAction("fail", step)
    if step not in plan:
        raise ValueError(f"step {step!r} is not in the plan {plan}")
    if seen not in (ABSENT, RUNNING, SUCCEEDED, FAILED_WORK):
        raise ValueError(f"unknown state of a step's work: {seen!r}")
    index = plan.index(step)
    following = plan[index + 1] if index + 1 < len(plan) else COPIED
    if step == START or seen == SUCCEEDED:
        return CopyAction("advance", step, following)
    if seen == FAILED_WORK:
        return CopyAction("fail", step)
    return CopyAction("start" if seen == ABSENT else "wait", step)


def job_state(conditions: list[tuple[str, str]]) -> str:
    """A Job's state from its conditions as ``(type, status)`` pairs: ``SUCCEEDED``
    (Complete or SuccessCriteriaMet True), ``FAILED_WORK`` (Failed or FailureTarget True),
    else ``RUNNING``."""
    true = {t for t, s in conditions if s == "True"}
    if true & {"Complete", "SuccessCriteriaMet"}:
        return SUCCEEDED
    if true & {"Failed", "FailureTarget"}:
        return FAILED_WORK
    return RUNNING


def refresh_source(tenant: dict[str, Any]) -> str:
    """The source a refresh of the OdooTenant ``tenant`` copies from again (its
    ``spec.copyOf.tenant``). InvalidInput naming ``tenant`` when it is no staging copy;
    Conflict while the copy is not made yet (its own steps still run, or failed: a refresh
    would clash with them). The API checks it before writing the request, the operator
    again when it runs it."""
    name = str((tenant.get("metadata") or {}).get("name") or "")
    source = ((tenant.get("spec") or {}).get("copyOf") or {}).get("tenant")
    if not source:
        raise InvalidInput("invalid refresh", [FieldError(
            "tenant", f"'{name}' is no staging copy (its spec.copyOf is not set): only a "
            "copy is refreshed from its source")])  # fmt: skip
    step = ((tenant.get("status") or {}).get("copy") or {}).get("step")
    if step != COPIED:
        raise Conflict(f"the copy '{name}' is not made yet (step {step}): refresh it once it is")
    return str(source)


def install_state(
    head: ReleaseInfo | None, lock: OperationLock | None, now: datetime, stale_after: timedelta
) -> tuple[str, str]:
    """The state of the copy's install from its release's newest revision (``head``; None:
    no revision) and the operation lock on its namespace: ``(SUCCEEDED, what)`` once
    deployed, ``(RUNNING, "")`` while the operation may still run (its lock held, or, with
    no lock, a pending revision younger than ``stale_after``), else ``(FAILED_WORK, why)``:
    an install whose operator was stopped mid-helm is never finished by anyone (the copy's
    steps replace the ordinary reconcile until its data is in place), so it fails instead
    of waiting for ever."""
    status = head.status if head is not None else None
    if status == "deployed":
        assert head is not None
        return SUCCEEDED, f"release installed (revision {head.revision})"
    if status is not None and not status.startswith("pending"):
        return FAILED_WORK, f"helm install left the release {status}"
    if lock is not None and lock.held(now):
        return RUNNING, ""
    if lock is None and head is not None and head.updated and now - head.updated < stale_after:
        return RUNNING, ""  # pending with no lock: helm may still run
    left = f"the release {status}" if status else "no release"
    why = f"operation '{lock.operation}' {lock.ended()}" if lock else "no operation holds it"
    return FAILED_WORK, f"the copy's helm install was interrupted ({why}), leaving {left}"


def request_state(phase: str | None) -> str:
    """A one-shot request's state from its ``status.phase`` (None: not created)."""
    if phase is None:
        return ABSENT
    return {"Succeeded": SUCCEEDED, "Failed": FAILED_WORK}.get(phase, RUNNING)


def work_names(copy_name: str, uid: str) -> dict[str, str]:
    """The names of a copy's work, fixed for the copy's object (``uid``: its
    ``metadata.uid``), so a step started again after an operator restart finds its own:
    the source's ``OdooTenantBackup`` and the copy's fetch, restore and neutralize Jobs."""
    tag = uid.replace("-", "")[:8] or "0"
    base = copy_name[:40].rstrip("-")
    return {
        BACKUP_SOURCE: f"{base}-copy-{tag}",
        TRANSFER: f"{base}-copy-fetch-{tag}",
        RESTORE: f"{base}-copy-restore-{tag}",
        NEUTRALIZE: f"{base}-copy-neutralize-{tag}",
    }


def copy_status(
    previous: dict[str, Any] | None,
    *,
    source: str,
    step: str,
    now: datetime,
    **fields: Any,
) -> dict[str, Any]:
    """The copy's ``status.copy`` block after a move to ``step``: ``source``, ``step``,
    ``startedAt`` (kept from ``previous``, else ``now``), ``finishedAt`` once ``COPIED`` or
    ``FAILED``, and ``fields`` (``backup``, ``backupRequest``, ``message``,
    ``neutralized``: camelCase keys, None drops one). Times are RFC 3339 UTC."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    out: dict[str, Any] = dict(previous or {})
    out.update(source=source, step=step)
    out.setdefault("startedAt", stamp)
    if step in (COPIED, FAILED):
        out.setdefault("finishedAt", stamp)
    for key, value in fields.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


#: On the Jobs the copy executor runs (and their pods): which step.
COPY_JOB_LABEL = "saasodoo.dev/copy-job"
#: odoo-init.py's arguments that a Job made from the web pod's ``odoo-init`` drops
#: (``odoo_init_job``): the pod's mode, and what only a web pod's start uses (the ``-i base``
#: flags, a copy's neutralization on start, a templated create's wait).
WEB_START_ARGS = ("--initialize", "--wait", "--copy", "--neutralize")
WEB_START_PREFIXES = ("--init-flag", "--from-template", "--template-wait")


def odoo_init_job(
    deployment: dict[str, Any], name: str, mode: str, label: tuple[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Job running the web pod's ``odoo-init`` with ``mode``, from the web Deployment
    ``deployment`` (a plain JSON object, as the API serves it): the pod template's
    ``odoo-init`` init container as the Job's one container (``WEB_START_ARGS`` and
    ``WEB_START_PREFIXES`` dropped, ``mode`` appended), the template's volumes, identity,
    placement and labels (so its NetworkPolicy reaches PostgreSQL) plus ``label`` (key,
    value) on the Job and its pod; a readiness probe that never passes keeps the pod out of
    the web Service's endpoints. ``backoffLimit`` 0. Returns the Job and its container (to
    adjust). ValueError when the template has no ``odoo-init`` init container."""
    meta = deployment["metadata"]
    template = copy.deepcopy(deployment["spec"]["template"])
    pod = template["spec"]
    init = [c for c in pod.get("initContainers") or [] if c.get("name") == "odoo-init"]
    if not init:
        raise ValueError(f"deployment {meta.get('name')} has no odoo-init init container")
    container = init[0]
    command = [
        part
        for part in container.get("command") or []
        if part not in WEB_START_ARGS and not part.startswith(WEB_START_PREFIXES)
    ]
    container["command"] = [*command, mode]
    container["readinessProbe"] = {"exec": {"command": ["false"]}, "periodSeconds": 3600}
    pod["initContainers"] = []
    pod["containers"] = [container]
    pod["restartPolicy"] = "Never"
    key, value = label
    labels = {**(template.get("metadata") or {}).get("labels", {}), key: value}
    template.setdefault("metadata", {})["labels"] = labels
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {**(meta.get("labels") or {}), key: value},
        },
        "spec": {"backoffLimit": 0, "template": template},
    }
    return job, container


def neutralize_job(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    """The Job that neutralizes a copy's database (``odoo_init_job`` with ``--neutralize``
    and ``COPY_JOB_LABEL``: a failure is the step's, the copy Stalled). ValueError when the
    template has no ``odoo-init`` init container."""
    job, _ = odoo_init_job(deployment, name, "--neutralize", (COPY_JOB_LABEL, NEUTRALIZE))
    return job


def last_result(logs: list[str]) -> dict[str, Any] | None:
    """The last ``RESULT {json}`` line of a Job's pod logs (odoo-init.py, restore.py), None
    when there is none or it is not a JSON object."""
    for text in logs:
        for line in reversed(text.splitlines()):
            if line.startswith("RESULT "):
                try:
                    found = load_json(line.removeprefix("RESULT "), "RESULT")
                except ValueError:  # LimitExceeded: not JSON, too deep
                    return None
                return found if isinstance(found, dict) else None
    return None


def with_reason(conditions: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    """``conditions`` with the reason of Ready, Reconciling and Stalled (those present)
    made ``reason``: a copy's step (``STEP_REASONS``) in the house's vocabulary of
    conditions. Statuses, messages and transition times are left as they are."""
    return [
        {**c, "reason": reason} if c.get("type") in ("Ready", "Reconciling", "Stalled") else c
        for c in conditions
    ]


#: The backup container's variables that carry the S3 key pair (the chart's CronJob).
S3_KEY_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def storage_secrets(container: dict[str, Any]) -> list[str]:
    """The Secrets (names, sorted) the backup container ``container`` reads its S3 key pair
    from: what a copy's namespace needs before its restore Job reads the source's prefix
    (the source's Secret of that name is copied there when the copy has none)."""
    names = set()
    for env in container.get("env") or []:
        ref = ((env.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
        if env.get("name") in S3_KEY_VARS and ref:
            names.add(str(ref))
    return sorted(names)
