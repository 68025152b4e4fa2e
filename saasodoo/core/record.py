"""The tenant record: what saasodoo keeps of a tenant outside its Helm release, and its
codec (pure).

The record's entries: the spec saasodoo last recorded (the one the lifecycle diffs a change
against, with the verified domains and what the tenant was created with), whether it is
suspended, its owner, what saasodoo's last successful operation applied (digest and
revision), the digest of an upgrade that failed and was rolled back, the revision a failed
operation left, and the operation in flight (the *operation lock*, not a
``coordination.k8s.io`` Lease). Each entry is named by a key (``saasodoo.dev/spec``, ...)
and held as text; this module turns that text into typed values and back, and names where
each entry lives in either place a record is kept (``saasodoo.adapters.records`` chooses one
per tenant):

- a tenant with an OdooTenant: its ``status.record`` (``STATUS_FIELDS``: ``spec`` as the
  spec's JSON text, ``suspended``, ``owner``, ``applied``, ``failedDigest``, ``operation``,
  ``unfinished``), written by merge patches of the status subresource that name only those
  fields (``status_patch``);
- a tenant without one (made by ``--local`` on a cluster without the operator, or before its
  adoption): annotations of its namespace ``tenant-<id>``, under the entries' own keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from saasodoo.core.reconcile import Applied, OperationLock, Unfinished, parse_duration
from saasodoo.core.spec import PLAN_LABEL, TENANT_LABEL, TenantSpec
from saasodoo.errors import NotFound, SaasodooError

SPEC_ANNOTATION = "saasodoo.dev/spec"
SUSPENDED_ANNOTATION = "saasodoo.dev/suspended"
#: Who owns the tenant (the API's user id); ownership lives in the record only.
OWNER_ANNOTATION = "saasodoo.dev/owner"
#: What saasodoo's last successful operation applied: {"digest", "revision"} (JSON).
APPLIED_ANNOTATION = "saasodoo.dev/applied"
#: Digest of an upgrade that failed and was rolled back (not retried until forced).
FAILED_DIGEST_ANNOTATION = "saasodoo.dev/failed-digest"
#: The operation in flight, the operation lock (JSON: holder host:pid, operation, digest,
#: expires); set before helm runs, removed when the result is recorded. A lock left by a
#: dead process tells ``ensure`` that a pending release is stuck, not in progress.
OPERATION_ANNOTATION = "saasodoo.dev/operation"
#: The revision a saasodoo operation left failed or pending (JSON: revision, operation,
#: digest), written when its helm call fails; it tells ``ensure`` that this revision is
#: saasodoo's to remediate, where any other failed or pending revision is a hand change.
UNFINISHED_ANNOTATION = "saasodoo.dev/unfinished"
#: Margin added to the helm timeout before a lock of another host counts as expired.
LOCK_MARGIN = timedelta(minutes=2)


def stale_after(helm_timeout: str) -> timedelta:
    """How long an operation may run (helm's ``--timeout``, a Go duration, plus the lock's
    margin): a pending release older than that, with no live lock, is locked, not in
    progress."""
    return parse_duration(helm_timeout) + LOCK_MARGIN


#: A patch of the record's entries: a value sets the key, None removes it.
Patch = dict[str, str | None]

#: Where each entry lives in an OdooTenant's ``status.record`` (``RecordStatus`` in
#: ``saasodoo.core.crd``). The spec stays its JSON text: a merge patch would merge a new spec
#: into the old one (an override removed would stay) and drop its null values (what the
#: tenant was created with names unset values as null).
STATUS_FIELDS = {
    SPEC_ANNOTATION: "spec",
    SUSPENDED_ANNOTATION: "suspended",
    OWNER_ANNOTATION: "owner",
    APPLIED_ANNOTATION: "applied",
    FAILED_DIGEST_ANNOTATION: "failedDigest",
    OPERATION_ANNOTATION: "operation",
    UNFINISHED_ANNOTATION: "unfinished",
}
#: Every entry's key, as a namespace carries them.
RECORD_KEYS = tuple(STATUS_FIELDS)
#: The status field that holds the record.
STATUS_RECORD = "record"
#: Entries whose text is a JSON object, held as that object in ``status.record``.
_OBJECTS = (APPLIED_ANNOTATION, OPERATION_ANNOTATION, UNFINISHED_ANNOTATION)


# -- where the entries live ------------------------------------------------------------------


def entries_of_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    """The record's entries among a namespace's annotations."""
    return {k: str(annotations[k]) for k in RECORD_KEYS if annotations.get(k)}


def entries_of_status(record: Mapping[str, Any] | None) -> dict[str, str]:
    """The record's entries held in an OdooTenant's ``status.record`` (as text again)."""
    entries: dict[str, str] = {}
    for key, name in STATUS_FIELDS.items():
        value = (record or {}).get(name)
        if value is None or value == "" or value is False:
            continue
        if key in _OBJECTS:
            entries[key] = json.dumps(value)
        elif key == SUSPENDED_ANNOTATION:
            entries[key] = "true"
        else:
            entries[key] = str(value)
    return entries


def status_patch(patch: Patch) -> dict[str, Any]:
    """``patch`` as the merge patch of ``status.record`` that makes it (only the fields it
    names; None removes one). An object entry whose text is no JSON object is removed: the
    codec reads it as absent anyway."""
    out: dict[str, Any] = {}
    for key, value in patch.items():
        name = STATUS_FIELDS[key]
        if value is None:
            out[name] = None
        elif key in _OBJECTS:
            try:
                doc = json.loads(value)
            except ValueError:
                doc = None
            out[name] = doc if isinstance(doc, dict) else None
        elif key == SUSPENDED_ANNOTATION:
            out[name] = True if value == "true" else None
        else:
            out[name] = value
    return out


def moved_patch(entries: Mapping[str, str]) -> Patch:
    """The patch that makes a record exactly ``entries`` (every other entry removed): what
    a record moved from a namespace to its OdooTenant writes."""
    return {k: entries.get(k) for k in RECORD_KEYS}


def removal_patch() -> Patch:
    """Removes every entry (a namespace's record, once moved)."""
    return dict.fromkeys(RECORD_KEYS)


# -- decoding -------------------------------------------------------------------------------


def spec_of(annotations: Mapping[str, str], labels: Mapping[str, str], name: str) -> TenantSpec:
    """The recorded spec of namespace ``name``: NotFound when it has none, a SaasodooError
    naming the namespace and the fault when it is not JSON or not a valid spec."""
    raw = annotations.get(SPEC_ANNOTATION)
    tenant_id = labels.get(TENANT_LABEL, "")
    if not raw:
        raise NotFound(f"tenant '{tenant_id}': namespace {name} has no spec")
    try:
        return TenantSpec.model_validate(json.loads(raw))
    except ValidationError as exc:
        fault = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(spec)'}: {e['msg']}"
                          for e in exc.errors()[:3])  # fmt: skip
    except ValueError as exc:
        fault = f"not JSON ({exc})"
    raise SaasodooError(
        f"tenant '{tenant_id}': the spec recorded on namespace {name} ({SPEC_ANNOTATION}) "
        f"is not valid: {fault}"
    )


