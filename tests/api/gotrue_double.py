"""A wire-level double of Supabase Auth (GoTrue) for the integration tests.

WHY A DOUBLE: the real server (github.com/supabase/auth v2.189.0, commit
4fa66ba71d8c55b5c95cd5635766ed8bbae6d96a) cannot be fetched here: the Go module proxy
answers "403 Forbidden: This module version is not available" for every form of that
module version (commit, pseudo-version, @v/list). Until it can be built, this double
answers the same exchanges supabase-py makes, with the same paths (under ``/auth/v1``,
as Supabase's gateway exposes them), bodies, status codes and error codes as GoTrue
v2.18x, and signs ES256 tokens published through a JWKS, like a current project:

  POST /auth/v1/signup                       -> 200 session (autoconfirm) | 422 user_already_exists
                                                | 422 weak_password
  POST /auth/v1/token?grant_type=password    -> 200 session | 400 invalid_credentials
  POST /auth/v1/token?grant_type=refresh_token -> 200 session (token rotated)
                                                | 400 refresh_token_not_found
  GET  /auth/v1/user                         -> 200 user | 401/403 bad_jwt
  POST /auth/v1/logout?scope=global          -> 204 (every refresh token revoked)
  GET  /auth/v1/.well-known/jwks.json        -> {"keys": [ES256 public key]}

It is a test fixture only; saasodoo never ships or runs it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

PREFIX = "/auth/v1"


@dataclass
class _User:
    id: str
    email: str
    password: str
    app_metadata: dict[str, Any] = field(default_factory=lambda: {"provider": "email"})
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


class GoTrueDouble:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = secrets.token_hex(8)
        self.users: dict[str, _User] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return self.url + PREFIX

    def start(self) -> GoTrueDouble:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def make_admin(self, email: str) -> None:
        """What a service-role call to the admin API does: set app_metadata."""
        with self.lock:
            self.users[email].app_metadata["saasodoo_admin"] = True

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}]}

    def _user_json(self, user: _User) -> dict[str, Any]:
        return {
            "id": user.id,
            "aud": "authenticated",
            "role": "authenticated",
            "email": user.email,
            "email_confirmed_at": user.created_at,
            "app_metadata": user.app_metadata,
            "user_metadata": {},
            "identities": [],
            "created_at": user.created_at,
            "updated_at": user.created_at,
            "is_anonymous": False,
        }

    def _session(self, user: _User) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user.id,
            "aud": "authenticated",
            "exp": now + 3600,
            "iat": now,
            "email": user.email,
            "phone": "",
            "app_metadata": user.app_metadata,
            "user_metadata": {},
            "role": "authenticated",
            "aal": "aal1",
            "session_id": str(uuid.uuid4()),
            "is_anonymous": False,
        }
        token = jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})
        refresh = secrets.token_urlsafe(12)
        self.refresh_tokens[refresh] = user.id
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": 3600,
            "expires_at": now + 3600,
            "refresh_token": refresh,
            "user": self._user_json(user),
        }

    def _bearer_user(self, header: str) -> _User | None:
        token = header.removeprefix("Bearer ").strip()
        try:
            claims = jwt.decode(
                token,
                self.key.public_key(),
                algorithms=["ES256"],
                audience="authenticated",
                issuer=self.issuer,
            )
        except jwt.PyJWTError:
            return None
        return next((u for u in self.users.values() if u.id == claims["sub"]), None)

    # -- the routes ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               body: dict[str, Any]) -> tuple[int, Any]:  # fmt: skip
        with self.lock:
            qs = "&".join(f"{k}={v[0]}" for k, v in query.items())
            self.requests.append((method, path + (f"?{qs}" if qs else "")))
            route = (method, path.removeprefix(PREFIX))
            if route == ("GET", "/.well-known/jwks.json"):
                return 200, self.jwks()
            if route == ("POST", "/signup"):
                return self._signup(body)
            if route == ("POST", "/token"):
                grant = query.get("grant_type", [""])[0]
                if grant == "password":
                    return self._password(body)
                if grant == "refresh_token":
                    return self._refresh(body)
                return _error(400, "validation_failed", "unsupported_grant_type")
            if route == ("GET", "/user"):
                user = self._bearer_user(headers.get("Authorization", ""))
                if user is None:
                    return _error(403, "bad_jwt", "invalid JWT: unable to parse or verify")
                return 200, self._user_json(user)
            if route == ("POST", "/logout"):
                user = self._bearer_user(headers.get("Authorization", ""))
                if user is None:
                    return _error(403, "bad_jwt", "invalid JWT: unable to parse or verify")
                for token in [t for t, uid in self.refresh_tokens.items() if uid == user.id]:
                    del self.refresh_tokens[token]
                return 204, None
            return _error(404, "not_found", "Not Found")

    def _signup(self, body: dict[str, Any]) -> tuple[int, Any]:
        email = str(body.get("email", "")).lower()
        password = str(body.get("password", ""))
        if len(password) < 6:
            return 422, {
                "code": 422,
                "error_code": "weak_password",
                "msg": "Password should be at least 6 characters.",
                "weak_password": {"reasons": ["length"]},
            }
        if email in self.users:
            return _error(422, "user_already_exists", "User already registered")
        user = _User(str(uuid.uuid4()), email, password)
        self.users[email] = user
        return 200, self._session(user)

    def _password(self, body: dict[str, Any]) -> tuple[int, Any]:
        user = self.users.get(str(body.get("email", "")).lower())
        if user is None or user.password != body.get("password"):
            return _error(400, "invalid_credentials", "Invalid login credentials")
        return 200, self._session(user)

    def _refresh(self, body: dict[str, Any]) -> tuple[int, Any]:
        user_id = self.refresh_tokens.pop(str(body.get("refresh_token", "")), None)
        user = next((u for u in self.users.values() if u.id == user_id), None)
        if user is None:
            return _error(
                400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found"
            )
        return 200, self._session(user)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else {}
                status, payload = double.handle(
                    method, url.path, parse_qs(url.query), self.headers, body
                )
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"code": status, "error_code": code, "msg": message}
