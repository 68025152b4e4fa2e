"""The operator's choice of a template for a new tenant (saasodoo.operator.templates.
TemplateCreates.plan), with the S3 listing played by a stub: which tenants get one, which
key, and how a listing is kept. The templated create itself runs on the real node
(tests/realnode/test_templates_on_real_node.py)."""

from __future__ import annotations

from typing import Any

import pytest

from saasodoo.context import Context
from saasodoo.core.spec import TenantSpec
from saasodoo.errors import Conflict
from saasodoo.operator import templates as module
from saasodoo.operator.templates import TemplateCreates
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.fakes import FakeHelm, FakeKube
from tests.support import ROOT

pytestmark = pytest.mark.unit

S3 = {
    "backup": {
        "storage": "s3",
        "s3": {"endpoint": "http://s3.example:9000", "bucket": "backups", "existingSecret": "keys"},
    }
}
KEY = "docker.io-library-odoo-18.0"


class Controller:
    def __init__(self, settings: Settings) -> None:
        self.ctx = Context(settings, helm=FakeHelm(settings), kube=FakeKube())
        self.tenants = Tenants(self.ctx)
        self.events: list[tuple[str, str]] = []

    def event(self, obj: Any, kind: str, reason: str, note: str, action: str) -> None:
        self.events.append((reason, note))


def creates(listing: list[Any], **settings: Any) -> TemplateCreates:
    """TemplateCreates whose listings pop ``listing``'s next entry (a name, None, or an
    exception to raise), counted in ``.listed``."""
    base = Settings(base_domain="odoo.test", chart=str(ROOT / "charts" / "odoo-tenant"),
                    **settings)  # fmt: skip
    made = TemplateCreates(Controller(base))  # type: ignore[arg-type]
    made.listed = []  # type: ignore[attr-defined]

    def newest(key: str, where: dict[str, str]) -> str | None:
        made.listed.append((key, where))  # type: ignore[attr-defined]
        entry = listing.pop(0)
        if isinstance(entry, Exception):
            raise entry
        return entry  # type: ignore[no-any-return]

    made.list_newest = newest  # type: ignore[method-assign]
    return made


def spec(**fields: Any) -> TenantSpec:
    return TenantSpec.parse({"id": "acme", "admin_email": "a@acme.example", **fields})


def test_a_tenant_keeping_backups_in_s3_gets_its_image_s_template() -> None:
    made = creates(["20261206T120000Z-on-demand.zip"])
    plan = made.plan(spec(overrides=S3))
    assert plan is not None and plan.key == KEY
    assert plan.backup == "20261206T120000Z-on-demand.zip"
    assert plan.where["type"] == "s3" and plan.where["bucket"] == "backups"


@pytest.mark.parametrize(
    ("fields", "settings"),
    [
        ({}, {}),  # backups on the tenant's volume: no place shared by tenants
        ({"overrides": S3, "copy_of": "prod"}, {}),  # a copy is made from its source
        ({"overrides": S3}, {"templates": False}),  # the platform does not use them
    ],
)
def test_no_template_is_looked_for(fields: dict[str, Any], settings: dict[str, Any]) -> None:
    made = creates([], **settings)
    assert made.plan(spec(**fields)) is None
    assert made.listed == []  # type: ignore[attr-defined]


def test_a_missing_template_is_listed_again_soon_a_found_one_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    made = creates([None, "a.zip", "b.zip"])
    assert made.plan(spec(overrides=S3)).backup is None  # type: ignore[union-attr]
    clock[0] += module.MISSING_SECONDS - 1
    assert made.plan(spec(overrides=S3)).backup is None  # type: ignore[union-attr]
    clock[0] += 2  # its build may have stored it meanwhile
    assert made.plan(spec(overrides=S3)).backup == "a.zip"  # type: ignore[union-attr]
    clock[0] += module.FOUND_SECONDS - 1
    assert made.plan(spec(overrides=S3)).backup == "a.zip"  # type: ignore[union-attr]
    assert len(made.listed) == 2  # type: ignore[attr-defined]


def test_unreadable_templates_mean_i_base_without_asking_again_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    made = creates([Conflict("the platform's S3 key pair is not set"), "a.zip"])
    assert made.plan(spec(overrides=S3)) is None
    clock[0] += module.UNREADABLE_SECONDS - 1
    assert made.plan(spec(overrides=S3)) is None
    assert len(made.listed) == 1  # type: ignore[attr-defined]
    clock[0] += 2
    assert made.plan(spec(overrides=S3)).backup == "a.zip"  # type: ignore[union-attr]


def test_the_restore_job_reserves_little_and_outlasts_a_cached_nxdomain() -> None:
    job = {"spec": {"template": {"spec": {
        "initContainers": [{"name": "pg-client", "resources": {"requests": {"cpu": "100m"},
                                                               "limits": {"cpu": "1"}}}],
        "containers": [{"name": "backup", "env": [
            {"name": "SAASODOO_CONNECT_RETRY_SECONDS", "value": "30"}]}],
    }}}}  # fmt: skip
    module.reserve_little(job)
    module.wait_longer_for_the_server(job)
    pod = job["spec"]["template"]["spec"]
    init, main = pod["initContainers"][0], pod["containers"][0]
    assert init["resources"] == {"requests": {"cpu": "10m"}, "limits": {"cpu": "1"}}
    assert main["resources"]["requests"]["cpu"] == "10m"
    assert [e for e in main["env"] if e["name"] == "SAASODOO_CONNECT_RETRY_SECONDS"] == [
        {"name": "SAASODOO_CONNECT_RETRY_SECONDS", "value": "45"}
    ]


def building(job: str = "template-build-0123456789ab") -> dict[str, Any]:
    return {"metadata": {"name": "acme"},
            "status": {"template": {"key": KEY, "job": job, "state": "building"}}}  # fmt: skip


def test_a_failed_build_is_cleaned_up_by_a_job_of_its_own() -> None:
    """The failed pod never ran its drop: a cleanup Job drops the scratch database and the
    build's role, and the status and the Event say so."""
    from saasodoo.core import copies

    made = creates([])
    made.job_state = lambda namespace, job: copies.FAILED  # type: ignore[method-assign]
    created: list[dict[str, Any]] = []
    built = {
        "metadata": {"name": "b"},
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [{"name": "odoo-init"}],
                    "containers": [{"name": "drop-scratch"}],
                }
            }
        },
    }
    made.build_job = lambda *args: built  # type: ignore[method-assign]
    made.create_job = created.append  # type: ignore[method-assign]
    progress, after = made.follow(building(), ready=True)
    assert progress is not None and progress["state"] == "build-failed" and after is None
    (job,) = created
    assert job["metadata"]["name"] == "template-build-0123456789ab-cleanup"
    assert job["spec"]["template"]["spec"]["initContainers"] == []
    assert "job template-build-0123456789ab-cleanup drops its scratch" in progress["message"]
    assert made.controller.events[-1][0] == "TemplateBuildFailed"  # type: ignore[attr-defined]


def test_a_cleanup_that_cannot_be_made_leaves_the_failure_said() -> None:
    from saasodoo.core import copies
    from saasodoo.errors import NotFound

    made = creates([])
    made.job_state = lambda namespace, job: copies.FAILED  # type: ignore[method-assign]

    def gone(*args: Any) -> dict[str, Any]:
        raise NotFound("the tenant has no web Deployment")

    made.build_job = gone  # type: ignore[method-assign]
    progress, _ = made.follow(building(), ready=True)
    assert progress is not None and progress["state"] == "build-failed"
    assert "cleanup" not in progress["message"]
