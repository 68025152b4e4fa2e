"""Blueprint ``web``: landing, sign-up, log-in, dashboard, create form, tenant page (with
its backups: "Back up now", a restore and a verification per backup, "Roll back"; the
upload form to import a zip posts to
``saasodoo.web.imports``).

The session is Flask's signed cookie (httpOnly, SameSite=Lax, Secure unless configured
otherwise) holding the Supabase access and refresh tokens; every page verifies the access
token like the API does (a form post also has its session confirmed by the auth server) and
refreshes it when it expired. Every form post carries a CSRF
token tied to the session. Tenants are their OdooTenants; the one-shot operations are request
resources, shown as the tenant's pending and last operation; pages poll small JSON
endpoints. While no operator leads (``Services.leader``), every page says so.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from saasodoo.adapters.auth import AuthFailed, AuthUnavailable, Session, User
from saasodoo.api import services as ops
from saasodoo.api.backups import zip_attachment
from saasodoo.api.models import (
    CopyRefreshRequest,
    CopyRequest,
    RestoreRequest,
    RollbackRequest,
    TenantCreate,
    VerifyRequest,
)
from saasodoo.api.services import Services, services
from saasodoo.backups import human_size
from saasodoo.core.spec import ODOO_VERSIONS, validate_email
from saasodoo.errors import FieldError, InvalidInput, NotFound, SaasodooError
from saasodoo.odootenants import TenantView
from saasodoo.operation_requests import RequestView

bp = Blueprint("web", __name__)
F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


# -- session, CSRF ----------------------------------------------------------------------------


def _store(tokens: Session) -> None:
    session.clear()
    session["at"] = tokens.access_token
    session["rt"] = tokens.refresh_token
    session["email"] = tokens.account.email
    session["csrf"] = secrets.token_urlsafe(24)


def web_user() -> User | None:
    """The signed-in user, refreshing an expired access token once; None when signed out."""
    svc = services()
    token = session.get("at")
    if not token:
        return None
    live = request.method == "POST"  # form posts change things: the session must still live
    try:
        return svc.user(token, live=live)
    except AuthFailed:
        pass
    try:
        _store(svc.auth.refresh(str(session.get("rt", ""))))
        return svc.user(session["at"], live=live)
    except SaasodooError:
        session.clear()
        return None


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if web_user() is None:
            if request.path.endswith(".json"):
                return jsonify({"status": "error", "message": "signed out"}), 401
            return redirect(url_for("web.login", next=request.path))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def current() -> User:
    user = web_user()
    assert user is not None  # login_required ran first
    return user


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    svc = services()
    return {
        "csrf_token": _csrf_token,
        "local_auth": svc.local_auth,
        "signed_in_email": session.get("email"),
        "operator_note": _operator_note(svc),
    }


def _operator_note(svc: Services) -> str:
    """What signed-in pages say while no operator is known to lead (changes wait for one);
    nothing before the Lease was first read."""
    if not session.get("at"):
        return ""
    state = svc.leader.state()
    if state.leading or state is ops.NOT_CHECKED:
        return ""
    return f"Changes are recorded but wait: {state.message}."


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return str(session["csrf"])


@bp.before_request
def _check_csrf() -> None:
    if request.method != "POST":
        return
    sent = request.form.get("csrf_token", "")
    expected = str(session.get("csrf", ""))
    # bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500)
    if not expected or not hmac.compare_digest(sent.encode(errors="replace"), expected.encode()):
        abort(400, "the form expired or did not come from this site; reload and try again")


def safe_redirect_target(target: str | None) -> str | None:
    """``target`` if a browser sent there stays on this site, else None.

    Judged by what a browser does with a ``Location`` value (the WHATWG URL parser): it
    drops tabs and newlines anywhere and strips leading/trailing control characters and
    spaces, reads ``\\`` as ``/`` in http(s) URLs, and takes ``//host`` (so ``/\\host``,
    ``/<tab>/host``) as another site; some servers and proxies decode ``%2f``/``%5c`` once more.
    So only a same-origin path is accepted: printable ASCII without spaces or backslashes,
    one leading ``/`` not followed by another ``/`` (literal or percent-encoded, however often
    decoded), no scheme, no host, no user info.
    """
    if not target or len(target) > 2048:
        return None
    if any(not ("!" <= ch <= "~") or ch == "\\" for ch in target):
        return None  # control characters, tabs, newlines, spaces, non-ASCII, backslashes
    decoded = target
    for _ in range(3):  # what one or two more rounds of percent-decoding would give
        if not decoded.startswith("/") or decoded[1:2] in ("/", "\\"):
            return None
        if "\\" in decoded or any(not ("!" <= ch <= "~") for ch in decoded):
            return None
        decoded = unquote(decoded)
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _safe_next(target: str | None) -> str:
    return safe_redirect_target(target) or url_for("web.dashboard")


def _field_errors(exc: InvalidInput) -> dict[str, str]:
    return {f.field.split(".")[0]: f.message for f in exc.fields}


# -- pages: public ------------------------------------------------------------------------------


@bp.get("/")
def index() -> ResponseReturnValue:
    return render_template("index.html")


def _credentials_form() -> tuple[str, str, dict[str, str]]:
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    errors: dict[str, str] = {}
    try:
        email = validate_email(email)
    except ValueError as exc:
        errors["email"] = str(exc)
    if not password:
        errors["password"] = "required"
    return email, password, errors


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("signup.html", errors={}, email="")
    email, password, errors = _credentials_form()
    if not errors:
        try:
            result = services().auth.sign_up(email, password)
        except InvalidInput as exc:
            errors = _field_errors(exc) or {"email": exc.message}
        except SaasodooError as exc:
            errors = {"form": exc.message}
        else:
            if result.session is None:
                flash("Account created: confirm your e-mail address, then log in.")
                return redirect(url_for("web.login"))
            _store(result.session)
            flash("Welcome! Create your first Odoo below.")
            return redirect(url_for("web.dashboard"))
    return render_template("signup.html", errors=errors, email=email), 422


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("login.html", errors={}, email="")
    email, password, errors = _credentials_form()
    if not errors:
        try:
            _store(services().auth.sign_in(email, password))
        except SaasodooError as exc:
            errors = {"form": exc.message}
        else:
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", errors=errors, email=email), 401


@bp.post("/logout")
def logout() -> Response:
    """End the session at the auth server with the cookie's tokens (an expired access token
    is replaced through the refresh token first), so a copy of the cookie signs in no more.
    When the auth server cannot be asked, the cookie is kept and the page says so: the
    session still lives there, so log-out must be tried again."""
    token, refresh = session.get("at"), session.get("rt")
    if token or refresh:
        try:
            services().sign_out(str(token or "") or None, str(refresh or "") or None)
        except AuthUnavailable as exc:
            flash(f"Not logged out: {exc.message}. Try again.")
            return redirect(url_for("web.index"))
        except AuthFailed:
            pass  # neither token is valid any more: no session is left to end
    session.clear()
    flash("Logged out.")
    return redirect(url_for("web.index"))


# -- pages: signed in ---------------------------------------------------------------------------


def shown(tenant: TenantView) -> dict[str, Any]:
    """What the pages show of a tenant: ``status`` and ``reason`` are the OdooTenant's
    kstatus (Current, InProgress, Failed, Terminating) and its Ready condition's message."""
    return {"id": tenant.id, "plan": tenant.plan, "odoo_version": tenant.odoo_version,
            "admin_email": tenant.admin_email, "url": tenant.url or "",
            "status": tenant.kstatus, "reason": tenant.message,
            "revision": tenant.revision, "suspended": tenant.suspended,
            "copy_of": tenant.copy_of, "expires_at": tenant.expires_at}  # fmt: skip


