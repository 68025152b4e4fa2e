"""Fixtures of the API tests: the real Supabase Auth server, apps and a live server.

GoTrue (built by scripts/install-tools.sh) runs on 127.0.0.1 behind nginx serving it under
``/auth/v1`` (``scripts/gotrue.py``), each configuration with a fresh database on the local
PostgreSQL (``pg_server``), started once per session when a test first needs it:

- ``gotrue``: ES256 keys published at ``/.well-known/jwks.json``, ``iss`` set, as a current
  Supabase project;
- ``gotrue_hs256``: HS256 with the shared secret (older projects);
- ``gotrue_no_issuer``: no ``GOTRUE_JWT_ISSUER``: its tokens carry no ``iss`` (self-hosted).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from jwt.algorithms import ECAlgorithm
from supabase import ClientOptions, create_client
from waitress.server import create_server

from saasodoo.adapters.auth import ADMIN_CLAIM
from saasodoo.adapters.supabase import SupabaseAuth
from saasodoo.api.config import ApiSettings
from saasodoo.api.services import LeaderCheck, Services
from saasodoo.app import create_app
from saasodoo.core.leader import Leader
from saasodoo.core.operations import KINDS
from saasodoo.errors import NotFound
from saasodoo.odootenants import OdooTenants
from saasodoo.operation_requests import OperationRequests
from saasodoo.settings import Settings
from scripts import gotrue as gotrue_script
from scripts.gotrue import ANON_KEY, GoTrue, es256_private_jwk, prepare_database
from tests.backups.helpers import PgServer
from tests.fakes import FakeResources
from tests.operator_process import OperatorProcess, delete_tenants, running_operator, wait_for
from tests.support import Cluster


@pytest.fixture(scope="session")
def gotrue_binary() -> Path:
    try:
        return gotrue_script.gotrue_binary()
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _gotrue(
    name: str, pg: PgServer, binary: Path, tmp: pytest.TempPathFactory, **config: Any
) -> Iterator[GoTrue]:
    db_url = prepare_database(pg.host, pg.port, f"auth_{name}", f"pw-{name}")
    server = GoTrue(tmp.mktemp(f"gotrue-{name}"), db_url, **config)
    try:
        server.start(binary)
    except RuntimeError as exc:
        pytest.fail(f"GoTrue ({name}) did not start: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gotrue(
    pg_server: PgServer, gotrue_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GoTrue]:
    """ES256 (asymmetric keys, JWKS) and ``iss``, as a current Supabase project."""
    keys = [es256_private_jwk()]
    yield from _gotrue("es256", pg_server, gotrue_binary, tmp_path_factory, jwt_keys=keys)


#: Lifetime of ``gotrue_short_lived``'s access tokens (``GOTRUE_JWT_EXP``), seconds.
SHORT_JWT_EXP = 3


@pytest.fixture(scope="session")
def gotrue_short_lived(
    pg_server: PgServer, gotrue_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GoTrue]:
    """ES256 as ``gotrue``, with access tokens that expire after ``SHORT_JWT_EXP`` seconds
    (GoTrue checks ``exp`` without leeway), to log out with an expired one."""
    keys = [es256_private_jwk()]
    yield from _gotrue(
        "short", pg_server, gotrue_binary, tmp_path_factory, jwt_keys=keys, jwt_exp=SHORT_JWT_EXP
    )


@pytest.fixture(scope="session")
def gotrue_hs256(
    pg_server: PgServer, gotrue_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GoTrue]:
    """HS256 with the shared JWT secret, ``iss`` set."""
    yield from _gotrue("hs256", pg_server, gotrue_binary, tmp_path_factory)


@pytest.fixture(scope="session")
def gotrue_no_issuer(
    pg_server: PgServer, gotrue_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GoTrue]:
    """HS256 and no ``GOTRUE_JWT_ISSUER``: tokens without ``iss``."""
    yield from _gotrue("noiss", pg_server, gotrue_binary, tmp_path_factory, issuer=False)


def supabase_settings(server: GoTrue, url: str | None = None, **overrides: Any) -> ApiSettings:
    """The API's settings for ``server`` (at ``url`` instead: e.g. where nothing listens)."""
    env = server.api_env()
    settings: dict[str, Any] = {
        "supabase_url": url or env["SAASODOO_API_SUPABASE_URL"],
        "supabase_key": env["SAASODOO_API_SUPABASE_KEY"],
        "supabase_jwt_secret": env.get("SAASODOO_API_SUPABASE_JWT_SECRET", ""),
        "supabase_require_issuer": server.issuer,
        "cookie_secure": False,
    }
    return ApiSettings(**{**settings, **overrides})


