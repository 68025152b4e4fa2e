"""The pure rules of `saasodoo backup import`: what a dump may ask of the tenant's role, Odoo
major versions, and the CLI's refusal of a missing file. (Real zips: tests/odoo/test_import.py.)"""

from __future__ import annotations

import importlib
import json
import os
import struct
import subprocess
import sys
import time
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from saasodoo.backups import dumpformat, importcheck, importing
from saasodoo.backups.dumpformat import odoo_series as major
from saasodoo.backups.importcheck import MAX_ZIP_ENTRIES, Bounds, DumpChecker, Refused
from saasodoo.cli import cli
from tests.api.zips import DUMP as ODOO_DUMP
from tests.api.zips import MANIFEST, behind_a_decoy, lie_about_entries, many_entries, odoo_zip

pytestmark = pytest.mark.unit

DUMP = b"""\\restrict pgdumpskey
SET client_encoding = 'UTF8';
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE TABLE public.res_partner (id integer, name character varying);
COPY public.res_partner (id, name) FROM stdin;
1\tCREATE ROLE inside data is only data
2\tALTER TABLE x OWNER TO y \\! not a command in data
\\.
COMMENT ON TABLE public.res_partner IS 'a \\ backslash, -- and ''quotes'' in a literal';
"""


def problems(dump: bytes, chunk: int = 7) -> list[str]:
    checker = DumpChecker()
    for i in range(0, len(dump), chunk):  # in small chunks: lines split across reads
        checker.feed(dump[i : i + chunk])
    checker.close()
    return checker.problems


def test_an_odoo_dump_asks_nothing_of_a_superuser() -> None:
    assert problems(DUMP) == []


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (b"CREATE EXTENSION IF NOT EXISTS postgres_fdw WITH SCHEMA public;", "postgres_fdw"),
        (b'CREATE EXTENSION "plpython3u";', "plpython3u"),
        (b"CREATE ROLE customer_admin;", "creates a role"),
        (b"ALTER TABLE public.res_partner OWNER TO someone;", "gives objects to another role"),
        (b"CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw;", "creates a foreign server"),
        (b"COPY public.x FROM PROGRAM 'curl evil';", "runs a program"),
        (b"\\connect other", "runs a psql command"),
        (b"SET SESSION AUTHORIZATION postgres;", "switches roles"),
        (b"  CREATE ROLE indented;", "creates a role"),
        (b"create role lower_case;", "creates a role"),
        (b"SELECT 1; create\tuser after_a_semicolon;", "creates a role"),
        (b"alter table public.x owner to someone;", "gives objects to another role"),
        (b"  create extension plpython3u;", "plpython3u"),
        (b"copy public.x to program 'sh';", "runs a program"),
        (b"\\! touch /tmp/x", "runs a psql command"),
        (b"SELECT 1; \\! touch /tmp/x", "runs a psql command"),
        (b"SELECT 'a' \\g |sh", "runs a psql command"),
        (b"\\o |sh", "runs a psql command"),
        (b"  \\copy (SELECT 1) to program 'touch /tmp/x'", "runs a psql command"),
        (b"SELECT 'quoted' || 'again'; \\setenv X y -- comment", "runs a psql command"),
    ],
)
def test_what_the_tenant_s_role_may_not_do_is_named(statement: bytes, expected: str) -> None:
    found = problems(DUMP + statement + b"\n")
    assert len(found) == 1 and expected in found[0], found
    assert found[0].startswith("line 10 ")


@pytest.mark.parametrize(
    ("version", "expected"),
    [("18.0", "18.0"), ("saas~17.4", "17.0"), ([19, 0, 0, "final", 0, ""], "19.0"), ("", "")],
)
def test_major_versions(version: object, expected: str) -> None:
    assert major(version) == expected


def test_the_cli_refuses_a_missing_zip_before_touching_anything() -> None:
    result = CliRunner().invoke(cli, ["backup", "import", "acme", "/nonexistent/x.zip", "--yes"])
    assert result.exit_code == 2, result.output
    assert "ZIP: no file /nonexistent/x.zip" in result.output


