"""The app without a cluster: settings, error shapes, bad input, CORS, CSRF, OpenAPI."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from saasodoo.api.config import ApiSettings, ConfigError
from saasodoo.api.openapi import document
from saasodoo.api.services import NOT_CHECKED, LeaderCheck
from saasodoo.app import create_app
from saasodoo.core.leader import Leader
from saasodoo.errors import NotFound, TransientClusterError
from tests.api.conftest import Api, csrf_token, services_of, sign_up

pytestmark = pytest.mark.unit


@pytest.fixture
def app() -> Iterator[Flask]:
    app = create_app(
        ApiSettings(cookie_secure=False, cors_origins=["https://app.example.com"]),
    )
    # No cluster in unit tests: the Lease as an operator holds it.
    services_of(app).leader = LeaderCheck(lambda: Leader(True, "op-0", "op-0 leads"))
    yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return sign_up(client, "alice@example.com")


def _is_error(body: dict[str, object], status: int) -> None:
    assert body["status"] == "error", body
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in str(body) and "secret" not in str(body).lower()


# -- settings -----------------------------------------------------------------------------------


def test_local_auth_is_the_default_and_is_announced(client: FlaskClient) -> None:
    body = client.get("/api/health").get_json()
    assert (body["status"], body["auth_mode"]) == ("ok", "local")
    assert "DEVELOPMENT MODE" in client.get("/").get_data(as_text=True)


def test_health_says_whether_an_operator_leads_without_waiting(app: Flask) -> None:
    """The first answer does not wait for the Lease (not known yet); the next ones say what
    the last look found, and a signed-in page says when none leads; no request waits."""
    looked: list[int] = []
    cluster_answers = threading.Event()

    def look() -> Leader:
        cluster_answers.wait(10)  # a slow cluster: answers only when the test lets it
        looked.append(1)
        return Leader(False, "op-0", "no operator leads: op-0 last renewed it 60 s ago")

    svc = services_of(app)
    svc.leader = LeaderCheck(look, ttl=60)
    client = app.test_client()
    first = client.get("/api/health").get_json()["operator"]  # the look still blocked
    assert first == NOT_CHECKED.to_dict()
    cluster_answers.set()
    deadline = time.monotonic() + 5
    second = first
    while second == first and time.monotonic() < deadline:
        time.sleep(0.05)
        second = client.get("/api/health").get_json()["operator"]
    assert second == {"leading": False, "holder": "op-0",
                      "message": "no operator leads: op-0 last renewed it 60 s ago"}  # fmt: skip
    assert len(looked) == 1  # within its ttl: not read again
    signup = client.get("/signup").get_data(as_text=True)
    token = csrf_token(signup)
    creds = {"email": "dana@example.com", "password": "long-enough-1", "csrf_token": token}
    assert client.post("/signup", data=creds).status_code == 302
    page = client.get("/tenants/new").get_data(as_text=True)
    assert "Changes are recorded but wait: no operator leads" in page


def test_production_refuses_the_local_auth_mode() -> None:
    with pytest.raises(ConfigError, match="local auth mode is for development only"):
        create_app(ApiSettings(env="production", secret_key="x" * 40))


def test_production_refuses_insecure_settings() -> None:
    settings = ApiSettings(
        env="production",
        supabase_url="http://project.example",
        supabase_key="anon",
        cookie_secure=False,
    )
    with pytest.raises(ConfigError) as err:
        create_app(settings)
    for problem in ("SECRET_KEY", "COOKIE_SECURE", "https"):
        assert problem in err.value.message


def test_production_with_supabase_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAASODOO_API_ENV", "production")
    monkeypatch.setenv("SAASODOO_API_SUPABASE_URL", "https://project.supabase.example")
    monkeypatch.setenv("SAASODOO_API_SUPABASE_KEY", "sb_publishable_test")
    monkeypatch.setenv("SAASODOO_API_SECRET_KEY", "k" * 48)
    monkeypatch.setenv("SAASODOO_API_ADMINS", "ops@example.com, 1234")
    app = create_app()
    settings = services_of(app).settings
    assert settings.mode == "supabase" and settings.admins == ["ops@example.com", "1234"]
    assert app.test_client().get("/api/health").get_json()["auth_mode"] == "supabase"
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_HTTPONLY"]
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


# -- errors and bad input -----------------------------------------------------------------------


def test_missing_and_garbage_tokens_answer_401(client: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eA=="}):
        res = client.get("/api/tenants", headers=headers)
        assert res.status_code == 401
        assert res.headers["WWW-Authenticate"].startswith("Bearer")
        _is_error(res.get_json(), 401)


@pytest.mark.parametrize(
    ("data", "status", "field"),
    [
        ("{not json", 400, None),
        (b"\xff\xfe", 400, None),
        ("[1, 2]", 422, "(body)"),
        ('"text"', 422, "(body)"),
        ('{"id": 42, "admin_email": "a@example.com"}', 422, "id"),
        ('{"id": "acme", "admin_email": "a@example.com", "color": "red"}', 422, "color"),
        ('{"id": "acme"}', 422, "admin_email"),
        ('{"id": "Acme!", "admin_email": "a@example.com"}', 422, "id"),
        ('{"id": "admin", "admin_email": "a@example.com"}', 422, "id"),
        ('{"id": "acme", "admin_email": "not-an-email"}', 422, "admin_email"),
        ('{"id": "acme", "admin_email": "a@example.com", "plan": "gold"}', 422, None),
        ('{"id": "acme", "admin_email": "a@example.com", "odoo_version": "12.0"}', 422, None),
        ('{"id": "acme", "admin_email": "a@example.com", "custom_domains": ["a b"]}', 422, None),
        # The platform's names and wildcards are never a custom domain (issue 18).
        (
            '{"id": "acme", "admin_email": "a@x.io", "custom_domains": ["odoo.localhost"]}',
            422,
            "custom_domains[0]",
        ),
        (
            '{"id": "acme", "admin_email": "a@x.io", "custom_domains": ["x.io", "API.odoo.'
            'LOCALHOST"]}',
            422,
            "custom_domains[1]",
        ),
        (
            '{"id": "acme", "admin_email": "a@x.io", "custom_domains": ["other.odoo.localhost"]}',
            422,
            "custom_domains[0]",
        ),
        (
            '{"id": "acme", "admin_email": "a@x.io", "custom_domains": ["*.shop.example"]}',
            422,
            "custom_domains[0]",
        ),
        (
            '{"id": "acme", "admin_email": "a@x.io", "overrides": {"ingress": {"subdomain": ""}}}',
            422,
            "overrides",
        ),
        ('{"id": "acme", "admin_email": "a@example.com", "overrides": {}}', 422, "overrides"),
        # What the new database is made with (issue 25 point 3): each named with its rule.
        ('{"id": "acme", "admin_email": "a@x.io", "country": "ZZ"}', 422, "country"),
        ('{"id": "acme", "admin_email": "a@x.io", "language": "fr"}', 422, "language"),
        ('{"id": "acme", "admin_email": "a@x.io", "timezone": "Paris"}', 422, "timezone"),
        ('{"id": "acme", "admin_email": "a@x.io", "company_name": " "}', 422, "company_name"),
        ('{"id": "acme", "admin_email": "a@x.io", "admin_login": "admin"}', 422, "admin_login"),
        ('{"id": "acme", "admin_email": "a@x.io", "country": 33}', 422, "country"),
    ],
)
def test_bad_create_input_never_500(api: Api, data: str, status: int, field: str | None) -> None:
    res = api.call("POST", "/api/tenants", data=data, content_type="application/json")
    assert res.status_code == status, res.get_json()
    body = res.get_json()
    _is_error(body, status)
    if status == 422:
        assert body["fields"], body
    if field:
        assert field in [f["field"] for f in body["fields"]], body


def test_bad_input_on_other_routes(api: Api) -> None:
    res = api.call("GET", "/api/tenants/Not_Valid")
    assert res.status_code == 422 and res.get_json()["fields"][0]["field"] == "id"
    res = api.call("GET", "/api/tenants/Not_Valid/usage")
    assert res.status_code == 422 and res.get_json()["fields"][0]["field"] == "id"
    res = api.call("PATCH", "/api/tenants/acme", json={"plan": 3})
    assert res.status_code == 422 and res.get_json()["fields"][0]["field"] == "plan"
    res = api.call("PATCH", "/api/tenants/acme", json={})
    assert res.status_code == 422
    res = api.call("POST", "/api/tenants/acme/rollback", json={"revision": "2"})
    assert res.status_code == 422 and res.get_json()["fields"][0]["field"] == "revision"
    res = api.call("DELETE", "/api/tenants/acme?keep_volumes=maybe")
    assert res.status_code == 422 and res.get_json()["fields"][0]["field"] == "keep_volumes"
    gone = api.call("GET", "/api/jobs/unknown")
    assert gone.status_code == 410 and "GET /api/operations/<name>" in gone.get_json()["message"]


@pytest.mark.parametrize(
    ("route", "data", "field"),
    [
        ("restore", '{"backup": 3}', "backup"),
        ("restore", '{"backup": "../../etc/passwd"}', "backup"),
        ("restore", '{"backup": "20260101T010203Z-on-demand.tar"}', "backup"),
        ("restore", '{"drop_previous": "yes"}', "drop_previous"),
        ("restore", '{"backup": null, "force": true}', "force"),
        ("restore", "[1]", "(body)"),
        ("verify", '{"backup": ""}', "backup"),
        ("verify", '{"drop_previous": true}', "drop_previous"),
    ],
)
def test_bad_backup_bodies_answer_422_naming_the_field(
    api: Api, route: str, data: str, field: str
) -> None:
    res = api.call(
        "POST", f"/api/tenants/acme/backups/{route}", data=data, content_type="application/json"
    )
    assert res.status_code == 422, res.get_json()
    _is_error(res.get_json(), 422)
    assert field in [f["field"] for f in res.get_json()["fields"]], res.get_json()
    res = api.call("GET", "/api/tenants/Not_Valid/backups")
    assert res.status_code == 422 and res.get_json()["fields"][0]["field"] == "id"


def test_backup_storage_settings_reach_the_library(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SAASODOO_API_BACKUP_S3_ENDPOINT", "http://minio.internal:9000")
    monkeypatch.setenv("SAASODOO_API_BACKUP_PVC_ROOT", str(tmp_path))
    monkeypatch.setenv("SAASODOO_API_BACKUP_TIMEOUT", "900")
    app = create_app()
    svc = services_of(app)
    assert svc.backups.s3_endpoint == "http://minio.internal:9000"
    assert svc.backups.pvc_root == tmp_path and svc.settings.backup_timeout == 900
    monkeypatch.setenv("SAASODOO_API_BACKUP_S3_ENDPOINT", "")
    monkeypatch.setenv("SAASODOO_API_BACKUP_PVC_ROOT", "")
    monkeypatch.setenv("SAASODOO_API_BACKUP_TIMEOUT", "")
    settings = ApiSettings()
    assert settings.backup_pvc_root is None and settings.backup_timeout is None
    assert not settings.backup_s3_endpoint


def test_unknown_routes_methods_and_big_bodies(client: FlaskClient, api: Api) -> None:
    res = client.get("/api/nothing-here")
    assert res.status_code == 404
    _is_error(res.get_json(), 404)
    res = client.put("/api/tenants")
    assert res.status_code == 405 and "GET" in res.headers["Allow"]
    _is_error(res.get_json(), 405)
    res = api.call("POST", "/api/tenants", data="x" * 100_000, content_type="application/json")
    assert res.status_code == 413
    _is_error(res.get_json(), 413)


def test_admin_routes_are_for_operators_only(api: Api) -> None:
    res = api.call("GET", "/api/admin/fleet")
    assert res.status_code == 403
    _is_error(res.get_json(), 403)
    for route in ("ensure", "upgrade"):
        res = api.call("POST", f"/api/admin/fleet/{route}", json={"odoo_version": "18.0"})
        assert res.status_code == 403, route
        _is_error(res.get_json(), 403)


@pytest.mark.parametrize(
    ("route", "data", "fields"),
    [
        ("ensure", '{"force": "yes"}', {"force"}),
        ("ensure", '{"selector": ""}', {"selector"}),
        ("ensure", '{"selector": null, "dry_run": true}', {"dry_run"}),
        ("ensure", "[1]", {"(body)"}),
        ("upgrade", "", {"odoo_version", "image_tag"}),
        ("upgrade", '{"canaries": 2}', {"odoo_version", "image_tag"}),
        ("upgrade", '{"odoo_version": "12.0"}', {"odoo_version"}),
        ("upgrade", '{"image_tag": "18.0 latest"}', {"image_tag"}),
        ("upgrade", '{"odoo_version": "18.0", "canaries": -1}', {"canaries"}),
        ("upgrade", '{"image_tag": "18.0", "max_failures": "3"}', {"max_failures"}),
        ("upgrade", '{"image_tag": "18.0", "selector": 7}', {"selector"}),
    ],
)
def test_bad_fleet_bodies_answer_422_naming_the_fields(
    route: str, data: str, fields: set[str]
) -> None:
    app = create_app(ApiSettings(cookie_secure=False, admins=["ops@example.com"]))
    ops = sign_up(app.test_client(), "ops@example.com")
    res = ops.call("POST", f"/api/admin/fleet/{route}", data=data, content_type="application/json")
    assert res.status_code == 422, res.get_json()
    _is_error(res.get_json(), 422)
    assert fields <= {f["field"] for f in res.get_json()["fields"]}, res.get_json()


def test_a_fleet_upgrade_is_refused_with_the_cli_to_run() -> None:
    """No API request can follow an upgrade's waves until Ready: 409 naming the command."""
    app = create_app(ApiSettings(cookie_secure=False, admins=["ops@example.com"]))
    ops = sign_up(app.test_client(), "ops@example.com")
    res = ops.call("POST", "/api/admin/fleet/upgrade", json={"odoo_version": "18.0"})
    assert res.status_code == 409 and "saasodoo fleet upgrade" in res.get_json()["message"]


