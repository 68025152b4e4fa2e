"""What restore.py gives back of a backup that is not the tenant's own, and refuses before
touching anything (issue #22, points 3, 4 and 5), run for real against the local PostgreSQL:

- a copy (another tenant's backup, an imported zip) gets its own ``database.uuid``,
  ``database.secret`` and ``database.create_date``, as Odoo's own restore gives a copy; the
  tenant's own backup, or an import flagged "moved", keeps them;
- a backup of another Odoo series than the tenant's is refused, naming both;
- member names the unpacking would not give back as they are are refused (the rule the
  import check applies too: dumpformat.member_problems)."""

from __future__ import annotations

import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from saasodoo.backups import importing
from tests.backups.helpers import (
    PgServer,
    S3Server,
    files_snapshot,
    make_tenant_data,
    run_script,
)
from tests.backups.test_programs import result_of

pytestmark = pytest.mark.postgres

IDENTITY = ("database.uuid", "database.secret", "database.create_date")


def identity(pg: PgServer, database: str) -> dict[str, str]:
    rows = pg.psql(
        "SELECT key || '=' || value FROM ir_config_parameter ORDER BY key", database, "odoo"
    )
    return dict(line.split("=", 1) for line in rows.splitlines() if line)


@pytest.fixture
def other(pg_server: PgServer) -> Iterator[str]:
    """A second tenant's (empty) database."""
    name = f"t{uuid.uuid4().hex[:10]}"
    pg_server.admin(f'CREATE DATABASE "{name}" OWNER odoo')
    yield name
    for db in pg_server.databases(name):
        pg_server.admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def backed_up(pg: PgServer, database: str, tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    """Odoo-like data of tenant `acme` (17.0) with its identity, backed up by backup.py:
    (filestore root, the tenant role's environment, the zip)."""
    root = tmp_path / "filestore"
    make_tenant_data(pg, database, root)
    pg.psql(
        "CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key varchar UNIQUE NOT NULL, "
        "value text NOT NULL, write_date timestamp); INSERT INTO ir_config_parameter (key, "
        f"value) VALUES ('database.uuid', '{uuid.uuid1()}'), ('database.secret', "
        f"'{uuid.uuid4()}'), ('database.create_date', '2025-01-01 00:00:00'), "
        "('web.base.url', 'https://acme.example')",
        database,
        "odoo",
    )
    env = {**pg.env(database), "SAASODOO_ODOO_VERSION": "17.0", "PGADMINUSER": "postgres"}
    dest = tmp_path / "backups"
    done = run_script("backup.py", [f"--dest={dest}", f"--filestore={root}", "--tenant=acme"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    [zip_path] = dest.glob("*.zip")
    return root, env, zip_path


def restore(
    zip_path: Path, root: Path, env: dict[str, str], tenant: str, tmp_path: Path
) -> dict[str, object]:
    done = run_script(
        "restore.py",
        [f"--zip={zip_path}", f"--filestore={root}", f"--work={tmp_path}", f"--tenant={tenant}"],
        env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return result_of(done.stdout)


def test_a_copy_gets_its_own_identity_the_original_keeps_its_own(
    pg_server: PgServer, database: str, other: str, tmp_path: Path
) -> None:
    root, env, zip_path = backed_up(pg_server, database, tmp_path)
    original = identity(pg_server, database)

    # the tenant's own backup: the same database, the same identity
    assert restore(zip_path, root, env, "acme", tmp_path)["identity"] == "kept"
    assert identity(pg_server, database) == original

    # acme's backup restored into another tenant: a copy
    other_env = {**pg_server.env(other), "SAASODOO_ODOO_VERSION": "17.0", "PGADMINUSER": "postgres"}
    assert restore(zip_path, root, other_env, "globex", tmp_path)["identity"] == "new"
    copied = identity(pg_server, other)
    for key in IDENTITY:
        assert copied[key] != original[key], key
    assert copied["web.base.url"] == original["web.base.url"]
    uuid.UUID(copied["database.uuid"]), uuid.UUID(copied["database.secret"])

    # an imported zip (the import worker's rewrite): a copy, unless flagged "moved"
    for moved, expected in ((False, "new"), (True, "kept")):
        work = tmp_path / f"import-{moved}"
        work.mkdir()
        prepared = importing.prepare(
            zip_path, work, tenant="acme", odoo_version="17.0", moved=moved
        )
        assert json.loads(prepared.manifest_path.read_text())["identity"] == (
            "moved" if moved else "copy"
        )
        assert restore(prepared.path, root, env, "acme", tmp_path)["identity"] == expected
        now = identity(pg_server, database)
        assert (now["database.uuid"] == original["database.uuid"]) is moved
        assert (now["database.secret"] == original["database.secret"]) is moved


def test_a_staging_copy_reads_the_source_s_s3_folder_and_never_writes_it(
    pg_server: PgServer, s3_server: S3Server, bucket: str, database: str, other: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """restore.py --source-tenant (issue 25 point 1): the copy's restore Job runs in the
    copy's namespace with the copy's database and filestore, and reads the source's prefix of
    the bucket; the restored database is a copy even if the manifest says "moved"."""
    root, env, zip_path = backed_up(pg_server, database, tmp_path)
    s3 = s3_server.env(bucket)
    done = run_script("backup.py", ["--s3", "--tenant=acme", f"--filestore={root}",
                                    f"--work={tmp_path}"], {**env, **s3})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    client = s3_server.client()
    # Beside it in acme's folder, an import acme received "moved" (it kept its identity):
    # a copy of it must not share that identity either.
    work = tmp_path / "import"
    work.mkdir()
    moved = importing.prepare(zip_path, work, tenant="acme", odoo_version="17.0", moved=True)
    client.upload_file(str(moved.path), bucket, f"backups/acme/{moved.name}")
    client.upload_file(str(moved.manifest_path), bucket, f"backups/acme/{moved.name}.json")

    def objects() -> dict[str, str]:
        listed = client.list_objects_v2(Bucket=bucket).get("Contents") or []
        return {o["Key"]: o["ETag"] for o in listed}

    before = objects()
    assert before and all(k.startswith("backups/acme/") for k in before)
    copy_root = tmp_path / "copy-filestore"
    copy_env = {**pg_server.env(other), **s3, "SAASODOO_ODOO_VERSION": "17.0",
                "PGADMINUSER": "postgres"}  # fmt: skip
    restored = run_script("restore.py", ["--s3", "--tenant=globex", "--source-tenant=acme",
                                         f"--backup={moved.name}", f"--filestore={copy_root}",
                                         f"--work={tmp_path}"], copy_env)  # fmt: skip
    assert restored.returncode == 0, restored.stdout + restored.stderr
    report = result_of(restored.stdout)
    assert (report["ok"], report["identity"], report["backup"]) == (True, "new", moved.name)
    assert objects() == before  # read only: nothing written, nothing under backups/globex/
    original, copied = identity(pg_server, database), identity(pg_server, other)
    for key in IDENTITY:
        assert copied[key] != original[key], key
    assert files_snapshot(copy_root / other) == files_snapshot(root / database)


@pytest.mark.parametrize("where", ["the chart's series", "the live database's"])
def test_a_backup_of_another_series_is_refused_before_anything_is_touched(
    pg_server: PgServer, database: str, tmp_path: Path, where: str
) -> None:
    """An 18.0 tenant restoring a 17.0 backup (a pre-update backup after an upgrade)."""
    root, env, zip_path = backed_up(pg_server, database, tmp_path)
    if where == "the chart's series":
        env = {**env, "SAASODOO_ODOO_VERSION": "18.0"}
    else:  # no series from the chart: the live database's base module says 18.0
        env = {k: v for k, v in env.items() if k != "SAASODOO_ODOO_VERSION"}
        pg_server.psql(
            "UPDATE ir_module_module SET latest_version = '18.0.1.3' WHERE name = 'base'",
            database,
            "odoo",
        )
    live, files = pg_server.snapshot(database), files_snapshot(root / database)
    done = run_script(
        "restore.py", [f"--zip={zip_path}", f"--filestore={root}", f"--work={tmp_path}"], env
    )
    assert done.returncode == 3, done.stdout + done.stderr
    error = str(result_of(done.stdout)["error"])
    assert f"{zip_path.name} is a backup of Odoo 17.0; the tenant runs Odoo 18.0" in error
    assert pg_server.snapshot(database) == live and files_snapshot(root / database) == files
    assert pg_server.databases(database) == [database]


def test_member_names_the_unpacking_would_change_are_refused_before_anything_is_touched(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """A name with an empty or '.' segment unpacks elsewhere than it says: the restored copy
    would never match its manifest, found only after Odoo was stopped and the copy loaded."""
    root, env, zip_path = backed_up(pg_server, database, tmp_path)
    bad = tmp_path / "names.zip"
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(bad, "w") as out:
        manifest = json.loads(src.read("manifest.json"))
        files = manifest["checksums"]["filestore"]
        files["ab//abcdef"] = files.pop("ab/abcdef")
        for info in src.infolist():
            if info.filename == "manifest.json":
                out.writestr(info, json.dumps(manifest))
            elif info.filename == "filestore/ab/abcdef":
                out.writestr("filestore/ab//abcdef", src.read(info))
            else:
                out.writestr(info, src.read(info))
    live = pg_server.snapshot(database)
    done = run_script(
        "restore.py", [f"--zip={bad}", f"--filestore={root}", f"--work={tmp_path}"], env
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert (
        "names.zip: member names that cannot be restored: 'filestore/ab//abcdef': not a plain "
        "relative path" in str(result_of(done.stdout)["error"])
    )
    assert pg_server.snapshot(database) == live
    assert pg_server.databases(database) == [database]
