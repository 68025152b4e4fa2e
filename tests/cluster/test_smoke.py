"""The cluster under test really schedules, spreads, binds volumes and serves both helms.

A throw-away chart (tests/charts/smoke) is installed with helm 3 and with helm 4
(`--wait`). On the simulated cluster its pods are scheduled by the real
kube-scheduler onto kwok's fake nodes and marked Running/Ready by kwok; no
container runs.
"""

from __future__ import annotations

import pytest

from tests.support import ROOT, Cluster, eventually

pytestmark = pytest.mark.cluster

CHART = ROOT / "tests" / "charts" / "smoke"
REAL_NODE_LABEL = "saasodoo.dev/real-node"


def test_server_reports_pinned_version(kube: Cluster) -> None:
    from kubernetes import client

    info = client.VersionApi(kube.api).get_code()
    assert info.major == "1"
    if kube.simulated:
        assert info.git_version == _pinned_kubernetes_version()
        assert info.minor == _pinned_kubernetes_version().split(".")[1]


def test_nodes_are_ready_with_distinct_hostnames(kube: Cluster) -> None:
    nodes = kube.core.list_node().items
    assert len(nodes) >= 3
    hostnames = {n.metadata.labels["kubernetes.io/hostname"] for n in nodes}
    assert len(hostnames) == len(nodes)
    for node in nodes:
        ready = {c.type: c.status for c in node.status.conditions}.get("Ready")
        assert ready == "True", f"node {node.metadata.name} not Ready"
        no_schedule = [t.key for t in node.spec.taints or [] if t.effect == "NoSchedule"]
        if (node.metadata.labels or {}).get(REAL_NODE_LABEL) == "true":
            # scripts/realnode.sh: only pods that tolerate it land on a real node.
            assert no_schedule == [REAL_NODE_LABEL], node.metadata.name
        else:
            assert not no_schedule, node.metadata.name


def test_harness_extras_exist(kube: Cluster) -> None:
    from kubernetes import client

    classes = client.NetworkingV1Api(kube.api).list_ingress_class().items
    assert "traefik" in {c.metadata.name for c in classes}
    kube.core.read_namespace("traefik")
    storage = client.StorageV1Api(kube.api).list_storage_class().items
    defaults = [
        s
        for s in storage
        if (s.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class")
        == "true"
    ]
    assert len(defaults) == 1


@pytest.mark.parametrize("helm_major", [3, 4])
def test_helm_installs_spreads_binds_and_uninstalls(kube: Cluster, helm_major: int) -> None:
    release = f"smoke-helm{helm_major}"
    namespace = f"smoke-helm{helm_major}"
    selector = f"app.kubernetes.io/instance={release}"
    # A leftover from an interrupted earlier run must not fail this one.
    kube.helm(helm_major, "uninstall", release, "-n", namespace, "--wait", check=False)

    kube.helm(
        helm_major,
        "install",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--create-namespace",
        "--wait",
        "--timeout",
        "3m",
    )
    try:
        # Both helms see the release, whichever installed it.
        for major in (3, 4):
            listed = {(r["name"], r["namespace"], r["status"]) for r in kube.helm_releases(major)}
            assert (release, namespace, "deployed") in listed, f"helm{major} list -A: {listed}"

        pods = kube.core.list_namespaced_pod(namespace, label_selector=selector).items
        assert len(pods) == 4  # 3 spread + 1 with a volume
        fake_nodes = {
            n.metadata.name
            for n in kube.core.list_node().items
            if (n.metadata.annotations or {}).get("kwok.x-k8s.io/node") == "fake"
        }
        for pod in pods:
            assert pod.status.phase == "Running", pod.metadata.name
            ready = {c.type: c.status for c in pod.status.conditions}.get("Ready")
            assert ready == "True", pod.metadata.name
            if kube.simulated:
                assert pod.spec.node_name in fake_nodes

        spread = [p for p in pods if p.metadata.labels["app.kubernetes.io/component"] == "spread"]
        assert len({p.spec.node_name for p in spread}) == 3

        pvc = kube.core.read_namespaced_persistent_volume_claim(f"{release}-data", namespace)
        assert pvc.status.phase == "Bound"
        pv = kube.core.read_persistent_volume(pvc.spec.volume_name)
        assert pv.spec.claim_ref.uid == pvc.metadata.uid
        volume_pod = next(
            p for p in pods if p.metadata.labels["app.kubernetes.io/component"] == "volume"
        )
        if pv.spec.node_affinity:  # a local volume pins its pod to the volume's node
            terms = pv.spec.node_affinity.required.node_selector_terms
            assert volume_pod.spec.node_name in terms[0].match_expressions[0].values
    finally:
        kube.helm(helm_major, "uninstall", release, "--namespace", namespace, "--wait")

    for major in (3, 4):
        assert release not in {r["name"] for r in kube.helm_releases(major)}
    eventually(
        lambda: not kube.core.list_namespaced_pod(namespace, label_selector=selector).items,
        what="pods to be deleted",
    )
    assert not kube.apps.list_namespaced_deployment(namespace, label_selector=selector).items
    assert not kube.core.list_namespaced_persistent_volume_claim(
        namespace, label_selector=selector
    ).items
    eventually(
        lambda: not _volume_exists(kube, pv.metadata.name),
        what=f"volume {pv.metadata.name} to be reclaimed",
    )
    kube.core.delete_namespace(namespace)


def _volume_exists(kube: Cluster, name: str) -> bool:
    from kubernetes.client.rest import ApiException

    try:
        kube.core.read_persistent_volume(name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _pinned_kubernetes_version() -> str:
    for line in (ROOT / "scripts" / "versions.env").read_text().splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return line.split("=", 1)[1].strip()
    raise AssertionError("KUBERNETES_VERSION missing from scripts/versions.env")


def test_simulated_cluster_listens_on_loopback_only(kube: Cluster) -> None:
    """etcd, the control plane and kwok bind 127.0.0.1 and nothing else."""
    import subprocess

    if not kube.simulated:
        return  # a real cluster's listeners are not ours to check
    ours = (
        "etcd",
        "kube-apiserver",
        "kube-controller",
        "kube-scheduler",
        "kwok-controller",
        "metrics-server",
    )
    out = subprocess.run(
        ["ss", "--listening", "--tcp", "--udp", "--numeric", "--processes", "--no-header"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listeners = [line.split() for line in out.splitlines() if any(f'"{p}"' in line for p in ours)]
    assert listeners, f"no listener of {ours} found in:\n{out}"
    for fields in listeners:
        local = fields[4]
        assert local.rsplit(":", 1)[0] == "127.0.0.1", f"listens on {local}: {fields}"
