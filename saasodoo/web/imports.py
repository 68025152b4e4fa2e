"""Blueprint ``web_import``: the tenant page's upload form (a backup zip to import).

Apart from the ``web`` blueprint because its body is a file: the ``web`` blueprint checks
every post's CSRF token from ``request.form``, which would parse the whole upload first (and
the app's body limit is small). Here the multipart body is read as a stream and its
``csrf_token`` field, which the form sends before the file, is checked before a byte of the
file is written (``saasodoo.api.imports.receive_form``).
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from saasodoo.api import imports
from saasodoo.api import services as ops
from saasodoo.api.services import services
from saasodoo.errors import InvalidInput, NotFound, SaasodooError
from saasodoo.web.views import current, login_required

bp = Blueprint("web_import", __name__)


@bp.post("/tenants/<tenant_id>/import")
@login_required
def tenant_import(tenant_id: str) -> ResponseReturnValue:
    svc, user = services(), current()
    expected = str(session.get("csrf", ""))
    try:
        imports.start_import(
            svc,
            user,
            tenant_id,
            lambda spool, limit: imports.receive(request, spool, limit, csrf=expected),
        )
    except imports.BadForm:
        raise  # no or wrong CSRF token, a broken body: the error page
    except InvalidInput as exc:
        flash(f"Import refused: {exc.message}")
    except SaasodooError as exc:
        if isinstance(exc, NotFound) and exc.message == ops.not_found(tenant_id).message:
            raise  # not the caller's tenant: the 404 page
        flash(f"Import refused: {exc.message}" if exc.http_status == 413 else exc.message)
    else:
        flash(f"Import of {tenant_id} started: Odoo stops while the backup is restored.")
    return redirect(url_for("web.tenant", tenant_id=tenant_id))
