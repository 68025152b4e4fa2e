"""Odoo 18 started exactly as the chart's pods start it: the rendered odoo.conf (ConfigMap), made
final by the rendered `odoo-init` init container (secrets appended from Secrets), then the
rendered `odoo` container's command. One server per scenario: threaded (`workers: 0`), prefork
(`workers: 2`, the plans' default) and prefork with the dedicated cron pod."""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.chart.helpers import RenderError, odoo_conf
from tests.odoo.conftest import InitRuns
from tests.odoo.harness import (
    ADMIN_PASSWORD,
    LocalPod,
    OdooProcess,
    RpcError,
    Tenant,
    rpc,
)

pytestmark = pytest.mark.odoo

SCENARIOS: dict[str, dict[str, Any]] = {
    "workers-0": {"config": {"workers": 0}},
    "workers-2": {"config": {"workers": 2}},
    "cron-split": {"config": {"workers": 2}, "cron": {"dedicated": True}},
}


@dataclass
class Server:
    tenant: Tenant
    docs: list[dict[str, Any]]
    web: LocalPod
    odoo: OdooProcess
    cron: OdooProcess | None

    @property
    def workers(self) -> int:
        return int(odoo_conf(self.docs)["workers"])

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.odoo.url + path, timeout=60, follow_redirects=False, **kwargs)


@pytest.fixture(scope="module", params=list(SCENARIOS), ids=list(SCENARIOS))
def server(request: pytest.FixtureRequest, initialized: InitRuns) -> Iterator[Server]:
    tenant = initialized.tenant
    docs = tenant.render(**SCENARIOS[request.param])
    web = tenant.pod(docs)
    procs: list[OdooProcess] = []
    try:
        procs.append(web.boot())
        cron = None
        if request.param == "cron-split":
            # its odoo-init --wait returns at once: the database is initialized
            cron = tenant.pod(docs, "cron").boot(wait_health=False)
            procs.append(cron)
        yield Server(tenant, docs, web, procs[0], cron)
    finally:
        for proc in procs:
            proc.stop()


def test_health_and_login_page_answer(server: Server) -> None:
    health = server.get("/web/health")
    assert (health.status_code, health.json()) == (200, {"status": "pass"})
    login = server.get("/web/login")
    assert login.status_code == 200, login.text[:500]
    assert 'name="login"' in login.text and 'name="password"' in login.text
    # the login page's assets compile and are served
    css = [p for p in login.text.split('"') if p.startswith("/web/assets/") and p.endswith(".css")]
    assert css, "no CSS bundle linked from /web/login"
    assert server.get(css[0]).status_code == 200


def test_database_manager_is_refused(server: Server) -> None:
    """list_db = False: the manager pages say it is disabled and list no database, the list
    call is refused, and so are the management calls (backup here) even with the right master
    password (the one of the rendered Secret)."""
    for path in ("/web/database/manager", "/web/database/selector"):
        page = server.get(path)
        assert "database manager has been disabled by the administrator" in page.text, path
        assert f'href="/odoo?db={server.tenant.db}"' not in page.text, path
    with rpc(server.odoo.url) as client, pytest.raises(RpcError, match="AccessDenied"):
        client.call("/web/database/list", {})
    master = server.web.env(server.web.container("odoo-init"))["ODOO_MASTER_PASSWORD"]
    backup = httpx.post(
        server.odoo.url + "/web/database/backup",
        data={"master_pwd": master, "name": server.tenant.db, "backup_format": "zip"},
        timeout=60,
    )
    assert not backup.content.startswith(b"PK"), "the database manager handed out a backup"
    assert "Database backup error: Access Denied" in backup.text


def test_the_database_is_pinned(server: Server) -> None:
    """dbfilter = ^<db>$: every request lands in the tenant's database, never on a selector,
    whatever database a client asks for."""
    for path in ("/", "/odoo", "/web", "/web/login?db=postgres", "/web?db=other"):
        resp = httpx.get(server.odoo.url + path, timeout=60, follow_redirects=True)
        assert resp.status_code == 200, (path, resp.status_code)
        assert "/web/database/selector" not in str(resp.url), path
        assert 'name="login"' in resp.text, path
    with rpc(server.odoo.url) as client:
        client.login(server.tenant.db, server.tenant.email, ADMIN_PASSWORD)
        info = client.call("/web/session/get_session_info", {})
        assert info["db"] == server.tenant.db


