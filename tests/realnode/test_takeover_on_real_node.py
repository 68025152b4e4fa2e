"""Issue 18, point 1, on the real node with Traefik in front: B cannot receive A's traffic.

Tenant A runs with a custom domain it proved through DNS (tests/dns_server.py, a real DNS
server on 127.0.0.1); tenant B tries every form of ``tests.takeover.takeover_hosts`` as a
custom domain, on create and on update, and is refused. Then each of those hosts is sent
to Traefik on 127.0.0.1, over HTTP (Host header) and HTTPS (SNI and Host header): A's own
hosts reach A's Odoo, the platform's hosts reach no tenant (Traefik's 404), and B's Odoo
never answers. The two Odoos are told apart by signing in: each tenant's admin (its own
login and generated password) is accepted only by its own tenant's Odoo (both databases are
named ``odoo``).
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from saasodoo.context import Context
from saasodoo.core.spec import TenantSpec
from saasodoo.core.values import ADMIN_SECRET_KEY, ADMIN_SECRET_NAME
from saasodoo.domains import HostTaken
from saasodoo.errors import InvalidInput, NotFound
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.dns_server import Zone, dns_server
from tests.realnode.helpers import (
    BASE_DOMAIN,
    HTTP_PORT,
    HTTPS_PORT,
    NODE_POOL,
    TLS,
    RealTenant,
    real_nodes,
)
from tests.support import Cluster
from tests.takeover import TAKEOVER_FORMS, attempt_takeover, owners_of, takeover_hosts

pytestmark = pytest.mark.realnode

A, B, C = "tka", "tkb", "tkc"
A_DOMAIN = "shop.alpha.example"


@dataclass
class World:
    tenants: Tenants
    a: RealTenant
    b: RealTenant
    passwords: dict[str, str]


def delete(tenants: Tenants, *ids: str) -> None:
    for tid in ids:
        try:
            asyncio.run(tenants.delete(tid, final_backup=False))
        except NotFound:
            pass


def request(host: str, tls: bool, body: dict[str, Any] | None = None) -> tuple[int, str]:
    """GET /web/login (or, with ``body``, POST it as JSON-RPC to /web/session/authenticate)
    for ``host`` through Traefik on 127.0.0.1, with SNI = ``host`` over TLS; status 0 and
    the error when the connection itself fails."""
    conn: http.client.HTTPConnection
    if tls:
        conn = SNIConnection(host.rstrip("."), "127.0.0.1", HTTPS_PORT, timeout=30, context=TLS)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=30)
    try:
        if body is None:
            conn.request("GET", "/web/login", headers={"Host": host})
        else:
            data = json.dumps({"jsonrpc": "2.0", "method": "call", "params": body})
            headers = {"Host": host, "Content-Type": "application/json"}
            conn.request("POST", "/web/session/authenticate", data, headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    except (OSError, ValueError, UnicodeError) as exc:
        return 0, repr(exc)
    finally:
        conn.close()


class SNIConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with the tenant's host as SNI (http.client sends the address)."""

    def __init__(self, sni: str, *args: Any, context: ssl.SSLContext, **kwargs: Any) -> None:
        super().__init__(*args, context=context, **kwargs)
        self.sni, self.ctx = sni, context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self.ctx.wrap_socket(sock, server_hostname=self.sni)


def who_answers(world: World, host: str, tls: bool) -> tuple[str | None, list[tuple[int, str]]]:
    """Which tenant's Odoo answers ``host``: each tenant's admin signs in through it; Odoo
    accepts only its own tenant's login and password (one database each, also named
    ``odoo``). Returns the tenant id (None: neither) and the raw answers."""
    answers = []
    found = None
    for t in (world.a, world.b):
        creds = {"db": "odoo", "login": f"admin@{t.id}.example", "password": world.passwords[t.id]}
        status, text = request(host, tls, creds)
        answers.append((status, text[:300]))
        if status == 200:
            result = json.loads(text).get("result") or {}
            if result.get("uid") and result.get("username") == creds["login"]:
                assert found is None, (host, answers)
                found = t.id
    return found, answers


