"""Fixtures of the Odoo tests: the real Odoo 18 server (see harness.py) and tenants rendered
by the chart, each with its own database on the local PostgreSQL server."""

from __future__ import annotations

import concurrent.futures
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.backups.helpers import PgServer
from tests.odoo.data import MASTER, Backup, make_empty_filestore, make_with_data
from tests.odoo.harness import (
    Harness,
    OdooProcess,
    Tenant,
    create_database,
    reachable_tree,
    start_manager,
    tarball,
    unpack,
)
from tests.support import Tools


@pytest.fixture(scope="session")
def odoo_tree() -> Path:
    """The Odoo tree, unpacked and precompiled once into the tool cache."""
    return unpack(tarball())


@pytest.fixture(scope="session")
def harness(odoo_tree: Path, pg_server: PgServer, tools: Tools) -> Iterator[Harness]:
    root = Path(tempfile.mkdtemp(prefix="saasodoo-odoo-"))
    root.chmod(0o755)
    h = Harness(
        tree=reachable_tree(odoo_tree, root),
        pg=pg_server,
        helm=tools.helm(3),
        root=root,
    )
    try:
        yield h
    finally:
        h.stop_all()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class InitRuns:
    tenant: Tenant
    docs: list[dict[str, Any]]
    results: list[subprocess.CompletedProcess[str]]
    seconds: float
    #: web.base.url and report.url right after the init (an admin's login changes the first)
    params: dict[str, str]


@pytest.fixture(scope="session")
def initialized(harness: Harness) -> InitRuns:
    """Tenant `acme`: its database initialized by three Odoo pods starting at once, each
    running the rendered `odoo-init` init container (as three web replicas would)."""
    tenant = Tenant(harness, "acme", "owner@acme.example")
    create_database(harness.pg, tenant.db)
    docs = tenant.render(config={"workers": 0})
    pods = [tenant.pod(docs) for _ in range(3)]
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda p: p.run("odoo-init"), pods))
    seconds = time.monotonic() - start
    rows = harness.pg.psql(
        "SELECT key, value FROM ir_config_parameter WHERE key IN ('web.base.url', 'report.url')",
        tenant.db,
    )
    params = dict(line.split("|", 1) for line in rows.splitlines())
    return InitRuns(tenant, docs, results, seconds, params)


@pytest.fixture
def started() -> Iterator[list[OdooProcess]]:
    """Odoo processes a test starts; stopped when the test ends, whatever its outcome."""
    procs: list[OdooProcess] = []
    yield procs
    for proc in procs:
        proc.stop()


@pytest.fixture(scope="session")
def with_data(harness: Harness) -> Backup:
    """Tenant `globex` with records and files, backed up (see tests/odoo/data.py)."""
    return make_with_data(harness)


@pytest.fixture(scope="session")
def empty_filestore(harness: Harness) -> Backup:
    """Tenant `initech` with an empty filestore, backed up (see tests/odoo/data.py)."""
    return make_empty_filestore(harness)


@pytest.fixture(scope="session")
def manager(harness: Harness) -> Iterator[OdooProcess]:
    """A test-only Odoo with its database manager on (see harness.start_manager)."""
    odoo = start_manager(harness, MASTER)
    yield odoo
    odoo.stop()
