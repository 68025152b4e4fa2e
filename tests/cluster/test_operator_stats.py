"""`saasodoo operator run --stats-file`: the operator process writes its counters as JSON
while it runs and once more when it stops (what bench/operator.py reads)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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
    env = {**operator_env(kube, system_namespace=NAMESPACE, operator_lease="stats-test"),
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
        running = doc["uptime"]
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
