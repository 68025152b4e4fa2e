"""One-shot operations on a tenant as request resources: ``OdooTenantBackup``,
``OdooTenantRestore``, ``OdooTenantVerify``, ``OdooTenantRollback``,
``OdooTenantRefresh`` and ``OdooTenantDownload``
(``saasodoo.dev/v1alpha1``, namespaced, beside the OdooTenants in the platform namespace).

A request is a fact with its own lifecycle (Velero's ``Backup``/``Restore``, bemade's
``OdooBackupJob``/``OdooRestoreJob``): someone creates one naming the tenant
(``spec.tenant``, the OdooTenant's name) and what to do; the operator runs it once, in the
tenant's turn of the work queue (never beside a reconcile of the same tenant), and writes
its progress and outcome to its status. Its spec never changes (a CEL rule: ask again with
a new request); deleting it never undoes what it did. An import is the upload of a zip to
the tenant's backup storage (bytes do not belong in etcd; the CLI or API process does it
through the import worker) followed by an ``OdooTenantRestore`` of the stored zip with
``discardOnFailure``.

Status (``OperationStatus``): ``phase`` (``Pending`` → ``Running`` → ``Succeeded`` or
``Failed``), Flux-style conditions (``Ready`` True once it succeeded, False while it runs
(reason ``Progressing``) and after it failed; ``Reconciling`` only while it is pending or
running; ``Stalled`` only once it failed: a failed request is never retried by itself),
``observedGeneration``, ``attempts``, ``startedAt``/``completedAt``, ``message``, and what
it produced (``backup``: the backup's name; ``revision``: the helm revision; ``result``:
the operation's report). ``kubectl wait --for=condition=Ready otb/<name>`` returns when it
succeeded; ``kubectl wait --for=jsonpath='{.status.phase}'=Failed`` when it failed.

Pure: no I/O, no client library.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from saasodoo.core import crd
from saasodoo.core.conditions import (
    MAX_MESSAGE,
    READY,
    RECONCILING,
    STALLED,
    remove_condition,
    set_condition,
    timestamp,
)
from saasodoo.core.crd import API_VERSION, GROUP, Condition, structural_schema
from saasodoo.errors import FieldError, InvalidInput

#: Label every request carries: the tenant it is for (a selector for ``kubectl get``).
TENANT_LABEL = "saasodoo.dev/tenant"

PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
PHASES = (PENDING, RUNNING, SUCCEEDED, FAILED)
#: Phases after which the operator never touches the request again.
TERMINAL = frozenset({SUCCEEDED, FAILED})

# Reasons of a request's conditions (CamelCase, as Kubernetes' metav1.Condition wants).
REASON_PENDING = "Pending"
REASON_PROGRESSING = "Progressing"
REASON_SUCCEEDED = "Succeeded"
REASON_FAILED = "Failed"
#: The tenant named by ``spec.tenant`` does not exist (or is being deleted).
REASON_TENANT_NOT_FOUND = "TenantNotFound"
#: The operator stopped while the request ran more than ``MAX_ATTEMPTS`` times.
REASON_INTERRUPTED = "Interrupted"
#: The spec is one saasodoo refuses (a rule the API server's schema cannot express).
REASON_INVALID = "InvalidSpec"

#: How many times a request is started in all: one found ``Running`` when its turn comes (its
#: operator stopped or lost its term while it ran) is started again while ``attempts`` is
#: below this, else it fails with reason ``Interrupted``.
MAX_ATTEMPTS = 2


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel,
                              populate_by_name=True)  # fmt: skip

    tenant: str = Field(
        min_length=3,
        max_length=30,
        pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
        description="Name of the OdooTenant (the tenant id) the operation is for.",
    )


class BackupRequestSpec(_Spec):
    """Take an on-demand backup of the tenant now (a Job from its backup CronJob)."""


class RestoreRequestSpec(_Spec):
    """Restore a backup into the tenant: Odoo to zero, restored into a fresh database and
    filestore, switched over only when the copy matches its manifest, Odoo back."""

    backup: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Name of the backup in the tenant's storage; absent: the newest.",
    )
    drop_previous: bool = Field(
        default=False,
        description="Drop the data the restore replaces at once instead of keeping it for "
        "backup.keepPreviousHours.",
    )
    discard_on_failure: bool = Field(
        default=False,
        description="Delete the backup from storage when the restore does not succeed (an "
        "imported zip: a failed import leaves no backup behind).",
    )


class VerifyRequestSpec(_Spec):
    """Restore a backup into a scratch database, check it against its manifest, drop it;
    Odoo keeps running."""

    backup: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Name of the backup in the tenant's storage; absent: the newest.",
    )


class DownloadRequestSpec(_Spec):
    """Serve one backup kept on the tenant's backup volume to the API for a download: a
    short-lived pod in the tenant's namespace (restore.py ``--serve``) hands the zip once to
    the holder of the token whose SHA-256 this names (Velero's DownloadRequest, for a volume
    no platform process mounts). The token itself is never written to the cluster."""

    backup: str = Field(
        min_length=5,
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*\.zip$",
        description="Name of the backup (a zip) on the tenant's backup volume.",
    )
    token_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 (hex) of the bearer token the reader pod accepts; the token "
        "stays with whoever asked.",
    )


class RefreshRequestSpec(_Spec):
    """Copy the source into an existing staging copy again ("refresh from production"): a
    fresh backup of the copy's ``copyOf.tenant`` (or the one named), restored into the copy
    as a copy (a new identity), neutralized before its Odoo starts. The source is never
    named here: it is always the copy's."""

    backup: str | None = Field(
        default=None,
        min_length=5,
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*\.zip$",
        description="Name of a backup of the source; absent: a fresh one, taken online.",
    )


