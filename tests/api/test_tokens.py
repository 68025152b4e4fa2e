"""Bearer token verification: what is accepted, what is refused and why (no network)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import replace

import jwt
import pytest

from saasodoo.adapters.auth import (
    Account,
    AuthFailed,
    AuthUnavailable,
    SessionCheck,
    TokenVerifier,
    is_admin,
)
from tests.api import tokens as t

pytestmark = pytest.mark.unit


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("make", [t.es256, t.rs256, t.hs256], ids=["ES256", "RS256", "HS256"])
def test_valid_tokens_are_accepted(make: object) -> None:
    token = make()  # type: ignore[operator]
    user = t.verifier().user(token)
    assert user.id == t.claims()["sub"]
    assert user.email == "alice@example.com"
    assert not user.is_admin


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: t.es256(exp=int(time.time()) - 3600), "expired"),
        (lambda: t.es256(aud="anon-project"), "wrong audience"),
        (lambda: t.es256(iss="https://evil.example/auth/v1"), "wrong issuer"),
        (lambda: t.es256(sub=None), "'sub'"),
        (lambda: t.es256(role=None), "'role'"),
        (lambda: t.es256(exp=None), "'exp'"),
        (lambda: t.es256(role="anon"), "not a signed-in user"),
        (lambda: t.es256(role="service_role"), "not a signed-in user"),
        (lambda: t.hs256(exp=int(time.time()) - 3600), "expired"),
        (lambda: "not-a-jwt", "malformed"),
    ],
    ids=[
        "expired",
        "wrong-aud",
        "wrong-iss",
        "no-sub",
        "no-role",
        "no-exp",
        "anon-role",
        "service-role",
        "hs256-expired",
        "garbage",
    ],
)
def test_bad_tokens_are_refused(make: Callable[[], str], message: str) -> None:
    # Made when the test runs, not at collection: a token made then expires (600 s) before a
    # long session reaches this test, and every case would fail as "expired".
    with pytest.raises(AuthFailed, match=message) as err:
        t.verifier().verify(make())
    assert err.value.http_status == 401


def test_alg_none_is_refused() -> None:
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(t.claims())}."
    with pytest.raises(AuthFailed, match="algorithm 'none' is not accepted"):
        t.verifier().verify(unsigned)


def test_unknown_key_id_is_refused() -> None:
    other = jwt.encode(t.claims(), t.EC_KEY, algorithm="ES256", headers={"kid": "rotated-away"})
    with pytest.raises(AuthFailed, match="unknown key"):
        t.verifier().verify(other)


def test_token_signed_by_another_key_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    forged = jwt.encode(
        t.claims(), ec.generate_private_key(ec.SECP256R1()), "ES256", headers={"kid": t.EC_KID}
    )
    with pytest.raises(AuthFailed, match="invalid access token"):
        t.verifier().verify(forged)


def test_hs256_refused_without_a_configured_secret() -> None:
    with pytest.raises(AuthFailed, match="'HS256' is not accepted"):
        t.verifier(secret=False).verify(t.hs256())


def test_hs256_with_the_public_key_as_secret_is_refused() -> None:
    """Algorithm confusion: an HS256 token 'signed' with the public JWK must not pass."""
    public_pem = t.jwks()["keys"][0]["x"]
    confused = jwt.encode(t.claims(), public_pem, algorithm="HS256")
    with pytest.raises(AuthFailed):
        t.verifier().verify(confused)


def test_asymmetric_refused_when_only_hs256_is_configured() -> None:
    with pytest.raises(AuthFailed, match="'ES256' is not accepted"):
        t.verifier(jwks_url=False).verify(t.es256())


def test_jwks_is_fetched_once_and_cached() -> None:
    v = t.verifier()
    calls = []
    assert v._jwks is not None
    v._jwks.fetch_data = lambda: calls.append(1) or t.jwks()  # type: ignore[method-assign]
    for _ in range(5):
        v.verify(t.es256())
        v.verify(t.rs256())
    assert len(calls) == 1


def test_admin_from_app_metadata_not_user_metadata() -> None:
    v = t.verifier()
    assert v.user(t.es256(app_metadata={"saasodoo_admin": True})).is_admin
    assert not v.user(t.es256(user_metadata={"saasodoo_admin": True})).is_admin
    assert not v.user(t.es256(app_metadata={"saasodoo_admin": "true"})).is_admin


def test_admin_from_configured_list_by_user_id() -> None:
    claims = t.claims()
    assert is_admin(claims, [claims["sub"]])
    assert is_admin(claims, [claims["sub"].upper()])
    assert not is_admin(claims, ["bob@example.com", ""])
    assert t.verifier().user(t.es256(), admins=[" " + claims["sub"]]).is_admin


# -- issuer optional (a GoTrue without GOTRUE_JWT_ISSUER) -------------------------------------


def test_issuer_optional_accepts_none_but_checks_one_present() -> None:
    v = t.verifier()
    lenient = TokenVerifier(replace(v.config, issuer_required=False))
    lenient._jwks.fetch_data = t.jwks  # type: ignore[method-assign,union-attr]
    assert lenient.verify(t.es256(iss=None))["sub"]
    assert lenient.verify(t.hs256())["iss"] == t.ISSUER
    with pytest.raises(AuthFailed, match="wrong issuer"):
        lenient.verify(t.hs256(iss="https://elsewhere.example/auth/v1"))
    with pytest.raises(AuthFailed, match="lacks the 'iss' claim"):
        v.verify(t.es256(iss=None))


# -- the session check (log-out that counts) ----------------------------------------------------


class _Server:
    """The auth server's view of sessions, for ``SessionCheck`` (what ``account`` answers)."""

    def __init__(self) -> None:
        self.calls = 0
        self.ended: set[str] = set()
        self.down = False

    def account(self, access_token: str) -> Account:
        self.calls += 1
        if self.down:
            raise AuthUnavailable("the auth server is unavailable, retry later")
        claims = jwt.decode(access_token, options={"verify_signature": False})
        if claims.get("session_id") in self.ended:
            raise AuthFailed("session expired, log in again")
        return Account(claims["sub"], claims.get("email"))


