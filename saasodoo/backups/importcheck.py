"""The checks of a backup zip made elsewhere, and its rewrite into our format: the worker
program that ``saasodoo.backups.importing`` runs under hard bounds, never inside the API or
CLI process (a hostile zip costs them a process start and a wait).

Refused (``Refused``, naming the zip and the rule; exit code 3 as a program):
- larger than the upload limit ``max_bytes``, not a zip, a corrupt or truncated one (every
  member's CRC is read by ``prepare``);
- a central directory larger than ``Bounds.max_directory`` bytes (read from every record
  that versions of Python's ``zipfile`` may take it from, before the zip is opened: zipfile
  holds the directory whole), or more entries than ``Bounds.max_entries`` as zipfile parsed
  them (``len(infolist())``);
- member names the restore would not give back as they are (``dumpformat.member_problems``,
  the very rule of the chart's restore.py);
- members that unpack to more than ``Bounds.ratio`` times the zip's size (their sizes as
  declared, which zipfile holds each member's data to, and as counted while unpacking);
- no ``dump.sql`` or no Odoo ``manifest.json``, a manifest larger than
  ``Bounds.manifest_limit`` or nesting deeper than ``MAX_DEPTH``, a dump of another Odoo
  series than the tenant's;
- a dump line longer than ``Bounds.max_line`` (a statement outside COPY data: longer than
  ``MAX_STATEMENT``), a dump needing what the tenant's database role may not do (see
  ``DumpChecker``).

Every bound derives from the upload limit (``Bounds.for_limit``), and so do the worker's own
limits (``Bounds.memory``, ``Bounds.cpu_seconds``: address space and CPU time, set with
``resource.setrlimit`` as the program starts and once the declared sizes are known). Members
are read in chunks of ``dumpformat.CHUNK``, never whole; the dump's lines are split in time
linear in its size.

Standard library only: run as a program (``python3 -I -S importcheck.py``) it imports
nothing but its siblings ``dumpformat.py`` and ``retention.py`` (symlinks to the chart's
files), so it starts in tens of milliseconds; imported as ``saasodoo.backups.importcheck``
(the tests) it is the same code. Its last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import re
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__:
    from saasodoo.backups import dumpformat
    from saasodoo.backups.retention import STAMP_FORMAT
else:  # run as a program: its siblings only (the chart's files, through their symlinks)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import dumpformat  # type: ignore[no-redef,import-not-found]
    from retention import STAMP_FORMAT  # type: ignore[no-redef,import-not-found]

#: Largest upload by default (bytes): the CLI's, when it is not given.
MAX_IMPORT_BYTES = 20 * 1024**3
#: Unpacked bytes per byte of zip (a compression ratio): Odoo's dumps deflate 5-15 times,
#: filestores (images, PDFs) hardly; a zip bomb thousands of times.
RATIO = 100
#: Most entries of a zip (an Odoo backup has one per filestore file; a hundred thousand is a
#: large tenant), and per upload byte: ``Bounds.for_limit``.
MAX_ZIP_ENTRIES = 100_000
BYTES_PER_ENTRY = 1024
#: Central directory bytes per entry allowed (Odoo's names are ~55 bytes, the record 46,
#: zip64 extras 20-28).
DIRECTORY_BYTES_PER_ENTRY = 200
#: manifest.json: this much plus MANIFEST_BYTES_PER_ENTRY per entry of the zip (ours lists
#: every filestore file with its checksum, ~150 bytes each).
MANIFEST_BASE = 1 << 20
MANIFEST_BYTES_PER_ENTRY = 512
#: Deepest nesting of manifest.json (Odoo's is 2 levels, ours 4).
MAX_DEPTH = 32
#: Longest line of dump.sql (a COPY row: a bytea of an attachment kept in the database), and
#: of a statement outside COPY data (pg_dump writes long ones over several lines).
MAX_LINE = 64 << 20
MAX_STATEMENT = 1 << 20
#: The worker's address space: Python itself (~25 MiB), plus what the bounds let it hold.
BASE_MEMORY = 128 << 20
#: CPU seconds of the worker: a base, plus one per WORK_RATE bytes unpacked (sha256, inflate,
#: deflate and line scanning run at 20-50 MB/s; the bound is for a runaway, not a forecast).
BASE_CPU_SECONDS = 10
WORK_RATE = 2 << 20

EOCD_SIZE = 22  # end-of-central-directory record, without its comment
ZIP64_RECORD_SIZE = 56
ZIP64_LOCATOR_SIZE = 20
MAX_COMMENT = 0xFFFF


class Refused(ValueError):
    """The zip is refused; the message names it and the rule."""


@dataclass(frozen=True)
class Bounds:
    """What a zip may be and cost, all derived from the upload limit ``max_bytes``."""

    max_bytes: int
    max_entries: int
    max_directory: int
    max_line: int
    ratio: int = RATIO

    @classmethod
    def for_limit(cls, max_bytes: int) -> Bounds:
        entries = min(MAX_ZIP_ENTRIES, max(1000, max_bytes // BYTES_PER_ENTRY))
        return cls(
            max_bytes=max_bytes,
            max_entries=entries,
            max_directory=entries * DIRECTORY_BYTES_PER_ENTRY,
            max_line=min(MAX_LINE, RATIO * max_bytes),
        )

    def max_unpacked(self, zip_size: int) -> int:
        """Bytes a zip of ``zip_size`` bytes may unpack to."""
        return self.ratio * zip_size

    def manifest_limit(self, entries: int) -> int:
        return MANIFEST_BASE + MANIFEST_BYTES_PER_ENTRY * entries

    @property
    def memory(self) -> int:
        """The worker's address space limit (bytes): Python, a few dump lines, the parsed
        directory (zipfile's ZipInfo objects: ~10 times the directory's bytes), a manifest."""
        return (
            BASE_MEMORY
            + 4 * self.max_line
            + 10 * self.max_directory
            + 8 * self.manifest_limit(self.max_entries)
        )

    def cpu_seconds(self, unpacked: int) -> int:
        """The worker's CPU limit for ``unpacked`` bytes of members to read."""
        return BASE_CPU_SECONDS + unpacked // WORK_RATE

    def work(self, mode: str, zip_size: int) -> int:
        """Bytes the worker may read in ``mode``: the directory and the manifest (check),
        every member (prepare)."""
        if mode == "check":
            return self.max_directory + self.manifest_limit(self.max_entries)
        return self.max_unpacked(zip_size)