class RollbackRequestSpec(_Spec):
    """Return the tenant's Helm release to an earlier revision and make that revision's spec
    the OdooTenant's spec (the database stays as it is)."""

    revision: int | None = Field(
        default=None, ge=1, description="Helm revision to return to; absent: the previous one."
    )


class OperationStatus(BaseModel):
    """What the operator did with a request; written through the status subresource."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation the operator acted on."
    )
    phase: Literal["Pending", "Running", "Succeeded", "Failed"] | None = Field(
        default=None, description="Pending, Running, Succeeded or Failed (final)."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=8,
        description="Ready (True once succeeded), Reconciling (only while pending or "
        "running), Stalled (only once failed).",
    )
    attempts: int | None = Field(
        default=None, ge=0, description="How many times the operator started the operation."
    )
    started_at: datetime | None = Field(default=None, description="When it last started.")
    completed_at: datetime | None = Field(default=None, description="When it ended.")
    message: str | None = Field(default=None, max_length=32768, description="What happened.")
    backup: str | None = Field(
        default=None, description="The backup taken, restored or verified (its name)."
    )
    revision: int | None = Field(
        default=None, ge=0, description="Helm revision the operation made or returned to."
    )
    result: dict[str, Any] | None = Field(
        default=None, description="The operation's report (as `saasodoo ... --json` prints it)."
    )


@dataclass(frozen=True)
class OperationKind:
    """One request kind: its names, what it does and its spec model."""

    kind: str
    plural: str
    singular: str
    short_name: str
    #: The verb saasodoo's CLI and API use for it (``backup``, ``restore``, ...).
    operation: str
    spec_model: type[_Spec]
    description: str

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


BACKUP = OperationKind(
    "OdooTenantBackup", "odootenantbackups", "odootenantbackup", "otb", "backup",
    BackupRequestSpec, "A request for an on-demand backup of one tenant.",
)  # fmt: skip
RESTORE = OperationKind(
    "OdooTenantRestore", "odootenantrestores", "odootenantrestore", "otr", "restore",
    RestoreRequestSpec, "A request to restore one of a tenant's backups into it.",
)  # fmt: skip
VERIFY = OperationKind(
    "OdooTenantVerify", "odootenantverifies", "odootenantverify", "otv", "verify",
    VerifyRequestSpec, "A request to prove one of a tenant's backups restorable.",
)  # fmt: skip
ROLLBACK = OperationKind(
    "OdooTenantRollback", "odootenantrollbacks", "odootenantrollback", "otrb", "rollback",
    RollbackRequestSpec, "A request to return a tenant's Helm release to an earlier revision.",
)  # fmt: skip

REFRESH = OperationKind(
    "OdooTenantRefresh", "odootenantrefreshes", "odootenantrefresh", "otrf", "refresh",
    RefreshRequestSpec, "A request to copy a staging copy's source into it again.",
)  # fmt: skip
DOWNLOAD = OperationKind(
    "OdooTenantDownload", "odootenantdownloads", "odootenantdownload", "otdl", "download",
    DownloadRequestSpec, "A request to serve one backup of a tenant's backup volume once.",
)  # fmt: skip

#: Every request kind, by ``kind``.
KINDS: dict[str, OperationKind] = {
    k.kind: k for k in (BACKUP, RESTORE, VERIFY, ROLLBACK, REFRESH, DOWNLOAD)
}
#: Every request kind, by the CLI/API verb.
BY_OPERATION: dict[str, OperationKind] = {k.operation: k for k in KINDS.values()}


def kind_of(obj: dict[str, Any]) -> OperationKind:
    """The request kind of a resource (``InvalidInput`` naming ``kind`` otherwise)."""
    found = KINDS.get(str(obj.get("kind")))
    if found is None:
        raise InvalidInput(
            "not an operation request",
            [FieldError("kind", f"must be one of {', '.join(KINDS)}")],
        )
    return found


def parse_spec(op: OperationKind, spec: Any) -> _Spec:
    """A request's ``.spec`` as its model; ``InvalidInput`` naming each bad field as
    ``spec.<camelCase>`` and its rule (unknown fields included)."""
    if not isinstance(spec, dict):
        raise InvalidInput(f"invalid {op.kind}", [FieldError("spec", "must be an object")])
    try:
        return op.spec_model.model_validate(spec)
    except ValidationError as exc:
        raise InvalidInput.from_validation(op.kind, exc, prefix="spec.") from None


def request_body(op: OperationKind, namespace: str, tenant: str, **spec: Any) -> dict[str, Any]:
    """A new request for ``tenant`` (``spec`` in snake_case, checked: ``InvalidInput``
    naming the field), named by the API server from ``<tenant>-<operation>-`` plus a random
    suffix, labelled with ``TENANT_LABEL``."""
    model = parse_spec(op, {to_camel(k): v for k, v in {"tenant": tenant, **spec}.items()})
    return {
        "apiVersion": API_VERSION,
        "kind": op.kind,
        "metadata": {
            "generateName": f"{tenant}-{op.operation}-",
            "namespace": namespace,
            "labels": {TENANT_LABEL: tenant},
        },
        "spec": model.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def phase_of(obj: dict[str, Any]) -> str:
    """The request's phase (``Pending`` before the operator wrote any)."""
    return str((obj.get("status") or {}).get("phase") or PENDING)


