"""Small zips in the format of Odoo's database manager (``dump.sql``, ``filestore/``,
``manifest.json``), for the upload and import tests that need no real Odoo server (zips made
by the real server: tests/odoo/test_import.py), and werkzeug requests whose body is a stream
(what a WSGI server hands the app), as a raw body or a multipart form."""

from __future__ import annotations

import io
import json
import random
import struct
import zipfile
from pathlib import Path

from flask import Request
from werkzeug.test import EnvironBuilder

MANIFEST = {"odoo_dump": "1", "db_name": "customer", "version": "18.0", "major_version": "18.0",
            "version_info": [18, 0, 0, "final", 0, ""], "pg_version": "15.0",
            "modules": {"base": "18.0.1.3"}}  # fmt: skip
DUMP = (
    b"SET client_encoding = 'UTF8';\n"
    b"CREATE TABLE public.res_partner (id integer, name character varying);\n"
    b"COPY public.res_partner (id, name) FROM stdin;\n1\tJos\xc3\xa9\n\\.\n"
)
BLOCK = 1 << 20


def odoo_zip(path: Path, *, big: int = 0, dump: bytes = DUMP, **changes: object) -> Path:
    """A zip in Odoo's backup format with a file in its filestore; ``big`` more bytes of
    incompressible filestore data, written block by block; ``changes`` to the manifest."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("dump.sql", dump)
        zf.writestr("filestore/0a/0a1b2c", b"attachment \xe2\x82\xac")
        if big:
            noise = random.Random(12)
            with zf.open("filestore/ab/big", "w", force_zip64=True) as out:
                for start in range(0, big, BLOCK):
                    out.write(noise.randbytes(min(BLOCK, big - start)))
        zf.writestr("manifest.json", json.dumps({**MANIFEST, **changes}))
    return path


def many_entries(path: Path, count: int) -> Path:
    """An Odoo backup zip with ``count`` empty filestore files besides."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("dump.sql", DUMP)
        zf.writestr("manifest.json", json.dumps(MANIFEST))
        for i in range(count):
            zf.writestr(f"filestore/00/{i}", b"")
    return path


def lie_about_entries(path: Path, count: int = 3) -> Path:
    """The zip's end record made to say it has ``count`` entries (zipfile ignores that)."""
    data = path.read_bytes()
    at = data.rfind(b"PK\x05\x06")
    record = bytearray(data[at : at + 22])
    struct.pack_into("<2H", record, 8, count, count)
    path.write_bytes(data[:at] + bytes(record))
    return path


def behind_a_decoy(path: Path) -> tuple[Path, int]:
    """The zip ended as zip64: its real zip64 record just before the locator (where CPython
    <= 3.12 reads it), and a decoy record of 3 entries and 100 bytes at the start, where the
    locator points. Still a valid zip (zipfile skips the 56 bytes before it). Returns the
    path and the directory's real size."""
    data = path.read_bytes()
    at = data.rfind(b"PK\x05\x06")
    _s, _d, _c, _h, entries, cd_size, cd_offset, _l = struct.unpack("<4s4H2LH", data[at : at + 22])
    decoy = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 3, 3, 100, cd_offset)
    real = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries,
                       cd_size, cd_offset)  # fmt: skip
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 1)  # points at the decoy
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(decoy + data[:at] + real + locator + end)
    return path, cd_size


class Source:
    """A stream over parts (bytes, or files read lazily) that records its reads' sizes."""

    def __init__(self, *parts: bytes | Path) -> None:
        self.parts = list(parts)
        self.reads: list[int] = []
        self.current: io.BufferedReader | io.BytesIO | None = None

    def _next(self) -> bool:
        if self.current is not None:
            self.current.close()
        if not self.parts:
            self.current = None
            return False
        part = self.parts.pop(0)
        self.current = part.open("rb") if isinstance(part, Path) else io.BytesIO(part)
        return True

    def close(self) -> None:
        if self.current is not None:
            self.current.close()

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        if self.current is None and not self._next():
            return b""
        while True:
            assert self.current is not None
            data = self.current.read(size)
            if data or not self._next():
                return data


def length(*parts: bytes | Path) -> int:
    return sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in parts)


def request_for(source: Source, content_type: str, size: int | None, query: str = "") -> Request:
    env = EnvironBuilder(method="POST", path="/x", query_string=query).get_environ()
    env["wsgi.input"] = source  # what the WSGI server hands the app: a stream
    env["CONTENT_TYPE"] = content_type
    env.pop("CONTENT_LENGTH", None)
    if size is not None:
        env["CONTENT_LENGTH"] = str(size)
    return Request(env)


def form(csrf: str | None, name: str, source: Path | bytes) -> tuple[list[bytes | Path], str]:
    boundary = "----saasodoo-test-boundary"
    head = b""
    if csrf is not None:
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf}\r\n'
        ).encode()
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="zip"; filename="{name}"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return [head, source, tail], f"multipart/form-data; boundary={boundary}"
