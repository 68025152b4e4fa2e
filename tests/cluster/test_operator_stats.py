"""`saasodoo operator run --stats-file`: the operator process writes its counters as JSON
while it runs and once more when it stops (what bench/operator.py reads); with
SAASODOO_METRICS_PORT it serves `/metrics` in the Prometheus format, read back here with the
client library's own parser, and the tenant gauges follow the OdooTenants (#24 point 7)."""

from __future__ import annotations

import functools
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.operator_process import metric, operator_env, wait_for
from tests.support import Cluster

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-optest-stats"


def read(path: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc


def test_the_stats_file_has_the_operators_counters_and_is_rewritten_at_exit(
    kube: Cluster, tmp_path: Path
) -> None:
    stats = tmp_path / "stats.json"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**operator_env(kube, system_namespace=NAMESPACE, operator_lease="stats-test",
                          metrics_port=str(port)),
           "POD_NAME": "op-stats"}  # fmt: skip
    program = Path(sys.executable).parent / "saasodoo"
    args = [str(program), "operator", "run", "--install-crds", "--stats-file", str(stats),
            "--stats-every", "0.2"]  # fmt: skip
    log = tmp_path / "operator.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        doc = wait_for(
            lambda: (d := read(stats)) and d["leader"] and d["first_sync"] is not None and d,
            90, "the stats file of a leading operator",
        )  # fmt: skip
        assert doc["informer"]["lists"] >= 1 and doc["informer"]["watches"] >= 1
        assert doc["informer"]["requests"] == doc["informer"]["lists"] + doc["informer"]["watches"]
        assert doc["kube_requests"] >= 1  # the CRD applied, the namespace created
        assert doc["helm_calls"] == 0 and doc["reconciles"] == 0 and doc["queued"] == 0
        assert 0 < doc["rss_kib"] <= doc["peak_rss_kib"]

        # /metrics: leading, nothing reconciled yet; then an OdooTenant with a plan that does
        # not exist (Stalled, InvalidSpec: no helm call) shows in the tenant gauges.
        wait_for(lambda: metric(port, "saasodoo_leader") == 1.0, 30, "saasodoo_leader 1")
        assert metric(port, "saasodoo_reconciles_total", result="success") == 0.0
        manifest = tmp_path / "stalled.yaml"
        manifest.write_text(yaml.safe_dump({
            "apiVersion": "saasodoo.dev/v1alpha1", "kind": "OdooTenant",
            "metadata": {"name": "metrics-stalled", "namespace": NAMESPACE},
            "spec": {"adminEmail": "a@metrics.example", "plan": "no-such-plan",
                     "finalBackup": False},
        }))  # fmt: skip
        kube.kubectl("apply", "-f", str(manifest))
        wait_for(
            lambda: metric(port, "saasodoo_tenants", condition="Stalled", status="True") == 1.0,
            60, "the Stalled tenant in saasodoo_tenants",
        )  # fmt: skip
        assert metric(port, "saasodoo_tenant_ready", tenant="metrics-stalled") == 0.0
        assert (metric(port, "saasodoo_reconciles_total", result="success") or 0) >= 1
        assert metric(port, "saasodoo_helm_call_duration_seconds_count") is None  # no helm
        scheduled_backups_follow_the_cronjob(kube, port, tmp_path)
        kube.kubectl("delete", "-f", str(manifest), "--timeout=60s")  # its finalizer runs
        wait_for(
            lambda: metric(port, "saasodoo_tenant_ready", tenant="metrics-stalled") is None,
            30, "the deleted tenant's series gone",
        )  # fmt: skip
        running = read(stats)["uptime"]  # type: ignore[index]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        last = read(stats)
        assert last is not None and last["uptime"] > running and not last["leader"]
        assert not stats.with_name(stats.name + ".tmp").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kube.kubectl("delete", "namespace", NAMESPACE, "--wait=false")


def scheduled_backups_follow_the_cronjob(kube: Cluster, port: int, tmp_path: Path) -> None:
    """#23 point 1 / #24 point 7: the outcome of a scheduled backup, as the CronJob
    controller records it in the tenant's backup CronJob's status, is written on the
    OdooTenant (lastBackup, lastSuccessfulBackup, BackupSucceeded) and shows in the gauges; a
    failed one is a Warning Event and keeps the last good one's time. The CronJob here never
    fires (suspended); its status is written as the controller writes it."""
    ns = "saasodoo-optest-stats-tenant"
    kube.kubectl("create", "namespace", ns)
    try:
        cron = tmp_path / "cronjob.yaml"
        cron.write_text(yaml.safe_dump({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "metrics-stalled-backup", "namespace": ns, "labels": {
                "app.kubernetes.io/component": "backup", "saasodoo.dev/tenant": "metrics-stalled"}},
            "spec": {"schedule": "0 3 * * *", "suspend": True, "jobTemplate": {"spec": {
                "template": {"spec": {"restartPolicy": "Never", "containers": [
                    {"name": "backup", "image": "docker.io/library/busybox:1.37"}]}}}}},
        }))  # fmt: skip
        kube.kubectl("apply", "-f", str(cron))

        def status(**fields: str) -> None:
            kube.kubectl("-n", ns, "patch", "cronjob", "metrics-stalled-backup",
                         "--subresource=status", "--type=merge", "-p",
                         json.dumps({"status": fields}))  # fmt: skip

        def tenant_status() -> dict[str, Any]:
            got = kube.kubectl(
                "-n", NAMESPACE, "get", "odootenant", "metrics-stalled", "-o", "json"
            )
            found: dict[str, Any] = json.loads(got).get("status") or {}
            return found

        good = "2026-12-06T03:04:05Z"
        status(lastScheduleTime="2026-12-06T03:00:00Z", lastSuccessfulTime=good)
        wait_for(lambda: (tenant_status().get("lastBackup") or {}).get("time") == good, 60,
                 "the scheduled backup on the OdooTenant")  # fmt: skip
        outcome = functools.partial(metric, port, "saasodoo_tenant_last_backup_succeeded",
                                    tenant="metrics-stalled")  # fmt: skip
        wait_for(lambda: outcome() == 1.0, 30, "the backup gauge at 1")
        assert metric(port, "saasodoo_tenant_last_backup_success_timestamp_seconds",
                      tenant="metrics-stalled") == 1796526245.0  # fmt: skip
        status(lastScheduleTime="2026-12-07T03:00:00Z")  # the next night's Job did not succeed
        wait_for(lambda: outcome() == 0.0, 60, "the backup gauge at 0")
        after = tenant_status()
        assert after["lastBackup"]["outcome"] == "failed", after
        assert after["lastSuccessfulBackup"]["time"] == good, after
        backup = next(c for c in after["conditions"] if c["type"] == "BackupSucceeded")
        assert (backup["status"], backup["reason"]) == ("False", "BackupFailed"), backup
        assert metric(port, "saasodoo_tenant_last_backup_success_timestamp_seconds",
                      tenant="metrics-stalled") == 1796526245.0  # fmt: skip
        events = json.loads(kube.kubectl("-n", NAMESPACE, "get", "events.events.k8s.io",
                                         "-o", "json"))["items"]  # fmt: skip
        assert any(e.get("reason") == "BackupFailed"
                   and e.get("regarding", {}).get("name") == "metrics-stalled"
                   for e in events), events  # fmt: skip
    finally:
        kube.kubectl("delete", "namespace", ns, "--wait=false")
