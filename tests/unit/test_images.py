"""The real node's images carry the names the chart's defaults resolve to, so a tenant installed
with the chart's defaults runs on them unchanged (images/build.sh `image_ref`)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.support import ROOT

pytestmark = pytest.mark.unit


def image_ref(name: str) -> str:
    """What images/build.sh tags ``name`` with: its ``image_ref`` function, run alone."""
    build = ROOT / "images" / "build.sh"
    proc = subprocess.run(
        ["bash", "-c", f"source {ROOT}/scripts/versions.env; REPO_ROOT={ROOT}; "
         f"eval \"$(sed -n '/^image_ref()/,/^}}/p; /^saasodoo_version()/,/^}}/p' {build})\"; "
         f"image_ref {name}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout.strip()


def test_images_are_tagged_with_the_chart_defaults() -> None:
    values = yaml.safe_load((ROOT / "charts/odoo-tenant/values.yaml").read_text())
    pg, odoo = values["postgresql"]["image"], values["odoo"]
    assert image_ref("postgres") == f"{pg['registry']}/{pg['repository']}:{pg['tag']}"
    odoo_tag = odoo["image"]["tag"] or odoo["version"]
    assert image_ref("odoo") == (
        f"{odoo['image']['registry']}/{odoo['image']['repository']}:{odoo_tag}"
    )


def test_the_platform_image_is_the_platform_chart_s_default() -> None:
    chart = yaml.safe_load((ROOT / "charts/saasodoo/Chart.yaml").read_text())
    image = yaml.safe_load((ROOT / "charts/saasodoo/values.yaml").read_text())["image"]
    project = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{chart["appVersion"]}"' in project, "appVersion is the package's version"
    tag = image["tag"] or chart["appVersion"]
    assert image_ref("saasodoo") == f"{image['repository']}:{tag}"
