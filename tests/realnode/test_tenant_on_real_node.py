"""Tenants run for real on the test cluster's real node (scripts/realnode.sh).

`saasodoo tenant create` with SAASODOO_NODE_POOL=saasodoo.dev/real-node=true gives every pod
of the tenant the real node's nodeSelector and toleration, so the chart's defaults run there
unchanged: PostgreSQL (docker.io/library/postgres:17.8-trixie) initializes, Odoo
(docker.io/library/odoo:18.0) installs its database, Traefik serves /web/login at the tenant's
host, `helm test` passes, and kube-router enforces the chart's NetworkPolicies. The images are
the stand-ins of images/build.sh.
"""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from saasodoo.backups.jobs import job_from_cronjob
from tests.realnode.helpers import (
    BASE_DOMAIN,
    HTTP_PORT,
    NODE_POOL,
    RealTenant,
    api_endpoints,
    get_login,
    pod,
    psql,
    real_nodes,
    run_cli,
    wait_login,
)
from tests.support import ROOT, Cluster, eventually

pytestmark = pytest.mark.realnode
Proc = subprocess.CompletedProcess[str]
TENANTS = ("rna", "rnb")


@pytest.fixture(scope="module")
def tenants(kube: Cluster) -> Iterator[dict[str, RealTenant]]:
    assert real_nodes(kube), "no real node in the cluster: scripts/cluster.sh up starts one"
    made = {}
    try:
        for tid in TENANTS:
            run_cli(kube, "tenant", "delete", tid, "--yes", "--no-final-backup")
            email = f"admin@{tid}.example"
            # rnb's pools need more than PostgreSQL's default 100 connections (#14).
            sets = ["--set", "odoo.config.dbMaxconn=32"] if tid == "rnb" else []
            result = run_cli(kube, "tenant", "create", tid, "--email", email, *sets, "-o", "json")
            assert result.returncode == 0, result.stdout + result.stderr
            doc = json.loads(result.stdout)
            assert doc["ready"] == "True", doc
            made[tid] = RealTenant(tid, f"tenant-{tid}")
        yield made
    finally:
        for tid in TENANTS:
            run_cli(kube, "tenant", "delete", tid, "--yes", "--no-final-backup")


def in_odoo(kube: Cluster, t: RealTenant, code: str, *args: str) -> Proc:
    """Run python3 CODE in the tenant's Odoo container."""
    return subprocess.run(
        [str(kube.tools.kubectl), "exec", "-n", t.namespace, pod(kube, t.namespace, "odoo"),
         "-c", "odoo", "--", "python3", "-c", code, *args],
        env=kube.env(), capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_every_pod_of_the_tenant_runs_on_the_real_node(kube: Cluster, tenants) -> None:  # type: ignore[no-untyped-def]
    nodes = set(real_nodes(kube))
    for t in tenants.values():
        pods = kube.core.list_namespaced_pod(t.namespace).items
        assert {p.metadata.labels.get("app.kubernetes.io/component") for p in pods} >= {
            "odoo",
            "postgresql",
        }
        for p in pods:
            if p.status.phase == "Succeeded":
                continue  # hook or test pods that already finished
            assert p.spec.node_name in nodes, (p.metadata.name, p.spec.node_name)
            assert p.status.phase == "Running", (p.metadata.name, p.status.phase)
            for c in p.status.container_statuses or []:
                assert c.ready, (p.metadata.name, c.name)
                # A real container: containerd gave it an id and its image is ours.
                assert c.container_id.startswith("containerd://"), c.container_id


def test_postgresql_initialized_and_odoo_installed_its_database(kube: Cluster, tenants) -> None:  # type: ignore[no-untyped-def]
    for t in tenants.values():
        version = psql(kube, t, "SHOW server_version")
        assert version.startswith("17."), version
        assert psql(kube, t, "SHOW listen_addresses") == "*"
        dbs = psql(kube, t, "SELECT datname FROM pg_database WHERE NOT datistemplate").split()
        tenant_dbs = [d for d in dbs if d != "postgres"]
        assert len(tenant_dbs) == 1, dbs
        db = tenant_dbs[0]
        # postgres-init.sh ran: the Odoo role owns the database and is no superuser.
        owner = psql(
            kube, t,
            f"SELECT r.rolname, r.rolsuper FROM pg_database d JOIN pg_roles r "
            f"ON r.oid = d.datdba WHERE d.datname = '{db}'",
        )  # fmt: skip
        assert owner.endswith("|f") and not owner.startswith("postgres|"), owner
        # odoo-init installed base (and its auto-install modules).
        state = psql(kube, t, "SELECT state FROM ir_module_module WHERE name = 'base'", db)
        assert state == "installed"
        installed = int(
            psql(kube, t, "SELECT count(*) FROM ir_module_module WHERE state = 'installed'", db)
        )
        assert installed >= 10, installed


def test_login_page_served_through_traefik_at_the_tenant_host(kube: Cluster, tenants) -> None:  # type: ignore[no-untyped-def]
    for t in tenants.values():
        status, body = wait_login(t.host)
        assert status == 200, (t.host, status, body[:300])
        assert 'name="login"' in body and "Odoo" in body, body[:500]
    # A host no tenant has: Traefik answers 404, Odoo is not reached.
    assert get_login(f"nobody.{BASE_DOMAIN}")[0] == 404


def test_helm_test_passes(kube: Cluster, tenants) -> None:  # type: ignore[no-untyped-def]
    for t in tenants.values():
        proc = kube.helm(4, "test", t.id, "--namespace", t.namespace, "--timeout", "3m")
        assert "Phase:          Succeeded" in proc.stdout or "Succeeded" in proc.stdout, proc.stdout


CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), 3).close()\n"
    "    print('open')\n"
    "except OSError as exc:\n"
    "    print('blocked', exc)\n"
)


