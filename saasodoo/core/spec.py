"""What a tenant is: its id, admin, plan, Odoo version and domains, validated.

The tenant id is the subdomain (``<id>.<base domain>``) and names everything derived
from it: namespace ``tenant-<id>``, Helm release ``<id>``, object names inside the
chart. It must therefore be a DNS-1123 label short enough for the longest of those.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from saasodoo.core.domains import canonical_host
from saasodoo.core.limits import check_depth
from saasodoo.core.locales import ODOO_COUNTRIES, ODOO_LANGUAGES, timezones
from saasodoo.errors import FieldError, InvalidInput

#: Odoo series the chart supports (official image tags).
OdooVersion = Literal["17.0", "18.0", "19.0"]
ODOO_VERSIONS: tuple[str, ...] = get_args(OdooVersion)
DEFAULT_ODOO_VERSION: OdooVersion = "18.0"

#: Prefix of every tenant namespace.
NAMESPACE_PREFIX = "tenant-"
#: Label on every tenant namespace and every object of its release.
TENANT_LABEL = "saasodoo.dev/tenant"
#: The chart's component label (odoo, postgresql, backup, ...): Kubernetes' recommended label.
COMPONENT_LABEL = "app.kubernetes.io/component"
#: Label with the tenant's plan, on the namespace.
PLAN_LABEL = "saasodoo.dev/plan"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "saasodoo"

MIN_ID_LENGTH = 3
#: Names the chart derives from the id stay within each kind's own limit for any id (its
#: ``odoo-tenant.names.component`` cuts the prefix, never the suffix): Namespaces
#: (``tenant-<id>``), Services and other DNS-1123/1035 labels 63, StatefulSets 52 (the
#: ``controller-revision-hash`` label is the name plus an 11-character hash), CronJobs 52
#: (their Jobs add 11), label values 63, Helm release names 53. 30 also keeps the whole id in
#: every name but the PostgreSQL StatefulSet's at 29-30 characters
#: (tests/chart/test_names.py renders the grammar's extremes and checks each kind's rule).
MAX_ID_LENGTH = 30

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9-]{1,63})+$")

#: Subdomains a tenant may not take: they belong to the platform, to mail, or mislead.
RESERVED_IDS = frozenset(
    {
        "admin", "administrator", "api", "app", "apps", "assets", "auth", "autoconfig",
        "autodiscover", "billing", "blog", "cdn", "console", "dashboard", "default", "dev",
        "docs", "ftp", "help", "imap", "internal", "kube-system", "localhost", "login", "mail",
        "mx", "ns1", "ns2", "odoo", "pop", "pop3", "portal", "postmaster", "root", "saasodoo",
        "smtp", "stage", "staging", "static", "status", "support", "system", "test", "traefik",
        "webmail", "www",
    }
)  # fmt: skip


def validate_tenant_id(value: str) -> str:
    """The rules of a tenant id, each with its own message."""
    if not MIN_ID_LENGTH <= len(value) <= MAX_ID_LENGTH:
        raise ValueError(
            f"must be {MIN_ID_LENGTH} to {MAX_ID_LENGTH} characters long, got {len(value)}"
        )
    if not _DNS_LABEL.match(value):
        raise ValueError(
            "must be a DNS label: lowercase letters, digits and '-', starting and ending "
            "with a letter or digit"
        )
    if value[2:4] == "--":
        raise ValueError("may not have '--' at positions 3-4 (reserved for IDN 'xn--' names)")
    if value in RESERVED_IDS:
        raise ValueError(f"'{value}' is reserved")
    return value


def check_new_tenant_id(value: str) -> None:
    """The rule a new tenant's id adds to ``validate_tenant_id``: it starts with a letter,
    since it starts the names of the chart's Services, which are DNS-1035 labels (a letter
    first). Checked at creation (and ``render``), not when an existing tenant is read, so a
    tenant created before this rule can still be shown and deleted. InvalidInput naming
    ``id``."""
    if not value[:1].isascii() or not value[:1].isalpha():
        raise InvalidInput(
            "invalid tenant",
            [FieldError("id", "must start with a letter: it starts the names of the tenant's "
                        "Kubernetes Services, which are DNS-1035 labels")],
        )  # fmt: skip


def validate_hostname(value: str) -> str:
    """A host name in canonical form (``saasodoo.core.domains.canonical_host``)."""
    return canonical_host(value)


def validate_email(value: str) -> str:
    value = value.strip()
    local, _, domain = value.rpartition("@")
    candidate = f"{local}@{domain.lower()}"
    if not _EMAIL.match(candidate):
        raise ValueError("must be an e-mail address like name@example.com")
    return candidate


#: Longest company name a create request may give (characters).
MAX_COMPANY_NAME = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_company_name(value: str) -> str:
    """The name of the tenant's Odoo company (``res.company.name``), stripped: 1 to
    ``MAX_COMPANY_NAME`` characters, no control character (tab, newline)."""
    value = value.strip()
    if not 1 <= len(value) <= MAX_COMPANY_NAME:
        raise ValueError(f"must be 1 to {MAX_COMPANY_NAME} characters long, got {len(value)}")
    if _CONTROL.search(value):
        raise ValueError("may not contain control characters (tab, newline, ...)")
    return value


def validate_language(value: str) -> str:
    """An Odoo 18 language code (``res.lang.code``: ``fr_FR``, ``es_419``, ``sr@latin``)."""
    if value not in ODOO_LANGUAGES:
        raise ValueError(
            f"'{value}' is not a language code of Odoo (res.lang code, e.g. fr_FR, de_DE, "
            "pt_BR, es_419; case matters)"
        )
    return value


def validate_country(value: str) -> str:
    """An ISO 3166-1 alpha-2 country code Odoo 18 knows (``res.country.code``), upper-cased."""
    code = value.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise ValueError("must be an ISO 3166-1 alpha-2 country code (two letters, e.g. FR)")
    if code not in ODOO_COUNTRIES:
        raise ValueError(f"'{code}' is not a country code Odoo knows (ISO 3166-1 alpha-2)")
    return code


def validate_timezone(value: str) -> str:
    """An IANA time zone name (``Europe/Paris``, ``America/New_York``, ``UTC``), as Odoo's
    ``tz`` fields take it; case matters."""
    if value not in timezones():
        raise ValueError(
            f"'{value}' is not an IANA time zone name (e.g. Europe/Paris, America/New_York, "
            "UTC; case matters)"
        )
    return value


#: Chart values that make host names; never set through overrides.
HOST_VALUES = ("subdomain", "baseDomain", "customDomains")

TenantId = Annotated[str, AfterValidator(validate_tenant_id)]
Hostname = Annotated[str, AfterValidator(validate_hostname)]
Email = Annotated[str, AfterValidator(validate_email)]
CompanyName = Annotated[str, AfterValidator(validate_company_name)]
Language = Annotated[str, AfterValidator(validate_language)]
Country = Annotated[str, AfterValidator(validate_country)]
Timezone = Annotated[str, AfterValidator(validate_timezone)]
#: What a create request personalizes in the tenant's new Odoo database (TenantSpec fields).
PERSONAL_FIELDS = ("admin_login", "company_name", "language", "country", "timezone")


class TenantSpec(BaseModel):
    """A tenant as requested: everything saasodoo needs to compute its release's values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: TenantId = Field(description="Subdomain and id of the tenant.")
    admin_email: Email = Field(description="Login and e-mail of the tenant's Odoo admin.")
    admin_login: Email | None = Field(
        default=None,
        description="Login of the Odoo admin when it differs from admin_email (e-mail-like); "
        "unset: the admin e-mail. Applied when the database is created.",
    )
    company_name: CompanyName | None = Field(
        default=None,
        description="Name of the tenant's Odoo company (1 to 128 characters); unset: Odoo's "
        'default ("My Company"). Applied when the database is created.',
    )
    language: Language | None = Field(
        default=None,
        description="Odoo language code (res.lang, e.g. fr_FR) installed into the new database "
        "and set on the admin user and the company; unset: en_US only.",
    )
    country: Country | None = Field(
        default=None,
        description="ISO 3166-1 alpha-2 code of the company's country (e.g. FR); its currency "
        "becomes the company's, as Odoo's database manager does. Unset: no country.",
    )
    timezone: Timezone | None = Field(
        default=None,
        description="IANA time zone of the admin user (e.g. Europe/Paris); unset: the "
        "country's only zone if it has exactly one (as Odoo's database manager), else unset.",
    )
    plan: str = Field(default="starter", min_length=1, description="Name of a plan in values/.")
    odoo_version: OdooVersion = Field(default=DEFAULT_ODOO_VERSION)
    custom_domains: tuple[Hostname, ...] = Field(
        default=(),
        description="Extra host names of the tenant; each is routed once its owner proved "
        "control of it (see verified_domains).",
    )
    verified_domains: tuple[Hostname, ...] = Field(
        default=(),
        description="The custom domains whose control was proven through DNS; set by "
        "saasodoo's verification, never by a request. Only these are routed.",
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Chart values applied last (validated by the chart's schema).",
    )
    created_with: dict[str, Any] | None = Field(
        default=None,
        description="What the tenant was created with that cannot change in place (storage "
        "class, volume layout, placement): chart value path -> value, null where unset; "
        "recorded by saasodoo at creation, never by a request "
        "(saasodoo.core.values.CREATION_PATHS). None: not recorded yet.",
    )
    copy_of: TenantId | None = Field(
        default=None,
        description="The tenant this one is a staging copy of (an OdooTenant's "
        "spec.copyOf.tenant, fixed at creation); its values then carry tenant.copyOf and no "
        "outgoing mail (saasodoo.core.values.COPY_VALUES). None: not a copy.",
    )

    @field_validator("overrides")
    @classmethod
    def _bounded_overrides(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        return dict(check_depth(overrides, "overrides"))

    @field_validator("custom_domains")
    @classmethod
    def _unique_domains(cls, domains: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for d in domains:
            if d in seen:
                raise ValueError(f"'{d}' is listed twice")
            seen.add(d)
        return domains

    @field_validator("verified_domains")
    @classmethod
    def _verified_are_custom(
        cls, verified: tuple[str, ...], info: ValidationInfo
    ) -> tuple[str, ...]:
        # A domain dropped from custom_domains loses its verification (added again, it
        # is claimed anew and needs a new proof).
        custom = info.data.get("custom_domains") or ()
        return tuple(d for d in custom if d in set(verified))

    @field_validator("overrides")
    @classmethod
    def _no_hosts_in_overrides(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        ingress = overrides.get("ingress")
        if isinstance(ingress, dict):
            for key in HOST_VALUES:
                if key in ingress:
                    raise ValueError(
                        f"may not set ingress.{key}: a tenant's hosts come from its id, the "
                        "base domain and its verified custom_domains"
                    )
        return overrides

    @property
    def live_domains(self) -> tuple[str, ...]:
        """The custom domains routed to the tenant: the verified ones."""
        return self.verified_domains

    @property
    def namespace(self) -> str:
        return namespace_for(self.id)

    @property
    def release(self) -> str:
        return self.id

    @classmethod
    def parse(cls, data: dict[str, Any]) -> TenantSpec:
        """Validate ``data``; bad input raises ``InvalidInput`` naming each field and rule."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput.from_validation("tenant", exc) from None


def namespace_for(tenant_id: str) -> str:
    return f"{NAMESPACE_PREFIX}{tenant_id}"


def check_tenant_id(value: str) -> str:
    """Validate a bare tenant id (e.g. from a URL or CLI argument)."""
    try:
        return validate_tenant_id(value)
    except ValueError as exc:
        raise InvalidInput("invalid tenant", [FieldError("id", str(exc))]) from None
