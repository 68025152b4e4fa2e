"""Import of a backup made elsewhere: a zip of Odoo's database manager (format zip) or another
host's, checked and rewritten into our backup format, so that the usual restore (restore.py:
scratch copy, checks against the manifest, switch; kill-safe) brings it in.

Refused with InvalidInput naming the zip and the rule, before anything is stored:
- not a zip, or a corrupt or truncated one (every member is read, its CRC checked);
- not an Odoo backup: no `dump.sql` (plain SQL, Odoo's "zip" format) or no Odoo manifest;
- a dump of another Odoo major version than the tenant's (Odoo migrates only forward, and
  only through its upgrade scripts: the database must be upgraded first);
- a dump needing objects the tenant's database role may not create (it owns its database,
  nothing more): extensions only a superuser may create, roles, languages, foreign servers,
  event triggers, `COPY ... PROGRAM`, ownership given to other roles; or with psql backslash
  commands (`\\!`, `\\o |...`, `\\copy ... program`, ...);
- larger than the limit, with more entries in its directory than MAX_ZIP_ENTRIES (or a
  directory larger than MAX_ZIP_DIRECTORY_BYTES: checked from the end-of-central-directory
  record before the zip is opened, as zipfile loads the directory whole in memory), or
  unpacking to more than MAX_UNCOMPRESSED_BYTES (a zip bomb).

The dump check (``DumpChecker``) is line by line, not a SQL parser: statements at the start of
a line or after a `;` (indented or not, any case), a backslash outside a '...' literal on its
line. It is an early, friendly refusal only. What holds whatever it misses is the restore:
restore.py loads the dump with psql in restricted mode (`\\restrict`, a random key), so a
backslash command stops the load, and the SQL runs as the tenant's role, which may do no more
than its role may.

``check`` makes the cheap ones (the zip's directory and manifest: readable, Odoo's, the
version, the size), which the API answers before it queues the import; ``prepare`` makes them
all. The zip is read and written in chunks, never whole in memory. The rewritten zip keeps Odoo's
manifest fields and adds ours (checksums of the dump and of every file, row counts and row
checksums per table computed from the dump, as backup.py does), with kind `on-demand` and
`imported_from` naming the source file.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saasodoo.backups.dumpformat import CHUNK, COPY_RE, FORMAT_VERSION, DumpScanner, LineFeed
from saasodoo.backups.retention import STAMP_FORMAT
from saasodoo.errors import InvalidInput

#: Default upper bound of an imported zip (bytes).
MAX_IMPORT_BYTES = 20 * 1024**3
#: Upper bounds of a zip's central directory, read before the zip is opened: zipfile loads it
#: whole, in several times its size of memory (a ZipInfo per entry). An Odoo backup has one
#: entry per filestore file; a hundred thousand is a large tenant.
MAX_ZIP_ENTRIES = 100_000
MAX_ZIP_DIRECTORY_BYTES = 64 * 1024**2
#: Upper bound of the bytes unpacked from a zip (every member's data, as read): a zip bomb is
#: refused when it passes it, before the disk fills.
MAX_UNCOMPRESSED_BYTES = 10 * MAX_IMPORT_BYTES

#: Extensions PostgreSQL marks trusted (any database owner may create them), PostgreSQL 13+.
TRUSTED_EXTENSIONS = frozenset(
    {
        "btree_gin", "btree_gist", "citext", "cube", "dict_int", "fuzzystrmatch", "hstore",
        "intarray", "isn", "lo", "ltree", "pg_trgm", "pgcrypto", "plpgsql", "seg", "tablefunc",
        "tcn", "tsm_system_rows", "tsm_system_time", "unaccent", "uuid-ossp",
    }
)  # fmt: skip

#: Statements of a plain dump that only a superuser (or another role) may run: at the start
#: of a line or after a `;`, indented or not, in any case.
_START = rb"(?:^|;)\s*"
FORBIDDEN: tuple[tuple[re.Pattern[bytes], str], ...] = tuple(
    (re.compile(_START + pattern, re.IGNORECASE), what)
    for pattern, what in (
        (rb"CREATE\s+(ROLE|USER|GROUP)\b", "creates a role"),
        (rb"ALTER\s+(ROLE|USER|GROUP)\b", "changes a role"),
        (rb"CREATE\s+(OR\s+REPLACE\s+)?(TRUSTED\s+)?(PROCEDURAL\s+)?LANGUAGE\b",
         "adds a language"),
        (rb"CREATE\s+EVENT\s+TRIGGER\b", "creates an event trigger"),
        (rb"CREATE\s+FOREIGN\s+DATA\s+WRAPPER\b", "creates a foreign-data wrapper"),
        (rb"CREATE\s+SERVER\b", "creates a foreign server"),
        (rb"CREATE\s+USER\s+MAPPING\b", "creates a user mapping"),
        (rb"CREATE\s+SUBSCRIPTION\b", "creates a subscription"),
        (rb"ALTER\s+SYSTEM\b", "changes the server's settings"),
        (rb"CREATE\s+(DATABASE|TABLESPACE)\b", "creates a database or tablespace"),
        (rb"SET\s+(SESSION\s+)?(SESSION\s+AUTHORIZATION|ROLE)\b", "switches roles"),
        (rb"ALTER\s[^;]*\sOWNER\s+TO\b", "gives objects to another role"),
        (rb"COPY\s[^;]*\s(FROM|TO)\s+PROGRAM\b", "runs a program on the server"),
    )
)  # fmt: skip
EOCD_SIZE = 22  # end-of-central-directory record, without its comment
ZIP64_LOCATOR_SIZE = 20
EXTENSION_RE = re.compile(
    _START + rb'CREATE\s+EXTENSION\s+(IF\s+NOT\s+EXISTS\s+)?"?(?P<name>[\w-]+)"?', re.IGNORECASE
)
#: pg_dump's own framing of a dump (17.6, 16.10, 15.14 and later), left out by restore.py.
RESTRICT_RE = re.compile(rb"^\\(un)?restrict(\s|$)")


def backslash_command(line: bytes) -> bool:
    """Whether `line` has a backslash outside a '...' literal and a -- comment: a psql
    command (`\\!`, `\\o |...`, `\\copy ... program`, ...) wherever it is on the line.
    Line by line only (a literal spanning lines, a $$ body are not followed)."""
    if RESTRICT_RE.match(line):
        return False
    quoted = False
    for i, ch in enumerate(line):
        if ch == 0x27:  # '
            quoted = not quoted
        elif quoted:
            continue
        elif ch == 0x5C:  # backslash
            return True
        elif line[i : i + 2] == b"--":
            return False
    return False


#: Odoo's own manifest fields (odoo/service/db.py dump_db_manifest), kept as they are.
ODOO_FIELDS = ("odoo_dump", "db_name", "version", "version_info", "major_version", "pg_version",
               "modules")  # fmt: skip


@dataclass(frozen=True)
class Prepared:
    """A zip rewritten into our format, ready to store under `name` (+ `name.json`)."""

    name: str
    path: Path
    manifest: dict[str, Any]


class DumpChecker(LineFeed):
    """Follows plain pg_dump output and collects what the tenant's role may not run."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_copy = False
        self._lineno = 0

    def _line(self, line: bytes) -> None:
        self._lineno += 1
        if self._in_copy:
            self._in_copy = line != b"\\."
            return
        if COPY_RE.match(line):
            self._in_copy = True
            return
        if backslash_command(line):
            self._problem(f"runs a psql command ({line[:80].decode(errors='replace')!r})")
            return
        ext = EXTENSION_RE.search(line)
        if ext and ext["name"].decode().lower() not in TRUSTED_EXTENSIONS:
            self._problem(
                f"creates the extension {ext['name'].decode()}, which only a superuser may create"
            )
            return
        for pattern, what in FORBIDDEN:
            if pattern.search(line):
                self._problem(f"{what} ({line[:80].decode(errors='replace')!r})")
                return

    def _problem(self, text: str) -> None:
        if len(self.problems) < 5:
            self.problems.append(f"line {self._lineno} {text}")