# -- bounds read before the zip is opened, and while it is unpacked ---------------------------

#: The bounds of a 1 GiB upload limit (the API's default).
GIB = Bounds.for_limit(1 << 30)


def check(path: Path, bounds: Bounds = GIB) -> dict[str, Any]:
    return importcheck.check(path, tenant="acme", odoo_version="18.0", bounds=bounds)


def prepare(path: Path, work: Path, bounds: Bounds = GIB) -> tuple[str, dict[str, Any]]:
    return importcheck.prepare(path, work, tenant="acme", odoo_version="18.0", bounds=bounds)


def test_every_bound_derives_from_the_upload_limit() -> None:
    assert GIB == Bounds(1 << 30, MAX_ZIP_ENTRIES, MAX_ZIP_ENTRIES * 200, 64 << 20)
    small = Bounds.for_limit(1 << 20)
    assert (small.max_entries, small.max_directory, small.max_line) == (1024, 204800, 64 << 20)
    tiny = Bounds.for_limit(64 * 1024)
    assert tiny.max_entries == 1000 and tiny.max_line == 100 * 64 * 1024
    assert small.max_unpacked(1000) == 100_000
    assert small.memory < GIB.memory < 1 << 30


def test_a_zip_with_too_many_entries_is_refused(tmp_path: Path) -> None:
    many = odoo_zip(tmp_path / "many.zip")
    with zipfile.ZipFile(many, "a") as zf:
        for i in range(12):
            zf.writestr(f"filestore/00/{i}", b"")
    ten = replace(GIB, max_entries=10)
    for step in (check, prepare):
        args: list[Any] = [tmp_path] if step is prepare else []
        with pytest.raises(Refused, match="many.zip has 15 entries, more than the limit of 10"):
            step(many, *args, ten)
        assert step(many, *args, replace(GIB, max_entries=15))
    assert MAX_ZIP_ENTRIES == 100_000


def zip64_tail(entries: int, cd_size: int) -> bytes:
    """The end of a zip64 file: its zip64 end-of-directory record, locator, and the classic
    record saying 'see zip64' (what a zip with more than 65535 entries ends with)."""
    offset = 100
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries,
                         cd_size, 0)  # fmt: skip
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, offset, 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return b"x" * offset + record + locator + end


def test_a_zip64_directory_is_bounded_from_its_records(tmp_path: Path) -> None:
    """A record declaring a directory of 46 GB: zipfile reads at most what the file holds, so
    that is the bound (here, a few bytes: refused as corrupt)."""
    huge = tmp_path / "huge.zip"
    huge.write_bytes(zip64_tail(10**9, 46 * 10**9))
    assert importcheck.directory_size(huge) == huge.stat().st_size
    with pytest.raises(Refused, match="zip: huge.zip is corrupt or truncated"):
        check(huge)


def test_a_lying_entry_count_does_not_let_entries_through(tmp_path: Path) -> None:
    """The classic record's entry counts say 3; zipfile ignores them and parses the whole
    directory (its size): the directory's size bounds them, and zipfile's own count is
    held to the limit."""
    lie_about_entries(many_entries(tmp_path / "liar.zip", 2000))
    with zipfile.ZipFile(tmp_path / "liar.zip") as zf:
        assert len(zf.infolist()) == 2002  # what zipfile reads, whatever the count says
    small = Bounds.for_limit(1 << 20)  # 1024 entries, a directory of 204800 bytes
    with pytest.raises(Refused, match="liar.zip has 2002 entries, more than the limit of 1024"):
        check(tmp_path / "liar.zip", small)
    with pytest.raises(Refused, match="liar.zip has a directory of 1[0-9]{5} bytes, more than "
                       "the limit of 100000"):  # fmt: skip
        check(tmp_path / "liar.zip", replace(small, max_directory=100_000))


