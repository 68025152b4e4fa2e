"""What every object of every scenario must be: labelled, namespaced, named within limits,
admitted by Pod Security `restricted`, free of Bitnami images and of passwords in plain sight."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helpers import (
    CHART,
    NAMESPACE,
    RELEASE,
    SCENARIO_IDS,
    SCENARIOS,
    containers,
    labels,
    pod_template,
    render,
    scenario_args,
    workloads,
)

pytestmark = pytest.mark.chart

STANDARD_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "saasodoo.dev/tenant",
)


@pytest.fixture(scope="module", params=SCENARIOS, ids=SCENARIO_IDS)
def docs(request: pytest.FixtureRequest, helm3: Path) -> list[dict[str, Any]]:
    return render(helm3, *scenario_args(request.param))


def test_every_object_has_the_standard_labels_and_the_release_namespace(
    docs: list[dict[str, Any]],
) -> None:
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert doc["metadata"]["namespace"] == NAMESPACE, where
        missing = [k for k in STANDARD_LABELS if k not in labels(doc)]
        assert not missing, f"{where} lacks {missing}"
        assert labels(doc)["app.kubernetes.io/managed-by"] == "Helm"


def test_every_pod_carries_the_labels_and_a_component(docs: list[dict[str, Any]]) -> None:
    """...but the chart's version: a chart version that changes nothing in a pod must not
    restart it (a pod template's new label is a rollout: PostgreSQL's one pod stops for it)."""
    pod_standard = [k for k in STANDARD_LABELS if k != "helm.sh/chart"]
    for workload, _ in workloads(docs):
        pod_labels = pod_template(workload)["metadata"]["labels"]
        missing = [k for k in (*pod_standard, "app.kubernetes.io/component") if k not in pod_labels]
        assert not missing, f"{workload['metadata']['name']} pods lack {missing}"
        assert "helm.sh/chart" not in pod_labels, workload["metadata"]["name"]


def test_a_new_chart_version_alone_restarts_no_pod(helm3: Path, tmp_path: Path) -> None:
    """The same values rendered by this chart and by a copy with only another version in
    Chart.yaml: every pod template is the same (no rollout, PostgreSQL not restarted), the
    objects' own labels name the new version."""
    copy = tmp_path / "odoo-tenant"
    shutil.copytree(CHART, copy)
    meta = copy / "Chart.yaml"
    meta.write_text(re.sub(r"(?m)^version: .*$", "version: 99.0.0", meta.read_text()))

    def pods(chart: Path) -> dict[str, Any]:
        out = subprocess.run(
            [str(helm3), "template", RELEASE, str(chart), "--namespace", NAMESPACE],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        docs = [d for d in yaml.safe_load_all(out) if d]
        return {d["metadata"]["name"]: pod_template(d) for d, _ in workloads(docs)}

    before, after = pods(CHART), pods(copy)
    assert before and before == after
    newer = subprocess.run(
        [str(helm3), "template", RELEASE, str(copy), "--namespace", NAMESPACE],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "helm.sh/chart: odoo-tenant-99.0.0" in newer


def test_selectors_are_only_the_immutable_labels(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            selector = doc["spec"]["selector"]["matchLabels"]
            assert set(selector) == {
                "app.kubernetes.io/name",
                "app.kubernetes.io/instance",
                "app.kubernetes.io/component",
            }


@pytest.mark.parametrize("major", [3, 4])
def test_names_of_a_long_release_stay_within_63_characters_and_distinct(
    major: int, tools: Any
) -> None:
    release = "a-very-long-tenant-release-name-that-goes-on-and-on-x"
    docs = render(tools.helm(major), "--set", "odoo.cron.dedicated=true", release=release)
    seen = set()
    for doc in docs:
        name = doc["metadata"]["name"]
        assert len(name) <= 63, name
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name), name
        if doc["kind"] in ("StatefulSet", "CronJob"):
            assert len(name) <= 52, f"{doc['kind']} {name}: its generated names exceed 63"
        assert (doc["kind"], name) not in seen
        seen.add((doc["kind"], name))
        for value in labels(doc).values():
            assert len(value) <= 63, value


def test_every_pod_is_admitted_by_pod_security_restricted(docs: list[dict[str, Any]]) -> None:
    for workload, spec in workloads(docs):
        where = workload["metadata"]["name"]
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, where
        assert pod_sc["runAsUser"] > 0, where
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), where
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume, where
        for c in containers(spec):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (where, c["name"])
            assert sc["capabilities"] == {"drop": ["ALL"]}, (where, c["name"])
            assert sc["runAsNonRoot"] is True, (where, c["name"])
            assert sc["readOnlyRootFilesystem"] is True, (where, c["name"])
            assert not sc.get("privileged"), (where, c["name"])


def test_every_container_sets_requests_and_limits(docs: list[dict[str, Any]]) -> None:
    for workload, spec in workloads(docs):
        for c in containers(spec):
            for kind in ("requests", "limits"):
                assert set(c["resources"][kind]) == {"cpu", "memory"}, (
                    workload["metadata"]["name"],
                    c["name"],
                )


def test_only_official_images(docs: list[dict[str, Any]]) -> None:
    for _, spec in workloads(docs):
        for c in containers(spec):
            image = c["image"]
            assert "bitnami" not in image.lower(), image
            official = r"docker\.io/library/(odoo|postgres):[0-9.]+(-[a-z]+)?"
            assert re.fullmatch(official, image), image


def test_no_bitnami_image_or_chart_referenced_anywhere_in_the_chart() -> None:
    for path in CHART.rglob("*"):
        if path.is_file() and path.suffix in (
            ".yaml",
            ".tpl",
            ".txt",
            ".json",
            ".py",
            ".sh",
            ".md",
        ):
            assert not re.search(r"bitnami(legacy)?/|charts\.bitnami", path.read_text(), re.I), path


def test_no_password_in_configmaps_or_values(docs: list[dict[str, Any]]) -> None:
    secrets = [
        base64.b64decode(value).decode()
        for doc in docs
        if doc["kind"] == "Secret"
        for value in doc.get("data", {}).values()
    ]
    configmaps = "\n".join(
        str(v) for doc in docs if doc["kind"] == "ConfigMap" for v in doc["data"].values()
    )
    for secret in secrets:
        assert secret not in configmaps
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            for key, text in doc["data"].items():
                if key.endswith(".conf"):
                    assert not re.search(
                        r"^\s*(db_password|admin_passwd|smtp_password)\s*=", text, re.M
                    ), key


def test_values_hold_no_password_key() -> None:
    text = (CHART / "values.yaml").read_text()
    keys = re.findall(r"^\s*([A-Za-z]+):", text, re.M)
    assert not [k for k in keys if k.lower().endswith("password") and k != "masterPassword"]


DEFINE = re.compile(r'\{\{-?\s*define\s+"([^"]+)"')
CALL = re.compile(r'\b(?:include|template)\s+"(odoo-tenant\.[^"]+)"')


def test_every_helper_is_named_after_its_file() -> None:
    """bitnami's habit: ``_<concern>.tpl`` defines only ``odoo-tenant.<concern>.<what>``, so that a
    helper's name says where it lives (the chart prefix keeps names apart from a parent's)."""
    helpers = sorted((CHART / "templates").glob("_*.tpl"))
    assert {"_names.tpl", "_labels.tpl", "_images.tpl"} <= {p.name for p in helpers}
    assert not (CHART / "templates" / "_helpers.tpl").exists()
    misnamed = []
    defined = 0
    for path in helpers:
        concern = path.stem.removeprefix("_")
        names = DEFINE.findall(path.read_text())
        assert names, f"{path.name} defines no helper"
        defined += len(names)
        misnamed += [
            f"{path.name}: {name}"
            for name in names
            if not re.fullmatch(rf"odoo-tenant\.{re.escape(concern)}\.[A-Za-z][A-Za-z0-9]*", name)
        ]
    assert not misnamed, f"helpers not named odoo-tenant.<file>.<what>: {misnamed}"
    assert defined >= 50


def test_manifests_define_no_helper() -> None:
    helpers = set((CHART / "templates").glob("_*.tpl"))
    for path in (CHART / "templates").rglob("*"):
        if path.is_file() and path not in helpers:
            assert not DEFINE.search(path.read_text()), f"{path.name} defines a helper"


def test_every_included_helper_is_defined_once() -> None:
    """A renamed helper leaves no caller behind, even one that the scenarios do not render."""
    files = [p for p in (CHART / "templates").rglob("*") if p.is_file()]
    defined: dict[str, str] = {}
    for path in files:
        for name in DEFINE.findall(path.read_text()):
            assert name not in defined, f"{name} defined in {defined[name]} and {path.name}"
            defined[name] = path.name
    called = {(name, path.name) for path in files for name in CALL.findall(path.read_text())}
    assert len(called) > 100
    assert not sorted(c for c in called if c[0] not in defined), "calls of undefined helpers"


def test_no_service_account_token_and_an_own_service_account(docs: list[dict[str, Any]]) -> None:
    accounts = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert len(accounts) == 1
    assert accounts[0]["automountServiceAccountToken"] is False
    for _, spec in workloads(docs):
        assert spec["serviceAccountName"] == accounts[0]["metadata"]["name"]


def test_chart_annotation_lists_the_default_images(default_docs: list[dict[str, Any]]) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    listed = {i["image"] for i in yaml.safe_load(chart["annotations"]["artifacthub.io/images"])}
    used = {c["image"] for _, spec in workloads(default_docs) for c in containers(spec)}
    assert listed == used
    assert chart["appVersion"] == "18.0"
