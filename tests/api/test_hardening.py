"""Hostile input on the app without a cluster (issue #18): redirects after log-in, abusive
JSON bodies, body size, operators' overrides checked before anything is queued."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from saasodoo.adapters.auth import Account, Session, VerifierConfig
from saasodoo.adapters.storage import S3Location
from saasodoo.api import imports
from saasodoo.api.config import ApiSettings
from saasodoo.api.openapi import OPERATIONS
from saasodoo.app import create_app
from saasodoo.context import Context
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from saasodoo.web.views import safe_redirect_target
from tests.api.conftest import Api, csrf_token, fake_resources, sign_up
from tests.fakes import FakeHelm, FakeKube

pytestmark = pytest.mark.unit

OPS = "ops@example.com"


@pytest.fixture
def app() -> Iterator[Flask]:
    app = create_app(ApiSettings(cookie_secure=False, admins=[OPS]))
    app.extensions["fakes"] = fake_resources(app)
    yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# -- open redirect after log-in ---------------------------------------------------------------

#: Targets a browser would follow off the site (or that a decoding proxy would turn into one).
BYPASSES = [
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "\x00//evil.example",
    "/\x0b/evil.example",
    "\\\\evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "/%2f/evil.example",
    "/%2F%2Fevil.example",
    "%2f%2fevil.example",
    "/%5cevil.example",
    "/%5Cevil.example",
    "/%252f/evil.example",
    "/%09/evil.example",
    "/%0d%0a/evil.example",
    "https://evil.example",
    "http:evil.example",
    "http:/evil.example",
    "HTTPS://evil.example/",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "//user@evil.example",
    "//ops%40example.com@evil.example",
    "https://app.example@evil.example",
    "evil.example",
    "dashboard",
    "/\u3002evil.example",  # ideographic full stop
    "/\uff0f/evil.example",  # fullwidth solidus
    "/\uff3cevil.example",  # fullwidth reverse solidus
    "/\u2215evil.example",  # division slash
    "/dashboard\u202e",
    "/" + "a" * 3000,
    "",
]

SAFE = ["/dashboard", "/tenants/acme", "/tenants/acme?tab=backups", "/tenants/a-b#top", "/"]


@pytest.mark.parametrize("target", BYPASSES)
def test_redirect_targets_that_leave_the_site_are_refused(target: str) -> None:
    assert safe_redirect_target(target) is None


@pytest.mark.parametrize("target", SAFE)
def test_same_site_paths_are_kept(target: str) -> None:
    assert safe_redirect_target(target) == target


def _login_with_next(client: FlaskClient, next_raw: str) -> str:
    page = client.get("/login").get_data(as_text=True)
    csrf = csrf_token(page)
    res = client.post(
        f"/login?next={next_raw}",
        data={"email": "alice@example.com", "password": "correct-horse-1", "csrf_token": csrf},
    )
    assert res.status_code == 302, res.get_data(as_text=True)
    return str(res.headers["Location"])


@pytest.mark.parametrize(
    "next_raw",
    [
        "/%09/evil.example",  # the report: Location was //evil.example
        "//evil.example",
        "/%5Cevil.example",
        "%2F%2Fevil.example",
        "/%0D%0A/evil.example",
        "https://evil.example",
        "javascript:alert(1)",
        "/%252f%252fevil.example",
        "/%EF%BC%8F/evil.example",
    ],
)
def test_login_never_redirects_off_the_site(client: FlaskClient, next_raw: str) -> None:
    sign_up(client, "alice@example.com")
    location = _login_with_next(client, next_raw)
    assert location == "/dashboard", location


def test_login_follows_a_same_site_next(client: FlaskClient) -> None:
    sign_up(client, "alice@example.com")
    assert _login_with_next(client, "/tenants/acme") == "/tenants/acme"


# -- abusive JSON bodies ----------------------------------------------------------------------

NESTED = "[" * 1000 + "]" * 1000
#: Every route that reads a JSON body, and whether it needs an operator.
JSON_ROUTES = [
    ("POST", "/api/auth/login", False),
    ("POST", "/api/auth/register", False),
    ("POST", "/api/auth/refresh", False),
    ("POST", "/api/auth/logout", False),
    ("POST", "/api/tenants", False),
    ("PATCH", "/api/tenants/acme", False),
    ("POST", "/api/tenants/acme/rollback", False),
    ("POST", "/api/tenants/acme/copy", False),
    ("POST", "/api/tenants/acme/refresh", False),
    ("POST", "/api/tenants/acme/backups/restore", False),
    ("POST", "/api/tenants/acme/backups/verify", False),
    ("POST", "/api/tenants/acme/domains/verify", False),
    ("POST", "/api/admin/fleet/ensure", True),
    ("POST", "/api/admin/fleet/upgrade", True),
]


def test_every_route_with_a_body_is_in_the_list() -> None:
    documented = {
        (op.method.upper(), op.path.replace("{tenant_id}", "acme"))
        for op in OPERATIONS
        if op.body is not None
    }
    assert documented == {(method, path) for method, path, _ in JSON_ROUTES}


@pytest.mark.parametrize(("method", "path", "operator"), JSON_ROUTES)
@pytest.mark.parametrize(
    "body",
    [
        NESTED,
        '{"a":' * 1000 + "1" + "}" * 1000,
        '{"id": "acme", "admin_email": "a@example.com", "overrides": ' + NESTED + "}",
        '{"email": "a@example.com", "password": ' + "[" * 40 + "]" * 40 + "}",
    ],
    ids=["arrays", "objects", "nested-field", "depth-40"],
)
def test_deeply_nested_json_is_a_4xx_without_traceback(
    client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    operator: bool,
    body: str,
) -> None:
    user = sign_up(client, OPS if operator else "alice@example.com")
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        res = user.call(method, path, data=body, content_type="application/json")
    assert res.status_code == 400, res.get_json()
    doc = res.get_json()
    assert doc["status"] == "error" and "nests deeper than 32 levels" in doc["message"]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text


def test_the_413_answer_says_the_limit(client: FlaskClient) -> None:
    alice = sign_up(client, "alice@example.com")
    res = alice.call("POST", "/api/tenants", data="x" * 70_000, content_type="application/json")
    assert res.status_code == 413
    assert res.get_json()["message"] == ("the request body is larger than the limit of 65536 bytes")
    res = client.post("/api/auth/login", data="[" * 70_000, content_type="application/json")
    assert res.status_code == 413 and "65536 bytes" in res.get_json()["message"]


# -- operators' overrides: the chart's schema before anything is queued ------------------------


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"odoo": {"replicas": "many"}}, "replicas"),
        ({"odoo": {"colour": "red"}}, "colour"),
        ({"backup": {"storage": "tape"}}, "storage"),
    ],
)
def test_overrides_the_schema_refuses_answer_422_before_anything_is_written(
    client: FlaskClient, overrides: dict[str, object], says: str
) -> None:
    ops: Api = sign_up(client, OPS)
    fakes = client.application.extensions["fakes"]
    body = {"id": "schemacheck", "admin_email": "a@example.com", "overrides": overrides}
    res = ops.call("POST", "/api/tenants", json=body)
    assert res.status_code == 422, res.get_json()
    doc = res.get_json()
    assert says in doc["message"], doc
    assert all(f["field"].startswith("values") for f in doc["fields"]), doc
    assert fakes["OdooTenant"].calls == []  # nothing read or written


# -- operators named by e-mail ----------------------------------------------------------------


def test_email_operators_are_flagged_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    settings = ApiSettings(
        supabase_url="https://project.supabase.example",
        supabase_key="sb_publishable_test",
        admins=["8d5c1f8e-0000-4000-8000-000000000001", "ops@example.com"],
    )
    assert settings.email_admins() == ["ops@example.com"]
    with caplog.at_level(logging.WARNING):
        create_app(settings)
    assert "names 1 operator(s) by e-mail" in caplog.text and "email_verified" in caplog.text
    assert "ops@example.com" not in caplog.text  # no addresses in the log


# -- CSRF tokens that are not ASCII -----------------------------------------------------------

NON_ASCII_TOKENS = ["é", "\u2028", "\U0001f600" * 40]


@pytest.mark.parametrize("token", NON_ASCII_TOKENS, ids=["e-acute", "line-separator", "emoji"])
def test_a_non_ascii_csrf_token_is_a_4xx_without_traceback(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, token: str
) -> None:
    """hmac.compare_digest refuses str that are not ASCII: the tokens are compared as bytes."""
    assert client.get("/login").status_code == 200  # the session now has a token
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        res = client.post(
            "/login",
            data={"csrf_token": token, "email": "a@example.com", "password": "x"},
        )
    assert res.status_code == 400, res.data
    assert b"the form expired" in res.data
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(
    "token",
    ["é".encode(), b"\xff\xfe", "\U0001f600".encode()],
    ids=["e-acute", "not-utf8", "emoji"],
)
def test_an_upload_with_a_non_ascii_csrf_token_is_refused(token: bytes, tmp_path: Path) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n' + token + b"\r\n"
        b'--b\r\nContent-Disposition: form-data; name="zip"; filename="a.zip"\r\n'
        b"Content-Type: application/zip\r\n\r\nPK\r\n--b--\r\n"
    )
    with pytest.raises(imports.BadForm, match="the form expired"):
        imports.receive_form(io.BytesIO(body), b"b", tmp_path, 1 << 20, csrf="expected-token")
    assert list(tmp_path.iterdir()) == []


# -- JSON endpoints take JSON only (issue #22, point 16) --------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_json_body_sent_as_another_type_is_refused_with_415(content_type: str | None) -> None:
    """A cross-site form or a `fetch` without a CORS preflight can send only these types: the
    body is refused before it is read (on main a text/plain body created a tenant)."""
    kube, helm = FakeKube(), FakeHelm(Settings(base_domain="odoo.test"))
    tenants = Tenants(Context(Settings(base_domain="odoo.test"), helm=helm, kube=kube))
    app = create_app(ApiSettings(cookie_secure=False), tenants=tenants)
    written = fake_resources(app)["OdooTenant"].objs
    alice = sign_up(app.test_client(), "alice@example.com")
    body = '{"id": "acme", "admin_email": "a@acme.example"}'
    kwargs = {} if content_type is None else {"content_type": content_type}
    res = alice.call("POST", "/api/tenants", data=body, **kwargs)
    assert res.status_code == 415, res.get_json()
    assert res.get_json()["message"] == (
        f"Content-Type must be application/json, not {(content_type or 'none').split(';')[0]}"
    )
    assert written == {}
    # an empty body needs no type (POST .../suspend), and JSON still works
    res = alice.call("POST", "/api/tenants", data=body, content_type="application/json")
    assert res.status_code == 202, res.get_json()
    assert list(written) == ["acme"] and written["acme"]["spec"]["owner"] == alice.user_id


def test_reprs_never_show_secrets() -> None:
    """What a log line or a traceback shows of the S3 location, a session, the verifier."""
    location = S3Location("http://s3", "b", "p", "AKIA-ID", "s3-secret-key-value")
    session = Session("access-token-value", "refresh-token-value", 60, 0, Account("u", None))
    config = VerifierConfig("https://auth", hs256_secret="hs256-secret-value")
    shown = repr(location) + repr(session) + repr(config)
    assert "AKIA-ID" in shown
    for secret in ("s3-secret-key-value", "access-token-value", "refresh-token-value",
                   "hs256-secret-value"):  # fmt: skip
        assert secret not in shown
