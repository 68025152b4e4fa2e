"""Supabase Auth for real: supabase-py and the API against GoTrue behind nginx's ``/auth/v1``.

Sign-up, log-in, wrong password, unknown e-mail, duplicate e-mail, weak password, refresh and
log-out; tokens signed ES256 (verified through the real JWKS) and HS256 (shared secret); a
server without an issuer; log-out refusing the old token; faults injected by the gateway in
front of the real server (``GoTrue.fault()``) and an address nothing listens on.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from saasodoo.adapters.auth import AuthFailed, AuthUnavailable
from saasodoo.adapters.supabase import SupabaseAuth
from saasodoo.app import create_app
from saasodoo.errors import Conflict, InvalidInput
from scripts.gotrue import ANON_KEY, GoTrue, free_port
from tests.api.conftest import SHORT_JWT_EXP, csrf_token, make_operator, supabase_settings

pytestmark = pytest.mark.auth

PASSWORD = "correct-horse-1"
BAD_TENANT = {"id": "Not Valid!", "admin_email": "a@example.com"}  # 422 once past auth
READ = "/api/tenants/Not_Valid"  # a read that answers 422 once past auth (needs no cluster)


def _email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def make_app() -> Iterator[Any]:
    """Apps in Supabase mode (no cluster needed: the calls made stop before it)."""
    apps: list[Flask] = []

    def make(server: GoTrue, url: str | None = None, **overrides: Any) -> FlaskClient:
        app = create_app(supabase_settings(server, url, **overrides))
        apps.append(app)
        return app.test_client()

    yield make


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _login(client: FlaskClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    res = client.post("/api/auth/login", json={"email": email, "password": password})
    assert res.status_code == 200, res.get_json()
    body: dict[str, Any] = res.get_json()
    return body


# -- supabase-py through the adapter ------------------------------------------------------------


def test_sign_up_log_in_refresh_log_out(gotrue: GoTrue) -> None:
    auth = SupabaseAuth(gotrue.url, ANON_KEY)
    email = _email()
    signed_up = auth.sign_up(email, PASSWORD)
    assert signed_up.account.email == email and signed_up.session is not None
    session = auth.sign_in(email, PASSWORD)
    assert session.account.id == signed_up.account.id
    assert auth.account(session.access_token).email == email

    renewed = auth.refresh(session.refresh_token)
    assert renewed.access_token != session.access_token
    assert renewed.refresh_token != session.refresh_token  # GoTrue rotates it
    assert auth.account(renewed.access_token).id == signed_up.account.id

    auth.sign_out(renewed.access_token)
    with pytest.raises(AuthFailed, match="invalid refresh token"):
        auth.refresh(renewed.refresh_token)  # log-out revoked every refresh token
    for token in (session.access_token, renewed.access_token):  # every session of the user
        with pytest.raises(AuthFailed, match="session expired"):
            auth.account(token)


def test_wrong_password_unknown_email_duplicate_weak_password(gotrue: GoTrue) -> None:
    auth = SupabaseAuth(gotrue.url, ANON_KEY)
    email = _email()
    auth.sign_up(email, PASSWORD)
    with pytest.raises(AuthFailed, match="invalid e-mail or password") as wrong:
        auth.sign_in(email, "wrong-password")
    assert wrong.value.http_status == 401
    with pytest.raises(AuthFailed, match="invalid e-mail or password"):
        auth.sign_in(_email(), PASSWORD)  # unknown e-mail: the same answer
    with pytest.raises(Conflict, match="already exists"):
        auth.sign_up(email, "another-password-1")
    with pytest.raises(InvalidInput) as weak:
        auth.sign_up(_email(), "123")
    assert weak.value.fields[0].field == "password"
    assert "6 characters" in weak.value.fields[0].message  # GoTrue's own rule


# -- the API, ES256 through the JWKS ------------------------------------------------------------


def test_api_verifies_es256_through_the_real_jwks(gotrue: GoTrue, make_app: Any) -> None:
    client = make_app(gotrue)
    email = _email()
    creds = {"email": email, "password": PASSWORD}
    registered = client.post("/api/auth/register", json=creds)
    assert registered.status_code == 201 and registered.get_json()["session"]
    duplicate = client.post("/api/auth/register", json=creds)
    assert duplicate.status_code == 409
    assert duplicate.get_json()["message"] == "an account with this e-mail already exists"
    weak = client.post("/api/auth/register", json={"email": _email(), "password": "12345"})
    assert weak.status_code == 422 and weak.get_json()["fields"][0]["field"] == "password"
    stricter = client.post(
        "/api/auth/register", json={"email": "ä@example.com", "password": PASSWORD}
    )
    assert stricter.status_code == 422  # GoTrue's own check: 400 validation_failed
    assert stricter.get_json()["fields"][0]["field"] == "email"
    for wrong in ({**creds, "password": "nope-nope"}, {**creds, "email": _email()}):
        bad = client.post("/api/auth/login", json=wrong)
        assert bad.status_code == 401
        assert bad.get_json()["message"] == "invalid e-mail or password"

    session = _login(client, email)
    header = jwt.get_unverified_header(session["access_token"])
    keys = [k["kid"] for k in _jwks(gotrue)["keys"]]
    assert header["alg"] == "ES256" and keys == [header["kid"]]
    me = client.get("/api/auth/me", headers=_bearer(session["access_token"]))
    assert me.status_code == 200
    assert me.get_json() == {"id": session["user"]["id"], "email": email, "is_admin": False}
    assert client.get(READ, headers=_bearer("x" + session["access_token"])).status_code == 401

    refreshed = client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200  # rotated (the old one stays usable for GoTrue's 10 s
    renewed = refreshed.get_json()  # reuse interval, for clients racing each other)
    assert renewed["refresh_token"] != session["refresh_token"]
    assert client.get(READ, headers=_bearer(renewed["access_token"])).status_code == 422
    garbage = client.post("/api/auth/refresh", json={"refresh_token": "not-a-refresh-token"})
    assert garbage.status_code == 401  # GoTrue: 400 validation_failed "Refresh token is not valid"
    assert "refresh token" in garbage.get_json()["message"].lower()

    make_operator(gotrue, session["user"]["id"])
    admin = _login(client, email)  # a new token carries the new app_metadata
    me = client.get("/api/auth/me", headers=_bearer(admin["access_token"]))
    assert me.get_json()["is_admin"] is True


def _jwks(server: GoTrue) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"{server.issuer_url}/.well-known/jwks.json") as res:
        body: dict[str, Any] = json.load(res)
    return body


# -- log-out -----------------------------------------------------------------------------------


def test_after_log_out_the_old_token_is_refused(gotrue: GoTrue, make_app: Any) -> None:
    client = make_app(gotrue)
    email = _email()
    assert client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    session = _login(client, email)
    other = _login(client, email)  # a second session of the same user (another device)
    old, other_token = _bearer(session["access_token"]), _bearer(other["access_token"])
    assert client.post("/api/tenants", json=BAD_TENANT, headers=old).status_code == 422
    assert client.get(READ, headers=other_token).status_code == 422

    assert client.post("/api/auth/logout", headers=old).status_code == 204
    # The signature is still valid for an hour; the API refuses the token anyway.
    assert jwt.decode(session["access_token"], options={"verify_signature": False})["exp"] > (
        time.time() + 600
    )
    for headers in (old, other_token):  # GoTrue ends every session of the user (global)
        refused = client.post("/api/tenants", json=BAD_TENANT, headers=headers)
        assert refused.status_code == 401, refused.get_json()
        assert refused.get_json()["message"] == "session ended, log in again"
        assert client.get(READ, headers=headers).status_code == 401
    refresh = client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refresh.status_code == 401
    again = _bearer(_login(client, email)["access_token"])  # logging in again works
    assert client.post("/api/tenants", json=BAD_TENANT, headers=again).status_code == 422


def test_log_out_elsewhere_is_refused_for_changes(gotrue: GoTrue, make_app: Any) -> None:
    """Ended at GoTrue by another client: a change asks GoTrue (after the brief trust of a
    confirmed session) and is refused; a read is trusted until the token expires."""
    client = make_app(gotrue, session_check_seconds=0)
    email = _email()
    client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    session = _login(client, email)
    headers = _bearer(session["access_token"])
    assert client.post("/api/tenants", json=BAD_TENANT, headers=headers).status_code == 422

    SupabaseAuth(gotrue.url, ANON_KEY).sign_out(session["access_token"])  # not through us
    refused = client.post("/api/tenants", json=BAD_TENANT, headers=headers)
    assert refused.status_code == 401
    assert refused.get_json()["message"] == "session ended, log in again"
    assert client.get(READ, headers=headers).status_code == 401  # known ended now


def test_log_out_after_the_access_token_expired_ends_the_session(
    gotrue_short_lived: GoTrue, make_app: Any
) -> None:
    """Issue 22, point 7: the web log-out sent only the (expired) access token to GoTrue's
    ``/logout``, which refused it; the refresh token in the cookie lived on, so a copy of the
    cookie signed in again (and could change things). Now the log-out refreshes first and
    ends the session at the auth server: the copied cookie is refused by any API process,
    form posts included, and GoTrue refuses its refresh token."""
    server = gotrue_short_lived
    secret = "a-shared-cookie-secret-" + "x" * 20  # as several API processes share it
    client = make_app(server, secret_key=secret, token_leeway=0)
    email = _email()
    SupabaseAuth(server.url, ANON_KEY).sign_up(email, PASSWORD)
    login = client.post(
        "/login",
        data={
            "email": email,
            "password": PASSWORD,
            "csrf_token": csrf_token(client.get("/login").text),
        },
    )
    assert login.status_code == 302, login.text
    csrf = csrf_token(
        client.get("/login").text
    )  # the signed-in session's (no refresh on this page)
    cookie = client.get_cookie("saasodoo_session")
    assert cookie is not None
    copied = cookie.value
    app = client.application
    tokens = app.session_interface.get_signing_serializer(app).loads(copied)
    time.sleep(SHORT_JWT_EXP + 1.5)  # the access token in the cookie has expired

    res = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=True)
    assert res.status_code == 200 and "Logged out." in res.text

    with pytest.raises(AuthFailed):  # the session is over at the auth server
        SupabaseAuth(server.url, ANON_KEY).refresh(tokens["rt"])
    other = make_app(server, secret_key=secret, token_leeway=0)  # another API process
    for thief in (other, client.application.test_client()):
        thief.set_cookie("saasodoo_session", copied)
        page = thief.get("/dashboard")
        assert page.status_code == 302 and "/login" in page.headers["Location"], page.text
        thief.set_cookie("saasodoo_session", copied)
        change = thief.post("/tenants/no-such/suspend", data={"csrf_token": tokens["csrf"]})
        assert change.status_code == 302 and "/login" in change.headers["Location"]


def test_api_log_out_with_an_expired_access_token(
    gotrue_short_lived: GoTrue, make_app: Any
) -> None:
    """Issue 22, point 7, for API clients: ``POST /api/auth/logout`` with the refresh token
    in the body ends the session even after the access token expired."""
    client = make_app(gotrue_short_lived, token_leeway=0)
    email = _email()
    SupabaseAuth(gotrue_short_lived.url, ANON_KEY).sign_up(email, PASSWORD)
    session = _login(client, email)
    time.sleep(SHORT_JWT_EXP + 1.5)
    expired = _bearer(session["access_token"])
    assert client.post("/api/auth/logout", headers=expired).status_code == 401  # no refresh token
    res = client.post(
        "/api/auth/logout", headers=expired, json={"refresh_token": session["refresh_token"]}
    )
    assert res.status_code == 204, res.get_json()
    refresh = client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refresh.status_code == 401


# -- HS256, no issuer ----------------------------------------------------------------------------


def test_hs256_tokens_with_the_shared_secret(gotrue_hs256: GoTrue, make_app: Any) -> None:
    client = make_app(gotrue_hs256)
    email = _email()
    body = client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    token = body.get_json()["session"]["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert client.get("/api/auth/me", headers=_bearer(token)).get_json()["email"] == email
    assert client.post("/api/tenants", json=BAD_TENANT, headers=_bearer(token)).status_code == 422

    without_secret = make_app(gotrue_hs256, supabase_jwt_secret="")
    refused = without_secret.get(READ, headers=_bearer(token))
    assert refused.status_code == 401
    assert refused.get_json()["message"] == "token algorithm 'HS256' is not accepted"
    wrong_secret = make_app(gotrue_hs256, supabase_jwt_secret="another-secret-of-32-characters!")
    assert wrong_secret.get(READ, headers=_bearer(token)).status_code == 401


def test_server_without_issuer(gotrue_no_issuer: GoTrue, make_app: Any) -> None:
    strict = make_app(gotrue_no_issuer, supabase_require_issuer=True)
    email = _email()
    body = strict.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert body.status_code == 201  # sign-up itself is GoTrue's business
    token = body.get_json()["session"]["access_token"]
    assert "iss" not in jwt.decode(token, options={"verify_signature": False})
    refused = strict.get(READ, headers=_bearer(token))
    assert refused.status_code == 401
    assert refused.get_json()["message"] == "access token lacks the 'iss' claim"

    lenient = make_app(gotrue_no_issuer)  # SUPABASE_REQUIRE_ISSUER=false, as api_env() says
    assert lenient.get("/api/auth/me", headers=_bearer(token)).get_json()["email"] == email
    assert lenient.post("/api/tenants", json=BAD_TENANT, headers=_bearer(token)).status_code == 422
    # Without the requirement an issuer is still checked when present.
    forged = jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False}), "iss": "https://evil"},
        gotrue_no_issuer.jwt_secret,
        algorithm="HS256",
    )
    assert lenient.get(READ, headers=_bearer(forged)).status_code == 401


def test_gotrue_and_nginx_listen_on_loopback_only(gotrue: GoTrue) -> None:
    out = subprocess.run(
        ["ss", "--listening", "--tcp", "--udp", "--numeric", "--processes", "--no-header"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pids = gotrue.pids
    assert len(pids) == 2
    listeners = [f.split() for f in out.splitlines() if any(f"pid={p}," in f for p in pids)]
    assert len(listeners) >= 2, out  # GoTrue's port and the gateway's
    for fields in listeners:
        assert fields[4].rsplit(":", 1)[0] == "127.0.0.1", fields


# -- faults ----------------------------------------------------------------------------------------


def test_unreachable_auth_server_is_503(make_app: Any, gotrue: GoTrue) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(AuthUnavailable):
        SupabaseAuth(nowhere, ANON_KEY).sign_in(_email(), PASSWORD)
    client = make_app(gotrue, nowhere)
    res = client.post("/api/auth/login", json={"email": _email(), "password": PASSWORD})
    assert res.status_code == 503 and res.get_json()["message"].endswith("retry later")
    token = SupabaseAuth(gotrue.url, ANON_KEY).sign_up(_email(), PASSWORD).session
    assert token is not None
    keys = client.get(READ, headers=_bearer(token.access_token))  # JWKS unreachable
    assert keys.status_code == 503


def test_gateway_5xx_is_503_and_changes_fail_closed(gotrue: GoTrue, make_app: Any) -> None:
    """GoTrue in trouble behind the gateway: the JWKS still comes (cached by a CDN), sign-up
    answers GoTrue's own 500 and the rest the gateway's 502."""
    client = make_app(gotrue)
    session = SupabaseAuth(gotrue.url, ANON_KEY).sign_up(_email(), PASSWORD).session
    assert session is not None
    headers = _bearer(session.access_token)
    with gotrue.fault():
        signup = client.post("/api/auth/register", json={"email": _email(), "password": PASSWORD})
        assert signup.status_code == 503
        assert signup.get_json()["message"] == "the auth server is unavailable, retry later"
        login = client.post("/api/auth/login", json={"email": _email(), "password": PASSWORD})
        assert login.status_code == 503  # nginx's 502 page, not JSON: still "unavailable"
        assert login.get_json()["message"] == "the auth server is unavailable, retry later"
        assert client.get(READ, headers=headers).status_code == 422  # reads: checked here
        change = client.post("/api/tenants", json=BAD_TENANT, headers=headers)
        assert change.status_code == 503  # the session cannot be confirmed: not trusted
        assert "secret" not in json.dumps(change.get_json()).lower()
    assert client.post("/api/tenants", json=BAD_TENANT, headers=headers).status_code == 422
