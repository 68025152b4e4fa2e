"""The chart's backup.py and restore.py, run for real as the backup pod runs them (`python3
<script>`, the libpq environment of the tenant role, standard library + psql/pg_dump only)
against a local PostgreSQL server, a filestore directory and a local S3 server (moto).

Not Kubernetes: on the simulated cluster no container runs, so this is where the programs
themselves are proven."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from saasodoo.adapters.storage import DirectoryStore
from saasodoo.backups.results import BackupInfo
from saasodoo.backups.service import list_store
from tests.backups.helpers import (
    FILES,
    KILL_POINTS,
    LateProxy,
    PgServer,
    S3Server,
    change_tenant_data,
    files_snapshot,
    make_tenant_data,
    run_killed,
    run_script,
    start_paused,
    start_serving,
    wait_paused,
)

# Needs the local PostgreSQL and S3 servers the tests start, no Kubernetes.
pytestmark = pytest.mark.postgres


def result_of(stdout: str) -> dict[str, object]:
    line = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")][-1]
    report: dict[str, object] = json.loads(line.removeprefix("RESULT "))
    return report


def backed_up_tenant(
    pg_server: PgServer, database: str, tmp_path: Path
) -> tuple[Path, Path, dict[str, str], Path]:
    """Odoo-like data and filestore, backed up by backup.py into a directory: (filestore root,
    the database's filestore, the tenant role's environment, the backup directory)."""
    root = tmp_path / "filestore"
    store = make_tenant_data(pg_server, database, root)
    env = {**pg_server.env(database), "ODOO_VERSION": "17.0"}
    dest = tmp_path / "backups"
    done = run_script("backup.py", [f"--dest={dest}", f"--filestore={root}"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    return root, store, env, dest


def test_backup_to_s3_then_restore_gives_back_exactly_what_was_backed_up(
    pg_server: PgServer, s3_server: S3Server, bucket: str, database: str, tmp_path: Path
) -> None:
    root = tmp_path / "filestore"
    store = make_tenant_data(pg_server, database, root)
    before_tables = pg_server.snapshot(database)
    before_files = files_snapshot(store)
    env = {**pg_server.env(database), **s3_server.env(bucket), "ODOO_VERSION": "17.0",
           "BACKUP_KIND": "on-demand"}  # fmt: skip

    done = run_script("backup.py", ["--s3", "--tenant=acme", f"--filestore={root}",
                                    f"--work={tmp_path}"], env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    [zip_key] = [k for k in keys if k.endswith(".zip")]
    assert zip_key.startswith("backups/acme/") and zip_key.endswith("-on-demand.zip")
    assert zip_key + ".json" in keys

    change_tenant_data(pg_server, database, store)
    assert pg_server.snapshot(database) != before_tables

    restored = run_script(
        "restore.py", ["--s3", "--tenant=acme", f"--filestore={root}", f"--work={tmp_path}"],
        {**env, "PGADMINUSER": "postgres"},
    )  # fmt: skip
    assert restored.returncode == 0, restored.stdout + restored.stderr
    report = result_of(restored.stdout)
    assert report["ok"] is True and report["backup"] == zip_key.rsplit("/", 1)[1]
    assert pg_server.snapshot(database) == before_tables
    assert files_snapshot(root / database) == before_files
    # The data before the restore is kept, renamed, until someone drops it.
    previous = str(report["previous_database"])
    assert pg_server.databases(previous) == [previous]
    assert "added_later" in pg_server.psql(r"\dt", previous, "odoo")
    assert (root / previous / "ef" / "ef0000").read_bytes() == b"new file"
    # Restored objects belong to the tenant role, not to the superuser that created the db.
    owner = pg_server.psql(
        f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{database}'"
    )
    assert owner.strip() == "odoo"


def test_zip_is_in_odoos_layout_with_our_manifest(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    root = tmp_path / "filestore"
    make_tenant_data(pg_server, database, root)
    env = {**pg_server.env(database), "ODOO_VERSION": "17.0"}
    dest = tmp_path / "backups"
    done = run_script("backup.py", [f"--dest={dest}", "--tenant=acme", f"--filestore={root}"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    [zip_path] = dest.glob("*.zip")
    assert zip_path.name.endswith("-scheduled.zip")
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(zf.namelist())
        assert names == [
            "dump.sql", "filestore/ab/abcdef", "filestore/cd/cdef01",
            "filestore/checklist/empty", "manifest.json",
        ]  # fmt: skip
        dump = zf.read("dump.sql").decode()
        manifest = json.loads(zf.read("manifest.json"))
    # Plain SQL from pg_dump --no-owner, what Odoo's restore feeds to psql.
    assert dump.startswith("--\n-- PostgreSQL database dump")
    assert "OWNER TO" not in dump and "COPY public.res_partner (" in dump
    # Odoo's manifest fields ...
    assert manifest["odoo_dump"] == "1" and manifest["db_name"] == database
    assert manifest["version"] == manifest["major_version"] == "17.0"
    assert manifest["version_info"][:2] == [17, 0]
    assert manifest["pg_version"].split(".")[0] == pg_server.bindir.parent.name
    assert manifest["modules"] == {"base": "17.0.1.3", "web": "17.0.1.0"}
    # ... and ours.
    assert manifest["tenant"] == "acme" and manifest["kind"] == "scheduled"
    assert manifest["odoo_version"] == "17.0" and manifest["timestamp"].endswith("Z")
    assert manifest["sizes"]["filestore_files"] == 3 and manifest["sizes"]["dump"] == len(dump)
    assert manifest["tables"]["public.res_partner"]["rows"] == 500
    assert set(manifest["checksums"]["filestore"]) == {"ab/abcdef", "cd/cdef01", "checklist/empty"}
    # The sidecar manifest (listing without downloading zips) is the zip's own.
    sidecar = json.loads((dest / (zip_path.name + ".json")).read_text())
    assert sidecar["checksums"] == manifest["checksums"]


def test_corrupt_backup_is_refused_and_the_live_data_untouched(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    root, store, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    [good] = dest.glob("*.zip")
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "filestore/ab/abcdef":
                data = b"attachment 0ne"  # one flipped byte, same size
            out.writestr(info, data)
    change_tenant_data(pg_server, database, store)
    report = refused_restore(pg_server, database, env, root, store, bad, tmp_path, code=3)
    assert report["ok"] is False and "filestore/ab/abcdef" in str(report["error"])
    assert pg_server.databases(database) == [database]  # no scratch database left
    assert sorted(p.name for p in root.iterdir()) == [".saasodoo-restore.lock", database]


def test_verify_restores_into_a_scratch_database_and_leaves_nothing(
    pg_server: PgServer, s3_server: S3Server, bucket: str, database: str, tmp_path: Path
) -> None:
    root = tmp_path / "filestore"
    make_tenant_data(pg_server, database, root)
    # A filestore file above the multipart threshold: the upload goes in 5 MiB parts.
    (root / database / "big").write_bytes(b"x" * (6 << 20) + bytes(range(256)))
    env = {**pg_server.env(database), **s3_server.env(bucket), "ODOO_VERSION": "17.0",
           "S3_MULTIPART_BYTES": str(1 << 20), "S3_PART_BYTES": str(5 << 20)}  # fmt: skip
    args = ["--s3", "--tenant=acme", f"--filestore={root}", f"--work={tmp_path}"]
    assert run_script("backup.py", args, env).returncode == 0
    live = pg_server.snapshot(database)

    checked = run_script("restore.py", [*args, "--verify-only"], {**env, "PGADMINUSER": "postgres"})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = result_of(checked.stdout)
    assert report["ok"] is True and report["mode"] == "verify"
    assert report["checks"] == {"tables": 3, "files": 4, "problems": []}
    assert pg_server.databases(database) == [database]
    assert sorted(p.name for p in root.iterdir()) == [database]  # verify takes no lock
    assert pg_server.snapshot(database) == live


def test_restore_refuses_to_switch_while_odoo_is_connected(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    root, _, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    # An open session on the live database stands for a running Odoo; the error names it.
    holder = hold_session(env, "odoo-worker", 60)
    try:
        time.sleep(1)
        busy = run_script("restore.py", [f"--dest={dest}", f"--filestore={root}"],
                          {**env, "PGADMINUSER": "postgres"})  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert busy.returncode == 1, busy.stdout
    error = str(result_of(busy.stdout)["error"])
    assert "1 connection(s) (odoo-worker from 127.0.0.1, active) still after" in error, error
    assert "stop Odoo first" in error
    assert pg_server.databases(database) == [database]


def test_a_switch_held_by_a_walsender_names_it(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """No client left, but a logical replication connection (a walsender, not a client
    backend: the drain does not wait for it) is on the live database: PostgreSQL refuses the
    rename with its generic "being accessed by other users"; the error names the walsender,
    its pid and what to do, and the live data is untouched."""
    root, _, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    live = pg_server.snapshot(database)
    holder = subprocess.Popen(
        ["psql", "--no-psqlrc", "-X", f"dbname={database} replication=database",
         "-c", "SELECT pg_sleep(60)"],
        env={**env, "PGUSER": "postgres", "PGAPPNAME": "subscriber"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        kinds = ""
        for _ in range(50):
            kinds = pg_server.psql(
                f"SELECT string_agg(backend_type, ',') FROM pg_stat_activity "
                f"WHERE datname = '{database}' AND application_name = 'subscriber'"
            ).strip()  # fmt: skip
            if kinds:
                break
            time.sleep(0.2)
        assert kinds == "walsender", kinds
        held = run_script("restore.py", [f"--dest={dest}", f"--filestore={root}"],
                          {**env, "PGADMINUSER": "postgres"})  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert held.returncode == 1, held.stdout
    error = str(result_of(held.stdout)["error"])
    assert "is being accessed by other users" in error, error
    assert f"sessions on {database}: walsender subscriber from" in error, error
    assert "stop that replication or worker" in error
    assert pg_server.databases(database) == [database]
    assert pg_server.snapshot(database) == live


def hold_session(env: dict[str, str], name: str, seconds: int) -> subprocess.Popen[bytes]:
    """A client session on the tenant's database named `name`, busy for `seconds`."""
    return subprocess.Popen(
        ["psql", "--no-psqlrc", "-X", "-c", f"SELECT pg_sleep({seconds})"],
        env={**env, "PGAPPNAME": name}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def test_the_switch_waits_for_a_session_that_ends_in_a_moment(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """The backend of an Odoo pod that just stopped may outlive it a moment: a session still
    there when the restored copy is ready, gone seconds later, delays the switch, not fails
    it (#24's CI failure was the autovacuum worker, no client at all: not counted)."""
    root, _, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    gate = tmp_path / "gate"
    restoring = start_paused("restore.py", "switch_over",
                             [f"--dest={dest}", f"--filestore={root}", f"--work={tmp_path}"],
                             {**env, "PGADMINUSER": "postgres"}, gate)  # fmt: skip
    try:
        wait_paused(restoring, gate)
        holder = hold_session(env, "odoo-leaving", 3)
        time.sleep(1)  # connected, sleeping: the switch finds it, then sees it go
    finally:
        (gate / "go").touch()
    restored, _ = restoring.communicate(timeout=120)
    holder.wait(timeout=30)
    assert restoring.returncode == 0 and result_of(restored)["ok"], restored


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_restore_killed_midway_leaves_the_live_data_intact(
    point: str, pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    root, store, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    backed_up = pg_server.snapshot(database), files_snapshot(store)
    change_tenant_data(pg_server, database, store)
    live = pg_server.snapshot(database), files_snapshot(store)
    args = [f"--dest={dest}", f"--filestore={root}", f"--work={tmp_path}"]
    admin_env = {**env, "PGADMINUSER": "postgres"}

    killed = run_killed(point, args, admin_env)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert "RESULT" not in killed.stdout
    # Nothing of the live data was lost: the database is untouched (or, once the renaming
    # transaction committed, kept as the previous one) and every live file is still on disk.
    on_disk = {
        sha for d in root.iterdir() if d.is_dir() for sha in files_snapshot(d).values()
    }  # fmt: skip
    assert set(live[1].values()) <= on_disk

    # Recovery (what the orchestrator runs after a killed restore, and every restore first):
    recovered = run_script("restore.py", ["--recover", f"--filestore={root}"], admin_env)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    report = result_of(recovered.stdout)
    finished = point == "databases switched"
    if finished:  # the commit point was passed: the restore stands, complete
        assert "finished the interrupted restore" in str(report["recovered"])
        assert (pg_server.snapshot(database), files_snapshot(store)) == backed_up
        [previous] = [d for d in pg_server.databases(database) if d != database]
        assert pg_server.snapshot(previous) == live[0]
        assert files_snapshot(root / previous) == live[1]
    else:  # before it: exactly the live data as it was, and no scratch copy left
        assert (pg_server.snapshot(database), files_snapshot(store)) == live
        assert pg_server.databases(database) == [database]
        assert sorted(p.name for p in root.iterdir()) == [".saasodoo-restore.lock", database]
    assert not (root / ".saasodoo-restore.json").exists()
    again = run_script("restore.py", ["--recover", f"--filestore={root}"], admin_env)
    assert result_of(again.stdout) == {"database": database, "mode": "recover", "ok": True}

    # And a restore after it runs through.
    done = run_script("restore.py", args, admin_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (pg_server.snapshot(database), files_snapshot(store)) == backed_up


def test_restore_killed_with_no_live_filestore_recovers_to_none(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """A tenant without a filestore directory yet: killed once the restored one took the live
    name (the databases not switched), recovery takes it away again."""
    root, store, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    shutil.rmtree(store)
    change_tenant_data_db_only = "UPDATE res_partner SET name = 'after' WHERE id = 1"
    pg_server.psql(change_tenant_data_db_only, database, "odoo")
    live = pg_server.snapshot(database)
    args = [f"--dest={dest}", f"--filestore={root}", f"--work={tmp_path}"]
    admin_env = {**env, "PGADMINUSER": "postgres"}

    # Path.rename calls: journal, then scratch -> live (there is no live directory to move).
    killed = run_killed("filestore half switched", args, admin_env)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert (root / database).is_dir()  # the restored copy under the live name, for now

    recovered = run_script("restore.py", ["--recover", f"--filestore={root}"], admin_env)
    assert "rolled back" in str(result_of(recovered.stdout)["recovered"])
    assert not (root / database).exists()
    assert pg_server.snapshot(database) == live
    assert pg_server.databases(database) == [database]


def test_a_second_restore_waits_for_the_one_running(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """The filestore lock: a recovery started while a (dying) restore still runs waits."""
    root = tmp_path / "filestore"
    make_tenant_data(pg_server, database, root)
    env = {**pg_server.env(database), "PGADMINUSER": "postgres"}
    fd = os.open(root / ".saasodoo-restore.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a running restore holds it
    try:
        waiting = subprocess.Popen(
            [sys.executable, str(FILES / "restore.py"), "--recover", f"--filestore={root}"],
            env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(2)
        assert waiting.poll() is None  # still waiting
    finally:
        os.close(fd)  # the running one ends
    out, _ = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, out
    assert "waiting for it to end" in out
    assert result_of(out) == {"database": database, "mode": "recover", "ok": True}


# -- the faults of issue #14 -----------------------------------------------------------------


@pytest.mark.parametrize("series", ["17.0", "18.0", "19.0"])
def test_manifest_takes_the_odoo_version_the_chart_passes_not_the_images(
    series: str, pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    root = tmp_path / "filestore"
    make_tenant_data(pg_server, database, root)
    dest = tmp_path / "backups"
    # An image without ODOO_VERSION (a company's own build), or with another series' value.
    for image_env in ({}, {"ODOO_VERSION": "16.0"}):
        env = {**pg_server.env(database), **image_env, "SAASODOO_ODOO_VERSION": series}
        done = run_script("backup.py", [f"--dest={dest}", "--no-prune"], env)
        assert done.returncode == 0, done.stdout + done.stderr
        newest = sorted(dest.glob("*.zip.json"))[-1]
        manifest = json.loads(newest.read_text())
        assert manifest["version"] == manifest["major_version"] == series
        assert manifest["odoo_version"] == series
        assert manifest["version_info"][:2] == [int(series.split(".")[0]), 0]
        newest.unlink()


def test_a_backup_without_a_known_odoo_version_is_refused(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    dest = tmp_path / "backups"
    done = run_script("backup.py", [f"--dest={dest}"], pg_server.env(database))
    assert done.returncode == 1 and "SAASODOO_ODOO_VERSION" in done.stdout, done.stdout
    assert not list(dest.glob("*.zip*")) if dest.exists() else True


def test_first_connections_are_retried_until_the_servers_answer(
    pg_server: PgServer, s3_server: S3Server, bucket: str, database: str, tmp_path: Path
) -> None:
    """PostgreSQL and S3 refusing the first connections for 2 and 4 s (a NetworkPolicy opening late,
    a server starting late): backup, restore and verify wait for them."""
    root = tmp_path / "filestore"
    make_tenant_data(pg_server, database, root)
    s3_port = int(s3_server.endpoint.rsplit(":", 1)[1])
    args = ["--s3", "--tenant=acme", f"--filestore={root}", f"--work={tmp_path}"]
    for program, extra in (("backup.py", []), ("restore.py", ["--verify-only"]),
                           ("restore.py", [])):  # fmt: skip
        with LateProxy(pg_server.port, 2) as pg, LateProxy(s3_port, 4) as s3:
            env = {
                **pg_server.env(database), **s3_server.env(bucket),
                "SAASODOO_ODOO_VERSION": "17.0", "PGPORT": str(pg.port),
                "S3_ENDPOINT": f"http://127.0.0.1:{s3.port}", "PGADMINUSER": "postgres",
            }  # fmt: skip
            done = run_script(program, [*args, *extra], env)
        assert done.returncode == 0, program + done.stdout + done.stderr
        assert "PostgreSQL not reachable yet, retrying" in done.stdout
        if extra != ["--recover"]:
            assert "S3 endpoint http://127.0.0.1" in done.stdout
        assert pg.accepted > 0 and s3.accepted > 0


@pytest.mark.parametrize("program", ["backup.py", "restore.py"])
def test_the_first_connection_gives_up_after_its_bound(
    program: str, pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    with LateProxy(pg_server.port, None) as never:
        env = {**pg_server.env(database), "SAASODOO_ODOO_VERSION": "17.0",
               "PGPORT": str(never.port), "SAASODOO_CONNECT_RETRY_SECONDS": "2"}  # fmt: skip
        started = time.monotonic()
        done = run_script(program, [f"--dest={tmp_path}"], env)
    assert done.returncode == 1
    assert "PostgreSQL not reachable after 2s" in done.stdout, done.stdout
    assert time.monotonic() - started < 20


def database_shape(pg: PgServer, name: str) -> str:
    """The whole pg_database row but what differs between any two databases (oid, name,
    transaction horizons), with its settings: whatever the server's version has there."""
    return pg.admin(
        "SELECT to_jsonb(d) - ARRAY['oid', 'datname', 'datfrozenxid', 'datminmxid'], "
        "(SELECT setconfig FROM pg_db_role_setting WHERE setdatabase = d.oid) "
        f"FROM pg_database d WHERE datname = '{name}'"
    )


@pytest.mark.parametrize(
    "locale",
    [
        "LOCALE 'C.UTF-8'",  # libc C.UTF-8, what the chart's initdb gives PostgreSQL < 17
        "LOCALE_PROVIDER icu ICU_LOCALE 'und' LOCALE 'C.UTF-8'",
        "LC_COLLATE 'C'",  # what Odoo itself creates (external database)
    ],
)
def test_a_restored_database_is_shaped_like_the_fresh_one(
    locale: str, pg_server: PgServer, tmp_path: Path
) -> None:
    """Collation, ctype, provider, owner, privileges (postgres-init.sh's REVOKE ... FROM PUBLIC)
    and settings of the restored database are those of the tenant's fresh one."""
    name = f"t{uuid.uuid4().hex[:10]}"
    pg_server.admin(f'CREATE DATABASE "{name}" OWNER odoo TEMPLATE template0 {locale}')
    pg_server.admin(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
    pg_server.admin(f"ALTER DATABASE \"{name}\" SET lock_timeout TO '5s'")
    try:
        fresh = database_shape(pg_server, name)
        root, _, env, dest = backed_up_tenant(pg_server, name, tmp_path)
        restored = run_script("restore.py", [f"--dest={dest}", f"--filestore={root}"],
                              {**env, "PGADMINUSER": "postgres"})  # fmt: skip
        assert restored.returncode == 0, restored.stdout + restored.stderr
        previous = str(result_of(restored.stdout)["previous_database"])
        assert database_shape(pg_server, previous) == fresh  # the fresh one, kept aside
        assert database_shape(pg_server, name) == fresh
    finally:
        for db in pg_server.databases(name):
            pg_server.admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


UNRESTORABLE = {
    "extension pg_stat_statements": "CREATE EXTENSION pg_stat_statements",
    "event trigger audit_ddl": (
        "CREATE FUNCTION audit() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END';"
        "CREATE EVENT TRIGGER audit_ddl ON ddl_command_end EXECUTE FUNCTION audit()"
    ),
    "function my_abs(integer) in an untrusted language": (
        "CREATE FUNCTION my_abs(integer) RETURNS integer LANGUAGE internal AS 'int4abs'"
    ),
}


@pytest.mark.parametrize("what", sorted(UNRESTORABLE))
def test_a_backup_the_tenant_role_could_not_restore_is_not_reported_good(
    what: str, pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """A DBA added, as superuser, what the tenant's role may not create: the backup fails,
    saying what, instead of a zip that restore and verify would then refuse."""
    root = tmp_path / "filestore"
    make_tenant_data(pg_server, database, root)
    pg_server.psql(UNRESTORABLE[what], database, "postgres")
    env = {**pg_server.env(database), "SAASODOO_ODOO_VERSION": "17.0"}
    dest = tmp_path / "backups"
    done = run_script("backup.py", [f"--dest={dest}", f"--filestore={root}"], env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert what in done.stdout and "could not restore" in done.stdout
    assert not dest.exists() or not [p for p in dest.iterdir() if p.name.endswith(".zip")]


def test_trusted_extensions_the_tenant_role_may_create_back_up_and_restore(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """pg_trgm and unaccent (which Odoo uses) are trusted: the owner creates them again."""
    root = tmp_path / "filestore"
    make_tenant_data(pg_server, database, root)
    pg_server.psql("CREATE EXTENSION pg_trgm; CREATE EXTENSION unaccent", database, "odoo")
    env = {**pg_server.env(database), "SAASODOO_ODOO_VERSION": "17.0"}
    dest = tmp_path / "backups"
    assert run_script("backup.py", [f"--dest={dest}", f"--filestore={root}"], env).returncode == 0
    restored = run_script("restore.py", [f"--dest={dest}", f"--filestore={root}"],
                          {**env, "PGADMINUSER": "postgres"})  # fmt: skip
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert pg_server.psql("SELECT extname FROM pg_extension ORDER BY 1", database).split() == [
        "pg_trgm", "plpgsql", "unaccent"
    ]  # fmt: skip


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_the_dumping_client_must_be_at_least_the_servers_major(
    offset: int, pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """A pg_dump one major older than the server is refused with a message saying what to do
    (pg_dump's own "server version mismatch" says neither); the same major or newer dumps."""
    server = int(pg_server.bindir.parent.name)
    client = server + offset
    fake = tmp_path / "pg_dump"
    fake.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = --version ] && echo "pg_dump (PostgreSQL) {client}.3" && exit 0\n'
        f'exec {pg_server.bindir}/pg_dump "$@"\n'
    )
    fake.chmod(0o755)
    env = {**pg_server.env(database), "SAASODOO_ODOO_VERSION": "17.0", "PG_DUMP": str(fake)}
    done = run_script("backup.py", [f"--dest={tmp_path / 'backups'}"], env)
    if offset < 0:
        assert done.returncode == 1
        assert f"pg_dump {client} is older than the PostgreSQL {server} server" in done.stdout
    else:
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("pg_major", [True, False], ids=["PG_MAJOR", "PATH-only"])
def test_backup_and_restore_run_the_client_the_pg_client_step_copies(
    pg_major: bool, pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """pg-client.sh (the init container of the backup Jobs, in the PostgreSQL image) copies that
    image's pg_dump and psql with their libraries and loader; backup.py and restore.py run them
    from the copy, as the backup container does (here the server's own Debian build). The PATH
    is the official image's: Debian's perl pg_wrapper (/usr/bin/pg_dump) comes first, the
    binaries' directory last (and PG_MAJOR names it)."""
    client = tmp_path / "pg-client"
    image_env = {"PATH": f"/usr/local/bin:/usr/bin:/bin:{pg_server.bindir}"}
    if pg_major:
        image_env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PG_MAJOR": pg_server.bindir.parent.name,
        }
    copied = subprocess.run(
        ["sh", str(FILES / "pg-client.sh"), str(client)],
        env=image_env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert f"(PostgreSQL) {pg_server.bindir.parent.name}." in copied.stdout
    root = tmp_path / "filestore"
    make_tenant_data(pg_server, database, root)
    before = pg_server.snapshot(database)
    # Nothing of the server's bindir on PATH: only the copy can run.
    bin_ = client / "bin"
    env = {**pg_server.env(database), "PATH": "/usr/bin:/bin", "SAASODOO_ODOO_VERSION": "18.0",
           "PG_DUMP": str(bin_ / "pg_dump"), "PSQL": str(bin_ / "psql")}  # fmt: skip
    dest = tmp_path / "backups"
    done = run_script("backup.py", [f"--dest={dest}", f"--filestore={root}"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    pg_server.psql("DELETE FROM res_partner WHERE id > 10", database, "odoo")
    restored = run_script("restore.py", [f"--dest={dest}", f"--filestore={root}"],
                          {**env, "PGADMINUSER": "postgres"})  # fmt: skip
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert pg_server.snapshot(database) == before


def test_a_missing_bucket_is_not_retried(
    pg_server: PgServer, s3_server: S3Server, database: str, tmp_path: Path
) -> None:
    """Only an unreachable endpoint is worth waiting for; a wrong bucket fails at once."""
    env = {**pg_server.env(database), **s3_server.env("no-such-bucket"),
           "SAASODOO_ODOO_VERSION": "17.0"}  # fmt: skip
    started = time.monotonic()
    done = run_script("backup.py", ["--s3", "--tenant=acme", f"--work={tmp_path}"], env)
    assert done.returncode == 1 and "S3 bucket no-such-bucket does not exist" in done.stdout
    assert "retrying" not in done.stdout and time.monotonic() - started < 20


#: psql backslash commands a customer's dump (an import) could carry to run programs in the
#: restore Job, whose environment holds the superuser's password and the S3 keys.
INJECTED = {
    "mid-line \\!": "SELECT 1; \\! touch {marker}",
    "own-line \\!": "\\! touch {marker}",
    "\\o |sh": "\\o |sh\nSELECT 'touch {marker}';\n\\o",
    "\\copy to program": "\\copy (SELECT 1) to program 'touch {marker}'",
    "the dump's own \\unrestrict": "\\unrestrict key\n\\! touch {marker}",
}


def with_dump_lines(good: Path, bad: Path, text: str) -> None:
    """`good` with `text` added to its dump.sql (after the first line and before the end),
    the manifest's checksum of the dump updated: only psql stands in the way."""
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as out:
        first, _, rest = src.read("dump.sql").partition(b"\n")
        dump = first + b"\n" + text.encode() + b"\n" + rest + b"\n" + text.encode() + b"\n"
        manifest = json.loads(src.read("manifest.json"))
        manifest["checksums"]["dump.sql"] = hashlib.sha256(dump).hexdigest()
        for info in src.infolist():
            data = {"dump.sql": dump, "manifest.json": json.dumps(manifest).encode()}
            out.writestr(info, data.get(info.filename) or src.read(info))


def refused_restore(
    pg_server: PgServer,
    database: str,
    env: dict[str, str],
    root: Path,
    store: Path,
    bad: Path,
    tmp_path: Path,
    *,
    code: int = 1,
) -> dict[str, Any]:
    """restore.py of the zip ``bad``: it must fail (exit ``code``) leaving the live database
    and filestore as they were; its RESULT."""
    live_tables, live_files = pg_server.snapshot(database), files_snapshot(store)
    refused = run_script(
        "restore.py", [f"--zip={bad}", f"--filestore={root}", f"--work={tmp_path}"],
        {**env, "PGADMINUSER": "postgres"},
    )  # fmt: skip
    assert refused.returncode == code, refused.stdout + refused.stderr
    assert pg_server.snapshot(database) == live_tables
    assert files_snapshot(store) == live_files
    return dict(result_of(refused.stdout))


@pytest.mark.parametrize("what", sorted(INJECTED))
def test_a_dump_cannot_run_psql_backslash_commands(
    what: str, pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """psql loads dump.sql in restricted mode under a key of restore.py's own: any backslash
    command in the dump stops the load; nothing runs, the live data is untouched."""
    root, store, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    [good] = dest.glob("*.zip")
    marker = tmp_path / "injected"
    bad = tmp_path / "bad.zip"
    with_dump_lines(good, bad, INJECTED[what].format(marker=marker))
    error = str(refused_restore(pg_server, database, env, root, store, bad, tmp_path)["error"])
    assert "loading dump.sql failed" in error
    assert not marker.exists()
    assert pg_server.databases(database) == [database]


def test_a_dump_with_pg_dumps_own_restrict_lines_restores(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """pg_dump 17.6/16.10/15.14 and later frame the dump with `\\restrict KEY` ...
    `\\unrestrict KEY`: restore.py leaves them out (its own key is in force) and restores."""
    root, store, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    [good] = dest.glob("*.zip")
    bad = tmp_path / "framed.zip"
    with_dump_lines(good, bad, "\\restrict abc\n\\unrestrict abc")
    before = pg_server.snapshot(database)
    change_tenant_data(pg_server, database, store)
    restored = run_script(
        "restore.py", [f"--zip={bad}", f"--filestore={root}", f"--work={tmp_path}"],
        {**env, "PGADMINUSER": "postgres"},
    )  # fmt: skip
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert pg_server.snapshot(database) == before


def test_a_psql_without_restrict_stops_at_it(pg_server: PgServer, tmp_path: Path) -> None:
    """What restore.py relies on with a psql older than `\\restrict`: an unknown backslash
    command under ON_ERROR_STOP stops psql, so it never goes on to load the dump."""
    marker = tmp_path / "injected"
    proc = subprocess.run(
        ["psql", "--no-psqlrc", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"],
        input=f"\\restrictx key\n\\! touch {marker}\nSELECT 1;\n",
        env={**os.environ, **pg_server.env("postgres", "postgres")},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode != 0 and "invalid command" in proc.stderr, proc.stderr
    assert not marker.exists()


# -- the faults of issue #22 -----------------------------------------------------------------


def test_the_copy_check_reads_rows_that_look_like_its_table_end(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """restore.py reads every table in one psql session, a `\\.` line after each: rows that
    hold a backslash and a dot, a lone dot, a lone backslash or nothing are rows, not ends."""
    root = tmp_path / "filestore"
    make_tenant_data(pg_server, database, root)
    pg_server.psql(
        "CREATE TABLE awkward (v text); CREATE TABLE empty_one (v text); "
        "INSERT INTO awkward VALUES (E'\\\\.'), ('.'), (E'\\\\'), (''), (NULL), (E'\\\\.\\n');",
        database,
        "odoo",
    )
    env = {**pg_server.env(database), "ODOO_VERSION": "17.0"}
    dest = tmp_path / "backups"
    done = run_script("backup.py", [f"--dest={dest}", f"--filestore={root}"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    [good] = dest.glob("*.zip")
    manifest = json.loads(zipfile.ZipFile(good).read("manifest.json"))
    assert manifest["tables"]["public.awkward"]["rows"] == 6
    assert manifest["tables"]["public.empty_one"]["rows"] == 0

    verified = run_script(
        "restore.py", [f"--zip={good}", f"--filestore={root}", f"--work={tmp_path}",
                       "--verify-only"], {**env, "PGADMINUSER": "postgres"},
    )  # fmt: skip
    report = result_of(verified.stdout)
    assert verified.returncode == 0 and report["ok"] is True, verified.stdout + verified.stderr
    assert report["checks"]["problems"] == []


def test_a_manifest_naming_no_table_is_refused_before_psql(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """The manifest's table names go into the copy check's psql script: one that is not a
    table name as pg_dump writes it (an import's manifest is the customer's) is refused."""
    root, store, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    [good] = dest.glob("*.zip")
    marker = tmp_path / "injected"
    bad = tmp_path / "bad.zip"
    name = f"public.res_partner TO STDOUT;\n\\! touch {marker}\n--"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as out:
        manifest = json.loads(src.read("manifest.json"))
        manifest["tables"][name] = {"rows": 0, "sha256sum": "0" * 64}
        for info in src.infolist():
            data = json.dumps(manifest).encode() if info.filename == "manifest.json" else None
            out.writestr(info, data or src.read(info))
    error = str(refused_restore(pg_server, database, env, root, store, bad, tmp_path)["error"])
    assert "which is not a table name" in error
    assert not marker.exists()


def test_a_scheduled_backup_waits_for_a_running_restore(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """#22 point 10: the CronJob's `Forbid` sees neither saasodoo's restores nor its own
    backups. The data lock (a PostgreSQL advisory lock both programs take) makes a backup
    that starts while a restore runs wait for it, naming it, instead of racing it."""
    root, _, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    admin = {**env, "PGADMINUSER": "postgres"}
    [before] = dest.glob("*.zip")
    gate = tmp_path / "gate"
    restoring = start_paused(
        "restore.py", "check_copy", [f"--dest={dest}", f"--filestore={root}",
                                     f"--work={tmp_path}"], admin, gate,
    )  # fmt: skip
    backing_up = None
    try:
        wait_paused(restoring, gate)  # mid-restore: the copy loaded, not yet switched
        backing_up = subprocess.Popen(
            [sys.executable, str(FILES / "backup.py"), f"--dest={dest}", f"--filestore={root}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        time.sleep(3)
        assert backing_up.poll() is None, backing_up.communicate()[0]  # waits, writes nothing
        assert list(dest.glob("*.zip")) == [before]
    finally:
        (gate / "go").touch()
    restored, _ = restoring.communicate(timeout=120)
    assert restoring.returncode == 0 and result_of(restored)["ok"], restored
    backed_up, _ = backing_up.communicate(timeout=120)
    assert backing_up.returncode == 0, backed_up
    assert "waiting for the tenant lock, held by saasodoo restore" in backed_up
    # Then backed up what the restore left (the day's newer scheduled zip replaces the older).
    assert [p.name for p in dest.glob("*.zip")] == [str(result_of(backed_up)["name"])]


def test_a_restore_waits_for_a_running_backup_and_gives_up_clearly(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """#22 point 10, the other way: a restore that starts while a backup runs waits for it
    (then restores), and past SAASODOO_LOCK_WAIT_SECONDS fails saying why, not with
    "database has 1 connection(s): stop Odoo first"; the live data untouched."""
    root, store, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    admin = {**env, "PGADMINUSER": "postgres"}
    live = pg_server.snapshot(database)
    gate = tmp_path / "gate"
    backing_up = start_paused("backup.py", "write_zip", [f"--dest={dest}", f"--filestore={root}"],
                              env, gate)  # fmt: skip
    try:
        wait_paused(backing_up, gate)
        args = [f"--dest={dest}", f"--filestore={root}", f"--work={tmp_path}"]
        gave_up = run_script("restore.py", args, {**admin, "SAASODOO_LOCK_WAIT_SECONDS": "2"})
        assert gave_up.returncode == 1, gave_up.stdout + gave_up.stderr
        assert "held by saasodoo backup (scheduled)" in gave_up.stdout
        error = str(result_of(gave_up.stdout)["error"])
        assert "another backup or restore of this tenant still ran after 2s" in error
        assert pg_server.snapshot(database) == live
        waiting = subprocess.Popen(
            [sys.executable, str(FILES / "restore.py"), *args],
            env=admin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        time.sleep(3)
        assert waiting.poll() is None, waiting.communicate()[0]
    finally:
        (gate / "go").touch()
    backed_up, _ = backing_up.communicate(timeout=120)
    assert backing_up.returncode == 0, backed_up
    restored, _ = waiting.communicate(timeout=120)
    assert waiting.returncode == 0 and result_of(restored)["ok"], restored


def test_a_second_on_demand_backup_keeps_the_first(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """#22 point 15(a), through the chart's program: two on-demand backups minutes apart
    (here: a second apart) and the day's scheduled one are all kept by backup.py's retention
    step, with the chart's defaults."""
    root, _, env, dest = backed_up_tenant(pg_server, database, tmp_path)  # a scheduled one
    for _ in range(2):
        time.sleep(1.1)  # names are stamped to the second
        done = run_script("backup.py", [f"--dest={dest}", f"--filestore={root}"],
                          {**env, "BACKUP_KIND": "on-demand"})  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    kinds = sorted(p.name.split("-", 1)[1] for p in dest.glob("*.zip"))
    assert kinds == ["on-demand.zip", "on-demand.zip", "scheduled.zip"]
    # The RESULT line names the new zip and where it is (the control plane reads it when
    # the backup volume is not reachable from where saasodoo runs).
    report = result_of(done.stdout)
    assert report["ok"] and report["kind"] == "on-demand" and report["storage"] == str(dest)
    assert (dest / str(report["name"])).is_file()


def test_check_only_proves_a_stored_zip_readable(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """#22 point 1: how a final backup is proven readable before a deletion: the stored zip's
    checksums against its manifest, no database needed."""
    _, _, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    [good] = dest.glob("*.zip")
    args = [f"--dest={dest}", f"--backup={good.name}", f"--work={tmp_path}", "--check-only"]
    offline = {**env, "PGHOST": "127.0.0.1", "PGPORT": "1"}  # no database reachable
    checked = run_script("restore.py", args, offline)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = result_of(checked.stdout)
    assert report["ok"] and report["mode"] == "check" and report["backup"] == good.name
    assert report["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
    data = bytearray(good.read_bytes())
    data[len(data) // 3] ^= 0xFF  # one flipped byte in the stored zip
    good.write_bytes(bytes(data))
    broken = run_script("restore.py", args, offline)
    assert broken.returncode == 3 and result_of(broken.stdout)["ok"] is False, broken.stdout


def test_list_reports_the_complete_backups_as_the_control_plane_reads_them(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """#24 point 6: how the control plane lists backups on a PVC it cannot read: restore.py
    --list in a Job, one summary per complete backup in ``BackupInfo.to_dict``'s shape (equal
    to what reading the folder itself gives), no database; a zip without its manifest (a
    backup still being written) is not listed."""
    _, _, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    (dest / "20991231T000000Z-on-demand.zip").write_bytes(b"being written")  # no manifest
    offline = {**env, "PGHOST": "127.0.0.1", "PGPORT": "1"}  # no database reachable
    done = run_script("restore.py", [f"--dest={dest}", "--list"], offline)
    assert done.returncode == 0, done.stdout + done.stderr
    report = result_of(done.stdout)
    assert report["ok"] and report["mode"] == "list"
    listed = [BackupInfo.from_summary(b) for b in report["backups"]]  # type: ignore[union-attr]
    direct = list_store(DirectoryStore(dest))
    assert [b.to_dict() for b in listed] == [b.to_dict() for b in direct]
    [only] = listed
    assert only.kind == "scheduled" and only.tables > 0 and only.dump_sha256


def age_previous(pg: PgServer, root: Path, previous: str, stamp: str) -> str:
    """Make a kept previous copy look `stamp`-old (renamed as a restore then would have)."""
    older = previous[:-14] + stamp
    pg.admin(f'ALTER DATABASE "{previous}" RENAME TO "{older}"')
    (root / previous).rename(root / older)
    return older


def test_the_replaced_data_is_kept_for_a_bounded_time_then_pruned(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """#22 point 15(b): every restore kept `<db>_p<stamp>` forever, so a few restores filled
    the volume. The copy is kept `--keep-previous-hours`, the result says what and until
    when, and the next restore (or the CronJob's --prune-previous step) drops expired ones."""
    root, store, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    admin = {**env, "PGADMINUSER": "postgres"}
    args = [f"--dest={dest}", f"--filestore={root}", f"--work={tmp_path}"]
    # The chart's value reaches the restore Job as SAASODOO_KEEP_PREVIOUS_HOURS.
    first = run_script("restore.py", args, {**admin, "SAASODOO_KEEP_PREVIOUS_HOURS": "48"})
    assert first.returncode == 0, first.stdout + first.stderr
    previous = result_of(first.stdout)["previous"]
    assert isinstance(previous, dict)
    name = str(previous["database"])
    assert previous["filestore"] == str(root / name) and int(previous["bytes"]) > 0
    until = time.strptime(str(previous["kept_until"]), "%Y-%m-%dT%H:%M:%SZ")
    hours = (time.mktime(until) - time.mktime(time.gmtime())) / 3600
    assert 47.9 < hours <= 48.01, previous
    # Not expired yet: kept by the pruning step.
    pruned = run_script("restore.py", ["--prune-previous", "--keep-previous-hours=48",
                                       f"--filestore={root}"], env)  # fmt: skip
    assert pruned.returncode == 0 and name in pg_server.databases(database), pruned.stdout
    # Three days later (the copy renamed as if so): the pruning step drops it, database and
    # filestore, as the tenant's role (the CronJob's init step has no admin connection).
    old = age_previous(pg_server, root, name, "20200101000000")
    pruned = run_script("restore.py", ["--prune-previous", "--keep-previous-hours=48",
                                       f"--filestore={root}"], env)  # fmt: skip
    assert pruned.returncode == 0, pruned.stdout
    assert old not in pg_server.databases(database) and not (root / old).exists()
    # A restore drops expired copies first, and says so.
    second = run_script("restore.py", [*args, "--keep-previous-hours=48"], admin)
    kept = str(result_of(second.stdout)["previous"]["database"])  # type: ignore[index]
    old = age_previous(pg_server, root, kept, "20200101000000")
    third = run_script("restore.py", [*args, "--keep-previous-hours=48"], admin)
    report = result_of(third.stdout)
    assert report["ok"] and old in report["pruned_previous"], third.stdout  # type: ignore[operator]
    assert old not in pg_server.databases(database) and not (root / old).exists()


FULL_DISK = """
import collections, shutil, sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
import restore
usage = collections.namedtuple("usage", "total used free")
shutil.disk_usage = lambda path: usage(10 << 30, (10 << 30) - (1 << 20), 1 << 20)
sys.exit(restore.main(sys.argv[2:]))
"""


def test_a_restore_the_filestore_volume_has_no_room_for_is_refused_first(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """#22 point 15(b): the kept copy counts against the volume. With 1 MiB free (the OS's
    answer replaced), the restore refuses before creating anything; the live data stays."""
    root, store, env, dest = backed_up_tenant(pg_server, database, tmp_path)
    live = pg_server.snapshot(database), files_snapshot(store)
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(FILES), f"--dest={dest}", f"--filestore={root}",
         f"--work={tmp_path}"],
        env={**env, "PGADMINUSER": "postgres"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "not enough room on the filestore volume" in str(result_of(done.stdout)["error"])
    assert (pg_server.snapshot(database), files_snapshot(store)) == live
    assert pg_server.databases(database) == [database]


def test_a_backup_never_overwrites_one_of_the_same_second(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """Names are the UTC second: an import the control plane staged in the second an
    on-demand backup starts has the same name. backup.py refuses, the stored zip intact (a
    restore pending on the import would otherwise restore the backup). A taken name moves a
    backup's start to the next second, at most five times; here every name of the next two
    minutes is taken."""
    import datetime

    root = tmp_path / "filestore"
    make_tenant_data(pg_server, database, root)
    dest = tmp_path / "backups"
    dest.mkdir()
    now = datetime.datetime.now(datetime.UTC)
    taken = [
        (now + datetime.timedelta(seconds=s)).strftime("%Y%m%dT%H%M%SZ") + "-on-demand.zip"
        for s in range(-1, 120)
    ]
    for name in taken:
        (dest / name).write_bytes(b"the staged import")
    env = {**pg_server.env(database), "ODOO_VERSION": "17.0"}
    done = run_script("backup.py", [f"--dest={dest}", f"--filestore={root}",
                                    "--kind=on-demand", "--no-prune"], env)  # fmt: skip
    assert done.returncode == 1 and "already stored" in done.stdout, done.stdout + done.stderr
    assert all((dest / n).read_bytes() == b"the staged import" for n in taken)
    assert not list(dest.glob("*.json")) and not list(dest.glob("*.partial"))


def http_get(base: str, path: str, token: str | None) -> tuple[int, bytes]:
    """GET ``base + path`` with ``token`` as a bearer token: (status, body)."""
    request = urllib.request.Request(base + path)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_serve_hands_the_zip_once_to_the_token_holder_only(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """How the platform reads a backup kept on a volume (#24 point 6): a short-lived pod
    serves that one zip to whoever shows the token the API made (its SHA-256 is all the pod
    knows), then ends."""
    _, _, _, dest = backed_up_tenant(pg_server, database, tmp_path)
    [zip_path] = dest.glob("*.zip")
    proc, base = start_serving(dest, zip_path.name, "s3cr3t-token", 60)
    try:
        get = functools.partial(http_get, base)
        assert get(f"/{zip_path.name}", None)[0] == 403
        assert get(f"/{zip_path.name}", "wrong")[0] == 403
        assert get("/other.zip", "s3cr3t-token")[0] == 404
        status, body = get(f"/{zip_path.name}", "s3cr3t-token")
        assert status == 200 and body == zip_path.read_bytes()
        out, _ = proc.communicate(timeout=30)  # one complete download: it ends
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    report = result_of(out)
    assert report["served"] is True and report["denied"] == 3, report
    assert report["size"] == zip_path.stat().st_size
    assert "s3cr3t-token" not in out


def test_serve_gives_up_without_a_download_and_refuses_bad_input(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    _, _, _, dest = backed_up_tenant(pg_server, database, tmp_path)
    [zip_path] = dest.glob("*.zip")
    proc, _ = start_serving(dest, zip_path.name, "t", 2)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "no complete download within 2s" in out, out
    env = {"PATH": os.environ["PATH"], "SAASODOO_SERVE_TOKEN_SHA256": "not-hex"}
    bad = run_script("restore.py", ["--serve", f"--dest={dest}", f"--backup={zip_path.name}"], env)
    assert bad.returncode == 1 and "must be a SHA-256 in hex" in bad.stdout, bad.stdout
    env["SAASODOO_SERVE_TOKEN_SHA256"] = "0" * 64
    refusals = [("../etc/passwd", "needs --backup NAME"),
                ("20200101T000000Z-on-demand.zip", "no backup 20200101T000000Z")]  # fmt: skip
    for name, words in refusals:
        bad = run_script("restore.py", ["--serve", f"--dest={dest}", f"--backup={name}"], env)
        assert bad.returncode == 1 and words in bad.stdout, bad.stdout


def test_fetch_takes_a_served_backup_into_another_tenant_s_storage(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """A staging copy of a tenant that keeps its backups on its volume (#25 point 1): the
    copy's Job fetches the zip and its manifest from the source's reader pod, checks them
    and stores them in the copy's own storage; a wrong token is refused, nothing stored."""
    _, _, _, dest = backed_up_tenant(pg_server, database, tmp_path)
    [zip_path] = dest.glob("*.zip")
    theirs = tmp_path / "copy-backups"
    env = {"PATH": os.environ["PATH"], "SAASODOO_FETCH_TOKEN": "wrong"}
    args = [f"--dest={theirs}", "--tenant=stg", f"--backup={zip_path.name}", f"--work={tmp_path}"]
    proc, base = start_serving(dest, zip_path.name, "fetch-token", 60)
    try:
        address = base.removeprefix("http://")
        refused = run_script("restore.py", [f"--fetch={address}", *args], env)
        assert refused.returncode == 1 and "refused: HTTP 403" in refused.stdout, refused.stdout
        assert not theirs.exists() or not list(theirs.iterdir())
        fetched = run_script("restore.py", [f"--fetch={address}", *args],
                             {**env, "SAASODOO_FETCH_TOKEN": "fetch-token"})  # fmt: skip
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert fetched.returncode == 0 and result_of(fetched.stdout)["ok"], fetched.stdout
    assert (theirs / zip_path.name).read_bytes() == zip_path.read_bytes()
    manifest = zip_path.with_name(zip_path.name + ".json")
    assert (theirs / manifest.name).read_bytes() == manifest.read_bytes()
    assert sorted(p.name for p in theirs.iterdir()) == sorted([zip_path.name, manifest.name])
    assert result_of(out)["served"] is True, out  # the manifest first, then the zip: once
