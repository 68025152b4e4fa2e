"""``saasodoo backup create|list|restore|import|prune|verify``: commands only parse options and call
``saasodoo.backups``. Mounted under the main group (``cli.add_command(backup)``), whose error
handling turns saasodoo errors into one line and an exit code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from saasodoo.cli.common import err, out, output_option, print_json, tenant_arg
from saasodoo.cli.requests import LOCAL, ask, requests_of, wait_option
from saasodoo.errors import FieldError, InvalidInput
from saasodoo.settings import Settings

if TYPE_CHECKING:  # imported where used (a light `saasodoo --help`)
    from saasodoo.backups import Backups


def timeout_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--timeout",
        type=click.FloatRange(min=1),
        default=None,
        help="Seconds to follow the Job (default: its activeDeadlineSeconds + 60); with "
        "SAASODOO_OPERATOR=1, the request (default: that deadline, a restore's 600 s for "
        "Odoo to start, plus 120 s).",
    )(f)


STORAGE_META = "saasodoo.backup.storage"


def _service(ctx: click.Context) -> Backups:
    settings = ctx.find_object(Settings) or Settings()
    s3_endpoint, pvc_root = ctx.meta.get(STORAGE_META, (None, None))
    from saasodoo.backups import Backups

    return Backups(settings, s3_endpoint=s3_endpoint, pvc_root=pvc_root)


def _json(data: Any) -> None:
    print_json(data)


@click.group()
@click.option(
    "--s3-endpoint",
    envvar="SAASODOO_BACKUP_S3_ENDPOINT",
    default=None,
    help="Reach the tenants' bucket at this URL instead of the one their pods use.",
)
@click.option(
    "--pvc-root",
    envvar="SAASODOO_BACKUP_PVC_ROOT",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the tenants' backup PVCs are mounted here (<root>/<tenant>), if anywhere.",
)
@click.option(
    "--local",
    is_flag=True,
    help="Break-glass: run create, restore, verify and import in this process even when "
    "SAASODOO_OPERATOR is set (a cluster whose operator is down).",
)
@click.pass_context
def backup(ctx: click.Context, s3_endpoint: str | None, pvc_root: Path | None, local: bool) -> None:
    """Backups of tenants: Odoo-format zips (dump.sql, filestore/, manifest.json).

    Backups, restores and verifications run in the tenant namespace as Jobs made from the
    tenant's backup CronJob; listing and pruning read the storage (S3) from here. With
    SAASODOO_OPERATOR=1, create, restore, verify and import write a request resource
    (OdooTenantBackup, OdooTenantRestore, OdooTenantVerify; an import stages the zip from
    here first) that the operator runs; --wait follows its status.
    """
    if not isinstance(ctx.find_object(Settings), Settings):
        ctx.obj = Settings()  # run on its own, not under the main `saasodoo` group
    ctx.meta[STORAGE_META] = (s3_endpoint, pvc_root)
    ctx.meta[LOCAL] = local


@backup.command("create")
@tenant_arg
@click.option(
    "--kind",
    type=click.Choice(["on-demand", "pre-update", "final"]),
    default="on-demand",
    show_default=True,
)
@timeout_option
@wait_option
@output_option
@click.pass_context
def backup_create(
    ctx: click.Context, tenant_id: str, kind: str, timeout: float | None, wait: bool, output: str
) -> None:
    """Back TENANT up now: a Job from its CronJob, followed until done."""
    requests = requests_of(ctx, _service(ctx))
    if requests is not None:
        if kind != "on-demand":
            why = "only on-demand backups are requested through the operator (or use --local)"
            raise InvalidInput("invalid option", [FieldError("--kind", why)])
        ask(requests, "backup", tenant_id, wait=wait, output=output, timeout=timeout)
        return
    result = _service(ctx).create(tenant_id, kind=kind, timeout=timeout)
    if output == "json":
        _json(result.to_dict())
        return
    job = result.job
    seconds = (job.finished - job.started).total_seconds()
    out.print(f"[green]backup job {job.name} completed[/] in {seconds:.0f}s")
    if result.backup:
        out.print(f"backup {result.backup.name} ({_human_size(result.backup.sizes.get('zip'))})")
    else:
        out.print("no new backup found in the storage (not readable from here, or none written)")


@backup.command("list")
@tenant_arg
@output_option
@click.pass_context
def backup_list(ctx: click.Context, tenant_id: str, output: str) -> None:
    """TENANT's complete backups, oldest first, with their manifest data. Backups on the
    tenant's PVC are listed by a short Job in its namespace (a few seconds)."""
    backups = _service(ctx).list_backups(tenant_id)
    if output == "json":
        _json([b.to_dict() for b in backups])
        return
    table = Table("name", "kind", "time (UTC)", "odoo", "size", "files", "tables")
    for b in backups:
        d = b.to_dict()
        table.add_row(
            b.name,
            b.kind,
            d["timestamp"],
            b.odoo_version,
            _human_size(b.sizes.get("zip")),
            str(b.sizes.get("filestore_files", "-")),
            str(d["tables"]),
        )
    out.print(table)