def test_isolation_between_tenants_with_dns_under_default_deny(kube: Cluster, tenants) -> None:  # type: ignore[no-untyped-def]
    a, b = tenants["rna"], tenants["rnb"]
    a_pg = f"{a.id}-odoo-tenant-postgresql-rw.{a.namespace}.svc.cluster.local"
    b_pg = f"{b.id}-odoo-tenant-postgresql-rw.{b.namespace}.svc.cluster.local"
    b_odoo = f"{b.id}-odoo-tenant.{b.namespace}.svc.cluster.local"
    # DNS works under the default-deny policy (the chart allows kube-dns only): names resolve.
    resolve = "import socket, sys; print(socket.gethostbyname(sys.argv[1]))"
    resolved = in_odoo(kube, a, resolve, b_pg)
    assert resolved.returncode == 0 and resolved.stdout.strip().startswith("10."), resolved
    # A's Odoo reaches A's PostgreSQL, by its Service name.
    own = in_odoo(kube, a, CONNECT, a_pg, "5432")
    assert own.stdout.startswith("open"), own
    # B's PostgreSQL and Odoo are unreachable from A's pod.
    for host, port in ((b_pg, "5432"), (b_odoo, "8069")):
        other = in_odoo(kube, a, CONNECT, host, port)
        assert other.stdout.startswith("blocked"), (host, other)


def test_network_isolation_script_holds_for_real(kube: Cluster, tenants) -> None:  # type: ignore[no-untyped-def]
    a, b = tenants["rna"], tenants["rnb"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "test-network-isolation.py"),
         "--tenant", f"{a.namespace}/{a.id}", "--tenant", f"{b.namespace}/{b.id}",
         "--kubeconfig", str(kube.kubeconfig), "--kubectl", str(kube.tools.kubectl),
         "--node-pool", NODE_POOL],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout
    assert "12/12 expectations hold" in proc.stdout, proc.stdout


def test_http_and_websocket_through_traefik(kube: Cluster, tenants) -> None:  # type: ignore[no-untyped-def]
    """Plain HTTP on 127.0.0.1:8080 reaches Odoo; /websocket upgrades on Odoo's gevent port."""
    t = tenants["rna"]
    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=30)
    conn.request("GET", "/web/health", headers={"Host": t.host})
    resp = conn.getresponse()
    assert resp.status == 200, (resp.status, resp.read()[:200])
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=30)
    conn.request(
        "GET",
        "/websocket",
        headers={
            "Host": t.host,
            "Origin": f"http://{t.host}",
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(b"saasodoo-realnod").decode(),
        },
    )
    resp = conn.getresponse()
    assert resp.status == 101, (resp.status, resp.read()[:300])
    assert resp.getheader("Upgrade", "").lower() == "websocket"
    conn.close()


