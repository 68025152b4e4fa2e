"""The table checksums of a plain pg_dump stream and the manifest's format version: the
contract between the chart's backup.py (which writes them into each backup's manifest),
restore.py (which checks a restored copy against them) and saasodoo's control plane (which
checks a zip made elsewhere before importing it; ``saasodoo/backups/dumpformat.py`` is a
symlink to this very file).

Standard library only, Python 3.10 (it runs in the Odoo image beside backup.py).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

#: Bytes read at a time from dumps, zips and files.
CHUNK = 1 << 20
#: The ``saasodoo`` key of a manifest: the version of this format.
FORMAT_VERSION = 1


class RowSum:
    """Order-independent checksum of a table's rows: the sum of each row's SHA-256 (mod 2^256)."""

    MOD = 1 << 256

    def __init__(self) -> None:
        self.rows = 0
        self.total = 0

    def add(self, line: bytes) -> None:
        self.rows += 1
        self.total = (self.total + int.from_bytes(hashlib.sha256(line).digest(), "big")) % self.MOD

    def hexdigest(self) -> str:
        return f"{self.total:064x}"


COPY_RE = re.compile(rb"^COPY (?P<table>\S+) \(.*\) FROM stdin;$")


class LineFeed:
    """Splits a byte stream fed in chunks into lines and hands each to ``_line`` (without its
    newline); ``close`` hands over the last line when the stream did not end with one."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> None:
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            self._line(line)

    def close(self) -> None:
        if self._pending:
            self._line(self._pending)
            self._pending = b""

    def _line(self, line: bytes) -> None:
        raise NotImplementedError


class DumpScanner(LineFeed):
    """Follows plain pg_dump output and checksums each table's COPY data."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, RowSum] = {}
        self._current: RowSum | None = None

    def _line(self, line: bytes) -> None:
        if self._current is not None:
            if line == b"\\.":
                self._current = None
            else:
                self._current.add(line)
            return
        match = COPY_RE.match(line)
        if match:
            self._current = self.tables.setdefault(match["table"].decode(), RowSum())

    def result(self) -> dict[str, dict[str, Any]]:
        return {
            name: {"rows": s.rows, "sha256sum": s.hexdigest()}
            for name, s in sorted(self.tables.items())
        }
