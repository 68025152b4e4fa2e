"""Helm, through pyhelm3 and the helm binary (3.x or 4.x), with errors translated.

Values always go to helm on stdin (pyhelm3 does that), never on the command line. The
differences between the two helm majors that matter here are handled in this module
only: ``--atomic`` became ``--rollback-on-failure``; ``list --all`` is gone (helm 4
lists every status by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyhelm3
import yaml
from pyhelm3 import errors as helm_errors

from saasodoo.core.status import ReleaseInfo
from saasodoo.errors import (
    Conflict,
    FieldError,
    HelmFailure,
    InvalidInput,
    NotFound,
    SaasodooError,
    TransientClusterError,
)
from saasodoo.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Revision:
    revision: int
    status: str
    updated: datetime
    description: str
    chart: str = ""
    app_version: str = ""


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "helm failed"


@contextlib.contextmanager
def translate(what: str) -> Iterator[None]:
    """Map pyhelm3's errors into saasodoo's, naming the operation."""
    try:
        yield
    except SaasodooError:
        raise
    except helm_errors.ReleaseNotFoundError:
        raise NotFound(f"{what}: release not found") from None
    except helm_errors.ConnectionError as exc:
        raise TransientClusterError(f"{what}: cannot reach the cluster: {_stderr(exc)}") from None
    except helm_errors.Error as exc:
        stderr = _stderr(exc)
        lowered = stderr.lower()
        if "values don't meet the specifications of the schema" in lowered:
            raise InvalidInput(
                f"{what}: the values do not match the chart's schema",
                [FieldError("values", _schema_errors(stderr))],
            ) from None
        if "execution error at (" in lowered:
            # The chart's own checks (`fail`): values that do not fit together.
            reason = stderr.split("execution error at (", 1)[1].split("):", 1)[-1].strip()
            raise InvalidInput(
                f"{what}: the chart refused the values", [FieldError("values", reason)]
            ) from None
        if isinstance(exc, helm_errors.FailedToRenderChartError):
            raise HelmFailure(
                f"{what}: the chart failed to render: {_first_line(stderr)}"
            ) from None
        if "another operation (install/upgrade/rollback) is in progress" in lowered:
            raise Conflict(f"{what}: another helm operation is in progress") from None
        if any(
            s in lowered
            for s in (
                "connection refused",
                "i/o timeout",
                "tls handshake timeout",
                "unexpected eof",
            )
        ):
            raise TransientClusterError(f"{what}: {_first_line(stderr)}") from None
        raise HelmFailure(f"{what}: {_first_line(stderr)}") from None


def _stderr(exc: helm_errors.Error) -> str:
    return exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else str(exc)


def _schema_errors(stderr: str) -> str:
    lines = [ln.strip("- ").strip() for ln in stderr.splitlines()]
    detail = [ln for ln in lines if ln.startswith("at '")]
    return "; ".join(detail) or stderr.strip()


#: helm's flag that skips its client-side check of the rendered manifest against the
#: cluster's OpenAPI schema. That check fetches and parses the OpenAPI documents in every
#: helm process: about 1.2 of the 2.8 CPU-seconds of an upgrade of our chart (measured on the
#: simulated cluster, helm 4.3.1), the largest cost of a fleet upgrade on two cores. Nothing
#: is checked less for it: helm 4 sends every object with ``fieldValidation=Strict``
#: (``pkg/kube/client.go``, ``Update``/``Create`` defaults), so the API server refuses an
#: unknown or duplicate field itself; helm 3 (whose kube factory skips the client-side check
#: where the server validates fields, as every Kubernetes 1.27+ does) behaves the same with
#: and without the flag (helm/helm#12470). tests/cluster/test_helm_validation.py: an
#: unknown field is refused by the API server through this adapter. pyhelm3's own
#: ``disable_validation`` cannot be used: it extends the command with the flag's characters.
NO_CLIENT_VALIDATION = "--disable-openapi-validation"
#: The helm subcommands that take it.
SKIP_CLIENT_VALIDATION = ("upgrade", "install")
#: Set (for one ``Helm.install_or_upgrade`` call) when the release is known to exist: pyhelm3
#: always passes ``--install``, for which helm first reads and decodes the release's whole
#: history (every stored revision, ``action.History`` in ``pkg/cmd/upgrade.go``) only to see
#: whether there is one; the upgrade then reads it again. Measured on the bench cluster at ten
#: stored revisions: 1.78 CPU-s per ``helm upgrade`` without ``--install``, 2.03 with it.
_UPGRADE_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "saasodoo_helm_upgrade_only", default=False
)


#: How often a helm call waiting for a slot (``CountingCommand.slots``) looks again (seconds).
SLOT_POLL_SECONDS = 0.02


class CountingCommand(pyhelm3.Command):  # type: ignore[misc]
    """pyhelm3 (untyped) Command (given to ``pyhelm3.Client(command=...)``, its way to inject one),
    counting the helm processes it runs (the fleet's threads share it, so under a lock),
    giving ``upgrade`` and ``install`` ``NO_CLIENT_VALIDATION``, leaving ``--install`` out
    of an ``upgrade`` of a release known to exist (``_UPGRADE_ONLY``), and running at most as
    many helm processes at once as ``slots`` allows (when set)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls = 0
        self.lock = threading.Lock()
        #: Called with (action, seconds) after each helm process, whatever its outcome
        #: (``upgrade``, ``history``, ...: helm's subcommand); the operator's metrics.
        self.observer: Callable[[str, float], None] | None = None
        #: The bound on helm processes at once across threads (None: none); the operator's
        #: ``Settings.operator_helm_concurrency``.
        self.slots: threading.BoundedSemaphore | None = None

    async def run(self, command: list[str], input: bytes | None = None) -> bytes:  # noqa: A002
        if command and command[0] in SKIP_CLIENT_VALIDATION and NO_CLIENT_VALIDATION not in command:
            command = [command[0], NO_CLIENT_VALIDATION, *command[1:]]
        if command[:1] == ["upgrade"] and _UPGRADE_ONLY.get():
            command = [part for part in command if part != "--install"]
        slots = self.slots
        if slots is not None:
            # Polled, not a blocking acquire in a thread: a cancelled wait (the leadership
            # term ended) must not take a slot nobody gives back.
            while not slots.acquire(blocking=False):
                await asyncio.sleep(SLOT_POLL_SECONDS)
        try:
            with self.lock:
                self.calls += 1
            start = time.monotonic()
            try:
                out: bytes = await super().run(command, input)
            finally:
                if self.observer is not None:
                    action = str(command[0]) if command else "unknown"
                    self.observer(action, time.monotonic() - start)
            return out
        finally:
            if slots is not None:
                slots.release()


class Helm:
    """One helm binary, one kubeconfig; every call translated into saasodoo errors."""

    def __init__(self, settings: Settings) -> None:
        kubeconfig = settings.effective_kubeconfig()
        try:
            self.command = CountingCommand(
                executable=settings.helm_binary,
                kubeconfig=kubeconfig,
                kubecontext=settings.kube_context,
                default_timeout=settings.helm_timeout,
                history_max_revisions=settings.history_max,
            )
            self.client = pyhelm3.Client(self.command, executable=settings.helm_binary)
        except (AssertionError, OSError) as exc:
            raise HelmFailure(f"cannot run helm '{settings.helm_binary}': {exc}") from None
        self.major: int = self.client.version.major
        self.chart_ref = settings.chart
        self.chart_version = settings.chart_version
        self.default_timeout = settings.helm_timeout
        self._chart: pyhelm3.Chart | None = None
        self._chart_lock = threading.RLock()  # RLock: two tasks of one loop never deadlock
        self._schema: tuple[dict[str, Any], dict[str, Any]] | None = None
        self._local_version: tuple[int, str] | None = None  # (Chart.yaml's mtime, version)

    @property
    def calls(self) -> int:
        """Helm processes run so far (for the no-op fleet pass checks and benchmarks)."""
        return self.command.calls

    def local_schema(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(values.schema.json, values.yaml) of a chart directory; None for packaged charts."""
        if self._schema is None:
            self._schema = local_chart_schema(self.chart_ref) or ({}, {})
        return self._schema if self._schema[0] else None

    @property
    def version(self) -> str:
        return str(self.client.version)

    async def chart(self) -> pyhelm3.Chart:
        """The chart, loaded once (``helm show chart``). The operator's workers share this
        adapter from threads of their own, each with its own event loop: the first load is
        serialised under a thread RLock (a loop waiting on it blocks only its own thread, for
        one ``helm show chart`` at most), so ten workers starting together run one, not ten."""
        if self._chart is None:
            with self._chart_lock:
                if self._chart is None:
                    self._chart = await self._load_chart()
        return self._chart

    async def _load_chart(self) -> pyhelm3.Chart:
        ref: str | Path = self.chart_ref
        if not self.chart_ref.startswith(("oci://", "http://", "https://")):
            ref = Path(self.chart_ref)
            if not ref.exists():
                raise HelmFailure(f"chart {self.chart_ref} not found (SAASODOO_CHART)")
        with translate(f"load chart {self.chart_ref}"):
            return await self.client.get_chart(ref, version=self.chart_version)

    async def chart_version_string(self) -> str:
        return str((await self.chart()).metadata.version)

    async def digest_chart_version(self) -> str:
        """The chart version that goes into values digests, without running helm when the
        chart is a local directory (its Chart.yaml) or ``SAASODOO_CHART_VERSION`` is set."""
        if self.chart_version:
            return self.chart_version
        local = Path(self.chart_ref)
        if not self.chart_ref.startswith(("oci://", "http://", "https://")) and local.is_dir():
            # Read once per change of the file (a sweep asks for every tenant's digest).
            chart_yaml = local / "Chart.yaml"
            stamp = chart_yaml.stat().st_mtime_ns
            if self._local_version is None or self._local_version[0] != stamp:
                meta = yaml.safe_load(chart_yaml.read_text())
                self._local_version = (stamp, str(meta["version"]))
            return self._local_version[1]
        return await self.chart_version_string()

    async def install_or_upgrade(
        self,
        release: str,
        namespace: str,
        values: dict[str, Any],
        *,
        description: str,
        wait: bool = True,
        timeout: str | None = None,
        install: bool = True,
    ) -> Revision:
        """``helm upgrade --install`` of ``release`` to ``values`` (stdin), or, with
        ``install=False`` (the caller saw a stored revision of the release), a plain ``helm
        upgrade``, which skips helm's extra read of the whole history. The new revision;
        errors translated (``InvalidInput`` for the chart's refusals, ``HelmFailure``...)."""
        chart = await self.chart()
        # pyhelm3's Command, not Client.install_or_upgrade_release: the client parses the
        # release's whole manifest (and hooks) with PyYAML's pure-Python loader to build its
        # ReleaseRevision, about 0.5 s of CPU per upgrade on a shared core (profiled on a
        # fleet upgrade: the largest CPU cost of the operator's turn); helm's JSON answer
        # already says all a Revision needs.
        upgrade_only = _UPGRADE_ONLY.set(not install)
        try:
            with translate(f"helm upgrade {'--install ' if install else ''}{release}"):
                doc = await self.command.install_or_upgrade(
                    release,
                    chart.ref,
                    values,
                    atomic_arg="--atomic" if self.major < 4 else "--rollback-on-failure",
                    create_namespace=False,
                    description=description,
                    namespace=namespace,
                    repo=chart.repo,
                    timeout=timeout,
                    version=chart.metadata.version,
                    wait=wait,
                )
        finally:
            _UPGRADE_ONLY.reset(upgrade_only)
        info = doc.get("info") or {}
        return Revision(
            revision=int(doc["version"]),
            status=str(info.get("status", "unknown")),
            updated=_parse_time(info.get("last_deployed")) or datetime.min,
            description=str(info.get("description") or ""),
        )

    async def status(self, release: str, namespace: str) -> ReleaseInfo | None:
        """The newest revision, or None when there is no release."""
        try:
            with translate(f"helm status {release}"):
                doc = await self.command.status(release, namespace=namespace)
        except NotFound:
            return None
        info = doc.get("info", {})
        chart = doc.get("chart", {}).get("metadata", {})
        return ReleaseInfo(
            revision=int(doc["version"]),
            status=str(info.get("status", "unknown")),
            updated=_parse_time(info.get("last_deployed")),
            description=str(info.get("description", "")),
            chart=f"{chart.get('name', '')}-{chart.get('version', '')}".strip("-"),
            app_version=str(chart.get("appVersion", "")),
        )

    async def history(self, release: str, namespace: str) -> list[Revision]:
        with translate(f"helm history {release}"):
            docs = await self.command.history(release, namespace=namespace)
        return [
            Revision(
                revision=int(d["revision"]),
                status=str(d["status"]),
                updated=_parse_time(d.get("updated")) or datetime.min,
                description=str(d.get("description", "")),
                chart=str(d.get("chart", "")),
                app_version=str(d.get("app_version", "")),
            )
            for d in docs
        ]

    async def rollback(
        self, release: str, namespace: str, revision: int | None, *, wait: bool = True
    ) -> None:
        with translate(f"helm rollback {release}"):
            await self.command.rollback(release, revision, namespace=namespace, wait=wait)

    async def test(self, release: str, namespace: str, *, timeout: str | None = None) -> None:
        """``helm test``: run the release's test hooks and wait for them (``timeout``, a
        duration such as ``5m``; default ``Settings.helm_timeout``). HelmFailure when a test
        fails or times out (its logs are the test pod's: helm does not collect a Job's)."""
        with translate(f"helm test {release}"):
            await self.command.run(
                ["test", release, "--namespace", namespace,
                 "--timeout", timeout or self.default_timeout]
            )  # fmt: skip

    async def uninstall(self, release: str, namespace: str, *, wait: bool = True) -> bool:
        """Uninstall; False when there was no release."""
        try:
            with translate(f"helm uninstall {release}"):
                await self.command.uninstall(release, namespace=namespace, wait=wait)
        except NotFound:
            return False
        return True

    async def get_values(
        self, release: str, namespace: str, revision: int | None = None
    ) -> dict[str, Any]:
        """The user-supplied values of the newest (or the given) revision."""
        with translate(f"helm get values {release}"):
            values = await self.command.get_values(release, namespace=namespace, revision=revision)
        return dict(values or {})

    async def get_manifest(
        self, release: str, namespace: str, revision: int | None = None
    ) -> list[dict[str, Any]]:
        """The objects of the newest (or the given) revision, as stored by Helm."""
        with translate(f"helm get manifest {release}"):
            docs = await self.command.get_resources(release, namespace=namespace, revision=revision)
            return [d for d in docs if isinstance(d, dict)]

    async def template(self, release: str, namespace: str, values: dict[str, Any]) -> str:
        """The manifests ``helm template`` renders (no cluster needed), as YAML."""
        chart = await self.chart()
        with translate(f"helm template {release}"):
            resources = await self.client.template_resources(
                chart, release, values, namespace=namespace
            )
        return yaml.safe_dump_all(list(resources), sort_keys=False)


def local_chart_schema(chart_ref: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(values.schema.json, values.yaml) of a chart directory, read without running helm;
    None for a packaged or OCI chart."""
    root = Path(chart_ref)
    schema, defaults = root / "values.schema.json", root / "values.yaml"
    if chart_ref.startswith(("oci://", "http://", "https://")) or not (
        root.is_dir() and schema.is_file() and defaults.is_file()
    ):
        return None
    return json.loads(schema.read_text()), yaml.safe_load(defaults.read_text()) or {}


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    text = str(value)
    # helm prints RFC 3339 with nanoseconds; Python takes microseconds.
    head, sep, frac = text.partition(".")
    if sep:
        digits = "".join(ch for ch in frac if ch.isdigit())
        rest = frac[len(digits) :]
        text = f"{head}.{digits[:6]}{rest}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