def test_a_decoy_zip64_record_does_not_hide_the_directory(tmp_path: Path) -> None:
    """A zip64 locator pointing at a decoy record with a small directory, while zipfile
    (CPython <= 3.12) reads the real one just before the locator: every record counts."""
    _, cd_size = behind_a_decoy(many_entries(tmp_path / "decoy.zip", 2000))
    with zipfile.ZipFile(tmp_path / "decoy.zip") as zf:
        assert len(zf.infolist()) == 2002  # zipfile reads the real one
        assert json.loads(zf.read("manifest.json")) == MANIFEST  # a valid zip
    assert importcheck.directory_size(tmp_path / "decoy.zip") == cd_size
    loose = replace(Bounds.for_limit(1 << 20), max_directory=100_000, max_entries=10**6)
    with pytest.raises(Refused, match=f"decoy.zip has a directory of {cd_size} bytes"):
        check(tmp_path / "decoy.zip", loose)


def test_a_real_zip64_directory_is_read(tmp_path: Path) -> None:
    """A zip written with zip64 records (forced) passes the bound and the checks."""
    path = tmp_path / "z64.zip"
    with zipfile.ZipFile(path, "w", allowZip64=True) as zf:
        zf.writestr("dump.sql", ODOO_DUMP)
        zf.writestr("manifest.json", json.dumps(MANIFEST))
        for i in range(70):
            zf.writestr(f"filestore/00/{i}", b"x")
    # rewrite the end as zip64 (as zipfile writes it past 65535 entries)
    data = path.read_bytes()
    at = data.rfind(b"PK\x05\x06")
    _s, _d, _c, _h, entries, cd_size, cd_offset, _l = struct.unpack("<4s4H2LH", data[at : at + 22])
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries,
                         cd_size, cd_offset)  # fmt: skip
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, at, 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(data[:at] + record + locator + end)
    assert check(path)["version"] == "18.0"
    with pytest.raises(Refused, match="has 72 entries, more than the limit of 71"):
        check(path, replace(GIB, max_entries=71))


def test_a_zip_bomb_is_refused_from_its_declared_sizes(tmp_path: Path) -> None:
    bomb = odoo_zip(tmp_path / "bomb.zip")
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("filestore/ff/zeros", "w") as out:
            for _ in range(8):
                out.write(bytes(1 << 20))
    size = bomb.stat().st_size
    assert size < 64 * 1024
    work = tmp_path / "work"
    work.mkdir()
    for step in (check, prepare):
        args: list[Any] = [work] if step is prepare else []
        with pytest.raises(Refused, match=f"bomb.zip unpacks to 8388[0-9]+ bytes, more than 100 "
                           f"times its size \\({100 * size} bytes\\): a zip bomb"):  # fmt: skip
            step(bomb, *args)
    assert list(work.iterdir()) == []
    name, manifest = prepare(bomb, work, replace(GIB, ratio=1000))
    assert manifest["sizes"]["filestore"] == (8 << 20) + len("attachment €".encode())
    assert sorted(p.name for p in work.iterdir()) == [name, name + ".json"]
    assert manifest["identity"] == "copy"


# -- dump lines, member names ------------------------------------------------------------------


def test_a_long_line_is_split_in_time_linear_in_its_length() -> None:
    """Issue: one 100 MiB line cost the API 26 s of CPU (each chunk copied the pending bytes
    again). 16 MiB in 16 KiB chunks: joined once."""
    scanner = dumpformat.DumpScanner()
    block = b"x" * (16 << 10)
    started = time.process_time()
    scanner.feed(b"COPY public.t (a) FROM stdin;\n")
    for _ in range(1024):
        scanner.feed(block)
    scanner.feed(b"\n\\.\n")
    scanner.close()
    spent = time.process_time() - started
    assert scanner.result()["public.t"]["rows"] == 1
    assert spent < 0.5, f"{spent:.2f} s for a 16 MiB line"