def _visible(svc: Services, user: User) -> list[dict[str, Any]]:
    return [shown(v) for v in ops.visible_views(svc, user)]


def _owned(svc: Services, user: User, tenant_id: str) -> dict[str, Any]:
    return shown(ops.owned_view(svc.objects, user, tenant_id))


@bp.get("/dashboard")
@login_required
def dashboard() -> ResponseReturnValue:
    return render_template("dashboard.html", tenants=_visible(services(), current()))


@bp.get("/dashboard/status.json")
@login_required
def dashboard_status() -> ResponseReturnValue:
    tenants = _visible(services(), current())
    return jsonify({"tenants": {t["id"]: {"status": t["status"], "reason": t["reason"]}
                                for t in tenants}})  # fmt: skip


def _create_form(svc: Services, **ctx: Any) -> str:
    plans = list(svc.tenants.ctx.catalog.plans.items())
    return render_template("tenant_new.html", plans=plans, versions=ODOO_VERSIONS, **ctx)


@bp.route("/tenants/new", methods=["GET", "POST"])
@login_required
def tenant_new() -> ResponseReturnValue:
    svc, user = services(), current()
    if request.method == "GET":
        form = {"admin_email": user.email or "", "plan": "starter", "odoo_version": "18.0"}
        return _create_form(svc, form=form, errors={})
    form = {k: request.form.get(k, "").strip() for k in ("id", "admin_email", "plan")}
    form["odoo_version"] = request.form.get("odoo_version", "18.0")
    try:
        body = ops.parse(TenantCreate, form)
        done = ops.start_create(svc, user, body)
    except InvalidInput as exc:
        return _create_form(svc, form=form, errors=_field_errors(exc)), 422
    except SaasodooError as exc:
        return _create_form(svc, form=form, errors={"form": exc.message}), exc.http_status
    flash(f"Creating {done.id}: this takes a moment.")
    return redirect(url_for("web.tenant", tenant_id=done.id))


