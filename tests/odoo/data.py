"""The reference data of the backup, import and benchmark runs: tenants with records and files,
backed up by the rendered CronJob, and the helpers reading them back through Odoo."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

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
)

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
    done = pod.run_job("backup", timeout=300)
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


def make_with_data(harness: Harness) -> Backup:
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


def make_empty_filestore(harness: Harness) -> Backup:
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