def is_terminal(obj: dict[str, Any]) -> bool:
    return phase_of(obj) in TERMINAL


def tenant_of(obj: dict[str, Any]) -> str:
    """``spec.tenant`` of a request ("" when absent)."""
    return str((obj.get("spec") or {}).get("tenant") or "")


def order_key(obj: dict[str, Any]) -> tuple[str, str]:
    """The order the operator runs a tenant's requests in: ``creationTimestamp`` (RFC 3339
    in UTC, so it sorts as text), then ``metadata.name``."""
    meta = obj.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def interrupted(obj: dict[str, Any]) -> bool:
    """Whether a request found ``Running`` at the start of its turn has used up its
    ``MAX_ATTEMPTS`` (then it fails with ``REASON_INTERRUPTED``; else it starts again)."""
    status = obj.get("status") or {}
    return phase_of(obj) == RUNNING and int(status.get("attempts") or 0) >= MAX_ATTEMPTS


def expired(obj: dict[str, Any], now: datetime, ttl_seconds: float) -> bool:
    """Whether a finished request's time is up: ``completedAt`` more than ``ttl_seconds``
    before ``now`` (timezone-aware). A request that is not finished, or has no (readable)
    ``completedAt``, never expires."""
    if not is_terminal(obj):
        return False
    stamp = (obj.get("status") or {}).get("completedAt")
    try:
        completed = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return False
    return now - completed > timedelta(seconds=ttl_seconds)


def owner_reference(tenant: dict[str, Any]) -> dict[str, Any]:
    """The ``ownerReference`` a request gets to its OdooTenant (read from the API server:
    its ``uid``), so deleting the tenant garbage-collects its requests. Not the controller
    reference, and it does not block the owner's deletion."""
    meta = tenant["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": crd.KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": False,
        "blockOwnerDeletion": False,
    }


