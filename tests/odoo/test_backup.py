"""Backups of a real Odoo 18 database are real Odoo backups, and restores give Odoo its data back.

- The backup is the rendered backup CronJob's container (files/backup.py from the rendered
  ConfigMap, its arguments and environment) over the tenant's database and filestore claim.
- Odoo's own database manager (`/web/database/restore`) must accept the zip and give back every
  row and every file. A tenant's Odoo never exposes the manager (list_db = False, see
  test_config.py), so this check starts a separate, test-only Odoo with list_db = True and a
  role allowed to create databases (`odoo_manager`): its odoo.conf is written here, not by the
  chart.
- The restore is the Job saasodoo makes from the CronJob (`JobRunner.restore_job`, as
  `saasodoo backup restore` creates it) running files/restore.py; afterwards the tenant's own
  Odoo, started from the rendered pod, serves the same records and attachment contents over
  JSON-RPC.
"""

from __future__ import annotations

import json
import zipfile

import httpx
import pytest

from tests.backups.helpers import files_snapshot
from tests.odoo.data import (
    MASTER,
    Backup,
    manager_filestore,
    odoo_data,
    restore_in_manager,
    table_snapshot,
)
from tests.odoo.harness import ADMIN_PASSWORD, Harness, OdooProcess, rpc, run_restore_job

pytestmark = pytest.mark.odoo


@pytest.mark.parametrize("which", ["with_data", "empty_filestore"])
def test_odoo_s_database_manager_restores_the_backup_identically(
    which: str, request: pytest.FixtureRequest, manager: OdooProcess, harness: Harness
) -> None:
    backup: Backup = request.getfixturevalue(which)
    name = f"{backup.tenant.db}_restored"
    restore_in_manager(manager, backup.zip, name)
    assert table_snapshot(harness, name) == backup.tables
    store = manager_filestore(manager, name)
    restored = files_snapshot(store) if store.exists() else {}
    assert restored == backup.files
    if backup.odoo:  # and Odoo serves the same records and file contents from it
        assert odoo_data(manager.url, name, backup.tenant.email) == backup.odoo


def test_the_manifest_carries_odoo_s_own_fields(
    with_data: Backup, manager: OdooProcess, harness: Harness
) -> None:
    """Odoo's database manager backs the same database up: every field of its manifest is in
    ours with the same value (the database name aside)."""
    name = f"{with_data.tenant.db}_copy"
    restore_in_manager(manager, with_data.zip, name)
    resp = httpx.post(
        manager.url + "/web/database/backup",
        data={"master_pwd": MASTER, "name": name, "backup_format": "zip"},
        timeout=600,
    )
    assert resp.content.startswith(b"PK"), resp.text[-2000:]
    theirs_zip = harness.scratch("odoo-backup") / "odoo.zip"
    theirs_zip.write_bytes(resp.content)
    with zipfile.ZipFile(theirs_zip) as zf:
        theirs = json.loads(zf.read("manifest.json"))
    with zipfile.ZipFile(with_data.zip) as zf:
        ours = json.loads(zf.read("manifest.json"))
    assert (ours["db_name"], theirs["db_name"]) == (with_data.tenant.db, name)
    differ = {
        key: {"ours": ours.get(key), "odoo": theirs[key]}
        for key in sorted(set(theirs) - {"db_name"})
        if ours.get(key) != theirs[key]
    }
    assert not differ, f"manifest.json differs from Odoo's: {differ}"


def test_restore_py_gives_odoo_back_the_same_data(with_data: Backup, harness: Harness) -> None:
    tenant, docs = with_data.tenant, with_data.docs
    web = tenant.pod(docs)
    odoo = web.boot()
    try:  # the tenant goes on: records and files change after the backup
        with rpc(odoo.url) as client:
            client.login(tenant.db, tenant.email, ADMIN_PASSWORD)
            ids = [p["id"] for p in with_data.odoo["partners"]]
            attachments = [a["id"] for a in with_data.odoo["attachments"]]
            client.model("ir.attachment", "unlink", attachments)
            client.model("res.partner", "write", ids[1:], {"name": "renamed"})
            client.model("res.partner", "create", [{"name": "after the backup"}])
        odoo.stop()
        # (Odoo's garbage collection of unlinked files runs later, so unlink the files too)
        for path in tenant.filestore.rglob("*"):
            if path.is_file() and path.parent.name != "checklist":
                path.unlink()

        done = run_restore_job(tenant, docs, with_data.zip.name)
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads(done.stdout.split("RESULT ", 1)[1].splitlines()[0])
        assert result["ok"] is True, result

        odoo = web.boot()
        assert odoo_data(odoo.url, tenant.db, tenant.email) == with_data.odoo
    finally:
        odoo.stop()
