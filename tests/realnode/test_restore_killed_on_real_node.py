"""A restore killed mid-way on the real node (issue 13): the tenant serves its previous data.

The README's promise: before the switch only a scratch copy exists; when the restore Job
dies without reporting, saasodoo waits for its pod to be gone, runs `restore.py --recover`,
and starts Odoo again on consistent data. Here the kill comes at a fixed moment: the
restore's scratch database exists and its dump is loading. restore.py (a process of the
real node, this machine) is stopped (SIGSTOP) right then, so the switch cannot start while
the test checks that no journal exists, and its pod is deleted. Then: the CLI reports the
recovery, Odoo is back at its replicas, signing in through Traefik shows the company name
written AFTER the backup (not the backup's), no scratch copy is left, and a later restore
succeeds and gives the backup's state.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from saasodoo.backups.jobs import JOB_LABEL
from saasodoo.core.values import ADMIN_SECRET_KEY, ADMIN_SECRET_NAME
from tests.realnode.helpers import (
    HTTP_PORT,
    RealTenant,
    cli_json,
    psql,
    run_cli,
    running_tenant,
    wait_login,
)
from tests.support import Cluster, eventually

pytestmark = pytest.mark.realnode

TENANT = RealTenant("rnk", "tenant-rnk")
JOURNAL = ".saasodoo-restore.json"
Proc = subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def tenant(kube: Cluster) -> Iterator[RealTenant]:
    with running_tenant(kube, TENANT, "admin@rnk.example") as t:
        yield t


def company_through_odoo(kube: Cluster, t: RealTenant) -> str:
    """The admin signs in through Traefik; Odoo's session info names the company."""
    secret = kube.core.read_namespaced_secret(ADMIN_SECRET_NAME, t.namespace)
    password = base64.b64decode(secret.data[ADMIN_SECRET_KEY]).decode()
    params = {"db": "odoo", "login": f"admin@{t.id}.example", "password": password}
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params})
    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=30)
    try:
        headers = {"Host": t.host, "Content-Type": "application/json"}
        conn.request("POST", "/web/session/authenticate", body, headers)
        resp = conn.getresponse()
        text = resp.read().decode()
    finally:
        conn.close()
    assert resp.status == 200, (resp.status, text[:300])
    result = json.loads(text)["result"]
    companies = result["user_companies"]
    current = companies["current_company"]
    return str(companies["allowed_companies"][str(current)]["name"])


def volume_dirs(kube: Cluster, t: RealTenant) -> list[Path]:
    """The local directories (on this machine, the real node) of the tenant's volumes."""
    dirs = []
    for pvc in kube.core.list_namespaced_persistent_volume_claim(t.namespace).items:
        if pvc.spec.volume_name:
            pv = kube.core.read_persistent_volume(pvc.spec.volume_name)
            assert pv.spec.local is not None, pv.spec
            dirs.append(Path(pv.spec.local.path))
    return dirs


def restore_pods(kube: Cluster, t: RealTenant) -> list[Any]:
    batch = client.BatchV1Api(kube.api)
    jobs = batch.list_namespaced_job(t.namespace, label_selector=f"{JOB_LABEL}=restore")
    pods = []
    for job in jobs.items:
        sel = f"job-name={job.metadata.name}"
        pods += kube.core.list_namespaced_pod(t.namespace, label_selector=sel).items
    return pods


def restore_pid(t: RealTenant) -> int | None:
    """The restore.py process of this tenant's restore Job (a process of this machine)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if (
            len(args) >= 2
            and args[0].startswith("python")
            and args[1].endswith("/restore.py")
            and f"--tenant={t.id}" in args
            and "--recover" not in args
        ):
            return int(entry.name)
    return None


def scratch_databases(kube: Cluster, t: RealTenant) -> list[str]:
    sql = "SELECT datname FROM pg_database WHERE datname LIKE 'odoo\\_r%'"
    return psql(kube, t, sql).split()


def odoo_ready(kube: Cluster, t: RealTenant) -> tuple[int, int]:
    """(replicas, ready replicas) of the tenant's Odoo Deployment (web workers)."""
    sel = "app.kubernetes.io/component=odoo"
    (dep,) = kube.apps.list_namespaced_deployment(t.namespace, label_selector=sel).items
    return int(dep.spec.replicas or 0), int(dep.status.ready_replicas or 0)


def test_restore_killed_mid_way_leaves_the_previous_data_served(kube: Cluster, tenant) -> None:  # type: ignore[no-untyped-def]
    replicas = odoo_ready(kube, tenant)
    assert replicas[0] >= 1 and replicas[0] == replicas[1], replicas
    psql(kube, tenant, "UPDATE res_company SET name = 'At Backup' WHERE id = 1", "odoo")
    backup = cli_json(kube, "backup", "create", tenant.id)
    assert backup["job"]["succeeded"], backup
    psql(kube, tenant, "UPDATE res_company SET name = 'After Backup' WHERE id = 1", "odoo")
    assert company_through_odoo(kube, tenant) == "After Backup"

    # The restore, as a user runs it; killed once its scratch database is loading.
    done: dict[str, Proc] = {}
    worker = threading.Thread(
        target=lambda: done.setdefault(
            "restore", run_cli(kube, "backup", "restore", tenant.id, "--yes")
        )
    )
    worker.start()
    try:
        deadline = time.monotonic() + 300
        pid = None
        while time.monotonic() < deadline and "restore" not in done:
            pid = restore_pid(tenant)
            if pid is not None and scratch_databases(kube, tenant):
                os.kill(pid, signal.SIGSTOP)
                break
            time.sleep(0.2)
        assert pid is not None and "restore" not in done, done
        (pod,) = [p for p in restore_pods(kube, tenant) if p.status.phase == "Running"]
        # Stopped before the switch: a scratch copy, no journal, the live data untouched.
        assert scratch_databases(kube, tenant)
        journals = [d for d in volume_dirs(kube, tenant) for _ in d.rglob(JOURNAL)]
        assert journals == [], journals
        kube.kubectl(
            "delete", "pod", "-n", tenant.namespace, pod.metadata.name,
            "--grace-period=1", "--wait=false",
        )  # fmt: skip
    finally:
        worker.join(timeout=900)
    result = done["restore"]
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "recovered by job" in out and "Odoo started again" in out, out

    # Odoo back at its replicas, serving the data from before the restore.
    eventually(lambda: odoo_ready(kube, tenant) == replicas, timeout=300, what="Odoo ready")
    assert wait_login(tenant.host)[0] == 200
    assert company_through_odoo(kube, tenant) == "After Backup"
    # The recovery dropped the scratch copy: database and filestore directory.
    assert scratch_databases(kube, tenant) == []
    leftovers = [p for d in volume_dirs(kube, tenant) for p in d.rglob("odoo_r*")]
    assert leftovers == [], leftovers
    assert not any(p.status.phase == "Running" for p in restore_pods(kube, tenant))

    # A later restore succeeds and gives the backup's state.
    restored = cli_json(kube, "backup", "restore", tenant.id, "--yes")
    assert restored["job"]["succeeded"], restored
    eventually(lambda: odoo_ready(kube, tenant) == replicas, timeout=300, what="Odoo ready")
    assert wait_login(tenant.host)[0] == 200
    assert company_through_odoo(kube, tenant) == "At Backup"
