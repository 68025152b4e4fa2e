"""NetworkPolicies: their structure, and the isolation they give two tenants side by side as
computed by np-guard's netpolicy analyzer over the rendered manifests (no CNI needed).

scripts/test-network-isolation.py probes the same expectations live, on clusters whose CNI
enforces NetworkPolicies.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helpers import CHART, find, helm_template, one, render
from tests.support import Tools

pytestmark = pytest.mark.chart

TRAEFIK = "traefik/traefik[Pod]"
DNS = "kube-system/coredns[Pod]"
DNS_CONN = "TCP 53,UDP 53"

EXTRA_OBJECTS = """
apiVersion: v1
kind: Namespace
metadata: {name: traefik, labels: {kubernetes.io/metadata.name: traefik}}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system, labels: {kubernetes.io/metadata.name: kube-system}}
---
apiVersion: v1
kind: Namespace
metadata: {name: monitoring, labels: {kubernetes.io/metadata.name: monitoring}}
---
apiVersion: v1
kind: Pod
metadata: {name: traefik, namespace: traefik, labels: {app.kubernetes.io/name: traefik}}
spec:
  containers: [{name: traefik, image: traefik:v3.3, ports: [{containerPort: 8000}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  containers: [{name: coredns, image: coredns/coredns:1.12.0,
                ports: [{containerPort: 53, protocol: UDP}, {containerPort: 53}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: scraper, namespace: monitoring, labels: {app: scraper}}
spec:
  containers: [{name: scraper, image: prom/prometheus:v3.0.0}]
"""


def tenant_namespace(name: str) -> str:
    return f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {name}, labels: {{kubernetes.io/metadata.name: {name}}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: stranger, namespace: {name}, labels: {{app: debug}}}}
spec:
  containers: [{{name: debug, image: busybox:1.37, ports: [{{containerPort: 8080}}]}}]
"""


def expected(ns: str, release: str, cron: bool, backup: bool) -> set[tuple[str, str, str]]:
    """Every connection that may touch a tenant's namespace (np-guard omits self-loops)."""
    odoo = f"{ns}/{release}-odoo-tenant[Deployment]"
    pg = f"{ns}/{release}-odoo-tenant-postgresql[StatefulSet]"
    test = f"{ns}/{release}-odoo-tenant-test[Job]"
    conns = {
        (TRAEFIK, odoo, "TCP 8069,8072"),
        (odoo, pg, "TCP 5432"),
        (odoo, DNS, DNS_CONN),
        (test, odoo, "TCP 8069"),
        (test, DNS, DNS_CONN),
    }
    if cron:
        cron_ = f"{ns}/{release}-odoo-tenant-cron[Deployment]"
        conns |= {(cron_, pg, "TCP 5432"), (cron_, DNS, DNS_CONN), (cron_, odoo, "TCP 8069,8072")}
    if backup:
        backup_ = f"{ns}/{release}-odoo-tenant-backup[CronJob]"
        conns |= {(backup_, pg, "TCP 5432"), (backup_, DNS, DNS_CONN)}
    return conns


def netpolicy_list(tools: Tools, directory: Path) -> set[tuple[str, str, str]]:
    proc = subprocess.run(
        [str(tools.path("SAASODOO_NETPOLICY")), "list", "--dirpath", str(directory), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return {(c["src"], c["dst"], c["conn"]) for c in json.loads(proc.stdout)}


@pytest.fixture(scope="module")
def connections(
    tools: Tools, tmp_path_factory: pytest.TempPathFactory
) -> set[tuple[str, str, str]]:
    """Two tenants (defaults; cron split without backups) with strangers around them."""
    directory = tmp_path_factory.mktemp("netpol")
    helm = str(tools.helm(3))
    (directory / "alpha.yaml").write_text(helm_template(helm, "alpha", "tenant-alpha", ()))
    beta_args = (
        "--values",
        str(CHART / "ci" / "cron-split-values.yaml"),
        "--set",
        "backup.enabled=false",
    )
    (directory / "beta.yaml").write_text(helm_template(helm, "beta", "tenant-beta", beta_args))
    (directory / "namespaces.yaml").write_text(
        EXTRA_OBJECTS
        + "---"
        + tenant_namespace("tenant-alpha")
        + "---"
        + tenant_namespace("tenant-beta")
    )
    return netpolicy_list(tools, directory)


def touching(conns: set[tuple[str, str, str]], namespace: str) -> set[tuple[str, str, str]]:
    return {
        c for c in conns if c[0].startswith(namespace + "/") or c[1].startswith(namespace + "/")
    }


@pytest.mark.parametrize(
    ("ns", "release", "cron", "backup"),
    [("tenant-alpha", "alpha", False, True), ("tenant-beta", "beta", True, False)],
)
def test_exactly_the_tenants_own_flows_are_allowed(
    connections: set[tuple[str, str, str]], ns: str, release: str, cron: bool, backup: bool
) -> None:
    assert touching(connections, ns) == expected(ns, release, cron, backup)


def test_no_connection_between_tenants(connections: set[tuple[str, str, str]]) -> None:
    for src, dst, conn in connections:
        namespaces = {src.split("/")[0], dst.split("/")[0]}
        assert namespaces != {"tenant-alpha", "tenant-beta"}, (src, dst, conn)


def test_odoo_is_reached_only_from_the_ingress_namespace_and_its_own_pods(
    connections: set[tuple[str, str, str]],
) -> None:
    for src, dst, conn in connections:
        if dst.endswith("-odoo-tenant[Deployment]"):
            own = src.split("/")[0] == dst.split("/")[0]
            assert src == TRAEFIK or own, (src, dst)
            assert conn in ("TCP 8069,8072", "TCP 8069"), (src, dst, conn)
            if own:
                assert "[Pod]" not in src  # the stranger in the namespace gets nothing


def test_postgresql_is_reached_only_from_its_own_odoo_cron_and_backup(
    connections: set[tuple[str, str, str]],
) -> None:
    sources = {(src, dst) for src, dst, conn in connections if "postgresql[StatefulSet]" in dst}
    assert sources == {
        (
            "tenant-alpha/alpha-odoo-tenant[Deployment]",
            "tenant-alpha/alpha-odoo-tenant-postgresql[StatefulSet]",
        ),
        (
            "tenant-alpha/alpha-odoo-tenant-backup[CronJob]",
            "tenant-alpha/alpha-odoo-tenant-postgresql[StatefulSet]",
        ),
        (
            "tenant-beta/beta-odoo-tenant[Deployment]",
            "tenant-beta/beta-odoo-tenant-postgresql[StatefulSet]",
        ),
        (
            "tenant-beta/beta-odoo-tenant-cron[Deployment]",
            "tenant-beta/beta-odoo-tenant-postgresql[StatefulSet]",
        ),
    }


def test_nothing_from_or_to_the_outside_world(connections: set[tuple[str, str, str]]) -> None:
    for src, dst, conn in connections:
        if src.startswith("tenant-") or dst.startswith("tenant-"):
            assert not src[0].isdigit() and not dst[0].isdigit(), (src, dst, conn)


def test_default_deny_for_every_pod_of_the_namespace(default_docs: list[dict[str, Any]]) -> None:
    deny = one(default_docs, "NetworkPolicy", "acme-odoo-tenant-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_dns_egress_to_kube_system_on_udp_and_tcp(default_docs: list[dict[str, Any]]) -> None:
    for policy in find(default_docs, "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            if any(p["port"] == 53 for p in rule.get("ports", [])):
                assert {(p["port"], p["protocol"]) for p in rule["ports"]} == {
                    (53, "UDP"),
                    (53, "TCP"),
                }
                [peer] = rule["to"]
                assert peer["namespaceSelector"] == {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                }


def test_ingress_controller_namespace_is_configurable(helm3: Path) -> None:
    selectors = "networkPolicy.ingressController"
    namespace_label = "kubernetes\\.io/metadata\\.name"
    docs = render(
        helm3,
        "--set", f"{selectors}.namespaceSelector.matchLabels.{namespace_label}=ingress-nginx",
        "--set", f"{selectors}.podSelector.matchLabels.app=nginx",
    )  # fmt: skip
    rule = one(docs, "NetworkPolicy", "acme-odoo-tenant-odoo")["spec"]["ingress"][0]
    assert rule["from"][0] == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
        "podSelector": {"matchLabels": {"app": "nginx"}},
    }


def test_optional_egress_is_off_by_default_and_can_be_opened(
    helm3: Path, default_docs: list[dict[str, Any]]
) -> None:
    def ports(docs: list[dict[str, Any]]) -> set[int]:
        policy = one(docs, "NetworkPolicy", "acme-odoo-tenant-odoo")
        return {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}

    assert ports(default_docs) == {5432, 53, 8069, 8072}
    docs = render(
        helm3,
        "--set", "networkPolicy.egress.smtp.enabled=true",
        "--set", "networkPolicy.egress.extra[0].ports[0].port=443",
    )  # fmt: skip
    assert ports(docs) == {5432, 53, 8069, 8072, 25, 465, 587, 443}


def test_policies_can_be_disabled(helm3: Path) -> None:
    assert not find(render(helm3, "--set", "networkPolicy.enabled=false"), "NetworkPolicy")
