"""A tenant's final Helm values: chart defaults < base < plan < tenant < overrides.

Chart defaults are applied by Helm itself; this module merges the rest the way Helm
merges values files (maps merge key by key, lists and scalars replace, ``null``
removes a key), so what ``helm get values`` shows is exactly what was computed here.
No secret is ever part of the values: the admin password lives in a Secret that the
values only name.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from saasodoo.core.plans import Catalog
from saasodoo.core.spec import PERSONAL_FIELDS, TenantSpec
from saasodoo.errors import FieldError, InvalidInput

#: Secret (in the tenant namespace) holding the admin password of a new database,
#: created by saasodoo before the first install and referenced by name in the values.
ADMIN_SECRET_NAME = "saasodoo-admin"
ADMIN_SECRET_KEY = "admin-password"

#: Backups start inside this window (UTC hours, end exclusive), spread over tenants.
BACKUP_WINDOW_HOURS = (1, 5)


@dataclass(frozen=True)
class Platform:
    """Facts about the platform every tenant shares (from Settings)."""

    base_domain: str
    ingress_class: str = "traefik"
    storage_class: str = ""
    #: ``KEY=VALUE``: every tenant pod selects nodes labelled so and tolerates the taint of the
    #: same key and value (effect NoSchedule): a dedicated node pool. Empty: any node.
    node_pool: str = ""


def node_pool_values(node_pool: str) -> dict[str, Any]:
    """nodeSelector + toleration of a dedicated pool ``KEY=VALUE`` (labelled and tainted so)."""
    if not node_pool:
        return {}
    key, _, value = node_pool.partition("=")
    return {
        "nodeSelector": {key: value},
        "tolerations": [{"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"}],
    }


def helm_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into ``base`` as Helm merges values files (new dict, inputs untouched)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def get_path(values: dict[str, Any], dotted: str) -> Any:
    """``values['a']['b']`` for ``'a.b'``; None when any part is missing."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


#: The odoo-tenant chart's defaults of ``backup.s3`` that values may leave out
#: (charts/odoo-tenant/values.yaml; a unit test keeps them equal).
S3_CHART_DEFAULTS = {"prefix": "saasodoo", "region": "us-east-1"}


def backup_storage(values: dict[str, Any]) -> dict[str, str]:
    """Where a tenant with these values keeps its backups, without credentials, in the form
    of an OdooTenant's ``status.backupStorage``: ``{"type": "s3", "endpoint", "bucket",
    "prefix", "region"}`` or ``{"type": "pvc"}`` (the chart's default storage)."""
    if get_path(values, "backup.storage") != "s3":
        return {"type": "pvc"}
    s3 = get_path(values, "backup.s3") or {}
    return {
        "type": "s3",
        "endpoint": str(s3.get("endpoint") or ""),
        "bucket": str(s3.get("bucket") or ""),
        "prefix": str(s3.get("prefix", S3_CHART_DEFAULTS["prefix"]) or ""),
        "region": str(s3.get("region") or S3_CHART_DEFAULTS["region"]),
    }


def backup_schedule(tenant_id: str) -> str:
    """A cron schedule in the backup window, stable per tenant and spread across tenants."""
    start, end = BACKUP_WINDOW_HOURS
    slot = int.from_bytes(hashlib.sha256(tenant_id.encode()).digest()[:4], "big")
    minutes = slot % ((end - start) * 60)
    return f"{minutes % 60} {start + minutes // 60} * * *"


def spec_record(spec: TenantSpec) -> dict[str, Any]:
    """The spec as it rides in the values (``tenant.spec``): without its creation facts,
    without ``copy_of`` unless it is a copy, and without the personalization fields
    (``PERSONAL_FIELDS``) left unset (so the values of every other tenant, and
    their digest, stay as they were)."""
    exclude = {"created_with"} | ({"copy_of"} if spec.copy_of is None else set())
    # The create request's personalization only where given: the same reason.
    exclude |= {name for name in PERSONAL_FIELDS if getattr(spec, name) is None}
    out: dict[str, Any] = spec.model_dump(mode="json", exclude=exclude)
    return out


