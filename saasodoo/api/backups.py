"""Blueprint ``backups``: a tenant's backups, on-demand backups, restores, verifications and
imports of uploaded zips.

The changes answer 202 with the request resource the operator runs (OdooTenantBackup,
OdooTenantRestore, OdooTenantVerify; an import: the zip staged, then an OdooTenantRestore),
``Location`` ``GET /api/operations/<name>``; another user's tenant answers 404 like a missing
one, exactly as the tenant routes. The list is the one the operator keeps in the
OdooTenant's status; a download reads the storage it names.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request

from saasodoo.api import imports
from saasodoo.api import services as ops
from saasodoo.api.auth import bearer_user
from saasodoo.api.errors import json_object
from saasodoo.api.models import BackupList, RestoreRequest, VerifyRequest
from saasodoo.api.services import parse, services
from saasodoo.api.tenants import accepted, bool_arg

bp = Blueprint("backups", __name__, url_prefix="/api/tenants/<tenant_id>/backups")


@bp.before_request
def _authenticate() -> None:
    if request.method != "OPTIONS":
        bearer_user()


@bp.get("")
def list_backups(tenant_id: str) -> Response:
    backups = ops.list_backups(services(), bearer_user(), tenant_id)
    body = BackupList(tenant_id=tenant_id, backups=backups)  # type: ignore[arg-type]
    return jsonify(body.model_dump(mode="json"))


@bp.get("/<backup>")
def download(tenant_id: str, backup: str) -> Response:
    """The backup zip itself, streamed (``Content-Length`` its size), as an attachment."""
    return zip_attachment(
        tenant_id, backup, *ops.download_backup(services(), bearer_user(), tenant_id, backup)
    )


def zip_attachment(tenant_id: str, backup: str, size: int, content: Iterator[bytes]) -> Response:
    """A backup zip's answer (the API's and the web UI's): streamed, ``Content-Length`` its
    size in bytes, an attachment named ``<tenant>-<backup>``, never cached."""
    return Response(
        content,
        mimetype="application/zip",
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{tenant_id}-{backup}"',
            "Cache-Control": "no-store",
        },
    )


@bp.post("")
def create(tenant_id: str) -> tuple[Response, int, dict[str, str]]:
    return accepted(ops.start_backup(services(), bearer_user(), tenant_id))


@bp.post("/restore")
def restore(tenant_id: str) -> tuple[Response, int, dict[str, str]]:
    body = parse(RestoreRequest, json_object())
    return accepted(ops.start_restore(services(), bearer_user(), tenant_id, body))


@bp.post("/verify")
def verify(tenant_id: str) -> tuple[Response, int, dict[str, str]]:
    body = parse(VerifyRequest, json_object())
    return accepted(ops.start_verify(services(), bearer_user(), tenant_id, body))


@bp.post("/import")
def import_zip(tenant_id: str) -> tuple[Response, int, dict[str, str]]:
    """A backup zip uploaded (multipart field ``zip``, or the body itself), streamed to disk
    and checked, staged into the tenant's storage and requested as an OdooTenantRestore
    (see ``saasodoo.api.imports``), once per ``Idempotency-Key`` header (else per upload
    digest)."""
    drop_previous = bool_arg("drop_previous")
    moved = bool_arg("moved")
    asked = imports.start_import(
        services(),
        bearer_user(),
        tenant_id,
        lambda spool, limit: imports.receive(request, spool, limit),
        drop_previous=drop_previous,
        moved=moved,
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    return accepted(asked)
