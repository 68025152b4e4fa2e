"""Blueprint ``tenants``: a customer's tenants. The caller owns what it creates.

Reads answer at once, from the tenant's OdooTenant. The tenant's own changes answer 202
with the tenant as its OdooTenant shows it, ``Location`` the tenant itself: follow it until
``observed_generation == generation`` and ``ready == "True"`` (a deletion: until 404); a
rollback (and the backups blueprint's operations) answers 202 with its request resource,
``Location`` ``GET /api/operations/<name>``: follow it until ``phase`` is final. The
operator does the work; this process keeps nothing of it.
A tenant that is not the caller's answers 404 like a missing one (operators see all).
"""

from __future__ import annotations

from typing import NoReturn

from flask import Blueprint, Response, jsonify, request, url_for

from saasodoo.api import services as ops
from saasodoo.api.auth import bearer_user
from saasodoo.api.errors import json_object
from saasodoo.api.models import (
    CopyRefreshRequest,
    CopyRequest,
    DomainList,
    DomainVerifyRequest,
    HistoryOut,
    OperationAccepted,
    OperationList,
    OperationOut,
    RollbackRequest,
    TenantAccepted,
    TenantCreate,
    TenantResourceList,
    TenantResourceOut,
    TenantUpdate,
)
from saasodoo.api.services import parse, services
from saasodoo.errors import FieldError, InvalidInput
from saasodoo.odootenants import TenantView
from saasodoo.operation_requests import RequestView

bp = Blueprint("tenants", __name__, url_prefix="/api/tenants")

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


@bp.before_request
def _authenticate() -> None:
    if request.method != "OPTIONS":
        bearer_user()


def accepted(asked: TenantView | RequestView) -> tuple[Response, int, dict[str, str]]:
    """202 with what to follow: a request resource (``GET /api/operations/<name>``) or the
    tenant itself."""
    if isinstance(asked, RequestView):
        request_url = url_for("meta.operation", name=asked.name)
        out = OperationAccepted(operation=operation_out(asked), status_url=request_url)
        return jsonify(out.model_dump(mode="json")), 202, {"Location": request_url}
    tenant_url = url_for("tenants.get", tenant_id=asked.id)
    changed = TenantAccepted(tenant=resource_out(asked), status_url=tenant_url)
    return jsonify(changed.model_dump(mode="json")), 202, {"Location": tenant_url}


def operation_out(view: RequestView) -> OperationOut:
    return OperationOut.model_validate(view.to_dict())


def resource_out(view: TenantView) -> TenantResourceOut:
    return TenantResourceOut.model_validate(view.to_dict())


def bool_arg(name: str, default: bool = False) -> bool:
    raw = request.args.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise InvalidInput("invalid query", [FieldError(name, "must be true or false")])


@bp.get("")
def list_tenants() -> Response:
    views = ops.visible_views(services(), bearer_user())
    listed = TenantResourceList(tenants=[resource_out(v) for v in views])
    return jsonify(listed.model_dump(mode="json"))


@bp.post("")
def create() -> tuple[Response, int, dict[str, str]]:
    body = parse(TenantCreate, json_object())
    return accepted(ops.start_create(services(), bearer_user(), body))


@bp.get("/<tenant_id>")
def get(tenant_id: str) -> Response:
    view = ops.owned_view(services().objects, bearer_user(), tenant_id)
    return jsonify(resource_out(view).model_dump(mode="json"))


@bp.patch("/<tenant_id>")
def update(tenant_id: str) -> tuple[Response, int, dict[str, str]]:
    body = parse(TenantUpdate, json_object())
    return accepted(ops.start_update(services(), bearer_user(), tenant_id, body))


@bp.post("/<tenant_id>/suspend")
def suspend(tenant_id: str) -> tuple[Response, int, dict[str, str]]:
    return accepted(ops.start_suspend(services(), bearer_user(), tenant_id, True))


@bp.post("/<tenant_id>/resume")
def resume(tenant_id: str) -> tuple[Response, int, dict[str, str]]:
    return accepted(ops.start_suspend(services(), bearer_user(), tenant_id, False))


@bp.get("/<tenant_id>/history")
def history(tenant_id: str) -> Response:
    revisions = ops.history(services(), bearer_user(), tenant_id)
    body = HistoryOut(tenant_id=tenant_id, revisions=revisions)  # type: ignore[arg-type]
    return jsonify(body.model_dump(mode="json"))


@bp.get("/<tenant_id>/usage")
def usage(tenant_id: str) -> NoReturn:
    """501: the API reads no pod metrics (404 for another's tenant)."""
    ops.usage(services(), bearer_user(), tenant_id)


@bp.post("/<tenant_id>/refresh")
def refresh(tenant_id: str) -> tuple[Response, int, dict[str, str]]:
    """Refresh a staging copy from its source: 202 with the OdooTenantRefresh to follow."""
    body = parse(CopyRefreshRequest, json_object())
    return accepted(ops.start_refresh(services(), bearer_user(), tenant_id, body))


@bp.post("/<tenant_id>/copy")
def copy(tenant_id: str) -> tuple[Response, int, dict[str, str]]:
    """A staging copy of the tenant: 202 with the new OdooTenant to follow."""
    body = parse(CopyRequest, json_object())
    return accepted(ops.start_copy(services(), bearer_user(), tenant_id, body))


@bp.post("/<tenant_id>/rollback")
def rollback(tenant_id: str) -> tuple[Response, int, dict[str, str]]:
    body = parse(RollbackRequest, json_object())
    return accepted(ops.start_rollback(services(), bearer_user(), tenant_id, body))


@bp.get("/<tenant_id>/operations")
def operations(tenant_id: str) -> Response:
    """The tenant's one-shot operation requests, oldest first."""
    views = ops.tenant_requests(services(), bearer_user(), tenant_id)
    body = OperationList(tenant_id=tenant_id, operations=[operation_out(v) for v in views])
    return jsonify(body.model_dump(mode="json"))


@bp.delete("/<tenant_id>")
def delete(tenant_id: str) -> tuple[Response, int, dict[str, str]]:
    keep = bool_arg("keep_volumes")
    final = bool_arg("final_backup", default=True)
    return accepted(ops.start_delete(services(), bearer_user(), tenant_id, keep, final))


@bp.get("/<tenant_id>/domains")
def domains(tenant_id: str) -> Response:
    states = ops.domain_states(services(), bearer_user(), tenant_id)
    body = DomainList.model_validate({"tenant_id": tenant_id, "domains": states})
    return jsonify(body.model_dump(mode="json"))


@bp.post("/<tenant_id>/domains/verify")
def verify_domain(tenant_id: str) -> tuple[Response, int, dict[str, str]]:
    body = parse(DomainVerifyRequest, json_object())
    return accepted(ops.start_verify_domain(services(), bearer_user(), tenant_id, body.domain))
