"""CLI commands of the operator: ``operator run``, ``operator adopt``, ``operator install-crds``.
Wired into ``saasodoo.cli`` (which turns errors into exit codes)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import click

from saasodoo.cli.common import err, out
from saasodoo.settings import Settings


def settings_of(ctx: click.Context) -> Settings:
    return ctx.find_object(Settings)  # type: ignore[return-value]


@click.group()
def operator() -> None:
    """The OdooTenant operator: the one caller of helm for tenants."""


@operator.command("run")
@click.option("--install-crds", is_flag=True,
              help="Create or update the CustomResourceDefinitions first, OdooTenant and the "
              "request kinds (development; the platform chart installs them in a "
              "cluster).")  # fmt: skip
@click.option("--adopt", "adopt", is_flag=True,
              help="Before starting, make OdooTenants of the tenants made by saasodoo before "
              "the operator (see `operator adopt`).")  # fmt: skip
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info",
              show_default=True)  # fmt: skip
@click.option("--stats-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the operator's counters (reconciles, sweeps, informer requests, API "
              "requests, helm calls, resident memory) to this file as JSON every "
              "--stats-every seconds and at exit (benchmarks, debugging).")  # fmt: skip
@click.option("--stats-every", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between two writes of --stats-file.")  # fmt: skip
@click.pass_context
def operator_run(
    ctx: click.Context,
    install_crds: bool,
    adopt: bool,
    log_level: str,
    stats_file: Path | None,
    stats_every: float,
) -> None:
    """Reconcile every OdooTenant of SAASODOO_SYSTEM_NAMESPACE until SIGTERM or Ctrl-C.

    One replica leads (the Lease SAASODOO_OPERATOR_LEASE) and runs at most
    SAASODOO_OPERATOR_WORKERS reconciles and SAASODOO_OPERATOR_HELM_CONCURRENCY helm
    calls at once; others stand by. Exits 0
    after a graceful stop (the Lease released); a replica whose term ends stands by again.
    """
    from saasodoo.context import Context
    from saasodoo.operator.run import Operator, install_signal_handlers

    timestamped_logs(log_level)
    settings = settings_of(ctx)
    op = Operator(Context(settings), stats_file=stats_file, stats_every=stats_every)
    prepare(op, install_crds=install_crds, adopt=adopt)
    install_signal_handlers(op)
    err.print(f"operator {op.identity}: watching odootenants in {settings.system_namespace}")
    ctx.exit(op.run())


class _UTCFormatter(logging.Formatter):
    converter = time.gmtime  # type: ignore[assignment]


#: A long-running process's lines carry when they happened (UTC, milliseconds), as klog's
#: do: which step of a stop or a turn took the seconds is read from the log alone.
LOG_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s"


def timestamped_logs(level: str) -> None:
    """The root logger at ``level`` ("debug", "info", "warning"), each line prefixed with
    its UTC time, e.g. ``2026-12-07T21:50:01.123Z INFO saasodoo.operator.run: ...``."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in root.handlers:
        handler.setFormatter(_UTCFormatter(LOG_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S"))


def prepare(op: object, *, install_crds: bool, adopt: bool) -> None:
    from saasodoo.adapters.resources import apply_crd
    from saasodoo.core.operations import crd_manifests
    from saasodoo.operator.adopt import adopt_all
    from saasodoo.operator.run import Operator

    assert isinstance(op, Operator)
    if install_crds:
        for manifest in crd_manifests():
            apply_crd(op.ctx.kube, manifest)
        op.ctx.kube.create_namespace_if_absent(op.ctx.settings.system_namespace)
    if adopt:
        done = adopt_all(op.ctx, op.resources)
        err.print(f"adopted {len(done.adopted)} tenant(s)")


@operator.command("adopt")
@click.option("--dry-run", is_flag=True, help="Only say which tenants would be adopted.")
@click.pass_context
def operator_adopt(ctx: click.Context, dry_run: bool) -> None:
    """Make an OdooTenant of every tenant created before the operator (its record in
    namespace annotations) and move the record onto it (then off the namespace), without a
    helm call: its release revision does not change. Idempotent."""
    from saasodoo.adapters.resources import TenantResources
    from saasodoo.context import Context
    from saasodoo.operator.adopt import adopt_all

    settings = settings_of(ctx)
    context = Context(settings)
    done = adopt_all(context, TenantResources(context.kube, settings.system_namespace),
                     dry_run=dry_run)  # fmt: skip
    verb = "would adopt" if dry_run else "adopted"
    for tid in done.adopted:
        out.print(f"{verb} {tid}")
    for tid, why in done.failed.items():
        err.print(f"[red]not adopted[/] {tid}: {why}")
    moved = "records to move" if dry_run else "records moved"
    err.print(f"{len(done.adopted)} {verb}, {len(done.present)} already OdooTenants, "
              f"{len(done.moved)} {moved} onto them, {len(done.failed)} failed")  # fmt: skip
    if done.failed:
        ctx.exit(1)


@operator.command("install-crds")
@click.pass_context
def operator_install_crds(ctx: click.Context) -> None:
    """Create or update the CustomResourceDefinitions (server-side apply) and the platform
    namespace; waits until the API server serves them: OdooTenant and the one-shot
    operations' requests (OdooTenantBackup, OdooTenantRestore, OdooTenantVerify,
    OdooTenantRollback)."""
    from saasodoo.adapters.kube import Kube
    from saasodoo.adapters.resources import apply_crd
    from saasodoo.core.operations import crd_manifests

    settings = settings_of(ctx)
    kube = Kube(settings)
    for manifest in crd_manifests():
        apply_crd(kube, manifest)
        out.print(f"{manifest['metadata']['name']} established")
    kube.create_namespace_if_absent(settings.system_namespace)
