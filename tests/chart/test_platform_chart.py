"""charts/saasodoo, the platform chart: it lints and renders with helm 3 and 4; its values are
strict; the CRDs are the package's own, kept on uninstall; every pod is Pod Security
`restricted`; keys come only from existing Secrets; RBAC has no `*` and the API's role holds no
Secret, Pod or exec right; the NetworkPolicies admit the API only from the ingress controller;
its README is generated from values.yaml (#24 points 1-2)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from saasodoo.core.crd import CRD_NAME
from tests.chart.test_docs import helm_docs
from tests.support import ROOT, Tools

pytestmark = pytest.mark.chart

PLATFORM = ROOT / "charts" / "saasodoo"
NAMESPACE = "saasodoo-system"
REQUIRED = (
    "--set", "api.ingress.host=saas.example.com",
    "--set", "api.supabase.url=https://project.supabase.co",
    "--set", "api.supabase.existingSecret=saasodoo-supabase",
    "--set", "api.session.existingSecret=saasodoo-session",
)  # fmt: skip


def template(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), "template", "platform", str(PLATFORM), "--namespace", NAMESPACE, *args],
        capture_output=True,
        text=True,
        check=False,
    )


def render(helm: Path, *args: str) -> list[dict[str, Any]]:
    proc = template(helm, *REQUIRED, *args)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def pods(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [d["spec"]["template"]["spec"] for d in docs if d["kind"] == "Deployment"]
    return out + [d["spec"] for d in docs if d["kind"] == "Pod"]


def test_lints_strictly(helm: Path) -> None:
    proc = subprocess.run(
        [str(helm), "lint", "--strict", str(PLATFORM), *REQUIRED],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ERROR]" not in proc.stdout, proc.stdout


def test_renders_the_platform(helm: Path) -> None:
    docs = render(helm)
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == [
        "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Deployment",
        "Ingress", "NetworkPolicy", "Pod", "PodDisruptionBudget", "Role", "RoleBinding",
        "Service", "ServiceAccount",
    ]  # fmt: skip
    operator = one(docs, "Deployment", "platform-saasodoo-operator")
    api = one(docs, "Deployment", "platform-saasodoo-api")
    assert operator["spec"]["replicas"] == 2 and api["spec"]["replicas"] == 2
    assert operator["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["operator", "run"]
    # one ServiceAccount per component
    assert operator["spec"]["template"]["spec"]["serviceAccountName"] == (
        "platform-saasodoo-operator"
    )
    assert api["spec"]["template"]["spec"]["serviceAccountName"] == "platform-saasodoo-api"
    ingress = one(docs, "Ingress", "platform-saasodoo-api")
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert ingress["spec"]["rules"][0]["host"] == "saas.example.com"


def test_settings_reach_both_components_as_saasodoo_variables(helm: Path) -> None:
    docs = render(helm, "--set", "settings.baseDomain=odoo.example.net",
                  "--set", "settings.extraEnv.SAASODOO_CONCURRENCY=4",
                  "--set", "tenants.backupS3Secret=backup-s3",
                  "--set-json", 'tenants.values={"backup": {"storage": "s3"}}')  # fmt: skip
    for name in ("platform-saasodoo-operator", "platform-saasodoo-api"):
        env = {
            e["name"]: e.get("value")
            for e in one(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0][
                "env"
            ]
        }
        assert env["SAASODOO_BASE_DOMAIN"] == "odoo.example.net"
        assert env["SAASODOO_SYSTEM_NAMESPACE"] == NAMESPACE
        assert env["SAASODOO_OPERATOR"] == "true"
        assert env["SAASODOO_CONCURRENCY"] == "4"
        # The tenants' platform layer and where their S3 keys come from (a name, no key).
        assert json.loads(env["SAASODOO_TENANT_VALUES"]) == {"backup": {"storage": "s3"}}
        assert env["SAASODOO_BACKUP_S3_SECRET"] == f"{NAMESPACE}/backup-s3"
    api = one(docs, "Deployment", "platform-saasodoo-api")["spec"]["template"]["spec"]
    refs = {
        e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in api["containers"][0]["env"]
    }
    # The API downloads from S3 with the platform's key pair, from the Secret, never a value.
    assert refs["SAASODOO_BACKUP_S3_ACCESS_KEY_ID"] == {"name": "backup-s3", "key": "access-key-id"}
    assert refs["SAASODOO_BACKUP_S3_SECRET_ACCESS_KEY"] == {
        "name": "backup-s3",
        "key": "secret-access-key",
    }
    refused = template(helm, *REQUIRED, "--set", "settings.extraEnv.AWS_SECRET=x")
    assert refused.returncode != 0 and "AWS_SECRET" in refused.stderr, refused.stderr


def test_the_crds_are_the_package_s_own_and_kept(helm: Path) -> None:
    docs = render(helm)
    crds = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CustomResourceDefinition"}
    package = {
        p.name.removesuffix(".yaml")
        for p in (ROOT / "saasodoo" / "crds").glob("*.yaml")
    }  # fmt: skip
    assert set(crds) == package and CRD_NAME in crds
    shipped = yaml.safe_load((ROOT / "saasodoo" / "crds" / f"{CRD_NAME}.yaml").read_text())
    assert crds[CRD_NAME]["spec"] == shipped["spec"]
    for crd in crds.values():
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    not_kept = render(helm, "--set", "crds.keep=false")
    assert all(
        "annotations" not in d["metadata"]
        for d in not_kept
        if d["kind"] == "CustomResourceDefinition"
    )
    without = render(helm, "--set", "crds.enabled=false")
    assert not [d for d in without if d["kind"] == "CustomResourceDefinition"]


def test_every_pod_is_pod_security_restricted(helm: Path) -> None:
    for pod in pods(render(helm)):
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["seccompProfile"]["type"] == "RuntimeDefault"
        for container in pod["containers"]:
            csc = container["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False, container["name"]
            assert csc["capabilities"]["drop"] == ["ALL"], container["name"]
            assert csc["readOnlyRootFilesystem"] is True, container["name"]
            assert container["resources"]["limits"]["memory"], container["name"]


def test_keys_come_only_from_existing_secrets(helm: Path) -> None:
    docs = render(helm)
    assert not [d for d in docs if d["kind"] in ("Secret", "ConfigMap")]
    api = one(docs, "Deployment", "platform-saasodoo-api")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in api["containers"][0]["env"]}
    for name, secret in (
        ("SAASODOO_API_SUPABASE_KEY", "saasodoo-supabase"),
        ("SAASODOO_API_SUPABASE_JWT_SECRET", "saasodoo-supabase"),
        ("SAASODOO_API_SECRET_KEY", "saasodoo-session"),
    ):
        assert "value" not in env[name], name
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == secret
    # and the chart refuses to render without them, naming the value
    for value in ("api.supabase.existingSecret", "api.session.existingSecret"):
        args = [a for a in REQUIRED if not a.startswith(value)]
        args = [a for i, a in enumerate(args) if not (a == "--set" and (
            i + 1 >= len(args) or args[i + 1] == "--set"))]  # fmt: skip
        proc = template(helm, *args)
        assert proc.returncode != 0 and value in proc.stderr, proc.stderr


def test_values_are_strict(helm: Path) -> None:
    proc = template(helm, *REQUIRED, "--set", "operator.replica=3")
    assert proc.returncode != 0
    assert "replica" in proc.stderr and "not allowed" in proc.stderr, proc.stderr
    proc = template(helm, *REQUIRED, "--set", "api.env=staging")
    assert proc.returncode != 0 and "env" in proc.stderr, proc.stderr
    proc = template(helm, *REQUIRED, "--set", "metrics.port=8080")  # the API's own port
    assert proc.returncode != 0 and "port" in proc.stderr, proc.stderr


def rules(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc.get("rules") or [])


def test_rbac_has_no_wildcard_and_the_api_no_secret_pod_or_exec(helm: Path) -> None:
    docs = render(helm)
    for doc in docs:
        for rule in rules(doc):
            for key in ("verbs", "resources", "apiGroups"):
                assert "*" not in rule.get(key, []), f"{doc['kind']}/{doc['metadata']['name']}"
    api_rules = [r for d in docs if d["metadata"]["name"] == "platform-saasodoo-api"
                 for r in rules(d)]  # fmt: skip
    granted = {res for r in api_rules for res in r["resources"]}
    assert granted.isdisjoint({"secrets", "pods", "pods/exec", "pods/log", "namespaces"})
    assert not [d for d in docs if d["kind"] == "ClusterRole"
                and d["metadata"]["name"] == "platform-saasodoo-api"]  # fmt: skip
    operator = one(docs, "ClusterRole", "platform-saasodoo-operator")
    resources = {res for r in rules(operator) for res in r["resources"]}
    assert "pods/exec" not in resources and "roles" not in resources
    assert "rolebindings" not in resources and "clusterroles" not in resources


def test_network_policies_admit_the_api_only_from_the_ingress_controller(helm: Path) -> None:
    docs = render(helm, "--set", "networkPolicy.kubeApiCidrs={10.0.0.1/32}")
    api = one(docs, "NetworkPolicy", "platform-saasodoo-api")["spec"]
    scrapers, allowed = api["ingress"]
    assert scrapers["ports"] == [{"port": "metrics"}]
    assert scrapers["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    sources = allowed["from"]
    assert sources[0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "traefik"
    }
    assert sources[1]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    operator = one(docs, "NetworkPolicy", "platform-saasodoo-operator")["spec"]
    assert [r["ports"] for r in operator["ingress"]] == [[{"port": "metrics"}]]
    assert operator["policyTypes"] == ["Ingress", "Egress"]
    cidrs = [b["ipBlock"]["cidr"] for b in operator["egress"][1]["to"]]
    assert cidrs == ["10.0.0.1/32"]
    # The API alone reaches the operator's reader pods of tenant backup volumes (downloads).
    readers = api["egress"][-1]
    assert readers["to"] == [{
        "namespaceSelector": {"matchExpressions": [
            {"key": "saasodoo.dev/tenant", "operator": "Exists"}]},
        "podSelector": {"matchLabels": {"saasodoo.dev/backup-job": "serve"}},
    }]  # fmt: skip
    assert readers["ports"] == [{"port": 8070, "protocol": "TCP"}]
    assert len(operator["egress"]) == len(api["egress"]) - 1


def test_notes_say_where_the_platform_reaches_the_kubernetes_api(tools: Tools) -> None:
    # helm 4: helm 3's `install --dry-run=client` still wants a cluster when a template looks
    # something up; NOTES are rendered the same by both.
    def notes(*args: str) -> str:
        proc = subprocess.run(
            [str(tools.helm(4)), "install", "platform", str(PLATFORM), "--namespace", NAMESPACE,
             "--dry-run=client", *REQUIRED, *args],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split("NOTES:", 1)[1]

    # No addresses given and none looked up (a dry run reads no cluster): the wide rule, said.
    assert "addresses are unknown" in notes()
    assert "may reach any address\non ports 443, 6443" in notes()
    given = notes("--set", "networkPolicy.kubeApiCidrs={10.0.0.1/32}")
    assert "reach the Kubernetes API at 10.0.0.1/32 (ports 443, 6443)." in given
    assert "unknown" not in given


def test_readme_is_generated_from_values(tools: Tools, tmp_path: Path) -> None:
    copy = tmp_path / "saasodoo"
    shutil.copytree(PLATFORM, copy, symlinks=True)
    helm_docs(tools, copy)
    assert (PLATFORM / "README.md").read_text() == (copy / "README.md").read_text(), (
        "charts/saasodoo/README.md is stale: run helm-docs --chart-search-root charts/saasodoo"
    )
    table = re.findall(r"^\| ([^ |]+) \| [a-z]+ \| .* \| (.*) \|$",
                       (PLATFORM / "README.md").read_text(), re.M)  # fmt: skip
    assert len(table) > 40 and all(desc.strip() for _, desc in table)


def test_metrics_are_served_beside_the_ingress_and_monitored_on_request(helm: Path) -> None:
    docs = render(helm)
    assert not [d for d in docs if d["kind"] in ("ServiceMonitor", "PrometheusRule")]
    ingress = one(docs, "Ingress", "platform-saasodoo-api")
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert [p["backend"]["service"]["port"]["name"] for p in paths] == ["http"]
    service = one(docs, "Service", "platform-saasodoo-operator-metrics")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics"}]
    docs = render(helm, "--set", "metrics.serviceMonitor.enabled=true",
                  "--set", "metrics.prometheusRule.enabled=true")  # fmt: skip
    monitor = one(docs, "ServiceMonitor", "platform-saasodoo")
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "interval": "30s"}]
    rule = one(docs, "PrometheusRule", "platform-saasodoo")
    shipped = yaml.safe_load((PLATFORM / "files" / "prometheus-rules.yaml").read_text())
    assert rule["spec"] == shipped
