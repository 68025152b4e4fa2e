"""Helpers for tests that drive real binaries (helm 3 and 4, kubectl) against a cluster."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


@dataclass(frozen=True)
class Tools:
    """Paths of the pinned binaries, as installed by scripts/install-tools.sh. A tool is
    checked when a test asks for it (``path``), not before: `make test`'s node lane starts
    while the tools only the other lanes use still build (scripts/test.sh)."""

    paths: dict[str, Path]

    @classmethod
    def from_cache(cls) -> Tools:
        out = subprocess.run(
            ["bash", str(ROOT / "scripts" / "install-tools.sh"), "--env"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        paths = {}
        for line in out.splitlines():
            key, _, value = line.partition("=")
            paths[key] = Path(value)
        return cls(paths)

    def path(self, key: str) -> Path:
        """The binary ``key`` (SAASODOO_PROMTOOL, ...) names; fails when it is not built."""
        found = self.paths[key]
        if not found.exists():
            raise RuntimeError(f"pinned tool missing: {key}={found}; run scripts/install-tools.sh")
        return found

    def helm(self, major: int) -> Path:
        return self.path(f"SAASODOO_HELM{major}")

    @property
    def kubectl(self) -> Path:
        return self.path("SAASODOO_KUBECTL")


@dataclass
class Cluster:
    """The Kubernetes API under test and typed clients for it."""

    kubeconfig: Path
    simulated: bool
    tools: Tools
    _api: client.ApiClient | None = field(default=None, repr=False)

    @property
    def api(self) -> client.ApiClient:
        if self._api is None:
            self._api = config.new_client_from_config(config_file=str(self.kubeconfig))
        return self._api

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    def env(self) -> dict[str, str]:
        """The environment of a process run against this cluster. PYTHONPATH names this
        checkout, so a ``saasodoo`` console script started from the venv runs the code under
        test, not whichever checkout the venv's editable install points at (worktrees may
        share one venv)."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONPATH": str(ROOT)}

    def helm(self, major: int, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.tools.helm(major)), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"helm{major} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
            )
        return proc

    def helm_releases(self, major: int) -> list[dict[str, Any]]:
        # helm 3 hides failed/pending releases unless --all; helm 4 dropped the flag
        # and lists every status by default.
        every_status = ["--all"] if major == 3 else []
        out = self.helm(major, "list", "--all-namespaces", *every_status, "--output", "json").stdout
        releases: list[dict[str, Any]] = json.loads(out or "[]")
        return releases

    def kubectl(self, *args: str) -> str:
        return subprocess.run(
            [str(self.tools.kubectl), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout


def eventually(
    probe: Callable[[], T], *, timeout: float = 60, interval: float = 0.5, what: str = ""
) -> T:
    """Poll ``probe`` until it returns a truthy value; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: T = probe()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: last={last!r}")
        time.sleep(interval)
        last = probe()
    return last


def namespace_record(cluster: Cluster, tenant_id: str) -> dict[str, str]:
    """The tenant record's entries (``saasodoo.dev/spec``, ``operation``, ...) on the
    namespace of ``tenant_id``: none for a tenant with an OdooTenant, whose record is the
    object's ``status.record``."""
    from saasodoo.core.record import entries_of_annotations

    found = cluster.core.read_namespace(f"tenant-{tenant_id}")
    return entries_of_annotations(found.metadata.annotations or {})