def suspended_of(annotations: Mapping[str, str]) -> bool:
    return annotations.get(SUSPENDED_ANNOTATION) == "true"


def owner_of(annotations: Mapping[str, str]) -> str | None:
    owner = annotations.get(OWNER_ANNOTATION)
    return str(owner) if owner else None


def failed_digest_of(annotations: Mapping[str, str]) -> str | None:
    return annotations.get(FAILED_DIGEST_ANNOTATION)


def applied_of(annotations: Mapping[str, str]) -> Applied | None:
    """What saasodoo last applied; None when nothing is recorded or the record is unreadable."""
    raw = annotations.get(APPLIED_ANNOTATION)
    if not raw:
        return None
    try:
        doc = json.loads(raw)
        return Applied(str(doc["digest"]), int(doc["revision"]))
    except (ValueError, KeyError, TypeError):
        return None


def unfinished_of(annotations: Mapping[str, str]) -> Unfinished | None:
    """The revision saasodoo's last failed operation left; None when none or unreadable."""
    raw = annotations.get(UNFINISHED_ANNOTATION)
    if not raw:
        return None
    try:
        doc = json.loads(raw)
        return Unfinished(int(doc["revision"]), str(doc["operation"]), str(doc["digest"]))
    except (ValueError, KeyError, TypeError):
        return None


