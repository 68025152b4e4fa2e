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
from collections.abc import Iterable
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


class LineTooLong(ValueError):
    """A line of a dump longer than the bound its reader set (``LineFeed.max_line``)."""


class LineFeed:
    """Splits a byte stream fed in chunks into lines and hands each to ``_line`` (without its
    newline); ``close`` hands over the last line when the stream did not end with one.

    Linear in the stream's size: the pieces of a line spread over many chunks are kept in a
    list and joined once (never the pending bytes copied again with every chunk, which made a
    long line cost its length squared). With ``max_line``, a line longer than that many bytes
    raises LineTooLong (naming its number) before it is held whole."""

    def __init__(self, max_line: int | None = None) -> None:
        self.max_line = max_line
        self.lines = 0  # lines handed over so far
        self._parts: list[bytes] = []
        self._held = 0

    def _hold(self, size: int) -> None:
        self._held += size
        if self.max_line is not None and self._held > self.max_line:
            raise LineTooLong(
                f"line {self.lines + 1} is longer than the limit of {self.max_line} bytes"
            )

    def feed(self, data: bytes) -> None:
        lines = data.split(b"\n")
        rest = lines.pop()
        if lines:
            self._hold(len(lines[0]))
            if self._parts:
                self._parts.append(lines[0])
                lines[0] = b"".join(self._parts)
                self._parts = []
            for line in lines:
                self._held = len(line)
                self._hold(0)
                self.lines += 1
                self._line(line)
            self._held = 0
        if rest:
            self._hold(len(rest))
            self._parts.append(rest)

    def close(self) -> None:
        if self._parts:
            line = b"".join(self._parts)
            self._parts, self._held = [], 0
            self.lines += 1
            self._line(line)

    def _line(self, line: bytes) -> None:
        raise NotImplementedError


class DumpScanner(LineFeed):
    """Follows plain pg_dump output and checksums each table's COPY data."""

    def __init__(self, max_line: int | None = None) -> None:
        super().__init__(max_line)
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


# -- Odoo series ---------------------------------------------------------------------------------


def odoo_series(version: Any) -> str:
    """The Odoo series ("18.0") of "18.0", "18.0.1.3" (a module's version), "saas~18.2",
    [18, 0, 0, "final", 0, ""] (``version_info``); "" if none."""
    if isinstance(version, list) and version and isinstance(version[0], int):
        return f"{version[0]}.0"
    match = re.search(r"(\d+)\.\d+", str(version or ""))
    return f"{match[1]}.0" if match else ""


def manifest_series(manifest: dict[str, Any]) -> str:
    """The Odoo series of a backup's manifest: Odoo's own fields (``major_version``,
    ``version_info``, ``version``), else ours (``odoo_version``); "" if none."""
    return odoo_series(
        manifest.get("major_version")
        or manifest.get("version_info")
        or manifest.get("version")
        or manifest.get("odoo_version")
    )


# -- member names ------------------------------------------------------------------------------

#: Longest file name (one path segment) and path of a filestore file, in bytes (Linux's
#: NAME_MAX and PATH_MAX).
NAME_MAX = 255
PATH_MAX = 4096
#: What a backup zip must hold once each.
REQUIRED_MEMBERS = ("dump.sql", "manifest.json")
FILESTORE_PREFIX = "filestore/"
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def member_problems(names: Iterable[str], limit: int = 5) -> list[str]:
    """What makes a backup zip's member names unrestorable (empty: nothing), at most
    ``limit`` of them. The one rule of restore.py (checked before it touches anything) and of
    saasodoo's import check (before it stores anything), so that a zip the import accepts is
    one the restore unpacks:

    - ``dump.sql`` and ``manifest.json`` at most once each (their absence is the caller's
      concern);
    - a filestore file ``filestore/<path>`` (names ending in ``/`` are directories, left
      out): ``<path>`` relative, its segments non-empty and neither ``.`` nor ``..``, no
      backslash or control character, each segment at most NAME_MAX bytes in UTF-8, the
      whole at most PATH_MAX: unpacked, it lands exactly at ``<path>`` under the filestore;
    - no filestore file twice, none that is also the directory of another (``a`` and
      ``a/b``).

    Other members are not restored and not checked."""
    problems: list[str] = []
    seen: set[str] = set()
    files: set[str] = set()
    dirs: set[str] = set()

    def problem(text: str) -> None:
        if len(problems) < limit:
            problems.append(text)

    def shown(name: str) -> str:
        return repr(name if len(name) <= 80 else name[:80] + "...")

    for name in names:
        if name in REQUIRED_MEMBERS:
            if name in seen:
                problem(f"{name} is in the zip twice")
            seen.add(name)
            continue
        if not name.startswith(FILESTORE_PREFIX) or name.endswith("/"):
            continue
        path = name[len(FILESTORE_PREFIX) :]
        segments = path.split("/")
        if path.startswith("/") or any(seg in ("", ".", "..") for seg in segments):
            problem(f"{shown(name)}: not a plain relative path (empty, '.' or '..' segments)")
        elif "\\" in path or _CONTROL_RE.search(path):
            problem(f"{shown(name)}: a backslash or a control character in the name")
        elif len(path.encode("utf-8", "surrogateescape")) > PATH_MAX or any(
            len(seg.encode("utf-8", "surrogateescape")) > NAME_MAX for seg in segments
        ):
            problem(f"{shown(name)}: longer than {NAME_MAX} bytes a segment or {PATH_MAX} in all")
        elif path in files:
            problem(f"{shown(name)} is in the zip twice")
        else:
            files.add(path)
            for i in range(1, len(segments)):
                dirs.add("/".join(segments[:i]))
    for clash in sorted(files & dirs)[:limit]:
        problem(f"'filestore/{clash}' is both a file and the directory of other files")
    return problems