def request_shown(view: RequestView) -> dict[str, Any]:
    """A request resource in the shape the page shows a job in (``kind``, ``state``,
    ``error.message``): its operation and phase, lower case."""
    error = {"message": view.message} if view.phase == "Failed" else None
    return {"kind": view.operation, "state": view.phase.lower(), "error": error,
            "name": view.name}  # fmt: skip


def _requests(svc: Services, user: User, tenant_id: str) -> list[RequestView]:
    try:
        return ops.tenant_requests(svc, user, tenant_id)
    except (NotFound, InvalidInput):
        return []


def _pending_job(svc: Services, user: User, tenant_id: str) -> dict[str, Any] | None:
    """The oldest of the tenant's requests not finished."""
    pending = [v for v in _requests(svc, user, tenant_id) if not v.done]
    return request_shown(pending[0]) if pending else None


def _last_job(svc: Services, user: User, tenant_id: str) -> dict[str, Any] | None:
    found = _requests(svc, user, tenant_id)
    return request_shown(found[-1]) if found else None


def _backups(svc: Services, user: User, tenant_id: str) -> tuple[list[dict[str, Any]], str]:
    """The tenant's backups for its page, or none and why."""
    try:
        return ops.list_backups(svc, user, tenant_id), ""
    except SaasodooError as exc:  # no backup CronJob, a PVC not mounted here, S3 down...
        return [], exc.message


def _domains(svc: Services, user: User, tenant_id: str) -> list[Any]:
    """The tenant's custom domains and their states, as the operator's status shows them."""
    try:
        states = ops.domain_states(svc, user, tenant_id)
    except NotFound:
        return []
    return [{**d, "challenge": d["record"]} for d in states]


bp.add_app_template_filter(human_size, "human_size")


@bp.get("/tenants/<tenant_id>")
@login_required
def tenant(tenant_id: str) -> ResponseReturnValue:
    svc, user = services(), current()
    job = _pending_job(svc, user, tenant_id)
    try:
        found = _owned(svc, user, tenant_id)
    except (NotFound, InvalidInput):
        if job is None:
            raise
        found = None
    backups, backups_note = _backups(svc, user, tenant_id) if found else ([], "")
    domains = _domains(svc, user, tenant_id) if found else []
    return render_template(
        "tenant.html",
        tenant_id=tenant_id,
        tenant=found,
        domains=domains,
        job=job,
        last_job=_last_job(svc, user, tenant_id),
        backups=backups,
        backups_note=backups_note,
        import_limit=svc.settings.import_max_bytes,
    )


