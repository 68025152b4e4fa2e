"""The scripts the chart runs in its pods (charts/odoo-tenant/files), tested as plain Python:
odoo-init assembles odoo.conf with its secrets, backup writes Odoo's zip layout and prunes
(against fakes here; tests/backups runs backup.py and restore.py against real servers)."""

from __future__ import annotations

import importlib.util
import json
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.chart.helpers import CHART

pytestmark = pytest.mark.unit

FILES = CHART / "files"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), FILES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_odoo_init_appends_the_secrets_to_a_private_copy(tmp_path: Path) -> None:
    template = tmp_path / "odoo.conf"
    template.write_text("[options]\ndb_name = odoo\n")
    target = tmp_path / "run" / "odoo.conf"
    proc = subprocess.run(
        [
            sys.executable,
            str(FILES / "odoo-init.py"),
            f"--template={template}",
            f"--config={target}",
        ],
        env={"PGPASSWORD": "pg-secret", "ODOO_MASTER_PASSWORD": "master-secret"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = target.read_text()
    assert text.startswith("[options]\ndb_name = odoo\n")
    assert "db_password = pg-secret\n" in text and "admin_passwd = master-secret\n" in text
    assert "smtp_password" not in text
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "secret" not in proc.stdout.replace("Secrets", "")  # never logged


@pytest.mark.parametrize("bad", ["", "trailing\n", " padded", "two\nlines"])
def test_odoo_init_refuses_secrets_odoo_conf_cannot_hold(tmp_path: Path, bad: str) -> None:
    odoo_init = load("odoo-init")
    with pytest.raises(odoo_init.InitError, match="db_password"):
        odoo_init.check_secret("db_password", bad)


def test_odoo_init_needs_the_admin_credentials_to_initialize(tmp_path: Path) -> None:
    template = tmp_path / "odoo.conf"
    template.write_text("[options]\n")
    odoo_init = load("odoo-init")
    code = odoo_init.main(
        [f"--template={template}", f"--config={tmp_path / 'out.conf'}", "--initialize"]
    )
    assert code == 1


class NoLock:
    """backup.TenantLock without a PostgreSQL server: always granted at once."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __enter__(self) -> NoLock:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_backup_writes_odoos_zip_layout_and_applies_the_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup = load("backup")
    fake_dump = tmp_path / "pg_dump"
    fake_dump.write_text(
        '#!/bin/sh\n[ "$1" = --version ] && echo "pg_dump (PostgreSQL) 17.2" && exit 0\n'
        'printf -- "-- dump of $3\\nCOPY public.t (a) FROM stdin;\\n1\\n2\\n\\\\.\\n"\n'
    )
    fake_dump.chmod(0o755)
    monkeypatch.setattr(backup, "PG_DUMP", str(fake_dump))
    monkeypatch.setattr(backup, "installed_modules", lambda db: ({"base": "18.0.1.3"}, "17.2"))
    monkeypatch.setattr(backup, "wait_for_database", lambda db: None)
    monkeypatch.setattr(backup, "unrestorable_objects", lambda db: [])
    monkeypatch.setattr(backup, "TenantLock", NoLock)  # no server here (tests/backups has one)
    monkeypatch.setenv("PGDATABASE", "odoo")
    monkeypatch.setenv("ODOO_VERSION", "18.0")
    monkeypatch.delenv("BACKUP_KIND", raising=False)
    filestore = tmp_path / "filestore"
    (filestore / "odoo" / "ab").mkdir(parents=True)
    (filestore / "odoo" / "ab" / "abcdef").write_bytes(b"attachment")
    dest = tmp_path / "backups"
    dest.mkdir()
    for stamp in ("20250101T000000Z", "20250102T000000Z", "20250103T000000Z"):
        (dest / f"{stamp}-scheduled.zip").write_bytes(b"old")
        (dest / f"{stamp}-scheduled.zip.json").write_bytes(b"{}")
    (dest / "20250104T000000Z-scheduled.zip.partial").write_bytes(b"interrupted")

    args = [f"--dest={dest}", f"--filestore={filestore}", "--keep=2", "--keep-weekly=0"]
    assert backup.main([*args, "--keep-monthly=0"]) == 0

    kept = sorted(p.name for p in dest.iterdir() if p.suffix == ".zip")
    assert len(kept) == 2 and kept[0] == "20250103T000000Z-scheduled.zip"
    assert not list(dest.glob("*.partial"))
    with zipfile.ZipFile(dest / kept[1]) as zf:
        assert sorted(zf.namelist()) == ["dump.sql", "filestore/ab/abcdef", "manifest.json"]
        assert zf.read("dump.sql").startswith(b"-- dump of odoo\n")
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["db_name"] == "odoo" and manifest["modules"] == {"base": "18.0.1.3"}
        assert manifest["version"] == "18.0" and manifest["pg_version"] == "17.2"
        assert manifest["kind"] == "scheduled" and manifest["tables"]["public.t"]["rows"] == 2
    assert backup.verify_zip(dest / kept[1])["db_name"] == "odoo"


def test_backup_failure_leaves_no_partial_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup = load("backup")
    monkeypatch.setattr(backup, "PG_DUMP", "false")
    monkeypatch.setattr(backup, "installed_modules", lambda db: ({}, "17.2"))
    monkeypatch.setattr(backup, "wait_for_database", lambda db: None)
    monkeypatch.setattr(backup, "check_dump_client", lambda version: None)
    monkeypatch.setattr(backup, "unrestorable_objects", lambda db: [])
    monkeypatch.setattr(backup, "TenantLock", NoLock)
    monkeypatch.setenv("PGDATABASE", "odoo")
    monkeypatch.setenv("SAASODOO_ODOO_VERSION", "18.0")
    assert backup.main([f"--dest={tmp_path}"]) == 1
    assert list(tmp_path.iterdir()) == []


def test_restore_script_imports_backup_beside_it_and_writes_no_bytecode() -> None:
    proc = subprocess.run(
        [sys.executable, str(FILES / "restore.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and "--verify-only" in proc.stdout, proc.stderr
    assert not (FILES / "__pycache__").exists()


def test_postgres_init_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(FILES / "postgres-init.sh")], check=True)


def test_in_pod_programs_need_no_python_newer_than_3_10() -> None:
    """odoo:17.0 runs Python 3.10: vermin (with `make lint`'s arguments) finds nothing newer in
    the programs the pods run (datetime.UTC, for one, is 3.11)."""
    makefile = (CHART.parents[1] / "Makefile").read_text()
    [line] = [ln for ln in makefile.splitlines() if ln.startswith("VERMIN_ARGS :=")]
    args = line.split(":=", 1)[1].split()
    assert "-t=3.10-" in args
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("vermin")), *args, str(FILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "template",
    ["[options]\nworkers = 2\nworkers = 4\n", "[options]\nlog_level = info\nlog_level = warn\n"],
)
def test_odoo_init_refuses_an_odoo_conf_with_a_key_twice(tmp_path: Path, template: str) -> None:
    """Odoo's config parser stops at a duplicate: the init step says which key, at once."""
    odoo_init = load("odoo-init")
    conf = tmp_path / "odoo.conf"
    conf.write_text(template)
    with pytest.raises(odoo_init.InitError, match="sets (workers|log_level) twice"):
        odoo_init.write_config(conf, tmp_path / "out.conf", {"db_password": "x"})


def test_odoo_init_refuses_an_odoo_conf_holding_a_secret_it_appends(tmp_path: Path) -> None:
    odoo_init = load("odoo-init")
    conf = tmp_path / "odoo.conf"
    conf.write_text("[options]\ndb_password = in-a-configmap\n")
    with pytest.raises(odoo_init.InitError, match="db_password, which comes from a Secret"):
        odoo_init.write_config(conf, tmp_path / "out.conf", {"db_password": "x"})


def test_odoo_init_takes_backup_py_s_data_lock() -> None:
    """`odoo-init --update` and backup.py (each in its own pod) take the same advisory lock."""
    init, backup = load("odoo-init"), load("backup")
    assert init.DATA_LOCK_CLASS == backup.LOCK_CLASS
    for database in ("acme", "t-0001", "x" * 63):
        assert init.data_lock_key(database) == backup.lock_key(database)
    assert init.DATA_LOCK_WAIT_SECONDS == backup.LOCK_WAIT_SECONDS


def test_an_odoo_run_that_failed_on_a_name_lookup_is_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Five tenants created at once on the real node restarted four odoo-init containers:
    the personalization's `odoo shell` failed to resolve PostgreSQL's Service name for a
    moment (psycopg2's "could not translate host name"). A run that may be repeated is run
    again on that failure alone; any other failure, or a run not marked so, is an InitError
    at once."""
    odoo_init = load("odoo-init")
    monkeypatch.setattr(odoo_init, "RETRY_DNS_SECONDS", 0.0)
    tries = tmp_path / "tries"
    fake = tmp_path / "odoo"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo x >> "{tries}"\n'
        f'n=$(wc -l < "{tries}")\n'
        'if [ "$n" -le "$FAILS" ]; then\n'
        '  echo "psycopg2.OperationalError: $WHY" >&2; exit 1\n'
        "fi\n"
        "echo SHELL-OK\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("ODOO_BIN", str(fake))
    dns = 'could not translate host name "t-postgresql-rw" to address: Temporary failure'
    monkeypatch.setenv("WHY", dns)
    monkeypatch.setenv("FAILS", "2")
    assert "SHELL-OK" in odoo_init.run_odoo(["shell"], stdin="", retry_dns=True)
    assert len(tries.read_text().splitlines()) == 3
    assert capsys.readouterr().err.count("could not translate host name") == 2
    for why, retry, fails in ((dns, False, "1"), ("FATAL: password authentication failed",
                                                   True, "1"), (dns, True, "9")):  # fmt: skip
        tries.unlink()
        monkeypatch.setenv("WHY", why)
        monkeypatch.setenv("FAILS", fails)
        with pytest.raises(odoo_init.InitError, match="exited with 1"):
            odoo_init.run_odoo(["shell"], stdin="", retry_dns=retry)
        expected = 1 + (odoo_init.RETRY_DNS if retry and why == dns else 0)
        assert len(tries.read_text().splitlines()) == expected, (why, retry)
