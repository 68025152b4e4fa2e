"""`saasodoo operator run` as a real process for the tests (the program a user or the
platform's Deployment runs), in its own process group: stopping it by SIGKILL of the group
is what a node losing the pod does (helm children included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from saasodoo.cli import cli
from tests.support import Cluster


@dataclass
class OperatorProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    identity: str

    def kill(self) -> None:
        """SIGKILL the operator and its helm children (a pod's death: no clean-up)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (a graceful stop: work finishes or is cancelled, the Lease is released)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def operator_env(kube: Cluster, **settings: str) -> dict[str, str]:
    env = {
        **kube.env(),
        "SAASODOO_KUBECONFIG": str(kube.kubeconfig),
        "SAASODOO_HELM_BINARY": str(kube.tools.helm(4)),
        "SAASODOO_BASE_DOMAIN": "odoo.test",
        "SAASODOO_HELM_TIMEOUT": "5m",
        "PYTHONUNBUFFERED": "1",
    }
    env.update({f"SAASODOO_{k.upper()}": v for k, v in settings.items()})
    return env


def run_cli(
    kube: Cluster, settings: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``saasodoo ARGS`` in this process with the operator (``SAASODOO_OPERATOR=1``) and
    ``settings`` (as ``operator_env``): its exit code, stdout and stderr."""
    env = {**operator_env(kube, **settings), "SAASODOO_OPERATOR": "1"}
    result = CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


@contextmanager
def running_operator(
    kube: Cluster, log_dir: Path, identity: str, *, install_crds: bool = True, **settings: str
) -> Iterator[OperatorProcess]:
    """One operator process (stopped gracefully at the end, killed if it will not stop)."""
    log = log_dir / f"operator-{identity}.log"
    env = {**operator_env(kube, **settings), "POD_NAME": identity}
    program = Path(sys.executable).parent / "saasodoo"  # the console script of the venv
    args = [str(program), "operator", "run", "--log-level", "info"]
    if install_crds:
        args.append("--install-crds")
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            args, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    op = OperatorProcess(proc, log, identity)
    try:
        yield op
    finally:
        op.stop()


def delete_tenants(kube: Cluster, namespace: str) -> None:
    """Delete what tests left in an operator's system ``namespace``, without final backups,
    while the operator still runs (its finalizer would hold the namespace's deletion
    otherwise)."""
    for name in kube.kubectl("-n", namespace, "get", "odootenants", "-o", "name").split():
        kube.kubectl("-n", namespace, "patch", name, "--type=merge",
                     "-p", '{"spec": {"finalBackup": false}}')  # fmt: skip
    kube.kubectl("-n", namespace, "delete", "odootenants", "--all", "--timeout=180s")


def wait_for(probe, timeout: float, what: str, op: OperatorProcess | None = None,  # type: ignore[no-untyped-def]
             interval: float = 0.5):  # fmt: skip
    """Poll ``probe`` until truthy; on timeout, fail with the operator's log tail."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = op.output()[-4000:] if op else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tail}")
        time.sleep(interval)


def metric(port: int, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` with ``labels`` (all of them) at the operator's
    ``/metrics``, parsed by prometheus_client's parser; None when absent."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None