@bp.get("/tenants/<tenant_id>/status.json")
@login_required
def tenant_status(tenant_id: str) -> ResponseReturnValue:
    svc, user = services(), current()
    job = _pending_job(svc, user, tenant_id)
    try:
        found = _owned(svc, user, tenant_id)
    except (NotFound, InvalidInput):
        status = "creating" if job and job["kind"] == "create" else "deleted"
        return jsonify({"status": status, "reason": "", "job": job})
    return jsonify(
        {"status": found["status"], "reason": found["reason"], "job": job,
         "revision": found["revision"], "last_job": _last_job(svc, user, tenant_id)}
    )  # fmt: skip


@bp.get("/tenants/<tenant_id>/backups/<backup>")
@login_required
def download_backup(tenant_id: str, backup: str) -> ResponseReturnValue:
    """The backup zip, streamed as an attachment (``ops.download_backup``); a backup that
    cannot be downloaded is said on the tenant's page."""
    try:
        size, content = ops.download_backup(services(), current(), tenant_id, backup)
    except SaasodooError as exc:
        if isinstance(exc, NotFound) and exc.message == ops.not_found(tenant_id).message:
            raise  # not the caller's tenant: the 404 page
        flash(exc.message)
        return redirect(url_for("web.tenant", tenant_id=tenant_id))
    return zip_attachment(tenant_id, backup, size, content)


@bp.post("/tenants/<tenant_id>/<action>")
@login_required
def tenant_action(tenant_id: str, action: str) -> ResponseReturnValue:
    svc, user = services(), current()
    try:
        if action in ("suspend", "resume"):
            ops.start_suspend(svc, user, tenant_id, action == "suspend")
        elif action == "backup":
            ops.start_backup(svc, user, tenant_id)
        elif action == "restore":
            name = request.form.get("backup", "").strip()
            body = ops.parse(RestoreRequest, {"backup": name} if name else {})
            ops.start_restore(svc, user, tenant_id, body)
        elif action == "verify":
            name = request.form.get("backup", "").strip()
            verify = ops.parse(VerifyRequest, {"backup": name} if name else {})
            ops.start_verify(svc, user, tenant_id, verify)
        elif action == "rollback":
            ops.start_rollback(svc, user, tenant_id, RollbackRequest())
        elif action == "copy":
            asked = {"to": request.form.get("to", "").strip(),
                     "expires_in": request.form.get("expires_in", "").strip() or None}  # fmt: skip
            copy = ops.start_copy(svc, user, tenant_id, ops.parse(CopyRequest, asked))
            flash(f"Making {copy.id}, a staging copy of {tenant_id} (neutralized: no mail, "
                  "crons off, payment providers in test mode).")  # fmt: skip
            return redirect(url_for("web.tenant", tenant_id=copy.id))
        elif action == "refresh":
            ops.start_refresh(svc, user, tenant_id, CopyRefreshRequest())
            flash(f"Refreshing {tenant_id} from its source: a fresh backup of it, restored "
                  "here and neutralized; this copy is stopped meanwhile.")  # fmt: skip
            return redirect(url_for("web.tenant", tenant_id=tenant_id))
        elif action == "verify-domain":
            ops.start_verify_domain(svc, user, tenant_id, request.form.get("domain", ""))
        elif action == "delete":
            if request.form.get("confirm", "").strip() != tenant_id:
                raise InvalidInput(
                    "not deleted", [FieldError("confirm", "type the tenant's id to confirm")]
                )
            final = request.form.get("no_final_backup", "") != "1"
            ops.start_delete(svc, user, tenant_id, keep_volumes=False, final_backup=final)
            flash(f"Deleting {tenant_id}.")
            return redirect(url_for("web.dashboard"))
        else:
            abort(404)
    except InvalidInput as exc:
        flash(f"{exc.message}: " + "; ".join(f.message for f in exc.fields))
    except SaasodooError as exc:
        if isinstance(exc, NotFound) and exc.message == ops.not_found(tenant_id).message:
            raise  # not the caller's tenant: the 404 page (a missing backup is flashed)
        flash(exc.message)
    else:
        flash(f"{action.capitalize()} of {tenant_id} started.")
    return redirect(url_for("web.tenant", tenant_id=tenant_id))
