"""`saasodoo backup ...`: the click group the main CLI mounts."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from saasodoo.cli.backup import backup

pytestmark = pytest.mark.unit


def test_create_refuses_the_scheduled_kind() -> None:
    result = CliRunner().invoke(backup, ["create", "acme", "--kind", "scheduled"])
    assert result.exit_code == 2 and "on-demand" in result.output  # scheduled is the CronJob's


def test_restore_asks_before_stopping_odoo() -> None:
    result = CliRunner().invoke(backup, ["restore", "acme"], input="n\n")
    assert result.exit_code == 1 and "Odoo is stopped meanwhile" in result.output