PROBE = """
import json, socket, sys
out = {}
for spec in sys.argv[1:]:
    name, host, port = spec.split(",")
    try:
        if port == "dns":
            out[name] = "resolved " + socket.gethostbyname(host)
        else:
            socket.create_connection((host, int(port)), 3).close()
            out[name] = "open"
    except OSError as exc:
        out[name] = "blocked " + str(exc)
print("RESULT " + json.dumps(out), flush=True)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 8069))
srv.listen(8)
socket.create_connection(("127.0.0.1", 8069), 3).close()
srv.accept()[0].close()
print("LISTENING", flush=True)
srv.settimeout(60)
try:
    while True:
        srv.accept()[0].close()
        print("ACCEPTED", flush=True)
except OSError:
    pass
"""


def pod_ip(kube: Cluster, namespace: str, component: str) -> str:
    ip = kube.core.read_namespaced_pod(pod(kube, namespace, component), namespace).status.pod_ip
    assert ip, (namespace, component)
    return str(ip)


def test_backup_pod_reaches_only_its_database_and_dns(kube: Cluster, tenants) -> None:  # type: ignore[no-untyped-def]
    """A pod of B's backup Job template (the CronJob's labels, image, identity and node;
    only the command is a probe) under the chart's backup NetworkPolicy: egress to B's
    PostgreSQL on 5432 and to cluster DNS on 53, nothing else; nothing in."""
    a, b = tenants["rna"], tenants["rnb"]
    (cron,) = json.loads(
        kube.kubectl("get", "cronjob", "-n", b.namespace, "-o", "json",
                     "-l", "app.kubernetes.io/component=backup")
    )["items"]  # fmt: skip
    dns = kube.core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items
    dns_ip = next(p.status.pod_ip for p in dns if p.status.phase == "Running")
    b_pg = f"{b.id}-odoo-tenant-postgresql-rw.{b.namespace}.svc.cluster.local"
    a_pg = f"{a.id}-odoo-tenant-postgresql-rw.{a.namespace}.svc.cluster.local"
    targets = {
        "dns-own": (b_pg, "dns"),
        "dns-other": (a_pg, "dns"),
        "b-pg-service": (b_pg, "5432"),
        "b-pg-pod": (pod_ip(kube, b.namespace, "postgresql"), "5432"),
        "a-pg-service": (a_pg, "5432"),
        "a-pg-pod": (pod_ip(kube, a.namespace, "postgresql"), "5432"),
        "a-odoo": (pod_ip(kube, a.namespace, "odoo"), "8069"),
        "a-odoo-ws": (pod_ip(kube, a.namespace, "odoo"), "8072"),
        "b-odoo": (pod_ip(kube, b.namespace, "odoo"), "8069"),
        "b-odoo-ws": (pod_ip(kube, b.namespace, "odoo"), "8072"),
        "dns-health": (dns_ip, "8080"),  # CoreDNS's other ports: only 53 is allowed
        "dns-ready": (dns_ip, "8181"),
        "kubernetes-api": ("kubernetes.default.svc.cluster.local", "443"),
        "kubernetes-api-endpoint": tuple(map(str, api_endpoints(kube)[0])),
    }
    name = "netprobe-backup"
    command = ["python3", "-c", PROBE, *(f"{k},{h},{p}" for k, (h, p) in targets.items())]
    job = job_from_cronjob(cron, name, purpose="backup", command=command)
    job["spec"]["backoffLimit"] = 0
    batch = client.BatchV1Api(kube.api)
    gone = f"metadata.name={name}"
    if batch.list_namespaced_job(b.namespace, field_selector=gone).items:
        batch.delete_namespaced_job(name, b.namespace, propagation_policy="Foreground")
        eventually(
            lambda: not batch.list_namespaced_job(b.namespace, field_selector=gone).items,
            timeout=60, what="the previous probe Job gone",
        )  # fmt: skip
    batch.create_namespaced_job(b.namespace, job)

    def logs() -> str:
        return subprocess.run(
            [str(kube.tools.kubectl), "logs", "-n", b.namespace, f"job/{name}", "-c", "backup"],
            env=kube.env(), capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip

    try:
        eventually(lambda: "LISTENING" in logs(), timeout=240, what="the probe listening")
        (p,) = kube.core.list_namespaced_pod(b.namespace, label_selector=f"job-name={name}").items
        assert p.metadata.labels["app.kubernetes.io/component"] == "backup", p.metadata.labels
        # Nothing in: B's and A's Odoo cannot connect to the listening probe.
        for t in (b, a):
            got = in_odoo(kube, t, CONNECT, p.status.pod_ip, "8069")
            assert got.stdout.startswith("blocked"), (t.id, got)
        out = logs()
    finally:
        batch.delete_namespaced_job(name, b.namespace, propagation_policy="Background")
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    assert "ACCEPTED" not in out, out
    assert result["dns-own"].startswith("resolved 10."), result
    assert result["dns-other"].startswith("resolved 10."), result  # names resolve; flows don't
    opened = {k for k, v in result.items() if v == "open"}
    assert opened == {"b-pg-service", "b-pg-pod"}, result
    blocked = {k for k, v in result.items() if v.startswith("blocked")}
    assert blocked == set(targets) - opened - {"dns-own", "dns-other"}, result


def run_template_job(kube: Cluster, t: RealTenant, name: str, command: list[str]) -> str:
    """A Job from T's backup CronJob template with ``command``, run to completion: its log."""
    (cron,) = json.loads(
        kube.kubectl("get", "cronjob", "-n", t.namespace, "-o", "json",
                     "-l", "app.kubernetes.io/component=backup")
    )["items"]  # fmt: skip
    job = job_from_cronjob(cron, name, purpose="backup", command=command)
    job["spec"]["backoffLimit"] = 0
    batch = client.BatchV1Api(kube.api)
    batch.create_namespaced_job(t.namespace, job)
    try:

        def finished() -> str | None:
            status = batch.read_namespaced_job_status(name, t.namespace).status
            return "ok" if status.succeeded else "failed" if status.failed else None

        state = eventually(finished, timeout=240, what=f"job {name} finished")
        out = kube.kubectl("logs", "-n", t.namespace, f"job/{name}", "-c", "backup")
        assert state == "ok", out
        return out
    finally:
        batch.delete_namespaced_job(name, t.namespace, propagation_policy="Background")


def odoo_conf(kube: Cluster, t: RealTenant) -> dict[str, str]:
    text = kube.kubectl(
        "exec", "-n", t.namespace, pod(kube, t.namespace, "odoo"), "-c", "odoo",
        "--", "cat", "/run/odoo/odoo.conf",
    )  # fmt: skip
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def test_postgresql_locale_and_max_connections_on_the_real_server(kube: Cluster, tenants) -> None:  # type: ignore[no-untyped-def]
    """#14: databases with the builtin provider's C.UTF-8 locale (not the image's glibc);
    max_connections sized to Odoo's pools (web processes x db_maxconn + 8, at least 100),
    as the real server runs it; rnb's larger db_maxconn raises it above the default."""
    seen = {}
    for t in tenants.values():
        row = psql(
            kube, t,
            "SELECT datlocprovider, datlocale, datcollate, datctype FROM pg_database "
            "WHERE datname = 'odoo'",
        )  # fmt: skip
        assert row == "b|C.UTF-8|C.UTF-8|C.UTF-8", (t.id, row)
        conf = odoo_conf(kube, t)
        workers, cron, maxconn = (
            int(conf[k]) for k in ("workers", "max_cron_threads", "db_maxconn")
        )
        # One web pod (ReadWriteOnce filestore): workers + cron threads + 2 processes.
        needed = (workers + cron + 2) * maxconn + 8
        got = int(psql(kube, t, "SHOW max_connections"))
        assert got == max(100, needed), (t.id, conf, got)
        seen[t.id] = got
    assert seen["rnb"] > 100, seen  # sized from the pools, not the server's default


def test_odoo_runs_as_the_uid_of_its_series(kube: Cluster, tenants) -> None:  # type: ignore[no-untyped-def]
    """#14: the odoo user of the 18.0 image is uid 100, group 101 (fsGroup 101)."""
    for t in tenants.values():
        got = in_odoo(kube, t, "import os; print(os.getuid(), os.getgid(), sorted(os.getgroups()))")
        assert got.returncode == 0, got
        assert got.stdout.split(None, 2)[:2] == ["100", "101"], got.stdout
        # The Odoo server itself (PID 1 of the container), not just an exec'd process.
        status = in_odoo(kube, t, "print(open('/proc/1/status').read())").stdout
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert set(uids) == {"100"}, status
        name = in_odoo(kube, t, "import pwd, os; print(pwd.getpwuid(os.getuid()).pw_name)")
        assert name.stdout.strip() == "odoo", name


def test_backup_pg_client_matches_the_server_major(kube: Cluster, tenants) -> None:  # type: ignore[no-untyped-def]
    """#14: the pg-client init container copies the PostgreSQL image's pg_dump/psql (the
    server's major) into the backup Job, where they run in the Odoo image and connect."""
    t = tenants["rnb"]
    out = run_template_job(
        kube, t, "pgclient-probe",
        ["sh", "-c", '"$PG_DUMP" --version && "$PSQL" -X -Atc "SHOW server_version"'],
    )  # fmt: skip
    dump_line, server = out.strip().splitlines()[-2:]
    assert dump_line.startswith("pg_dump (PostgreSQL) 17."), out
    assert server.startswith("17."), out


def probe_events(kube: Cluster, namespace: str, pod_name: str) -> list[str]:
    events = kube.core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={pod_name},reason=Unhealthy"
    ).items
    return [e.message or "" for e in events]


