"""Blueprint ``admin``: the whole fleet, for operators only (403 for everyone else).

Fleet reconciliation and upgrades (``saasodoo.fleet.Fleet``) answer 202 with the job to
poll, like the tenant changes; one fleet operation at a time (409 otherwise).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from saasodoo.adapters.auth import Forbidden
from saasodoo.api import services as ops
from saasodoo.api.auth import bearer_user
from saasodoo.api.errors import json_object
from saasodoo.api.models import (
    DistributionOut,
    FleetEnsureRequest,
    FleetOut,
    FleetUpgradeRequest,
    TenantOut,
)
from saasodoo.api.services import parse, services
from saasodoo.api.tenants import accepted
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


@bp.post("/fleet/ensure")
def fleet_ensure() -> tuple[Response, int, dict[str, str]]:
    body = parse(FleetEnsureRequest, json_object())
    return accepted(ops.start_fleet_ensure(services(), bearer_user(), body))


@bp.post("/fleet/upgrade")
def fleet_upgrade() -> tuple[Response, int, dict[str, str]]:
    body = parse(FleetUpgradeRequest, json_object())
    return accepted(ops.start_fleet_upgrade(services(), bearer_user(), body))
