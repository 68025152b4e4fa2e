"""PDF reports and the maintenance page on the real node (issue 22, points 11 and 15c).

Point 11: a tenant on the starter plan (2 workers) prints PDF reports through Traefik, two
at once, with Debian's wkhtmltopdf in the Odoo image fetching the report's assets from the
pod itself (report.url: the Service's name, resolved to 127.0.0.1 in the web pod, on the
gevent port 8072, which serves them while both HTTP workers wait for wkhtmltopdf; on 8069 the
two reports would hold both workers until limit_time_real). The trimmed Odoo tree of the
real node has no `account` module (no invoices): the report printed is base's "Technical
guide" of a module (`base.report_irmodulereference`), which renders through the same
`ir.actions.report._render_qweb_pdf` and wkhtmltopdf as an invoice, with the same
web.report_assets_pdf bundle fetched from report.url.

Point 15c: while Odoo has no Ready pod (a restore scales it to zero) Traefik answers the
tenant's host with the maintenance page, 503 and Retry-After, not its bare 404; the restore
returns only once Odoo is Ready again, so the login page answers 200 right after.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from saasodoo.core.values import ADMIN_SECRET_KEY, ADMIN_SECRET_NAME
from tests.realnode.helpers import (
    HTTP_PORT,
    RealTenant,
    cli_json,
    pod,
    running_tenant,
    wait_login,
)
from tests.support import Cluster, eventually

pytestmark = pytest.mark.realnode

TENANT = RealTenant("rnpdf", "tenant-rnpdf")
REPORT = "base.report_irmodulereference"


@pytest.fixture(scope="module")
def tenant(kube: Cluster) -> Iterator[RealTenant]:
    with running_tenant(kube, TENANT, "admin@rnpdf.example") as t:
        # Ready in Kubernetes; Traefik serves it once its endpoint watch has seen the pod.
        assert wait_login(t.host)[0] == 200
        yield t


Answer = tuple[int, dict[str, str], bytes]


def request(
    host: str, method: str, path: str, body: bytes | None = None,
    headers: dict[str, str] | None = None, timeout: float = 60,
) -> Answer:  # fmt: skip
    """One request through Traefik's web entrypoint on 127.0.0.1 for HOST."""
    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=timeout)
    try:
        conn.request(method, path, body, {"Host": host, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def sign_in(kube: Cluster, t: RealTenant) -> str:
    """The admin's session cookie, signed in through Traefik with the Secret's password."""
    secret = kube.core.read_namespaced_secret(ADMIN_SECRET_NAME, t.namespace)
    password = base64.b64decode(secret.data[ADMIN_SECRET_KEY]).decode()
    params = {"db": "odoo", "login": f"admin@{t.id}.example", "password": password}
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params}).encode()
    status, headers, text = request(
        t.host, "POST", "/web/session/authenticate", body, {"Content-Type": "application/json"}
    )
    assert status == 200 and b'"uid"' in text, (status, text[:300])
    match = re.search(r"session_id=([^;]+)", headers.get("set-cookie", ""))
    assert match, headers
    return f"session_id={match.group(1)}"


def call_kw(t: RealTenant, cookie: str, model: str, method: str, *args: Any) -> Any:
    params = {"model": model, "method": method, "args": list(args), "kwargs": {}}
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params}).encode()
    status, _, text = request(
        t.host, "POST", "/web/dataset/call_kw", body,
        {"Content-Type": "application/json", "Cookie": cookie},
    )  # fmt: skip
    doc = json.loads(text)
    assert status == 200 and "error" not in doc, (status, text[:500])
    return doc["result"]