@backup.command("restore")
@tenant_arg
@click.argument("backup_name", metavar="[BACKUP]", required=False)
@click.option("--drop-previous", is_flag=True, help="Drop the data replaced (kept by default).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@timeout_option
@wait_option
@output_option
@click.pass_context
def backup_restore(
    ctx: click.Context,
    tenant_id: str,
    backup_name: str | None,
    drop_previous: bool,
    yes: bool,
    timeout: float | None,
    wait: bool,
    output: str,
) -> None:
    """Restore BACKUP (default: the newest) into TENANT: Odoo stops meanwhile; the current
    data is replaced only once the restored copy matches the backup's checksums."""
    if not yes:
        click.confirm(
            f"Restore {backup_name or 'the newest backup'} into '{tenant_id}' "
            "(Odoo is stopped meanwhile)?",
            abort=True,
        )
    requests = requests_of(ctx, _service(ctx))
    if requests is not None:
        ask(requests, "restore", tenant_id, wait=wait, output=output, timeout=timeout,
            backup=backup_name, drop_previous=drop_previous)  # fmt: skip
        return
    result = _service(ctx).restore(
        tenant_id, backup_name, drop_previous=drop_previous, timeout=timeout
    )
    if output == "json":
        _json(result.to_dict())
        return
    out.print(f"[green]restored[/] {tenant_id} from {backup_name or 'the newest backup'} "
              f"(job {result.job.name}); Odoo Ready again after {result.ready_seconds}s: "
              f"{result.scaled_back}")  # fmt: skip
    _print_previous(result.previous)


def _print_previous(previous: dict[str, Any] | None) -> None:
    if previous:
        out.print(f"the replaced data is kept as {previous.get('database')} "
                  f"({_human_size(previous.get('bytes'))}) until {previous.get('kept_until')}, "
                  "then dropped")  # fmt: skip


@backup.command("import")
@tenant_arg
@click.argument("zip_path", metavar="ZIP", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--drop-previous", is_flag=True, help="Drop the data replaced (kept by default).")
@click.option(
    "--moved",
    is_flag=True,
    help="The database moves here (no longer runs where it came from): keep its "
    "database.uuid and database.secret. By default an import is a copy and gets new ones.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@timeout_option
@wait_option
@output_option
@click.pass_context
def backup_import(
    ctx: click.Context,
    tenant_id: str,
    zip_path: Path,
    drop_previous: bool,
    moved: bool,
    yes: bool,
    timeout: float | None,
    wait: bool,
    output: str,
) -> None:
    """Import ZIP (a backup of Odoo's database manager, or another host's) into TENANT:
    checked (an Odoo backup of the tenant's Odoo version, intact, nothing its database role
    may not create), stored beside its backups, then restored like one of them."""
    if not zip_path.is_file():
        raise InvalidInput(f"ZIP: no file {zip_path}")
    if not yes:
        click.confirm(
            f"Replace the data of '{tenant_id}' by {zip_path.name} (Odoo is stopped meanwhile)?",
            abort=True,
        )
    requests = requests_of(ctx, _service(ctx))
    if requests is not None:
        staged = requests.stage_import(tenant_id, zip_path, moved=moved)
        err.print(f"{zip_path.name} checked and stored for {tenant_id} as {staged}")
        ask(requests, "restore", tenant_id, wait=wait, output=output, timeout=timeout,
            staged=staged, drop_previous=drop_previous)  # fmt: skip
        return
    result = _service(ctx).import_zip(
        tenant_id, zip_path, drop_previous=drop_previous, timeout=timeout, moved=moved
    )
    if output == "json":
        _json(result.to_dict())
        return
    out.print(f"[green]imported[/] {zip_path.name} into {tenant_id} as {result.backup} "
              f"(job {result.job.name}); Odoo Ready again after {result.ready_seconds}s: "
              f"{result.scaled_back}")  # fmt: skip
    _print_previous(result.previous)


@backup.command("verify")
@tenant_arg
@click.argument("backup_name", metavar="[BACKUP]", required=False)
@timeout_option
@wait_option
@output_option
@click.pass_context
def backup_verify(
    ctx: click.Context,
    tenant_id: str,
    backup_name: str | None,
    timeout: float | None,
    wait: bool,
    output: str,
) -> None:
    """Restore BACKUP (default: the newest) into a scratch database and check it; exit 1 if
    it fails. Odoo keeps running."""
    requests = requests_of(ctx, _service(ctx))
    if requests is not None:
        ask(requests, "verify", tenant_id, wait=wait, output=output, timeout=timeout,
            backup=backup_name)  # fmt: skip
        return
    result = _service(ctx).verify(tenant_id, backup_name, timeout=timeout)
    if output == "json":
        _json(result.to_dict())
    elif result.ok:
        out.print(f"[green]pass[/]: {backup_name or 'newest backup'} of {tenant_id} "
                  f"(job {result.job.name})")  # fmt: skip
    else:
        err.print(f"[bold red]fail[/]: {result.job.reason}")
    ctx.exit(0 if result.ok else 1)


@backup.command("prune")
@tenant_arg
@click.option("--keep-daily", type=click.IntRange(min=0), default=None)
@click.option("--keep-weekly", type=click.IntRange(min=0), default=None)
@click.option("--keep-monthly", type=click.IntRange(min=0), default=None)
@click.option("--keep-pre-update", type=click.IntRange(min=0), default=None)
@click.option("--keep-on-demand", type=click.IntRange(min=0), default=None)
@click.option("--keep-on-demand-days", type=click.IntRange(min=0), default=None)
@click.option("--dry-run", is_flag=True, help="Show what would be deleted.")
@output_option
@click.pass_context
def backup_prune(
    ctx: click.Context,
    tenant_id: str,
    keep_daily: int | None,
    keep_weekly: int | None,
    keep_monthly: int | None,
    keep_pre_update: int | None,
    keep_on_demand: int | None,
    keep_on_demand_days: int | None,
    dry_run: bool,
    output: str,
) -> None:
    """Apply the retention policy (default: the tenant's, from its CronJob) now."""
    service = _service(ctx)
    base = service.policy(tenant_id)
    from saasodoo.backups import Policy

    policy = Policy(
        daily=base.daily if keep_daily is None else keep_daily,
        weekly=base.weekly if keep_weekly is None else keep_weekly,
        monthly=base.monthly if keep_monthly is None else keep_monthly,
        pre_update=base.pre_update if keep_pre_update is None else keep_pre_update,
        on_demand=base.on_demand if keep_on_demand is None else keep_on_demand,
        on_demand_days=base.on_demand_days if keep_on_demand_days is None else keep_on_demand_days,
    )
    result = service.prune(tenant_id, policy, dry_run=dry_run)
    if output == "json":
        _json(result.to_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    out.print(f"kept {len(result.kept)}, {verb} {len(result.deleted)}")
    for name in result.deleted:
        out.print(f"  {verb} {name}")


@backup.command("finals")
@click.option("--prune", is_flag=True, help="Delete the kept final backups whose time is up.")
@click.option("--dry-run", is_flag=True, help="With --prune: show what would be deleted.")
@output_option
@click.pass_context
def backup_finals(ctx: click.Context, prune: bool, dry_run: bool, output: str) -> None:
    """Final backups of deleted tenants kept on their backup volumes, now claims in the
    platform's namespace (SAASODOO_SYSTEM_NAMESPACE) until SAASODOO_FINAL_BACKUP_DAYS have
    passed; the zip is at the volume's root. Volumes a deletion retained but could not keep
    yet are kept first."""
    settings = ctx.find_object(Settings) or Settings()
    from saasodoo.backups.finals import KeptFinals

    kept = KeptFinals(settings, _service(ctx).kube)
    deleted = kept.prune_kept(dry_run=dry_run) if prune else []
    finals = kept.list_kept()
    if output == "json":
        _json({"kept": finals, "deleted": deleted, "dry_run": dry_run})
        return
    table = Table("tenant", "zip", "claim", "volume", "deleted at", "kept until")
    for f in finals:
        table.add_row(f["tenant"], f["zip"], f["claim"], f["volume"], f["deleted_at"],
                      f["kept_until"])  # fmt: skip
    out.print(table)
    verb = "would delete" if dry_run else "deleted"
    for claim in deleted:
        out.print(f"  {verb} {claim}")


def _human_size(n: Any) -> str:
    from saasodoo.backups import human_size

    return human_size(n)
