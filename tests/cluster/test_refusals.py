"""What the CLI refuses on a live tenant (issues #18, #22): another Odoo series by any path,
and a failed release's reason in the tenant list."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from saasodoo.cli import cli
from tests.support import Cluster

pytestmark = pytest.mark.cluster

Run = Callable[..., Result]


@pytest.fixture
def run(kube: Cluster, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("SAASODOO_KUBECONFIG", str(kube.kubeconfig))
    monkeypatch.setenv("SAASODOO_HELM_BINARY", str(kube.tools.helm(4)))
    monkeypatch.setenv("SAASODOO_BASE_DOMAIN", "odoo.test")
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def tenant(run: Run) -> Iterator[str]:
    tid = f"ref{uuid.uuid4().hex[:6]}"
    created = run("tenant", "create", tid, "--email", "me@ref.example", "--odoo-version", "18.0")
    assert created.exit_code == 0, created.output
    yield tid
    run("tenant", "delete", tid, "--yes", "--no-final-backup", "--no-wait")


def _revisions(run: Run, tid: str) -> list[dict[str, Any]]:
    result = run("tenant", "history", tid, "-o", "json")
    assert result.exit_code == 0, result.output
    revisions: list[dict[str, Any]] = json.loads(result.stdout)
    return revisions


def test_another_odoo_series_is_refused_by_update_and_fleet_upgrade(run: Run, tenant: str) -> None:
    """Issue #22 point 2: Odoo does not migrate a database across majors, so 18.0 -> 19.0
    is refused as 18.0 -> 17.0 is, naming both series and the supported path."""
    history = _revisions(run, tenant)
    assert len(history) == 1

    refused = [
        (("tenant", "update", tenant, "--odoo-version", "19.0"), "odoo_version", "19.0"),
        (("tenant", "update", tenant, "--odoo-version", "17.0"), "odoo_version", "17.0"),
        (("tenant", "update", tenant, "--set", "odoo.image.tag=19.0-20251001"), "overrides",
         "19.0"),
        (("fleet", "upgrade", tenant, "--odoo-version", "19.0", "--canaries", "0"),
         "odoo_version", "19.0"),
        (("fleet", "upgrade", tenant, "--odoo-image-tag", "17.0-20240101"), "image_tag", "17.0"),
    ]  # fmt: skip
    for args, field, to in refused:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert f"{field}: " in result.stderr, result.stderr
        assert f"cannot change from Odoo 18.0 to {to}" in result.stderr, result.stderr
        assert "upgrade service" in result.stderr and "OpenUpgrade" in result.stderr
        assert "Traceback" not in result.output
    # Nothing was changed: no revision, the spec still says 18.0.
    assert _revisions(run, tenant) == history
    status = json.loads(run("tenant", "status", tenant, "-o", "json").stdout)
    assert status["odoo_version"] == "18.0" and status["ready"] == "True"
    # A new build of the same series is a code change: without the operator nothing runs its
    # update's steps (pre-update backup, odoo -u, signed-in check), so it is refused too.
    same = run("tenant", "update", tenant, "--set", "odoo.image.tag=18.0-20251001")
    assert same.exit_code == 2, same.output
    assert "alters the Odoo code its database runs" in same.stderr, same.stderr
    assert "through the operator" in same.stderr and "Traceback" not in same.output
    assert _revisions(run, tenant) == history


def test_the_list_shows_why_a_release_failed(run: Run, tenant: str) -> None:
    """A label value Kubernetes refuses passes the chart's schema and fails in helm upgrade:
    the tenant is failed, and `tenant list` says why, as `tenant status` does."""
    bad = run("tenant", "update", tenant, "--set", "commonLabels.team=not a label value!")
    assert bad.exit_code == 6, bad.output
    status = json.loads(run("tenant", "status", tenant, "-o", "json").stdout)
    assert (status["ready"], status["reason"]) == ("False", "UpgradeFailed"), status
    listed = {t["id"]: t for t in json.loads(run("tenant", "list", "-o", "json").stdout)}
    message = listed[tenant]["message"]
    assert message.startswith("revision 2 failed: ") and len(message) > len("revision 2 failed: ")
    assert "team" in message or "label" in message.lower(), message
    assert (message, listed[tenant]["reason"]) == (status["message"], status["reason"])


def test_a_rollback_to_another_postgresql_release_is_refused(run: Run, tenant: str) -> None:
    """Issue #22 point 8: `helm rollback` replays the revision's stored StatefulSet, so the
    chart's own check of the PostgreSQL image does not run; saasodoo refuses a rollback to
    another major or Debian release than the running one, before any change."""
    running = "docker.io/library/postgres:17.8-trixie"
    moved = run(
        "tenant", "update", tenant, "--set", "postgresql.image.tag=17.8-bookworm",
        "--set", f"postgresql.upgradeFrom={running}",
    )  # fmt: skip
    assert moved.exit_code == 0, moved.output
    history = _revisions(run, tenant)
    assert len(history) == 2
    for args in (("tenant", "rollback", tenant, "1"), ("tenant", "rollback", tenant)):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert f"revision: revision 1 runs PostgreSQL {running} (17-trixie)" in result.stderr
        assert "postgres:17.8-bookworm (17-bookworm)" in result.stderr, result.stderr
    assert _revisions(run, tenant) == history