def _check(ttl: float = 30) -> tuple[SessionCheck, _Server, list[float]]:
    server, now = _Server(), [1000.0]
    check = SessionCheck(server, ttl, clock=lambda: now[0])  # type: ignore[arg-type]
    return check, server, now


def test_changes_confirm_the_session_and_trust_it_for_the_ttl() -> None:
    check, server, now = _check(ttl=30)
    token = t.es256(session_id="s1")
    check.check(token, live=False)
    assert server.calls == 0  # reads: no call
    check.check(token, live=True)
    check.check(token, live=True)
    assert server.calls == 1
    now[0] += 31
    check.check(token, live=True)
    assert server.calls == 2


def test_a_session_ended_at_the_server_is_refused_then_for_reads_too() -> None:
    check, server, now = _check(ttl=0)
    token = t.es256(session_id="s1")
    check.check(token, live=True)
    server.ended.add("s1")
    check.check(token, live=False)  # a read is trusted until the server says otherwise
    with pytest.raises(AuthFailed, match="session ended"):
        check.check(token, live=True)
    with pytest.raises(AuthFailed, match="session ended"):
        check.check(token, live=False)


def test_log_out_here_ends_every_session_of_the_user_seen_here() -> None:
    check, server, _ = _check()
    first, second = t.es256(session_id="s1"), t.es256(session_id="s2")
    other_user = t.es256(session_id="s3", sub="8d5c1f8e-0000-4000-8000-000000000002")
    for token in (first, second, other_user):
        check.check(token, live=True)
    check.end(first)
    for token in (first, second):
        with pytest.raises(AuthFailed, match="session ended"):
            check.check(token, live=False)
    check.check(other_user, live=True)
    assert server.calls == 3  # no new call: refused here, the other user's still trusted


def test_changes_fail_closed_when_the_server_cannot_be_asked() -> None:
    check, server, _ = _check()
    token = t.es256(session_id="s1")
    server.down = True
    with pytest.raises(AuthUnavailable):
        check.check(token, live=True)
    check.check(token, live=False)  # reads go on
    server.down = False
    check.check(token, live=True)  # not remembered as ended


def test_a_token_without_session_id_stands_for_itself() -> None:
    check, server, _ = _check()
    token = t.es256()
    check.check(token, live=True)
    check.end(token)
    with pytest.raises(AuthFailed, match="session ended"):
        check.check(token, live=False)
    check.check(t.es256(jti="another"), live=True)


def test_an_email_entry_counts_only_when_the_token_says_it_is_confirmed() -> None:
    """Supabase's tokens say nothing about confirmation; whoever signs up first with an
    address where confirmation is off must not become an operator through it."""
    v, ops = t.verifier(), ["ALICE@example.com"]
    assert not v.user(t.es256(), admins=ops).is_admin  # GoTrue's claims: no confirmation
    # The user writes user_metadata (PUT /user): its email_verified proves nothing.
    assert not v.user(t.es256(user_metadata={"email_verified": True}), admins=ops).is_admin
    assert not v.user(t.es256(email_verified="true"), admins=ops).is_admin  # not a boolean
    assert not v.user(t.es256(email_verified=False), admins=ops).is_admin
    # A confirmed address (the claim a Custom Access Token Hook adds, signed by the server).
    assert v.user(t.es256(email_verified=True), admins=ops).is_admin
    assert not v.user(t.es256(email_verified=True), admins=["bob@example.com"]).is_admin
    # Forged tokens still fail verification before any of this.
    forged = t.es256(email_verified=True)[:-4] + "AAAA"
    with pytest.raises(AuthFailed):
        v.user(forged, admins=ops)