#: The system namespace of the API tests' own operator (its Lease, the OdooTenants, the
#: requests): apart from any other operator the session runs.
API_NAMESPACE = "saasodoo-api-tests"


@pytest.fixture(scope="session")
def cluster_settings(kube: Cluster) -> Settings:
    return Settings(kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)),
                    system_namespace=API_NAMESPACE)  # fmt: skip


@pytest.fixture(scope="session")
def api_operator(
    kube: Cluster, cluster_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """``saasodoo operator run`` for the API's cluster tests (``cluster_app``), in the
    system namespace ``API_NAMESPACE``, with the API's base domain; what a test left is
    deleted at the end without a final backup, then the namespace."""
    logs = tmp_path_factory.mktemp("api-operator")
    with running_operator(kube, logs, "api-tests", system_namespace=API_NAMESPACE,
                          base_domain=cluster_settings.base_domain,
                          operator_workers="2") as op:  # fmt: skip
        wait_for(lambda: "leads" in op.output(), 60, "the operator to lead", op)
        yield op
        delete_tenants(kube, API_NAMESPACE)
    kube.kubectl("delete", "namespace", API_NAMESPACE, "--timeout=120s")


def csrf_token(page: str) -> str:
    """The CSRF token a web UI page's form carries (its hidden ``csrf_token`` field)."""
    return page.split('name="csrf_token" value="')[1].split('"')[0]


def services_of(app: Flask) -> Services:
    svc: Services = app.extensions["saasodoo"]
    return svc


def fake_resources(app: Flask) -> dict[str, FakeResources]:
    """The app's OdooTenants and request resources in memory (``tests.fakes.FakeResources``,
    by kind: ``OdooTenant``, ``OdooTenantRestore``...), for unit tests without a cluster;
    the Lease as an operator holds it."""
    svc = services_of(app)
    kinds = {op.kind: FakeResources(op.kind) for op in KINDS.values()}
    kinds["OdooTenant"] = FakeResources("OdooTenant")
    svc.objects = OdooTenants(svc.tenants.ctx.settings, ctx=svc.tenants.ctx)
    svc.objects.resources = kinds["OdooTenant"]  # type: ignore[assignment]
    svc.requests = OperationRequests(
        svc.tenants.ctx, tenants=svc.tenants, backups=svc.backups,
        objects=lambda op: kinds[op.kind],  # type: ignore[arg-type,return-value]
        tenant_objects=kinds["OdooTenant"],  # type: ignore[arg-type]
    )  # fmt: skip
    svc.leader = LeaderCheck(lambda: Leader(True, "op-0", "op-0 leads"))
    return kinds


def odoo_tenant(tenant_id: str, owner: str, **spec: Any) -> dict[str, Any]:
    """An OdooTenant as the API server returns it (``spec`` in camelCase, added)."""
    body = {"plan": "starter", "odooVersion": "18.0", "owner": owner,
            "adminEmail": f"admin@{tenant_id}.example", **spec}  # fmt: skip
    return {"kind": "OdooTenant", "metadata": {"name": tenant_id, "generation": 1},
            "spec": body}  # fmt: skip


@dataclass
class Api:
    """A signed-in user's view of the API through Flask's test client."""

    client: FlaskClient
    token: str
    user_id: str
    tenant_id: str = ""  # a tenant of this user's, when a test made one

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.open(path, method=method, headers=self.headers, **kwargs)

    def wait_tenant(self, response: Any, timeout: float = 180) -> dict[str, Any]:
        """The tenant of a 202 (``tenant``, ``Location`` its URL) once the operator observed
        the change and says how it ended: Ready True, or Stalled (``status`` Failed); a
        deletion: ``{}`` once the tenant answers 404."""
        assert response.status_code == 202, response.get_json()
        url, asked = response.headers["Location"], response.get_json()["tenant"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = self.call("GET", url)
            if res.status_code == 404:
                return {}
            seen: dict[str, Any] = res.get_json()
            done = seen["ready"] == "True" or seen["status"] == "Failed"
            if seen["observed_generation"] == asked["generation"] and done:
                return seen
            time.sleep(0.5)
        raise AssertionError(f"tenant {url} did not settle in {timeout}s: {seen}")

    def wait_operation(self, response: Any, timeout: float = 180) -> dict[str, Any]:
        """The request resource of a 202 (``operation``) once its phase is final."""
        assert response.status_code == 202, response.get_json()
        url = response.headers["Location"]
        assert url.startswith("/api/operations/"), url
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found: dict[str, Any] = self.call("GET", url).get_json()
            if found["phase"] in ("Succeeded", "Failed"):
                return found
            time.sleep(0.5)
        raise AssertionError(f"operation {url} did not finish in {timeout}s: {found}")


def sign_up(client: FlaskClient, email: str, password: str = "correct-horse-1") -> Api:
    res = client.post("/api/auth/register", json={"email": email, "password": password})
    assert res.status_code == 201, res.get_json()
    body = res.get_json()
    return Api(client, body["session"]["access_token"], body["user"]["id"])


OPERATOR = "ops@example.com"  # made an operator in GoTrue by ``cluster_app``
OPERATOR_PASSWORD = "correct-horse-1"


def make_operator(server: GoTrue, user_id: str) -> None:
    """What an operator does for a colleague with the service role: set
    ``app_metadata.saasodoo_admin`` through GoTrue's admin API (new tokens carry it)."""
    now = int(time.time())
    claims = {"role": "service_role", "iss": server.issuer_url, "iat": now, "exp": now + 60}
    if server.jwt_keys:
        jwk = server.jwt_keys[0]
        key = ECAlgorithm.from_jwk(json.dumps(jwk))
        service = jwt.encode(claims, key, algorithm="ES256", headers={"kid": jwk["kid"]})
    else:
        service = jwt.encode(claims, server.jwt_secret, algorithm="HS256")
    with httpx.Client() as http:
        options = ClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=http)
        admin = create_client(server.url, service, options=options).auth.admin
        admin.update_user_by_id(user_id, {"app_metadata": {ADMIN_CLAIM: True}})


def operator(client: FlaskClient) -> Api:
    """The operator of ``cluster_app`` (signed up and made one when the app started)."""
    res = client.post("/api/auth/login", json={"email": OPERATOR, "password": OPERATOR_PASSWORD})
    assert res.status_code == 200, res.get_json()
    body = res.get_json()
    return Api(client, body["access_token"], body["user"]["id"])


@pytest.fixture(scope="session")
def cluster_app(
    cluster_settings: Settings,
    gotrue: GoTrue,
    api_operator: OperatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Flask]:
    """The app against the simulated cluster, its users in the real GoTrue (``gotrue``);
    ``OPERATOR`` is an operator through ``app_metadata``, as in production. Its changes
    are OdooTenants and requests of ``API_NAMESPACE``, run by ``api_operator``.

    Tenants keep their backups on their PVC; ``backup_pvc_root`` stands for where the PVCs
    would be mounted for the API (an import is staged there; empty otherwise: no container
    runs on the simulated cluster)."""
    ops = SupabaseAuth(gotrue.url, ANON_KEY).sign_up(OPERATOR, OPERATOR_PASSWORD)
    make_operator(gotrue, ops.account.id)
    api = supabase_settings(gotrue, backup_pvc_root=tmp_path_factory.mktemp("backup-pvcs"))
    yield create_app(api, cluster_settings)


@dataclass
class LiveServer:
    app: Flask
    url: str


@pytest.fixture(scope="session")
def live_server(cluster_app: Flask) -> Iterator[LiveServer]:
    """``cluster_app`` served by waitress on 127.0.0.1 (a random free port)."""
    server = create_server(cluster_app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield LiveServer(cluster_app, f"http://127.0.0.1:{server.effective_port}")  # type: ignore[union-attr]
    server.close()


@pytest.fixture
def delete_after(cluster_app: Flask) -> Iterator[Callable[[str], None]]:
    """Register tenant ids to delete at the end of the test, whoever owns them."""
    ids: list[str] = []
    yield ids.append
    svc = services_of(cluster_app)
    for tenant_id in ids:
        try:
            # Not waiting for the operator (~10 s a tenant): the ids are never reused.
            svc.objects.delete(tenant_id, final_backup=False)
        except NotFound:
            pass
