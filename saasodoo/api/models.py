"""Request and response bodies of the HTTP API.

Requests are strict (no type coercion, unknown fields refused) so what the OpenAPI
document says is exactly what is accepted; responses are built through these models so
they match the document too. Tenant rules (id, e-mail, domains...) stay in
``saasodoo.core.spec.TenantSpec``: the request models check shapes, the spec checks rules.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from saasodoo.core.spec import MAX_ID_LENGTH, MIN_ID_LENGTH, OdooVersion

TENANT_ID_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: A backup's name, as the chart's backup.py writes it: ``<UTC stamp>-<kind>.zip``.
BACKUP_NAME_PATTERN = r"^[0-9]{8}T[0-9]{6}Z-[a-z]+(-[a-z]+)*\.zip$"
#: A container image tag (the OCI distribution spec's rule).
IMAGE_TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# -- requests ---------------------------------------------------------------------------


class Credentials(Strict):
    email: str = Field(min_length=3, max_length=320, description="E-mail address.")
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(Strict):
    refresh_token: str = Field(min_length=1, max_length=4096)


class LogoutRequest(Strict):
    refresh_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="The session's refresh token: log-out then works after the access token "
        "expired too (without it the bearer token must be valid).",
    )


class TenantCreate(Strict):
    id: str = Field(
        min_length=MIN_ID_LENGTH,
        max_length=MAX_ID_LENGTH,
        description="Subdomain and id of the tenant (a DNS label; some names are reserved).",
    )
    admin_email: str = Field(max_length=320, description="Login of the tenant's Odoo admin.")
    plan: str = Field(default="starter", min_length=1, max_length=63)
    odoo_version: OdooVersion = "18.0"
    custom_domains: list[str] = Field(default_factory=list, max_length=20)
    overrides: dict[str, Any] | None = Field(
        default=None, description="Chart values applied last. Operators only."
    )
    admin_login: str | None = Field(
        default=None, max_length=320, description="Admin login if not admin_email (e-mail-like)."
    )
    company_name: str | None = Field(
        default=None, max_length=512, description="Company name (1 to 128 characters)."
    )
    language: str | None = Field(
        default=None, max_length=16, description="Odoo language code installed, e.g. fr_FR."
    )
    country: str | None = Field(
        default=None, max_length=8, description="Company country, ISO 3166-1 alpha-2 (FR)."
    )
    timezone: str | None = Field(
        default=None, max_length=64, description="Admin's IANA time zone, e.g. Europe/Paris."
    )


class TenantUpdate(Strict):
    plan: str | None = Field(default=None, min_length=1, max_length=63)
    odoo_version: OdooVersion | None = None
    custom_domains: list[str] | None = Field(default=None, max_length=20)
    overrides: dict[str, Any] | None = Field(default=None, description="Operators only.")


class RollbackRequest(Strict):
    revision: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="Default: the previous revision."
    )


def _backup_name(what: str) -> Any:
    return Field(default=None, max_length=64, pattern=BACKUP_NAME_PATTERN, description=what)


class CopyRequest(Strict):
    """A staging copy of a tenant (README, "Staging copies"): made by the operator."""

    to: str = Field(
        min_length=MIN_ID_LENGTH,
        max_length=MAX_ID_LENGTH,
        description="Id of the new tenant, the copy (a DNS label; its hosts are its own).",
    )
    backup: str | None = _backup_name("A backup of the source to copy. Default: a fresh one.")
    plan: str | None = Field(
        default=None, min_length=1, max_length=63, description="Default: the source's plan."
    )
    expires_in: str | None = Field(
        default=None,
        max_length=16,
        description="Delete the copy (without a final backup) after this long: 7d, 12h, 90m, "
        "1d12h, at most 365 days. Default: kept until deleted.",
    )


class CopyRefreshRequest(Strict):
    """A staging copy refreshed from its source (README, "Staging copies"): by the operator."""

    backup: str | None = _backup_name("A backup of the source to copy. Default: a fresh one.")


class RestoreRequest(Strict):
    backup: str | None = _backup_name("Name of the backup to restore. Default: the newest.")
    drop_previous: bool = Field(
        default=False,
        description="Drop the data replaced by the restore (default: kept aside, renamed).",
    )


class VerifyRequest(Strict):
    backup: str | None = _backup_name("Name of the backup to verify. Default: the newest.")


def _selector() -> Any:
    return Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Kubernetes label selector narrowing the tenants (namespace labels), "
        "e.g. `saasodoo.dev/tenant=acme`. Default: every tenant.",
    )


class FleetEnsureRequest(Strict):
    force: bool = Field(
        default=False, description="Also reconcile unmanaged tenants and retry stalled digests."
    )
    selector: str | None = _selector()


class FleetUpgradeRequest(Strict):
    odoo_version: OdooVersion | None = None
    image_tag: str | None = Field(
        default=None,
        max_length=128,
        pattern=IMAGE_TAG_PATTERN,
        description="Odoo image tag, set as the override `odoo.image.tag` of every tenant.",
    )
    canaries: int = Field(
        default=1, ge=0, le=1000, description="Tenants upgraded first, one by one."
    )
    max_failures: int = Field(
        default=0, ge=0, le=100000, description="Failures tolerated before the rest are skipped."
    )
    selector: str | None = _selector()


# -- responses ----------------------------------------------------------------------------


class FieldErrorOut(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    status: Literal["error"] = "error"
    message: str
    fields: list[FieldErrorOut] | None = None


class AccountOut(BaseModel):
    id: str
    email: str | None


class SessionOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    expires_at: int
    user: AccountOut


class SignUpOut(BaseModel):
    user: AccountOut
    session: SessionOut | None = Field(
        description="null when the project asks the user to confirm the e-mail first."
    )


class MeOut(BaseModel):
    id: str
    email: str | None
    is_admin: bool


class ConditionOut(BaseModel):
    """One of the OdooTenant's conditions (Kubernetes' ``metav1.Condition``)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    observedGeneration: int | None = None
    lastTransitionTime: str


