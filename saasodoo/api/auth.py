"""Blueprint ``auth``: register, log in, refresh, log out, current user (Supabase Auth).

The routes call the configured ``AuthBackend`` (supabase-py, or the development-only local
backend); every other route verifies the bearer token locally (``bearer_user``), and a
state-changing one also has its session confirmed by the auth server (``SessionCheck``).
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from saasodoo.adapters.auth import AuthFailed, Session, User
from saasodoo.api.errors import json_object
from saasodoo.api.models import (
    Credentials,
    LogoutRequest,
    MeOut,
    RefreshRequest,
    SessionOut,
    SignUpOut,
)
from saasodoo.api.services import parse, services
from saasodoo.core.spec import validate_email
from saasodoo.errors import FieldError, InvalidInput

bp = Blueprint("auth", __name__, url_prefix="/api/auth")
#: Methods that change nothing: their tokens are only verified locally.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthFailed("missing bearer token (Authorization: Bearer <access token>)")
    return token.strip()


def bearer_user() -> User:
    """The caller of an API route, from a verified bearer token (cached per request); for a
    state-changing method, with its session confirmed by the auth server."""
    if "user" not in g:
        g.user = services().user(bearer_token(), live=request.method not in READ_METHODS)
    user: User = g.user
    return user


def session_json(session: Session) -> dict[str, object]:
    out = SessionOut(
        access_token=session.access_token,
        refresh_token=session.refresh_token,
        token_type=session.token_type,
        expires_in=session.expires_in,
        expires_at=session.expires_at,
        user={"id": session.account.id, "email": session.account.email},  # type: ignore[arg-type]
    )
    return out.model_dump(mode="json")


def credentials() -> Credentials:
    creds = parse(Credentials, json_object())
    try:
        email = validate_email(creds.email)
    except ValueError as exc:
        raise InvalidInput("invalid request", [FieldError("email", str(exc))]) from None
    return creds.model_copy(update={"email": email})


@bp.post("/register")
def register() -> tuple[Response, int]:
    creds = credentials()
    result = services().auth.sign_up(creds.email, creds.password)
    body = SignUpOut.model_validate(
        {
            "user": {"id": result.account.id, "email": result.account.email},
            "session": session_json(result.session) if result.session else None,
        }
    )
    return jsonify(body.model_dump(mode="json")), 201


@bp.post("/login")
def login() -> Response:
    creds = credentials()
    return jsonify(session_json(services().auth.sign_in(creds.email, creds.password)))


@bp.post("/refresh")
def refresh() -> Response:
    body = parse(RefreshRequest, json_object())
    return jsonify(session_json(services().auth.refresh(body.refresh_token)))


@bp.post("/logout")
def logout() -> tuple[str, int]:
    """End every session of the user at the auth server. With ``{"refresh_token": ...}`` in
    the body it works after the access token expired too (the refresh token is exchanged
    for a fresh one first); without it the bearer token must be valid."""
    body = parse(LogoutRequest, json_object())
    if body.refresh_token is None:
        bearer_user()
        services().sign_out(bearer_token())
        return "", 204
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    access = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    services().sign_out(access, body.refresh_token)
    return "", 204


@bp.get("/me")
def me() -> Response:
    user = bearer_user()
    account = services().auth.account(bearer_token())
    out = MeOut(id=user.id, email=account.email or user.email, is_admin=user.is_admin)
    return jsonify(out.model_dump(mode="json"))