def test_proxy_mode_honours_forwarded_host_and_proto(server: Server) -> None:
    """Odoo records the URL it is reached at when an administrator logs in (web.base.url):
    behind the Ingress that is the public one, from X-Forwarded-Host/Proto."""
    forwarded = {"X-Forwarded-Host": "erp.customer.example", "X-Forwarded-Proto": "https"}
    pg, db = server.tenant.harness.pg, server.tenant.db
    param = "SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'"
    before = pg.psql(param, db).strip()
    with rpc(server.odoo.url) as client:
        client.http.headers.update(forwarded)
        client.login(server.tenant.db, server.tenant.email, ADMIN_PASSWORD)
        try:
            base = client.model("ir.config_parameter", "get_param", "web.base.url")
            assert base == "https://erp.customer.example"
        finally:
            client.model("ir.config_parameter", "set_param", "web.base.url", before)


def websocket_handshake(port: int, host: str) -> str:
    """The status line of a websocket upgrade of /websocket on 127.0.0.1:port."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /websocket HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Origin: http://{host}\r\n"
        "\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request.encode())
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode()


def test_websocket_upgrade(server: Server) -> None:
    """With workers > 0 Odoo serves /websocket on the gevent port only (the Ingress routes it
    there); threaded, on the HTTP port."""
    http_port = int(server.odoo.url.rsplit(":", 1)[1])
    ports = [p["containerPort"] for p in server.web.container("odoo").get("ports", [])]
    if server.workers > 0:
        assert 8072 in ports, "the rendered container does not expose the gevent port"
        status = websocket_handshake(server.odoo.gevent_port, "acme.example.com")
        assert status.startswith("HTTP/1.1 101"), status
        refused = websocket_handshake(http_port, "acme.example.com")
        assert " 500 " in refused, refused  # why the Ingress routes /websocket to 8072
    else:
        assert 8072 not in ports
        status = websocket_handshake(http_port, "acme.example.com")
        assert status.startswith("HTTP/1.1 101"), status


def test_cron_jobs_run_where_the_chart_puts_them(server: Server) -> None:
    """Web pods run cron workers unless the cron pod is dedicated; the cron pod runs them."""
    web_conf = odoo_conf(server.docs)
    web_log = server.odoo.log.read_text()
    if server.cron is None:
        assert int(web_conf["max_cron_threads"]) >= 1
        if server.workers > 0:
            assert "Worker WorkerCron" in web_log
        return
    assert web_conf["max_cron_threads"] == "0"
    assert "Worker WorkerCron" not in web_log
    cron_conf = odoo_conf(server.docs, "odoo-cron.conf")
    assert cron_conf["http_enable"] == "False"
    pg, db = server.tenant.harness.pg, server.tenant.db
    # the cron pod serves no HTTP at all
    deadline = time.monotonic() + 60
    while "Worker WorkerCron" not in server.cron.log.read_text():
        assert time.monotonic() < deadline, server.cron.tail()
        assert server.cron.proc.poll() is None, server.cron.tail()
        time.sleep(0.5)
    # a due job, and the wake-up Odoo itself sends when a job is triggered
    job = "(SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'autovacuum_job')"
    before = pg.psql(f"SELECT lastcall FROM ir_cron WHERE id = {job}", db).strip()
    pg.psql(f"UPDATE ir_cron SET nextcall = now() - interval '1 hour' WHERE id = {job}", db, "odoo")
    deadline = time.monotonic() + 120
    while pg.psql(f"SELECT lastcall FROM ir_cron WHERE id = {job}", db).strip() == before:
        # as Odoo's ir.cron._notifydb: on the `postgres` database, where cron workers listen
        pg.psql(f"SELECT pg_notify('cron_trigger', '{db}')", "postgres", "odoo")
        assert time.monotonic() < deadline, server.cron.tail()
        time.sleep(2)


def test_extra_options_never_break_odoo_s_config(initialized: InitRuns) -> None:
    """`odoo.config.extraOptions` naming an option the chart writes too (here `log_level`,
    also `odoo.config.logLevel`) either is refused by helm with a message naming it, or
    reaches Odoo once: Odoo refuses to start on a duplicate option in odoo.conf."""
    tenant = initialized.tenant
    extra = {"limit_request": 8192, "log_level": "warn"}
    try:
        docs = tenant.render(config={"workers": 0, "extraOptions": extra})
    except RenderError as exc:
        assert "log_level" in str(exc), str(exc)
        return
    web = tenant.pod(docs)
    odoo = web.boot(wait_health=False)
    try:
        odoo.wait_healthy()
    finally:
        odoo.stop()
    final = (web.volumes["config"] / "odoo.conf").read_text()
    assert final.count("\nlog_level =") == 1, final
