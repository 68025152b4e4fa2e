"""Helpers of the real node tests: the CLI as a user runs it, Traefik on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from click.testing import CliRunner

from saasodoo.cli import cli
from tests.support import Cluster

REAL_NODE_LABEL = "saasodoo.dev/real-node"
NODE_POOL = f"{REAL_NODE_LABEL}=true"
BASE_DOMAIN = "odoo.test"
HTTP_PORT = 8080  # scripts/realnode.sh: Traefik's entrypoints on 127.0.0.1
HTTPS_PORT = 8443


@dataclass(frozen=True)
class RealTenant:
    id: str
    namespace: str

    @property
    def host(self) -> str:
        return f"{self.id}.{BASE_DOMAIN}"


def run_cli(kube: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    """`saasodoo ARGS` as a user runs it, placed on the real node by the node_pool setting."""
    env = {
        **kube.env(),
        "SAASODOO_KUBECONFIG": str(kube.kubeconfig),
        "SAASODOO_HELM_BINARY": str(kube.tools.helm(4)),
        "SAASODOO_BASE_DOMAIN": BASE_DOMAIN,
        "SAASODOO_NODE_POOL": NODE_POOL,
    }
    runner = CliRunner(env=env)
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def cli_json(kube: Cluster, *args: str) -> Any:
    """`saasodoo ARGS -o json`, which must succeed: its parsed output."""
    result = run_cli(kube, *args, "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@contextmanager
def running_tenant(kube: Cluster, t: RealTenant, email: str) -> Iterator[RealTenant]:
    """Tenant T created on the real node (any leftover deleted first), ready; deleted after."""
    assert real_nodes(kube), "no real node in the cluster: scripts/cluster.sh up starts one"
    # Clean-ups go without a final backup (a test tenant's data is not kept after it).
    run_cli(kube, "tenant", "delete", t.id, "--yes", "--no-final-backup")
    doc = cli_json(kube, "tenant", "create", t.id, "--email", email)
    assert doc["ready"] == "True", doc
    try:
        yield t
    finally:
        run_cli(kube, "tenant", "delete", t.id, "--yes", "--no-final-backup")


def api_endpoints(kube: Cluster) -> list[tuple[str, int]]:
    """Where Service kubernetes leads: its EndpointSlices' addresses and ports (the apiserver's
    own address for pods, scripts/realnode.sh)."""
    slices = json.loads(
        kube.kubectl("-n", "default", "get", "endpointslices", "-o", "json",
                     "-l", "kubernetes.io/service-name=kubernetes")
    )["items"]  # fmt: skip
    return [(a, int(p["port"])) for sl in slices for e in sl["endpoints"]
            for a in e["addresses"] for p in sl["ports"]]  # fmt: skip


def real_nodes(kube: Cluster) -> list[str]:
    nodes = kube.core.list_node(label_selector=f"{REAL_NODE_LABEL}=true").items
    return [n.metadata.name for n in nodes]


def get_login(host: str) -> tuple[int, str]:
    """GET https://HOST/web/login through Traefik on 127.0.0.1 (its default certificate)."""
    return get_https(host, "/web/login")


#: The client side of every request to Traefik: its default certificate is not verified, so no
#: CA bundle is loaded (ssl.create_default_context loads the system's: about 120 ms of CPU,
#: which five polls a second turned into half a core taken from the tenants being timed).
TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


def get_https(host: str, path: str) -> tuple[int, str]:
    """GET https://HOST/PATH through Traefik on 127.0.0.1: (status, body); (0, error) if none."""
    conn = http.client.HTTPSConnection("127.0.0.1", HTTPS_PORT, timeout=30, context=TLS)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    except OSError as exc:
        return 0, str(exc)
    finally:
        conn.close()


def wait_login(host: str, want: int = 200, timeout: float = 120) -> tuple[int, str]:
    """get_login until it answers ``want`` (or the timeout passes): the last answer."""
    deadline = time.monotonic() + timeout
    status, body = get_login(host)
    while status != want and time.monotonic() < deadline:
        time.sleep(1)
        status, body = get_login(host)
    return status, body


def pod(kube: Cluster, namespace: str, component: str) -> str:
    pods = kube.core.list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/component={component}"
    ).items
    running = [p.metadata.name for p in pods if p.status.phase == "Running"]
    assert running, f"no running {component} pod in {namespace}"
    return running[0]


def psql(kube: Cluster, t: RealTenant, sql: str, db: str = "postgres") -> str:
    return kube.kubectl(
        "exec", "-n", t.namespace, pod(kube, t.namespace, "postgresql"), "-c", "postgresql", "--",
        "psql", "-U", "postgres", "-d", db, "-Atc", sql,
    ).strip()  # fmt: skip


def tenant_db(kube: Cluster, t: RealTenant) -> str:
    """The tenant's live database: not ``postgres``, not a previous one a restore kept."""
    dbs = psql(kube, t, "SELECT datname FROM pg_database WHERE NOT datistemplate").split()
    return next(d for d in dbs if d != "postgres" and not d.startswith("odoo_p"))
