"""The one-shot operations through their request resources (``SAASODOO_OPERATOR=1``):
``backup create|restore|verify|import`` and ``tenant rollback`` write a request
(``saasodoo.operation_requests``) and, with ``--wait`` (the default), follow it, printing
each new phase and message to stderr; a failed request is the command's error (its exit
code: 3 when the tenant is gone, 2 for a spec saasodoo refuses, 1 otherwise).
``tenant operations TENANT`` lists the tenant's requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table

from saasodoo.cli.common import err, out, output_option, print_json, run, tenant_arg
from saasodoo.core.spec import check_tenant_id
from saasodoo.settings import Settings

if TYPE_CHECKING:  # imported where used (a light `saasodoo --help`)
    from saasodoo.backups import Backups
    from saasodoo.operation_requests import OperationRequests, RequestView

#: ``ctx.meta`` key: the command runs in-process (``--local``) whatever SAASODOO_OPERATOR says.
LOCAL = "saasodoo.local"


def requests_of(ctx: click.Context, backups: Backups | None = None) -> OperationRequests | None:
    """The operation requests when the operator runs one-shot operations
    (SAASODOO_OPERATOR and no ``--local`` on the command's group), else None (this process
    runs them)."""
    settings = ctx.find_object(Settings)
    if not isinstance(settings, Settings) or not settings.operator:
        return None
    if ctx.meta.get(LOCAL):  # click shares ``meta`` along the context chain
        return None
    from saasodoo.context import Context
    from saasodoo.operation_requests import OperationRequests

    return OperationRequests(Context(settings), backups=backups)


def ask(
    requests: OperationRequests,
    operation: str,
    tenant_id: str,
    *,
    wait: bool,
    output: str,
    timeout: float | None = None,
    staged: str | None = None,
    **spec: Any,
) -> RequestView:
    """Write the request (after its checks; ``staged``: the restore of a staged import) and,
    with ``wait``, follow it to its end; print it (table or JSON). Raises the failure of a
    Failed request (``operation_requests.failure``)."""
    check_tenant_id(tenant_id)
    if staged is not None:
        view = run(requests.request_import(tenant_id, staged, **spec))
    else:
        view = run(requests.create(operation, tenant_id, **spec))
    err.print(f"{view.kind} {view.name} created", markup=False)
    if wait:
        seconds = timeout or requests.default_timeout(operation, tenant_id)
        view = requests.wait(view.name, timeout=seconds, on_progress=progress)
    show(view, output)
    return view


def progress(view: RequestView) -> None:
    """One line per new phase or message, on stderr."""
    err.print(f"{view.name}: {view.phase}" + (f": {view.message}" if view.message else ""),
              markup=False)  # fmt: skip


def show(view: RequestView, output: str) -> None:
    if output == "json":
        print_json(view.to_dict())
        return
    d = view.to_dict()
    table = Table(show_header=False, box=None)
    for key in ("name", "kind", "tenant_id", "phase", "reason", "message", "backup", "revision",
                "attempts", "created_at", "completed_at"):  # fmt: skip
        table.add_row(f"[bold]{key}[/]", escape(str(d[key] if d[key] is not None else "-")))
    out.print(table)


def wait_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--wait/--no-wait",
        default=True,
        show_default=True,
        help="Follow the operation to its end (with SAASODOO_OPERATOR=1: the request's "
        "status; --no-wait prints the request and returns).",
    )(f)


@click.command("operations")
@tenant_arg
@output_option
@click.pass_context
def tenant_operations(ctx: click.Context, tenant_id: str, output: str) -> None:
    """TENANT's one-shot operation requests (OdooTenantBackup, -Restore, -Verify,
    -Rollback), oldest first, with their phase and message. The operator deletes finished
    ones after SAASODOO_OPERATOR_REQUEST_TTL_SECONDS."""
    settings = ctx.find_object(Settings) or Settings()
    from saasodoo.context import Context
    from saasodoo.operation_requests import OperationRequests

    views = OperationRequests(Context(settings)).list(check_tenant_id(tenant_id))
    if output == "json":
        print_json([v.to_dict() for v in views])
        return
    table = Table("NAME", "KIND", "PHASE", "BACKUP", "REV", "CREATED", "MESSAGE")
    for v in views:
        table.add_row(v.name, v.kind, v.phase, v.backup or "-", str(v.revision or "-"),
                      v.created_at, escape(v.message))  # fmt: skip
    out.print(table)
    err.print(f"{len(views)} operation(s)")