def major(version: Any) -> str:
    """ "18.0" of "18.0", "saas~18.2", [18, 0, ...]; "" if none."""
    if isinstance(version, list) and version and isinstance(version[0], int):
        return f"{version[0]}.0"
    match = re.search(r"(\d+)\.\d+", str(version or ""))
    return f"{match[1]}.0" if match else ""


def read_manifest(zf: zipfile.ZipFile, label: str) -> dict[str, Any]:
    names = set(zf.namelist())
    missing = [n for n in ("dump.sql", "manifest.json") if n not in names]
    if missing:
        raise InvalidInput(
            f"zip: {label} is not an Odoo backup (no {' and no '.join(missing)}); export it "
            "from Odoo's database manager with the backup format 'zip (includes filestore)'"
        )
    try:
        manifest = json.loads(zf.read("manifest.json"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"zip: {label}: manifest.json is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or not (
        manifest.get("odoo_dump") or manifest.get("major_version") or manifest.get("version")
    ):
        raise InvalidInput(f"zip: {label} is not an Odoo backup (manifest.json is not Odoo's)")
    return manifest


def _check_version(manifest: dict[str, Any], label: str, tenant: str, odoo_version: str) -> None:
    theirs = major(manifest.get("major_version") or manifest.get("version_info")
                   or manifest.get("version"))  # fmt: skip
    if theirs != major(odoo_version):
        raise InvalidInput(
            f"zip: {label} is a dump of Odoo {theirs or 'of an unknown version'}; "
            f"tenant '{tenant}' runs Odoo {odoo_version}. Upgrade the database to "
            f"{odoo_version} first (Odoo's upgrade service), then import that dump"
        )


def _check_size(size: int, label: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise InvalidInput(f"zip: {label} has {size} bytes, more than the limit of {max_bytes}")


def _check_directory(source: Path, label: str, max_entries: int = MAX_ZIP_ENTRIES) -> None:
    """Refuse a zip whose central directory has more than `max_entries` entries or more than
    MAX_ZIP_DIRECTORY_BYTES, from its end-of-central-directory record (zip64 too), before
    zipfile reads the directory into memory. A zip without one is left to zipfile (corrupt)."""
    size = source.stat().st_size
    tail_start = max(0, size - (EOCD_SIZE + 0xFFFF + ZIP64_LOCATOR_SIZE))
    with source.open("rb") as fh:
        fh.seek(tail_start)
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < EOCD_SIZE:
            return
        _sig, _disk, _cd_disk, _here, entries, cd_size, _cd_offset, _comment = struct.unpack(
            "<4s4H2LH", tail[at : at + EOCD_SIZE]
        )
        locator = tail[at - ZIP64_LOCATOR_SIZE : at] if at >= ZIP64_LOCATOR_SIZE else b""
        if locator[:4] == b"PK\x06\x07":
            _sig, _disk, offset, _disks = struct.unpack("<4sLQL", locator)
            fh.seek(offset)
            record = fh.read(56)
            if len(record) == 56 and record[:4] == b"PK\x06\x06":
                fields = struct.unpack("<4sQ2H2L4Q", record)
                entries, cd_size = fields[7], fields[8]
    if entries > max_entries:
        raise InvalidInput(
            f"zip: {label} has {entries} entries, more than the limit of {max_entries}"
        )
    if cd_size > MAX_ZIP_DIRECTORY_BYTES:
        raise InvalidInput(
            f"zip: {label} has a directory of {cd_size} bytes, more than the limit of "
            f"{MAX_ZIP_DIRECTORY_BYTES}"
        )


def check(
    source: Path,
    *,
    tenant: str,
    odoo_version: str,
    max_bytes: int = MAX_IMPORT_BYTES,
    max_entries: int = MAX_ZIP_ENTRIES,
) -> dict[str, Any]:
    """The cheap checks of ``prepare`` (the zip's directory and its manifest only, not its
    members' data): size, a readable zip, an Odoo backup, the tenant's Odoo major version.
    Odoo's manifest, or InvalidInput. What remains for ``prepare``: every member's CRC (a
    corrupt member), the unpacked size and what the dump asks of the tenant's role."""
    label = source.name
    _check_size(source.stat().st_size, label, max_bytes)
    _check_directory(source, label, max_entries)
    try:
        with zipfile.ZipFile(source) as zf:
            manifest = read_manifest(zf, label)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, OSError) as exc:
        raise InvalidInput(f"zip: {label} is corrupt or truncated ({exc})") from None
    _check_version(manifest, label, tenant, odoo_version)
    return manifest


def prepare(
    source: Path,
    work: Path,
    *,
    tenant: str,
    odoo_version: str,
    max_bytes: int = MAX_IMPORT_BYTES,
    max_entries: int = MAX_ZIP_ENTRIES,
    max_uncompressed: int = MAX_UNCOMPRESSED_BYTES,
    now: datetime.datetime | None = None,
) -> Prepared:
    """Check `source` and rewrite it into `work` in our format; InvalidInput if refused (and
    nothing left in `work`)."""
    label = source.name
    _check_size(source.stat().st_size, label, max_bytes)
    _check_directory(source, label, max_entries)
    now = now or datetime.datetime.now(datetime.UTC)
    name = f"{now.strftime(STAMP_FORMAT)}-on-demand.zip"
    target = work / f".{name}.partial"
    try:
        with zipfile.ZipFile(source) as zf:
            manifest = read_manifest(zf, label)
            _check_version(manifest, label, tenant, odoo_version)
            written = _rewrite(zf, target, label, max_uncompressed)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, OSError) as exc:
        target.unlink(missing_ok=True)
        raise InvalidInput(f"zip: {label} is corrupt or truncated ({exc})") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    dump_sha, dump_size, files, tables = written
    ours: dict[str, Any] = {key: manifest[key] for key in ODOO_FIELDS if key in manifest}
    ours.update(
        {
            "saasodoo": FORMAT_VERSION,
            "tenant": tenant,
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kind": "on-demand",
            "odoo_version": odoo_version,
            "imported_from": label,
            "sizes": {
                "dump": dump_size,
                "filestore": sum(f["size"] for f in files.values()),
                "filestore_files": len(files),
            },
            "checksums": {"dump.sql": dump_sha, "filestore": files},
            "tables": tables,
        }
    )
    with zipfile.ZipFile(target, "a", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        zf.writestr("manifest.json", json.dumps(ours, indent=4, sort_keys=True))
    ours["sizes"]["zip"] = target.stat().st_size
    final = work / name
    target.rename(final)
    return Prepared(name, final, ours)


def _rewrite(
    zf: zipfile.ZipFile, target: Path, label: str, max_uncompressed: int
) -> tuple[str, int, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    unpacked = 0

    def count(block: bytes) -> bytes:
        nonlocal unpacked
        unpacked += len(block)
        if unpacked > max_uncompressed:
            raise InvalidInput(
                f"zip: {label} unpacks to more than the limit of {max_uncompressed} bytes"
            )
        return block

    scanner = DumpScanner()
    checker = DumpChecker()
    digest = hashlib.sha256()
    size = 0
    files: dict[str, dict[str, Any]] = {}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as out:
        with zf.open("dump.sql") as src, out.open("dump.sql", "w", force_zip64=True) as dst:
            for block in iter(lambda: count(src.read(CHUNK)), b""):
                dst.write(block)
                digest.update(block)
                scanner.feed(block)
                checker.feed(block)
                size += len(block)
        scanner.close()
        checker.close()
        if checker.problems:
            raise InvalidInput(
                f"zip: {label}: dump.sql needs what the tenant's database role may not do: "
                + "; ".join(checker.problems)
            )
        for info in zf.infolist():
            if not info.filename.startswith("filestore/") or info.is_dir():
                continue
            relative = info.filename.removeprefix("filestore/")
            if relative.startswith("/") or ".." in relative.split("/"):
                raise InvalidInput(f"zip: {label}: unsafe path {info.filename!r}")
            file_digest = hashlib.sha256()
            with zf.open(info) as src, out.open(info.filename, "w", force_zip64=True) as dst:
                for block in iter(lambda: count(src.read(CHUNK)), b""):
                    dst.write(block)
                    file_digest.update(block)
            files[relative] = {"size": info.file_size, "sha256": file_digest.hexdigest()}
    return digest.hexdigest(), size, files, scanner.result()
