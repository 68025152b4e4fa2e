"""The OdooTenant custom resource: its spec model, the CustomResourceDefinition, and the
conversion between the resource's ``.spec`` and ``saasodoo.core.spec.TenantSpec``.

An ``OdooTenant`` (``saasodoo.dev/v1alpha1``, namespaced, living in the platform namespace)
is one tenant: ``metadata.name`` is the tenant id, ``.spec`` what it should be (admin,
plan, Odoo series, domains, suspended, overrides, owner, final backup on deletion), and
``.status`` what the operator last did, written through the status subresource only (its
conditions: ``saasodoo.core.conditions``).

One source: ``OdooTenantSpec`` is built from ``TenantSpec``'s fields (types, validators,
defaults, descriptions), renamed to Kubernetes' camelCase, plus the fields only a resource
has (``suspended``, ``owner``, ``finalBackup``). The CRD's structural OpenAPI schema is
generated from its JSON schema (``crd_manifest``); ``make crd`` writes it to
``saasodoo/crds/odootenants.saasodoo.dev.yaml`` and a unit test fails when the two differ.
Not in ``.spec``: ``id`` (= ``metadata.name``), ``verified_domains`` and ``created_with``
(recorded by saasodoo, never by a request).

What the API server checks itself (so ``kubectl apply`` of a bad resource is refused with
a message naming the field): the schema (types, enums, required ``adminEmail``, unknown
fields under kubectl's default ``--validate=strict``), and CEL rules
(``x-kubernetes-validations``): the tenant id grammar on ``metadata.name`` (3 to 30
characters, a DNS label starting with a letter, no ``--`` at positions 3-4) and the
transition rule that keeps ``spec.odooVersion`` fixed (a change of series is an export,
an upgrade of the database and an import). What only saasodoo checks (the operator reports
it as ``Stalled`` with reason ``InvalidSpec``): reserved ids (the list may change), the
e-mail and host name grammars, plans that exist, overrides against the chart's schema.
Both CEL rules read strings of bounded length (``metadata.name`` is a DNS subdomain,
``odooVersion`` an enum with ``maxLength``), so their cost estimate stays far below the
API server's budget.

Pure: no I/O, no client library; ``python -m saasodoo.core.crd`` prints the manifest as
YAML (what ``make crd`` writes).
"""

from __future__ import annotations

import copy
import hashlib
import re
from datetime import datetime
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from saasodoo.core.conditions import BACKUPS_LIMIT, HISTORY_LIMIT, READY, RECONCILING, STALLED
from saasodoo.core.spec import MAX_ID_LENGTH, MIN_ID_LENGTH, TenantSpec
from saasodoo.errors import FieldError, InvalidInput

GROUP = "saasodoo.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "OdooTenant"
LIST_KIND = "OdooTenantList"
PLURAL = "odootenants"
SINGULAR = "odootenant"
SHORT_NAME = "ot"
CATEGORY = "saasodoo"
#: ``metadata.name`` of the CustomResourceDefinition.
CRD_NAME = f"{PLURAL}.{GROUP}"
#: Annotation asking for a reconcile now (any new value, e.g. a timestamp); the operator
#: echoes the value it handled in ``status.lastHandledReconcileAt`` (Flux's
#: ``reconcile.fluxcd.io/requestedAt``). Annotations do not change ``metadata.generation``.
RECONCILE_REQUESTED_AT = "saasodoo.dev/reconcile-requested-at"
#: The operator's finalizer: deletion waits for the final backup and the uninstall.
FINALIZER = "saasodoo.dev/finalizer"
#: Annotation asking for one forced reconcile (an unmanaged or stalled tenant brought back
#: to its spec), echoed as ``status.lastHandledForceAt`` (Flux's ``forceAt``).
FORCE_REQUESTED_AT = "saasodoo.dev/force-requested-at"
#: Annotation an SRE sets (any new value, such as the time) to say a stalled update was
#: resolved by hand: the operator drops ``status.update`` and the ordinary reconcile goes
#: on; echoed as ``status.lastHandledUpdateResolvedAt`` (docs/updates.md).
UPDATE_RESOLVED_AT = "saasodoo.dev/update-resolved-at"
#: Label mirroring ``spec.owner`` (``owner_label``): the API lists a user's OdooTenants with
#: a label selector instead of reading every tenant of the platform. Written with the object
#: by saasodoo and kept in step by the operator (a ``kubectl apply`` or an owner changed by
#: hand is labelled in the tenant's next turn); readers still check ``spec.owner``.
OWNER_LABEL = "saasodoo.dev/owner"
#: Where the generated manifest lives in the package (``make crd`` writes it).
MANIFEST_RESOURCE = ("saasodoo.crds", f"{CRD_NAME}.yaml")

#: TenantSpec fields an OdooTenant's ``.spec`` carries, under their camelCase names.
SHARED_FIELDS = (
    "admin_email", "plan", "odoo_version", "custom_domains", "overrides",
    # The create request's personalization (issue #25 point 3), applied once at creation.
    "admin_login", "company_name", "language", "country", "timezone",
)  # fmt: skip
#: Descriptions the resource states differently from TenantSpec (what differs on a resource).
_DESCRIPTIONS = {
    "odoo_version": "Odoo series (the official image tag). Fixed once the tenant exists: a "
    "change of series is an export, an upgrade of the database (Odoo's upgrade service or "
    "OpenUpgrade) and an import into a new tenant of that series.",
    "custom_domains": "Extra host names of the tenant (canonical, each listed once). Each is "
    "routed once its owner proved control of it through DNS (saasodoo records which ones; "
    "they are not part of the spec).",
}

