"""The chart against a real Kubernetes API (the simulated cluster by default): server-side dry
runs of every scenario, and the lifecycle install → test → backup → upgrade → rollback →
uninstall → reinstall with helm 3 and helm 4, in namespaces enforcing Pod Security `restricted`.

On the simulated cluster no container runs: pods are scheduled, admitted, bound to volumes and
marked Ready by kwok; what Odoo and PostgreSQL do inside them is not exercised here.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helpers import CHART, SCENARIO_IDS, SCENARIOS, helm_template, pod_template
from tests.support import Cluster, eventually

pytestmark = pytest.mark.cluster

RUN = secrets.token_hex(3)
KEPT = {
    ("PersistentVolumeClaim", "{r}-odoo-tenant-filestore"),
    ("PersistentVolumeClaim", "{r}-odoo-tenant-backup"),
    ("PersistentVolumeClaim", "{r}-odoo-tenant-postgresql-data"),
    ("Secret", "{r}-odoo-tenant-odoo"),
    ("Secret", "{r}-odoo-tenant-postgresql"),
    ("ConfigMap", "{r}-odoo-tenant-odoo-series"),  # the database's Odoo series, kept with it
}
RELEASE_KINDS = (
    "deployments,statefulsets,cronjobs,jobs,pods,services,configmaps,secrets,"
    "persistentvolumeclaims,ingresses,networkpolicies,resourcequotas,limitranges,"
    "serviceaccounts,poddisruptionbudgets"
)


def create_namespace(kube: Cluster, name: str) -> None:
    from kubernetes import client

    kube.core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name=name,
                labels={
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/warn-version": "latest",
                },
            )
        )
    )


def delete_namespace(kube: Cluster, name: str) -> None:
    from kubernetes.client.rest import ApiException

    try:
        kube.core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def namespace(kube: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace enforcing Pod Security `restricted`, deleted afterwards."""
    suffix = request.node.callspec.id if hasattr(request.node, "callspec") else "x"
    name = f"chart-{RUN}-{request.node.originalname[5:18].replace('_', '-')}-{suffix}"[:63]
    name = name.rstrip("-").lower()
    create_namespace(kube, name)
    try:
        yield name
    finally:
        for major in (3, 4):
            for release in kube.helm_releases(major):
                if release["namespace"] == name:
                    kube.helm(major, "uninstall", release["name"], "-n", name, check=False)
        delete_namespace(kube, name)


