"""Template keys (issue #25 point 3): one template per Odoo image, named by the image the chart
runs (its digest when pinned), kept under templates/<key> of the backup location."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from saasodoo.adapters.catalog import load_catalog
from saasodoo.core import templates as tpl
from saasodoo.core.spec import TenantSpec
from saasodoo.core.templates import odoo_image, template_folder, template_key
from saasodoo.core.values import Platform, compute_values, helm_merge
from tests.support import ROOT

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "0123456789abcdef" * 4


def values(**image: Any) -> dict[str, Any]:
    spec = TenantSpec(id="acme", admin_email="a@acme.example",
                      overrides={"odoo": {"image": image}} if image else {})  # fmt: skip
    computed = compute_values(spec, load_catalog(ROOT / "values"), Platform("example.com"))
    chart = yaml.safe_load((ROOT / "charts" / "odoo-tenant" / "values.yaml").read_text())
    return helm_merge(chart, computed.values)  # as Helm merges them


def test_a_tenant_s_default_image_and_its_key() -> None:
    v = values()
    assert odoo_image(v) == "docker.io/library/odoo:18.0"
    assert template_key(v) == "docker.io-library-odoo-18.0"
    assert template_folder(template_key(v)) == "templates/docker.io-library-odoo-18.0"


def test_a_pinned_build_and_a_digest_each_have_their_own_key() -> None:
    dated = values(tag="18.0-20250218")
    assert template_key(dated) == "docker.io-library-odoo-18.0-20250218"
    pinned = values(tag="18.0-20250218", digest=DIGEST)
    assert odoo_image(pinned) == f"docker.io/library/odoo:18.0-20250218@{DIGEST}"
    # the content names it, whatever tag points at it
    assert (
        template_key(pinned)
        == template_key(values(digest=DIGEST))
        == ("docker.io-library-odoo-" + DIGEST.replace(":", "-"))
    )
    assert template_key(values(registry="registry.example:5000", digest=DIGEST)).startswith(
        "registry.example-5000-library-odoo-sha256-"
    )


def test_a_bad_digest_is_refused_naming_the_value() -> None:
    image = {"registry": "docker.io", "repository": "library/odoo", "digest": "sha256:xyz"}
    with pytest.raises(ValueError, match=r"odoo.image.digest 'sha256:xyz' is not sha256:<64"):
        template_key({"odoo": {"version": "18.0", "image": image}})


@pytest.mark.parametrize(
    ("state", "job", "after"),
    [
        (tpl.RESTORING, "running", None),
        (tpl.RESTORING, "succeeded", tpl.RESTORED),
        (tpl.RESTORING, "failed", tpl.FELL_BACK),  # the web pod ran -i base after its wait
        (tpl.RESTORING, "absent", tpl.FELL_BACK),  # gone before it was seen to end
        (tpl.BUILDING, "running", None),
        (tpl.BUILDING, "succeeded", tpl.BUILT),
        (tpl.BUILDING, "failed", tpl.BUILD_FAILED),
        (tpl.BUILDING, "absent", tpl.BUILD_FAILED),
    ],
)
def test_a_template_job_s_outcome_moves_the_tenant_s_template_state(
    state: str, job: str, after: str | None
) -> None:
    assert tpl.job_outcome(state, job) == after


def test_template_jobs_have_fixed_names_within_kubernetes_limits() -> None:
    key = template_key(values(digest=DIGEST))
    assert tpl.build_job_name(key) == tpl.build_job_name(key)
    assert tpl.build_job_name(key) != tpl.build_job_name(key + "x")
    assert len(tpl.build_job_name(key)) <= 63
    assert tpl.restore_job_name("a" * 63) == "a" * 40 + "-template-restore"
