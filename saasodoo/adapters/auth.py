"""Authentication: local JWT verification with PyJWT, the auth types and the backend's
interface. The backends live beside it: ``saasodoo.adapters.supabase`` (production) and
``saasodoo.adapters.local_auth`` (development only).

* ``TokenVerifier`` checks a bearer token on every request without a network call:
  ES256/RS256 through the project's JWKS (fetched once, cached) or HS256 with the
  project's JWT secret (older projects). The allowed algorithms are pinned; ``exp``,
  ``aud``, ``iss``, ``sub`` and ``role`` are required and checked.
* An ``AuthBackend`` signs users up and in, refreshes and revokes sessions:
  ``SupabaseAuth`` (``adapters.supabase``: supabase-py against ``<SUPABASE_URL>/auth/v1``)
  in production, ``LocalDevAuth`` (``adapters.local_auth``: in memory, HS256 with a
  development secret) for development only.
* ``SessionCheck`` makes log-out count: a state-changing call also asks the auth server
  whether the token's session still lives (remembered briefly); a session ended through
  this process is refused at once.

Admin rights come from ``app_metadata`` (written only by the auth server) or from a
configured list of user ids (and e-mails, only in tokens that say the address is
confirmed), never from ``user_metadata`` (the user writes it): see ``is_admin``.
Supabase's errors are translated into saasodoo's in ``saasodoo.adapters.supabase``;
messages never carry secrets.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt

from saasodoo.errors import SaasodooError

AUDIENCE = "authenticated"
ROLE = "authenticated"
#: Asymmetric algorithms accepted through the JWKS; HS256 only with a configured secret.
ASYMMETRIC_ALGORITHMS = ("ES256", "RS256")
HS256 = "HS256"
#: The claim in ``app_metadata`` that makes a user an operator (set by a service-role call).
ADMIN_CLAIM = "saasodoo_admin"
REQUIRED_CLAIMS = ["exp", "sub", "aud", "iss", "role"]
#: The token claim that says the e-mail address is confirmed (top level, set by the server).
EMAIL_VERIFIED_CLAIM = "email_verified"


class AuthFailed(SaasodooError):
    """No valid credentials: missing, expired or forged token, wrong password."""

    exit_code = 7
    http_status = 401


class Forbidden(SaasodooError):
    """Authenticated, but not allowed (operators only, e-mail not confirmed, sign-up off)."""

    exit_code = 9
    http_status = 403


class RateLimited(SaasodooError):
    """The auth server asks the caller to slow down."""

    exit_code = 10
    http_status = 429
    retryable = True


class AuthUnavailable(SaasodooError):
    """The auth server (or its JWKS) cannot be reached; retry later."""

    exit_code = 11
    http_status = 503
    retryable = True


# -- what the rest of saasodoo sees ------------------------------------------------------


@dataclass(frozen=True)
class User:
    """The caller, from a verified token."""

    id: str
    email: str | None
    is_admin: bool


@dataclass(frozen=True)
class Account:
    """A user as the auth server describes it."""

    id: str
    email: str | None


@dataclass(frozen=True)
class Session:
    """Tokens of a signed-in user (left out of the repr, which logs and tracebacks show)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    expires_at: int
    account: Account
    token_type: str = "bearer"


@dataclass(frozen=True)
class SignUp:
    """A new account; ``session`` is None when the project wants the e-mail confirmed first."""

    account: Account
    session: Session | None


class AuthBackend(Protocol):
    """Sign-up, sign-in, refresh, sign-out and the current account."""

    def sign_up(self, email: str, password: str) -> SignUp: ...
    def sign_in(self, email: str, password: str) -> Session: ...
    def refresh(self, refresh_token: str) -> Session: ...
    def sign_out(self, access_token: str) -> None: ...
    def account(self, access_token: str) -> Account: ...


def is_admin(claims: dict[str, Any], admins: Iterable[str]) -> bool:
    """Operator rights, only from what the user cannot claim for themselves.

    - ``app_metadata.saasodoo_admin: true``: ``app_metadata`` is written by the auth server
      only (a service-role call), never by the user;
    - the user id (``sub``) in ``admins``: ids are assigned by the auth server;
    - the e-mail in ``admins`` only when the token says the address is confirmed: the
      top-level boolean ``email_verified`` claim (the OpenID Connect claim). Supabase's
      access tokens do not carry it (their claims: sub, email, phone, app_metadata,
      user_metadata, role, aal, amr, session_id, is_anonymous); a project adds it with a
      Custom Access Token Hook from ``auth.users.email_confirmed_at``. Without it an e-mail
      entry grants nothing: where confirmation is off, anyone could sign up with the
      address. ``user_metadata.email_verified`` never counts: the user writes
      ``user_metadata`` (``PUT /user``).
    """
    app_metadata = claims.get("app_metadata")
    if isinstance(app_metadata, dict) and app_metadata.get(ADMIN_CLAIM) is True:
        return True
    wanted = {a.strip().lower() for a in admins if a.strip()}
    if str(claims.get("sub", "")).lower() in wanted:
        return True
    email = claims.get("email")
    return (
        isinstance(email, str)
        and bool(email)
        and email.lower() in wanted
        and claims.get(EMAIL_VERIFIED_CLAIM) is True
    )


