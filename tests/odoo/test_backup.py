"""Backups of a real Odoo 18 database are real Odoo backups, and restores give Odoo its data back.

- The backup is the rendered backup CronJob's container (files/backup.py from the rendered
  ConfigMap, its arguments and environment) over the tenant's database and filestore claim.
- Odoo's own database manager (`/web/database/restore`) must accept the zip and give back every
  row and every file. A tenant's Odoo never exposes the manager (list_db = False, see
  test_config.py), so this check starts a separate, test-only Odoo with list_db = True and a
  role allowed to create databases (`odoo_manager`): its odoo.conf is written here, not by the
  chart.
- The restore is the Job saasodoo makes from the CronJob (`Backups._restore_job`, as
  `saasodoo backup restore` creates it) running files/restore.py; afterwards the tenant's own
  Odoo, started from the rendered pod, serves the same records and attachment contents over
  JSON-RPC.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.backups.helpers import files_snapshot
from tests.chart.helpers import one
from tests.odoo.harness import (
    ADMIN_PASSWORD,
    Harness,
    LocalPod,
    OdooProcess,
    Tenant,
    b64,
    create_database,
    rpc,
    run_restore_job,
    start_manager,
)

pytestmark = pytest.mark.odoo

NAMES = [
    "Zoë Ørsted-Çelik",
    "東京スカイツリー株式会社",
    "Αθηνά & Σία — «ΕΠΕ»",
    "Łódź Sp. z o.o. 🚀",
    'O\'Brien \\ "quoted"\ttab',
]
MASTER = "manager-master-password"
BIG = 1_500_000  # bytes of the binary attachment (over 1 MB)


def table_snapshot(harness: Harness, db: str) -> dict[str, tuple[int, str]]:
    """Every table of `public`: (rows, SHA-256 of its rows sorted), read as the superuser."""
    pg = harness.pg
    tables = pg.psql(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", db
    ).split()
    out = {}
    for table in tables:
        rows = pg.psql(f'COPY public."{table}" TO STDOUT', db).splitlines()
        out[table] = (len(rows), hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest())
    return out


def odoo_data(url: str, db: str, email: str) -> dict[str, Any]:
    """What Odoo itself serves: the test partners and every stored attachment's content."""
    with rpc(url) as client:
        client.login(db, email, ADMIN_PASSWORD)
        partners = client.model(
            "res.partner",
            "search_read",
            [["comment", "like", "saasodoo-test"]],
            ["name", "comment"],
            order="id",
        )
        attachments = client.model(
            "ir.attachment",
            "search_read",
            [["res_model", "=", "res.partner"], ["type", "=", "binary"]],
            ["name", "datas", "file_size", "store_fname", "checksum", "res_id"],
            order="id",
        )
    return {"partners": partners, "attachments": attachments}


def add_data(url: str, db: str, email: str) -> None:
    with rpc(url) as client:
        client.login(db, email, ADMIN_PASSWORD)
        ids = client.model(
            "res.partner",
            "create",
            [{"name": n, "comment": f"<p>saasodoo-test {n}</p>"} for n in NAMES],
        )
        files = {
            "résumé – 履歴書.txt": "Grüße aus Köln, 你好, שלום\n".encode() * 10,
            "plan.bin": os.urandom(BIG),
            "empty.txt": b"",
        }
        client.model(
            "ir.attachment",
            "create",
            [
                {"name": name, "datas": b64(data), "res_model": "res.partner", "res_id": ids[0]}
                for name, data in files.items()
            ],
        )


@dataclass
class Backup:
    tenant: Tenant
    docs: list[dict[str, Any]]
    zip: Path
    tables: dict[str, tuple[int, str]]
    files: dict[str, str]
    odoo: dict[str, Any]


def back_up(tenant: Tenant, docs: list[dict[str, Any]]) -> Path:
    pod = tenant.local_pod(docs, one(docs, "CronJob"))
    done = pod.run("backup", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    backups = sorted(pod.mounts(pod.container("backup"))["/backups"].rglob("*.zip"))
    assert backups, done.stdout
    return backups[-1]


def new_tenant(harness: Harness, tenant_id: str) -> tuple[Tenant, list[dict[str, Any]], LocalPod]:
    """A tenant with its database created; its first Odoo pod boot initializes it."""
    tenant = Tenant(harness, tenant_id, f"admin@{tenant_id}.example")
    create_database(harness.pg, tenant.db)
    docs = tenant.render(config={"workers": 0})
    return tenant, docs, tenant.pod(docs)


@pytest.fixture(scope="module")
def with_data(harness: Harness) -> Backup:
    """Tenant `globex` with partners of non-ASCII names and attachments in the filestore,
    backed up by the rendered CronJob while its Odoo is stopped (a stable reference)."""
    tenant, docs, web = new_tenant(harness, "globex")
    odoo = web.boot()
    try:
        add_data(odoo.url, tenant.db, tenant.email)
        served = odoo_data(odoo.url, tenant.db, tenant.email)
    finally:
        odoo.stop()
    assert len(served["partners"]) == len(NAMES)
    assert max(a["file_size"] for a in served["attachments"]) == BIG
    tables = table_snapshot(harness, tenant.db)
    files = files_snapshot(tenant.filestore)
    return Backup(tenant, docs, back_up(tenant, docs), tables, files, served)


@pytest.fixture(scope="module")
def empty_filestore(harness: Harness) -> Backup:
    """Tenant `initech`, whose Odoo keeps attachments in the database (Odoo's own setting
    `ir_attachment.location = db`, applied to the existing ones by `force_storage`): its
    filestore is empty. The files `-i base` had written are unreferenced afterwards and
    removed here, as Odoo's garbage collection does for file storage."""
    tenant, docs, web = new_tenant(harness, "initech")
    odoo = web.boot()
    try:
        with rpc(odoo.url) as client:
            client.login(tenant.db, tenant.email, ADMIN_PASSWORD)
            client.model("ir.config_parameter", "set_param", "ir_attachment.location", "db")
            client.model("ir.attachment", "force_storage")
        served = odoo_data(odoo.url, tenant.db, tenant.email)
    finally:
        odoo.stop()
    stored = "SELECT count(*) FROM ir_attachment WHERE store_fname IS NOT NULL"
    assert harness.pg.psql(stored, tenant.db).strip() == "0"
    for path in list(tenant.filestore.iterdir()):
        shutil.rmtree(path)
    tables = table_snapshot(harness, tenant.db)
    return Backup(tenant, docs, back_up(tenant, docs), tables, {}, served)


@pytest.fixture(scope="module")
def manager(harness: Harness) -> Iterator[OdooProcess]:
    """A test-only Odoo with its database manager on (see start_manager)."""
    odoo = start_manager(harness, MASTER)
    yield odoo
    odoo.stop()


def restore_in_manager(manager: OdooProcess, backup: Path, name: str) -> None:
    with backup.open("rb") as handle:
        resp = httpx.post(
            manager.url + "/web/database/restore",
            data={"master_pwd": MASTER, "name": name, "copy": "false"},
            files={"backup_file": (backup.name, handle, "application/zip")},
            timeout=600,
        )
    assert resp.status_code == 303, f"{resp.status_code}: {resp.text[-2000:]}\n{manager.tail()}"
    assert resp.headers["location"].endswith("/web/database/manager")


def manager_filestore(manager: OdooProcess, name: str) -> Path:
    return manager.log.parent / "data" / "filestore" / name


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