_ID_GRAMMAR = "^[a-z]([-a-z0-9]*[a-z0-9])?$"
#: A backup's name in storage: one path segment, a zip (backup.py names them
#: ``<UTC stamp>-<kind>.zip``; imported ones keep that form).
BACKUP_NAME_GRAMMAR = r"^[A-Za-z0-9][A-Za-z0-9._-]*\.zip$"
#: Why only a copy may expire (the API server's rule and pydantic's say the same).
EXPIRY_MESSAGE = (
    "expiresAt is only for a staging copy (copyOf): an expired tenant is deleted without a "
    "final backup"
)
#: Why a tenant cannot become, or stop being, a copy.
COPY_FIXED_MESSAGE = (
    "copyOf is set when the tenant is created and cannot be added, changed or removed "
    "(refresh a copy from its source with a request; a new source is a new copy)"
)
#: Why a tenant cannot copy itself.
SELF_COPY_MESSAGE = "a tenant cannot be a copy of itself: copyOf.tenant names the source"
#: Why an operator that does not make copies yet refuses one (it would be an empty tenant).
COPIES_NOT_MADE = (
    "this operator does not make staging copies yet (it would install an empty tenant "
    "instead of a copy of the source); delete this OdooTenant and ask again once it does"
)
#: Label on a copy's OdooTenant (and its namespace): the tenant it is a copy of, so
#: ``kubectl get ot -l saasodoo.dev/copy-of=acme`` lists acme's copies.
COPY_OF_LABEL = "saasodoo.dev/copy-of"
#: How a tenant moves to a newer Odoo series (saasodoo never changes it in place).
SERIES_PATH = (
    "export the tenant, upgrade its database with Odoo's upgrade service or OpenUpgrade, and "
    "import it into a new tenant of the newer series"
)
#: The transition rule's message (CEL): both series, and the supported path. Series compare
#: as strings ("17.0" < "18.0"), which holds for every series in ``ODOO_VERSIONS``.
SERIES_MESSAGE = (
    '"the Odoo series of a tenant cannot change in place (" + oldSelf + " to " + self + "): "'
    " + (self < oldSelf"
    ' ? "an Odoo database cannot be downgraded; keep " + oldSelf'
    ' : "to move to " + self + ", export the tenant, upgrade its database to " + self'
    " + \" with Odoo's upgrade service or OpenUpgrade, and import it into a new tenant of"
    ' series " + self)'
)


def _shared_field(name: str) -> FieldInfo:
    info = copy.copy(TenantSpec.model_fields[name])
    if name in _DESCRIPTIONS:
        info.description = _DESCRIPTIONS[name]
    return info


def _shared_validators() -> dict[str, Any]:
    """TenantSpec's field validators on the shared fields (uniqueness of custom domains,
    no host names in overrides, bounded depth), so the resource's spec is held to them too.
    Validators that read fields a resource does not carry are left out."""
    out: dict[str, Any] = {}
    decorators = TenantSpec.__pydantic_decorators__.field_validators
    for name, decorator in decorators.items():
        fields = decorator.info.fields
        if fields and all(f in SHARED_FIELDS for f in fields):
            # Bound to TenantSpec there: rebind the function to the new model.
            validator = classmethod(getattr(decorator.func, "__func__", decorator.func))
            out[name] = field_validator(*fields, mode=decorator.info.mode)(validator)
    return out


class CopySource(BaseModel):
    """Where a staging copy comes from: a tenant, and optionally one of its backups."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel)

    tenant: str = Field(
        min_length=MIN_ID_LENGTH,
        max_length=MAX_ID_LENGTH,
        pattern=_ID_GRAMMAR,
        description="Name of the OdooTenant (the tenant id) copied: its Odoo series must be "
        "this tenant's.",
    )
    backup: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=BACKUP_NAME_GRAMMAR,
        description="Name of a backup in the source's storage; absent: a fresh backup of "
        "the source, taken online (the source keeps serving).",
    )


class ResourceFields(BaseModel):
    """The fields only an OdooTenant's spec has (typed for readers of ``parse_spec``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel)

    suspended: bool = Field(
        default=False,
        description="Scale the tenant's workloads to zero and keep its data; false runs it.",
    )
    owner: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="User id of the tenant's owner (the API's ownership check); absent for a "
        "tenant no user owns.",
    )
    final_backup: bool = Field(
        default=True,
        description="On deletion, take a final backup first and keep the resource until it "
        "succeeded; false deletes without one.",
    )
    node_pool: str | None = Field(
        default=None,
        max_length=317,
        pattern=r"^([^=\s]+=[^=\s]*)?$",
        description="KEY=VALUE of the nodes the tenant runs on (labelled and tainted so), "
        "chosen at creation: '' any node; absent: the platform's SAASODOO_NODE_POOL. Fixed "
        "once set (its volumes stay where they were made; `saasodoo tenant move` moves pods).",
    )
    copy_of: CopySource | None = Field(
        default=None,
        description="Makes the tenant a staging copy of another one: created from a backup "
        "of that tenant (a fresh one taken online, or the one named), given an identity of "
        "its own (database.uuid and database.secret), neutralized (no mail, crons off, "
        "payment providers in test mode, a banner) and its own admin password and hosts. "
        "Set at creation only; refresh a copy with a request.",
    )
    expires_at: datetime | None = Field(
        default=None,
        description="When the copy is deleted by the operator, without a final backup (RFC "
        "3339). Only on a copy (copyOf); may be moved later or earlier.",
    )

    @field_validator("expires_at")
    @classmethod
    def _expiry_only_on_copies(
        cls, expires_at: datetime | None, info: ValidationInfo
    ) -> datetime | None:
        # copy_of absent from info.data: it failed its own checks (said once, there).
        if expires_at is not None and "copy_of" in info.data and info.data["copy_of"] is None:
            raise ValueError(EXPIRY_MESSAGE)
        return expires_at


_SHARED: dict[str, Any] = {
    name: (TenantSpec.model_fields[name].annotation, _shared_field(name)) for name in SHARED_FIELDS
}