def lock_of(
    annotations: Mapping[str, str], alive: Callable[[str], bool | None] | None = None
) -> OperationLock | None:
    """The operation lock; None when there is none or it is unreadable. ``alive`` tells
    whether its holder (``host:pid``) still runs (None: cannot tell); it is the caller's,
    since that is I/O."""
    raw = annotations.get(OPERATION_ANNOTATION)
    if not raw:
        return None
    try:
        doc = json.loads(raw)
        holder = str(doc["holder"])
        lock = OperationLock(
            holder=holder,
            operation=str(doc.get("operation", "")),
            digest=str(doc.get("digest", "")),
            expires=datetime.fromisoformat(str(doc["expires"])),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return replace(lock, alive=alive(holder)) if alive else lock


# -- encoding -------------------------------------------------------------------------------


def encode_lock(lock: OperationLock) -> str:
    return json.dumps(
        {
            "holder": lock.holder,
            "operation": lock.operation,
            "digest": lock.digest,
            "expires": lock.expires.isoformat(),
        }
    )


def encode_applied(applied: Applied) -> str:
    return json.dumps({"digest": applied.digest, "revision": applied.revision})


def new_tenant_record(spec: TenantSpec, lock: OperationLock, owner: str | None) -> dict[str, str]:
    """The record of a new tenant: its spec, the create's operation lock (taken with the
    namespace, so a crash from there on is recoverable) and its owner."""
    return {
        SPEC_ANNOTATION: spec.model_dump_json(),
        OPERATION_ANNOTATION: encode_lock(lock),
        **({OWNER_ANNOTATION: owner} if owner else {}),
    }


def spec_patch(
    spec: TenantSpec,
    suspended: bool,
    *,
    applied: Applied | None = None,
    failed_digest: str | None = None,
    lock: OperationLock | None | Literal[False] = False,
) -> tuple[Patch, Patch]:
    """Labels and annotations that record ``spec`` (and suspension). With ``applied``, also
    what was applied and the failed digest (None clears it), which releases the lock;
    ``lock`` sets (an OperationLock) or releases (None) the lock; False leaves it as it is."""
    annotations: Patch = {
        SPEC_ANNOTATION: spec.model_dump_json(),
        SUSPENDED_ANNOTATION: "true" if suspended else None,
    }
    if applied is not None:
        annotations.update(outcome_patch(applied, failed_digest))
    if lock is not False:
        annotations[OPERATION_ANNOTATION] = encode_lock(lock) if lock else None
    labels: Patch = {PLAN_LABEL: spec.plan}
    return labels, annotations


def outcome_patch(applied: Applied, failed_digest: str | None) -> Patch:
    """What an operation applied and the digest that failed (None clears it); releases the
    lock and forgets an unfinished revision (it lies behind the applied one). The spec is
    left as it is."""
    return {
        APPLIED_ANNOTATION: encode_applied(applied),
        FAILED_DIGEST_ANNOTATION: failed_digest,
        OPERATION_ANNOTATION: None,
        UNFINISHED_ANNOTATION: None,
    }


def failure_patch(unfinished: Unfinished | None) -> Patch:
    """Releases the lock of an operation whose helm call failed, recording the revision it
    left failed or pending (None: it left none)."""
    patch: Patch = {OPERATION_ANNOTATION: None}
    if unfinished is not None:
        patch[UNFINISHED_ANNOTATION] = json.dumps(
            {
                "revision": unfinished.revision,
                "operation": unfinished.operation,
                "digest": unfinished.digest,
            }
        )
    return patch


def unlock_patch() -> Patch:
    """Removes the operation lock."""
    return {OPERATION_ANNOTATION: None}
