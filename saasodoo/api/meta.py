"""Routes about the API itself: health, the OpenAPI document, plans, job status, and (with
the operator) a one-shot operation's request resource."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from saasodoo.api import services as ops
from saasodoo.api.auth import bearer_user
from saasodoo.api.models import HealthOut, JobOut, OperationOut, PlansOut
from saasodoo.api.openapi import document
from saasodoo.api.services import services

bp = Blueprint("meta", __name__, url_prefix="/api")


@bp.get("/health")
def health() -> Response:
    return jsonify(HealthOut(auth_mode=services().settings.mode).model_dump(mode="json"))


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
def job(job_id: str) -> Response:
    found = ops.job_for(services(), bearer_user(), job_id)
    return jsonify(JobOut.model_validate(found.to_dict()).model_dump(mode="json"))


@bp.get("/operations/<name>")
def operation(name: str) -> Response:
    """A request resource (OdooTenantBackup, ...) of one of the caller's tenants (404
    otherwise, and without the operator)."""
    found = ops.owned_request(services(), bearer_user(), name)
    return jsonify(OperationOut.model_validate(found.to_dict()).model_dump(mode="json"))
