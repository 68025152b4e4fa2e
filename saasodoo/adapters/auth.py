"""Authentication: Supabase Auth through supabase-py, and local JWT verification with PyJWT.

Two halves:

* ``TokenVerifier`` checks a bearer token on every request without a network call:
  ES256/RS256 through the project's JWKS (fetched once, cached) or HS256 with the
  project's JWT secret (older projects). The allowed algorithms are pinned; ``exp``,
  ``aud``, ``iss``, ``sub`` and ``role`` are required and checked.
* An ``AuthBackend`` signs users up and in, refreshes and revokes sessions:
  ``SupabaseAuth`` (supabase-py against ``<SUPABASE_URL>/auth/v1``) in production,
  ``LocalDevAuth`` (in memory, HS256 with a development secret) for development only.
* ``SessionCheck`` makes log-out count: a state-changing call also asks the auth server
  whether the token's session still lives (remembered briefly); a session ended through
  this process is refused at once.

Admin rights come from ``app_metadata`` (written only by the auth server) or from a
configured list of user ids / e-mails, never from ``user_metadata`` (the user writes it).
Supabase's errors are translated here into saasodoo's; messages never carry secrets.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import httpx
import jwt
from supabase import ClientOptions, create_client
from supabase_auth.errors import AuthApiError, AuthError
from supabase_auth.types import Session as SupabaseSession

from saasodoo.errors import Conflict, FieldError, InvalidInput, SaasodooError

AUDIENCE = "authenticated"
ROLE = "authenticated"
#: Asymmetric algorithms accepted through the JWKS; HS256 only with a configured secret.
ASYMMETRIC_ALGORITHMS = ("ES256", "RS256")
HS256 = "HS256"
#: The claim in ``app_metadata`` that makes a user an operator (set by a service-role call).
ADMIN_CLAIM = "saasodoo_admin"
REQUIRED_CLAIMS = ["exp", "sub", "aud", "iss", "role"]


class AuthFailed(SaasodooError):
    """No valid credentials: missing, expired or forged token, wrong password."""

    exit_code = 7
    http_status = 401


class Forbidden(SaasodooError):
    """Authenticated, but not allowed (operators only, e-mail not confirmed, sign-up off)."""

    exit_code = 7
    http_status = 403


class RateLimited(SaasodooError):
    """The auth server asks the caller to slow down."""

    http_status = 429
    retryable = True


class AuthUnavailable(SaasodooError):
    """The auth server (or its JWKS) cannot be reached; retry later."""

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
    """Tokens of a signed-in user."""

    access_token: str
    refresh_token: str
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
    """Operator rights: ``app_metadata.saasodoo_admin`` or the id/e-mail in ``admins``."""
    app_metadata = claims.get("app_metadata")
    if isinstance(app_metadata, dict) and app_metadata.get(ADMIN_CLAIM) is True:
        return True
    wanted = {a.strip().lower() for a in admins if a.strip()}
    email = claims.get("email")
    return str(claims.get("sub", "")).lower() in wanted or (
        isinstance(email, str) and email.lower() in wanted
    )


# -- token verification ------------------------------------------------------------------


@dataclass(frozen=True)
class VerifierConfig:
    issuer: str
    jwks_url: str | None = None
    #: False for a GoTrue run without ``GOTRUE_JWT_ISSUER`` (self-hosted): its tokens carry no
    #: ``iss``; one that carries it must still name ``issuer``.
    issuer_required: bool = True
    hs256_secret: str | None = None
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


# -- Supabase -----------------------------------------------------------------------------

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


# -- log-out that counts ---------------------------------------------------------------------


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


# -- development only ---------------------------------------------------------------------


@dataclass
class _LocalUser:
    id: str
    email: str
    salt: bytes
    pw_hash: bytes


class LocalDevAuth:
    """DEVELOPMENT ONLY: accounts in this process's memory, HS256 tokens.

    Lets the API and web UI run with no Supabase project. Accounts vanish on restart;
    the API refuses this backend when it runs with production settings. Tokens carry the
    same claims as Supabase's (``session_id`` too) and go through the same ``TokenVerifier``;
    log-out ends every session of the user, as GoTrue's ``scope=global`` does.
    """

    MIN_PASSWORD: ClassVar[int] = 8

    def __init__(self, secret: str, issuer: str, *, token_lifetime: int = 3600) -> None:
        self.secret = secret
        self.issuer = issuer
        self.token_lifetime = token_lifetime
        self._users: dict[str, _LocalUser] = {}  # by e-mail
        self._refresh: dict[str, tuple[str, str]] = {}  # refresh token -> (user id, session)
        self._sessions: dict[str, str] = {}  # session id -> user id
        self._lock = threading.Lock()

    def verifier_config(self) -> VerifierConfig:
        return VerifierConfig(issuer=self.issuer, hs256_secret=self.secret)

    @staticmethod
    def _hash(password: str, salt: bytes) -> bytes:
        return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)

    def sign_up(self, email: str, password: str) -> SignUp:
        email = email.strip().lower()
        if len(password) < self.MIN_PASSWORD:
            raise InvalidInput(
                "password too weak",
                [FieldError("password", f"must be at least {self.MIN_PASSWORD} characters")],
            )
        salt = secrets.token_bytes(16)
        user = _LocalUser(str(uuid.uuid4()), email, salt, self._hash(password, salt))
        with self._lock:
            if email in self._users:
                raise Conflict("an account with this e-mail already exists")
            self._users[email] = user
        return SignUp(Account(user.id, email), self._issue(user, self._new_session(user)))

    def sign_in(self, email: str, password: str) -> Session:
        with self._lock:
            user = self._users.get(email.strip().lower())
        if user is None or not hmac.compare_digest(user.pw_hash, self._hash(password, user.salt)):
            raise AuthFailed("invalid e-mail or password")
        return self._issue(user, self._new_session(user))

    def refresh(self, refresh_token: str) -> Session:
        with self._lock:
            user_id, session_id = self._refresh.pop(refresh_token, ("", ""))
            user = next((u for u in self._users.values() if u.id == user_id), None)
            live = session_id in self._sessions
        if user is None or not live:
            raise AuthFailed("invalid refresh token")
        return self._issue(user, session_id)

    def sign_out(self, access_token: str) -> None:
        claims = self._live_claims(access_token)
        with self._lock:
            for token in [t for t, (uid, _) in self._refresh.items() if uid == claims["sub"]]:
                del self._refresh[token]
            for session in [s for s, uid in self._sessions.items() if uid == claims["sub"]]:
                del self._sessions[session]

    def account(self, access_token: str) -> Account:
        claims = self._live_claims(access_token)
        with self._lock:
            user = next((u for u in self._users.values() if u.id == claims["sub"]), None)
        if user is None:
            raise AuthFailed("unknown user")
        return Account(user.id, user.email)

    def _live_claims(self, access_token: str) -> dict[str, Any]:
        claims = TokenVerifier(self.verifier_config()).verify(access_token)
        with self._lock:
            if claims.get("session_id") not in self._sessions:
                raise AuthFailed("session expired, log in again")
        return claims

    def _new_session(self, user: _LocalUser) -> str:
        session_id = str(uuid.uuid4())
        with self._lock:
            self._sessions[session_id] = user.id
        return session_id

    def _issue(self, user: _LocalUser, session_id: str) -> Session:
        now = int(time.time())
        claims = {
            "sub": user.id,
            "email": user.email,
            "aud": AUDIENCE,
            "role": ROLE,
            "iss": self.issuer,
            "iat": now,
            "exp": now + self.token_lifetime,
            "app_metadata": {"provider": "email"},
            "user_metadata": {},
            "session_id": session_id,
        }
        token = jwt.encode(claims, self.secret, algorithm=HS256)
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[refresh] = (user.id, session_id)
        return Session(
            token,
            refresh,
            self.token_lifetime,
            now + self.token_lifetime,
            Account(user.id, user.email),
        )
