"""Pods on the real node reach the Kubernetes API only as their ServiceAccount (#24, point 2).

scripts/realnode.sh once let pods read the API through an unauthenticated ``kubectl proxy`` on
10.250.0.1:8001, Secrets of every namespace included: a pod in a namespace without a
NetworkPolicy read every tenant's ``saasodoo-admin`` Secret. Now pods reach the apiserver as in
any cluster: Service ``kubernetes`` (10.96.0.1:443) over TLS, authenticated by the projected
ServiceAccount token the kubelet mounts, authorized by RBAC. Here an attacker pod in namespace
``traefik`` and one in a tenant-like namespace without a NetworkPolicy try to read such a Secret:
with no token, with their namespace's default ServiceAccount token, and through the old proxy
address. The probe is the in-cluster configuration every client library uses
(KUBERNETES_SERVICE_HOST/PORT, the token and ``ca.crt`` under
/var/run/secrets/kubernetes.io/serviceaccount, the server certificate checked against the
Service's IP), written with Python's standard library because the image has no Kubernetes
client. CoreDNS and Traefik now read the API through accounts of their own: a Service name
still resolves, an Ingress still routes, and ``kubectl auth can-i`` shows their rights.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.realnode.helpers import REAL_NODE_LABEL, api_endpoints, get_https, real_nodes
from tests.support import Cluster, eventually

pytestmark = pytest.mark.realnode

VICTIM = "rnauth-victim"  # a tenant's namespace: its saasodoo-admin Secret is the prize
TENANT_LIKE = "rnauth-tenantlike"  # a namespace without any NetworkPolicy
ATTACKER_NAMESPACES = ("traefik", TENANT_LIKE)
ATTACKER = "rnauth-attacker"
WEB = "rnauth-web"  # Service and Ingress to the attacker pod of TENANT_LIKE (its http.server)
WEB_HOST = "rnauth.odoo.test"
OLD_PROXY = ("10.250.0.1", 8001)  # where the kubectl proxy listened
IMAGE = "docker.io/library/odoo:18.0"  # on the real node (images/build.sh), with python3

#: Run in the attacker pod: what the API server answers, per way in (a JSON object): an HTTP
#: status, "refused" when nothing listens, or the error met.
PROBE = r"""
import json, os, ssl, sys, urllib.error, urllib.request
victim, old_proxy = sys.argv[1], sys.argv[2]
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
token = open(sa + "/token").read()
ctx = ssl.create_default_context(cafile=sa + "/ca.crt")  # checks the certificate's IP SAN too

def call(method, url, bearer=None, body=None):
    req = urllib.request.Request(url, method=method,
                                 data=json.dumps(body).encode() if body else None)
    if bearer:
        req.add_header("Authorization", "Bearer " + bearer)
    if body:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            return "refused", None
        return repr(exc.reason), None

api = f"https://{host}:{port}"
secret = f"/api/v1/namespaces/{victim}/secrets/saasodoo-admin"
review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
status, who = call("POST", api + "/apis/authentication.k8s.io/v1/selfsubjectreviews", token,
                   review)
print(json.dumps({
    "service": f"{host}:{port}",
    "anonymous_get": call("GET", api + secret)[0],
    "anonymous_list": call("GET", api + "/api/v1/secrets")[0],
    "token_get": call("GET", api + secret, token)[0],
    "token_list": call("GET", api + "/api/v1/secrets", token)[0],
    "whoami": [status, ((who or {}).get("status") or {}).get("userInfo", {}).get("username")],
    "old_proxy_get": call("GET", f"http://{old_proxy}{secret}")[0],
}))
"""

RESTRICTED = {
    "runAsUser": 100,
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def attacker_pod(namespace: str) -> dict[str, Any]:
    """A pod of NAMESPACE's default ServiceAccount on the real node, serving HTTP on 8000."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": ATTACKER, "namespace": namespace, "labels": {"app": ATTACKER}},
        "spec": {
            "nodeSelector": {REAL_NODE_LABEL: "true"},
            "tolerations": [{"key": REAL_NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "probe",
                    "image": IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-m", "http.server", "8000", "--directory", "/etc"],
                    "securityContext": RESTRICTED,
                }
            ],
        },
    }


