"""Issue #22 point 8: every path that changes the PostgreSQL image refuses another major or
Debian release, rollbacks included (``helm rollback`` replays a stored manifest, so the chart's
own check never runs): ``tenant rollback`` (CLI and API call ``check_rollback``), ensure's
remediation of a failed upgrade, and the fleet's undo of an upgrade that failed its signed-in
check all go through ``TenantRelease.rollback_keeping_volumes``. Against tests/fakes.py, whose
manifests carry the PostgreSQL image of ``postgresql.image.tag``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from saasodoo.context import Context
from saasodoo.core.spec import TenantSpec
from saasodoo.core.versions import (
    check_postgresql_image_change,
    postgresql_image,
    postgresql_series,
)
from saasodoo.errors import HelmFailure, InvalidInput, NotReady
from saasodoo.fleet import Fleet, FleetTarget
from saasodoo.reconciler import Outcome, Reconciler
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants
from tests.fakes import FakeHelm, FakeKube

pytestmark = pytest.mark.unit

SETTINGS = Settings(base_domain="odoo.test")
KEY = ("tenant-acme", "acme")


def _pg(tag: str, **more: Any) -> dict[str, Any]:
    return {"postgresql": {"image": {"tag": tag}, **more}}


def _world(tag: str) -> tuple[Tenants, FakeHelm]:
    helm = FakeHelm(SETTINGS)
    kube = FakeKube(helm=helm)
    tenants = Tenants(Context(SETTINGS, helm=helm, kube=kube))
    spec = TenantSpec.parse({"id": "acme", "admin_email": "a@acme.example", "overrides": _pg(tag)})
    asyncio.run(tenants.create(spec))
    return tenants, helm


def test_series_of_images_as_the_chart_reads_them() -> None:
    assert postgresql_series("docker.io/library/postgres:17.8-trixie") == "17-trixie"
    assert postgresql_series("postgres:17.8-trixie@sha256:" + "a" * 64) == "17-trixie"
    assert postgresql_series("registry:5000/pg/postgres:18.1-bookworm") == "18-bookworm"
    assert postgresql_series("docker.io/library/postgres:17") == "17-"
    pods = [{"name": "exporter", "image": "x:1"}, {"name": "postgresql", "image": "pg:17.8-trixie"}]
    sts = {"kind": "StatefulSet", "spec": {"template": {"spec": {"containers": pods}}}}
    assert postgresql_image([{"kind": "Service"}, sts]) == "pg:17.8-trixie"
    assert postgresql_image([{"kind": "Service"}]) is None


@pytest.mark.parametrize(
    ("running", "target"),
    [
        ("pg:17.9-trixie", "pg:17.8-trixie"),  # a build of the same major and release
        ("pg:17.8-trixie", "pg:17.8-trixie@sha256:" + "b" * 64),
        (None, "pg:16.4-bookworm"),  # no PostgreSQL of the chart's (external database)
        ("pg:17.8-trixie", None),
    ],
)
def test_the_same_major_and_release_pass(running: str | None, target: str | None) -> None:
    check_postgresql_image_change("acme", running, target, 1)


@pytest.mark.parametrize(
    ("running", "target", "says"),
    [
        ("pg:18.1-trixie", "pg:17.8-trixie", "(18-trixie)"),
        ("pg:17.8-trixie", "pg:17.8-bookworm", "(17-trixie)"),
        ("pg:17.8-trixie", "pg:17", "(17-trixie)"),  # a bare major: no release
    ],
)
def test_another_major_or_release_is_refused_naming_the_revision(
    running: str, target: str, says: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        check_postgresql_image_change("acme", running, target, 3)
    [problem] = err.value.fields
    assert problem.field == "revision" and err.value.exit_code == 2
    assert f"revision 3 runs PostgreSQL {target}" in problem.message
    assert f"runs {running} {says}" in problem.message
    assert "restore a backup" in problem.message


def test_tenant_rollback_across_a_debian_release_is_refused_before_any_change() -> None:
    tenants, helm = _world("17.8-bookworm")
    confirmed = _pg("17.8-trixie", upgradeFrom="docker.io/library/postgres:17.8-bookworm")
    asyncio.run(tenants.update("acme", overrides=confirmed))
    commands = list(helm.commands)
    with pytest.raises(InvalidInput, match=r"revision: revision 1 runs PostgreSQL"):
        asyncio.run(tenants.check_rollback("acme", 1))  # the API's check before queuing
    with pytest.raises(InvalidInput, match=r"revision: revision 1 runs PostgreSQL"):
        asyncio.run(tenants.rollback("acme", 1))
    assert helm.commands == commands and len(helm.releases[KEY]) == 2


def test_tenant_rollback_within_a_major_and_release_goes_on() -> None:
    tenants, helm = _world("17.8-trixie")
    asyncio.run(tenants.update("acme", overrides=_pg("17.9-trixie")))
    asyncio.run(tenants.rollback("acme", 1))
    assert helm.commands[-1] == "rollback tenant-acme/acme to 1"


def test_remediation_does_not_put_the_old_major_back_on_upgraded_data() -> None:
    """A failed upgrade to PostgreSQL 18 (confirmed with upgradeFrom: the server may have
    started on the data): ensure stops and says why instead of rolling back to 17."""
    tenants, helm = _world("17.8-trixie")
    helm.fail_next = HelmFailure("upgrade failed: timed out")
    upgrade = _pg("18.1-trixie", upgradeFrom="docker.io/library/postgres:17.8-trixie")
    with pytest.raises(HelmFailure):
        asyncio.run(tenants.update("acme", overrides=upgrade))
    assert [r.revision.status for r in helm.releases[KEY]] == ["deployed", "failed"]
    result = asyncio.run(Reconciler(tenants.ctx).ensure("acme"))
    assert result.outcome is Outcome.FAILED, result
    assert "rollback: rollback refused for tenant 'acme': PostgreSQL 18-trixie -> 17-trixie" in (
        result.detail
    )
    assert not any(c.startswith("rollback") for c in helm.commands)


def test_the_fleet_undo_of_an_upgrade_is_guarded_too() -> None:
    """An upgrade that changed the PostgreSQL release (confirmed) then failed its signed-in
    check: the fleet does not roll the database image back; the tenant is reported failed."""
    tenants, helm = _world("17.8-bookworm")
    helm.failing_tests["acme"] = NotReady("signed-in check failed")
    target = FleetTarget(
        overrides=_pg("17.8-trixie", upgradeFrom="docker.io/library/postgres:17.8-bookworm")
    )
    summary = asyncio.run(Fleet(tenants.ctx).upgrade(target, ["acme"], canaries=0))
    [result] = summary.results
    assert result.outcome is Outcome.FAILED and "PostgreSQL 17-trixie -> 17-bookworm" in (
        result.detail
    ), result
    assert not any(c.startswith("rollback") for c in helm.commands)
