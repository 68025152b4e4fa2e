"""One error handler for the whole app: every failure becomes ``{"status": "error", ...}``.

saasodoo's errors carry their HTTP status (422 with the fields, 404, 409, 502, 503...), and
a ``Retry-After`` header when they may pass if tried again (``retryable``);
Werkzeug's (404 route, 405 method, 413 body too large) keep theirs; anything else is a
500 that says "internal error" and nothing more (the traceback goes to the log only).
The web UI gets the same information as an HTML page.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from saasodoo.core.limits import LimitExceeded, load_json
from saasodoo.errors import FieldError, InvalidInput, SaasodooError

log = logging.getLogger(__name__)

#: Seconds a client waits before retrying an error that may pass later (``retryable``).
RETRY_AFTER = 5


def error_body(exc: SaasodooError) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": exc.message}
    if isinstance(exc, InvalidInput):
        body["fields"] = [{"field": f.field, "message": f.message} for f in exc.fields]
    return body


class MalformedBody(SaasodooError):
    """The body is not JSON (or not UTF-8)."""

    http_status = 400


class UnsupportedMediaType(SaasodooError):
    """A body sent with another Content-Type than JSON to an endpoint that takes JSON."""

    http_status = 415


def is_json_type(mimetype: str) -> bool:
    """``application/json`` or a ``+json`` type (``application/merge-patch+json``)."""
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def json_body() -> Any:
    """The request's JSON body; ``{}`` when empty (whatever its Content-Type). A body sent
    with another Content-Type than JSON (``text/plain``, a form, none) is refused with 415
    before it is read: a cross-site form or ``fetch`` without a CORS preflight can only send
    those. Bounded: the size by ``MAX_CONTENT_LENGTH`` (413), the nesting by
    ``core.limits.MAX_DEPTH`` (400)."""
    if request.content_length == 0:
        return {}
    if not is_json_type(request.mimetype):
        raw = request.get_data(cache=True)
        if not raw.strip():
            return {}
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, not {request.mimetype or 'none'}"
        )
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        return load_json(raw, "the request body")
    except LimitExceeded as exc:
        raise MalformedBody(str(exc)) from None


def json_object() -> dict[str, Any]:
    body = json_body()
    if not isinstance(body, dict):
        raise InvalidInput("invalid request", [FieldError("(body)", "must be a JSON object")])
    return body


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def _respond(status: int, body: dict[str, Any]) -> Response:
    if _wants_json():
        response = jsonify(body)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="saasodoo"'
    else:
        response = Response(render_template("error.html", status=status, error=body))
    response.status_code = status
    return response


def handle_saasodoo_error(exc: SaasodooError) -> Response:
    if exc.http_status >= 500:
        log.warning("%s %s: %s", request.method, request.path, exc.message)
    response = _respond(exc.http_status, error_body(exc))
    if exc.retryable:  # it may pass if tried again later: say when
        response.headers["Retry-After"] = str(getattr(exc, "retry_after", RETRY_AFTER))
    return response


def handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    message = exc.description or exc.name
    if status == 404 and _wants_json():
        message = "no such API route"
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        message = f"the request body is larger than the limit of {limit} bytes"
    response = _respond(status, {"status": "error", "message": message})
    if status == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


def handle_unexpected(exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.path)
    return _respond(500, {"status": "error", "message": "internal error"})


def register(app: Flask) -> None:
    app.register_error_handler(SaasodooError, handle_saasodoo_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
