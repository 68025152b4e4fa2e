"""Import of a backup made elsewhere: a zip of Odoo's database manager (format zip) or another
host's, checked and rewritten into our backup format, so that the usual restore (restore.py:
scratch copy, checks against the manifest, switch; kill-safe) brings it in.

The checks and the rewrite never run in the calling process (the API's, the CLI's): they run
in a worker process, ``saasodoo.backups.importcheck`` (see there for every rule), under hard
limits of address space and CPU time derived from the upload limit, and a wall-clock timeout
here. A hostile zip (a bomb, a huge manifest, one endless dump line, millions of entries, a
deeply nested manifest) costs the caller a process start and a wait, and is refused with
InvalidInput naming the zip and the rule, before anything is stored:

- ``check``: the cheap checks (the zip's directory and manifest: size, entries, member names,
  declared unpacked size, an Odoo backup, the tenant's series), what the API answers at once;
- ``prepare``: all of them, every member read (CRC, unpacked size, what the dump asks of the
  tenant's role), and the rewrite into ``work``: the zip and its manifest (Odoo's fields
  kept, ours added: checksums of the dump and of every file, row counts and checksums per
  table, kind ``on-demand``, ``imported_from``, ``identity``: ``copy``, or ``moved`` when
  asked, see restore.py).

What holds whatever the dump check misses is the restore: restore.py loads the dump with psql
in restricted mode (``\\restrict``, a random key) as the tenant's role.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saasodoo.backups import importcheck
from saasodoo.backups.importcheck import MAX_IMPORT_BYTES, Bounds
from saasodoo.core.limits import LimitExceeded, load_json
from saasodoo.errors import InvalidInput, SaasodooError

__all__ = ["MAX_IMPORT_BYTES", "Bounds", "Prepared", "check", "prepare"]

log = logging.getLogger(__name__)

#: The worker program (run by its path: it imports only its siblings, the chart's files).
PROGRAM = Path(importcheck.__file__)
#: Seconds of wall-clock time per CPU second allowed to the worker (a busy machine), plus a
#: constant for its start.
WALL_PER_CPU = 3
WALL_BASE = 30
#: Most bytes of the worker's output read (its RESULT line is small by construction).
MAX_OUTPUT = 64 * 1024


@dataclass(frozen=True)
class Prepared:
    """A zip rewritten into our format, ready to store under ``name`` (+ ``name.json``, the
    file ``manifest_path``); ``identity`` "copy" or "moved"."""

    name: str
    path: Path
    manifest_path: Path
    identity: str

    @property
    def manifest(self) -> dict[str, Any]:
        """The rewritten manifest, read from ``manifest_path`` (ours: its size grows with the
        filestore's files; the import itself uploads the file without reading it)."""
        value = load_json(self.manifest_path.read_bytes(), self.manifest_path.name)
        return value if isinstance(value, dict) else {}


def check(
    source: Path, *, tenant: str, odoo_version: str, max_bytes: int = MAX_IMPORT_BYTES
) -> dict[str, Any]:
    """The cheap checks, in the worker: the manifest's Odoo version fields, or InvalidInput."""
    result = _run("check", source, tenant=tenant, odoo_version=odoo_version, max_bytes=max_bytes)
    manifest = result.get("manifest")
    return manifest if isinstance(manifest, dict) else {}


def prepare(
    source: Path,
    work: Path,
    *,
    tenant: str,
    odoo_version: str,
    max_bytes: int = MAX_IMPORT_BYTES,
    moved: bool = False,
    stamp: str | None = None,
) -> Prepared:
    """Check ``source`` whole and rewrite it into ``work``, in the worker; InvalidInput if
    refused (and nothing left in ``work``). ``stamp``: the backup's UTC second in the
    retention's ``STAMP_FORMAT`` (its name and manifest timestamp); None: the worker's now."""
    result = _run(
        "prepare", source, tenant=tenant, odoo_version=odoo_version, max_bytes=max_bytes,
        extra=["--work", str(work), *(["--moved"] if moved else []),
               *(["--stamp", stamp] if stamp else [])],
    )  # fmt: skip
    name = str(result.get("name") or "")
    if not name or "/" in name or not (work / name).is_file():
        raise SaasodooError(f"the import check of {source.name} wrote no zip")
    return Prepared(name, work / name, work / (name + ".json"), str(result.get("identity")))


def _run(
    mode: str,
    source: Path,
    *,
    tenant: str,
    odoo_version: str,
    max_bytes: int,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    """Run the worker and read its RESULT line. Its limits are its own (``Bounds.memory``,
    ``Bounds.cpu_seconds``); this process only waits, at most the wall-clock timeout."""
    label = source.name
    bounds = Bounds.for_limit(max_bytes)
    size = source.stat().st_size
    cpu = bounds.cpu_seconds(bounds.work(mode, size))
    wall = WALL_BASE + WALL_PER_CPU * cpu
    command = [
        sys.executable, "-I", "-S", "-B", str(PROGRAM), mode, "--zip", str(source),
        "--tenant", tenant, "--odoo-version", odoo_version, "--max-bytes", str(max_bytes),
        *(extra or []),
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=wall, check=False
        )
    except subprocess.TimeoutExpired:
        raise InvalidInput(
            f"zip: {label}: checking it took longer than {wall} s (the bound of its size)"
        ) from None
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise InvalidInput(
            f"zip: {label}: checking it took more than {cpu} s of CPU (the bound of its size)"
        )
    lines = proc.stdout[-MAX_OUTPUT:].decode(errors="replace").splitlines()
    results = [line.removeprefix("RESULT ") for line in lines if line.startswith("RESULT ")]
    try:
        result = load_json(results[-1], "the import check's result") if results else None
    except LimitExceeded:
        result = None
    if not isinstance(result, dict):
        tail = proc.stderr[-2000:].decode(errors="replace").strip()
        log.warning("the import check of %s failed (exit %s): %s", label, proc.returncode, tail)
        raise SaasodooError(
            f"the import check of {label} failed unexpectedly (exit {proc.returncode}); "
            "see the server's log"
        )
    if not result.get("ok"):
        message = str(result.get("error") or "refused")
        if result.get("refused"):
            raise InvalidInput(message)
        raise SaasodooError(message)
    return result
