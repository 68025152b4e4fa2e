"""The application: the Flask app factory that assembles the HTTP API (``saasodoo.api``) and
the web UI (``saasodoo.web``), above both.

Serve it with a production WSGI server. Tenant changes live on their OdooTenants; backups,
restores, verifications, imports, rollbacks and refreshes on their request resources; the
operator (``saasodoo operator run``) does the work. Nothing lives in the process's memory,
so any number of processes may serve, whatever ``SAASODOO_OPERATOR`` says (it concerns the
CLI)::

    waitress-serve --host 127.0.0.1 --port 8000 --threads 8 \
        --max-request-body-size 1074790400 --call saasodoo.app:create_app

(waitress's body limit a little above ``SAASODOO_API_IMPORT_MAX_BYTES``: uploaded imports.)

Settings: ``SAASODOO_*`` (cluster side, as for the CLI) and ``SAASODOO_API_*``
(``saasodoo.api.config.ApiSettings``: Supabase project, admins, CORS, cookies, backup
storage).
"""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path

from flask import Flask, Response, g, request

from saasodoo.adapters.auth import AuthBackend, SessionCheck, TokenVerifier, VerifierConfig
from saasodoo.adapters.local_auth import LocalDevAuth
from saasodoo.adapters.metrics import ApiMetrics, serve
from saasodoo.adapters.supabase import SupabaseAuth
from saasodoo.api import errors
from saasodoo.api.config import ApiSettings
from saasodoo.api.ratelimit import RateLimit, Slots
from saasodoo.api.services import Services
from saasodoo.backups import Backups
from saasodoo.context import Context
from saasodoo.odootenants import OdooTenants
from saasodoo.operation_requests import OperationRequests
from saasodoo.settings import Settings
from saasodoo.tenants import Tenants

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent / "web"
LOCAL_ISSUER = "saasodoo-local-dev/auth/v1"
CORS_HEADERS = "Authorization, Content-Type"
CORS_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"


def build_auth(api: ApiSettings) -> tuple[AuthBackend, TokenVerifier]:
    """The auth backend and verifier the settings ask for."""
    if api.mode == "local":
        log.warning("DEVELOPMENT ONLY: local auth mode (accounts in memory, no Supabase)")
        local = LocalDevAuth(secrets.token_urlsafe(32), LOCAL_ISSUER)
        return local, TokenVerifier(local.verifier_config())
    config = VerifierConfig(
        issuer=api.issuer,
        issuer_required=api.supabase_require_issuer,
        jwks_url=f"{api.issuer}/.well-known/jwks.json",
        hs256_secret=api.supabase_jwt_secret.get_secret_value() or None,
        leeway=api.token_leeway,
    )
    backend = SupabaseAuth(api.supabase_url, api.supabase_key.get_secret_value())
    return backend, TokenVerifier(config)


def create_app(
    api_settings: ApiSettings | None = None,
    settings: Settings | None = None,
    *,
    tenants: Tenants | None = None,
    auth: tuple[AuthBackend, TokenVerifier] | None = None,
    backups: Backups | None = None,
    objects: OdooTenants | None = None,
    requests: OperationRequests | None = None,
) -> Flask:
    """The app. ``tenants``, ``auth``, ``backups``, ``objects`` (the OdooTenants) and
    ``requests`` (the request resources) replace what the settings would make (tests)."""
    api = api_settings or ApiSettings()
    api.check()
    if api.mode == "supabase" and api.email_admins():
        log.warning(
            "SAASODOO_API_ADMINS names %d operator(s) by e-mail: such an entry counts only "
            "for tokens with email_verified=true, which Supabase adds only through a Custom "
            "Access Token Hook; name operators by user id instead (docs/api.md)",
            len(api.email_admins()),
        )
    backend, verifier = auth or build_auth(api)
    app = Flask(
        __name__,
        template_folder=str(WEB_DIR / "templates"),
        static_folder=str(WEB_DIR / "static"),
        static_url_path="/static",
    )
    app.config.update(
        SECRET_KEY=api.session_secret(),
        SESSION_COOKIE_NAME="saasodoo_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=api.cookie_secure,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=api.max_body_bytes,
    )
    tenants = tenants or Tenants(Context(settings or Settings()))
    backups = backups or Backups(
        tenants.ctx.settings,
        s3_endpoint=api.backup_s3_endpoint or None,
        pvc_root=api.backup_pvc_root,
    )
    app.extensions["saasodoo"] = Services(
        settings=api,
        tenants=tenants,
        auth=backend,
        verifier=verifier,
        sessions=SessionCheck(backend, api.session_check_seconds),
        backups=backups,
        verify_limit=RateLimit(
            "domain verifications", api.domain_verify_limit, api.domain_verify_window
        ),
        downloads=Slots("backup downloads", api.download_slots),
        objects=objects or OdooTenants(tenants.ctx.settings, ctx=tenants.ctx),
        requests=requests or OperationRequests(tenants.ctx, tenants=tenants, backups=backups),
    )
    errors.register(app)
    _register_blueprints(app)
    app.after_request(_security_headers)
    _instrument(app, tenants.ctx.settings.metrics_port)
    return app


def _instrument(app: Flask, port: int) -> None:
    """Count and time every request by its URL rule (``ApiMetrics``, in
    ``app.extensions["saasodoo_metrics"]``); with ``port`` (``SAASODOO_METRICS_PORT``) serve
    them there, beside the API's own port (never through its Ingress)."""
    metrics = ApiMetrics()
    app.extensions["saasodoo_metrics"] = metrics

    def start() -> None:
        g.saasodoo_started = time.monotonic()

    def observe(response: Response) -> Response:
        started = g.get("saasodoo_started")
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
            metrics.observe(request.method, rule, response.status_code,
                            time.monotonic() - started)  # fmt: skip
        return response

    app.before_request(start)
    app.after_request(observe)
    if port:
        try:
            serve(metrics.registry, port)
        except OSError as exc:  # another app of this process serves it already
            log.warning("metrics not served on :%d: %s", port, exc)


def _register_blueprints(app: Flask) -> None:
    from saasodoo.api import admin, auth, backups, meta, tenants
    from saasodoo.web import imports as web_imports
    from saasodoo.web import views

    for bp in (meta.bp, auth.bp, tenants.bp, backups.bp, admin.bp, views.bp, web_imports.bp):
        app.register_blueprint(bp)


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/api/"):
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"
        )
        return response
    origin = request.headers.get("Origin")
    from saasodoo.api.services import services

    if origin and origin in services().settings.cors_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Max-Age"] = "600"
        response.headers.add("Vary", "Origin")
    return response
