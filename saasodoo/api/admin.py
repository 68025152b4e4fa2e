"""Blueprint ``admin``: the whole fleet, for operators only (403 for everyone else).

The fleet is the OdooTenants. A fleet reconcile is a reconcile asked of each (selected)
OdooTenant, answered 202 at once; a fleet upgrade is refused (409) with the CLI command that
runs it (``FLEET_UPGRADE_CLI``): its waves are followed until Ready, which no request can
wait for.
"""

from __future__ import annotations

from collections import Counter
from typing import NoReturn

from flask import Blueprint, Response, jsonify, request, url_for

from saasodoo.adapters.auth import Forbidden
from saasodoo.api import services as ops
from saasodoo.api.auth import bearer_user
from saasodoo.api.errors import json_object
from saasodoo.api.models import (
    FleetEnsureRequest,
    FleetRequestedOut,
    FleetResourcesOut,
    FleetUpgradeRequest,
)
from saasodoo.api.services import parse, services
from saasodoo.api.tenants import resource_out

bp = Blueprint("admin", __name__, url_prefix="/api/admin")


@bp.before_request
def _operators_only() -> None:
    if request.method != "OPTIONS" and not bearer_user().is_admin:
        raise Forbidden("operators only")


@bp.get("/fleet")
def fleet() -> Response:
    """The OdooTenants and their counts by kstatus (the API reads no namespace or release)."""
    views = ops.fleet_views(services())
    counts = Counter(v.kstatus for v in views)
    out = FleetResourcesOut(
        total=len(views),
        statuses=dict(sorted(counts.items())),
        tenants=[resource_out(v) for v in views],
    )
    return jsonify(out.model_dump(mode="json"))


@bp.get("/distribution")
def distribution() -> NoReturn:
    """501: nodes and pods are not the platform's resources (its API account reads
    neither)."""
    raise ops.NotAvailable(
        "the distribution over nodes is not available through the API: its ServiceAccount "
        "reads no nodes or pods (kubectl get pods -A -o wide)"
    )


@bp.post("/fleet/ensure")
def fleet_ensure() -> tuple[Response, int, dict[str, str]]:
    """A reconcile asked of every (selected) OdooTenant at once: 202 with what was asked
    (``FleetRequestedOut``)."""
    body = parse(FleetEnsureRequest, json_object())
    asked = FleetRequestedOut.model_validate(ops.request_fleet_ensure(services(), body))
    return jsonify(asked.model_dump(mode="json")), 202, {"Location": url_for("admin.fleet")}


@bp.post("/fleet/upgrade")
def fleet_upgrade() -> NoReturn:
    """422 when nothing is asked, else 409 naming the CLI command (``FLEET_UPGRADE_CLI``)."""
    ops.refuse_fleet_upgrade(parse(FleetUpgradeRequest, json_object()))
