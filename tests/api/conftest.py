"""Fixtures of the API tests: keys and tokens, the auth double, apps and a live server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from waitress.server import create_server

from saasodoo.api import create_app
from saasodoo.api.config import ApiSettings
from saasodoo.api.services import Services
from saasodoo.settings import Settings
from tests.api.gotrue_double import GoTrueDouble
from tests.support import Cluster


@pytest.fixture(scope="session")
def gotrue() -> Iterator[GoTrueDouble]:
    double = GoTrueDouble().start()
    yield double
    double.stop()


@pytest.fixture(scope="session")
def cluster_settings(kube: Cluster) -> Settings:
    return Settings(kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)))


def services_of(app: Flask) -> Services:
    svc: Services = app.extensions["saasodoo"]
    return svc


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

    def wait_job(self, response: Any, timeout: float = 120) -> dict[str, Any]:
        assert response.status_code == 202, response.get_json()
        url = response.get_json()["status_url"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job: dict[str, Any] = self.call("GET", url).get_json()
            if job["state"] in ("succeeded", "failed"):
                return job
            time.sleep(0.5)
        raise AssertionError(f"job {url} did not finish in {timeout}s")


def sign_up(client: FlaskClient, email: str, password: str = "correct-horse-1") -> Api:
    res = client.post("/api/auth/register", json={"email": email, "password": password})
    assert res.status_code == 201, res.get_json()
    body = res.get_json()
    return Api(client, body["session"]["access_token"], body["user"]["id"])


OPERATOR = "ops@example.com"  # in ``local_app``'s admin list


def operator(client: FlaskClient, password: str = "correct-horse-1") -> Api:
    """The operator of ``local_app``, signed up by the first test that needs it."""
    res = client.post("/api/auth/login", json={"email": OPERATOR, "password": password})
    if res.status_code != 200:
        return sign_up(client, OPERATOR, password)
    body = res.get_json()
    return Api(client, body["access_token"], body["user"]["id"])


@pytest.fixture(scope="session")
def local_app(
    cluster_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """The app in the development-only local auth mode against the simulated cluster.

    Tenants keep their backups on their PVC; ``backup_pvc_root`` stands for where the PVCs
    would be mounted (empty here: no container runs on the simulated cluster)."""
    api = ApiSettings(
        cookie_secure=False,
        admins=[OPERATOR],
        backup_pvc_root=tmp_path_factory.mktemp("backup-pvcs"),
    )
    app = create_app(api, cluster_settings)
    yield app
    services_of(app).jobs.wait_idle(300)
    services_of(app).jobs.shutdown()


@dataclass
class LiveServer:
    app: Flask
    url: str


@pytest.fixture(scope="session")
def live_server(local_app: Flask) -> Iterator[LiveServer]:
    """``local_app`` served by waitress on 127.0.0.1 (a random free port)."""
    server = create_server(local_app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield LiveServer(local_app, f"http://127.0.0.1:{server.effective_port}")  # type: ignore[union-attr]
    server.close()


@pytest.fixture
def delete_after(local_app: Flask) -> Iterator[Callable[[str], None]]:
    """Register tenant ids to delete at the end of the test, whoever owns them."""
    ids: list[str] = []
    yield ids.append
    svc = services_of(local_app)
    svc.jobs.wait_idle(300)
    import asyncio

    from saasodoo.errors import NotFound

    for tenant_id in ids:
        try:
            asyncio.run(svc.tenants.delete(tenant_id, final_backup=False, wait=True))
        except NotFound:
            pass