def with_owner(obj: dict[str, Any], tenant: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The request's ``metadata.ownerReferences`` with ``owner_reference(tenant)`` added;
    None when it is there already (same ``uid``)."""
    refs = list((obj.get("metadata") or {}).get("ownerReferences") or [])
    ref = owner_reference(tenant)
    if any(r.get("uid") == ref["uid"] for r in refs):
        return None
    return [*refs, ref]


def transition(
    status: dict[str, Any] | None,
    phase: str,
    *,
    generation: int,
    now: datetime,
    message: str,
    reason: str | None = None,
    restart: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    """The request's next ``.status`` (a new dict; the input is not changed) for ``phase``:
    the conditions set as the module docstring says (``reason`` overrides the phase's
    default reason), ``startedAt`` and ``attempts`` moved on entering ``Running`` (and on
    ``restart``: a request found ``Running`` that starts again), ``completedAt`` set on a
    final phase, and ``fields`` (snake_case: ``backup``, ``revision``, ``result``) set.
    ``ValueError`` for an unknown phase."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}")
    out = dict(status or {})
    conditions: list[dict[str, Any]] = list(out.get("conditions") or [])
    stamp = timestamp(now)
    if phase in (PENDING, RUNNING):
        why = reason or (REASON_PENDING if phase == PENDING else REASON_PROGRESSING)
        conditions = set_condition(conditions, READY, "False", why, message, generation, now)
        conditions = set_condition(conditions, RECONCILING, "True", why, message, generation, now)
        conditions = remove_condition(conditions, STALLED)
        if phase == RUNNING and (restart or out.get("phase") != RUNNING):
            out["startedAt"] = stamp
            out["attempts"] = int(out.get("attempts") or 0) + 1
    elif phase == SUCCEEDED:
        why = reason or REASON_SUCCEEDED
        conditions = set_condition(conditions, READY, "True", why, message, generation, now)
        conditions = remove_condition(conditions, RECONCILING)
        conditions = remove_condition(conditions, STALLED)
        out["completedAt"] = stamp
    else:
        why = reason or REASON_FAILED
        conditions = set_condition(conditions, READY, "False", why, message, generation, now)
        conditions = set_condition(conditions, STALLED, "True", why, message, generation, now)
        conditions = remove_condition(conditions, RECONCILING)
        out["completedAt"] = stamp
    out["phase"] = phase
    out["conditions"] = conditions
    out["observedGeneration"] = generation
    out["message"] = message[:MAX_MESSAGE]  # the CRD's maxLength: a longer one is refused
    for key, value in fields.items():
        if value is not None:
            out[to_camel(key)] = value
    return out


# --- the CustomResourceDefinitions ------------------------------------------------------

#: Where ``make crd`` writes the CustomResourceDefinitions (package data, one file each).
CRD_PACKAGE = "saasodoo.crds"


def printer_columns(op: OperationKind) -> list[dict[str, Any]]:
    """Columns of ``kubectl get <plural>``: Tenant, Phase, what it names, Age."""
    columns: list[dict[str, Any]] = [
        {"name": "Tenant", "type": "string", "jsonPath": ".spec.tenant"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    ]
    if op in (BACKUP, RESTORE, VERIFY):
        columns.append({"name": "Backup", "type": "string", "jsonPath": ".status.backup"})
    if op is ROLLBACK:
        columns.append({"name": "Revision", "type": "integer", "jsonPath": ".status.revision"})
    columns += [
        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return columns


def crd_manifest(op: OperationKind) -> dict[str, Any]:
    """The ``apiextensions.k8s.io/v1`` CustomResourceDefinition of the request kind ``op``:
    namespaced, ``v1alpha1`` served and stored, the status subresource, printer columns,
    its short name and the category ``saasodoo``; ``.spec`` required and immutable (CEL).
    Deterministic."""
    spec = structural_schema(op.spec_model.model_json_schema(by_alias=True))
    spec["description"] = " ".join(str(spec.get("description", "")).split())  # one paragraph
    spec["x-kubernetes-validations"] = [
        {"rule": "self == oldSelf",
         "message": "a request's spec cannot change: create a new request"}
    ]  # fmt: skip
    status = structural_schema(OperationStatus.model_json_schema(by_alias=True))
    conditions = status["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    conditions.pop("default", None)
    root = {
        "type": "object",
        "description": f"{op.description} Run once by the saasodoo operator; its status says "
        "how it went.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    return crd.crd_document(
        op.kind, op.list_kind, op.plural, op.singular, op.short_name, printer_columns(op), root
    )


def crd_manifests() -> list[dict[str, Any]]:
    """Every CustomResourceDefinition saasodoo ships: ``OdooTenant`` first, then the request
    kinds (what ``operator install-crds`` applies)."""
    return [crd.crd_manifest(), *(crd_manifest(op) for op in KINDS.values())]


def manifest_files() -> dict[str, str]:
    """The files ``make crd`` writes into ``saasodoo/crds``: ``<plural>.saasodoo.dev.yaml``
    -> its text (a header, then the manifest as YAML)."""
    out = {f"{crd.CRD_NAME}.yaml": crd.manifest_yaml()}
    for op in KINDS.values():
        body = yaml.safe_dump(crd_manifest(op), sort_keys=False, width=100)
        out[f"{op.crd_name}.yaml"] = HEADER + body
    return out


HEADER = (
    "# generated by make crd, do not edit (source: saasodoo/core/operations.py, "
    "python -m saasodoo.core.operations)\n"
)


if __name__ == "__main__":  # make crd: `python -m saasodoo.core.operations FILE` prints it
    files = manifest_files()
    if len(sys.argv) < 2:
        print("\n".join(files))
    else:
        print(files[sys.argv[1]], end="")
