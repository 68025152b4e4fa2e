"""The platform chart's RBAC on a real API server (authorization mode RBAC): `helm install` of
charts/saasodoo, then `kubectl auth can-i` as each ServiceAccount over what it must and must
not do, row by row of the README's table "Rights of the platform's accounts" (#24 point 2).

The CRDs are left out of this release (`crds.enabled=false`): other tests of the session own
them; they are applied here from the package's files as `saasodoo operator install-crds`
does, since kubectl resolves each resource through discovery."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import yaml

from saasodoo.adapters.kube import Kube
from saasodoo.adapters.resources import apply_crd
from saasodoo.settings import Settings
from tests.support import ROOT, Cluster

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-rbac"
RELEASE = "rbac"
OPERATOR = f"system:serviceaccount:{NAMESPACE}:{RELEASE}-saasodoo-operator"
API = f"system:serviceaccount:{NAMESPACE}:{RELEASE}-saasodoo-api"
TENANT_NS = "tenant-someone"

#: The operator's Lease (``Settings.operator_lease``), which the API reads for /api/health.
LEASE = "leases.coordination.k8s.io saasodoo-operator"

#: (account, verb, resource (``TYPE NAME``: one object), namespace or None for cluster-wide /
#: all namespaces)
MAY = [
    (OPERATOR, "create", "namespaces", None),
    (OPERATOR, "delete", "namespaces", None),
    (OPERATOR, "create", "secrets", TENANT_NS),  # helm's release records
    (OPERATOR, "list", "secrets", None),  # the sweep's one list of release heads
    (OPERATOR, "create", "deployments.apps", TENANT_NS),
    (OPERATOR, "patch", "statefulsets.apps", TENANT_NS),
    (OPERATOR, "list", "replicasets.apps", TENANT_NS),  # helm 4's --wait reads them
    (OPERATOR, "create", "networkpolicies.networking.k8s.io", TENANT_NS),
    (OPERATOR, "create", "ingresses.networking.k8s.io", TENANT_NS),
    (OPERATOR, "create", "jobs.batch", TENANT_NS),
    (OPERATOR, "delete", "cronjobs.batch", TENANT_NS),
    (OPERATOR, "create", "resourcequotas", TENANT_NS),
    (OPERATOR, "create", "poddisruptionbudgets.policy", TENANT_NS),
    (OPERATOR, "get", "pods/log", TENANT_NS),
    (OPERATOR, "patch", "persistentvolumes", None),
    (OPERATOR, "list", "nodes", None),
    (OPERATOR, "create", "events.events.k8s.io", NAMESPACE),
    (OPERATOR, "patch", "odootenants.saasodoo.dev/status", NAMESPACE),
    (OPERATOR, "update", "odootenants.saasodoo.dev/finalizers", NAMESPACE),
    (OPERATOR, "patch", "odootenantbackups.saasodoo.dev/status", NAMESPACE),
    (OPERATOR, "update", "leases.coordination.k8s.io", NAMESPACE),
    (API, "create", "odootenants.saasodoo.dev", NAMESPACE),
    (API, "patch", "odootenants.saasodoo.dev", NAMESPACE),
    (API, "watch", "odootenants.saasodoo.dev", NAMESPACE),
    (API, "create", "odootenantrestores.saasodoo.dev", NAMESPACE),
    (API, "list", "events", NAMESPACE),
    (API, "get", LEASE, NAMESPACE),  # whether an operator leads (GET /api/health)
]

MAY_NOT = [
    (OPERATOR, "delete", "replicasets.apps", TENANT_NS),  # read only: the Deployments own them
    (OPERATOR, "create", "pods/exec", TENANT_NS),
    (OPERATOR, "create", "rolebindings.rbac.authorization.k8s.io", TENANT_NS),
    (OPERATOR, "create", "clusterroles.rbac.authorization.k8s.io", None),
    (OPERATOR, "create", "customresourcedefinitions.apiextensions.k8s.io", None),
    (OPERATOR, "delete", "nodes", None),
    (OPERATOR, "update", "leases.coordination.k8s.io", "kube-system"),
    (OPERATOR, "create", "odootenants.saasodoo.dev", "default"),
    (API, "get", "secrets", TENANT_NS),
    (API, "get", "secrets", NAMESPACE),
    (API, "list", "secrets", None),
    (API, "create", "pods", NAMESPACE),
    (API, "create", "pods/exec", TENANT_NS),
    (API, "get", "pods", TENANT_NS),
    (API, "create", "namespaces", None),
    (API, "patch", "odootenants.saasodoo.dev/status", NAMESPACE),
    (API, "create", "odootenants.saasodoo.dev", TENANT_NS),
    (API, "update", "leases.coordination.k8s.io", NAMESPACE),
    (API, "update", LEASE, NAMESPACE),  # read only
    (API, "list", "leases.coordination.k8s.io", NAMESPACE),
    (API, "get", "leases.coordination.k8s.io another-lease", NAMESPACE),  # that one only
    (API, "get", LEASE, "kube-system"),
    (API, "create", "deployments.apps", TENANT_NS),
]


@pytest.fixture(scope="module")
def platform(kube: Cluster) -> Iterator[Cluster]:
    client = Kube(Settings(kubeconfig=kube.kubeconfig))
    for path in sorted((ROOT / "saasodoo" / "crds").glob("*.yaml")):
        apply_crd(client, yaml.safe_load(path.read_text()))
    kube.kubectl("create", "namespace", NAMESPACE)
    try:
        kube.helm(
            4, "install", RELEASE, str(ROOT / "charts" / "saasodoo"), "--namespace", NAMESPACE,
            "--set", "crds.enabled=false",
            "--set", "api.ingress.host=saas.example.com",
            "--set", "api.supabase.url=https://project.supabase.co",
            "--set", "api.supabase.existingSecret=saasodoo-supabase",
            "--set", "api.session.existingSecret=saasodoo-session",
        )  # fmt: skip
        yield kube
    finally:
        kube.helm(4, "uninstall", RELEASE, "--namespace", NAMESPACE, check=False)
        kube.kubectl("delete", "namespace", NAMESPACE, "--wait=false")


def can_i(kube: Cluster, account: str, verb: str, resource: str, namespace: str | None) -> str:
    where = ["--namespace", namespace] if namespace else ["--all-namespaces"]
    # `TYPE/NAME` is a name to kubectl auth can-i: a subresource goes in --subresource
    resource, _, name = resource.partition(" ")
    resource, _, sub = resource.partition("/")
    subresource = [f"--subresource={sub}"] if sub else []
    if name:
        resource = f"{resource}/{name}"
    proc = subprocess.run(
        [
            str(kube.tools.kubectl),
            "auth",
            "can-i",
            verb,
            resource,
            *subresource,
            f"--as={account}",
            *where,
        ],  # fmt: skip
        env=kube.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), proc.stdout + proc.stderr
    return answer


def label(case: tuple[str, str, str, str | None]) -> str:
    account, verb, resource, namespace = case
    return f"{account.rsplit('-', 1)[-1]} {verb} {resource} in {namespace or 'all'}"


def test_each_account_may_do_what_its_work_needs(platform: Cluster) -> None:
    refused = [label(c) for c in MAY if can_i(platform, *c) != "yes"]
    assert not refused, f"refused: {refused}"


def test_each_account_may_do_nothing_more(platform: Cluster) -> None:
    allowed = [label(c) for c in MAY_NOT if can_i(platform, *c) != "no"]
    assert not allowed, f"allowed: {allowed}"
