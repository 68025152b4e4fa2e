"""Shared fixtures: the pinned tools, the Kubernetes API the cluster tests run against, and
the local PostgreSQL server.

The ``kube`` fixture starts (or reuses) the simulated cluster once per session
through ``scripts/cluster.sh up``, unless ``SAASODOO_KUBECONFIG`` or ``KUBECONFIG``
names another cluster, which is then used as it is. Cluster tests never skip: if
no cluster can be had they fail and say why.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import pg_server  # noqa: F401  (a fixture: local PostgreSQL, shared)
from tests.support import ROOT, Cluster, Tools

LAYER_MARKERS = ("unit", "chart", "postgres", "auth", "odoo", "dns", "cluster", "realnode")
PLATFORM_TEST = "tests/realnode/test_platform_on_real_node.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test declares its layer, so `-m unit` and `-m cluster` split the suite exactly."""
    for item in items:
        layers = [m for m in LAYER_MARKERS if item.get_closest_marker(m)]
        if len(layers) != 1:
            raise pytest.UsageError(
                f"{item.nodeid}: needs exactly one of the markers {LAYER_MARKERS}, has {layers}"
            )
    # The platform's real-node test runs last (its tests in their order) and leaves the
    # platform installed: its pods' requests then narrow the real node for no other test, and
    # `make demo`, which CI runs next on the same cluster, upgrades it in place.
    last = [i for i in items if i.nodeid.startswith(PLATFORM_TEST)]
    items[:] = [i for i in items if not i.nodeid.startswith(PLATFORM_TEST)] + last


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: every test must really run."""
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        if reporter:
            reporter.write_line(
                f"CI: {skipped} test(s) skipped; in CI every test must run", red=True
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def tools() -> Tools:
    return Tools.from_cache()


@pytest.fixture(scope="session")
def kube(tools: Tools) -> Iterator[Cluster]:
    explicit = os.environ.get("SAASODOO_KUBECONFIG") or os.environ.get("KUBECONFIG")
    if explicit:
        yield Cluster(kubeconfig=Path(explicit), simulated=False, tools=tools)
        return
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "cluster.sh"), "up"],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/cluster.sh up failed with exit code {proc.returncode}")
    kubeconfig = Path(proc.stdout.strip().splitlines()[-1])
    yield Cluster(kubeconfig=kubeconfig, simulated=True, tools=tools)