def test_a_line_past_the_bound_is_refused_before_it_is_held_whole() -> None:
    checker = DumpChecker(max_line=1000)
    checker.feed(b"SELECT 1;\n" + b"y" * 600)
    with pytest.raises(dumpformat.LineTooLong, match="line 2 is longer than the limit of 1000"):
        checker.feed(b"y" * 600)
    statement = DumpChecker(max_statement=100)
    statement.feed(b"SELECT '" + b"z" * 200 + b"';\nCOPY public.t (a) FROM stdin;\n"
                   + b"w" * 500 + b"\n\\.\n")  # fmt: skip
    statement.close()
    assert statement.problems == ["line 1 is a statement longer than the limit of 100 bytes"]


BAD_NAMES = [
    ("filestore/ab//cd", "not a plain relative path"),
    ("filestore/./ab", "not a plain relative path"),
    ("filestore/ab/../../x", "not a plain relative path"),
    ("filestore//etc/passwd", "not a plain relative path"),
    ("filestore/ab\\cd", "a backslash or a control character"),
    ("filestore/ab\ncd", "a backslash or a control character"),
    ("filestore/" + "n" * 256, "longer than 255 bytes a segment"),
    ("dump.sql", "dump.sql is in the zip twice"),
    ("filestore/0a/0a1b2c/x", "'filestore/0a/0a1b2c' is both a file and the directory"),
]


@pytest.mark.parametrize(("name", "rule"), BAD_NAMES)
def test_member_names_are_refused_alike_by_the_import_and_the_restore(
    tmp_path: Path, name: str, rule: str
) -> None:
    """One rule (dumpformat.member_problems) for the import's check and restore.py, which
    refuses before it touches anything: a zip the import accepts is one the restore takes."""
    path = odoo_zip(tmp_path / "names.zip")
    with zipfile.ZipFile(path, "a") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name
        zf.writestr(name, b"x")
    with pytest.raises(Refused) as refused:
        check(path)
    assert "names.zip: member names the restore cannot use" in str(refused.value)
    assert rule in str(refused.value)
    restore = restore_program()
    said = restore.refuse(path, "names.zip", {}, "unused", series=False)
    assert said.startswith("names.zip: member names that cannot be restored: ") and rule in said
    assert restore.dumpformat.__file__ == str(Path(dumpformat.__file__).resolve())
    good = odoo_zip(tmp_path / "good.zip")
    assert check(good) and restore.refuse(good, "good.zip", {}, "unused", series=False) == ""


def restore_program() -> Any:
    """The chart's restore.py, imported as the Job runs it (beside backup.py, dumpformat.py)."""
    files = Path(dumpformat.__file__).resolve().parent
    sys.path.insert(0, str(files))
    try:
        return importlib.import_module("restore")
    finally:
        sys.path.remove(str(files))


def test_the_worker_runs_under_the_bounds_of_the_upload_limit(tmp_path: Path) -> None:
    """The program importing runs caps its own address space, CPU time and file size before
    it opens the zip (here a FIFO no one writes: it waits in its open() while its limits are
    read from /proc)."""
    fifo = tmp_path / "upload.zip"
    os.mkfifo(fifo)
    command = [sys.executable, "-I", "-S", "-B", str(importing.PROGRAM), "check", "--zip",
               str(fifo), "--tenant", "acme", "--odoo-version", "18.0", "--max-bytes",
               str(1 << 20)]  # fmt: skip
    bounds = Bounds.for_limit(1 << 20)
    cpu = bounds.cpu_seconds(bounds.work("check", 0))
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows: dict[str, list[str]] = {}
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            limits = Path(f"/proc/{proc.pid}/limits").read_text()
            rows = {line[:26].strip(): line[26:].split() for line in limits.splitlines()[1:]}
            if rows["Max file size"][0] == "0":  # the last one it sets
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert rows["Max address space"][:2] == [str(bounds.memory)] * 2
    assert rows["Max cpu time"][:2] == [str(cpu)] * 2
    assert rows["Max file size"][:2] == ["0", "0"]  # check writes nothing
    assert rows["Max core file size"][:2] == ["0", "0"]
