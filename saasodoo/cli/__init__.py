"""The ``saasodoo`` command line. Commands only parse options and call the library.

Errors are one line on stderr and an exit code, one per error kind (2 invalid input,
3 not found, 4 conflict, 5 cluster unavailable, 6 helm failure, 7 not signed in, 8 backup
storage refused, 9 not allowed, 10 rate limited, 11 auth server unavailable, 1 anything
else), with a hint when it may pass if tried again (``retryable``); ``--debug`` shows
tracebacks. ``-o json`` prints machine-readable output on stdout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click
import yaml
from rich.markup import escape
from rich.table import Table

from saasodoo import __version__
from saasodoo.cli.common import err, out, output_option, print_columns, tenant_arg
from saasodoo.cli.common import print_json as _print_json
from saasodoo.cli.common import run as _run
from saasodoo.cli.requests import LOCAL, ask, requests_of, tenant_operations
from saasodoo.core.limits import MAX_DEPTH, MAX_SET_VALUE, LimitExceeded, check_depth
from saasodoo.core.reconcile import parse_duration
from saasodoo.core.spec import ODOO_VERSIONS, PERSONAL_FIELDS, TenantSpec, check_tenant_id
from saasodoo.errors import FieldError, InvalidInput, SaasodooError
from saasodoo.settings import Settings

if TYPE_CHECKING:  # imported where used: `saasodoo --help` and `tenant list` load less
    from saasodoo.context import Context
    from saasodoo.odootenants import OdooTenants, TenantView
    from saasodoo.tenants import Tenant, Tenants

T = TypeVar("T")


class SaasodooGroup(click.Group):
    """Turns saasodoo errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SaasodooError as exc:
            if _debug(ctx):
                raise
            hint = " (temporary: try again later)" if exc.retryable else ""
            err.print(f"[bold red]error:[/] {exc.message}{hint}", markup=True, soft_wrap=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - last line of defence for humans
            if _debug(ctx):
                raise
            err.print(
                f"[bold red]unexpected error:[/] {type(exc).__name__}: {exc} "
                "(run with --debug for the traceback)",
                markup=True,
                soft_wrap=True,
            )
            ctx.exit(1)


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug"))


@click.group(cls=SaasodooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="saasodoo")
@click.option("--debug", is_flag=True, help="Log helm and API calls; show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Control plane of a multi-tenant Odoo SaaS on Kubernetes.

    Settings come from SAASODOO_* environment variables (SAASODOO_KUBECONFIG,
    SAASODOO_HELM_BINARY, SAASODOO_BASE_DOMAIN, SAASODOO_PLANS_DIR, ...).
    """
    logging.basicConfig(
        level=logging.INFO if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = Settings()


def main() -> None:
    cli()


# -- helpers ---------------------------------------------------------------------------------


def context_of(ctx: click.Context) -> Context:
    """The context (settings, plans, adapters) of this invocation."""
    settings: Settings = ctx.find_object(Settings)  # type: ignore[assignment]
    from saasodoo.context import Context

    return Context(settings)


def tenants_of(ctx: click.Context) -> Tenants:
    """The lifecycle every tenant command calls, on the context of this invocation."""
    from saasodoo.tenants import Tenants

    return Tenants(context_of(ctx))


@contextmanager
def _progress(message: str) -> Iterator[None]:
    """A spinner on a terminal; silent otherwise (scripts read stdout and exit codes)."""
    if err.is_terminal:
        with err.status(message):
            yield
    else:
        yield


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors' aliases: a few bytes of ``*a`` references cannot expand into
    gigabytes once the values are merged and dumped ("billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not allowed")
        return super().compose_node(parent, index)


def _set_value(key: str, raw: str) -> Any:
    """One ``--set`` value, parsed as YAML within the bounds of ``core.limits``."""

    def bad(rule: str) -> InvalidInput:
        return InvalidInput("invalid --set", [FieldError(f"set.{key}"[:80], rule)])

    if len(raw) > MAX_SET_VALUE:
        raise bad(f"the value is longer than {MAX_SET_VALUE} characters")
    if not raw:
        return ""
    try:
        value = yaml.load(raw, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader
    except RecursionError:
        raise bad(f"the value nests deeper than {MAX_DEPTH} levels") from None
    except yaml.YAMLError as exc:
        raise bad(f"not valid YAML ({str(exc).splitlines()[0]})") from None
    try:
        return check_depth(value, "the value", MAX_DEPTH - key.count(".") - 1)
    except LimitExceeded as exc:
        raise bad(str(exc)) from None


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--set a.b=value`` pairs into nested values (value parsed as YAML, bounded)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        parts = key.split(".")
        if not sep or not all(parts):
            raise InvalidInput(
                "invalid --set", [FieldError("set", f"'{pair[:80]}' is not key=value")]
            )
        if len(parts) >= MAX_DEPTH:
            raise InvalidInput(
                "invalid --set", [FieldError("set", f"key nests deeper than {MAX_DEPTH} levels")]
            )
        node = values
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InvalidInput(
                    "invalid --set", [FieldError(f"set.{key}"[:80], f"'{part}' is already a value")]
                )
            node = child
        node[parts[-1]] = _set_value(key, raw)
    return values


def _print_tenant(tenant: Tenant, output: str) -> None:
    """A tenant seen in this process (``--local``, no operator), printed as ``_print_view``
    prints an OdooTenant: the same rows, the same JSON keys."""
    _print_status(tenant.to_dict(), output)


wait_option = click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait until the workloads are ready (helm --wait).",
)

# -- tenant ------------------------------------------------------------------------------------


@cli.group()
@click.option(
    "--local",
    is_flag=True,
    help="Break-glass: run the lifecycle (helm) in this process even when SAASODOO_OPERATOR "
    "is set (a cluster whose operator is down). Never while an operator runs.",
)
@click.pass_context
def tenant(ctx: click.Context, local: bool) -> None:
    """Create and manage tenants (one namespace + one Helm release each).

    With SAASODOO_OPERATOR=1, create, copy, update, suspend, resume, delete, status and list
    write and read OdooTenant objects and the operator runs helm; rollback writes an
    OdooTenantRollback request (operations lists a tenant's requests); --wait then follows
    the object's conditions. Otherwise (and with --local) they run helm in this process.
    """
    ctx.meta[LOCAL] = local


def _objects(ctx: click.Context) -> OdooTenants | None:
    """The OdooTenants when the operator applies tenant changes (SAASODOO_OPERATOR and no
    --local), else None (this process runs the lifecycle)."""
    settings: Settings = ctx.find_object(Settings)  # type: ignore[assignment]
    if not settings.operator or ctx.meta.get(LOCAL):
        return None
    from saasodoo.odootenants import OdooTenants

    return OdooTenants(settings)


def _follow(ctx: click.Context, objects: OdooTenants, tenant_id: str, *, gone: bool = False
            ) -> TenantView | None:  # fmt: skip
    """Wait for the operator (SAASODOO_HELM_TIMEOUT plus a margin), printing each new
    message of the OdooTenant's Ready condition to stderr."""
    settings: Settings = ctx.find_object(Settings)  # type: ignore[assignment]
    timeout = parse_duration(settings.helm_timeout).total_seconds() + 120

    def show(view: TenantView) -> None:
        if view.message:
            err.print(f"{tenant_id}: {view.message}", markup=False)

    return objects.wait(tenant_id, timeout=timeout, gone=gone, on_progress=show)


def _print_view(view: TenantView, output: str) -> None:
    _print_status(view.to_dict(), output)


def _print_status(d: dict[str, Any], output: str) -> None:
    """A tenant's ``to_dict`` (``TenantView``'s or, with ``--local``, ``Tenant``'s: the same
    keys): JSON, or its rows."""
    if output == "json":
        _print_json(d)
        return
    table = Table(show_header=False, box=None)
    for key in ("id", "url", "status", "ready", "reason", "message", "plan", "odoo_version",
                "revision", "generation", "observed_generation"):  # fmt: skip
        table.add_row(f"[bold]{key}[/]", escape(str(d[key] if d[key] is not None else "-")))
    for key in ("copy_of", "expires_at"):  # staging copies only
        if d[key]:
            table.add_row(f"[bold]{key}[/]", escape(str(d[key])))
    if d["custom_domains"]:
        table.add_row("[bold]domains[/]", escape(", ".join(d["custom_domains"])))
    out.print(table)


def _spec_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(
        [
            click.option("--email", "admin_email", required=True, help="Admin login and e-mail."),
            click.option("--plan", default="starter", show_default=True, help="Plan in values/."),
            click.option(
                "--odoo-version",
                type=click.Choice(ODOO_VERSIONS),
                default="18.0",
                show_default=True,
            ),
            click.option(
                "--domain",
                "domains",
                multiple=True,
                help="Extra custom domain, routed once verified (tenant domains, verify-domain).",
            ),
            click.option("--set", "sets", multiple=True, help="Chart value override a.b=value."),
            click.option("--admin-login", help="Admin login if not --email (e-mail-like)."),
            click.option("--company", "company_name", help="Company name of the new database."),
            click.option("--language", help="Odoo language code installed, e.g. fr_FR."),
            click.option("--country", help="Company country, ISO 3166-1 alpha-2 (e.g. FR)."),
            click.option("--timezone", help="Admin's IANA time zone, e.g. Europe/Paris."),
        ]
    ):
        f = decorator(f)
    return f


def _spec(
    tenant_id: str,
    admin_email: str,
    plan: str,
    odoo_version: str,
    domains: tuple[str, ...],
    sets: tuple[str, ...],
    personal: dict[str, str | None],
) -> TenantSpec:
    """The spec of the options; ``personal``: the personalization options
    (``PERSONAL_FIELDS``), those not given left out."""
    return TenantSpec.parse(
        {
            "id": tenant_id,
            "admin_email": admin_email,
            "plan": plan,
            "odoo_version": odoo_version,
            "custom_domains": list(domains),
            "overrides": _parse_sets(sets),
            **{k: v for k, v in personal.items() if v is not None and k in PERSONAL_FIELDS},
        }
    )


@tenant.command("create")
@tenant_arg
@_spec_options
@wait_option
@output_option
@click.pass_context
def tenant_create(
    ctx: click.Context,
    tenant_id: str,
    admin_email: str,
    plan: str,
    odoo_version: str,
    domains: tuple[str, ...],
    sets: tuple[str, ...],
    wait: bool,
    output: str,
    admin_login: str | None,
    company_name: str | None,
    language: str | None,
    country: str | None,
    timezone: str | None,
) -> None:
    """Create TENANT (its subdomain): namespace, admin Secret, helm install.

    The admin password is generated and kept in the Secret saasodoo-admin of the
    tenant's namespace; it is never printed or stored in Helm values.
    """
    spec = _spec(
        tenant_id, admin_email, plan, odoo_version, domains, sets,
        {"admin_login": admin_login, "company_name": company_name, "language": language,
         "country": country, "timezone": timezone},
    )  # fmt: skip
    objects = _objects(ctx)
    if objects is not None:
        view = _run(objects.create(spec))
        _print_view((_follow(ctx, objects, spec.id) if wait else None) or view, output)
        return
    tenants = tenants_of(ctx)
    with _progress(f"creating tenant {spec.id} (plan {spec.plan}, Odoo {spec.odoo_version})"):
        result = _run(tenants.create(spec, wait=wait))
    _print_tenant(result, output)
    if output == "table":
        err.print(
            f"admin password: kubectl -n {spec.namespace} get secret saasodoo-admin "
            "-o jsonpath='{.data.admin-password}' | base64 -d"
        )


@tenant.command("copy")
@tenant_arg
@click.option("--to", "new_id", required=True, help="Id of the new tenant, the copy.")
@click.option(
    "--backup", default=None, help="A backup of TENANT to copy (default: a fresh one, online)."
)
@click.option("--plan", default=None, help="The copy's plan (default: TENANT's).")
@click.option(
    "--expires-in",
    default=None,
    help="Delete the copy after this long, without a final backup (7d, 12h, 90m; at most 365d).",
)
@wait_option
@output_option
@click.pass_context
def tenant_copy(
    ctx: click.Context,
    tenant_id: str,
    new_id: str,
    backup: str | None,
    plan: str | None,
    expires_in: str | None,
    wait: bool,
    output: str,
) -> None:
    """Make a staging copy of TENANT: a new tenant from a backup of it, neutralized (no
    mail, crons off, payment providers in test mode, a banner), with its own identity,
    admin password (Secret saasodoo-admin of its namespace) and hosts.

    Needs the operator (SAASODOO_OPERATOR=1): an OdooTenant with spec.copyOf is written
    and followed until Ready. TENANT keeps serving throughout.
    """
    objects = _objects(ctx)
    if objects is None:
        raise InvalidInput(
            "staging copies are made by the operator: set SAASODOO_OPERATOR=1 with the "
            "operator running (there is no --local copy)"
        )
    view = _run(objects.copy(check_tenant_id(tenant_id), new_id, backup=backup, plan=plan,
                             expires_in=expires_in))  # fmt: skip
    err.print(f"OdooTenant {view.id} written: a copy of {tenant_id}", markup=False)
    _print_view((_follow(ctx, objects, view.id) if wait else None) or view, output)


@tenant.command("refresh")
@tenant_arg
@click.option(
    "--backup", default=None, help="A backup of the source to copy (default: a fresh one, online)."
)
@wait_option
@output_option
@click.pass_context
def tenant_refresh(
    ctx: click.Context, tenant_id: str, backup: str | None, wait: bool, output: str
) -> None:
    """Refresh the staging copy TENANT from its source ("refresh from production"): a fresh
    backup of the source (or --backup), restored into the copy as a copy, neutralized
    before its Odoo starts. The copy's data before is kept as a restore keeps it.

    Needs the operator (SAASODOO_OPERATOR=1): an OdooTenantRefresh is written (refused at
    once for a tenant that is no copy) and followed to its end.
    """
    requests = requests_of(ctx)
    if requests is None:
        raise InvalidInput(
            "staging copies are refreshed by the operator: set SAASODOO_OPERATOR=1 with the "
            "operator running (there is no --local refresh)"
        )
    ask(requests, "refresh", check_tenant_id(tenant_id), wait=wait, output=output, backup=backup)


@tenant.command("list")
@output_option
@click.pass_context
def tenant_list(ctx: click.Context, output: str) -> None:
    """List every tenant with its status (read from the cluster): Ready, kstatus and the
    Ready message of its conditions. With the operator the table is the OdooTenants' printer
    columns (as `kubectl get odootenants -o wide` reads them); without (or --local) the same
    conditions computed from its namespace, release and workloads. `-o json` gives each
    tenant whole, with the same keys in both modes."""
    objects = _objects(ctx)
    if objects is not None:
        if output == "json":
            _print_json([v.to_dict() for v in objects.list()])
            return
        rows = [v.to_dict() for v in objects.summaries()]
    else:
        tenants = tenants_of(ctx).list_tenants()
        if output == "json":
            _print_json([t.to_dict() for t in tenants])
            return
        rows = [t.to_dict() for t in tenants]
    print_columns(
        ["TENANT", "READY", "STATUS", "PLAN", "ODOO", "REV", "URL", "MESSAGE"],
        [[d["id"], d["ready"] or "-", d["status"], d["plan"], d["odoo_version"],
          str(d["revision"] or "-"), d["url"] or "-", d["message"]] for d in rows],
    )  # fmt: skip
    err.print(f"{len(rows)} tenant(s)")


@tenant.command("status")
@tenant_arg
@output_option
@click.pass_context
def tenant_status(ctx: click.Context, tenant_id: str, output: str) -> None:
    """Show TENANT's status (its conditions: Ready, kstatus, reason, message), release
    revision and URL; the same rows and `-o json` keys with the operator or without."""
    objects = _objects(ctx)
    if objects is not None:
        _print_view(objects.get(tenant_id), output)
        return
    _print_tenant(_run(tenants_of(ctx).get(check_tenant_id(tenant_id))), output)


@tenant.command("domains")
@tenant_arg
@output_option
@click.pass_context
def tenant_domains(ctx: click.Context, tenant_id: str, output: str) -> None:
    """Show TENANT's custom domains: verified (routed) or pending, with the DNS record
    that proves control (then: saasodoo tenant verify-domain TENANT DOMAIN)."""
    states = tenants_of(ctx).domain_states(check_tenant_id(tenant_id))
    if output == "json":
        _print_json([s.to_dict() for s in states])
        return
    table = Table("DOMAIN", "STATE", "RECORD TO CREATE")
    for state in states:
        record = ""
        if state.state in ("pending", "contested") and state.challenge:
            ch = state.challenge
            record = f'TXT {ch.txt_name} "{ch.txt_value}"  (or CNAME {ch.cname_target})'
            if state.state == "contested":
                record += "  (another tenant claims it without proof: yours wins it)"
        elif state.state == "unclaimed":
            record = "claimed on the next update or fleet ensure"
        elif state.state == "taken":
            record = "another tenant proved it: remove it (tenant update --domain ...)"
        style = "green" if state.state == "verified" else "yellow"
        table.add_row(state.host, f"[{style}]{state.state}[/]", record)
    out.print(table)
    err.print(f"{len(states)} custom domain(s)")


@tenant.command("verify-domain")
@tenant_arg
@click.argument("domain")
@wait_option
@output_option
@click.pass_context
def tenant_verify_domain(
    ctx: click.Context, tenant_id: str, domain: str, wait: bool, output: str
) -> None:
    """Check DOMAIN's DNS proof; once found it is verified and routed (helm upgrade).

    Exit code 4 when the record is not there yet (the message names it)."""
    with _progress(f"verifying {domain} for tenant {tenant_id}"):
        result = _run(tenants_of(ctx).verify_domain(check_tenant_id(tenant_id), domain, wait=wait))
    _print_tenant(result, output)


@tenant.command("update")
@tenant_arg
@click.option("--plan", default=None, help="New plan.")
@click.option(
    "--odoo-version",
    type=click.Choice(ODOO_VERSIONS),
    default=None,
    help="Only the tenant's own series: another is refused (Odoo does not migrate a database "
    "across majors; the error names the supported path).",
)
@click.option(
    "--domain", "domains", multiple=True, help="Replace the custom domains (new ones pending)."
)
@click.option("--clear-domains", is_flag=True, help="Remove every custom domain.")
@click.option("--set", "sets", multiple=True, help="Replace the overrides with a.b=value.")
@wait_option
@output_option
@click.pass_context
def tenant_update(
    ctx: click.Context,
    tenant_id: str,
    plan: str | None,
    odoo_version: str | None,
    domains: tuple[str, ...],
    clear_domains: bool,
    sets: tuple[str, ...],
    wait: bool,
    output: str,
) -> None:
    """Change TENANT's plan or configuration (helm upgrade)."""
    custom = [] if clear_domains else (list(domains) if domains else None)
    objects = _objects(ctx)
    if objects is not None:
        from saasodoo.tenants import update_changes

        changes = update_changes(plan=plan, odoo_version=odoo_version, custom_domains=custom,
                                 overrides=_parse_sets(sets) if sets else None)  # fmt: skip
        view = _run(objects.update(check_tenant_id(tenant_id), **changes))
        _print_view((_follow(ctx, objects, tenant_id) if wait else None) or view, output)
        return
    with _progress(f"updating tenant {tenant_id}"):
        result = _run(
            tenants_of(ctx).update(
                check_tenant_id(tenant_id),
                plan=plan,
                odoo_version=odoo_version,
                custom_domains=custom,
                overrides=_parse_sets(sets) if sets else None,
                wait=wait,
            )
        )
    _print_tenant(result, output)


@tenant.command("suspend")
@tenant_arg
@wait_option
@output_option
@click.pass_context
def tenant_suspend(ctx: click.Context, tenant_id: str, wait: bool, output: str) -> None:
    """Scale TENANT's Odoo to zero; database and files are kept."""
    objects = _objects(ctx)
    if objects is not None:
        view = objects.set_suspended(check_tenant_id(tenant_id), True)
        _print_view((_follow(ctx, objects, tenant_id) if wait else None) or view, output)
        return
    with _progress(f"suspending tenant {tenant_id}"):
        result = _run(tenants_of(ctx).suspend(check_tenant_id(tenant_id), wait=wait))
    _print_tenant(result, output)


@tenant.command("resume")
@tenant_arg
@wait_option
@output_option
@click.pass_context
def tenant_resume(ctx: click.Context, tenant_id: str, wait: bool, output: str) -> None:
    """Scale a suspended TENANT back up."""
    objects = _objects(ctx)
    if objects is not None:
        view = objects.set_suspended(check_tenant_id(tenant_id), False)
        _print_view((_follow(ctx, objects, tenant_id) if wait else None) or view, output)
        return
    with _progress(f"resuming tenant {tenant_id}"):
        result = _run(tenants_of(ctx).resume(check_tenant_id(tenant_id), wait=wait))
    _print_tenant(result, output)


@tenant.command("move")
@tenant_arg
@click.option(
    "--node-pool",
    required=True,
    help="KEY=VALUE of the nodes to run on (labelled and tainted so); '' for any node.",
)
@wait_option
@output_option
@click.pass_context
def tenant_move(
    ctx: click.Context, tenant_id: str, node_pool: str, wait: bool, output: str
) -> None:
    """Move TENANT's pods to another node pool (SAASODOO_NODE_POOL applies to new tenants
    only). Volumes do not move: see the README."""
    with _progress(f"moving tenant {tenant_id} to node pool {node_pool or '(any node)'}"):
        result = _run(
            tenants_of(ctx).move(check_tenant_id(tenant_id), node_pool=node_pool, wait=wait)
        )
    _print_tenant(result, output)


@tenant.command("history")
@tenant_arg
@output_option
@click.pass_context
def tenant_history(ctx: click.Context, tenant_id: str, output: str) -> None:
    """Show TENANT's release revisions (including changes made with helm directly)."""
    revisions = _run(tenants_of(ctx).history(check_tenant_id(tenant_id)))
    if output == "json":
        _print_json([r.__dict__ for r in revisions])
        return
    table = Table("REVISION", "UPDATED", "STATUS", "CHART", "APP", "DESCRIPTION")
    for r in revisions:
        table.add_row(
            str(r.revision),
            r.updated.strftime("%Y-%m-%d %H:%M:%S"),
            r.status,
            r.chart,
            r.app_version,
            r.description,
        )
    out.print(table)


@tenant.command("rollback")
@tenant_arg
@click.argument("revision", type=click.IntRange(min=1), required=False)
@wait_option
@output_option
@click.pass_context
def tenant_rollback(
    ctx: click.Context, tenant_id: str, revision: int | None, wait: bool, output: str
) -> None:
    """Roll TENANT back to REVISION (default: the previous one).

    Only the Kubernetes objects go back, never the database: a revision of another
    Odoo series or another PostgreSQL major or Debian release is refused. With
    SAASODOO_OPERATOR=1 an OdooTenantRollback is written (after the same checks) and the
    operator rolls back and makes that revision's spec the OdooTenant's.
    """
    requests = requests_of(ctx)
    if requests is not None:
        ask(requests, "rollback", check_tenant_id(tenant_id), wait=wait, output=output,
            revision=revision)  # fmt: skip
        return
    with _progress(f"rolling back tenant {tenant_id}"):
        result = _run(tenants_of(ctx).rollback(check_tenant_id(tenant_id), revision, wait=wait))
    _print_tenant(result, output)


@tenant.command("delete")
@tenant_arg
@click.option("--keep-volumes", is_flag=True, help="Keep the PersistentVolumes (Retain).")
@click.option(
    "--no-final-backup",
    is_flag=True,
    help="Delete without a final backup (otherwise one is taken, proven readable and kept "
    "outside the tenant, or the deletion is refused).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@wait_option
@output_option
@click.pass_context
def tenant_delete(
    ctx: click.Context,
    tenant_id: str,
    keep_volumes: bool,
    no_final_backup: bool,
    yes: bool,
    wait: bool,
    output: str,
) -> None:
    """Delete TENANT: a final backup (proven readable, kept outside the tenant), helm
    uninstall, then its namespace."""
    check_tenant_id(tenant_id)
    if not yes:
        click.confirm(
            f"Delete tenant {tenant_id} and {'keep' if keep_volumes else 'ERASE'} its data?",
            abort=True,
            err=True,
        )
    objects = _objects(ctx)
    if objects is not None:
        if keep_volumes:
            raise InvalidInput("--keep-volumes is not available through the operator yet; "
                               "use --local")  # fmt: skip
        objects.delete(tenant_id, final_backup=not no_final_backup)
        if wait:
            _follow(ctx, objects, tenant_id, gone=True)
            where = (" without a final backup" if no_final_backup else
                     f" (kubectl get events -n {objects.resources.namespace} names its final "
                     "backup)")  # fmt: skip
            err.print(f"tenant {tenant_id} deleted{where}")
        else:
            err.print(f"tenant {tenant_id}: deletion requested")
        return
    with _progress(f"deleting tenant {tenant_id}"):
        deleted = _run(
            tenants_of(ctx).delete(
                tenant_id,
                keep_volumes=keep_volumes,
                final_backup=not no_final_backup,
                wait=wait,
            )
        )
    if output == "json":
        _print_json(deleted.to_dict())
        return
    final = deleted.final_backup
    if final is None:
        err.print(f"tenant {tenant_id} deleted (no final backup)")
        return
    until = f", kept until {final.kept_until:%Y-%m-%d %H:%M} UTC" if final.kept_until else ""
    err.print(f"tenant {tenant_id} deleted; final backup {final.name} (checked) in "
              f"{final.location}{until}")  # fmt: skip


# -- render, plans, cluster ---------------------------------------------------------------------


@cli.command("render")
@tenant_arg
@_spec_options
@click.option("--values-only", is_flag=True, help="Print the computed values, not manifests.")
@click.pass_context
def render(
    ctx: click.Context,
    tenant_id: str,
    admin_email: str,
    plan: str,
    odoo_version: str,
    domains: tuple[str, ...],
    sets: tuple[str, ...],
    values_only: bool,
    admin_login: str | None,
    company_name: str | None,
    language: str | None,
    country: str | None,
    timezone: str | None,
) -> None:
    """Print TENANT's manifests (helm template) without touching a cluster."""
    spec = _spec(
        tenant_id, admin_email, plan, odoo_version, domains, sets,
        {"admin_login": admin_login, "company_name": company_name, "language": language,
         "country": country, "timezone": timezone},
    )  # fmt: skip
    tenants = tenants_of(ctx)
    if values_only:
        click.echo(yaml.safe_dump(tenants.values_for(spec).values, sort_keys=False), nl=False)
        return
    click.echo(_run(tenants.render(spec)), nl=False)


@cli.command("plans")
@output_option
@click.pass_context
def plans(ctx: click.Context, output: str) -> None:
    """List the plans in the plans directory."""
    catalog = context_of(ctx).catalog
    if output == "json":
        _print_json({n: p.model_dump() for n, p in catalog.plans.items()})
        return
    table = Table("PLAN", "DESCRIPTION")
    for name, plan in catalog.plans.items():
        table.add_row(name, plan.description)
    out.print(table)


@cli.group()
def cluster() -> None:
    """Look at the cluster the tenants run on."""


@cluster.command("distribution")
@output_option
@click.pass_context
def cluster_distribution(ctx: click.Context, output: str) -> None:
    """Tenants per node (where their pods run)."""
    dist = tenants_of(ctx).distribution()
    if output == "json":
        _print_json(dist)
        return
    table = Table("NODE", "TENANTS", "IDS")
    for node, ids in dist.items():
        table.add_row(node, str(len(ids)), ", ".join(ids))
    out.print(table)


# Command groups that live in their own modules.
from saasodoo.cli.backup import backup  # noqa: E402
from saasodoo.cli.fleet import export_cmd, fleet, usage  # noqa: E402
from saasodoo.cli.operator import operator  # noqa: E402

cli.add_command(backup)
cli.add_command(fleet)
cli.add_command(export_cmd)
cli.add_command(operator)
tenant.add_command(usage)
tenant.add_command(tenant_operations)

if __name__ == "__main__":  # pragma: no cover
    main()
