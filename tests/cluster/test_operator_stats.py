"""`saasodoo operator run --stats-file`: the operator process writes its counters as JSON
while it runs and once more when it stops (what bench/operator.py reads); with
SAASODOO_METRICS_PORT it serves `/metrics` in the Prometheus format, read back here with the
client library's own parser, and the tenant gauges follow the OdooTenants (#24 point 7)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.operator_process import operator_env, wait_for
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


def metric(port: int, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` with ``labels`` (all of them) at the operator's
    ``/metrics``, parsed by prometheus_client's parser; None when absent."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None