# -- the zip's directory -------------------------------------------------------------------


def directory_size(path: Path) -> int:
    """The largest central directory size any end record of ``path`` declares: the classic
    record found as zipfile finds it (at the very end, else the last signature in the final
    64 KiB), and the zip64 record both where CPython <= 3.12 reads it (just before its
    locator) and where later ones do (the locator's offset); at most the file's size.
    zipfile reads that many bytes and parses every entry in them: bounding the largest
    bounds what it may hold."""
    sizes = [0]
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        start = max(0, size - EOCD_SIZE - MAX_COMMENT - ZIP64_LOCATOR_SIZE - ZIP64_RECORD_SIZE)
        fh.seek(start)
        tail = fh.read()
        places = {len(tail) - EOCD_SIZE, tail.rfind(b"PK\x05\x06")}
        for at in sorted(p for p in places if p >= 0):
            record = tail[at : at + EOCD_SIZE]
            if len(record) < EOCD_SIZE or record[:4] != b"PK\x05\x06":
                continue
            classic = struct.unpack("<4s4H2LH", record)[5]
            found64 = []
            locator = tail[at - ZIP64_LOCATOR_SIZE : at] if at >= ZIP64_LOCATOR_SIZE else b""
            if locator[:4] == b"PK\x06\x07":
                offset = struct.unpack("<4sLQL", locator)[2]
                before = at - ZIP64_LOCATOR_SIZE - ZIP64_RECORD_SIZE
                candidates = [tail[before : at - ZIP64_LOCATOR_SIZE] if before >= 0 else b""]
                if offset < size:
                    fh.seek(offset)
                    candidates.append(fh.read(ZIP64_RECORD_SIZE))
                found64 = [
                    struct.unpack("<4sQ2H2L4Q", z64)[8]
                    for z64 in candidates
                    if len(z64) == ZIP64_RECORD_SIZE and z64[:4] == b"PK\x06\x06"
                ]
            sizes += found64
            if not (found64 and classic == 0xFFFFFFFF):  # else only "see the zip64 record"
                sizes.append(classic)
    # zipfile reads at most what the file holds (a classic record's 0xFFFFFFFF, "see zip64",
    # included)
    return min(max(sizes), size)