def copy_values(source: str) -> dict[str, Any]:
    """What a staging copy of ``source`` always has, whatever its plan and overrides say:
    ``tenant.copyOf`` (its web pods neutralize a database not yet neutralized as this copy)
    and no outgoing mail (no SMTP relay, no SMTP egress; the chart refuses them on a copy)."""
    return {
        "tenant": {"copyOf": source},
        "odoo": {"smtp": {"enabled": False}},
        "networkPolicy": {"egress": {"smtp": {"enabled": False}}},
    }


def personal_values(spec: TenantSpec) -> dict[str, Any]:
    """The chart values of the create request's personalization (``PERSONAL_FIELDS``), only
    those set: ``odoo.admin.login``, ``odoo.language``, ``odoo.company.name`` and
    ``.country``, ``odoo.timezone`` (the web pod's odoo-init applies them to a new database)."""
    odoo: dict[str, Any] = {}
    if spec.admin_login is not None:
        odoo["admin"] = {"login": spec.admin_login}
    if spec.language is not None:
        odoo["language"] = spec.language
    company = {k: v for k, v in (("name", spec.company_name), ("country", spec.country)) if v}
    if company:
        odoo["company"] = company
    if spec.timezone is not None:
        odoo["timezone"] = spec.timezone
    return {"odoo": odoo} if odoo else {}


def tenant_values(spec: TenantSpec, platform: Platform) -> dict[str, Any]:
    """The values that follow from the tenant spec itself."""
    storage: dict[str, Any] = {}
    if platform.storage_class:
        storage = {"storageClass": platform.storage_class}
    return helm_merge(base_tenant_values(spec, platform, storage), personal_values(spec))


def base_tenant_values(
    spec: TenantSpec, platform: Platform, storage: dict[str, Any]
) -> dict[str, Any]:
    """``tenant_values`` but the personalization."""
    return {
        **node_pool_values(platform.node_pool),
        # The spec rides along in every revision: a rollback knows what it returns to (its
        # creation facts are the tenant's, whatever the revision: not repeated there).
        "tenant": {"id": spec.id, "spec": spec_record(spec)},
        "odoo": {
            "version": spec.odoo_version,
            "admin": {
                "email": spec.admin_email,
                "existingSecret": ADMIN_SECRET_NAME,
                "existingSecretKey": ADMIN_SECRET_KEY,
            },
            "persistence": dict(storage),
        },
        "postgresql": {"persistence": dict(storage)},
        "backup": {"persistence": dict(storage)},
        "ingress": {
            "className": platform.ingress_class,
            "subdomain": spec.id,
            "baseDomain": platform.base_domain,
            # Only the custom domains whose owner proved control are routed.
            "customDomains": list(spec.live_domains),
        },
    }


@dataclass(frozen=True)
class TenantValues:
    """The computed values of one tenant and the layers they came from."""

    values: dict[str, Any]

    def digest(self, chart_version: str) -> str:
        """Identifies chart version + values: equal digests mean nothing to do."""
        doc = json.dumps({"chart": chart_version, "values": self.values}, sort_keys=True)
        return hashlib.sha256(doc.encode()).hexdigest()


#: Where a templated create puts the template key (the chart's ``odoo.dbInit.template.key``).
TEMPLATE_KEY_PATH = "odoo.dbInit.template.key"


def template_values(key: str) -> dict[str, Any]:
    """The values of a tenant made from the template ``key`` (``core.templates``): its web
    pod waits for the template's restore instead of running ``-i base``."""
    return {"odoo": {"dbInit": {"template": {"key": key}}}}


