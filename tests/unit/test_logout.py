"""The branches of ``end_sessions`` (issue 22, point 7), with a small fake backend; the real
GoTrue runs the same flow in tests/api/test_supabase.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from saasodoo.adapters.auth import (
    Account,
    AuthFailed,
    AuthUnavailable,
    Session,
    SignUp,
    end_sessions,
)

pytestmark = pytest.mark.unit


@dataclass
class Backend:
    """Tokens ``live`` are accepted by sign_out; ``refresh`` turns a known refresh token
    into a fresh access token; every call is recorded."""

    live: set[str] = field(default_factory=set)
    refreshable: dict[str, str] = field(default_factory=dict)
    down: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)

    def sign_up(self, email: str, password: str) -> SignUp:
        raise NotImplementedError

    def sign_in(self, email: str, password: str) -> Session:
        raise NotImplementedError

    def account(self, access_token: str) -> Account:
        raise NotImplementedError

    def refresh(self, refresh_token: str) -> Session:
        self.calls.append(("refresh", refresh_token))
        if self.down:
            raise AuthUnavailable("down")
        fresh = self.refreshable.pop(refresh_token, None)
        if fresh is None:
            raise AuthFailed("invalid refresh token")
        self.live.add(fresh)
        return Session(fresh, "rt2", 3600, 0, Account("u", None))

    def sign_out(self, access_token: str) -> None:
        self.calls.append(("sign_out", access_token))
        if self.down:
            raise AuthUnavailable("down")
        if access_token not in self.live:
            raise AuthFailed("invalid access token")
        self.live.clear()


def test_a_live_access_token_logs_out_directly() -> None:
    backend = Backend(live={"at"})
    assert end_sessions(backend, "at", "rt") == "at"
    assert backend.calls == [("sign_out", "at")]


def test_an_expired_access_token_is_replaced_through_the_refresh_token() -> None:
    backend = Backend(refreshable={"rt": "fresh"})
    assert end_sessions(backend, "expired", "rt") == "fresh"
    assert backend.calls == [("sign_out", "expired"), ("refresh", "rt"), ("sign_out", "fresh")]
    assert backend.live == set()  # the session ended at the server


def test_a_dead_refresh_token_leaves_nothing_to_end() -> None:
    assert end_sessions(Backend(), "expired", "gone") is None
    assert end_sessions(Backend(), None, "gone") is None


def test_without_a_refresh_token_the_access_token_must_be_valid() -> None:
    with pytest.raises(AuthFailed):
        end_sessions(Backend(), "expired", None)
    with pytest.raises(AuthFailed):
        end_sessions(Backend(), None, None)


def test_an_unreachable_server_is_never_reported_as_logged_out() -> None:
    with pytest.raises(AuthUnavailable):
        end_sessions(Backend(down=True), "at", "rt")
