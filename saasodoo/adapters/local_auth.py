"""DEVELOPMENT ONLY: ``LocalDevAuth``, an ``AuthBackend`` (``saasodoo.adapters.auth``) with
accounts in memory and HS256 tokens, so the API and web UI run without a Supabase project."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import jwt

from saasodoo.adapters.auth import (
    AUDIENCE,
    EMAIL_VERIFIED_CLAIM,
    HS256,
    ROLE,
    Account,
    AuthFailed,
    Session,
    SignUp,
    TokenVerifier,
    VerifierConfig,
)
from saasodoo.errors import Conflict, FieldError, InvalidInput


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
            # No mailer in this development-only mode: every address counts as confirmed
            # (so SAASODOO_API_ADMINS may name a developer by e-mail here).
            EMAIL_VERIFIED_CLAIM: True,
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
