"""Import of zips made by the real Odoo 18 server's database manager (`/web/database/backup`):
checked and rewritten by `saasodoo.backups.importing` (what `saasodoo backup import` runs
before it stores the zip and restores it), then restored by the tenant's restore Job
(restore.py) and served by the tenant's Odoo. Refusals are tested with zips the real server
made, damaged or changed the way a customer's file can be."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from saasodoo.backups.importing import prepare
from saasodoo.errors import InvalidInput
from tests.odoo.data import MASTER, Backup, odoo_data, restore_in_manager
from tests.odoo.harness import Harness, OdooProcess, give, run_restore_job

pytestmark = pytest.mark.odoo


def odoo_backup(manager: OdooProcess, db: str, target: Path) -> Path:
    """A zip of Odoo's own database manager (format zip: dump.sql, filestore, manifest)."""
    with httpx.stream(
        "POST",
        manager.url + "/web/database/backup",
        data={"master_pwd": MASTER, "name": db, "backup_format": "zip"},
        timeout=600,
    ) as resp:
        assert resp.status_code == 200
        with target.open("wb") as out:
            for chunk in resp.iter_bytes():
                out.write(chunk)
    assert target.read_bytes()[:2] == b"PK", target.read_text(errors="replace")[-2000:]
    return target


@pytest.fixture(scope="module")
def odoo_zip(manager: OdooProcess, with_data: Backup, harness: Harness) -> Path:
    """Odoo's backup of a database holding the reference data (globex's, restored into the
    manager's Odoo under another name, as a customer's own server would hold it)."""
    restore_in_manager(manager, with_data.zip, "customer_db")
    return odoo_backup(manager, "customer_db", harness.scratch("odoo-zips") / "customer.zip")


@pytest.fixture
def work(harness: Harness) -> Iterator[Path]:
    path = harness.scratch("import-work")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_an_odoo_zip_is_imported_and_odoo_serves_its_data(
    odoo_zip: Path, with_data: Backup, empty_filestore: Backup, work: Path
) -> None:
    """Into tenant `initech` (its own data replaced): the rewritten zip goes where its backups
    are, the restore Job brings it in, its Odoo serves globex's records and files."""
    tenant, docs = empty_filestore.tenant, empty_filestore.docs
    prepared = prepare(odoo_zip, work, tenant=tenant.id, odoo_version="18.0")
    assert prepared.manifest["imported_from"] == "customer.zip"
    assert prepared.manifest["major_version"] == "18.0"
    # the backup claim, as the Job mounts it (what Backups.import_zip uploads to)
    store = next(p for n, p in tenant.claims.items() if n != tenant.filestore_claim)
    shutil.copyfile(prepared.path, store / prepared.name)
    (store / f"{prepared.name}.json").write_text(json.dumps(prepared.manifest))
    give(store)

    done = run_restore_job(tenant, docs, prepared.name)
    assert done.returncode == 0, done.stdout + done.stderr
    odoo = tenant.pod(docs).boot()
    try:
        # the admin is the customer's (the marker came along: odoo-init leaves it alone)
        assert odoo_data(odoo.url, tenant.db, with_data.tenant.email) == with_data.odoo
    finally:
        odoo.stop()


def rewrite(source: Path, target: Path, change: dict[str, bytes | None]) -> Path:
    """`source` with some members replaced (or dropped: None)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename in change:
                if change[info.filename] is not None:
                    zout.writestr(info.filename, change[info.filename])  # type: ignore[arg-type]
                continue
            with zin.open(info) as src, zout.open(info.filename, "w") as dst:
                shutil.copyfileobj(src, dst)
    return target


def refused(source: Path, work: Path, **kwargs: object) -> str:
    with pytest.raises(InvalidInput) as caught:
        prepare(source, work, tenant="initech", odoo_version="18.0", **kwargs)  # type: ignore[arg-type]
    assert list(work.iterdir()) == [], "a refused import left files behind"
    return str(caught.value)


def test_a_zip_that_is_no_odoo_backup_is_refused(work: Path, harness: Harness) -> None:
    other = harness.scratch("zips") / "photos.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("holiday.jpg", b"\xff\xd8\xff" + b"0" * 1000)
    assert "not an Odoo backup (no dump.sql and no manifest.json)" in refused(other, work)
    text = harness.scratch("zips") / "notes.zip"
    text.write_bytes(b"these are not the droids you are looking for")
    assert "corrupt or truncated" in refused(text, work)


def test_a_dump_without_odoo_s_manifest_is_refused(
    odoo_zip: Path, work: Path, harness: Harness
) -> None:
    plain = rewrite(odoo_zip, harness.scratch("zips") / "plain.zip", {"manifest.json": b"{}"})
    assert "manifest.json is not Odoo's" in refused(plain, work)


def test_a_dump_of_another_major_version_is_refused(
    odoo_zip: Path, work: Path, harness: Harness
) -> None:
    with zipfile.ZipFile(odoo_zip) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest.update(version="17.0", major_version="17.0", version_info=[17, 0, 0, "final", 0, ""])
    old = rewrite(
        odoo_zip,
        harness.scratch("zips") / "v17.zip",
        {"manifest.json": json.dumps(manifest).encode()},
    )
    message = refused(old, work)
    assert "a dump of Odoo 17.0; tenant 'initech' runs Odoo 18.0" in message


def test_a_corrupt_or_truncated_zip_is_refused(
    odoo_zip: Path, work: Path, harness: Harness
) -> None:
    data = bytearray(odoo_zip.read_bytes())
    with zipfile.ZipFile(odoo_zip) as zf:
        info = zf.getinfo("dump.sql")
    middle = info.header_offset + 200 + info.compress_size // 2
    data[middle : middle + 64] = bytes(64)  # a damaged block inside dump.sql's data
    corrupt = harness.scratch("zips") / "corrupt.zip"
    corrupt.write_bytes(bytes(data))
    assert "corrupt or truncated" in refused(corrupt, work)
    truncated = harness.scratch("zips") / "truncated.zip"
    truncated.write_bytes(odoo_zip.read_bytes()[: odoo_zip.stat().st_size * 2 // 3])
    assert "corrupt or truncated" in refused(truncated, work)


def test_a_dump_needing_a_superuser_is_refused(
    manager: OdooProcess, with_data: Backup, work: Path, harness: Harness
) -> None:
    """A customer's database with an extension only a superuser may create (the superuser
    of their server made it): the tenant's role could not load the dump."""
    restore_in_manager(manager, with_data.zip, "customer_fdw")
    harness.pg.psql("CREATE EXTENSION postgres_fdw", "customer_fdw")
    made = odoo_backup(manager, "customer_fdw", harness.scratch("odoo-zips") / "fdw.zip")
    message = refused(made, work)
    assert "creates the extension postgres_fdw, which only a superuser may create" in message


def test_a_zip_over_the_limit_is_refused(odoo_zip: Path, work: Path) -> None:
    message = refused(odoo_zip, work, max_bytes=1000)
    assert "more than the limit of 1000" in message