# -- token verification ------------------------------------------------------------------


@dataclass(frozen=True)
class VerifierConfig:
    issuer: str
    jwks_url: str | None = None
    #: False for a GoTrue run without ``GOTRUE_JWT_ISSUER`` (self-hosted): its tokens carry no
    #: ``iss``; one that carries it must still name ``issuer``.
    issuer_required: bool = True
    hs256_secret: str | None = field(default=None, repr=False)
    audience: str = AUDIENCE
    leeway: float = 10.0
    jwks_cache_seconds: float = 600.0
    jwks_timeout: float = 5.0


class TokenVerifier:
    """Verifies Supabase access tokens locally; the JWKS is fetched lazily and cached."""

    def __init__(self, config: VerifierConfig) -> None:
        if not config.jwks_url and not config.hs256_secret:
            raise ValueError("a token verifier needs a JWKS URL, an HS256 secret or both")
        self.config = config
        self._jwks = (
            jwt.PyJWKClient(
                config.jwks_url,
                cache_keys=True,
                cache_jwk_set=True,
                lifespan=config.jwks_cache_seconds,
                timeout=int(config.jwks_timeout),
            )
            if config.jwks_url
            else None
        )

    @property
    def algorithms(self) -> list[str]:
        algs = list(ASYMMETRIC_ALGORITHMS) if self._jwks else []
        return algs + ([HS256] if self.config.hs256_secret else [])

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or ``AuthFailed`` saying what is wrong."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthFailed("malformed access token") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise AuthFailed(f"token algorithm {str(alg)[:20]!r} is not accepted")
        key = self._key(token, str(alg))
        required = self.config.issuer_required
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[str(alg)],
                audience=self.config.audience,
                issuer=self.config.issuer if required else None,
                leeway=self.config.leeway,
                options={"require": [c for c in REQUIRED_CLAIMS if required or c != "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailed("access token expired") from None
        except jwt.InvalidAudienceError:
            raise AuthFailed("access token has the wrong audience") from None
        except jwt.InvalidIssuerError:
            raise AuthFailed("access token has the wrong issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthFailed(f"access token lacks the '{exc.claim}' claim") from None
        except jwt.PyJWTError:
            raise AuthFailed("invalid access token") from None
        if not required and claims.get("iss", self.config.issuer) != self.config.issuer:
            raise AuthFailed("access token has the wrong issuer")
        if claims.get("role") != ROLE or not str(claims.get("sub") or "").strip():
            raise AuthFailed("access token is not a signed-in user's")
        return claims

    def user(self, token: str, admins: Iterable[str] = ()) -> User:
        claims = self.verify(token)
        email = claims.get("email")
        return User(
            id=str(claims["sub"]),
            email=email if isinstance(email, str) and email else None,
            is_admin=is_admin(claims, admins),
        )

    def _key(self, token: str, alg: str) -> Any:
        if alg == HS256:
            return self.config.hs256_secret
        assert self._jwks is not None  # alg is asymmetric only when a JWKS is configured
        try:
            return self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            raise AuthUnavailable("cannot fetch the auth server's signing keys") from None
        except jwt.PyJWTError:
            raise AuthFailed("access token signed with an unknown key") from None


# -- log-out that counts ---------------------------------------------------------------------


def end_sessions(
    backend: AuthBackend, access_token: str | None, refresh_token: str | None
) -> str | None:
    """End every session of the user at the auth server, whatever the access token's state;
    returns the access token the server accepted for the log-out (None: nothing was left to
    end).

    GoTrue's ``POST /logout`` (``AuthBackend.sign_out``, scope ``global``: every session and
    refresh token of the user deleted) runs behind its ``requireAuthentication``, so it
    refuses an expired access token (401 ``bad_jwt``) and the session would live on through
    its refresh token. Then the refresh token is exchanged first (``POST
    /token?grant_type=refresh_token``: a fresh access token of the same session, ``internal/
    tokens/service.go``) and the log-out runs with that. A refresh token the server refuses
    (``refresh_token_not_found``, ``session_not_found``; or ``refresh_token_already_used``,
    after which GoTrue revokes the token's whole family) leaves nothing to end with it.
    ``AuthUnavailable``: the server could not be asked, nothing was ended; the caller must
    not report a log-out. ``AuthFailed``: no refresh token and the access token refused."""
    if access_token:
        try:
            backend.sign_out(access_token)
        except AuthFailed:
            if not refresh_token:
                raise
        else:
            return access_token
    if not refresh_token:
        raise AuthFailed("missing bearer token (Authorization: Bearer <access token>)")
    try:
        fresh = backend.refresh(refresh_token)
    except AuthFailed:
        return None
    backend.sign_out(fresh.access_token)
    return fresh.access_token


def _unverified_claims(token: str) -> dict[str, Any]:
    """Claims of a token the ``TokenVerifier`` already accepted."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthFailed("malformed access token") from None
    if not claims.get("sub") or not isinstance(claims.get("exp"), int | float):
        raise AuthFailed("access token is not a signed-in user's")
    return claims


class SessionCheck:
    """Whether an access token's session still lives, so that log-out means something.

    A signature check alone accepts an access token until it expires, log-out or not. Hence:

    * state-changing calls (``live=True``) also ask the auth server (``AuthBackend.account``:
      GoTrue's ``GET /user`` refuses a token whose session ended); a confirmed session is
      trusted for ``ttl`` seconds (0: asked every time). When the auth server cannot be asked,
      they fail closed (``AuthUnavailable``, 503);
    * a session ended through this process (``end``, after the log-out route; GoTrue ends
      every session of the user) or found ended by the server is refused at once, reads
      included, until its tokens expire;
    * reads of a session ended elsewhere (another app, the dashboard) are accepted until the
      token expires (its lifetime: ``GOTRUE_JWT_EXP``).

    Sessions are the ``session_id`` claim (a token without one stands for itself). Call
    ``check`` only with a token the ``TokenVerifier`` accepted.
    """

    def __init__(
        self,
        backend: AuthBackend,
        ttl: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self.ttl = ttl
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._confirmed: dict[str, float] = {}  # session -> when the server confirmed it
        self._seen: dict[str, dict[str, float]] = {}  # user -> session -> token expiry
        self._ended: dict[str, float] = {}  # session -> token expiry (forgotten after it)
        self._pruned = wall()

    @staticmethod
    def _key(token: str, claims: dict[str, Any]) -> str:
        session_id = claims.get("session_id")
        if isinstance(session_id, str) and session_id:
            return session_id
        return "token:" + hashlib.sha256(token.encode()).hexdigest()

    def check(self, token: str, *, live: bool) -> None:
        claims = _unverified_claims(token)
        key, user, exp = self._key(token, claims), str(claims["sub"]), float(claims["exp"])
        with self._lock:
            self._prune()
            if key in self._ended:
                raise AuthFailed("session ended, log in again")
            self._seen.setdefault(user, {})[key] = exp
            if not live:
                return
            confirmed = self._confirmed.get(key)
            if confirmed is not None and self._clock() - confirmed < self.ttl:
                return
        try:
            self.backend.account(token)
        except AuthFailed:
            with self._lock:
                self._ended[key] = exp
                self._confirmed.pop(key, None)
            raise AuthFailed("session ended, log in again") from None
        with self._lock:
            self._confirmed[key] = self._clock()

    def end(self, token: str) -> None:
        """After a log-out: every session of the user seen here is over."""
        claims = _unverified_claims(token)
        key, user = self._key(token, claims), str(claims["sub"])
        with self._lock:
            sessions = self._seen.pop(user, {})
            sessions[key] = float(claims["exp"])
            for session, exp in sessions.items():
                self._ended[session] = exp
                self._confirmed.pop(session, None)

    def _prune(self) -> None:
        """Forget sessions whose tokens expired (at most once a minute)."""
        now = self._wall()
        if now - self._pruned < 60:
            return
        self._pruned = now
        for session in [s for s, exp in self._ended.items() if exp < now]:
            del self._ended[session]
        for user in list(self._seen):
            live = {s: exp for s, exp in self._seen[user].items() if exp >= now}
            if live:
                self._seen[user] = live
            else:
                del self._seen[user]
        for session in [s for s, at in self._confirmed.items() if self._clock() - at >= self.ttl]:
            del self._confirmed[session]