def open_zip(path: Path, label: str, bounds: Bounds) -> zipfile.ZipFile:
    """``path`` opened, once its size, directory, entries, names and declared unpacked size
    are within ``bounds``; Refused otherwise."""
    size = path.stat().st_size
    if size > bounds.max_bytes:
        raise Refused(f"zip: {label} has {size} bytes, more than the limit of {bounds.max_bytes}")
    directory = directory_size(path)
    if directory > bounds.max_directory:
        raise Refused(
            f"zip: {label} has a directory of {directory} bytes, more than the limit of "
            f"{bounds.max_directory} ({bounds.max_entries} entries)"
        )
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise Refused(f"zip: {label} is corrupt or truncated ({exc})") from None
    try:
        infos = zf.infolist()
        if len(infos) > bounds.max_entries:
            raise Refused(
                f"zip: {label} has {len(infos)} entries, more than the limit of "
                f"{bounds.max_entries}"
            )
        problems = dumpformat.member_problems(i.filename for i in infos)
        if problems:
            raise Refused(f"zip: {label}: member names the restore cannot use: "
                          + "; ".join(problems))  # fmt: skip
        unpacked = sum(i.file_size for i in infos)
        if unpacked > bounds.max_unpacked(size):
            raise Refused(
                f"zip: {label} unpacks to {unpacked} bytes, more than {bounds.ratio} times its "
                f"size ({bounds.max_unpacked(size)} bytes): a zip bomb, or not a backup"
            )
    except BaseException:
        zf.close()
        raise
    return zf


_JSON_TOKENS = re.compile(rb'\\.|["\[\]{}]', re.DOTALL)


