"""The command line against the cluster: exit codes, one-line errors, JSON output."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from saasodoo.cli import cli
from saasodoo.odootenants import TenantView
from tests.support import Cluster

pytestmark = pytest.mark.cluster


@pytest.fixture
def run(kube: Cluster, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SAASODOO_KUBECONFIG", str(kube.kubeconfig))
    monkeypatch.setenv("SAASODOO_HELM_BINARY", str(kube.tools.helm(3)))
    monkeypatch.setenv("SAASODOO_BASE_DOMAIN", "odoo.test")
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_cli_create_status_list_history_delete(run, kube: Cluster) -> None:  # type: ignore[no-untyped-def]
    run("tenant", "delete", "clitest", "--yes", "--no-final-backup")
    result = run("tenant", "create", "clitest", "--email", "me@cli.example", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ready"] == "True"
    assert doc["url"] == "https://clitest.odoo.test"
    try:
        result = run("tenant", "create", "clitest", "--email", "me@cli.example")
        assert result.exit_code == 4  # conflict
        assert "already exists" in result.stderr
        assert "Traceback" not in result.output

        status = json.loads(run("tenant", "status", "clitest", "-o", "json").stdout)
        assert status["revision"] == 1
        # The conditions an OdooTenant carries, computed here without the operator (#23).
        assert (status["ready"], status["reason"], status["status"]) == (
            "True", "InstallSucceeded", "Current")  # fmt: skip
        assert list(status) == list(TenantView.of({"metadata": {"name": "x"}}).to_dict())
        assert {c["type"] for c in status["conditions"]} == {"Ready", "Released", "Drifted"}

        listed = json.loads(run("tenant", "list", "-o", "json").stdout)
        assert "clitest" in {t["id"] for t in listed}

        history = json.loads(run("tenant", "history", "clitest", "-o", "json").stdout)
        assert [h["revision"] for h in history] == [1]

        table = run("tenant", "list")
        assert table.exit_code == 0 and "clitest" in table.stdout
        assert table.stdout.split()[:8] == ["TENANT", "READY", "STATUS", "PLAN", "ODOO", "REV",
                                            "URL", "MESSAGE"]  # fmt: skip

        dist = json.loads(run("cluster", "distribution", "-o", "json").stdout)
        assert any("clitest" in ids for ids in dist.values())
    finally:
        # No container runs here, so no final backup can be proven: refused (#22 point 1).
        refused = run("tenant", "delete", "clitest", "--yes")
        assert refused.exit_code == 4 and "--no-final-backup" in refused.stderr
        result = run("tenant", "delete", "clitest", "--yes", "--no-final-backup")
    assert result.exit_code == 0, result.output
    assert "deleted (no final backup)" in result.stderr
    gone = run("tenant", "status", "clitest")
    assert gone.exit_code == 3
    assert gone.stderr.strip() == "error: tenant 'clitest' not found"


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("tenant", "create", "www", "--email", "a@b.example"), 2, "id: 'www' is reserved"),
        (("tenant", "create", "okid", "--email", "nope"), 2, "admin_email"),
        (("tenant", "create", "okid", "--email", "a@b.example", "--plan", "gold"), 2, "plan"),
        (("tenant", "status", "UPPER"), 2, "id:"),
        (("tenant", "rollback", "nosuchtenant", "1"), 3, "not found"),
    ],
)
def test_cli_errors_are_one_line_with_exit_code(run, args, code, text) -> None:  # type: ignore[no-untyped-def]
    result = run(*args)
    assert result.exit_code == code, result.output
    assert text in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
