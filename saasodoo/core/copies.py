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

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from saasodoo.core.crd import COPY_OF_LABEL, SELF_COPY_MESSAGE, parse_spec
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
TRANSFER = "transfer"  # a PVC-kept backup carried to the copy's namespace (Job pair)
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


def copy_plan(
    source: SourceFacts, copy_spec_: dict[str, Any], *, pvc_transfer: bool = False
) -> list[str]:
    """The steps that make the copy whose ``.spec`` is ``copy_spec_`` from ``source``, in
    order. Refusals (nothing is created): NotFound when the source does not exist,
    Conflict while it is being deleted, InvalidInput naming ``spec.odooVersion`` for
    another series than the source's (Odoo does not migrate a database when it starts) and
    ``spec.copyOf.tenant`` for a source that keeps no backups, or keeps them on its PVC while
    the transfer Job pair is not built (``pvc_transfer``)."""
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
    if source.storage == PVC and not pvc_transfer:
        raise InvalidInput("invalid copy", [FieldError(
            "spec.copyOf.tenant",
            f"'{source.name}' keeps its backups on its PVC, which another namespace cannot "
            "mount; copies are made from S3 backup storage (backup.storage=s3) until the "
            "transfer Job pair is built",
        )])  # fmt: skip
    steps = [] if spec.copy_of.backup else [BACKUP_SOURCE]
    steps.append(INSTALL)
    if source.storage == PVC:
        steps.append(TRANSFER)
    steps += [RESTORE, NEUTRALIZE, START]
    return steps