def test_liveness_holds_while_every_worker_is_busy(kube: Cluster, tenants) -> None:  # type: ignore[no-untyped-def]
    """#14: with every Odoo worker busy for longer than several liveness periods, the TCP
    liveness probe keeps passing (the kernel accepts into the backlog) while /web/health,
    the readiness probe, times out: the pod leaves the Service but is not restarted."""
    t = tenants["rna"]
    odoo = pod(kube, t.namespace, "odoo")
    conf = odoo_conf(kube, t)
    workers = int(conf["workers"])
    assert workers >= 1, conf
    restarts = kube.core.read_namespaced_pod(odoo, t.namespace).status.container_statuses
    before = {c.name: c.restart_count for c in restarts}
    hold = 75  # > 3 liveness periods (20 s), < limit_time_real (Odoo's own kill)
    assert hold < int(conf["limit_time_real"]), conf
    # Every request that signs in reads res_users: held behind an exclusive lock.
    locker = subprocess.Popen(
        [str(kube.tools.kubectl), "exec", "-n", t.namespace, pod(kube, t.namespace, "postgresql"),
         "-c", "postgresql", "--", "psql", "-U", "postgres", "-d", "odoo", "-c",
         f"BEGIN; LOCK TABLE res_users IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({hold}); COMMIT;"],
        env=kube.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    started = time.monotonic()
    answers: list[int] = []

    def sign_in() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=hold + 60)
        body = {"jsonrpc": "2.0", "method": "call",
                "params": {"db": "odoo", "login": "nobody", "password": "x"}}  # fmt: skip
        try:
            conn.request("POST", "/web/session/authenticate", json.dumps(body),
                         {"Host": t.host, "Content-Type": "application/json"})  # fmt: skip
            answers.append(conn.getresponse().status)
        except OSError:
            answers.append(0)
        finally:
            conn.close()

    try:
        eventually(
            lambda: psql(kube, t, "SELECT count(*) FROM pg_locks WHERE relation = "
                         "'res_users'::regclass AND mode = 'AccessExclusiveLock' AND granted",
                         "odoo") == "1",
            timeout=30, what="res_users locked",
        )  # fmt: skip
        busy = [threading.Thread(target=sign_in) for _ in range(workers * 3)]
        for th in busy:
            th.start()
        # Every worker is stuck: /web/health from inside the pod gets no answer.
        time.sleep(5)
        health = in_odoo(
            kube, t,
            "import urllib.request\n"
            "try:\n"
            "    urllib.request.urlopen('http://127.0.0.1:8069/web/health', timeout=5)\n"
            "    print('answered')\n"
            "except Exception as exc:\n"
            "    print('no answer', exc)\n",
        )  # fmt: skip
        assert health.stdout.startswith("no answer"), health
        for th in busy:
            th.join(timeout=hold + 90)
    finally:
        out, err = locker.communicate(timeout=hold + 60)
    assert locker.returncode == 0 and "COMMIT" in out, out + err
    assert time.monotonic() - started >= hold
    assert answers and all(a == 200 for a in answers), answers  # served once unlocked
    events = probe_events(kube, t.namespace, odoo)
    assert any("Readiness probe failed" in m for m in events), events  # really busy
    assert not any("Liveness probe failed" in m for m in events), events
    after = kube.core.read_namespaced_pod(odoo, t.namespace).status.container_statuses
    assert {c.name: c.restart_count for c in after} == before
    assert wait_login(t.host)[0] == 200
