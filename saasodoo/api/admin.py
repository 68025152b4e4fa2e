"""Blueprint ``admin``: the whole fleet, for operators only (403 for everyone else)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from saasodoo.adapters.auth import Forbidden
from saasodoo.api.auth import bearer_user
from saasodoo.api.models import DistributionOut, FleetOut, TenantOut
from saasodoo.api.services import services
from saasodoo.tenants import count_phases

bp = Blueprint("admin", __name__, url_prefix="/api/admin")


@bp.before_request
def _operators_only() -> None:
    if request.method != "OPTIONS" and not bearer_user().is_admin:
        raise Forbidden("operators only")


@bp.get("/fleet")
def fleet() -> Response:
    tenants = services().tenants.list_tenants()
    phases = {phase.value: n for phase, n in sorted(count_phases(tenants).items())}
    body = FleetOut(
        total=len(tenants),
        phases=phases,
        tenants=[TenantOut.model_validate(t.to_dict()) for t in tenants],
    )
    return jsonify(body.model_dump(mode="json"))


@bp.get("/distribution")
def distribution() -> Response:
    body = DistributionOut(nodes=services().tenants.distribution())
    return jsonify(body.model_dump(mode="json"))