#: The ``.spec`` of an OdooTenant: TenantSpec's fields (but ``id``, ``verified_domains``,
#: ``created_with``) in camelCase, with their validators, plus ``ResourceFields``; unknown
#: fields are refused. Python names are snake_case (``admin_email``, ``final_backup``).
OdooTenantSpec: type[ResourceFields] = create_model(
    "OdooTenantSpec",
    __base__=ResourceFields,
    __doc__="The desired state of one tenant; its id is the resource's metadata.name.",
    __module__=__name__,
    __validators__=_shared_validators(),
    **_SHARED,
)


class Condition(BaseModel):
    """Kubernetes' metav1.Condition: one aspect of the tenant's state."""

    model_config = ConfigDict(alias_generator=to_camel)

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Type of condition in CamelCase: Ready, Reconciling, Stalled, Released, "
        "Remediated, Drifted, BackupSucceeded.",
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation the condition was set for: a condition of an "
        "older generation says nothing about the current spec.",
    )
    last_transition_time: datetime = Field(
        description="When the condition's status last changed (not its reason or message)."
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Machine-readable CamelCase reason of the last transition.",
    )
    message: str = Field(max_length=32768, description="Human-readable details.")


class BackupStorage(BaseModel):
    """Where a tenant's backups are kept, as its backup CronJob says (no credentials)."""

    model_config = ConfigDict(alias_generator=to_camel)

    type: Literal["s3", "pvc"] = Field(
        description="s3: an S3-compatible bucket; pvc: the tenant's backup volume."
    )
    endpoint: str = Field(default="", description="s3: the endpoint URL the operator uses.")
    bucket: str = Field(default="", description="s3: the bucket.")
    prefix: str = Field(default="", description="s3: the key prefix (then <tenant id>/).")
    region: str = Field(default="", description="s3: the region of the signature.")


class StoredBackup(BaseModel):
    """A complete backup in the tenant's storage, as the operator last listed it (the API
    and the web UI read backups from here: the storage is the operator's to read)."""

    model_config = ConfigDict(alias_generator=to_camel)

    name: str = Field(description="Name of the zip in storage.")
    kind: str = Field(description="scheduled, on-demand, pre-update, final or imported.")
    time: datetime = Field(description="When it was taken (from its name).")
    odoo_version: str = Field(default="", description="The Odoo series of its database.")
    db_name: str = Field(default="", description="The database it was taken of.")
    sizes: dict[str, int] = Field(
        default_factory=dict, description="Bytes (zip, dump.sql...) and filestore counts."
    )
    dump_sha256: str | None = Field(default=None, description="SHA-256 of its dump.sql.")
    modules: int = Field(default=0, ge=0, description="Modules its manifest records.")
    tables: int = Field(default=0, ge=0, description="Tables its manifest records.")
    imported_from: str | None = Field(
        default=None, description="For an imported zip: the name of the file uploaded."
    )


class HistoryEntry(BaseModel):
    """One helm operation the operator ran on the tenant's release."""

    model_config = ConfigDict(alias_generator=to_camel)

    operation: str = Field(description="install, upgrade, rollback, uninstall, ...")
    revision: int | None = Field(default=None, ge=0, description="Helm revision it made.")
    digest: str | None = Field(default=None, description="Digest of chart version + values.")
    outcome: str = Field(description="How the reconcile that ran it ended.")
    started_at: datetime | None = Field(default=None, description="When it started.")
    finished_at: datetime = Field(description="When it ended.")
    message: str = Field(default="", description="What happened, in words.")


class LastBackup(BaseModel):
    """The tenant's last scheduled or on-demand backup (a scheduled one is named after the
    CronJob's Job)."""

    model_config = ConfigDict(alias_generator=to_camel)

    name: str = Field(description="Name of the backup in storage.")
    outcome: str = Field(description="succeeded or failed.")
    time: datetime = Field(description="When it ended.")


#: The most helm revisions ``status.releases`` keeps (newest first).
RELEASES_LIMIT = 20
#: The most custom domains ``status.domains`` reports.
DOMAINS_LIMIT = 64


class ReleaseEntry(BaseModel):
    """One revision of the tenant's release as helm's history shows it."""

    model_config = ConfigDict(alias_generator=to_camel)

    revision: int = Field(ge=1, description="Helm revision.")
    status: str = Field(description="deployed, superseded, failed, pending-upgrade, ...")
    updated: datetime | None = Field(
        default=None, description="When helm last deployed the revision."
    )
    description: str = Field(default="", max_length=1024, description="Helm's description.")
    chart: str = Field(default="", description="Chart name and version.")
    app_version: str = Field(
        default="", description="The chart's appVersion (not the tenant's Odoo series)."
    )
    odoo_series: str = Field(
        default="",
        max_length=16,
        description="The Odoo series the revision runs (its image tag's, else odoo.version), "
        "read from its values in Helm's storage record: a rollback to a revision of another "
        "series than the tenant's database is refused before any request is written.",
    )
    odoo_image: str = Field(
        default="", max_length=512, description="The Odoo image the revision runs."
    )


class DomainEntry(BaseModel):
    """One custom domain of the spec: whether it is routed, or the DNS record that proves it."""

    model_config = ConfigDict(alias_generator=to_camel)

    host: str = Field(description="The custom domain (canonical host name).")
    state: Literal["verified", "pending", "contested", "unclaimed", "taken"] = Field(
        description="verified (proven and routed), pending (claimed, waiting for its DNS "
        "proof), contested (another tenant claimed it without proof), unclaimed, or taken "
        "(another tenant proved it)."
    )
    txt_name: str | None = Field(default=None, description="TXT record that proves the host.")
    txt_value: str | None = Field(default=None, description="The value it must hold.")
    cname_target: str | None = Field(
        default=None, description="Or: the host as a CNAME of this target."
    )
    message: str = Field(default="", max_length=1024, description="The last check's outcome.")
    checked_at: datetime | None = Field(
        default=None, description="When the operator last looked for the proof in DNS."
    )
    next_check_at: datetime | None = Field(
        default=None, description="When it looks again (back-off), unless asked sooner."
    )
    failed_checks: int | None = Field(
        default=None, ge=0, description="Checks that found no proof since the last request."
    )


