"""`scripts/deploy.sh` (`make deploy`) installs, then upgrades, the platform chart into the
kubeconfig's cluster with a values file: the namespace labelled Pod Security "restricted",
the release deployed and waited for (#24 point 4). On the simulated cluster the platform's pods
are kwok's (no container runs), so `helm test` is left to the real node (`--no-test`); the CRDs
belong to the other tests of the session (`crds.enabled: false`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT, Cluster

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-deploy"


def deploy(kube: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "deploy.sh"), "--namespace", NAMESPACE, *args],
        env={
            **kube.env(),
            "HELM": str(kube.tools.helm(4)),
            "KUBECTL": str(kube.tools.kubectl),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_deploy_installs_then_upgrades_the_platform(kube: Cluster, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "crds": {"enabled": False},
                "settings": {"baseDomain": "odoo.deploy.test"},
                "api": {
                    "ingress": {"host": "saas.deploy.test"},
                    "supabase": {
                        "url": "https://project.supabase.co",
                        "existingSecret": "saasodoo-supabase",
                    },  # fmt: skip
                    "session": {"existingSecret": "saasodoo-session"},
                },
            }
        )
    )
    refused = deploy(kube)
    assert refused.returncode == 2 and "values file is required" in refused.stderr
    try:
        dry = deploy(kube, "--values", str(values), "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "kind: Deployment" in dry.stdout
        with pytest.raises(subprocess.CalledProcessError):
            kube.kubectl("get", "namespace", NAMESPACE)  # a dry run changes nothing

        for revision in (1, 2):
            done = deploy(kube, "--values", str(values), "--no-test", "--timeout", "3m")
            assert done.returncode == 0, done.stderr
            assert f"revision {revision}, deployed" in done.stderr, done.stderr
        ns = json.loads(kube.kubectl("get", "namespace", NAMESPACE, "-o", "json"))
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        ready = kube.kubectl(
            "-n", NAMESPACE, "get", "deployments", "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.status.readyReplicas} {end}",
        ).split()  # fmt: skip
        assert sorted(ready) == ["saasodoo-api=2", "saasodoo-operator=2"], ready
    finally:
        kube.helm(4, "uninstall", "saasodoo", "--namespace", NAMESPACE, check=False)
        subprocess.run(
            [str(kube.tools.kubectl), "delete", "namespace", NAMESPACE, "--wait=false",
             "--ignore-not-found"],
            env=kube.env(), capture_output=True, check=False,
        )  # fmt: skip
