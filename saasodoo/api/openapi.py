"""The OpenAPI 3.1 document of the API, built from the same pydantic models the routes use.

Request schemas come from the strict request models (what the routes accept) and response
schemas from the response models (what the routes return), so the document cannot drift
from the code without the schemathesis test noticing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from saasodoo import __version__
from saasodoo.api import models as m
from saasodoo.core.spec import MAX_ID_LENGTH, MIN_ID_LENGTH

REF = "#/components/schemas/{model}"

ERRORS = {
    400: "The body is not valid JSON (or not valid multipart/form-data).",
    401: "Missing, invalid or expired bearer token, or wrong credentials.",
    403: "Not allowed (operators only, e-mail not confirmed, sign-up disabled).",
    404: "No such tenant, revision, backup or operation (or not the caller's).",
    409: "Clashes with the current state (exists already, no revision to roll back to, a "
    "backup volume the API cannot read, a fleet upgrade: run the CLI).",
    410: "Gone for good: the API keeps no jobs (follow the tenant or the operation).",
    413: "The body is too large (an import: larger than SAASODOO_API_IMPORT_MAX_BYTES).",
    415: "A body with another Content-Type than application/json.",
    422: "Invalid input; `fields` names each invalid field.",
    429: "Too many requests (to the auth server, or past a per-user limit): see Retry-After.",
    501: "Not available through the API (what its account may not read: pod metrics, nodes).",
    502: "Helm (rendering the chart for a check) or the backup storage failed.",
    503: "The cluster or the auth server is unavailable; retry later.",
}
#: A tenant change: the tenant's OdooTenant to follow.
TENANT_CHANGE = m.TenantAccepted
#: A one-shot operation: its request resource to follow.
OPERATION = m.OperationAccepted
AUTHED = (401, 503)
WITH_BODY = (400, 413, 422)
TENANT = (404, 422, 502)
CHANGE = (409,)


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    tag: str
    #: The success code and its body: one model, or several (``anyOf``), or None; no
    #: success at all (a route that only refuses, kept to say why): None.
    ok: tuple[int, type[BaseModel] | tuple[type[BaseModel], ...] | None] | None
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    authed: bool = True
    query: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    body_required: bool = True
    #: A request body that is not JSON: the OpenAPI ``content`` map itself.
    content: dict[str, Any] | None = None
    #: A success answer that is not JSON: its OpenAPI ``content`` map.
    ok_content: dict[str, Any] | None = None


KEEP_VOLUMES = {
    "name": "keep_volumes",
    "in": "query",
    "required": False,
    "description": "Keep the tenant's PersistentVolumes (Retain).",
    "schema": {"type": "string", "enum": ["true", "false"]},
}

FINAL_BACKUP = {
    "name": "final_backup",
    "in": "query",
    "required": False,
    "description": "Take a final backup first, proven readable and kept outside the tenant "
    "(default true); `false` deletes without one.",
    "schema": {"type": "string", "enum": ["true", "false"]},
}

DROP_PREVIOUS = {
    "name": "drop_previous",
    "in": "query",
    "required": False,
    "description": "Drop the data replaced by the import (kept aside by default).",
    "schema": {"type": "string", "enum": ["true", "false"]},
}
MOVED = {
    "name": "moved",
    "in": "query",
    "required": False,
    "description": "The database moves here (it no longer runs where it came from): keep its "
    "`database.uuid` and `database.secret`. By default an import is a copy and gets new ones.",
    "schema": {"type": "string", "enum": ["true", "false"]},
}
FILENAME = {
    "name": "filename",
    "in": "query",
    "required": False,
    "description": "The zip's file name, for a raw body (recorded as `imported_from`).",
    "schema": {"type": "string", "maxLength": 200},
}
ZIP_BINARY = {"type": "string", "format": "binary", "contentMediaType": "application/zip"}
IMPORT_BODY = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"zip": ZIP_BINARY},
            "required": ["zip"],
        },
    },
    "application/zip": {"schema": ZIP_BINARY},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}

OPERATIONS = (
    Op("get", "/api/health", "Liveness, auth mode, and whether an operator leads", "meta",
       (200, m.HealthOut), authed=False),
    Op("get", "/api/openapi.json", "This document", "meta", (200, None), authed=False),
    Op("get", "/api/plans", "Plans a tenant can have", "meta", (200, m.PlansOut)),
    Op("get", "/api/jobs/{job_id}", "Gone: the API keeps no jobs (410 says where to look)",
       "meta", None, (410,), authed=False),
    Op(
        "post", "/api/auth/register", "Create an account", "auth", (201, m.SignUpOut),
        (*WITH_BODY, 403, 409, 429, 503), m.Credentials, authed=False,
    ),
    Op(
        "post", "/api/auth/login", "Log in with e-mail and password", "auth",
        (200, m.SessionOut), (*WITH_BODY, 401, 403, 429, 503), m.Credentials, authed=False,
    ),
    Op(
        "post", "/api/auth/refresh", "New tokens from a refresh token", "auth",
        (200, m.SessionOut), (*WITH_BODY, 401, 429, 503), m.RefreshRequest, authed=False,
    ),
    Op(
        "post", "/api/auth/logout",
        "End every session of the user at the auth server (expired access token: send the "
        "refresh token in the body)", "auth", (204, None), (*WITH_BODY, 503),
        m.LogoutRequest, body_required=False,
    ),
    Op("get", "/api/auth/me", "The current user", "auth", (200, m.MeOut)),
    Op("get", "/api/tenants", "The caller's tenants (operators: all)", "tenants",
       (200, m.TenantResourceList)),
    Op(
        "post", "/api/tenants", "Create a tenant owned by the caller", "tenants",
        (202, TENANT_CHANGE), (*WITH_BODY, *CHANGE, 502), m.TenantCreate,
    ),
    Op("get", "/api/tenants/{tenant_id}", "One tenant", "tenants",
       (200, m.TenantResourceOut), TENANT),
    Op(
        "patch", "/api/tenants/{tenant_id}", "Change plan or configuration", "tenants",
        (202, TENANT_CHANGE), (*WITH_BODY, *TENANT, *CHANGE), m.TenantUpdate,
    ),
    Op(
        "delete", "/api/tenants/{tenant_id}", "Delete a tenant and its data", "tenants",
        (202, TENANT_CHANGE), (*TENANT, *CHANGE), query=(KEEP_VOLUMES, FINAL_BACKUP),
    ),
    Op(
        "post", "/api/tenants/{tenant_id}/suspend", "Stop Odoo, keep the data", "tenants",
        (202, TENANT_CHANGE), (*TENANT, *CHANGE),
    ),
    Op(
        "post", "/api/tenants/{tenant_id}/resume", "Start a suspended tenant", "tenants",
        (202, TENANT_CHANGE), (*TENANT, *CHANGE),
    ),
    Op(
        "get", "/api/tenants/{tenant_id}/history", "Release revisions", "tenants",
        (200, m.HistoryOut), TENANT,
    ),
    Op(
        "post", "/api/tenants/{tenant_id}/rollback", "Roll back to a revision", "tenants",
        (202, OPERATION), (*WITH_BODY, *TENANT, *CHANGE), m.RollbackRequest,
        body_required=False,
    ),
    Op(
        "get", "/api/tenants/{tenant_id}/operations",
        "The tenant's one-shot operation requests, oldest first", "tenants",
        (200, m.OperationList), TENANT,
    ),
    Op(
        "get", "/api/operations/{name}",
        "A one-shot operation's request resource", "meta",
        (200, m.OperationOut), (404, 422),
    ),
    Op(
        "post", "/api/tenants/{tenant_id}/copy",
        "Make a staging copy (a new tenant from a backup, neutralized)", "tenants",
        (202, m.TenantAccepted), (*WITH_BODY, *TENANT, *CHANGE),
        m.CopyRequest,
    ),
    Op(
        "post", "/api/tenants/{tenant_id}/refresh",
        "Refresh a staging copy from its source (a fresh backup of it restored into the copy, "
        "neutralized; 422 for a tenant that is no copy)",
        "tenants", (202, OPERATION), (*WITH_BODY, *TENANT, *CHANGE), m.CopyRefreshRequest,
        body_required=False,
    ),
    Op(
        "get", "/api/tenants/{tenant_id}/backups", "Complete backups, from their manifests",
        "backups", (200, m.BackupList), TENANT,
    ),
    Op(
        "get", "/api/tenants/{tenant_id}/backups/{backup}",
        "Download a backup zip (one listed: from S3 storage, or from a backup volume "
        "through the operator's reader pod; 429 while this server streams its most)",
        "backups", (200, None),
        (*TENANT, *CHANGE, 429),
        ok_content={"application/zip": {"schema": {"type": "string",
                                                   "contentMediaType": "application/zip"}}},
    ),
    Op(
        "post", "/api/tenants/{tenant_id}/backups", "Back up now (on-demand)", "backups",
        (202, OPERATION), (*TENANT, *CHANGE),
    ),
    Op(
        "post", "/api/tenants/{tenant_id}/backups/restore",
        "Restore a backup (default: the newest); Odoo stops meanwhile", "backups",
        (202, OPERATION), (*WITH_BODY, *TENANT, *CHANGE), m.RestoreRequest,
        body_required=False,
    ),
    Op(
        "post", "/api/tenants/{tenant_id}/backups/verify",
        "Restore a backup into a scratch database and check it", "backups",
        (202, OPERATION), (*WITH_BODY, *TENANT, *CHANGE), m.VerifyRequest,
        body_required=False,
    ),
    Op(
        "post", "/api/tenants/{tenant_id}/backups/import",
        "Upload a backup zip (Odoo's database manager or another host) and import it; "
        "Odoo stops meanwhile", "backups",
        (202, OPERATION), (*WITH_BODY, *TENANT, *CHANGE), content=IMPORT_BODY,
        query=(DROP_PREVIOUS, MOVED, FILENAME),
    ),
    Op(
        "get", "/api/tenants/{tenant_id}/usage", "CPU and memory: not available through the "
        "API (501: it reads no pod metrics)", "tenants", None, (*TENANT, 501),
    ),
    Op(
        "get", "/api/tenants/{tenant_id}/domains",
        "Custom domains: verified (routed) or pending, with the DNS record to create",
        "tenants", (200, m.DomainList), TENANT,
    ),
    Op(
        "post", "/api/tenants/{tenant_id}/domains/verify",
        "Ask for the check of a custom domain's DNS proof (a reconcile asked of the "
        "OdooTenant: routed once found; the tenant returned, the states in GET domains); "
        "per-user limit: 429",
        "tenants", (202, TENANT_CHANGE), (*WITH_BODY, *TENANT, *CHANGE, 429),
        m.DomainVerifyRequest,
    ),
    Op("get", "/api/admin/fleet", "Every tenant and kstatus counts", "admin",
       (200, m.FleetResourcesOut), (403,)),
    Op(
        "post", "/api/admin/fleet/ensure",
        "Reconcile every (selected) tenant with its spec (a reconcile asked of each "
        "OdooTenant)",
        "admin", (202, m.FleetRequestedOut), (*WITH_BODY, 403),
        m.FleetEnsureRequest, body_required=False,
    ),
    Op(
        "post", "/api/admin/fleet/upgrade",
        "Refused: a fleet upgrade (waves followed until Ready) is run by "
        "`saasodoo fleet upgrade`; 409 says so, 422 when nothing is asked",
        "admin", None, (*WITH_BODY, 403, 409), m.FleetUpgradeRequest,
    ),
    Op("get", "/api/admin/distribution", "Tenants per node: not available through the API "
       "(501: it reads no nodes or pods)", "admin", None, (403, 501)),
)  # fmt: skip

PATH_PARAMS = {
    "tenant_id": {
        "type": "string",
        "minLength": MIN_ID_LENGTH,
        "maxLength": MAX_ID_LENGTH,
        "pattern": m.TENANT_ID_PATTERN,
    },
    "job_id": {"type": "string", "minLength": 1, "maxLength": 64},
    "name": {
        "type": "string",
        "minLength": 1,
        "maxLength": 253,
        "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    },
    "backup": {
        "type": "string",
        "minLength": 5,
        "maxLength": 255,
        "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]*\.zip$",
    },
}


def _schemas() -> dict[str, Any]:
    pairs: list[tuple[type[BaseModel], Any]] = [(x, "validation") for x in m.REQUEST_MODELS]
    pairs += [(x, "serialization") for x in m.RESPONSE_MODELS]
    _, top = models_json_schema(pairs, ref_template=REF)
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel] | tuple[type[BaseModel], ...] | None) -> dict[str, Any]:
    if isinstance(model, tuple):
        schema: dict[str, Any] = {"anyOf": [_ref(x) for x in model]}
    else:
        schema = _ref(model) if model else {"type": "object"}
    return {"application/json": {"schema": schema}}


def _responses(op: Op) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if op.ok is not None:
        code, model = op.ok
        ok: dict[str, Any] = {"description": op.summary}
        if op.ok_content is not None:
            ok["content"] = op.ok_content
        elif code != 204:
            ok["content"] = _json(model)
        if code == 202:
            ok["headers"] = {
                "Location": {
                    "description": "What to follow: for a tenant's own change (`tenant` in "
                    "the body) the tenant's URL, for a one-shot operation (`operation` in the "
                    "body) `/api/operations/<name>`, for a fleet reconcile the fleet.",
                    "schema": {"type": "string"},
                }
            }
        responses[str(code)] = ok
    codes = set(op.errors) | (set(AUTHED) if op.authed else set())
    if op.body:  # a JSON body: any other Content-Type is refused
        codes.add(415)
    for err in sorted(codes):
        responses[str(err)] = {"description": ERRORS[err], "content": _json(m.ErrorOut)}
    return responses


def _operation(op: Op) -> dict[str, Any]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in PATH_PARAMS.items()
        if "{" + name + "}" in op.path
    ]
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_')}".replace(
            "{", ""
        ).replace("}", ""),
        "tags": [op.tag],
        "parameters": params + list(op.query),
        "responses": _responses(op),
        "security": [{"bearer": []}] if op.authed else [],
    }
    if op.body:
        out["requestBody"] = {"required": op.body_required, "content": _json(op.body)}
    elif op.content:
        out["requestBody"] = {"required": True, "content": op.content}
    return out


@cache
def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "saasodoo API",
            "version": __version__,
            "description": (
                "Tenants (Odoo instances) of a multi-tenant SaaS on Kubernetes. "
                "Authenticate with a Supabase access token (`Authorization: Bearer ...`). "
                "Changes are written to Kubernetes resources that the operator acts on: "
                "a tenant's create, update, suspend, resume, delete, copy and domain "
                "verification answer 202 with the tenant (`tenant`), to follow at "
                "`status_url` until `observed_generation == generation` and `ready` is "
                '"True" (a deletion: until 404); a backup, restore, verify, import, '
                "rollback and refresh answer 202 with their request resource (`operation`), "
                "to follow at `status_url` until `phase` is `Succeeded` or `Failed`. "
                "`GET /api/health` says whether an operator leads. "
                'Every error is `{"status": "error", "message": ...}`.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