class CopyProgress(BaseModel):
    """A staging copy's making (``saasodoo.core.copies``: ``copy_plan``, ``copy_status``)."""

    model_config = ConfigDict(alias_generator=to_camel)

    source: str = Field(description="The tenant it is a copy of (spec.copyOf.tenant).")
    step: str = Field(
        description="backup-source, install-stopped, restore, neutralize, start; copied once "
        "its data is in place (from then on it is reconciled as any tenant), failed."
    )
    backup: str | None = Field(default=None, description="The source's backup it is made from.")
    backup_request: str | None = Field(
        default=None, description="The OdooTenantBackup of the source that took it fresh."
    )
    started_at: datetime | None = Field(default=None, description="When the copy began.")
    finished_at: datetime | None = Field(
        default=None, description="When its data was in place (or it failed)."
    )
    message: str | None = Field(default=None, description="The last step's outcome, in words.")
    failed_step: str | None = Field(default=None, description="The step that failed.")
    neutralized: dict[str, Any] | None = Field(
        default=None, description="The RESULT of odoo-init.py --neutralize (what it turned off)."
    )


class TemplateProgress(BaseModel):
    """A new tenant's template database (``saasodoo.core.templates``): the one it was made
    from (state restoring, then restored, or fell-back to ``-i base``), or the missing one
    whose build its namespace hosts (building, then built or build-failed)."""

    model_config = ConfigDict(alias_generator=to_camel)

    key: str = Field(description="The template key (its Odoo image).")
    state: str = Field(
        description="restoring, restored, fell-back; or building, built, build-failed."
    )
    backup: str | None = Field(default=None, description="The template zip restored.")
    job: str | None = Field(default=None, description="The restore or build Job.")
    started_at: datetime | None = Field(default=None, description="When its Job started.")
    finished_at: datetime | None = Field(default=None, description="When it was seen to end.")
    message: str | None = Field(default=None, description="Why it fell back, or failed.")


class UpdateChange(BaseModel):
    """Why an update alters Odoo's code (``core.updates.CodeChange.to_status``)."""

    model_config = ConfigDict(alias_generator=to_camel)

    reasons: list[str] = Field(description="image, config, modules.")
    from_image: str | None = Field(default=None, description="The Odoo image before.")
    to_image: str | None = Field(default=None, description="The Odoo image after.")
    from_chart: str | None = Field(default=None, description="The chart version before.")
    to_chart: str | None = Field(default=None, description="The chart version after.")
    target: str | None = Field(
        default=None,
        description="The Odoo code after (image, code options, modules: 16 hex digits, "
        "core.updates.code_target); a failed update's target is not started again by a "
        "later spec change that asks for the same code.",
    )


class PreviousData(BaseModel):
    """The data a restore replaced, kept by restore.py for a while (its ``RESULT``'s
    ``previous``): after a failed update, the database as ``odoo -u`` left it."""

    model_config = ConfigDict(alias_generator=to_camel)

    database: str = Field(description="The database it was renamed to (<db>_p<stamp>).")
    filestore: str | None = Field(
        default=None, description="Its filestore's folder, in the tenant's filestore volume."
    )
    kept_until: datetime | None = Field(
        default=None, description="When the next restore or the daily prune drops it."
    )


class HandRevision(BaseModel):
    """A release revision made outside an update while it ran (an SRE's helm rollback)."""

    model_config = ConfigDict(alias_generator=to_camel)

    revision: int = Field(description="The revision.")
    step: str = Field(description="The update's step when it was seen.")
    revert_from: str | None = Field(
        default=None, description="The revert step a force starts from (restore, rollback)."
    )


class UpdateProgress(BaseModel):
    """An update that runs ``odoo -u`` (``saasodoo.core.updates``, docs/updates.md): its step,
    its work, and on failure what failed, whether it was undone and the backup used."""

    model_config = ConfigDict(alias_generator=to_camel)

    step: str = Field(
        description="stop, pre-update-backup, update, rollout, signed-in-check; restore, "
        "rollback after a failure; done, or stalled."
    )
    generation: int | None = Field(default=None, description="The spec the update is for.")
    attempt: int | None = Field(default=None, description="1, then one more per force.")
    change: UpdateChange | None = Field(default=None, description="Why it runs odoo -u.")
    from_revision: int | None = Field(
        default=None, description="The release's revision before the update (the rollback's)."
    )
    step_from: int | None = Field(
        default=None, description="The revision a helm step started from."
    )
    staged_revision: int | None = Field(
        default=None, description="The revision the stop made (new code, Odoo at zero)."
    )
    head_revision: int | None = Field(
        default=None, description="The revision the update's last helm step ended on: a "
        "newer one before its next helm step was made by hand (core.updates.hand_revision).",
    )  # fmt: skip
    interrupted_by: HandRevision | None = Field(
        default=None, description="The revision made outside the update that stopped it."
    )
    backup: str | None = Field(default=None, description="The pre-update backup (its zip).")
    backup_job: str | None = Field(default=None, description="The Job that took it.")
    job: str | None = Field(default=None, description="The update Job (odoo -u).")
    work: str | None = Field(default=None, description="The step whose Job was created.")
    result: dict[str, Any] | None = Field(
        default=None, description="The RESULT of odoo-init.py --update (modules, versions)."
    )
    failed_step: str | None = Field(default=None, description="The step that failed.")
    message: str | None = Field(default=None, description="Why it failed.")
    reverted: bool | None = Field(
        default=None, description="True once the backup was restored and the release rolled "
        "back; false when that failed (Odoo stays at zero).",
    )  # fmt: skip
    previous_data: PreviousData | None = Field(
        default=None, description="What the restore of the pre-update backup replaced, kept "
        "for a while (the data as the failed update left it).",
    )  # fmt: skip
    revert_failed_step: str | None = Field(default=None, description="restore or rollback.")
    revert_message: str | None = Field(default=None, description="Why the revert failed.")
    started_at: datetime | None = Field(default=None, description="When the update began.")
    finished_at: datetime | None = Field(default=None, description="When it ended.")


