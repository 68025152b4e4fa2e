"""Supabase Auth (GoTrue, built from the vendored source) in the cluster on the real node, as
the platform's API uses it (issue 24 point 5): `scripts/gotrue_cluster.py up` brings up GoTrue,
its PostgreSQL and its gateway; a sign-up through the gateway returns a token the API's own
verifier accepts from the JWKS with the in-cluster issuer; a pod of another namespace cannot
reach it (its NetworkPolicy); `down` removes it all."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from saasodoo.adapters.auth import TokenVerifier, VerifierConfig
from tests.realnode.helpers import real_nodes
from tests.support import Cluster

pytestmark = pytest.mark.realnode

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gotrue_cluster.py"
sys.path.insert(0, str(SCRIPT.parent))
import gotrue_cluster  # noqa: E402  (scripts/ is not a package)


def run(kube: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=kube.env(),
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip


def post(url: str, body: dict[str, str]) -> dict[str, object]:
    req = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as res:  # noqa: S310 - the test's own cluster
        found: dict[str, object] = json.loads(res.read())
        return found


def test_gotrue_in_the_cluster_signs_up_and_its_tokens_verify(kube: Cluster) -> None:
    assert real_nodes(kube), "no real node in the cluster"
    up = run(kube, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        settings = dict(line.split("=", 1) for line in up.stdout.splitlines())
        assert settings["SAASODOO_API_SUPABASE_URL"] == gotrue_cluster.URL
        # The issuer is the Service's in-cluster URL; from this machine the ClusterIP is
        # reached through kube-proxy (the NetworkPolicy lets the nodes' addresses in).
        svc = kube.core.read_namespaced_service(gotrue_cluster.SERVICE, gotrue_cluster.NAMESPACE)
        base = f"http://{svc.spec.cluster_ip}:{gotrue_cluster.PORT}/auth/v1"
        email = f"rn-{uuid.uuid4().hex[:8]}@example.com"
        session = post(f"{base}/signup", {"email": email, "password": "a-long-pass-phrase-1"})
        token = str(session["access_token"])
        verifier = TokenVerifier(
            VerifierConfig(
                issuer=gotrue_cluster.URL + "/auth/v1", jwks_url=f"{base}/.well-known/jwks.json"
            )  # fmt: skip
        )
        user = verifier.user(token)
        assert user.email == email
        # Nothing in the Secret reaches a log: the script printed settings, no key.
        secret = kube.core.read_namespaced_secret("gotrue", gotrue_cluster.NAMESPACE)
        assert set(secret.data) >= {"jwt-keys", "jwt-secret", "database-url"}
        assert "jwt" not in up.stdout.lower() and "postgres://" not in up.stdout + up.stderr
        # A pod of another namespace (a tenant's, say) cannot reach the auth server.
        probe = subprocess.run([
            str(kube.tools.kubectl), "run", f"probe-{uuid.uuid4().hex[:6]}", "-n", "default",
            "--rm", "-i",
            "--restart=Never", "--image=docker.io/library/busybox:1.37",
            "--image-pull-policy=Never",
            "--overrides=" + json.dumps({"spec": {
                "nodeSelector": {"saasodoo.dev/real-node": "true"},
                "tolerations": [{"key": "saasodoo.dev/real-node", "operator": "Exists"}],
                "automountServiceAccountToken": False,
                "containers": [{
                    "name": "probe", "image": "docker.io/library/busybox:1.37",
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", f"wget -q -T 5 -O- {base}/health && echo REACHED"
                                            " || echo REFUSED"],
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                                        "allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]},
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                }],
            }})], env=kube.env(), capture_output=True, text=True, timeout=180, check=False,
        ).stdout  # fmt: skip
        assert "REFUSED" in probe and "REACHED" not in probe, probe
    finally:
        down = run(kube, "down")
        assert down.returncode == 0, down.stdout + down.stderr
    assert not kube.kubectl("get", "namespace", gotrue_cluster.NAMESPACE,
                            "--ignore-not-found", "-o", "name").strip()  # fmt: skip