#: Values a tenant keeps from its creation, because Kubernetes cannot change them in place
#: or the tenant's data depends on them: the volumes' StorageClass and access modes (a PVC's
#: ``storageClassName`` and ``accessModes`` are immutable), which volumes exist (the backup
#: PVC or an emptyDir, the chart's PostgreSQL or an external one, an existing filestore
#: claim) and the placement (``nodeSelector``/``tolerations``: node-local volumes stay on
#: their node). They come from platform settings (``SAASODOO_STORAGE_CLASS``,
#: ``SAASODOO_NODE_POOL``) and platform files (``values/base.yaml``, the plans); a change of
#: those applies to new tenants only. ``TenantSpec.created_with`` records them.
CREATION_PATHS = (
    "nodeSelector",
    "tolerations",
    "odoo.persistence.storageClass",
    "odoo.persistence.accessModes",
    "odoo.persistence.existingClaim",
    "postgresql.enabled",
    "postgresql.persistence.storageClass",
    "backup.persistence.enabled",
    "backup.persistence.storageClass",
    # The template a tenant was made from (its web pod waits for that restore while its
    # database is new): kept so that a later upgrade does not change the pods for nothing.
    TEMPLATE_KEY_PATH,
)

#: Creation facts recorded only when set (``creation_facts``).
OPTIONAL_FACTS = (TEMPLATE_KEY_PATH,)


def creation_facts(values: dict[str, Any]) -> dict[str, Any]:
    """What ``values`` (a tenant's computed or deployed values) fix at creation: dotted path
    -> value for every ``CREATION_PATHS`` entry, None where the values leave it to the
    chart's default (so that a default set on the platform later is not applied either);
    the template key only when set (``OPTIONAL_FACTS``: a tenant made without one has no
    such value, and gets none later)."""
    facts = {path: copy.deepcopy(get_path(values, path)) for path in CREATION_PATHS}
    return {p: v for p, v in facts.items() if v is not None or p not in OPTIONAL_FACTS}


