#!/usr/bin/env python3
"""Live probe of the odoo-tenant NetworkPolicies on a real cluster.

For clusters whose CNI enforces NetworkPolicies (Calico, Cilium, kube-router, ...). In CI it
runs against the test cluster's real node (scripts/realnode.sh: kube-router enforces the
policies; tests/realnode/), with `--node-pool saasodoo.dev/real-node=true` so the probe pods
land there too; tests/chart checks the same expectations statically with np-guard
(tests/chart/test_networkpolicy.py, test_cluster.py).

Given two installed tenants, it opens TCP connections (to pod IPs, so DNS is not involved) and
checks each outcome against the chart's promises:

  from a probe pod in the ingress controller's namespace:
      -> each tenant's Odoo :8069          open
      -> each tenant's PostgreSQL :5432    blocked
  from a probe pod in tenant A's namespace (a pod of no release, e.g. a debug pod):
      -> A's Odoo :8069, A's PostgreSQL    blocked
  from each tenant's Odoo container (kubectl exec, python3):
      -> its own PostgreSQL :5432          open
      -> the other tenant's Odoo :8069     blocked
      -> the other tenant's PostgreSQL     blocked

Probe pods (busybox `nc`, Pod Security `restricted` compliant) are deleted at the end.

    scripts/test-network-isolation.py --tenant tenant-a/a --tenant tenant-b/b \\
        [--ingress-namespace traefik] [--kubeconfig PATH] [--context NAME] \\
        [--node-pool KEY=VALUE]

--node-pool puts the probe pods on the dedicated nodes labelled and tainted KEY=VALUE (the
tenants' SAASODOO_NODE_POOL).

Exit status: 0 if every expectation holds, 1 otherwise, 2 on a usage or setup error.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass

PROBE_IMAGE = "busybox:1.37"
TIMEOUT = 3


@dataclass(frozen=True)
class Tenant:
    namespace: str
    release: str
    odoo_pod: str
    odoo_ip: str
    postgresql_ip: str


class Kubectl:
    def __init__(self, binary: str, kubeconfig: str | None, context: str | None) -> None:
        self.base = [binary]
        if kubeconfig:
            self.base += ["--kubeconfig", kubeconfig]
        if context:
            self.base += ["--context", context]

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            [*self.base, *args], input=stdin, capture_output=True, text=True, check=False
        )
        if check and proc.returncode != 0:
            raise SetupError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def ok(self, *args: str) -> bool:
        return subprocess.run([*self.base, *args], capture_output=True, check=False).returncode == 0


class SetupError(Exception):
    pass


def running_pod(kubectl: Kubectl, namespace: str, selector: str) -> tuple[str, str]:
    pods = json.loads(kubectl.run("get", "pods", "-n", namespace, "-l", selector, "-o", "json"))
    for pod in pods["items"]:
        if pod["status"].get("phase") == "Running" and pod["status"].get("podIP"):
            return pod["metadata"]["name"], pod["status"]["podIP"]
    raise SetupError(f"no running pod with {selector} in namespace {namespace}")


def tenant(kubectl: Kubectl, spec: str) -> Tenant:
    namespace, _, release = spec.partition("/")
    if not release:
        raise SetupError(f"--tenant {spec}: expected NAMESPACE/RELEASE")
    base = f"app.kubernetes.io/instance={release},app.kubernetes.io/component="
    odoo_pod, odoo_ip = running_pod(kubectl, namespace, base + "odoo")
    _, pg_ip = running_pod(kubectl, namespace, base + "postgresql")
    return Tenant(namespace, release, odoo_pod, odoo_ip, pg_ip)


def probe_pod(kubectl: Kubectl, namespace: str, name: str, node_pool: str = "") -> str:
    placement: dict[str, object] = {}
    if node_pool:
        key, _, value = node_pool.partition("=")
        placement = {
            "nodeSelector": {key: value},
            "tolerations": [
                {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"}
            ],
        }
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "network-isolation-probe"},
        },
        "spec": {
            **placement,
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65534,
                "runAsGroup": 65534,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": PROBE_IMAGE,
                    "command": ["sleep", "3600"],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "16Mi"},
                        "limits": {"cpu": "100m", "memory": "32Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    kubectl.run("apply", "-f", "-", stdin=json.dumps(manifest))
    kubectl.run("wait", "--for=condition=Ready", f"pod/{name}", "-n", namespace, "--timeout=120s")
    return name


def can_connect_from_probe(kubectl: Kubectl, namespace: str, pod: str, ip: str, port: int) -> bool:
    # Connect, then end at once (stdin is empty): exit status 0 only if the connection opened.
    # Portable across busybox builds (`nc -z` exists only in those built with NC_EXTRA).
    return kubectl.ok(
        "exec", "-n", namespace, pod, "--",
        "sh", "-c", f'nc -w {TIMEOUT} "$0" "$1" </dev/null', ip, str(port),
    )  # fmt: skip


def can_connect_from_odoo(kubectl: Kubectl, source: Tenant, ip: str, port: int) -> bool:
    code = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), %d)"
    return kubectl.ok(
        "exec", "-n", source.namespace, source.odoo_pod, "-c", "odoo", "--",
        "python3", "-c", code % TIMEOUT, ip, str(port),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", action="append", required=True, help="NAMESPACE/RELEASE (x2)")
    parser.add_argument("--ingress-namespace", default="traefik")
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--context")
    parser.add_argument("--kubectl", default=os.environ.get("SAASODOO_KUBECTL", "kubectl"))
    parser.add_argument(
        "--node-pool", default="", help="KEY=VALUE: probe pods select and tolerate these nodes"
    )
    args = parser.parse_args(argv)
    if len(args.tenant) != 2:
        parser.error("give exactly two --tenant NAMESPACE/RELEASE")
    kubectl = Kubectl(args.kubectl, args.kubeconfig, args.context)
    suffix = secrets.token_hex(3)
    probes: list[tuple[str, str]] = []
    results: list[tuple[bool, str]] = []

    def expect(open_: bool, actual: bool, what: str) -> None:
        ok = open_ == actual
        results.append((ok, what))
        state = "open" if actual else "blocked"
        print(f"{'PASS' if ok else 'FAIL'}  {what}: {state}", flush=True)

    try:
        a, b = (tenant(kubectl, spec) for spec in args.tenant)
        ingress = probe_pod(
            kubectl, args.ingress_namespace, f"isolation-probe-{suffix}", args.node_pool
        )
        probes.append((args.ingress_namespace, ingress))
        stranger = probe_pod(kubectl, a.namespace, f"isolation-stranger-{suffix}", args.node_pool)
        probes.append((a.namespace, stranger))
        time.sleep(2)  # let the CNI program the new pods' policies

        for t in (a, b):
            ns = args.ingress_namespace
            expect(
                True,
                can_connect_from_probe(kubectl, ns, ingress, t.odoo_ip, 8069),
                f"{ns} -> {t.namespace} Odoo :8069",
            )
            expect(
                False,
                can_connect_from_probe(kubectl, ns, ingress, t.postgresql_ip, 5432),
                f"{ns} -> {t.namespace} PostgreSQL :5432",
            )
        for ip, port, what in (
            (a.odoo_ip, 8069, "Odoo :8069"),
            (a.postgresql_ip, 5432, "PostgreSQL"),
        ):
            expect(
                False,
                can_connect_from_probe(kubectl, a.namespace, stranger, ip, port),
                f"{a.namespace} stranger pod -> {a.namespace} {what}",
            )
        for src, dst in ((a, b), (b, a)):
            expect(
                True,
                can_connect_from_odoo(kubectl, src, src.postgresql_ip, 5432),
                f"{src.namespace} Odoo -> own PostgreSQL :5432",
            )
            expect(
                False,
                can_connect_from_odoo(kubectl, src, dst.odoo_ip, 8069),
                f"{src.namespace} Odoo -> {dst.namespace} Odoo :8069",
            )
            expect(
                False,
                can_connect_from_odoo(kubectl, src, dst.postgresql_ip, 5432),
                f"{src.namespace} Odoo -> {dst.namespace} PostgreSQL :5432",
            )
    except SetupError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    finally:
        for namespace, name in probes:
            kubectl.run("delete", "pod", name, "-n", namespace, "--wait=false", check=False)

    failed = [what for ok, what in results if not ok]
    print(f"\n{len(results) - len(failed)}/{len(results)} expectations hold", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
