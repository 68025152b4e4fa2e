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
from typing import Any

from saasodoo.core.plans import Catalog
from saasodoo.core.spec import TenantSpec

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


def backup_schedule(tenant_id: str) -> str:
    """A cron schedule in the backup window, stable per tenant and spread across tenants."""
    start, end = BACKUP_WINDOW_HOURS
    slot = int.from_bytes(hashlib.sha256(tenant_id.encode()).digest()[:4], "big")
    minutes = slot % ((end - start) * 60)
    return f"{minutes % 60} {start + minutes // 60} * * *"


def tenant_values(spec: TenantSpec, platform: Platform) -> dict[str, Any]:
    """The values that follow from the tenant spec itself."""
    storage: dict[str, Any] = {}
    if platform.storage_class:
        storage = {"storageClass": platform.storage_class}
    return {
        "tenant": {"id": spec.id},
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
            "customDomains": list(spec.custom_domains),
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


def compute_values(spec: TenantSpec, catalog: Catalog, platform: Platform) -> TenantValues:
    """base < plan < tenant < overrides; raises InvalidInput for an unknown plan."""
    plan = catalog.plan(spec.plan)
    merged = helm_merge(catalog.base, plan.values)
    derived = tenant_values(spec, platform)
    if get_path(merged, "backup.schedule") is None:
        derived["backup"]["schedule"] = backup_schedule(spec.id)
    merged = helm_merge(merged, derived)
    merged = helm_merge(merged, spec.overrides)
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
