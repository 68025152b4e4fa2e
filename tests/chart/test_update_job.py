"""The update Job (docs/updates.md) as the chart's web Deployment makes it: its command is one
odoo-init.py parses (``--update`` after the web start arguments are dropped), and the chart
itself never renders an odoo.conf option that decides which code Odoo runs
(``core.updates.CODE_OPTIONS``): only the values set them, so ``code_change`` sees each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from saasodoo.core import updates as up
from tests.chart.helpers import CHART, odoo_conf, one, render

pytestmark = pytest.mark.chart

WEB = "acme-odoo-tenant"


def test_the_update_job_s_command_parses_and_runs_the_update_mode(
    helm3: Path, tmp_path: Path
) -> None:
    deployment = one(render(helm3), "Deployment", WEB)
    deployment["metadata"].setdefault("namespace", "tenant-acme")
    job = up.update_job(deployment, "acme-update-1a2b3c4d-2")
    command = list(job["spec"]["template"]["spec"]["containers"][0]["command"])
    assert command[-1] == "--update" and "--initialize" not in command
    # Run as the pod would, its files here: parsing passes (exit 2 would be an unknown flag),
    # then the mode asks for the database it would update.
    script = command.index(next(c for c in command if c.endswith("odoo-init.py")))
    args = command[script + 1 :]
    (tmp_path / "odoo.conf").write_text("[options]\n")
    here = {"--template": tmp_path / "odoo.conf", "--config": tmp_path / "run" / "odoo.conf"}
    args = [f"{a.split('=')[0]}={here[a.split('=')[0]]}" if a.split("=")[0] in here else a
            for a in args]  # fmt: skip
    assert [a for a in args if a.startswith("--")] == [
        f"--template={here['--template']}", f"--config={here['--config']}",
        next(a for a in args if a.startswith("--timeout=")), "--update",
    ]  # fmt: skip
    done = subprocess.run([sys.executable, str(CHART / "files" / "odoo-init.py"), *args],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
                          check=False)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "PGDATABASE is not set" in done.stdout


def test_the_chart_never_renders_an_option_that_decides_odoo_s_code(helm3: Path) -> None:
    conf = odoo_conf(render(helm3))
    assert not set(up.CODE_OPTIONS) & set(conf), conf
