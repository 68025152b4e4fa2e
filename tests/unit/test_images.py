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
        ["bash", "-c", f"source {ROOT}/scripts/versions.env; "
         f"eval \"$(sed -n '/^image_ref()/,/^}}/p' {build})\"; image_ref {name}"],
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
