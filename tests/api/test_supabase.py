"""Supabase Auth through supabase-py, over HTTP, against the GoTrue wire double.

The real GoTrue cannot be fetched here (see tests/api/gotrue_double.py); these tests
drive the same exchanges: sign-up, log-in, wrong password, duplicate e-mail, weak
password, log-out, token refresh, and ES256 tokens verified through the JWKS.
"""

from __future__ import annotations

import uuid

import pytest

from saasodoo.adapters.auth import AuthFailed, SupabaseAuth
from saasodoo.api import build_auth, create_app
from saasodoo.api.config import ApiSettings
from saasodoo.errors import Conflict, InvalidInput
from tests.api.conftest import services_of
from tests.api.gotrue_double import GoTrueDouble

pytestmark = pytest.mark.cluster  # needs a server (the auth double on 127.0.0.1)


def _email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def test_sign_up_log_in_refresh_log_out(gotrue: GoTrueDouble) -> None:
    auth = SupabaseAuth(gotrue.url, "sb_publishable_test")
    email = _email()
    signed_up = auth.sign_up(email, "correct-horse-1")
    assert signed_up.account.email == email and signed_up.session is not None
    session = auth.sign_in(email, "correct-horse-1")
    assert session.account.id == signed_up.account.id
    assert auth.account(session.access_token).email == email

    renewed = auth.refresh(session.refresh_token)
    assert renewed.access_token != session.access_token
    with pytest.raises(AuthFailed, match="invalid refresh token"):
        auth.refresh(session.refresh_token)  # rotated: the old one is spent

    auth.sign_out(renewed.access_token)
    with pytest.raises(AuthFailed):
        auth.refresh(renewed.refresh_token)  # log-out revoked every refresh token

    paths = [p for _, p in gotrue.requests]
    for expected in (
        "/auth/v1/signup",
        "/auth/v1/token?grant_type=password",
        "/auth/v1/user",
        "/auth/v1/token?grant_type=refresh_token",
        "/auth/v1/logout?scope=global",
    ):
        assert expected in paths, paths


def test_wrong_password_duplicate_email_weak_password(gotrue: GoTrueDouble) -> None:
    auth = SupabaseAuth(gotrue.url, "sb_publishable_test")
    email = _email()
    auth.sign_up(email, "correct-horse-1")
    with pytest.raises(AuthFailed, match="invalid e-mail or password") as wrong:
        auth.sign_in(email, "wrong-password")
    assert wrong.value.http_status == 401
    with pytest.raises(Conflict, match="already exists"):
        auth.sign_up(email, "another-password-1")
    with pytest.raises(InvalidInput) as weak:
        auth.sign_up(_email(), "123")
    assert weak.value.fields[0].field == "password"


def test_unreachable_auth_server_is_503() -> None:
    auth = SupabaseAuth("http://127.0.0.1:9", "key")
    with pytest.raises(Exception) as err:
        auth.sign_in("a@example.com", "whatever-1")
    assert getattr(err.value, "http_status", None) == 503


def test_api_in_supabase_mode_verifies_es256_through_the_jwks(gotrue: GoTrueDouble) -> None:
    settings = ApiSettings(
        supabase_url=gotrue.url, supabase_key="sb_publishable_test", cookie_secure=False
    )
    app = create_app(settings, auth=build_auth(settings))
    client = app.test_client()
    email = _email()
    creds = {"email": email, "password": "correct-horse-1"}
    assert client.post("/api/auth/register", json=creds).status_code == 201
    assert client.post("/api/auth/register", json=creds).status_code == 409
    bad = client.post("/api/auth/login", json={**creds, "password": "nope-nope"})
    assert bad.status_code == 401 and bad.get_json()["status"] == "error"

    session = client.post("/api/auth/login", json=creds).get_json()
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    me = client.get("/api/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.get_json() == {"id": session["user"]["id"], "email": email, "is_admin": False}
    assert ("GET", "/auth/v1/.well-known/jwks.json") in gotrue.requests

    refreshed = client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    again = client.post(
        "/api/auth/refresh", json={"refresh_token": refreshed.get_json()["refresh_token"]}
    )
    assert again.status_code == 401

    gotrue.make_admin(email)  # app_metadata, as a service-role call would set it
    admin = client.post("/api/auth/login", json=creds).get_json()
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {admin['access_token']}"})
    assert me.get_json()["is_admin"] is True
    services_of(app).jobs.shutdown()