def json_depth(raw: bytes, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of the JSON text ``raw`` (brackets outside strings), read in one linear
    pass before it is parsed (a deep one never reaches the parser's recursion); stops at
    ``limit + 1``."""
    level = deepest = 0
    quoted = False
    for token in _JSON_TOKENS.finditer(raw):
        mark = token.group()
        if mark == b'"':
            quoted = not quoted
        elif quoted:
            continue  # an escape or a bracket inside a string
        elif mark in (b"[", b"{"):
            level += 1
            if level > deepest:
                deepest = level
                if deepest > limit:
                    return deepest
        elif mark in (b"]", b"}"):
            level -= 1
    return deepest


def read_manifest(zf: zipfile.ZipFile, label: str, bounds: Bounds) -> dict[str, Any]:
    """Odoo's manifest.json of the zip: present with dump.sql, at most
    ``bounds.manifest_limit`` bytes (read in chunks, counted), JSON nesting at most
    MAX_DEPTH levels, Odoo's; Refused otherwise."""
    names = set(zf.namelist())
    missing = [n for n in dumpformat.REQUIRED_MEMBERS if n not in names]
    if missing:
        raise Refused(
            f"zip: {label} is not an Odoo backup (no {' and no '.join(missing)}); export it "
            "from Odoo's database manager with the backup format 'zip (includes filestore)'"
        )
    limit = bounds.manifest_limit(len(names))
    info = zf.getinfo("manifest.json")
    if info.file_size > limit:
        raise Refused(
            f"zip: {label}: manifest.json has {info.file_size} bytes, more than the limit of "
            f"{limit}"
        )
    parts: list[bytes] = []
    held = 0
    with zf.open(info) as fh:
        for block in iter(lambda: fh.read(dumpformat.CHUNK), b""):
            held += len(block)
            if held > limit:
                raise Refused(f"zip: {label}: manifest.json is larger than the limit of {limit}")
            parts.append(block)
    raw = b"".join(parts)
    if json_depth(raw) > MAX_DEPTH:
        raise Refused(f"zip: {label}: manifest.json nests deeper than {MAX_DEPTH} levels")
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Refused(f"zip: {label}: manifest.json is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or not (
        manifest.get("odoo_dump") or manifest.get("major_version") or manifest.get("version")
    ):
        raise Refused(f"zip: {label} is not an Odoo backup (manifest.json is not Odoo's)")
    return manifest


def check_version(manifest: dict[str, Any], label: str, tenant: str, odoo_version: str) -> None:
    theirs = dumpformat.manifest_series(manifest)
    if theirs != dumpformat.odoo_series(odoo_version):
        raise Refused(
            f"zip: {label} is a dump of Odoo {theirs or 'of an unknown version'}; "
            f"tenant '{tenant}' runs Odoo {odoo_version}. Upgrade the database to "
            f"{odoo_version} first (Odoo's upgrade service), then import that dump"
        )


# -- what the dump asks of the tenant's role ---------------------------------------------

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
EXTENSION_RE = re.compile(
    _START + rb'CREATE\s+EXTENSION\s+(IF\s+NOT\s+EXISTS\s+)?"?(?P<name>[\w-]+)"?', re.IGNORECASE
)
#: pg_dump's own framing of a dump (17.6, 16.10, 15.14 and later), left out by restore.py.
RESTRICT_RE = re.compile(rb"^\\(un)?restrict(\s|$)")
_BACKSLASH_TOKENS = re.compile(rb"'|\\|--")


def backslash_command(line: bytes) -> bool:
    """Whether `line` has a backslash outside a '...' literal and a -- comment: a psql
    command (`\\!`, `\\o |...`, `\\copy ... program`, ...) wherever it is on the line.
    Line by line only (a literal spanning lines, a $$ body are not followed)."""
    if RESTRICT_RE.match(line):
        return False
    quoted = False
    for token in _BACKSLASH_TOKENS.finditer(line):
        mark = token.group()
        if mark == b"'":
            quoted = not quoted
        elif quoted:
            continue
        elif mark == b"\\":
            return True
        else:  # a -- comment outside a literal: the rest of the line
            return False
    return False


class DumpChecker(dumpformat.LineFeed):
    """Follows plain pg_dump output and collects what the tenant's role may not run; a line
    longer than ``max_line`` raises dumpformat.LineTooLong, a statement line (outside COPY
    data) longer than ``max_statement`` is a problem."""

    def __init__(self, max_line: int | None = None, max_statement: int = MAX_STATEMENT) -> None:
        super().__init__(max_line)
        self.max_statement = max_statement
        self.problems: list[str] = []
        self._in_copy = False

    def _line(self, line: bytes) -> None:
        if self._in_copy:
            self._in_copy = line != b"\\."
            return
        if dumpformat.COPY_RE.match(line):
            self._in_copy = True
            return
        if len(line) > self.max_statement:
            self._problem(f"is a statement longer than the limit of {self.max_statement} bytes")
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
            self.problems.append(f"line {self.lines} {text}")


# -- the checks and the rewrite ------------------------------------------------------------


def check(path: Path, *, tenant: str, odoo_version: str, bounds: Bounds) -> dict[str, Any]:
    """The cheap checks (the zip's directory and manifest, not its members' data): size,
    directory, entries, names, declared unpacked size, an Odoo backup, the tenant's series.
    What the API may answer at once; returns the manifest's Odoo fields. Refused otherwise."""
    label = path.name
    try:
        with open_zip(path, label, bounds) as zf:
            manifest = read_manifest(zf, label, bounds)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, OSError) as exc:
        raise Refused(f"zip: {label} is corrupt or truncated ({exc})") from None
    check_version(manifest, label, tenant, odoo_version)
    return {k: manifest[k] for k in ("version", "major_version") if k in manifest}


#: Odoo's own manifest fields (odoo/service/db.py dump_db_manifest), kept as they are.
ODOO_FIELDS = ("odoo_dump", "db_name", "version", "version_info", "major_version", "pg_version",
               "modules")  # fmt: skip


def prepare(
    path: Path,
    work: Path,
    *,
    tenant: str,
    odoo_version: str,
    bounds: Bounds,
    moved: bool = False,
    now: datetime.datetime | None = None,
    on_sizes: Any = None,
) -> tuple[str, dict[str, Any]]:
    """Check ``path`` whole and rewrite it into ``work`` in our format: ``<name>`` (the zip)
    and ``<name>.json`` (its manifest, as stored beside it), with ``identity`` "moved" (the
    restore keeps the database's uuid and secret) or "copy" (it gives new ones). Returns
    the name and the manifest; Refused (and nothing left in ``work``) otherwise.
    ``on_sizes(unpacked)`` is called once the declared sizes are known (the program lowers
    its CPU limit there)."""
    label = path.name
    now = now or datetime.datetime.now(datetime.UTC)
    name = f"{now.strftime(STAMP_FORMAT)}-on-demand.zip"
    target = work / f".{name}.partial"
    try:
        with open_zip(path, label, bounds) as zf:
            manifest = read_manifest(zf, label, bounds)
            check_version(manifest, label, tenant, odoo_version)
            unpacked = sum(i.file_size for i in zf.infolist())
            if on_sizes is not None:
                on_sizes(unpacked)
            written = _rewrite(zf, target, label, bounds, bounds.max_unpacked(path.stat().st_size))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, OSError) as exc:
        target.unlink(missing_ok=True)
        raise Refused(f"zip: {label} is corrupt or truncated ({exc})") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    dump_sha, dump_size, files, tables = written
    ours: dict[str, Any] = {key: manifest[key] for key in ODOO_FIELDS if key in manifest}
    ours.update(
        {
            "saasodoo": dumpformat.FORMAT_VERSION,
            "tenant": tenant,
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kind": "on-demand",
            "odoo_version": odoo_version,
            "imported_from": label,
            "identity": "moved" if moved else "copy",
            "sizes": {
                "dump": dump_size,
                "filestore": sum(f["size"] for f in files.values()),
                "filestore_files": len(files),
            },
            "checksums": {"dump.sql": dump_sha, "filestore": files},
            "tables": tables,
        }
    )
    try:
        with zipfile.ZipFile(target, "a", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            zf.writestr("manifest.json", json.dumps(ours, indent=4, sort_keys=True))
        ours["sizes"]["zip"] = target.stat().st_size
        (work / (name + ".json")).write_text(json.dumps(ours, sort_keys=True))
        target.rename(work / name)
    except BaseException:
        target.unlink(missing_ok=True)
        (work / (name + ".json")).unlink(missing_ok=True)
        raise
    return name, ours


def _rewrite(
    zf: zipfile.ZipFile, target: Path, label: str, bounds: Bounds, max_unpacked: int
) -> tuple[str, int, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    unpacked = 0

    def count(block: bytes) -> bytes:
        nonlocal unpacked
        unpacked += len(block)
        if unpacked > max_unpacked:
            raise Refused(
                f"zip: {label} unpacks to more than {bounds.ratio} times its size "
                f"({max_unpacked} bytes)"
            )
        return block

    scanner = dumpformat.DumpScanner(bounds.max_line)
    checker = DumpChecker(bounds.max_line)
    digest = hashlib.sha256()
    size = 0
    files: dict[str, dict[str, Any]] = {}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as out:
        try:
            with zf.open("dump.sql") as src, out.open("dump.sql", "w", force_zip64=True) as dst:
                for block in iter(lambda: count(src.read(dumpformat.CHUNK)), b""):
                    dst.write(block)
                    digest.update(block)
                    scanner.feed(block)
                    checker.feed(block)
                    size += len(block)
            scanner.close()
            checker.close()
        except dumpformat.LineTooLong as exc:
            raise Refused(f"zip: {label}: dump.sql {exc}") from None
        if checker.problems:
            raise Refused(
                f"zip: {label}: dump.sql needs what the tenant's database role may not do: "
                + "; ".join(checker.problems)
            )
        for info in zf.infolist():
            if not info.filename.startswith(dumpformat.FILESTORE_PREFIX) or info.is_dir():
                continue
            relative = info.filename[len(dumpformat.FILESTORE_PREFIX) :]
            file_digest = hashlib.sha256()
            with zf.open(info) as src, out.open(info.filename, "w", force_zip64=True) as dst:
                for block in iter(lambda: count(src.read(dumpformat.CHUNK)), b""):
                    dst.write(block)
                    file_digest.update(block)
            files[relative] = {"size": info.file_size, "sha256": file_digest.hexdigest()}
    return digest.hexdigest(), size, files, scanner.result()


# -- the program -------------------------------------------------------------------------------


def limit(kind: int, value: int) -> None:
    """Lower a resource limit of this process (soft and hard: never raised again)."""
    import resource  # here: only the program sets limits, never a process importing this

    soft, hard = resource.getrlimit(kind)
    value = min(value, hard) if hard != resource.RLIM_INFINITY else value
    resource.setrlimit(kind, (value, value))


def main(argv: list[str] | None = None) -> int:
    import resource

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("mode", choices=("check", "prepare"))
    parser.add_argument("--zip", type=Path, required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--odoo-version", required=True)
    parser.add_argument("--max-bytes", type=int, required=True)
    parser.add_argument("--work", type=Path, help="prepare: where the rewritten zip goes")
    parser.add_argument("--moved", action="store_true", help="keep the database's identity")
    parser.add_argument(
        "--stamp", help=f"prepare: the backup's UTC second ({STAMP_FORMAT}; default: now)"
    )
    args = parser.parse_args(argv)
    bounds = Bounds.for_limit(args.max_bytes)
    size = args.zip.stat().st_size if args.zip.is_file() else 0
    limit(resource.RLIMIT_AS, bounds.memory)
    limit(resource.RLIMIT_CPU, bounds.cpu_seconds(bounds.work(args.mode, size)))
    limit(resource.RLIMIT_CORE, 0)
    if args.mode == "check":
        limit(resource.RLIMIT_FSIZE, 0)  # writes nothing but its answer (a pipe)
    else:
        limit(resource.RLIMIT_FSIZE, bounds.max_unpacked(size) + (64 << 20))

    def lower_cpu(unpacked: int) -> None:
        limit(resource.RLIMIT_CPU, bounds.cpu_seconds(unpacked))

    try:
        if args.mode == "check":
            result: dict[str, Any] = {
                "ok": True,
                "manifest": check(
                    args.zip, tenant=args.tenant, odoo_version=args.odoo_version, bounds=bounds
                ),
            }
        else:
            if args.work is None:
                parser.error("prepare needs --work")
            now = None
            if args.stamp:
                now = datetime.datetime.strptime(args.stamp, STAMP_FORMAT).replace(
                    tzinfo=datetime.UTC
                )
            name, manifest = prepare(
                args.zip, args.work, tenant=args.tenant, odoo_version=args.odoo_version,
                bounds=bounds, moved=args.moved, now=now, on_sizes=lower_cpu,
            )  # fmt: skip
            result = {"ok": True, "name": name, "identity": manifest["identity"]}
        code = 0
    except Refused as exc:
        result, code = {"ok": False, "refused": True, "error": str(exc)}, 3
    except MemoryError:
        result = {
            "ok": False,
            "refused": True,
            "error": f"zip: {args.zip.name} needs more than {bounds.memory} bytes of memory to "
            "check (the bound of its upload limit)",
        }
        code = 3
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
