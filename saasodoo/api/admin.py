"""Blueprint ``admin``: the whole fleet, for operators only (403 for everyone else).

Fleet reconciliation and upgrades (``saasodoo.fleet.Fleet``) answer 202 with the job to
poll, like the tenant changes; one fleet operation at a time (409 otherwise).
"""

from __future__ import annotations

from collections import Counter

from flask import Blueprint, Response, jsonify, request, url_for

from saasodoo.adapters.auth import Forbidden
from saasodoo.api import services as ops
from saasodoo.api.auth import bearer_user
from saasodoo.api.errors import json_object
from saasodoo.api.models import (
    DistributionOut,
    FleetEnsureRequest,
    FleetOut,
    FleetRequestedOut,
    FleetResourcesOut,
    FleetUpgradeRequest,
    TenantOut,
)
from saasodoo.api.services import parse, services
from saasodoo.api.tenants import accepted, resource_out
from saasodoo.tenants import count_phases

bp = Blueprint("admin", __name__, url_prefix="/api/admin")


@bp.before_request
def _operators_only() -> None:
    if request.method != "OPTIONS" and not bearer_user().is_admin:
        raise Forbidden("operators only")


@bp.get("/fleet")
def fleet() -> Response:
    svc = services()
    if svc.objects is not None:  # the OdooTenants (the API reads no namespace or release)
        views = ops.fleet_views(svc)
        counts = Counter(v.kstatus for v in views)
        out = FleetResourcesOut(
            total=len(views),
            statuses=dict(sorted(counts.items())),
            tenants=[resource_out(v) for v in views],
        )
        return jsonify(out.model_dump(mode="json"))
    tenants = svc.tenants.list_tenants()
    phases = {phase.value: n for phase, n in sorted(count_phases(tenants).items())}
    body = FleetOut(
        total=len(tenants),
        phases=phases,
        tenants=[TenantOut.model_validate(t.to_dict()) for t in tenants],
    )
    return jsonify(body.model_dump(mode="json"))


@bp.get("/distribution")
def distribution() -> Response:
    """Tenants per node; with the operator 501: nodes and pods are not the platform's
    resources (its API account reads neither)."""
    if services().objects is not None:
        raise ops.NotAvailable(
            "the distribution over nodes is not available through the API with the "
            "operator: its ServiceAccount reads no nodes or pods (kubectl get pods -A -o wide)"
        )
    body = DistributionOut(nodes=services().tenants.distribution())
    return jsonify(body.model_dump(mode="json"))


@bp.post("/fleet/ensure")
def fleet_ensure() -> tuple[Response, int, dict[str, str]]:
    """A fleet reconcile job; with the operator, a reconcile asked of every (selected)
    OdooTenant at once: 202 with what was asked (``FleetRequestedOut``), no job."""
    body = parse(FleetEnsureRequest, json_object())
    svc = services()
    if svc.objects is not None:
        asked = FleetRequestedOut.model_validate(ops.request_fleet_ensure(svc, body))
        return jsonify(asked.model_dump(mode="json")), 202, {"Location": url_for("admin.fleet")}
    return accepted(ops.start_fleet_ensure(svc, bearer_user(), body))


@bp.post("/fleet/upgrade")
def fleet_upgrade() -> tuple[Response, int, dict[str, str]]:
    body = parse(FleetUpgradeRequest, json_object())
    return accepted(ops.start_fleet_upgrade(services(), bearer_user(), body))
