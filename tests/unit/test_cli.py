"""The command line answers --help and --version without a cluster."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from saasodoo import __version__
from saasodoo.cli import cli
from saasodoo.settings import Settings

pytestmark = pytest.mark.unit


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_names_the_product() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Odoo" in result.output


def test_settings_read_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAASODOO_KUBECONFIG", "/tmp/kc.yaml")
    monkeypatch.setenv("SAASODOO_HELM_BINARY", "/opt/helm4/helm")
    settings = Settings()
    assert str(settings.kubeconfig) == "/tmp/kc.yaml"
    assert settings.helm_binary == "/opt/helm4/helm"
