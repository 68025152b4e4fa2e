"""Supabase Auth through supabase-py: the production ``AuthBackend``
(``saasodoo.adapters.auth``), and the one table that translates Supabase's error codes into
saasodoo's errors (messages never carry secrets)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
from supabase import ClientOptions, create_client
from supabase_auth.errors import AuthApiError, AuthError
from supabase_auth.types import Session as SupabaseSession

from saasodoo.adapters.auth import (
    Account,
    AuthFailed,
    AuthUnavailable,
    Forbidden,
    RateLimited,
    Session,
    SignUp,
)
from saasodoo.errors import Conflict, FieldError, InvalidInput, SaasodooError

#: Supabase error codes → (saasodoo error class, message shown to the caller, field).
_SUPABASE_ERRORS: dict[str, tuple[type[SaasodooError], str, str | None]] = {
    "invalid_credentials": (AuthFailed, "invalid e-mail or password", None),
    "user_already_exists": (Conflict, "an account with this e-mail already exists", None),
    "email_exists": (Conflict, "an account with this e-mail already exists", None),
    "weak_password": (InvalidInput, "password too weak", "password"),
    "email_address_invalid": (InvalidInput, "invalid e-mail address", "email"),
    "email_address_not_authorized": (Forbidden, "this e-mail address may not sign up", None),
    "email_not_confirmed": (Forbidden, "confirm your e-mail address first", None),
    "signup_disabled": (Forbidden, "sign-up is disabled", None),
    "user_banned": (Forbidden, "this account is banned", None),
    "over_request_rate_limit": (RateLimited, "too many requests, retry later", None),
    "over_email_send_rate_limit": (RateLimited, "too many e-mails sent, retry later", None),
    "refresh_token_not_found": (AuthFailed, "invalid refresh token", None),
    "refresh_token_already_used": (AuthFailed, "refresh token already used", None),
    "session_not_found": (AuthFailed, "session expired, log in again", None),
    "session_expired": (AuthFailed, "session expired, log in again", None),
    "bad_jwt": (AuthFailed, "invalid access token", None),
    "invalid_jwt": (AuthFailed, "invalid access token", None),
    "user_not_found": (AuthFailed, "unknown user", None),
}


def _translated(exc: AuthError) -> SaasodooError:
    status = int(getattr(exc, "status", 0) or 0)
    known = _SUPABASE_ERRORS.get(str(exc.code or ""))
    if known:
        cls, message, field = known
        if cls is InvalidInput:
            detail = str(exc.message)[:200]
            return InvalidInput(message, [FieldError(field or "(body)", detail)])
        return cls(message)
    if not isinstance(exc, AuthApiError) or status == 0 or status >= 500:
        return AuthUnavailable("the auth server is unavailable, retry later")
    if exc.code == "validation_failed" and "email" in str(exc.message).lower():
        # GoTrue's own e-mail check can be stricter than ours ("Unable to validate email...")
        return InvalidInput("invalid e-mail address", [FieldError("email", exc.message[:200])])
    if status == 422 or status == 400:
        if "password" in str(exc.message).lower() and "invalid" not in str(exc.message).lower():
            return InvalidInput("invalid password", [FieldError("password", exc.message[:200])])
        return AuthFailed(str(exc.message)[:200] or "request refused by the auth server")
    if status == 429:
        return RateLimited("too many requests, retry later")
    if status == 403:
        return Forbidden(str(exc.message)[:200] or "forbidden")
    return AuthFailed(str(exc.message)[:200] or "not authenticated")


@contextlib.contextmanager
def _supabase_errors() -> Iterator[None]:
    try:
        yield
    except AuthError as exc:
        raise _translated(exc) from None
    except httpx.HTTPError:
        raise AuthUnavailable("cannot reach the auth server, retry later") from None


def _session(s: SupabaseSession) -> Session:
    expires_at = s.expires_at or int(time.time()) + int(s.expires_in)
    return Session(
        access_token=s.access_token,
        refresh_token=s.refresh_token,
        expires_in=int(s.expires_in),
        expires_at=int(expires_at),
        account=Account(id=s.user.id, email=s.user.email) if s.user else Account("", None),
    )


class SupabaseAuth:
    """Supabase Auth through supabase-py. One short-lived client per call (its HTTP connection
    closed after it): no shared state."""

    def __init__(self, url: str, key: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.timeout = timeout

    @contextlib.contextmanager
    def _auth(self) -> Iterator[Any]:
        with httpx.Client(timeout=self.timeout) as http:
            options = ClientOptions(
                auto_refresh_token=False,
                persist_session=False,
                flow_type="implicit",
                httpx_client=http,
            )
            yield create_client(self.url, self.key, options=options).auth

    def sign_up(self, email: str, password: str) -> SignUp:
        with _supabase_errors(), self._auth() as auth:
            res = auth.sign_up({"email": email, "password": password})
        if res.user is None:
            raise AuthUnavailable("the auth server returned no user")
        account = Account(id=res.user.id, email=res.user.email)
        return SignUp(account, _session(res.session) if res.session else None)

    def sign_in(self, email: str, password: str) -> Session:
        with _supabase_errors(), self._auth() as auth:
            res = auth.sign_in_with_password({"email": email, "password": password})
        if res.session is None:
            raise AuthFailed("invalid e-mail or password")
        return _session(res.session)

    def refresh(self, refresh_token: str) -> Session:
        with _supabase_errors(), self._auth() as auth:
            res = auth.refresh_session(refresh_token)
        if res.session is None:
            raise AuthFailed("invalid refresh token")
        return _session(res.session)

    def sign_out(self, access_token: str) -> None:
        """End every session of the user (``scope=global``): refresh tokens are revoked and
        ``account`` refuses the access tokens (``session_not_found``). Their signatures stay
        valid until they expire: ``SessionCheck`` makes the API notice.
        """
        with _supabase_errors(), self._auth() as auth:
            auth.admin.sign_out(access_token, "global")

    def account(self, access_token: str) -> Account:
        with _supabase_errors(), self._auth() as auth:
            res = auth.get_user(access_token)
        if res is None or res.user is None:
            raise AuthFailed("unknown user")
        return Account(id=res.user.id, email=res.user.email)