# -- auth routes (local backend) ----------------------------------------------------------------


def test_register_login_refresh_logout_me(client: FlaskClient) -> None:
    creds = {"email": "Bob@Example.com", "password": "long-enough-1"}
    assert client.post("/api/auth/register", json=creds).status_code == 201
    res = client.post("/api/auth/register", json=creds)
    assert res.status_code == 409
    _is_error(res.get_json(), 409)
    bad = client.post("/api/auth/login", json={**creds, "password": "wrong-password"})
    assert bad.status_code == 401 and bad.get_json()["message"] == "invalid e-mail or password"
    session = client.post("/api/auth/login", json=creds).get_json()
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    me = client.get("/api/auth/me", headers=headers).get_json()
    assert me == {"id": session["user"]["id"], "email": "bob@example.com", "is_admin": False}
    renewed = client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert renewed.status_code == 200
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    refused = client.post(
        "/api/auth/refresh", json={"refresh_token": renewed.get_json()["refresh_token"]}
    )
    assert refused.status_code == 401


def test_after_log_out_the_old_token_is_refused(client: FlaskClient) -> None:
    """Local mode too: log-out ends every session of the user (as GoTrue's global scope)."""
    creds = {"email": "carol@example.com", "password": "long-enough-1"}
    client.post("/api/auth/register", json=creds)
    tokens = [client.post("/api/auth/login", json=creds).get_json() for _ in range(3)]
    first, second, unseen = ({"Authorization": f"Bearer {s['access_token']}"} for s in tokens)
    bad_tenant = {"id": "Not Valid!", "admin_email": "a@example.com"}  # 422 once past auth
    assert client.post("/api/tenants", json=bad_tenant, headers=first).status_code == 422
    assert client.get("/api/tenants/Not_Valid", headers=second).status_code == 422
    assert client.post("/api/auth/logout", headers=first).status_code == 204
    for headers in (first, second, unseen):
        refused = client.post("/api/tenants", json=bad_tenant, headers=headers)
        assert refused.status_code == 401
        assert refused.get_json()["message"] == "session ended, log in again"
    assert client.get("/api/tenants/Not_Valid", headers=second).status_code == 401


