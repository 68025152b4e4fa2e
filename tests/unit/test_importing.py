"""The pure rules of `saasodoo backup import`: what a dump may ask of the tenant's role, Odoo
major versions, and the CLI's refusal of a missing file. (Real zips: tests/odoo/test_import.py.)"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from saasodoo.backups.importing import DumpChecker, major
from saasodoo.cli import cli

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