class TenantResourceOut(BaseModel):
    """A tenant as its OdooTenant shows it: the spec, and the
    status the operator wrote. The change asked for is done when ``observed_generation``
    equals ``generation`` and ``ready`` is ``True`` (``status`` ``Current``)."""

    id: str
    plan: str
    odoo_version: str
    admin_email: str
    custom_domains: list[str]
    suspended: bool
    owner: str | None
    ready: Literal["True", "False", "Unknown", ""] = Field(
        description="The Ready condition's status (empty before the operator's first word)."
    )
    reason: str = Field(description="The Ready condition's reason (Flux's vocabulary).")
    message: str = Field(description="The Ready condition's message.")
    status: Literal["Current", "InProgress", "Failed", "Terminating"] = Field(
        description="kstatus: Current (Ready for this generation), InProgress (also until "
        "the operator first reconciled it), Failed (Stalled: the operator cannot apply the "
        "spec), Terminating (being deleted)."
    )
    revision: int | None = Field(description="Helm revision the operator last applied.")
    url: str | None
    generation: int = Field(description="metadata.generation: bumped by each spec change.")
    observed_generation: int | None = Field(
        description="The generation the operator last reconciled (null before its first)."
    )
    conditions: list[ConditionOut]
    copy_of: str | None = Field(
        default=None, description="A staging copy: the tenant it was copied from."
    )
    expires_at: str | None = Field(
        default=None, description="A staging copy: when it is deleted (RFC 3339), if ever."
    )


class TenantResourceList(BaseModel):
    tenants: list[TenantResourceOut]


class TenantAccepted(BaseModel):
    """A tenant change written to its OdooTenant: follow the tenant
    at ``status_url`` until ``observed_generation == generation`` and ``ready == "True"``
    (a deletion: until it answers 404)."""

    status: Literal["accepted"] = "accepted"
    tenant: TenantResourceOut
    status_url: str


class OperationOut(BaseModel):
    """A one-shot operation's request resource: OdooTenantBackup,
    OdooTenantRestore, OdooTenantVerify, OdooTenantRollback, OdooTenantRefresh or
    OdooTenantDownload, as the operator's status shows it. Done when ``phase`` is
    ``Succeeded`` or ``Failed`` (``message`` says why)."""

    name: str = Field(description="metadata.name: `<tenant>-<operation>-<5 characters>`.")
    kind: Literal["OdooTenantBackup", "OdooTenantRestore", "OdooTenantVerify",
                  "OdooTenantRollback", "OdooTenantRefresh", "OdooTenantDownload"]  # fmt: skip
    operation: Literal["backup", "restore", "verify", "rollback", "refresh", "download"]
    tenant_id: str
    spec: dict[str, Any] = Field(
        description="What was asked besides the tenant (camelCase, as on the resource: "
        "backup, dropPrevious, discardOnFailure, revision)."
    )
    phase: Literal["Pending", "Running", "Succeeded", "Failed"] = Field(
        description="Pending (also until the operator's first word), Running, then "
        "Succeeded or Failed (final: a failed request is never retried by itself)."
    )
    reason: str = Field(description="The Ready condition's reason (e.g. TenantNotFound).")
    message: str
    created_at: str
    started_at: str | None
    completed_at: str | None
    attempts: int = Field(description="How many times the operator started it.")
    backup: str | None = Field(description="The backup taken, restored or verified.")
    revision: int | None = Field(description="The Helm revision a rollback returned to.")
    result: dict[str, Any] | None = Field(
        description="The operation's report (what the backup, restore or verification found)."
    )
    generation: int
    observed_generation: int | None
    conditions: list[ConditionOut]


