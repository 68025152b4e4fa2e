"""odoo-init ``--update`` (the operator's update Job, docs/updates.md) on the real Odoo 18
server: the rendered web pod's ``odoo-init`` run with ``--update`` instead of ``--initialize``,
over a tenant that has the test module ``saasodoo_update_probe`` (tests/odoo/probe.py) installed
from a directory on ``addons_path``. A new version of the module written there is what a new
image of the same series brings: a good one is updated (its migration ran, the records kept),
a failing one fails the Job with its error in ``RESULT`` and no module left ``to upgrade``."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.odoo.harness import Harness, LocalPod, Tenant, create_database, give, run_as
from tests.odoo.probe import BAD, BAD_MESSAGE, GOOD, NAME, write_probe
from tests.odoo.test_neutralize import init_pod, result_of

pytestmark = pytest.mark.odoo

CONF = "/run/odoo/odoo.conf"
FILES = Path(__file__).resolve().parents[2] / "charts" / "odoo-tenant" / "files"


def load_program(name: str) -> ModuleType:
    """One of the chart's programs (charts/odoo-tenant/files) as a module."""
    spec = importlib.util.spec_from_file_location(f"chart_{name}", FILES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class Probed:
    """Tenant `vega`: its database initialized by its pod, the probe module installed."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.tenant = Tenant(harness, "vega", "owner@vega.example")
        self.addons = harness.scratch("probe-addons")
        tree = harness.tree
        paths = f"{tree}/odoo/addons,{tree}/addons,{self.addons}"
        self.docs = self.tenant.render(config={"workers": 0,
                                               "extraOptions": {"addons_path": paths}})  # fmt: skip

    def q(self, sql: str) -> str:
        return self.harness.pg.psql(sql, self.tenant.db).strip()

    def version(self, version: str) -> None:
        """The module's code as a new image would carry it."""
        shutil.rmtree(self.addons / NAME, ignore_errors=True)
        write_probe(self.addons, version)
        give(self.addons)

    def update_pod(self) -> LocalPod:
        return init_pod(self.tenant, self.docs, "--update")

    def odoo(self, pod: LocalPod, *args: str) -> subprocess.CompletedProcess[str]:
        """The pod's `odoo` with its odoo.conf (written by a run of its odoo-init)."""
        container = pod.container("odoo-init")
        pod.argv(container)  # writes the pod's `odoo` command
        command = [str(pod.bin / "odoo"), "-c", pod.local(container, CONF), *args]
        return subprocess.run([*run_as(), *command], env=pod.env(container), cwd=pod.root,
                              capture_output=True, text=True, check=False, timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def probed(harness: Harness) -> Probed:
    found = Probed(harness)
    create_database(harness.pg, found.tenant.db)
    pod = found.tenant.pod(found.docs)
    init = pod.run("odoo-init")
    assert init.returncode == 0, init.stdout + init.stderr
    found.version("1.0")
    db = found.tenant.db
    done = found.odoo(pod, "-d", db, "--no-http", "--workers=0", "--max-cron-threads=0",
                      "-i", NAME, "--stop-after-init")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    found.q("INSERT INTO saasodoo_update_probe (name, create_date, write_date)"
            " VALUES ('written before the update', now(), now())")  # fmt: skip
    return found


def versions(probed: Probed) -> dict[str, str]:
    rows = probed.q("SELECT name, latest_version, state FROM ir_module_module"
                    f" WHERE name IN ('base', '{NAME}') ORDER BY name")  # fmt: skip
    return {n: f"{v} {s}" for n, v, s in (r.split("|") for r in rows.splitlines())}


def test_a_good_update_runs_the_new_code_and_keeps_the_data(probed: Probed) -> None:
    assert versions(probed)[NAME] == "18.0.1.0 installed"
    probed.version(GOOD)
    run = probed.update_pod().run("odoo-init")
    assert run.returncode == 0, run.stdout + run.stderr
    report: dict[str, Any] = result_of(run)
    assert report["ok"] is True and report["database"] == "vega", report
    assert report["updated"] >= 2  # base, the probe and what the initialization installed
    assert report["changed"] == {NAME: ["18.0.1.0", "18.0.1.1"]}, report
    assert f"-u <{report['updated']} modules> --stop-after-init" in run.stdout
    # The migration of the new version ran over the record written before it.
    assert probed.q("SELECT name, note FROM saasodoo_update_probe") == (
        "written before the update|migrated from 18.0.1.0"
    )
    assert versions(probed)[NAME] == "18.0.1.1 installed"
    assert probed.q("SELECT count(*) FROM ir_module_module WHERE state LIKE 'to %'") == "0"


def test_a_failing_update_fails_the_job_and_leaves_no_module_pending(probed: Probed) -> None:
    probed.version(BAD)
    run = probed.update_pod().run("odoo-init")
    assert run.returncode == 1, run.stdout + run.stderr
    report = result_of(run)
    assert report["ok"] is False and report["database"] == "vega", report
    assert report["error"].startswith("odoo -u exited with 255: RuntimeError: "), report
    assert BAD_MESSAGE in report["error"]
    # Odoo reset the module states (nothing "to upgrade" for the next Odoo to go on with);
    # the probe is still the version the good update left.
    assert probed.q("SELECT count(*) FROM ir_module_module WHERE state LIKE 'to %'") == "0"
    assert versions(probed)[NAME] == "18.0.1.1 installed"
    assert "[odoo-init] ERROR: odoo -u exited with 255" in run.stdout


def test_an_update_refuses_a_database_with_modules_pending(probed: Probed) -> None:
    probed.q(f"UPDATE ir_module_module SET state = 'to upgrade' WHERE name = '{NAME}'")
    try:
        run = probed.update_pod().run("odoo-init")
    finally:
        probed.q(f"UPDATE ir_module_module SET state = 'installed' WHERE name = '{NAME}'")
    assert run.returncode == 1, run.stdout + run.stderr
    error = result_of(run)["error"]
    assert error.startswith(f"modules left in a pending state (an Odoo stopped during -u or -i?)"
                            f": {NAME} to upgrade"), error  # fmt: skip
    assert "running:" not in run.stdout  # no Odoo ran


def test_an_update_of_a_database_without_odoo_does_nothing(probed: Probed) -> None:
    tenant = Tenant(probed.harness, "vega-empty", "owner@vega.example")
    create_database(probed.harness.pg, tenant.db)
    run = init_pod(tenant, tenant.render(config={"workers": 0}), "--update").run("odoo-init")
    assert run.returncode == 0, run.stdout + run.stderr
    assert result_of(run) == {"ok": True, "database": "vega-empty", "updated": False}


def test_sigterm_stops_odoo_at_once_and_fails_the_update(probed: Probed) -> None:
    """The Job's pod deleted mid-update: odoo-init passes SIGTERM on to `odoo -u`, which stops
    at once (not at the kubelet's SIGKILL 30 s later), and the update fails saying so."""
    probed.version(GOOD)  # the version installed: -u reloads every module's data all the same
    pod = probed.update_pod()
    container = pod.container("odoo-init")
    lines: list[str] = []
    with subprocess.Popen([*run_as(), *pod.argv(container)], env=pod.env(container),
                          cwd=pod.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:  # fmt: skip
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
        reader.start()
        deadline = time.monotonic() + 300
        while not any("odoo.modules.loading" in line for line in list(lines)):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        time.sleep(1.0)  # well into the update
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        stopped_in = time.monotonic() - signalled
        reader.join(timeout=10)
    output = "".join(lines)
    assert code == 1, output
    assert stopped_in < 20, f"{stopped_in:.1f} s after SIGTERM\n{output}"
    assert "[odoo-init] SIGTERM received: stopping odoo -u" in output
    report = result_of(subprocess.CompletedProcess([], code, output, ""))
    assert report["ok"] is False and report["error"].startswith("odoo -u stopped by SIGTERM"), (
        report
    )
    # Odoo is gone (no session of it on the database) and no module is left `to ...`.
    sessions = probed.q("SELECT count(*) FROM pg_stat_activity WHERE datname ="
                        " current_database() AND pid <> pg_backend_pid()"
                        " AND application_name LIKE 'odoo%'")  # fmt: skip
    assert sessions == "0"
    assert probed.q("SELECT count(*) FROM ir_module_module WHERE state LIKE 'to %'") == "0"


def test_an_update_waits_for_a_backup_holding_the_data_lock(probed: Probed) -> None:
    """backup.py's own tenant lock held (a scheduled backup dumping the database): `-u` does
    not start beside it; past SAASODOO_LOCK_WAIT_SECONDS the update fails saying why."""
    backup = load_program("backup")
    probed.version(GOOD)
    pod = probed.update_pod()
    env = {**os.environ, **pod.env(pod.container("odoo-init"))}
    with backup.TenantLock(probed.tenant.db, "scheduled backup (test)", env=env):
        run = pod.run("odoo-init", {"SAASODOO_LOCK_WAIT_SECONDS": "2"})
    assert run.returncode == 1, run.stdout + run.stderr
    assert result_of(run)["error"] == (
        f"a backup or restore of {probed.tenant.db} held its data lock for 2 s: try the update "
        "again once it ended"
    )
    assert f"waiting for the data lock of {probed.tenant.db}" in run.stdout
    assert "running:" not in run.stdout  # no Odoo ran
    # Once the backup ended, the update runs (and holds the lock while -u runs).
    again = pod.run("odoo-init")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"took the data lock of {probed.tenant.db}" in again.stdout