def manifests() -> list[dict[str, Any]]:
    victim_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "saasodoo-admin", "namespace": VICTIM},
        "stringData": {"password": "not-for-attackers"},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": WEB, "namespace": TENANT_LIKE},
        "spec": {"selector": {"app": ATTACKER}, "ports": [{"port": 80, "targetPort": 8000}]},
    }
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": WEB, "namespace": TENANT_LIKE},
        "spec": {
            "ingressClassName": "traefik",
            "rules": [
                {
                    "host": WEB_HOST,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": WEB, "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }
    namespaces = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
        for n in (VICTIM, TENANT_LIKE)
    ]
    pods = [attacker_pod(n) for n in ATTACKER_NAMESPACES]
    return [*namespaces, victim_secret, service, ingress, *pods]


def cleanup(kube: Cluster) -> None:
    kube.kubectl("-n", "traefik", "delete", "pod", ATTACKER, "--ignore-not-found", "--wait=true")
    kube.kubectl("delete", "namespace", VICTIM, TENANT_LIKE, "--ignore-not-found", "--wait=true")


@pytest.fixture(scope="module")
def attackers(kube: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    assert real_nodes(kube), "no real node in the cluster: scripts/cluster.sh up starts one"
    cleanup(kube)
    source = tmp_path_factory.mktemp("rnauth") / "objects.json"
    source.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests()}))
    try:
        kube.kubectl("apply", "-f", str(source))
        for ns in ATTACKER_NAMESPACES:
            kube.kubectl("-n", ns, "wait", "--for=condition=Ready", f"pod/{ATTACKER}",
                         "--timeout=120s")  # fmt: skip
        yield
    finally:
        cleanup(kube)