def with_creation_facts(values: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """``values`` with ``facts`` (from ``creation_facts``) put back: each path set to its
    recorded value, or removed where it was unset."""
    overlay: dict[str, Any] = {}
    for path, value in facts.items():
        if path not in CREATION_PATHS:
            continue
        node = overlay
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = copy.deepcopy(value)
    return helm_merge(values, overlay)


def compute_values(spec: TenantSpec, catalog: Catalog, platform: Platform) -> TenantValues:
    """base < plan < tenant < creation facts < overrides (< ``copy_values`` for a staging
    copy); raises InvalidInput for an unknown
    plan. The creation facts (``spec.created_with``) replace what the platform's settings say
    now; a spec without them (a new tenant) takes the platform's."""
    plan = catalog.plan(spec.plan)
    merged = helm_merge(catalog.base, plan.values)
    derived = tenant_values(spec, platform)
    if get_path(merged, "backup.schedule") is None:
        derived["backup"]["schedule"] = backup_schedule(spec.id)
    merged = helm_merge(merged, derived)
    if spec.created_with is not None:
        merged = with_creation_facts(merged, spec.created_with)
    merged = helm_merge(merged, spec.overrides)
    if spec.copy_of is not None:  # last: no override turns a copy's mail back on
        merged = helm_merge(merged, copy_values(spec.copy_of))
    return TenantValues(values=_prune_empty(merged))


def _prune_empty(values: dict[str, Any]) -> dict[str, Any]:
    """Drop empty maps the layers left behind (they would only clutter `helm get values`)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _prune_empty(value)
            if not value:
                continue
        out[key] = value
    return out


#: Where the chart takes each volume's size from, by the PVC's component label.
VOLUME_SIZE_KEYS = {
    "odoo": "odoo.persistence.size",
    "postgresql": "postgresql.persistence.size",
    "backup": "backup.persistence.size",
}


def shrinking_claims(target: dict[str, tuple[str, str]], current: dict[str, str]) -> list[str]:
    """PVCs that a revision would make smaller than they are (Kubernetes refuses that).

    ``target``: name -> (component, size) of the PVCs in the revision's manifest;
    ``current``: name -> size requested now.
    """
    return sorted(
        name
        for name, (_, size) in target.items()
        if name in current and parse_size(size) < parse_size(current[name])
    )


def floor_volume_sizes(
    values: dict[str, Any], target: dict[str, tuple[str, str]], current: dict[str, str]
) -> dict[str, Any]:
    """``values`` with every volume that would shrink kept at its current size."""
    floors: dict[str, Any] = {}
    for name in shrinking_claims(target, current):
        key = VOLUME_SIZE_KEYS.get(target[name][0])
        if key is None:
            continue
        node = floors
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = current[name]
    if not floors:
        return values
    # The quota must still admit the volumes as they are.
    sizes = {name: size for name, (_, size) in target.items()}
    sizes.update({name: current[name] for name in shrinking_claims(target, current)})
    total = sum(parse_size(size) for size in sizes.values())
    hard = get_path(values, "quota.hard")
    quota = hard.get("requests.storage") if isinstance(hard, dict) else None
    if quota is None or parse_size(str(quota)) < total:
        floors["quota"] = {"hard": {"requests.storage": f"{-(-total // 2**30)}Gi"}}
    return helm_merge(values, floors)


_UNITS = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
}  # fmt: skip


def parse_size(quantity: str) -> int:
    """Bytes of a Kubernetes storage quantity such as ``5Gi`` or ``500M``."""
    text = str(quantity).strip()
    number = text.rstrip("kMGTPEi")
    unit = text[len(number) :]
    if unit not in _UNITS or not number:
        raise ValueError(f"not a storage quantity: {quantity!r}")
    return int(float(number) * _UNITS[unit])


#: Exponents of the quantity suffixes (``k``/``Ki`` is 1, ``M``/``Mi`` 2, ...; ``m`` -1).
_QUANTITY_EXPONENTS = {"n": -3, "u": -2, "m": -1, "k": 1, "K": 1, "M": 2, "G": 3, "T": 4,
                       "P": 5, "E": 6}  # fmt: skip


def parse_quantity(quantity: str | int | float | Decimal) -> Decimal:
    """The exact value of a Kubernetes quantity: ``250m`` is 0.25, ``1Gi`` 1073741824,
    ``2k`` 2000 (decimal SI suffixes n u m k M G T P E, binary Ki Mi Gi Ti Pi Ei; ``1e3``
    forms are read as numbers). ValueError for anything else (``1ki``, ``1KiB``, ``x``,
    ``1_000``)."""
    if isinstance(quantity, (int, float, Decimal)):
        return Decimal(quantity)
    text = str(quantity).strip()
    number, base, suffix = text, 1000, ""
    if len(text) >= 2 and text[-1] == "i" and text[-2] in "KMGTPE":
        number, base, suffix = text[:-2], 1024, text[-2]
    elif text and text[-1] in _QUANTITY_EXPONENTS:
        number, suffix = text[:-1], text[-1]
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}") from None
    if not value.is_finite() or "_" in number or number != number.strip():
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    if not suffix:
        return value
    return value * Decimal(base) ** _QUANTITY_EXPONENTS[suffix]


#: Why ``odoo.config.workers`` may not be 1 (the chart's _validate.tpl says the same).
ONE_WORKER_REASON = (
    'Odoo prints no PDF report with a single HTTP worker (its web client refuses: "You need '
    "to start Odoo with at least two workers\"; wkhtmltopdf fetches the report's assets from "
    "the same server while that worker waits for it: odoo/odoo#199880); use 0 (threaded) or 2 "
    "or more"
)


def check_values(values: dict[str, Any]) -> None:
    """Rules across the final values that the chart's schema cannot say with a reason (the
    chart's ``_validate.tpl`` refuses the same at render time): ``odoo.config.workers`` is 0
    (threaded) or at least 2. Raises InvalidInput naming the field and the rule."""
    if get_path(values, "odoo.config.workers") == 1:
        raise InvalidInput(
            "the values break a rule of the chart",
            [FieldError("values.odoo.config.workers", f"1 is refused: {ONE_WORKER_REASON}")],
        )


def validate_against_schema(
    schema: dict[str, Any], chart_defaults: dict[str, Any], values: dict[str, Any]
) -> None:
    """Check ``values`` over the chart's defaults against its values.schema.json, as helm
    does before rendering; raises InvalidInput naming each offending value."""
    import jsonschema  # here: listing and status never validate, and the import is slow

    merged = helm_merge(chart_defaults, values)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path))
    if errors:
        fields = [
            FieldError("values." + ".".join(str(p) for p in e.absolute_path) if e.absolute_path
                       else "values", e.message)
            for e in errors
        ]  # fmt: skip
        raise InvalidInput("the values do not match the chart's schema", fields)
