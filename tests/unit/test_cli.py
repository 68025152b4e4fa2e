"""The command line answers --help and --version without a cluster."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from saasodoo import __version__
from saasodoo.adapters.auth import AuthFailed, AuthUnavailable, Forbidden, RateLimited
from saasodoo.adapters.storage import StorageError
from saasodoo.cli import cli
from saasodoo.errors import Conflict, HelmFailure, InvalidInput, NotFound, TransientClusterError
from saasodoo.settings import Settings

pytestmark = pytest.mark.unit


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_every_command_group() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = {
        line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()
    }
    assert listed == set(cli.commands), result.output  # type: ignore[attr-defined]


def test_settings_read_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAASODOO_KUBECONFIG", "/tmp/kc.yaml")
    monkeypatch.setenv("SAASODOO_HELM_BINARY", "/opt/helm4/helm")
    settings = Settings()
    assert str(settings.kubeconfig) == "/tmp/kc.yaml"
    assert settings.helm_binary == "/opt/helm4/helm"


def test_each_error_kind_has_its_own_exit_code() -> None:
    kinds = {
        InvalidInput: 2, NotFound: 3, Conflict: 4, TransientClusterError: 5, HelmFailure: 6,
        AuthFailed: 7, StorageError: 8, Forbidden: 9, RateLimited: 10, AuthUnavailable: 11,
    }  # fmt: skip
    assert {kind: kind.exit_code for kind in kinds} == kinds
    assert len(set(kinds.values())) == len(kinds)


@pytest.mark.parametrize(
    ("error", "line", "code"),
    [
        (TransientClusterError("gone"), "error: gone (temporary: try again later)", 5),
        (NotFound("tenant 'x' not found"), "error: tenant 'x' not found", 3),
    ],
)  # fmt: skip
def test_an_error_that_may_pass_later_says_so(error: Exception, line: str, code: int) -> None:
    @cli.command("boom")
    def boom() -> None:
        raise error

    try:
        result = CliRunner().invoke(cli, ["boom"])
    finally:
        cli.commands.pop("boom")
    assert result.exit_code == code
    assert result.stderr.strip() == line


def test_the_operators_log_lines_carry_their_utc_time() -> None:
    import logging

    from saasodoo.cli.operator import timestamped_logs

    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    level, formatters = root.level, [(h, h.formatter) for h in root.handlers]
    try:
        timestamped_logs("info")
        assert root.level == logging.INFO
        record = logging.LogRecord("saasodoo.operator.run", logging.INFO, __file__, 1,
                                   "released Lease %s", ("x",), None)  # fmt: skip
        record.created, record.msecs = 1_796_680_201.123, 123.0  # 2026-12-07T21:50:01.123Z
        line = handler.format(record)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for h, f in formatters:
            h.setFormatter(f)
    assert line == "2026-12-07T21:50:01.123Z INFO saasodoo.operator.run: released Lease x"