class OperationAccepted(BaseModel):
    """A one-shot operation written as its request resource: follow
    it at ``status_url`` until ``phase`` is ``Succeeded`` or ``Failed``."""

    status: Literal["accepted"] = "accepted"
    operation: OperationOut
    status_url: str


class OperationList(BaseModel):
    tenant_id: str
    operations: list[OperationOut] = Field(description="Oldest first.")


class RevisionOut(BaseModel):
    revision: int
    status: str
    updated: str
    description: str
    chart: str
    app_version: str = Field(description="The chart's appVersion (not the tenant's series).")
    odoo_series: str = Field(
        default="",
        description='The Odoo series the revision runs ("" until the operator read it): a '
        "rollback to a revision of another series than the tenant's is refused (422).",
    )
    odoo_image: str = Field(default="", description="The Odoo image the revision runs.")


class HistoryOut(BaseModel):
    tenant_id: str
    revisions: list[RevisionOut]


class BackupOut(BaseModel):
    name: str
    tenant: str
    kind: str
    timestamp: str = Field(description="UTC, ISO 8601.")
    odoo_version: str
    db_name: str
    sizes: dict[str, int] = Field(description="Bytes (zip, dump.sql...) and filestore counts.")
    dump_sha256: str | None
    modules: int
    tables: int
    imported_from: str | None = Field(
        default=None, description="For an imported zip: the name of the file uploaded."
    )


class BackupList(BaseModel):
    tenant_id: str
    backups: list[BackupOut] = Field(description="Complete backups, oldest first.")


class PlanOut(BaseModel):
    name: str
    description: str


class PlansOut(BaseModel):
    plans: list[PlanOut]


class FleetResourcesOut(BaseModel):
    """The fleet: every OdooTenant, and counts by kstatus (``status``)."""

    total: int
    statuses: dict[str, int] = Field(description="Current, InProgress, Failed, Terminating.")
    tenants: list[TenantResourceOut]


class FleetRequestedOut(BaseModel):
    """The reconciles asked for. A tenant has handled the
    request once its status' ``last_handled_reconcile_at`` is ``requested_at``
    (``GET /api/tenants/<id>``: then its ``status`` says how it ended)."""

    status: Literal["accepted"] = "accepted"
    requested_at: str = Field(description="The annotation's value (UTC, ISO 8601).")
    force: bool
    tenants: list[str] = Field(description="The OdooTenants asked, by id.")


class DomainVerifyRequest(Strict):
    domain: str = Field(
        min_length=1, max_length=300, description="One of the tenant's custom domains."
    )


class DomainRecordOut(BaseModel):
    txt_name: str = Field(description="Create a TXT record with this name...")
    txt_value: str = Field(description="...holding this value,")
    cname_target: str = Field(description="or make the domain a CNAME of this host.")


class DomainOut(BaseModel):
    host: str = Field(description="The custom domain, canonical (lower case, punycode).")
    state: Literal["verified", "pending", "contested", "unclaimed", "taken"] = Field(
        description="verified: routed to the tenant; pending: claimed, waiting for the DNS "
        "proof; contested: another tenant claims it without proof, the tenant's proof wins "
        "it; unclaimed: claimed on the next change; taken: another tenant proved it."
    )
    record: DomainRecordOut | None = Field(
        description="The DNS record that proves control (null when taken)."
    )
    message: str | None = Field(
        default=None, description="What the operator's last DNS check found."
    )
    checked_at: str | None = Field(
        default=None, description="When the operator last looked (UTC, ISO 8601)."
    )
    next_check_at: str | None = Field(
        default=None,
        description="When the operator looks again unless asked sooner (UTC, "
        "ISO 8601; back-off from one minute to an hour).",
    )


class DomainList(BaseModel):
    tenant_id: str
    domains: list[DomainOut]


class LeaderOut(BaseModel):
    """Whether an operator leads: the holder of its Lease, renewed within its duration. While
    none leads, changes are recorded (202) and wait for one."""

    leading: bool
    holder: str | None = Field(description="The Lease's holder (a pod's name), if any.")
    message: str = Field(description="What was found, or why it is not known.")


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    auth_mode: Literal["supabase", "local"]
    operator: LeaderOut = Field(
        description='As last read (at most ~10 s old; never waited for): "not known yet" '
        "right after start."
    )


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    Credentials,
    RefreshRequest,
    LogoutRequest,
    TenantCreate,
    TenantUpdate,
    RollbackRequest,
    RestoreRequest,
    VerifyRequest,
    FleetEnsureRequest,
    FleetUpgradeRequest,
    DomainVerifyRequest,
)
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    ErrorOut,
    SessionOut,
    SignUpOut,
    MeOut,
    TenantResourceOut,
    TenantResourceList,
    TenantAccepted,
    OperationOut,
    OperationAccepted,
    OperationList,
    HistoryOut,
    BackupList,
    PlansOut,
    DomainList,
    HealthOut,
)
