"""`helm test`: Odoo is ready for its users, proven by a signed-in request.

`/web/health` is `auth='none'` and answers 200 without touching the database, so an Odoo that
fails every signed-in page (e.g. Odoo of another series on this database: odoo/odoo#27446)
still looks healthy there. This check, run by the chart's `helm test` Job with the Odoo image's
Python (3.10+, standard library only):
1. waits for `GET /web/health` (200);
2. signs in as the admin through Odoo's JSON-RPC `/web/session/authenticate` (database, login
   and password from the environment; the password from the tenant's Secret). When Odoo
   refuses those credentials (AccessDenied: changed in Odoo since saasodoo set them), no
   session can be had: the check then proves that `/web/login` renders from the database
   (200, its form) and passes, saying so; any other error fails it;
3. with that session, reads the admin user (`/web/dataset/call_kw`, `res.users.read`) and
   opens the web client (`GET /web`, which must not send it back to the login page).
Exit 0 when all pass; otherwise exit 1 with one line saying which step failed and why.
Nothing secret is printed.

Environment: ODOO_URL (``http://<service>:8069``), ODOO_DB, ODOO_LOGIN, ODOO_PASSWORD,
CHECK_TIMEOUT (seconds to wait for /web/health, default 120).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import NoReturn

BASE = os.environ["ODOO_URL"].rstrip("/")
DB = os.environ["ODOO_DB"]
LOGIN = os.environ["ODOO_LOGIN"]
PASSWORD = os.environ["ODOO_PASSWORD"]
WAIT = float(os.environ.get("CHECK_TIMEOUT", "120"))
HTTP_TIMEOUT = 45  # 120 s of waiting + 3 requests stay within the Job's 300 s deadline


class Failed(Exception):
    """A step that failed; its text is the reason shown."""


def fail(step: str, why: str) -> NoReturn:
    """One line on stderr (PostgreSQL's errors span lines: `LINE 1: ...`, a caret), exit 1."""
    print(f"signed-in check failed: {step}: {' '.join(why.split())}", file=sys.stderr)
    sys.exit(1)


def request(path: str, body: dict | None = None, cookie: str = "") -> tuple[int, str, str, str]:
    """(status, final URL, body text, session cookie) of a GET (body None) or JSON POST."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method="POST" if data else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if cookie:
        req.add_header("Cookie", f"session_id={cookie}")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as res:
            text = res.read(2_000_000).decode("utf-8", "replace")
            return res.status, res.geturl(), text, session_of(res.headers.get_all("Set-Cookie"))
    except urllib.error.HTTPError as exc:
        text = exc.read(2_000).decode("utf-8", "replace")
        return exc.code, exc.geturl(), text, ""


def session_of(headers: list[str] | None) -> str:
    for header in headers or ():
        first = header.split(";", 1)[0].strip()
        if first.startswith("session_id="):
            return first[len("session_id=") :]
    return ""


def rpc(path: str, params: dict, cookie: str = "") -> tuple[object, str]:
    """JSON-RPC ``call`` of ``path``: (result, session cookie); Failed with Odoo's error."""
    status, _, text, session = request(
        path, {"jsonrpc": "2.0", "method": "call", "params": params, "id": 1}, cookie
    )
    if status != 200:
        raise Failed(f"HTTP {status}: {text[:300]!r}")
    try:
        answer = json.loads(text)
    except ValueError:
        raise Failed(f"not JSON: {text[:300]!r}") from None
    error = answer.get("error")
    if error:
        data = error.get("data") or {}
        raise Failed(f"{data.get('name') or error.get('message')}: {data.get('message', '')[:300]}")
    return answer.get("result"), session


#: The error Odoo answers a sign-in with when the password (or login) is not the user's.
ACCESS_DENIED = "odoo.exceptions.AccessDenied"


def login_page() -> NoReturn:
    """The admin's credentials were refused: they were changed in Odoo since saasodoo set
    them (a customer's own password, or another login). There is no session to prove with;
    what is proved instead is that Odoo renders a page from this database: `GET /web/login`
    (a QWeb view of the database, through its registry), 200 with its login form. Exit 0
    saying so, else fail."""
    try:
        status, url, text, _ = request("/web/login")
    except OSError as exc:
        fail("GET /web/login (the admin's credentials were refused)", str(exc))
    if status != 200 or 'name="login"' not in text or 'name="password"' not in text:
        fail("GET /web/login (the admin's credentials were refused)", f"HTTP {status} at {url}")
    print(
        f"ok: /web/health 200; the credentials of {LOGIN} were refused (changed in Odoo): "
        f"not signed in; /web/login {status} with its form, rendered from the database"
    )
    sys.exit(0)


def main() -> None:
    deadline = time.monotonic() + WAIT
    while True:
        try:
            status = request("/web/health")[0]
        except OSError as exc:  # connection refused, DNS not yet, timeout
            status, why = 0, str(exc)
        else:
            why = f"HTTP {status}"
        if status == 200:
            break
        if time.monotonic() > deadline:
            fail("GET /web/health", why)
        time.sleep(3)

    try:
        result, cookie = rpc(
            "/web/session/authenticate", {"db": DB, "login": LOGIN, "password": PASSWORD}
        )
    except (Failed, OSError) as exc:
        if str(exc).startswith(ACCESS_DENIED):
            login_page()
        fail(f"sign-in as {LOGIN} (/web/session/authenticate)", str(exc))
    uid = result.get("uid") if isinstance(result, dict) else None
    if not uid or not cookie:
        login_page()

    try:
        users, _ = rpc(
            "/web/dataset/call_kw/res.users/read",
            {"model": "res.users", "method": "read", "args": [[uid], ["login"]], "kwargs": {}},
            cookie,
        )
    except (Failed, OSError) as exc:
        fail("signed-in read of res.users", str(exc))
    if not (isinstance(users, list) and users and users[0].get("login") == LOGIN):
        fail("signed-in read of res.users", f"unexpected answer {str(users)[:200]}")

    try:
        status, url, _, _ = request("/web", cookie=cookie)
    except OSError as exc:
        fail("signed-in GET /web", str(exc))
    if status != 200 or "/web/login" in url:
        fail("signed-in GET /web", f"HTTP {status} at {url}")
    print(f"ok: /web/health 200; signed in as {LOGIN} (uid {uid}); read res.users; /web {status}")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - one line saying why, not a traceback
        fail("unexpected error", f"{type(exc).__name__}: {exc}")
