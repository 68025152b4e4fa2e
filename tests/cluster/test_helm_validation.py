"""The helm adapter skips helm's client-side OpenAPI check of the rendered manifest
(``saasodoo.adapters.helm.NO_CLIENT_VALIDATION``: 1.2 of an upgrade's 2.8 CPU-seconds) and
loses no safety for it: helm 4 sends each object with ``fieldValidation=Strict``, so the API
server itself refuses a manifest with an unknown field, and nothing of it is stored."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from saasodoo.adapters.helm import NO_CLIENT_VALIDATION, Helm
from saasodoo.errors import SaasodooError
from saasodoo.settings import Settings
from tests.support import Cluster

pytestmark = pytest.mark.cluster

NAMESPACE = "saasodoo-helmvalid"
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{{{ .Release.Name }}}}
{extra}data:
  note: {{{{ .Values.note | quote }}}}
"""


def chart(root: Path, extra: str) -> Path:
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (root / "templates" / "configmap.yaml").write_text(CONFIGMAP.format(extra=extra))
    return root


def test_an_unknown_field_is_refused_by_the_api_server_without_helm_s_client_check(
    kube: Cluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kube.kubectl("create", "namespace", NAMESPACE)
    try:
        for name, extra, ok in (("good", "", True), ("bad", "spec:\n  unknown: 1\n", False)):
            settings = Settings(kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)),
                                chart=str(chart(tmp_path / name, extra)))  # fmt: skip
            helm = Helm(settings)
            with caplog.at_level(logging.INFO, logger="pyhelm3.command"):
                upgrade = helm.install_or_upgrade(
                    f"probe-{name}", NAMESPACE, {"note": name}, description="probe", wait=False
                )
                if ok:
                    assert asyncio.run(upgrade).status == "deployed"
                else:
                    refused = "field not declared in schema|unknown field"
                    with pytest.raises(SaasodooError, match=refused):
                        asyncio.run(upgrade)
            ran = [r.getMessage() for r in caplog.records if f" probe-{name} " in
                   r.getMessage() and r.getMessage().startswith("running command")]  # fmt: skip
            assert ran and f"upgrade {NO_CLIENT_VALIDATION} probe-{name} " in ran[-1], ran
        # the refused manifest applied nothing
        names = kube.kubectl("-n", NAMESPACE, "get", "configmap", "-o", "name").split()
        assert "configmap/probe-good" in names and "configmap/probe-bad" not in names, names
    finally:
        kube.kubectl("delete", "namespace", NAMESPACE, "--wait=false")


def test_a_release_with_a_revision_is_upgraded_without_install(
    kube: Cluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``install=False`` (the caller saw a stored revision): a plain ``helm upgrade``, which
    skips helm's extra read of the whole history; of a release with none, helm refuses."""
    namespace = f"{NAMESPACE}-upgrade"
    kube.kubectl("create", "namespace", namespace)
    try:
        settings = Settings(kubeconfig=kube.kubeconfig, helm_binary=str(kube.tools.helm(4)),
                            chart=str(chart(tmp_path / "probe", "")))  # fmt: skip
        helm = Helm(settings)
        with caplog.at_level(logging.INFO, logger="pyhelm3.command"):
            first = asyncio.run(helm.install_or_upgrade(
                "probe", namespace, {"note": "1"}, description="probe", wait=False
            ))  # fmt: skip
            again = asyncio.run(helm.install_or_upgrade(
                "probe", namespace, {"note": "2"}, description="probe", wait=False,
                install=False,
            ))  # fmt: skip
        messages = [r.getMessage() for r in caplog.records]
        ran = [m for m in messages if m.startswith("running command: ") and " upgrade " in m]
        assert (first.revision, again.revision) == (1, 2), (first, again)
        assert " --install " in ran[0] and " --install " not in ran[1], ran
        with pytest.raises(SaasodooError, match="has no deployed releases"):
            asyncio.run(helm.install_or_upgrade(
                "probe-none", namespace, {}, description="probe", wait=False, install=False
            ))  # fmt: skip
        names = kube.kubectl("-n", namespace, "get", "configmap", "-o", "name").split()
        assert "configmap/probe" in names and "configmap/probe-none" not in names, names
    finally:
        kube.kubectl("delete", "namespace", namespace, "--wait=false")
