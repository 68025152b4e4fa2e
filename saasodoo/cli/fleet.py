"""CLI commands for reconcile and fleets: ``fleet ensure``, ``fleet upgrade``, ``export``,
``tenant usage``. Wired into ``saasodoo.cli`` (which turns errors into exit codes).

Exit codes: 0 when every tenant ended well (unmanaged and stalled tenants are reported, not
errors); 1 when one failed, was rolled back, or the fleet upgrade stopped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from saasodoo.cli.common import err, out
from saasodoo.cli.common import output_option as _output
from saasodoo.core.reconcile import parse_duration
from saasodoo.errors import InvalidInput
from saasodoo.settings import Settings

if TYPE_CHECKING:  # imported where used (a light `saasodoo --help`)
    from saasodoo.fleet import FleetSummary, ResourceFleet
    from saasodoo.reconciler import EnsureResult

OUTCOME_STYLE = {
    "unchanged": "dim",
    "installed": "green",
    "upgraded": "green",
    "recovered": "cyan",
    "rolled-back": "red",
    "unmanaged": "yellow",
    "stalled": "yellow",
    "busy": "magenta",
    "failed": "red",
    "gave-up": "red",
    "skipped": "yellow",
}


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.find_object(Settings)
    return settings if settings is not None else Settings()


def _selection(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("-l", "--selector", default=None, help="Label selector on tenant namespaces.")(
        f
    )
    return click.argument("tenant_ids", nargs=-1)(f)


@dataclass(frozen=True)
class _Bar:
    start: Callable[[int], None]
    advance: Callable[[EnsureResult], None]


@contextmanager
def _progress(what: str) -> Iterator[_Bar]:
    """A progress bar on a terminal (stderr); silent otherwise."""
    if not err.is_terminal:
        yield _Bar(lambda _total: None, lambda _result: None)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(what, total=None, last="")

        def start(total: int) -> None:
            progress.update(task, total=total)

        def advance(result: EnsureResult) -> None:
            progress.update(task, advance=1, last=f"{result.tenant_id}: {result.outcome.value}")

        yield _Bar(start, advance)


def _print_summary(summary: FleetSummary, output: str, title: str) -> None:
    if output == "json":
        click.echo(json.dumps(summary.to_dict(), indent=2))
        return
    table = Table(title=title, title_justify="left")
    for col in ("TENANT", "OUTCOME", "REVISION", "DETAIL"):
        table.add_column(col)
    for r in summary.results:
        style = OUTCOME_STYLE.get(r.outcome.value, "")
        table.add_row(
            r.tenant_id,
            f"[{style}]{r.outcome.value}[/]" if style else r.outcome.value,
            str(r.revision or "-"),
            r.detail,
        )
    out.print(table)
    counts = summary.to_dict()["counts"]
    line = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no tenants"
    out.print(f"summary: {line}")
    if summary.stopped:
        out.print(f"[bold red]stopped:[/] {summary.stopped}")


@click.group("fleet")
@click.option(
    "--local",
    is_flag=True,
    help="Break-glass: run helm in this process even when SAASODOO_OPERATOR is set.",
)
@click.pass_context
def fleet(ctx: click.Context, local: bool) -> None:
    """Reconcile and upgrade many tenants.

    With SAASODOO_OPERATOR=1 the operator runs helm: `ensure` asks it for a reconcile of
    each tenant now (annotations) and follows them; `upgrade` writes the target into the
    OdooTenants' specs in waves (canaries first) and follows their Ready condition.
    """
    ctx.meta["saasodoo.local"] = local


def _resource_fleet(ctx: click.Context, selector: str | None) -> ResourceFleet | None:
    settings = _settings(ctx)
    if not settings.operator or ctx.meta.get("saasodoo.local"):
        return None
    if selector:
        raise InvalidInput("--selector selects tenant namespaces; through the operator name "
                           "the tenants (TENANT_IDS)")  # fmt: skip
    from saasodoo.fleet import ResourceFleet
    from saasodoo.odootenants import OdooTenants

    return ResourceFleet(OdooTenants(settings))


def _follow_timeout(ctx: click.Context, timeout: str | None) -> float:
    return parse_duration(timeout or _settings(ctx).helm_timeout).total_seconds() + 120


@fleet.command("ensure")
@_selection
@click.option("--force", is_flag=True, help="Also reconcile unmanaged and stalled tenants to spec.")
@click.option("--concurrency", type=int, default=None, help="Tenants handled at once.")
@_output
@click.pass_context
def fleet_ensure(
    ctx: click.Context,
    tenant_ids: tuple[str, ...],
    selector: str | None,
    force: bool,
    concurrency: int | None,
    output: str,
) -> None:
    """Converge every tenant (or TENANT_IDS) to its spec.

    Absent releases are installed, changed specs or charts upgraded, locked releases
    recovered, failed upgrades rolled back; tenants in sync cost no helm call. Releases
    changed by hand (unmanaged) are reported and left alone unless --force.
    """
    objects = _resource_fleet(ctx, selector)
    if objects is not None:
        summary = objects.request(
            list(tenant_ids) or None, force=force, timeout=_follow_timeout(ctx, None)
        )
        _print_summary(summary, output, "fleet ensure (through the operator)")
        if not summary.ok:
            ctx.exit(1)
        return
    from saasodoo.context import Context
    from saasodoo.fleet import Fleet

    f = Fleet(Context(_settings(ctx)))
    with _progress("ensure") as bar:
        summary = asyncio.run(
            f.ensure_all(
                list(tenant_ids) or None,
                selector=selector,
                force=force,
                concurrency=concurrency,
                on_plan=bar.start,
                on_result=bar.advance,
            )
        )
    _print_summary(summary, output, "fleet ensure")
    if not summary.ok:
        ctx.exit(1)


@fleet.command("upgrade")
@_selection
@click.option("--chart", default=None, help="New chart (directory, .tgz or oci:// reference).")
@click.option("--chart-version", default=None, help="Version of the new chart.")
@click.option(
    "--odoo-version",
    default=None,
    help="The tenants' Odoo series (another series than a tenant's is refused: Odoo does not "
    "migrate a database across majors).",
)
@click.option(
    "--odoo-image-tag",
    default=None,
    help="Pin this Odoo image tag (odoo.image.tag), a build of the tenants' series.",
)
@click.option(
    "--canaries",
    type=int,
    default=1,
    show_default=True,
    help="Tenants upgraded first, one by one, when none is labelled saasodoo.dev/canary=true.",
)
@click.option(
    "--max-failures",
    type=int,
    default=0,
    show_default=True,
    help="Stop once more tenants than this have failed.",
)
@click.option("--concurrency", type=int, default=None, help="Upgrades at once after the canaries.")
@click.option(
    "--timeout",
    default=None,
    help="Helm timeout of each upgrade (e.g. 5m). "
    "Through the operator, a tenant whose upgrade is an update through odoo -u "
    "(a new image) is followed up to two hours more, until the update ends.",
)
@click.option("--force", is_flag=True, help="Also upgrade unmanaged and stalled tenants.")
@_output
@click.pass_context
def fleet_upgrade(
    ctx: click.Context,
    tenant_ids: tuple[str, ...],
    selector: str | None,
    chart: str | None,
    chart_version: str | None,
    odoo_version: str | None,
    odoo_image_tag: str | None,
    canaries: int,
    max_failures: int,
    concurrency: int | None,
    timeout: str | None,
    force: bool,
    output: str,
) -> None:
    """Move tenants to a new chart version or Odoo image: canaries first, then the rest."""
    if not (chart or chart_version or odoo_version or odoo_image_tag):
        raise InvalidInput("nothing to upgrade to: give --chart/--chart-version/--odoo-*")
    settings = _settings(ctx)
    objects = _resource_fleet(ctx, selector)
    if objects is not None:
        if chart or chart_version:
            raise InvalidInput(
                "through the operator, the chart is the operator's setting "
                "(SAASODOO_CHART/SAASODOO_CHART_VERSION of its process): change it there"
            )
        overrides = {"odoo": {"image": {"tag": odoo_image_tag}}} if odoo_image_tag else None
        from saasodoo.fleet import FleetTarget

        target = FleetTarget(odoo_version=odoo_version, overrides=overrides)
        summary = asyncio.run(
            objects.upgrade(
                target, list(tenant_ids) or None, canaries=canaries,
                max_failures=max_failures, concurrency=concurrency or settings.concurrency,
                timeout=_follow_timeout(ctx, timeout),
            )
        )  # fmt: skip
        _print_summary(summary, output, "fleet upgrade (through the operator)")
        if not summary.ok:
            ctx.exit(1)
        return
    updates: dict[str, Any] = {}
    if chart:
        updates["chart"] = chart
    if chart_version:
        updates["chart_version"] = chart_version
    from saasodoo.context import Context
    from saasodoo.fleet import Fleet, FleetTarget

    context = Context(settings.model_copy(update=updates))
    overrides = {"odoo": {"image": {"tag": odoo_image_tag}}} if odoo_image_tag else None
    target = FleetTarget(odoo_version=odoo_version, overrides=overrides)
    f = Fleet(context)
    with _progress("upgrade") as bar:
        summary = asyncio.run(
            f.upgrade(
                target,
                list(tenant_ids) or None,
                selector=selector,
                canaries=canaries,
                max_failures=max_failures,
                concurrency=concurrency,
                timeout=timeout,
                force=force,
                on_plan=bar.start,
                on_result=bar.advance,
            )
        )
    _print_summary(summary, output, "fleet upgrade")
    if chart or chart_version:
        err.print(
            "note: set SAASODOO_CHART/SAASODOO_CHART_VERSION to the new chart, or the next "
            "`fleet ensure` moves tenants back to the configured one"
        )
    if not summary.ok:
        ctx.exit(1)


@click.command("export")
@click.argument("tenant_id")
@click.option(
    "--flux", is_flag=True, help="Also write a Flux HelmRelease (helm.toolkit.fluxcd.io/v2)."
)
@click.option(
    "-d",
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the files here (default: print them to stdout).",
)
@click.option(
    "--source-kind",
    default="GitRepository",
    show_default=True,
    help="Flux source kind holding the chart (GitRepository, HelmRepository, Bucket).",
)
@click.option(
    "--odootenant",
    is_flag=True,
    help="Also write the tenant's OdooTenant (what a GitOps repository keeps when the operator "
    "applies tenants).",
)
@click.option("--source-name", default="saasodoo", show_default=True)
@click.option("--source-namespace", default="flux-system", show_default=True)
@click.pass_context
def export_cmd(
    ctx: click.Context,
    tenant_id: str,
    flux: bool,
    directory: Path | None,
    source_kind: str,
    odootenant: bool,
    source_name: str,
    source_namespace: str,
) -> None:
    """Write TENANT_ID's computed values file (and its OdooTenant, a Flux HelmRelease) for
    GitOps."""
    from saasodoo.context import Context
    from saasodoo.gitops import FluxSource, export

    context = Context(_settings(ctx))
    source = FluxSource(kind=source_kind, name=source_name, namespace=source_namespace)
    files = asyncio.run(export(context, tenant_id, flux=flux, odootenant=odootenant, source=source))
    if directory is None:
        click.echo("\n---\n".join(text.rstrip("\n") for text in files.values()))
        return
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
        err.print(f"wrote {directory / name}")


@click.command("usage")
@click.argument("tenant_id", required=False)
@_output
@click.pass_context
def usage(ctx: click.Context, tenant_id: str | None, output: str) -> None:
    """CPU and memory used by every tenant (or TENANT_ID), from metrics.k8s.io."""
    from saasodoo.context import Context
    from saasodoo.usage import tenant_usage

    usages = tenant_usage(Context(_settings(ctx)).kube, tenant_id)
    if output == "json":
        click.echo(json.dumps([u.to_dict() for u in usages], indent=2))
        return
    table = Table()
    for col in ("TENANT", "CPU (m)", "MEMORY (Mi)", "PODS"):
        table.add_column(col)
    for u in usages:
        table.add_row(
            u.tenant_id,
            f"{u.cpu_millicores:.1f}",
            f"{u.memory_bytes / 2**20:.1f}",
            str(len(u.pods)),
        )
    out.print(table)
