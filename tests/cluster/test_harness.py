"""``scripts/cluster.sh up`` as a newcomer first runs it (issue 22, point 16): on a fresh
machine ``make demo`` printed kwokctl's ``ERROR ... Cluster does not exist`` lines before it
created the cluster, which a newcomer reads as a failure. A first ``up`` now says what it does
(creating, created) and prints no error. The cluster is a separate, short-lived one (one fake
node, no real node), removed at the end."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.cluster


def test_a_first_cluster_up_says_what_it_does_and_prints_no_error() -> None:
    name = os.environ.get("SAASODOO_CLUSTER_NAME", "saasodoo") + "-fresh"
    env = {
        **os.environ,
        "SAASODOO_CLUSTER_NAME": name,
        "SAASODOO_REAL_NODES": "0",
        "SAASODOO_NODES": "1",
    }
    for external in ("SAASODOO_KUBECONFIG", "KUBECONFIG"):
        env.pop(external, None)
    script = str(ROOT / "scripts" / "cluster.sh")
    subprocess.run(["bash", script, "down"], env=env, capture_output=True, check=False)
    try:
        up = subprocess.run(
            ["bash", script, "up"], env=env, capture_output=True, text=True, timeout=900
        )
        assert up.returncode == 0, up.stderr
        assert "does not exist" not in up.stderr.lower(), up.stderr
        assert "error" not in up.stderr.lower(), up.stderr
        assert f"creating cluster '{name}'" in up.stderr
        assert f"cluster '{name}' created" in up.stderr
    finally:
        subprocess.run(["bash", script, "down"], env=env, capture_output=True, check=False)