def in_pod(kube: Cluster, namespace: str, *command: str) -> str:
    proc = subprocess.run(
        [str(kube.tools.kubectl), "-n", namespace, "exec", ATTACKER, "-c", "probe", "--",
         *command],
        env=kube.env(), capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("namespace", ATTACKER_NAMESPACES)
def test_a_pod_reads_no_secret_without_a_token_nor_with_its_default_token_nor_through_the_old_proxy(
    kube: Cluster, attackers: None, namespace: str
) -> None:
    old_proxy = f"{OLD_PROXY[0]}:{OLD_PROXY[1]}"
    out = in_pod(kube, namespace, "python3", "-c", PROBE, VICTIM, old_proxy)
    seen = json.loads(out)
    # Service kubernetes, reached over TLS the in-cluster way (the certificate checked).
    assert seen["service"] == "10.96.0.1:443", out
    # The token authenticates (so the refusals below are RBAC's, not a broken token).
    assert seen["whoami"] == [201, f"system:serviceaccount:{namespace}:default"], out
    assert seen["anonymous_get"] in (401, 403), out
    assert seen["anonymous_list"] in (401, 403), out
    assert seen["token_get"] == 403, out
    assert seen["token_list"] == 403, out
    assert seen["old_proxy_get"] == "refused", out


def test_service_kubernetes_names_the_apiservers_own_address(kube: Cluster) -> None:
    """Not a node's address: the apiserver's host of its own (scripts/realnode.sh), so traffic
    from pods to it is forwarded and NetworkPolicies apply to it."""
    endpoints = api_endpoints(kube)
    assert {a for a, _ in endpoints} == {"10.250.1.1"}, endpoints


def can_i(kube: Cluster, account: str, verb: str, resource: str, *extra: str) -> bool:
    proc = subprocess.run(
        [str(kube.tools.kubectl), "auth", "can-i", verb, resource, "--all-namespaces",
         f"--as=system:serviceaccount:{account}", *extra],
        env=kube.env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.stdout.strip() in ("yes", "no"), proc.stdout + proc.stderr
    return proc.stdout.strip() == "yes"


#: account -> (what its code reads: allowed; what it must not do: denied), as (verb, resource).
RIGHTS = {
    "kube-system:coredns": (
        [("list", "services"), ("watch", "services"), ("list", "namespaces"),
         ("watch", "namespaces"), ("list", "endpointslices.discovery.k8s.io"),
         ("watch", "endpointslices.discovery.k8s.io")],
        [("get", "secrets"), ("list", "secrets"), ("list", "pods"), ("get", "nodes"),
         ("list", "configmaps"), ("create", "services"),
         ("update", "endpointslices.discovery.k8s.io")],
    ),
    "traefik:traefik": (
        [("list", "ingresses.networking.k8s.io"), ("watch", "ingresses.networking.k8s.io"),
         ("list", "ingressclasses.networking.k8s.io"), ("list", "services"),
         ("list", "endpointslices.discovery.k8s.io"), ("list", "secrets"), ("watch", "secrets"),
         ("list", "nodes")],
        [("update", "ingresses.networking.k8s.io"), ("create", "pods"), ("create", "pods/exec"),
         ("list", "configmaps"), ("list", "pods"), ("create", "secrets"), ("delete", "services"),
         ("list", "serviceaccounts"), ("create", "serviceaccounts/token")],
    ),
    "traefik:default": ([], [("list", "secrets"), ("get", "secrets"), ("list", "services")]),
    "kube-system:default": ([], [("list", "secrets"), ("get", "secrets"), ("list", "services")]),
}  # fmt: skip


@pytest.mark.parametrize("account", sorted(RIGHTS))
def test_system_accounts_hold_what_their_code_reads_and_no_more(
    kube: Cluster, account: str
) -> None:
    allowed, denied = RIGHTS[account]
    assert [r for r in allowed if not can_i(kube, account, *r)] == [], account
    assert [r for r in denied if can_i(kube, account, *r)] == [], account
    if account == "traefik:traefik":  # no Ingress status written (no ingressEndpoint set)
        assert not can_i(kube, account, "update", "ingresses.networking.k8s.io",
                         "--subresource=status")  # fmt: skip


def test_coredns_and_traefik_run_as_their_accounts_and_only_traefik_holds_its_token(
    kube: Cluster,
) -> None:
    dns = kube.apps.read_namespaced_deployment("coredns", "kube-system").spec.template.spec
    assert dns.service_account_name == "coredns"
    assert dns.automount_service_account_token is not False
    traefik = kube.apps.read_namespaced_deployment("traefik", "traefik").spec.template.spec
    assert traefik.service_account_name == "traefik"
    assert traefik.automount_service_account_token is False
    mounts = {c.name: {m.mount_path for m in c.volume_mounts or []} for c in traefik.containers}
    token_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert token_dir in mounts["traefik"], mounts
    assert token_dir not in mounts["maintenance"], mounts


def test_coredns_resolves_a_new_service_and_traefik_routes_to_it(
    kube: Cluster, attackers: None
) -> None:
    ip: str = kube.core.read_namespaced_service(WEB, TENANT_LIKE).spec.cluster_ip
    name = f"{WEB}.{TENANT_LIKE}.svc.cluster.local"
    resolve = f"import socket; print(socket.gethostbyname({name!r}))"

    def resolved() -> bool:
        try:
            return in_pod(kube, "traefik", "python3", "-c", resolve).strip() == ip
        except AssertionError:
            return False

    eventually(resolved, timeout=60, interval=1, what=f"{name} -> {ip} through CoreDNS")

    def served() -> str:
        status, body = get_https(WEB_HOST, "/")
        return body if status == 200 else ""

    body = eventually(served, timeout=60, interval=1, what=f"Traefik routing {WEB_HOST}")
    assert "Directory listing" in body, body[:300]


def test_nothing_listens_where_the_old_proxy_did(kube: Cluster) -> None:
    """The old proxy's address and port refuse connections from the host too."""
    assert real_nodes(kube), "no real node in the cluster"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(OLD_PROXY, timeout=5).close()
    assert not Path("/run/saasodoo-realnode/api-proxy.pid").exists()