def pdf_pages(data: bytes) -> int:
    """Page objects of a PDF (wkhtmltopdf writes them uncompressed)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-z])", data))


def test_starter_plan_prints_two_pdf_reports_at_once_through_wkhtmltopdf(
    kube: Cluster, tenant: RealTenant
) -> None:
    odoo_pod = pod(kube, tenant.namespace, "odoo")
    conf = kube.kubectl("exec", "-n", tenant.namespace, odoo_pod, "-c", "odoo", "--",
                        "cat", "/run/odoo/odoo.conf")  # fmt: skip
    assert re.search(r"^workers = 2$", conf, re.M), "the starter plan runs 2 workers"
    version = kube.kubectl("exec", "-n", tenant.namespace, odoo_pod, "-c", "odoo", "--",
                           "wkhtmltopdf", "--version")  # fmt: skip
    assert "wkhtmltopdf 0.12" in version
    cookie = sign_in(kube, tenant)
    ids = call_kw(
        tenant, cookie, "ir.module.module", "search", [["name", "in", ["web", "base_setup"]]]
    )
    assert len(ids) == 2, ids
    results: dict[int, tuple[int, dict[str, str], bytes, float]] = {}

    def fetch(module_id: int) -> None:
        start = time.monotonic()
        status, headers, data = request(
            tenant.host, "GET", f"/report/pdf/{REPORT}/{module_id}", None, {"Cookie": cookie},
            timeout=180,
        )  # fmt: skip
        results[module_id] = (status, headers, data, time.monotonic() - start)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    assert set(results) == set(ids), results.keys()
    for module_id, (status, headers, data, seconds) in results.items():
        assert status == 200, (module_id, status, data[:500])
        assert headers.get("content-type") == "application/pdf", (headers, data[:300])
        assert data.startswith(b"%PDF-"), data[:100]
        assert data.rstrip().endswith(b"%%EOF")
        assert pdf_pages(data) >= 1, data[:500]
        # A deadlock would hold the request until limit_time_real (120 s) killed it.
        assert seconds < 90, f"report {module_id} took {seconds:.0f}s"
    # wkhtmltopdf fetched the report's assets from the pod itself (report.url, hostAliases).
    logs = kube.kubectl("logs", "-n", tenant.namespace, odoo_pod, "-c", "odoo")
    assert re.search(r"127\.0\.0\.1 .*GET /web/assets/[^ ]*report_assets", logs), logs[-3000:]
    assert "wkhtmltopdf failed" not in logs.lower()


def test_a_restore_shows_the_maintenance_page_and_returns_once_odoo_is_ready(
    kube: Cluster, tenant: RealTenant
) -> None:
    backup = cli_json(kube, "backup", "create", tenant.id)
    assert backup["job"]["succeeded"], backup
    seen: list[tuple[int, dict[str, str], bytes]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                seen.append(request(tenant.host, "GET", "/web/login", timeout=10))
            except OSError as exc:
                seen.append((0, {}, str(exc).encode()))
            time.sleep(0.5)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        restored = cli_json(kube, "backup", "restore", tenant.id, "--yes")
    finally:
        stop.set()
        watcher.join(30)
    assert restored["job"]["succeeded"], restored
    assert restored["odoo_ready_after_seconds"] is not None, restored
    # Completion means Ready: the login page answers within Traefik's endpoint watch delay
    # (a second or two), not after Odoo's start (its init container, -i checks: 20-60 s).
    status, body_text = wait_login(tenant.host, timeout=10)
    assert status == 200, (status, body_text[:300])
    statuses = [s for s, _, _ in seen]
    assert 404 not in statuses, statuses
    down = [(h, b) for s, h, b in seen if s == 503]
    assert down, f"no maintenance page seen during the restore: {statuses}"
    for headers, body in down:
        assert headers.get("retry-after") == "30", headers
        assert b"Down for maintenance" in body, body[:300]
        assert headers.get("content-type", "").startswith("text/html"), headers


def test_odoo_scaled_to_zero_gets_the_maintenance_page_then_200(
    kube: Cluster, tenant: RealTenant
) -> None:
    deploy = (
        kube.apps.list_namespaced_deployment(
            tenant.namespace, label_selector="app.kubernetes.io/component=odoo"
        )
        .items[0]
        .metadata.name
    )
    kube.kubectl("scale", "-n", tenant.namespace, f"deploy/{deploy}", "--replicas=0")
    try:

        def maintenance() -> tuple[int, dict[str, str], bytes] | None:
            answer = request(tenant.host, "GET", "/web/login")
            return answer if answer[0] == 503 else None

        answer = eventually(maintenance, timeout=120, what="503 from Traefik")
        assert answer is not None
        _, headers, body = answer
        assert headers.get("retry-after") == "30", headers
        assert b"Down for maintenance" in body, body[:300]
        assert request(tenant.host, "GET", "/odoo/action-1")[0] == 503  # any path of the host
    finally:
        kube.kubectl("scale", "-n", tenant.namespace, f"deploy/{deploy}", "--replicas=1")
    assert wait_login(tenant.host, timeout=300)[0] == 200
