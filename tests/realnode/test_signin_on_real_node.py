"""Issue #22 point 2 on the real node: readiness for upgrades proves a signed-in request.

`/web/health` is `auth='none'` and answers 200 without the database, so an Odoo whose signed-in
pages all fail (Odoo of another series on the database: odoo/odoo#27446, `column ... does not
exist`) looks healthy there. The chart's `helm test` (files/signin-check.py) signs in over
JSON-RPC with the admin Secret's password; the fleet upgrade runs it after each tenant and rolls
back a tenant that fails it. Here, with real pods: it passes on a healthy tenant (the fleet
upgrade goes on), and when a column Odoo reads at sign-in is gone (the same kind of fault as a
schema of another series) it fails while /web/health still answers 200: the fleet upgrade
reports the tenant failed, rolls it back, and goes no further. (And point 9: PostgreSQL's
/dev/shm is the plan's memory-backed volume.)
"""

from __future__ import annotations

import asyncio
import http.client
import time

import pytest

from saasodoo.context import Context
from saasodoo.errors import NotReady
from saasodoo.fleet import Fleet, FleetTarget
from saasodoo.reconciler import Outcome
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.realnode.helpers import (
    BASE_DOMAIN,
    HTTPS_PORT,
    NODE_POOL,
    TLS,
    RealTenant,
    pod,
    psql,
    running_tenant,
)
from tests.support import Cluster

pytestmark = pytest.mark.realnode

T = RealTenant("signin", "tenant-signin")


def health(host: str) -> int:
    """Status of GET https://HOST/web/health through Traefik on 127.0.0.1."""
    conn = http.client.HTTPSConnection("127.0.0.1", HTTPS_PORT, timeout=30, context=TLS)
    try:
        conn.request("GET", "/web/health", headers={"Host": host})
        return conn.getresponse().status
    finally:
        conn.close()


def served_health(host: str, timeout: float = 60) -> int:
    """``health(host)`` once Traefik routes it (not 503, its answer without a ready
    endpoint), or the last status after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (status := health(host)) == 503 and time.monotonic() < deadline:
        time.sleep(1)
    return status


def probe(n: int) -> FleetTarget:
    """A harmless fleet target (an annotation on every object): something to upgrade to."""
    return FleetTarget(overrides={"commonAnnotations": {"saasodoo.dev/probe": str(n)}})


def test_the_signed_in_check_passes_on_a_healthy_tenant_and_fails_when_sign_in_fails(
    kube: Cluster,
) -> None:
    settings = Settings(
        kubeconfig=kube.kubeconfig,
        helm_binary=str(kube.tools.helm(4)),
        base_domain=BASE_DOMAIN,
        node_pool=NODE_POOL,
    )
    tenants = Tenants(Context(settings))
    fleet = Fleet(tenants.ctx)
    with running_tenant(kube, T, "admin@signin.example"):
        # Issue #22 point 9, on a real pod: PostgreSQL's /dev/shm is the plan's tmpfs (starter:
        # 256 MiB), not the container runtime's 64 MiB.
        shm = kube.kubectl(
            "exec", "-n", T.namespace, pod(kube, T.namespace, "postgresql"), "-c", "postgresql",
            "--", "df", "-k", "--output=fstype,size", "/dev/shm",
        ).split()  # fmt: skip
        assert shm[-2:] == ["tmpfs", str(256 * 1024)], shm
        spec = asyncio.run(tenants.get(T.id)).spec
        asyncio.run(tenants.check_ready(spec))  # healthy: signed in, read, /web
        healthy = asyncio.run(fleet.upgrade(probe(1), [T.id]))
        assert [r.outcome for r in healthy.results] == [Outcome.UPGRADED], healthy.to_dict()
        assert healthy.results[0].steps == ["upgrade", "signed-in check"]
        good = healthy.results[0].revision

        # Sign-in now fails on a missing column, as Odoo of another series fails on a
        # schema it does not know; /web/health does not touch the database.
        psql(kube, T, "ALTER TABLE res_users RENAME COLUMN login TO login_gone", db="odoo")
        assert health(T.host) == 200
        with pytest.raises(NotReady) as err:
            asyncio.run(tenants.check_ready(spec, timeout="3m"))
        assert "failed its signed-in check" in err.value.message
        assert "sign-in as admin@signin.example" in err.value.message, err.value.message
        assert "login" in err.value.message  # Odoo's own error: the missing column

        broken = asyncio.run(fleet.upgrade(probe(2), [T.id], timeout="3m"))
        [result] = broken.results
        assert result.outcome is Outcome.FAILED and broken.stopped == f"canary {T.id} failed"
        assert "failed its signed-in check" in result.detail, result.detail
        assert f"rolled back to {good}" in result.detail, result.detail
        assert asyncio.run(tenants.get(T.id)).spec.overrides == probe(1).overrides
        # What a /web/health canary check would have believed, once Traefik routes to the pod
        # the rollback started (its endpoints follow the pod's Ready a moment later: 503 meanwhile).
        assert served_health(T.host) == 200
