"""Routes about the API itself: health (and whether an operator leads), the OpenAPI
document, plans, and a one-shot operation's request resource."""

from __future__ import annotations

from typing import NoReturn

from flask import Blueprint, Response, jsonify

from saasodoo.api import services as ops
from saasodoo.api.auth import bearer_user
from saasodoo.api.models import HealthOut, LeaderOut, OperationOut, PlansOut
from saasodoo.api.openapi import document
from saasodoo.api.services import services
from saasodoo.errors import SaasodooError

bp = Blueprint("meta", __name__, url_prefix="/api")


class Gone(SaasodooError):
    """A route that no longer exists and will not come back."""

    http_status = 410


#: The answer of ``GET /api/jobs/<id>``: this process keeps no jobs any more.
JOBS_GONE = (
    "the API keeps no jobs: a tenant's change is followed at GET /api/tenants/<id> (its "
    "Location), a backup, restore, verification, import, rollback or refresh at "
    "GET /api/operations/<name>"
)


@bp.get("/health")
def health() -> Response:
    """Liveness, the auth mode, and whether an operator leads (its Lease, as last read: this
    answer never waits for the cluster; an operation asked while none leads waits for one)."""
    svc = services()
    leader = LeaderOut.model_validate(svc.leader.state().to_dict())
    body = HealthOut(auth_mode=svc.settings.mode, operator=leader)
    return jsonify(body.model_dump(mode="json"))


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())


@bp.get("/plans")
def plans() -> Response:
    bearer_user()
    catalog = services().tenants.ctx.catalog
    body = PlansOut.model_validate(
        {"plans": [{"name": n, "description": p.description} for n, p in catalog.plans.items()]}
    )
    return jsonify(body.model_dump(mode="json"))


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> NoReturn:
    """410 for everyone (nothing to own): a client written for the jobs of earlier versions
    learns where to look instead of taking a 404 for a lost operation."""
    raise Gone(JOBS_GONE)


@bp.get("/operations/<name>")
def operation(name: str) -> Response:
    """A request resource (OdooTenantBackup, ...) of one of the caller's tenants (404
    otherwise)."""
    found = ops.owned_request(services(), bearer_user(), name)
    return jsonify(OperationOut.model_validate(found.to_dict()).model_dump(mode="json"))