def wait_answer(world: World, host: str, tls: bool, want: str, timeout: float = 120) -> str | None:
    deadline = time.monotonic() + timeout
    got, _ = who_answers(world, host, tls)
    while got != want and time.monotonic() < deadline:
        time.sleep(2)
        got, _ = who_answers(world, host, tls)
    return got


def password(kube: Cluster, t: RealTenant) -> str:
    secret = kube.core.read_namespaced_secret(ADMIN_SECRET_NAME, t.namespace)
    return base64.b64decode(secret.data[ADMIN_SECRET_KEY]).decode()


@pytest.fixture(scope="module")
def world(kube: Cluster, helm4: str) -> Iterator[World]:
    assert real_nodes(kube), "no real node in the cluster: scripts/cluster.sh up starts one"
    with dns_server() as zone:
        tenants = Tenants(Context(settings(kube, helm4, zone)))
        delete(tenants, A, B, C)
        try:
            asyncio.run(tenants.create(spec_of(A, A_DOMAIN)))
            asyncio.run(tenants.create(spec_of(B)))
            (state,) = [s for s in tenants.domain_states(A) if s.host == A_DOMAIN]
            assert state.challenge is not None, state
            zone.set(state.challenge.txt_name, "TXT", state.challenge.txt_value)
            asyncio.run(tenants.verify_domain(A, A_DOMAIN))
            assert owners_of(kube, A_DOMAIN) == [f"tenant-{A}"]
            a, b = RealTenant(A, f"tenant-{A}"), RealTenant(B, f"tenant-{B}")
            yield World(tenants, a, b, {t.id: password(kube, t) for t in (a, b)})
        finally:
            delete(tenants, A, B, C)


@pytest.fixture(scope="module")
def helm4(kube: Cluster) -> str:
    return str(kube.tools.helm(4))


def settings(kube: Cluster, helm: str, zone: Zone) -> Settings:
    return Settings(
        kubeconfig=kube.kubeconfig,
        helm_binary=helm,
        base_domain=BASE_DOMAIN,
        node_pool=NODE_POOL,
        helm_timeout="5m",
        dns_nameserver="127.0.0.1",
        dns_port=zone.port,
        dns_timeout=3,
    )


def spec_of(tid: str, *domains: str) -> TenantSpec:
    return TenantSpec.parse(
        {"id": tid, "admin_email": f"admin@{tid}.example", "custom_domains": list(domains)}
    )


def test_b_never_answers_a_host_of_a_or_the_platform(kube: Cluster, world: World) -> None:
    # The check works: each tenant's own host signs in its own admin only, HTTP and HTTPS.
    for tls in (False, True):
        assert wait_answer(world, world.a.host, tls, A) == A
        assert wait_answer(world, world.b.host, tls, B) == B
        assert wait_answer(world, A_DOMAIN, tls, A) == A

    hosts = takeover_hosts(A, A_DOMAIN, BASE_DOMAIN)
    assert set(hosts) == set(TAKEOVER_FORMS)
    for form, host in hosts.items():
        expected = HostTaken if form.startswith("custom-domain") else InvalidInput
        on_create, on_update = attempt_takeover(
            Tenants(Context(world.tenants.ctx.settings)), B, C, host
        )
        assert isinstance(on_create, expected), (form, on_create)
        assert isinstance(on_update, expected), (form, on_update)
    assert kube.core.list_namespace(field_selector=f"metadata.name=tenant-{C}").items == []
    assert list(asyncio.run(world.tenants.get(B)).spec.custom_domains) == []
    assert owners_of(kube, A_DOMAIN) == [f"tenant-{A}"]

    # Every host through Traefik, HTTP and HTTPS (SNI): A's hosts reach A, the platform's
    # reach no tenant (Traefik's 404), B's Odoo answers none of them.
    for form, host in hosts.items():
        for tls in (False, True):
            got, answers = who_answers(world, host, tls)
            assert got != B, (form, host, tls, answers)
            if form in ("subdomain", "custom-domain"):
                assert got == A, (form, host, tls, answers)
            elif form == "custom-domain-respelled" and got is not None:
                assert got == A, (form, host, tls, answers)  # Traefik may fold the spelling
            else:
                status, body = request(host, tls)
                assert got is None and status in (0, 400, 404), (form, host, tls, answers)
                assert status in (0, 400, 404) and "odoo" not in body.lower(), (host, body[:300])
