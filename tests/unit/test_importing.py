"""The pure rules of `saasodoo backup import`: what a dump may ask of the tenant's role, Odoo
major versions, and the CLI's refusal of a missing file. (Real zips: tests/odoo/test_import.py.)"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from saasodoo.backups.importing import (
    MAX_IMPORT_BYTES,
    MAX_UNCOMPRESSED_BYTES,
    MAX_ZIP_ENTRIES,
    DumpChecker,
    check,
    major,
    prepare,
)
from saasodoo.cli import cli
from saasodoo.errors import InvalidInput
from tests.api.zips import DUMP as ODOO_DUMP
from tests.api.zips import MANIFEST, odoo_zip

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


def test_a_zip_with_too_many_entries_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    many = odoo_zip(tmp_path / "many.zip")
    with zipfile.ZipFile(many, "a") as zf:
        for i in range(12):
            zf.writestr(f"filestore/00/{i}", b"")
    for step in (check, prepare):
        kwargs: dict[str, Any] = {"work": tmp_path} if step is prepare else {}
        with pytest.raises(
            InvalidInput, match="many.zip has 15 entries, more than the limit of 10"
        ):
            step(many, tenant="acme", odoo_version="18.0", max_entries=10, **kwargs)
        assert step(many, tenant="acme", odoo_version="18.0", max_entries=15, **kwargs)
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


@pytest.mark.parametrize(
    ("entries", "cd_size", "expected"),
    [
        (10**9, 46 * 10**9, "has 1000000000 entries, more than the limit of 100000"),
        (1000, 10**9, "has a directory of 1000000000 bytes, more than the limit of 67108864"),
    ],
)
def test_a_zip64_directory_is_bounded_from_its_records(
    tmp_path: Path, entries: int, cd_size: int, expected: str
) -> None:
    """zipfile would try to read a directory this large whole (it is not there: the record
    alone says so, and is refused)."""
    huge = tmp_path / "huge.zip"
    huge.write_bytes(zip64_tail(entries, cd_size))
    with pytest.raises(InvalidInput, match=f"zip: huge.zip {expected}"):
        check(huge, tenant="acme", odoo_version="18.0")


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
    assert check(path, tenant="acme", odoo_version="18.0")["version"] == "18.0"
    with pytest.raises(InvalidInput, match="has 72 entries, more than the limit of 71"):
        check(path, tenant="acme", odoo_version="18.0", max_entries=71)


def test_a_zip_bomb_is_refused_while_unpacked(tmp_path: Path) -> None:
    bomb = odoo_zip(tmp_path / "bomb.zip")
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("filestore/ff/zeros", "w") as out:
            for _ in range(8):
                out.write(bytes(1 << 20))
    assert bomb.stat().st_size < 64 * 1024
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(InvalidInput, match="bomb.zip unpacks to more than the limit of 4194304"):
        prepare(bomb, work, tenant="acme", odoo_version="18.0", max_uncompressed=4 << 20)
    assert list(work.iterdir()) == []
    done = prepare(bomb, work, tenant="acme", odoo_version="18.0", max_uncompressed=16 << 20)
    assert done.manifest["sizes"]["filestore"] == (8 << 20) + len("attachment €".encode())
    assert MAX_UNCOMPRESSED_BYTES == 10 * MAX_IMPORT_BYTES