def kubectl(
    kube: Cluster, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kube.tools.kubectl), "--kubeconfig", str(kube.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def as_pod(workload: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The pod a workload would create (the StatefulSet's claim templates as volumes)."""
    template = pod_template(workload)
    spec = dict(template["spec"])
    for claim in workload["spec"].get("volumeClaimTemplates", []):
        name = claim["metadata"]["name"]
        spec["volumes"] = [
            *spec.get("volumes", []),
            {
                "name": name,
                "persistentVolumeClaim": {"claimName": f"{name}-{workload['metadata']['name']}-0"},
            },
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{workload['metadata']['name']}-admission"[:63],
            "namespace": namespace,
            "labels": template["metadata"]["labels"],
        },
        "spec": spec,
    }


@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)
def test_scenario_passes_a_server_side_dry_run_and_pod_security(
    kube: Cluster, namespace: str, scenario: Path
) -> None:
    manifest = helm_template(
        str(kube.tools.helm(4)), "acme", namespace, ("--values", str(scenario))
    )
    proc = kubectl(kube, "apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=manifest)
    assert proc.returncode == 0, proc.stderr
    assert "would violate PodSecurity" not in proc.stderr, proc.stderr
    # Pod Security is enforced on Pods: submit each workload's pod template as a Pod too.
    docs = [d for d in yaml.safe_load_all(manifest) if d]
    pods = [
        as_pod(d, namespace)
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet", "CronJob", "Job")
    ]
    assert len(pods) >= 3
    # (The ServiceAccount admission plugin needs the account to exist for real.)
    accounts = "\n---\n".join(yaml.safe_dump(d) for d in docs if d["kind"] == "ServiceAccount")
    proc = kubectl(kube, "apply", "-n", namespace, "-f", "-", stdin=accounts)
    assert proc.returncode == 0, proc.stderr
    stream = "\n---\n".join(yaml.safe_dump(p) for p in pods)
    proc = kubectl(kube, "create", "--dry-run=server", "-n", namespace, "-f", "-", stdin=stream)
    assert proc.returncode == 0, proc.stderr
    assert "forbidden" not in proc.stderr.lower(), proc.stderr


def release_objects(kube: Cluster, namespace: str, release: str) -> set[tuple[str, str]]:
    proc = kubectl(
        kube,
        "get",
        RELEASE_KINDS,
        "-n",
        namespace,
        "-l",
        f"app.kubernetes.io/instance={release}",
        "-o",
        "json",
    )
    assert proc.returncode == 0, proc.stderr
    return {(i["kind"], i["metadata"]["name"]) for i in json.loads(proc.stdout)["items"]}


def secret_data(kube: Cluster, namespace: str, name: str) -> dict[str, str]:
    data: dict[str, str] = kube.core.read_namespaced_secret(name, namespace).data
    return data


def all_ready(kube: Cluster, namespace: str, release: str) -> bool:
    selector = f"app.kubernetes.io/instance={release}"
    for deployment in kube.apps.list_namespaced_deployment(
        namespace, label_selector=selector
    ).items:
        if (deployment.status.ready_replicas or 0) != deployment.spec.replicas:
            return False
    for sts in kube.apps.list_namespaced_stateful_set(namespace, label_selector=selector).items:
        if (sts.status.ready_replicas or 0) != sts.spec.replicas:
            return False
    return True


def running_pods(kube: Cluster, namespace: str, release: str) -> list[Any]:
    selector = f"app.kubernetes.io/instance={release}"
    return [
        p
        for p in kube.core.list_namespaced_pod(namespace, label_selector=selector).items
        if p.status.phase == "Running" and not p.metadata.deletion_timestamp
    ]


def assert_running_and_admitted(kube: Cluster, namespace: str, release: str, pods: int) -> None:
    assert all_ready(kube, namespace, release)
    running = running_pods(kube, namespace, release)
    assert len(running) == pods, [p.metadata.name for p in running]
    for pod in running:
        ready = {c.type: c.status for c in pod.status.conditions}.get("Ready")
        assert ready == "True", pod.metadata.name
    events = kube.core.list_namespaced_event(namespace).items
    # FailedCreate is what a controller records when admission (Pod Security, quota) refuses a
    # pod. (A transient FailedScheduling of the cron pod before its web pod exists is normal.)
    refused = [e.message for e in events if e.reason == "FailedCreate"]
    assert not refused, refused


def conf_value(kube: Cluster, namespace: str, release: str, option: str) -> str:
    cm = kube.core.read_namespaced_config_map(f"{release}-odoo-tenant-config", namespace)
    for line in cm.data["odoo.conf"].splitlines():
        key, _, value = line.partition("=")
        if key.strip() == option:
            return value.strip()
    raise AssertionError(f"{option} not in odoo.conf")


def workload(peer: str) -> str:
    """np-guard's live peer name without its kind, a ReplicaSet named after its Deployment."""
    name, _, kind = peer.partition("[")
    if kind == "ReplicaSet]":
        name = name.rsplit("-", 1)[0]
    return name


def pod_of(kube: Cluster, namespace: str, selector: str) -> Any:
    pods = kube.core.list_namespaced_pod(namespace, label_selector=selector).items
    assert len(pods) == 1, [p.metadata.name for p in pods]
    return pods[0]


@pytest.mark.parametrize("major", [3, 4], ids=["helm3", "helm4"])
def test_lifecycle_install_test_backup_upgrade_rollback_uninstall(
    kube: Cluster, namespace: str, major: int
) -> None:
    release = "acme"
    chart = str(CHART)
    kube.helm(major, "install", release, chart, "-n", namespace, "--wait", "--timeout", "3m")
    assert_running_and_admitted(kube, namespace, release, pods=2)  # odoo + postgresql
    objects = release_objects(kube, namespace, release)
    for kind in ("Deployment", "StatefulSet", "CronJob", "Ingress", "ResourceQuota", "LimitRange"):
        assert kind in {k for k, _ in objects}, kind
    pvcs = kube.core.list_namespaced_persistent_volume_claim(namespace).items
    assert {p.status.phase for p in pvcs} == {"Bound"} and len(pvcs) == 3

    # helm test: the Job hook signs in through the Service (no container runs on kwok).
    test = kube.helm(major, "test", release, "-n", namespace, "--timeout", "2m")
    assert "Succeeded" in test.stdout, test.stdout

    # A backup run now: lands on the Odoo pod's node (RWO filestore) and completes.
    job = f"{release}-manual-backup"
    proc = kubectl(
        kube, "create", "job", f"--from=cronjob/{release}-odoo-tenant-backup", job, "-n", namespace
    )
    assert proc.returncode == 0, proc.stderr
    eventually(
        lambda: (
            (kube_job := kubectl(kube, "get", "job", job, "-n", namespace, "-o", "json"))
            and json.loads(kube_job.stdout).get("status", {}).get("succeeded") == 1
        ),
        timeout=60,
        what="the backup Job to complete",
    )
    web = pod_of(
        kube, namespace, f"app.kubernetes.io/instance={release},app.kubernetes.io/component=odoo"
    )
    backup = pod_of(kube, namespace, f"job-name={job}")
    assert backup.spec.node_name == web.spec.node_name
    kubectl(kube, "delete", "job", job, "-n", namespace, "--wait=false")

    passwords = {
        name: secret_data(kube, namespace, f"{release}-odoo-tenant-{name}")
        for name in ("odoo", "postgresql")
    }

    # Upgrade with a changed value: new revision, same passwords, new configuration rolled out.
    kube.helm(
        major, "upgrade", release, chart, "-n", namespace, "--reuse-values",
        "--set", "odoo.config.workers=3", "--wait", "--timeout", "3m",
    )  # fmt: skip
    history = json.loads(kube.helm(major, "history", release, "-n", namespace, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2] and history[-1]["status"] == "deployed"
    assert conf_value(kube, namespace, release, "workers") == "3"
    for name, data in passwords.items():
        assert secret_data(kube, namespace, f"{release}-odoo-tenant-{name}") == data, name
    eventually(lambda: all_ready(kube, namespace, release), what="the upgraded release to be Ready")

    # No password in the release's values nor in any ConfigMap.
    values = kube.helm(
        major, "get", "values", release, "-n", namespace, "--all", "-o", "json"
    ).stdout
    configmaps = json.dumps(
        [cm.data for cm in kube.core.list_namespaced_config_map(namespace).items]
    )
    for data in passwords.values():
        for encoded in data.values():
            plain = base64.b64decode(encoded).decode()
            assert plain not in values and plain not in configmaps

    # Rollback: revision 3 carries revision 1's configuration; passwords still unchanged.
    kube.helm(major, "rollback", release, "1", "-n", namespace, "--wait", "--timeout", "3m")
    history = json.loads(kube.helm(major, "history", release, "-n", namespace, "-o", "json").stdout)
    assert history[-1]["revision"] == 3 and history[-1]["status"] == "deployed"
    assert conf_value(kube, namespace, release, "workers") == "2"
    for name, data in passwords.items():
        assert secret_data(kube, namespace, f"{release}-odoo-tenant-{name}") == data, name
    eventually(
        lambda: all_ready(kube, namespace, release), what="the rolled back release to be Ready"
    )

    # Suspend (odoo.replicas=0) and resume: only PostgreSQL keeps running meanwhile.
    for replicas, pods in ((0, 1), (1, 2)):
        kube.helm(
            major, "upgrade", release, chart, "-n", namespace, "--reuse-values",
            "--set", f"odoo.replicas={replicas}", "--wait", "--timeout", "3m",
        )  # fmt: skip
        eventually(
            lambda pods=pods: len(running_pods(kube, namespace, release)) == pods,
            what=f"{pods} running pod(s) with odoo.replicas={replicas}",
        )
    assert_running_and_admitted(kube, namespace, release, pods=2)

    # Uninstall removes what the release owns; the data and its passwords are kept on purpose.
    kube.helm(major, "uninstall", release, "-n", namespace, "--wait", "--timeout", "2m")
    kept = {(kind, name.format(r=release)) for kind, name in KEPT}
    eventually(
        lambda: release_objects(kube, namespace, release) == kept,
        timeout=60,
        what="only the kept data objects to remain",
    )

    # A reinstall of the same release adopts them: same passwords, volumes reused.
    kube.helm(major, "install", release, chart, "-n", namespace, "--wait", "--timeout", "3m")
    for name, data in passwords.items():
        assert secret_data(kube, namespace, f"{release}-odoo-tenant-{name}") == data, name
    assert_running_and_admitted(kube, namespace, release, pods=2)
    assert len(kube.core.list_namespaced_persistent_volume_claim(namespace).items) == 3


def test_plain_install_with_create_namespace_then_uninstall_without_keep(kube: Cluster) -> None:
    """`helm install ... --create-namespace --set ...` on its own, as other teams use it; with
    keepOnUninstall=false, uninstall removes everything, the StatefulSet's volume included."""
    release, namespace = "gone", f"chart-{RUN}-plain"
    try:
        kube.helm(
            4, "install", release, str(CHART), "-n", namespace, "--create-namespace",
            "--wait", "--timeout", "3m",
            "--set", "odoo.persistence.keepOnUninstall=false", "--set", "tenant.id=gone",
        )  # fmt: skip
        assert_running_and_admitted(kube, namespace, release, pods=2)
        kube.helm(4, "uninstall", release, "-n", namespace, "--wait", "--timeout", "2m")
        eventually(
            lambda: not release_objects(kube, namespace, release),
            timeout=90,
            what="every object of the release, volumes included, to be deleted",
        )
        assert not kube.core.list_namespaced_persistent_volume_claim(namespace).items
    finally:
        kube.helm(4, "uninstall", release, "-n", namespace, check=False)
        delete_namespace(kube, namespace)


def test_two_tenants_side_by_side_are_isolated_by_the_stored_policies(
    kube: Cluster, namespace: str
) -> None:
    """Tenant alpha (defaults) and beta (cron split, helm 3) in their namespaces; np-guard reads
    the live policies and pods from the API server."""
    beta = f"{namespace}-beta"[:63]
    create_namespace(kube, beta)
    try:
        kube.helm(4, "install", "alpha", str(CHART), "-n", namespace, "--wait", "--timeout", "3m")
        kube.helm(
            3, "install", "beta", str(CHART), "-n", beta, "--wait", "--timeout", "3m",
            "--values", str(CHART / "ci" / "cron-split-values.yaml"),
        )  # fmt: skip
        assert_running_and_admitted(kube, namespace, "alpha", pods=2)
        assert_running_and_admitted(kube, beta, "beta", pods=3)
        web = pod_of(kube, beta, "app.kubernetes.io/component=odoo")
        cron = pod_of(kube, beta, "app.kubernetes.io/component=cron")
        assert cron.spec.node_name == web.spec.node_name  # RWO filestore

        proc = subprocess.run(
            [
                str(kube.tools.path("SAASODOO_NETPOLICY")), "list",
                "--kubeconfig", str(kube.kubeconfig), "-o", "json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        ours = (namespace + "/", beta + "/")
        seen = {
            (workload(c["src"]), workload(c["dst"]), c["conn"])
            for c in json.loads(proc.stdout)
            if c["src"].startswith(ours) or c["dst"].startswith(ours)
        }
        # Live pods only (no backup or test pod runs now, the simulated cluster has no DNS
        # pods): each tenant's Odoo reaches its own PostgreSQL, beta's cron its own Odoo, and
        # nothing crosses namespaces.
        a, b = f"{namespace}/alpha-odoo-tenant", f"{beta}/beta-odoo-tenant"
        # On a real cluster, DNS and ingress controller pods add their flows: only those.
        seen = {
            c
            for c in seen
            if not (c[1].startswith("kube-system/") and c[2] == "TCP 53,UDP 53")
            and not (c[0].startswith("traefik/") and c[1] in (a, b) and c[2] == "TCP 8069,8072")
        }
        assert seen == {
            (a, f"{a}-postgresql", "TCP 5432"),
            (b, f"{b}-postgresql", "TCP 5432"),
            (f"{b}-cron", f"{b}-postgresql", "TCP 5432"),
            (f"{b}-cron", b, "TCP 8069,8072"),
        }
    finally:
        kube.helm(3, "uninstall", "beta", "-n", beta, check=False)
        delete_namespace(kube, beta)


def postgresql_image(kube: Cluster, namespace: str, release: str) -> str:
    sts = kube.apps.read_namespaced_stateful_set(f"{release}-odoo-tenant-postgresql", namespace)
    (image,) = [c.image for c in sts.spec.template.spec.containers if c.name == "postgresql"]
    return str(image)


@pytest.mark.parametrize("major", [3, 4], ids=["helm3", "helm4"])
def test_postgresql_image_change_of_major_or_debian_release_needs_confirmation(
    kube: Cluster, namespace: str, major: int
) -> None:
    """A new build of the running major and Debian release goes through; another release or
    major (or the floating tag of chart 0.1.0) is refused on upgrade, naming the running
    image, until `postgresql.upgradeFrom` confirms it (the README's steps done)."""
    release, chart = "pgimg", str(CHART)

    def upgrade(*sets: str) -> subprocess.CompletedProcess[str]:
        args = [a for s in sets for a in ("--set", s)]
        return kube.helm(
            major, "upgrade", release, chart, "-n", namespace, "--reuse-values", *args,
            check=False,
        )  # fmt: skip

    kube.helm(
        major, "install", release, chart, "-n", namespace,
        "--set", "postgresql.image.tag=17.8-bookworm",
    )  # fmt: skip
    running = postgresql_image(kube, namespace, release)
    assert running.endswith(":17.8-bookworm")

    same_series = upgrade("postgresql.image.tag=17.9-bookworm")
    assert same_series.returncode == 0, same_series.stderr
    running = postgresql_image(kube, namespace, release)

    for tag in ("17.9-trixie", "18.1-bookworm"):
        refused = upgrade(f"postgresql.image.tag={tag}")
        assert refused.returncode != 0
        assert f"runs {running}" in refused.stderr, refused.stderr
        assert f"postgresql.upgradeFrom={running}" in refused.stderr, refused.stderr
        assert postgresql_image(kube, namespace, release) == running

    # A confirmation naming another image than the running one confirms nothing.
    stale = upgrade("postgresql.image.tag=17.9-trixie", "postgresql.upgradeFrom=postgres:17")
    assert stale.returncode != 0 and "upgradeFrom" in stale.stderr

    confirmed = upgrade("postgresql.image.tag=17.9-trixie", f"postgresql.upgradeFrom={running}")
    assert confirmed.returncode == 0, confirmed.stderr
    assert postgresql_image(kube, namespace, release).endswith(":17.9-trixie")
    history = json.loads(kube.helm(major, "history", release, "-n", namespace, "-o", "json").stdout)
    assert [h["status"] for h in history][-1] == "deployed"
    kube.helm(major, "uninstall", release, "-n", namespace, check=False)


@pytest.mark.parametrize("major", [3, 4], ids=["helm3", "helm4"])
def test_an_image_of_another_odoo_series_is_refused_over_the_database(
    kube: Cluster, namespace: str, major: int
) -> None:
    """Issue #22 point 2, for plain Helm users: the chart writes its database's Odoo series at
    the first install (ConfigMap <fullname>-odoo-series, kept) and a `helm upgrade` to an image
    of another series fails, naming both series and the supported path; a new build of the
    same series goes through. (`lookup` is empty under `helm template`: a real upgrade.)"""
    release, chart = "series", str(CHART)

    def upgrade(*sets: str) -> subprocess.CompletedProcess[str]:
        args = [a for s in sets for a in ("--set", s)]
        return kube.helm(
            major, "upgrade", release, chart, "-n", namespace, "--reuse-values", *args,
            check=False,
        )  # fmt: skip

    kube.helm(major, "install", release, chart, "-n", namespace, "--set", "odoo.version=18.0")
    config = kube.core.read_namespaced_config_map(f"{release}-odoo-tenant-odoo-series", namespace)
    assert config.data == {"series": "18.0"}
    assert config.metadata.annotations["helm.sh/resource-policy"] == "keep"

    for sets, new in [
        (("odoo.version=19.0",), "19.0"),
        (("odoo.version=17.0",), "17.0"),
        (("odoo.image.tag=19.0-20251001",), "19.0"),
    ]:
        refused = upgrade(*sets)
        assert refused.returncode != 0, sets
        assert "this release's database is Odoo 18.0" in refused.stderr, refused.stderr
        assert f"is Odoo {new}" in refused.stderr and "upgrade service" in refused.stderr
        assert "OpenUpgrade" in refused.stderr

    same = upgrade("odoo.image.tag=18.0-20251001")
    assert same.returncode == 0, same.stderr
    deploy = kube.apps.read_namespaced_deployment(f"{release}-odoo-tenant", namespace)
    [image] = [c.image for c in deploy.spec.template.spec.containers if c.name == "odoo"]
    assert image.endswith(":18.0-20251001")
    # Kept on uninstall with the data: a reinstall over it is checked too.
    kube.helm(major, "uninstall", release, "-n", namespace)
    again = kube.helm(
        major, "install", release, chart, "-n", namespace, "--set", "odoo.version=19.0",
        check=False,
    )  # fmt: skip
    assert again.returncode != 0 and "is Odoo 19.0" in again.stderr, again.stderr
