"""Small zips in the format of Odoo's database manager (``dump.sql``, ``filestore/``,
``manifest.json``), for the upload and import tests that need no real Odoo server (zips made
by the real server: tests/odoo/test_import.py)."""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

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
