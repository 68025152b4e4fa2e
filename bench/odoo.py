"""``make bench-odoo``: the real Odoo 18 server with the chart's own files, timed.

Uses the harness of the `odoo` tests (tests/odoo/harness.py): a throw-away PostgreSQL server,
the Odoo tree from the tool cache, the chart rendered by helm 3 for a starter-plan tenant, its
pods run as local processes. Measures, on the reference database (a new tenant database after
`-i base`, plus 5 partners with non-ASCII names and 3 attachments, one of 1.5 MB):

1. the `odoo-init` init container on a new database (`-i base` + the admin user), and the
   `-i base` step alone as Odoo reports it ("Registry loaded in ...");
2. a backup: the backup CronJob's container (backup.py: pg_dump, filestore, checksums);
3. a restore: the Job `saasodoo backup restore` makes (restore.py: scratch copy, checks,
   switch), Odoo stopped;
4. a restore of the same zip through Odoo's own database manager (`/web/database/restore`).

    python bench/odoo.py [--runs 3] [--out docs/benchmarks.md]

Writes its section of docs/benchmarks.md (between the `odoo-bench` markers; bench/run.py keeps
it when it rewrites the file) and prints it.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sections import write_section  # noqa: E402
from tests.odoo import data as tb  # noqa: E402
from tests.odoo.harness import (  # noqa: E402
    Harness,
    Tenant,
    create_database,
    reachable_tree,
    run_restore_job,
    start_manager,
    tarball,
    unpack,
)
from tests.servers import running_pg  # noqa: E402
from tests.support import Tools  # noqa: E402

BEGIN = "<!-- odoo-bench: written by bench/odoo.py -->"
END = "<!-- /odoo-bench -->"


def timed(fn: Callable[[], object]) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.median(values):.1f} (min {min(values):.1f}, max {max(values):.1f})"


def run(runs: int, helm: Path) -> list[str]:
    rows: list[tuple[str, str, str]] = []
    with running_pg() as pg:
        root = Path(tempfile.mkdtemp(prefix="saasodoo-bench-odoo-"))
        root.chmod(0o755)
        tree_cached = unpack(tarball())
        harness = Harness(tree=reachable_tree(tree_cached, root), pg=pg, helm=helm, root=root)
        try:
            tenant = Tenant(harness, "bench", "admin@bench.example")
            create_database(pg, tenant.db)
            docs = tenant.render(config={"workers": 0})
            web = tenant.pod(docs)
            start = time.monotonic()
            done = web.run("odoo-init")
            seconds = time.monotonic() - start
            assert done.returncode == 0, done.stdout + done.stderr
            loaded = re.findall(r"Registry loaded in ([\d.]+)s", done.stdout + done.stderr)
            rows.append(("odoo-init, new database (-i base + admin user)", f"{seconds:.1f}", "1"))
            if loaded:
                rows.append(
                    (
                        'of which `-i base` (Odoo\'s "Registry loaded in")',
                        f"{float(loaded[0]):.1f}",
                        "1",
                    )
                )

            odoo = web.start()
            try:
                tb.add_data(odoo.url, tenant.db, tenant.email)
            finally:
                odoo.stop()

            backups: list[float] = []
            zips: list[Path] = []
            for _ in range(runs):
                backups.append(timed(lambda: zips.append(tb.back_up(tenant, docs))))
                time.sleep(1.1)  # backup names have a one-second stamp
            size = zips[-1].stat().st_size / 1e6
            rows.append((f"backup (backup.py; zip {size:.1f} MB)", summary(backups), str(runs)))

            restores: list[float] = []
            for _ in range(runs):
                restores.append(timed(lambda: restore(tenant, docs, zips[-1].name)))
            rows.append(("restore (restore.py, Odoo stopped)", summary(restores), str(runs)))

            odoo_manager = start_manager(harness, tb.MASTER)
            try:
                managed = [
                    timed(lambda i=i: tb.restore_in_manager(odoo_manager, zips[-1], f"copy{i}"))
                    for i in range(runs)
                ]
            finally:
                odoo_manager.stop()
            rows.append(("restore by Odoo's /web/database/restore", summary(managed), str(runs)))
        finally:
            harness.stop_all()
            shutil.rmtree(root, ignore_errors=True)
    cpu = os.cpu_count()
    return [
        BEGIN,
        "## Real Odoo 18: database init, backup, restore (seconds)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({cpu} cores, "
        f"{platform.machine()}, Python {platform.python_version()} for the tooling, "
        "`/usr/bin/python3` for Odoo), Odoo 18.0 (504b0670, the vendor tarball), PostgreSQL "
        f"{pg_major()} on 127.0.0.1 with fsync off (the tests' server), shared with other jobs. "
        "Produced by `make bench-odoo` (bench/odoo.py) on the reference database: a new "
        "tenant database after `-i base` (12 modules) plus 5 partners and 3 attachments (1.5 MB).",
        "",
        "| step | seconds | runs |",
        "|---|---|---|",
        *(f"| {step} | {value} | {n} |" for step, value, n in rows),
        "",
        END,
    ]


def restore(tenant: Tenant, docs: list[dict[str, Any]], zip_name: str) -> None:
    done = run_restore_job(tenant, docs, zip_name, drop_previous=True)
    assert done.returncode == 0, done.stdout + done.stderr


def pg_major() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parts[-3] if found else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of the backup and restores")
    parser.add_argument("--helm", type=Path, help="helm 3 binary (default: the pinned one)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    helm = args.helm or Tools.from_cache().helm(3)
    lines = run(args.runs, helm)
    write_section(Path(args.out), "odoo", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