class AppliedRecord(BaseModel):
    """What saasodoo's last successful operation applied."""

    digest: str = Field(description="Digest of chart version + values applied.")
    revision: int = Field(ge=0, description="The Helm revision it made.")


class OperationRecord(BaseModel):
    """The operation lock: a helm operation in flight on the tenant's release."""

    holder: str = Field(
        description="Who runs it: host:pid, or operator:<Lease identity>#<term> for the "
        "operator (a holder that stopped leaves a dead lock, which ensure recovers)."
    )
    operation: str = Field(default="", description="create, update, rollback to 3, ...")
    digest: str = Field(default="", description="Digest of what it applies.")
    expires: str = Field(description="When the lock counts as expired (helm's timeout plus a "
                         "margin), ISO 8601.")  # fmt: skip


class UnfinishedRecord(BaseModel):
    """The revision a saasodoo operation left failed or pending: saasodoo's to remediate
    (any other failed or pending revision is a hand change, left alone)."""

    revision: int = Field(ge=0, description="The Helm revision it left.")
    operation: str = Field(description="The operation that left it.")
    digest: str = Field(description="Digest of what it applied.")


class RecordStatus(BaseModel):
    """saasodoo's record of the tenant (``saasodoo.core.record``): its bookkeeping around
    helm, written by whoever runs helm on the tenant (the operator, or ``--local``) with
    merge patches of these fields alone."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    spec: str | None = Field(
        default=None,
        description="The tenant spec saasodoo last recorded (JSON text of "
        "saasodoo.core.spec.TenantSpec): what a change of .spec is applied against, with "
        "the custom domains proven through DNS (verified_domains) and what the tenant was "
        "created with (created_with). Set before an upgrade's helm call, put back when it "
        "fails.",
    )
    suspended: bool | None = Field(default=None, description="Recorded as suspended.")
    owner: str | None = Field(default=None, description="The owner saasodoo recorded.")
    applied: AppliedRecord | None = Field(
        default=None, description="What saasodoo's last successful operation applied."
    )
    failed_digest: str | None = Field(
        default=None,
        description="Digest of an upgrade that failed and was rolled back: not retried "
        "until the spec changes or a reconcile is forced.",
    )
    operation: OperationRecord | None = Field(
        default=None,
        description="The operation lock: set before helm runs, removed when its result is "
        "recorded.",
    )
    unfinished: UnfinishedRecord | None = Field(
        default=None, description="The revision saasodoo's last failed operation left."
    )


class OdooTenantStatus(BaseModel):
    """What the operator last observed and did; written through the status subresource."""

    model_config = ConfigDict(alias_generator=to_camel)

    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation the operator last reconciled."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=32,
        description="Ready (the summary), Reconciling and Stalled (present only when True), "
        "Released, Remediated, Drifted, BackupSucceeded.",
    )
    url: str | None = Field(default=None, description="Address of the tenant's Odoo.")
    revision: int | None = Field(
        default=None, ge=0, description="Helm revision the operator last applied."
    )
    chart_version: str | None = Field(default=None, description="Chart version last applied.")
    applied_digest: str | None = Field(
        default=None, description="Digest of chart version + values last applied."
    )
    last_applied_at: datetime | None = Field(
        default=None, description="When the operator last installed or upgraded the release."
    )
    last_handled_reconcile_at: str | None = Field(
        default=None,
        description=f"Value of the annotation {RECONCILE_REQUESTED_AT} the operator last handled.",
    )
    failures: int | None = Field(
        default=None, ge=0, description="Failed reconciles since the last success."
    )
    install_failures: int | None = Field(
        default=None, ge=0, description="Failed installs since the last success."
    )
    upgrade_failures: int | None = Field(
        default=None, ge=0, description="Failed upgrades since the last success."
    )
    history: list[HistoryEntry] = Field(
        default_factory=list,
        max_length=HISTORY_LIMIT,
        description=f"The operator's last {HISTORY_LIMIT} helm operations, newest first.",
    )
    last_backup: LastBackup | None = Field(default=None)
    last_successful_backup: LastBackup | None = Field(
        default=None,
        description="The last backup that succeeded (kept when a later one fails): what the "
        "age of the newest good backup is measured from.",
    )
    backups: list[StoredBackup] = Field(
        default_factory=list,
        max_length=BACKUPS_LIMIT,
        description=f"The tenant's complete backups, newest first (at most {BACKUPS_LIMIT}), "
        "as the operator last listed its storage (after each backup it runs or sees).",
    )
    backups_listed_at: datetime | None = Field(
        default=None, description="When the operator last listed the tenant's backups."
    )
    backup_storage: BackupStorage | None = Field(
        default=None,
        description="Where the listed backups are (no credentials): what the API downloads "
        "a backup from.",
    )
    last_handled_force_at: str | None = Field(
        default=None,
        description="Value of the annotation saasodoo.dev/force-requested-at the operator "
        "last handled (a forced reconcile: an unmanaged or stalled tenant brought back to its "
        "spec).",
    )
    last_handled_update_resolved_at: str | None = Field(
        default=None,
        description="Value of the annotation saasodoo.dev/update-resolved-at the operator "
        "last handled (a stalled update said resolved by hand: status.update dropped).",
    )
    inventory: list[str] = Field(
        default_factory=list,
        max_length=256,
        description="The release's Deployments, StatefulSets and Services (Kind/name) when "
        "last ready: one deleted by hand is put back by the next reconcile.",
    )
    releases: list[ReleaseEntry] = Field(
        default_factory=list,
        max_length=RELEASES_LIMIT,
        description=f"The release's helm history, newest first (at most {RELEASES_LIMIT} "
        "revisions), read when the head revision changes: what the API shows and checks a "
        "rollback against without reading helm's records.",
    )
    domains: list[DomainEntry] = Field(
        default_factory=list,
        max_length=DOMAINS_LIMIT,
        description="Each custom domain of the spec: routed, or the DNS record that proves "
        "it; the operator looks for unproven ones' records with back-off.",
    )
    copy_: CopyProgress | None = Field(
        default=None, alias="copy", description="A staging copy's making (spec.copyOf)."
    )
    template: TemplateProgress | None = Field(
        default=None,
        description="The template database it was made from, or whose build it hosts.",
    )
    update: UpdateProgress | None = Field(
        default=None,
        description="The last update that ran odoo -u (docs/updates.md): done, under way, or "
        "stalled with the backup it restored.",
    )
    record: RecordStatus | None = Field(
        default=None,
        description="saasodoo's record of the tenant: the spec it last applied, the "
        "operation lock, what it applied, a failed digest, an unfinished revision "
        "(README: who writes what).",
    )


def parse_spec(spec: Any, field: str = "spec") -> ResourceFields:
    """An OdooTenant's ``.spec`` (a dict) as an ``OdooTenantSpec``; ``InvalidInput`` naming
    each bad field as ``spec.<camelCase path>`` and its rule otherwise (unknown fields
    included). Its fields have their snake_case names (``suspended``, ``owner``,
    ``final_backup`` typed; the shared ones, ``admin_email``, ..., through ``getattr``)."""
    if not isinstance(spec, dict):
        raise InvalidInput("invalid OdooTenant", [FieldError(field, "must be an object")])
    try:
        return OdooTenantSpec.model_validate(spec)
    except ValidationError as exc:
        raise InvalidInput.from_validation("OdooTenant", exc, prefix=f"{field}.") from None


def to_tenant_spec(
    name: str,
    spec: dict[str, Any],
    *,
    verified_domains: tuple[str, ...] | list[str] = (),
    created_with: dict[str, Any] | None = None,
    copies: bool = False,
) -> TenantSpec:
    """The ``TenantSpec`` of the OdooTenant ``name`` with ``.spec`` ``spec``, plus what
    saasodoo recorded itself (``verified_domains``: kept only where still in
    ``customDomains``; ``created_with``). Bad input raises ``InvalidInput`` naming the
    resource's field (``metadata.name``, ``spec.adminEmail``, ``spec.customDomains[1]``,
    ...) and its rule; a reserved id is refused here (the CRD does not know that list).

    A staging copy (``spec.copyOf``) is refused naming ``spec.copyOf`` unless ``copies``
    (the caller makes copies: restores the source's backup into it and neutralizes it), so
    an operator that cannot make one never installs it as an empty new tenant; a copy of
    itself is refused naming ``spec.copyOf.tenant`` (the API server refuses it too)."""
    parsed = parse_spec(spec)
    source = parsed.copy_of
    if source is not None and source.tenant == name:
        raise InvalidInput("invalid OdooTenant",
                           [FieldError("spec.copyOf.tenant", SELF_COPY_MESSAGE)])  # fmt: skip
    if source is not None and not copies:
        raise InvalidInput("invalid OdooTenant", [FieldError("spec.copyOf", COPIES_NOT_MADE)])
    data = {f: getattr(parsed, f) for f in SHARED_FIELDS}
    try:
        return TenantSpec.model_validate(
            {
                "id": name,
                **data,
                "verified_domains": tuple(verified_domains),
                "created_with": created_with,
                "copy_of": source.tenant if source is not None else None,
            }
        )
    except ValidationError as exc:
        fields = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = list(err["loc"])
            head = loc[0] if loc else ""
            if head == "id":
                where = "metadata.name"
            elif head in SHARED_FIELDS:
                where = "spec." + to_camel(str(head))
            else:
                where = str(head)
            where += "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
            fields.append(FieldError(where, str(err["msg"]).removeprefix("Value error, ")))
        raise InvalidInput("invalid OdooTenant", fields) from None


def owner_label(owner: str | None) -> str | None:
    """The ``OWNER_LABEL`` value of ``owner``: the id itself when it is a valid label value
    (a Supabase user id, a UUID, is), else ``h.`` and the first 60 hex digits of its
    SHA-256 (any string the spec allows, 253 characters at most); None for no owner."""
    if not owner:
        return None
    if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?", owner):
        return owner
    return "h." + hashlib.sha256(owner.encode()).hexdigest()[:60]


def owner_labels(spec: dict[str, Any]) -> dict[str, str]:
    """The labels an OdooTenant with the spec ``spec`` (API field names) carries for its
    owner: ``{OWNER_LABEL: owner_label(...)}``, or none."""
    value = owner_label(spec.get("owner"))
    return {OWNER_LABEL: value} if value else {}


def from_tenant_spec(
    spec: TenantSpec, *, suspended: bool, owner: str | None, final_backup: bool = True
) -> dict[str, Any]:
    """The ``.spec`` dict of an OdooTenant for ``spec`` (its id goes to ``metadata.name``;
    ``verified_domains`` and ``created_with`` are not part of a resource's spec). Every
    field is present (defaults included) but ``owner`` when None."""
    model = OdooTenantSpec.model_validate(
        {
            **{to_camel(f): getattr(spec, f) for f in SHARED_FIELDS},
            "suspended": suspended,
            "owner": owner,
            "finalBackup": final_backup,
        }
    )
    out: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


# --- the CustomResourceDefinition -------------------------------------------------------

#: OpenAPI keywords a CRD's structural schema may carry that the generator passes through.
_PASSED = frozenset(
    {
        "type", "format", "description", "default", "enum", "required",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "minLength", "maxLength", "pattern", "minItems", "maxItems",
    }
)  # fmt: skip


#: Order of keys in a schema node, for a readable manifest: type and description first,
#: nested schemas last, the rest in pydantic's order.
_KEY_ORDER = {"type": 0, "description": 1, "required": 3, "properties": 4, "items": 4}


def structural_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema (``model_json_schema(by_alias=True)``) as a CRD's structural
    OpenAPI v3 schema: ``$ref`` resolved, ``Optional`` (``anyOf`` with null) reduced to its
    type (a null value is pruned by the API server, so the field is absent: its default),
    ``const`` as a one-value ``enum``, a string enum bounded by ``maxLength``, free-form
    objects (``dict[str, Any]``) as ``x-kubernetes-preserve-unknown-fields``, titles and
    ``additionalProperties: false`` dropped (Kubernetes refuses unknown fields itself).
    ``ValueError`` for a construct a structural schema cannot express (unions, ...)."""
    defs = schema.get("$defs", {})

    def convert(node: dict[str, Any]) -> dict[str, Any]:
        node = dict(node)
        if "$ref" in node:
            target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
            node = {**target, **node}
        if "anyOf" in node:
            branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
            if len(branches) != 1:
                raise ValueError(f"a structural schema cannot express the union {branches}")
            if node.get("default", 0) is None:
                del node["default"]
            return convert({**branches[0], **node})
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("title", "$defs"):
                continue
            if key == "properties":
                out[key] = {name: convert(sub) for name, sub in value.items()}
            elif key == "items":
                out[key] = convert(value)
            elif key == "additionalProperties":
                if value is True:
                    out["x-kubernetes-preserve-unknown-fields"] = True
                elif value is not False:
                    out[key] = convert(value)
            elif key == "const":
                out["enum"] = [value]
            elif key in _PASSED:
                out[key] = value
            else:
                raise ValueError(f"a structural schema cannot carry {key!r}: {node}")
        if not out.get("type"):
            if not out.get("x-kubernetes-preserve-unknown-fields"):
                out["x-kubernetes-preserve-unknown-fields"] = True  # Any: free-form
        elif out["type"] == "object" and out.get("x-kubernetes-preserve-unknown-fields"):
            out.pop("properties", None)
        if out.get("type") == "string" and "enum" in out:
            out.setdefault("maxLength", max(len(str(v)) for v in out["enum"]))
        return dict(sorted(out.items(), key=lambda item: _KEY_ORDER.get(item[0], 2)))

    return convert(schema)


def spec_schema() -> dict[str, Any]:
    """The structural schema of ``.spec``, with the transition rule on ``odooVersion``."""
    schema = structural_schema(OdooTenantSpec.model_json_schema(by_alias=True))
    # TenantSpec's fields first, in its order, then the resource's own.
    props = schema["properties"]
    first = [to_camel(f) for f in SHARED_FIELDS]
    schema["properties"] = {k: props[k] for k in [*first, *(k for k in props if k not in first)]}
    overrides = schema["properties"]["overrides"]
    overrides.setdefault("default", {})
    schema["properties"]["nodePool"]["x-kubernetes-validations"] = [
        {"rule": "self == oldSelf",
         "message": "the node pool is chosen at creation and cannot change here "
                    "(saasodoo tenant move moves a tenant's pods)"}
    ]  # fmt: skip
    schema["properties"]["copyOf"]["x-kubernetes-validations"] = [
        {"rule": "self == oldSelf", "message": COPY_FIXED_MESSAGE}
    ]
    schema["x-kubernetes-validations"] = [
        {"rule": "has(self.copyOf) == has(oldSelf.copyOf)", "message": COPY_FIXED_MESSAGE,
         "fieldPath": ".copyOf", "reason": "FieldValueInvalid"},
        {"rule": "!has(self.expiresAt) || has(self.copyOf)", "message": EXPIRY_MESSAGE,
         "fieldPath": ".expiresAt", "reason": "FieldValueInvalid"},
    ]  # fmt: skip
    schema["properties"]["odooVersion"]["x-kubernetes-validations"] = [
        {
            "rule": "self == oldSelf",
            "message": f"the Odoo series of a tenant cannot change in place: {SERIES_PATH}",
            "messageExpression": SERIES_MESSAGE,
        }
    ]
    return schema


def status_schema() -> dict[str, Any]:
    """The structural schema of ``.status`` (every field the operator writes, so the API
    server prunes none); conditions are a list-map keyed by ``type``."""
    schema = structural_schema(OdooTenantStatus.model_json_schema(by_alias=True))
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    conditions.pop("default", None)
    schema["properties"]["history"].pop("default", None)
    return schema


def name_rules() -> list[dict[str, str]]:
    """The tenant id grammar as CEL rules on ``self.metadata.name`` (at the schema's root,
    the only place ``metadata.name`` is visible), one message per rule. Reserved ids are
    not here: saasodoo refuses them (the list may change)."""
    name = "self.metadata.name"
    rules = [
        (
            f"size({name}) >= {MIN_ID_LENGTH} && size({name}) <= {MAX_ID_LENGTH}",
            f"must be {MIN_ID_LENGTH} to {MAX_ID_LENGTH} characters long",
        ),
        (
            f"{name}.matches('{_ID_GRAMMAR}')",
            "must be a DNS label (lowercase letters, digits and '-') that starts with a letter "
            "and ends with a letter or digit",
        ),
        (
            f"!{name}.matches('^..--')",
            "may not have '--' at positions 3-4 (reserved for IDN 'xn--' names)",
        ),
    ]
    return [
        {
            "rule": rule,
            "message": f"the tenant id {message}",
            "fieldPath": ".metadata.name",
            "reason": "FieldValueInvalid",
        }
        for rule, message in rules
    ]


def copy_rules() -> list[dict[str, str]]:
    """A copy cannot name itself as its source: a CEL rule at the schema's root (where
    ``metadata.name`` is visible)."""
    return [
        {
            "rule": "!has(self.spec.copyOf) || self.spec.copyOf.tenant != self.metadata.name",
            "message": SELF_COPY_MESSAGE,
            "fieldPath": ".spec.copyOf.tenant",
            "reason": "FieldValueInvalid",
        }
    ]


def printer_columns() -> list[dict[str, Any]]:
    """Columns of ``kubectl get odootenants`` (priority 1: only with ``-o wide``). The API
    server computes them for any reader asking for a Table (``row_object``): ``saasodoo
    tenant list`` reads 1,000 tenants as about 200 KiB instead of their 20-40 MiB."""

    def condition(kind: str) -> str:
        return f'.status.conditions[?(@.type=="{kind}")]'

    ready = condition(READY)
    return [
        {"name": "Plan", "type": "string", "jsonPath": ".spec.plan"},
        {"name": "Version", "type": "string", "jsonPath": ".spec.odooVersion"},
        {"name": "Ready", "type": "string", "jsonPath": f"{ready}.status"},
        {"name": "Status", "type": "string", "jsonPath": f"{ready}.message", "priority": 1},
        {"name": "URL", "type": "string", "jsonPath": ".status.url"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Revision", "type": "integer", "jsonPath": ".status.revision", "priority": 1},
        {"name": "Reconciling", "type": "string", "jsonPath": f"{condition(RECONCILING)}.status",
         "priority": 1},
        {"name": "Stalled", "type": "string", "jsonPath": f"{condition(STALLED)}.status",
         "priority": 1},
        {"name": "Observed", "type": "integer", "jsonPath": ".status.observedGeneration",
         "priority": 1, "description": "status.observedGeneration: the generation the status "
         "describes (behind metadata.generation: the operator has not handled the spec yet)"},
    ]  # fmt: skip


def row_object(columns: list[dict[str, Any]], row: dict[str, Any]) -> dict[str, Any]:
    """An OdooTenant as far as one row of its Table (``meta.k8s.io/v1`` Table with
    ``includeObject=Metadata``: ``columns`` its ``columnDefinitions``, ``row`` one of its
    ``rows``) tells it: the row's partial metadata (name, generation, deletionTimestamp,
    labels), ``spec.plan``/``odooVersion`` and a status with ``revision``, ``url``,
    ``observedGeneration`` and the conditions Ready (status, message), Reconciling and
    Stalled (status) as present. Enough for ``conditions.kstatus`` and a tenant list; not
    the Ready reason, the owner or the status' lists."""
    cells = dict(zip((c.get("name") for c in columns), row.get("cells") or [], strict=False))
    meta = dict((row.get("object") or {}).get("metadata") or {})
    meta.setdefault("name", cells.get("Name"))
    meta.pop("managedFields", None)
    conditions = [{"type": kind, "status": cells[kind]}
                  for kind in (RECONCILING, STALLED) if cells.get(kind)]  # fmt: skip
    if cells.get(READY):
        conditions.append({"type": READY, "status": cells[READY],
                           "message": cells.get("Status") or ""})  # fmt: skip
    status: dict[str, Any] = {"conditions": conditions}
    for key, column in (
        ("revision", "Revision"),
        ("url", "URL"),
        ("observedGeneration", "Observed"),
    ):
        if cells.get(column) not in (None, ""):
            status[key] = cells[column]
    spec = {key: cells[column] for key, column in (("plan", "Plan"), ("odooVersion", "Version"))
            if cells.get(column)}  # fmt: skip
    return {"metadata": meta, "spec": spec, "status": status}


def crd_manifest() -> dict[str, Any]:
    """The ``apiextensions.k8s.io/v1`` CustomResourceDefinition of ``OdooTenant``
    (``odootenants.saasodoo.dev``): namespaced, one served and stored version
    ``v1alpha1``, the status subresource, printer columns, short name ``ot`` and category
    ``saasodoo``. Deterministic: the same code gives the same dict."""
    root = {
        "type": "object",
        "description": "A tenant of saasodoo: one Odoo with its own PostgreSQL, one Helm "
        "release in the namespace tenant-<metadata.name>, reconciled by the saasodoo "
        "operator.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            # Declared so the rules' fieldPath can name it (the only metadata field a CRD's
            # schema may describe, with generateName).
            "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
            "spec": spec_schema(),
            "status": status_schema(),
        },
        "x-kubernetes-validations": [*name_rules(), *copy_rules()],
    }
    return crd_document(KIND, LIST_KIND, PLURAL, SINGULAR, SHORT_NAME, printer_columns(), root)


def crd_document(
    kind: str,
    list_kind: str,
    plural: str,
    singular: str,
    short_name: str,
    columns: list[dict[str, Any]],
    root: dict[str, Any],
) -> dict[str, Any]:
    """A CustomResourceDefinition of the group ``saasodoo.dev`` as saasodoo ships each of its
    kinds: namespaced, ``v1alpha1`` served and stored, the status subresource, printer
    ``columns``, one short name, the category ``saasodoo``, ``root`` as its schema."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "saasodoo",
                "app.kubernetes.io/part-of": "saasodoo",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": list_kind,
                "plural": plural,
                "singular": singular,
                "shortNames": [short_name],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


HEADER = (
    "# generated by make crd, do not edit (source: saasodoo/core/crd.py, "
    "python -m saasodoo.core.crd)\n"
)


def manifest_yaml() -> str:
    """The CRD as YAML with its header: the text of the committed file."""
    return HEADER + yaml.safe_dump(crd_manifest(), sort_keys=False, width=100)


if __name__ == "__main__":  # make crd
    print(manifest_yaml(), end="")