def test_register_validates_fields(client: FlaskClient) -> None:
    res = client.post("/api/auth/register", json={"email": "nobody", "password": "long-enough"})
    assert res.status_code == 422 and res.get_json()["fields"][0]["field"] == "email"
    res = client.post("/api/auth/register", json={"email": "a@example.com", "password": "short"})
    assert res.status_code == 422 and res.get_json()["fields"][0]["field"] == "password"
    res = client.post("/api/auth/register", json={"email": "a@example.com"})
    assert res.status_code == 422 and res.get_json()["fields"][0]["field"] == "password"


# -- CORS, CSRF, OpenAPI ------------------------------------------------------------------------


def test_cors_only_for_configured_origins(client: FlaskClient) -> None:
    allowed = client.options("/api/tenants", headers={"Origin": "https://app.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Authorization" in allowed.headers["Access-Control-Allow-Headers"]
    other = client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_web_forms_need_the_csrf_token(client: FlaskClient) -> None:
    res = client.post("/signup", data={"email": "c@example.com", "password": "long-enough-1"})
    assert res.status_code == 400
    assert "did not come from this site" in res.get_data(as_text=True)
    page = client.get("/signup").get_data(as_text=True)
    token = csrf_token(page)
    res = client.post(
        "/signup", data={"email": "c@example.com", "password": "long-enough-1", "csrf_token": token}
    )
    assert res.status_code == 302 and res.headers["Location"].endswith("/dashboard")
    cookie = res.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_openapi_document_is_valid_and_complete(client: FlaskClient, app: Flask) -> None:
    import jsonschema_rs
    import schemathesis

    doc = client.get("/api/openapi.json").get_json()
    assert doc == document() and doc["openapi"].startswith("3.1")
    for schema in doc["components"]["schemas"].values():
        jsonschema_rs.validator_for({**schema, "components": doc["components"]})
    operations = list(schemathesis.openapi.from_dict(doc).get_all_operations())
    assert len(operations) == sum(len(ops) for ops in doc["paths"].values())
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    routed = {
        (method, rule.rule.replace("<", "{").replace(">", "}"))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert documented == routed


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (TransientClusterError("the cluster is unreachable"), 503, "5"),
        (NotFound("gone"), 404, None),
    ],
)
def test_an_error_that_may_pass_later_says_when_to_retry(
    error: Exception, status: int, retry_after: str | None
) -> None:
    app = create_app(ApiSettings(cookie_secure=False))

    def boom() -> None:
        raise error

    app.add_url_rule("/api/boom", "boom", boom)
    res = app.test_client().get("/api/boom")
    assert res.status_code == status and res.get_json()["message"] == error.args[0]
    assert res.headers.get("Retry-After") == retry_after


def test_requests_are_counted_by_route_for_prometheus(app: Flask, client: FlaskClient) -> None:
    """saasodoo_api_requests_total by method, URL rule (never the path: ids make no series)
    and status; the durations beside them (#24 point 7)."""
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/tenants/nobody-here").status_code == 401
    assert client.get("/no/such/page").status_code == 404
    registry = app.extensions["saasodoo_metrics"].registry
    get = registry.get_sample_value
    assert get("saasodoo_api_requests_total",
               {"method": "GET", "route": "/api/health", "status": "200"}) == 1.0  # fmt: skip
    tenant = {"method": "GET", "route": "/api/tenants/<tenant_id>", "status": "401"}
    assert get("saasodoo_api_requests_total", tenant) == 1.0
    assert get("saasodoo_api_requests_total",
               {"method": "GET", "route": "unmatched", "status": "404"}) == 1.0  # fmt: skip
    count = get("saasodoo_api_request_duration_seconds_count",
                {"method": "GET", "route": "/api/health"})  # fmt: skip
    assert count == 1.0
