"""The conformance suite: prove that a store honours its contract, with one import.

Subclass the contract class that matches what your store claims, name the subclass ``Test...``
so pytest collects it, and implement ``make_store``::

    from oauth2_store.testing import TokenStoreContract

    class TestMyStore(TokenStoreContract):
        def make_store(self, clock):
            return MyStore(clock=clock)

Every behaviour of the contract then runs against your store: round trips, misses raising the
documented errors, expiry (driven by the :class:`~oauth2_store.clock.ManualClock` your store must
read the time from, so no test sleeps), the refresh token outliving its access token, tokens and
codes with equal strings not colliding, revocation, and exactly-once ``consume_code`` under
concurrent threads. A store that keeps its own time too (memcached TTLs) sees a clock that starts
at the real time and only moves forward.

Each test uses fresh random tokens and codes, so a store backed by a shared server needs no
cleaning between tests.

The contracts, from least to most (requires pytest, which this module imports):

- :class:`AccessTokenStoreContract`, :class:`AuthCodeStoreContract`, :class:`ClientStoreContract`:
  the documented python-oauth2 operations;
- :class:`ExtendedAccessTokenStoreContract`, :class:`ExtendedAuthCodeStoreContract`: the extended
  operations too;
- :class:`RevocableAccessTokenStoreContract`: the extended token contract and RFC 7009's
  ``revoke_token``;
- :class:`TokenStoreContract`: the revocable token and extended code contracts, plus the
  cross-namespace checks;
- :class:`LifecycleTokenStoreContract`: grants as families, code replay, refresh-token rotation
  with reuse detection, and revocation by grant, user and client.
"""

from __future__ import annotations

import abc
import functools
import secrets
import threading
import types
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import attrs

try:
    import pytest
except ImportError as missing:  # the suite is pytest test classes: say which extra brings it
    raise ImportError("oauth2_store.testing needs pytest: pip install 'oauth2-store[testing]'") from missing

from oauth2_store.clock import ManualClock
from oauth2_store.error import (
    AccessTokenNotFound,
    AuthCodeNotFound,
    ClientNotFoundError,
    CodeReplayError,
    GrantRevokedError,
    RecordValueError,
    RefreshTokenReuseError,
)
from oauth2_store.models import AccessToken, AuthorizationCode, Client
from oauth2_store.protocols import (
    AccessTokenStoreProtocol,
    AuthCodeStoreProtocol,
    ClientStoreProtocol,
    ExtendedAccessTokenStoreProtocol,
    ExtendedAuthCodeStoreProtocol,
    LifecycleTokenStoreProtocol,
    RevocableAccessTokenStoreProtocol,
    TokenStoreProtocol,
)

__all__ = [
    "AWKWARD_SECRETS",
    "AccessTokenStoreContract",
    "AuthCodeStoreContract",
    "ClientStoreContract",
    "ExtendedAccessTokenStoreContract",
    "ExtendedAuthCodeStoreContract",
    "LifecycleTokenStoreContract",
    "RevocableAccessTokenStoreContract",
    "TokenStoreContract",
]

HOUR = 3600
DAY = 24 * HOUR

AWKWARD_SECRETS: tuple[str, ...] = (
    "with spaces and\ttabs",
    "line\r\nbreaks\n",
    "nul\x00byte",
    "ünïcödé ✓ 🔑",
    "\r\nflush_all\r\n",
    "set other 0 0 1\r\nx\r\n",
    "x" * 2048,
)
"""Strings that are valid tokens but break a naive key scheme (memcached's keys are at most 250
bytes of printable ASCII without spaces, and its protocol is line-based)."""


def _secret(label: str) -> str:
    return f"{label}-{secrets.token_urlsafe(16)}"


class _Contract(abc.ABC):
    """What every contract's tests share: a store on a manual clock, and fresh records."""

    clock: ManualClock

    #: How many threads race for each code or refresh token in the concurrency tests.
    racing_threads = 16

    def fresh_token(self, **changes: Any) -> AccessToken:
        """An access token for this test: live for an hour, refresh token live for 30 days."""
        now = int(self.clock())
        fields: dict[str, Any] = dict(
            client_id=_secret("client"),
            grant_type="authorization_code",
            token=_secret("token"),
            data={"ip": "192.0.2.1", "nested": {"list": [1, 2.5, True, None]}},
            expires_at=now + HOUR,
            refresh_token=_secret("refresh"),
            scopes=["read", "write"],
            refresh_expires_at=now + 30 * DAY,
            user_id=_secret("user"),
            issued_at=now,
        )
        fields.update(changes)
        return AccessToken(**fields)

    def fresh_code(self, **changes: Any) -> AuthorizationCode:
        """An authorization code for this test, live for ten minutes, with PKCE fields."""
        fields: dict[str, Any] = dict(
            client_id=_secret("client"),
            code=_secret("code"),
            expires_at=int(self.clock()) + 600,
            redirect_uri="https://app.example/cb",
            scopes=["read"],
            data={"state": "xyz"},
            user_id=_secret("user"),
            code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            code_challenge_method="S256",
        )
        fields.update(changes)
        return AuthorizationCode(**fields)


class AccessTokenStoreContract(_Contract):
    """The documented access-token contract: ``save_token`` and ``fetch_by_refresh_token``."""

    @abc.abstractmethod
    def make_store(self, clock: ManualClock) -> AccessTokenStoreProtocol:
        """Return the store under test, reading the time from ``clock``."""

    def token_store(self) -> AccessTokenStoreProtocol:
        self.clock = ManualClock()
        return self.make_store(self.clock)

    def test_saved_token_is_found_by_its_refresh_token(self) -> None:
        store = self.token_store()
        token = self.fresh_token()
        store.save_token(token)
        assert token.refresh_token is not None
        assert store.fetch_by_refresh_token(token.refresh_token) == token

    def test_save_token_refuses_what_is_not_an_access_token(self) -> None:
        """A foreign record that quacks like ours (python-oauth2's, say) is a TypeError (our
        stores raise RecordTypeError), and nothing of it is stored."""
        store = self.token_store()
        token = self.fresh_token()
        with pytest.raises(TypeError):
            store.save_token(_look_alike(token))  # type: ignore[arg-type]  # the mistake under test
        assert token.refresh_token is not None
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_refresh_token(token.refresh_token)

    def test_unknown_refresh_token_raises_access_token_not_found(self) -> None:
        store = self.token_store()
        store.save_token(self.fresh_token())
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_refresh_token(_secret("refresh"))

    def test_refresh_token_outlives_its_access_token(self) -> None:
        store = self.token_store()
        now = int(self.clock())
        token = self.fresh_token(expires_at=now + 60, refresh_expires_at=now + 600)
        store.save_token(token)
        assert token.refresh_token is not None
        self.clock.advance(120)
        assert store.fetch_by_refresh_token(token.refresh_token) == token
        self.clock.advance(480)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_refresh_token(token.refresh_token)

    def test_refresh_token_without_expiry_never_expires(self) -> None:
        store = self.token_store()
        token = self.fresh_token(refresh_expires_at=None)
        store.save_token(token)
        assert token.refresh_token is not None
        self.clock.advance(10 * 365 * DAY)
        assert store.fetch_by_refresh_token(token.refresh_token) == token

    def test_an_access_token_is_not_a_refresh_token(self) -> None:
        store = self.token_store()
        token = self.fresh_token()
        store.save_token(token)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_refresh_token(token.token)

    @pytest.mark.parametrize("awkward", AWKWARD_SECRETS, ids=range(len(AWKWARD_SECRETS)))
    def test_any_string_works_as_a_refresh_token(self, awkward: str) -> None:
        store = self.token_store()
        token = self.fresh_token(refresh_token=awkward + _secret(""))
        store.save_token(token)
        assert token.refresh_token is not None
        assert store.fetch_by_refresh_token(token.refresh_token) == token

    def test_saving_an_expired_refresh_token_ends_it_early(self) -> None:
        store = self.token_store()
        token = self.fresh_token()
        store.save_token(token)
        store.save_token(attrs.evolve(token, expires_at=int(self.clock()), refresh_expires_at=int(self.clock())))
        assert token.refresh_token is not None
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_refresh_token(token.refresh_token)

    def test_saving_again_replaces_the_record(self) -> None:
        store = self.token_store()
        token = self.fresh_token()
        store.save_token(token)
        updated = self.fresh_token(client_id=token.client_id, user_id=token.user_id, refresh_token=token.refresh_token, data={"v": 2})
        store.save_token(updated)
        assert token.refresh_token is not None
        assert store.fetch_by_refresh_token(token.refresh_token) == updated


class ExtendedAccessTokenStoreContract(AccessTokenStoreContract):
    """The extended access-token contract: lookup by token, revocation, the user's latest token."""

    @abc.abstractmethod
    def make_store(self, clock: ManualClock) -> ExtendedAccessTokenStoreProtocol:
        """Return the store under test, reading the time from ``clock``."""

    def token_store(self) -> ExtendedAccessTokenStoreProtocol:
        self.clock = ManualClock()
        return self.make_store(self.clock)

    def test_saved_token_is_found_by_its_token(self) -> None:
        store = self.token_store()
        token = self.fresh_token()
        store.save_token(token)
        assert store.fetch_by_token(token.token) == token

    def test_token_without_refresh_token_or_expiry_is_found(self) -> None:
        store = self.token_store()
        token = self.fresh_token(refresh_token=None, refresh_expires_at=None, expires_at=None, user_id=None, data={})
        store.save_token(token)
        self.clock.advance(10 * 365 * DAY)
        assert store.fetch_by_token(token.token) == token

    def test_unknown_token_raises_access_token_not_found(self) -> None:
        store = self.token_store()
        store.save_token(self.fresh_token())
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(_secret("token"))

    @pytest.mark.parametrize("awkward", AWKWARD_SECRETS, ids=range(len(AWKWARD_SECRETS)))
    def test_any_string_works_as_a_token(self, awkward: str) -> None:
        store = self.token_store()
        token = self.fresh_token(token=awkward + _secret(""))
        store.save_token(token)
        assert store.fetch_by_token(token.token) == token
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(awkward)

    def test_access_token_expires_at_its_expires_at(self) -> None:
        store = self.token_store()
        token = self.fresh_token(expires_at=int(self.clock()) + 60)
        store.save_token(token)
        self.clock.advance(59)
        assert store.fetch_by_token(token.token) == token
        self.clock.advance(1)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)

    def test_token_that_lives_longer_than_30_days_is_found(self) -> None:
        store = self.token_store()
        token = self.fresh_token(expires_at=int(self.clock()) + 40 * DAY)
        store.save_token(token)
        self.clock.advance(31 * DAY)
        assert store.fetch_by_token(token.token) == token

    def test_already_expired_access_token_is_not_stored_but_its_refresh_token_is(self) -> None:
        store = self.token_store()
        now = int(self.clock())
        token = self.fresh_token(expires_at=now - 1, refresh_expires_at=now + HOUR)
        store.save_token(token)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)
        assert token.refresh_token is not None
        assert store.fetch_by_refresh_token(token.refresh_token) == token

    def test_saving_an_expired_version_ends_the_access_token_early(self) -> None:
        store = self.token_store()
        token = self.fresh_token()
        store.save_token(token)
        store.save_token(attrs.evolve(token, expires_at=int(self.clock())))
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_existing_token_of_user(token.client_id, token.grant_type, token.user_id)
        assert token.refresh_token is not None
        assert store.fetch_by_refresh_token(token.refresh_token).expires_at == int(self.clock())

    def test_delete_refresh_token_revokes_the_refresh_and_the_access_token(self) -> None:
        store = self.token_store()
        token = self.fresh_token()
        other = self.fresh_token()
        store.save_token(token)
        store.save_token(other)
        assert token.refresh_token is not None and other.refresh_token is not None
        store.delete_refresh_token(token.refresh_token)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_refresh_token(token.refresh_token)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_existing_token_of_user(token.client_id, token.grant_type, token.user_id)
        assert store.fetch_by_token(other.token) == other
        assert store.fetch_by_refresh_token(other.refresh_token) == other

    def test_delete_unknown_refresh_token_raises_access_token_not_found(self) -> None:
        store = self.token_store()
        token = self.fresh_token()
        store.save_token(token)
        with pytest.raises(AccessTokenNotFound):
            store.delete_refresh_token(_secret("refresh"))
        assert token.refresh_token is not None
        store.delete_refresh_token(token.refresh_token)
        with pytest.raises(AccessTokenNotFound):
            store.delete_refresh_token(token.refresh_token)

    def test_delete_refresh_token_is_exactly_once_under_concurrent_threads(self) -> None:
        """Of concurrent revocations of one refresh token, one succeeds: a refresh grant that
        revokes the old token before issuing a new one then issues exactly one."""
        store = self.token_store()
        tokens = [self.fresh_token() for _ in range(20)]
        for token in tokens:
            store.save_token(token)
        _assert_exactly_once([token.refresh_token or "" for token in tokens], store.delete_refresh_token, AccessTokenNotFound, self.racing_threads)

    def test_existing_token_of_user_is_the_latest_saved(self) -> None:
        store = self.token_store()
        first = self.fresh_token()
        second = self.fresh_token(client_id=first.client_id, user_id=first.user_id)
        store.save_token(first)
        store.save_token(second)
        assert store.fetch_existing_token_of_user(first.client_id, first.grant_type, first.user_id) == second

    def test_existing_token_of_user_matches_client_grant_and_user(self) -> None:
        store = self.token_store()
        token = self.fresh_token()
        store.save_token(token)
        assert token.user_id is not None
        for client_id, grant_type, user_id in [
            (_secret("client"), token.grant_type, token.user_id),
            (token.client_id, "password", token.user_id),
            (token.client_id, token.grant_type, _secret("user")),
            (token.client_id, token.grant_type, None),
        ]:
            with pytest.raises(AccessTokenNotFound):
                store.fetch_existing_token_of_user(client_id, grant_type, user_id)

    def test_existing_token_of_user_without_user_id(self) -> None:
        store = self.token_store()
        token = self.fresh_token(grant_type="client_credentials", user_id=None, refresh_token=None, refresh_expires_at=None)
        store.save_token(token)
        assert store.fetch_existing_token_of_user(token.client_id, "client_credentials", None) == token

    def test_existing_token_of_user_is_not_returned_once_expired(self) -> None:
        store = self.token_store()
        token = self.fresh_token(expires_at=int(self.clock()) + 60)
        store.save_token(token)
        self.clock.advance(60)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_existing_token_of_user(token.client_id, token.grant_type, token.user_id)

    def test_a_refresh_token_is_not_an_access_token(self) -> None:
        store = self.token_store()
        holder = self.fresh_token()
        same_string = self.fresh_token(refresh_token=holder.token)
        store.save_token(holder)
        store.save_token(same_string)
        assert store.fetch_by_token(holder.token) == holder
        assert store.fetch_by_refresh_token(holder.token) == same_string


class RevocableAccessTokenStoreContract(ExtendedAccessTokenStoreContract):
    """The extended access-token contract plus ``revoke_token`` (RFC 7009)."""

    @abc.abstractmethod
    def make_store(self, clock: ManualClock) -> RevocableAccessTokenStoreProtocol:
        """Return the store under test, reading the time from ``clock``."""

    def token_store(self) -> RevocableAccessTokenStoreProtocol:
        self.clock = ManualClock()
        return self.make_store(self.clock)

    def test_every_field_of_a_token_survives_the_store(self) -> None:
        store = self.token_store()
        token = self.fresh_token(token_type="DPoP", issued_at=int(self.clock()) - 5)
        store.save_token(token)
        found = store.fetch_by_token(token.token)
        assert found == token
        assert (found.token_type, found.issued_at) == ("DPoP", int(self.clock()) - 5)

    @pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
    def test_revoking_an_access_token_leaves_its_refresh_token(self, hint: Any) -> None:
        store = self.token_store()
        token, other = self.fresh_token(), self.fresh_token()
        store.save_token(token)
        store.save_token(other)
        store.revoke_token(token.token, hint)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_existing_token_of_user(token.client_id, token.grant_type, token.user_id)
        assert token.refresh_token is not None
        assert store.fetch_by_refresh_token(token.refresh_token) == token
        assert store.fetch_by_token(other.token) == other

    @pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
    def test_revoking_a_refresh_token_revokes_its_access_token(self, hint: Any) -> None:
        store = self.token_store()
        token, other = self.fresh_token(), self.fresh_token()
        store.save_token(token)
        store.save_token(other)
        assert token.refresh_token is not None and other.refresh_token is not None
        store.revoke_token(token.refresh_token, hint)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_refresh_token(token.refresh_token)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_existing_token_of_user(token.client_id, token.grant_type, token.user_id)
        assert store.fetch_by_token(other.token) == other
        assert store.fetch_by_refresh_token(other.refresh_token) == other

    def test_revoking_keeps_a_newer_token_of_the_same_user(self) -> None:
        store = self.token_store()
        old = self.fresh_token()
        new = self.fresh_token(client_id=old.client_id, user_id=old.user_id)
        store.save_token(old)
        store.save_token(new)
        assert old.refresh_token is not None
        store.revoke_token(old.refresh_token)
        assert store.fetch_existing_token_of_user(old.client_id, old.grant_type, old.user_id) == new

    def test_revoking_an_unknown_or_revoked_token_is_not_an_error(self) -> None:
        store = self.token_store()
        token = self.fresh_token()
        store.save_token(token)
        assert token.refresh_token is not None
        store.revoke_token(_secret("unknown"))
        store.revoke_token(token.refresh_token)
        store.revoke_token(token.refresh_token)
        store.revoke_token(token.token, "access_token")
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)

    def test_revoking_an_expired_token_is_not_an_error(self) -> None:
        store = self.token_store()
        token = self.fresh_token()
        store.save_token(token)
        self.clock.advance(HOUR)
        store.revoke_token(token.token)
        assert token.refresh_token is not None
        assert store.fetch_by_refresh_token(token.refresh_token) == token

    @pytest.mark.parametrize("awkward", AWKWARD_SECRETS, ids=range(len(AWKWARD_SECRETS)))
    def test_any_string_can_be_revoked(self, awkward: str) -> None:
        store = self.token_store()
        token = self.fresh_token(token=awkward + "-a", refresh_token=awkward + "-r")
        store.save_token(token)
        store.revoke_token(awkward + "-r")
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(awkward + "-a")

    def test_an_unknown_token_type_hint_is_refused(self) -> None:
        store = self.token_store()
        token = self.fresh_token()
        store.save_token(token)
        with pytest.raises((ValueError, TypeError)):  # TypeError: a run-time type checker may refuse it first
            store.revoke_token(token.token, "id_token")  # type: ignore[arg-type]  # what the check refuses
        assert store.fetch_by_token(token.token) == token


class AuthCodeStoreContract(_Contract):
    """The documented authorization-code contract: ``save_code`` and ``fetch_by_code``."""

    @abc.abstractmethod
    def make_store(self, clock: ManualClock) -> AuthCodeStoreProtocol:
        """Return the store under test, reading the time from ``clock``."""

    def code_store(self) -> AuthCodeStoreProtocol:
        self.clock = ManualClock()
        return self.make_store(self.clock)

    def test_saved_code_is_found_with_every_field(self) -> None:
        store = self.code_store()
        code = self.fresh_code()
        store.save_code(code)
        assert store.fetch_by_code(code.code) == code

    def test_save_code_refuses_what_is_not_an_authorization_code(self) -> None:
        """A foreign code that quacks like ours is a TypeError, and nothing of it is stored."""
        store = self.code_store()
        code = self.fresh_code()
        with pytest.raises(TypeError):
            store.save_code(_look_alike(code))  # type: ignore[arg-type]  # the mistake under test
        with pytest.raises(AuthCodeNotFound):
            store.fetch_by_code(code.code)

    def test_fetching_a_code_does_not_use_it_up(self) -> None:
        store = self.code_store()
        code = self.fresh_code()
        store.save_code(code)
        assert store.fetch_by_code(code.code) == store.fetch_by_code(code.code) == code

    def test_unknown_code_raises_auth_code_not_found(self) -> None:
        store = self.code_store()
        store.save_code(self.fresh_code())
        with pytest.raises(AuthCodeNotFound):
            store.fetch_by_code(_secret("code"))

    def test_code_expires_at_its_expires_at(self) -> None:
        store = self.code_store()
        code = self.fresh_code(expires_at=int(self.clock()) + 60)
        store.save_code(code)
        self.clock.advance(59)
        assert store.fetch_by_code(code.code) == code
        self.clock.advance(1)
        with pytest.raises(AuthCodeNotFound):
            store.fetch_by_code(code.code)

    def test_already_expired_code_is_not_stored(self) -> None:
        store = self.code_store()
        code = self.fresh_code(expires_at=int(self.clock()))
        store.save_code(code)
        with pytest.raises(AuthCodeNotFound):
            store.fetch_by_code(code.code)

    def test_saving_an_expired_version_removes_the_code(self) -> None:
        store = self.code_store()
        code = self.fresh_code()
        store.save_code(code)
        store.save_code(attrs.evolve(code, expires_at=int(self.clock())))
        with pytest.raises(AuthCodeNotFound):
            store.fetch_by_code(code.code)

    @pytest.mark.parametrize("awkward", AWKWARD_SECRETS, ids=range(len(AWKWARD_SECRETS)))
    def test_any_string_works_as_a_code(self, awkward: str) -> None:
        store = self.code_store()
        code = self.fresh_code(code=awkward + _secret(""))
        store.save_code(code)
        assert store.fetch_by_code(code.code) == code


class ExtendedAuthCodeStoreContract(AuthCodeStoreContract):
    """The extended authorization-code contract: ``delete_code`` and exactly-once ``consume_code``."""

    @abc.abstractmethod
    def make_store(self, clock: ManualClock) -> ExtendedAuthCodeStoreProtocol:
        """Return the store under test, reading the time from ``clock``."""

    def code_store(self) -> ExtendedAuthCodeStoreProtocol:
        self.clock = ManualClock()
        return self.make_store(self.clock)

    def test_deleted_code_is_gone(self) -> None:
        store = self.code_store()
        code, other = self.fresh_code(), self.fresh_code()
        store.save_code(code)
        store.save_code(other)
        store.delete_code(code.code)
        with pytest.raises(AuthCodeNotFound):
            store.fetch_by_code(code.code)
        assert store.fetch_by_code(other.code) == other

    def test_deleting_an_unknown_code_is_not_an_error(self) -> None:
        store = self.code_store()
        store.delete_code(_secret("code"))

    def test_consume_code_returns_the_code_once(self) -> None:
        store = self.code_store()
        code = self.fresh_code()
        store.save_code(code)
        assert store.consume_code(code.code) == code
        with pytest.raises(AuthCodeNotFound):
            store.consume_code(code.code)
        with pytest.raises(AuthCodeNotFound):
            store.fetch_by_code(code.code)

    def test_consume_unknown_or_expired_code_raises_auth_code_not_found(self) -> None:
        store = self.code_store()
        with pytest.raises(AuthCodeNotFound):
            store.consume_code(_secret("code"))
        code = self.fresh_code(expires_at=int(self.clock()) + 60)
        store.save_code(code)
        self.clock.advance(60)
        with pytest.raises(AuthCodeNotFound):
            store.consume_code(code.code)

    def test_consume_code_is_exactly_once_under_concurrent_threads(self) -> None:
        store = self.code_store()
        codes = [self.fresh_code() for _ in range(20)]
        for code in codes:
            store.save_code(code)
        _assert_exactly_once([code.code for code in codes], store.consume_code, AuthCodeNotFound, self.racing_threads)


class TokenStoreContract(RevocableAccessTokenStoreContract, ExtendedAuthCodeStoreContract):
    """Every token and code operation, plus: tokens and codes never collide."""

    @abc.abstractmethod
    def make_store(self, clock: ManualClock) -> TokenStoreProtocol:
        """Return the store under test, reading the time from ``clock``."""

    def store(self) -> TokenStoreProtocol:
        self.clock = ManualClock()
        return self.make_store(self.clock)

    def test_a_code_and_a_token_with_the_same_string_never_collide(self) -> None:
        store = self.store()
        shared = _secret("shared")
        token = self.fresh_token(token=shared, refresh_token=shared)
        code = self.fresh_code(code=shared)
        store.save_token(token)
        store.save_code(code)
        assert store.fetch_by_code(shared) == code
        assert store.fetch_by_token(shared) == token
        assert store.fetch_by_refresh_token(shared) == token
        assert store.consume_code(shared) == code
        assert store.fetch_by_token(shared) == token
        store.save_code(code)
        store.delete_code(shared)
        assert store.fetch_by_token(shared) == token
        assert store.fetch_by_refresh_token(shared) == token
        store.save_code(code)
        store.delete_refresh_token(shared)
        assert store.fetch_by_code(shared) == code
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(shared)
        store.save_token(token)
        store.revoke_token(shared)
        assert store.fetch_by_code(shared) == code


class LifecycleTokenStoreContract(TokenStoreContract):
    """Every token and code operation with the token lifecycle: grants as families, code replay,
    refresh rotation with reuse detection, revocation by grant, user and client."""

    @abc.abstractmethod
    def make_store(self, clock: ManualClock) -> LifecycleTokenStoreProtocol:
        """Return the store under test, reading the time from ``clock``."""

    def store(self) -> LifecycleTokenStoreProtocol:
        self.clock = ManualClock()
        return self.make_store(self.clock)

    def issue_from_code(self, store: LifecycleTokenStoreProtocol, **changes: Any) -> tuple[AuthorizationCode, AccessToken]:
        """Save a code, consume it and save the token issued from it, as a token endpoint does."""
        code = self.fresh_code(**changes)
        store.save_code(code)
        consumed = store.consume_code(code.code)
        token = self.fresh_token(client_id=code.client_id, user_id=code.user_id, grant_id=consumed.grant_id)
        store.save_token(token)
        return code, token

    def refresh(self, store: LifecycleTokenStoreProtocol, old: AccessToken) -> AccessToken:
        """Rotate ``old``'s refresh token, as a token endpoint does: retire it, save the new token."""
        assert old.refresh_token is not None
        store.delete_refresh_token(old.refresh_token)
        new = self.fresh_token(client_id=old.client_id, user_id=old.user_id, grant_id=old.grant_id)
        store.save_token(new)
        return new

    def assert_dead(self, store: LifecycleTokenStoreProtocol, *tokens: AccessToken) -> None:
        for token in tokens:
            with pytest.raises(AccessTokenNotFound):
                store.fetch_by_token(token.token)
            if token.refresh_token is not None:
                with pytest.raises(AccessTokenNotFound):
                    store.fetch_by_refresh_token(token.refresh_token)

    def assert_live(self, store: LifecycleTokenStoreProtocol, *tokens: AccessToken) -> None:
        for token in tokens:
            assert store.fetch_by_token(token.token) == token
            if token.refresh_token is not None:
                assert store.fetch_by_refresh_token(token.refresh_token) == token

    def test_a_replayed_code_is_refused_and_revokes_the_tokens_issued_from_it(self) -> None:
        store = self.store()
        code, token = self.issue_from_code(store)
        refreshed = self.refresh(store, token)
        bystander = self.issue_from_code(store, client_id=code.client_id, user_id=code.user_id)[1]
        with pytest.raises(CodeReplayError):
            store.consume_code(code.code)
        self.assert_dead(store, refreshed)
        self.assert_live(store, bystander)  # another grant of the same client and user
        with pytest.raises(CodeReplayError):
            store.fetch_by_code(code.code)
        with pytest.raises(GrantRevokedError):
            store.save_token(self.fresh_token(client_id=code.client_id, grant_id=code.grant_id))

    def test_an_unknown_or_expired_code_revokes_nothing(self) -> None:
        store = self.store()
        code, token = self.issue_from_code(store)
        with pytest.raises(AuthCodeNotFound) as unknown:
            store.consume_code(_secret("code"))
        assert type(unknown.value) is AuthCodeNotFound
        self.clock.advance(601)  # past the code's expiry: its consumed marker is gone with it
        with pytest.raises(AuthCodeNotFound) as expired:
            store.consume_code(code.code)
        assert type(expired.value) is AuthCodeNotFound
        self.assert_live(store, token)

    def test_a_deleted_code_is_no_replay(self) -> None:
        store = self.store()
        code = self.fresh_code()
        store.save_code(code)
        store.delete_code(code.code)
        with pytest.raises(AuthCodeNotFound) as deleted:
            store.consume_code(code.code)
        assert type(deleted.value) is AuthCodeNotFound

    def test_of_concurrent_consumers_one_wins_and_the_others_are_replays(self) -> None:
        store = self.store()
        codes = [self.fresh_code() for _ in range(10)]
        for code in codes:
            store.save_code(code)
        # A loser that comes after another loser revoked the grant may just find it dead.
        _assert_exactly_once([code.code for code in codes], store.consume_code, AuthCodeNotFound, self.racing_threads)
        for code in codes:  # the replays revoked each grant: the winner can no longer issue from it
            with pytest.raises(GrantRevokedError):
                store.save_token(self.fresh_token(client_id=code.client_id, grant_id=code.grant_id))

    def test_a_refreshed_token_joins_the_grant_and_the_old_refresh_token_is_retired(self) -> None:
        store = self.store()
        _, first = self.issue_from_code(store)
        second = self.refresh(store, first)
        third = self.refresh(store, second)
        self.assert_live(store, third)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(second.token)  # retired with its refresh token

    def test_presenting_a_retired_refresh_token_revokes_the_whole_grant(self) -> None:
        store = self.store()
        _, first = self.issue_from_code(store)
        second = self.refresh(store, first)
        third = self.refresh(store, second)
        other = self.issue_from_code(store, client_id=first.client_id, user_id=first.user_id)[1]
        assert first.refresh_token is not None
        with pytest.raises(RefreshTokenReuseError):
            store.fetch_by_refresh_token(first.refresh_token)
        self.assert_dead(store, third)
        self.assert_live(store, other)
        with pytest.raises(AccessTokenNotFound):
            store.delete_refresh_token(third.refresh_token or "")
        with pytest.raises(GrantRevokedError):
            store.save_token(self.fresh_token(client_id=first.client_id, grant_id=first.grant_id))

    def test_retiring_a_refresh_token_twice_is_reuse(self) -> None:
        store = self.store()
        token = self.fresh_token()
        store.save_token(token)
        second = self.refresh(store, token)
        with pytest.raises(RefreshTokenReuseError):
            store.delete_refresh_token(token.refresh_token or "")
        self.assert_dead(store, second)

    def test_a_retired_refresh_token_is_remembered_until_it_would_have_expired(self) -> None:
        store = self.store()
        token = self.fresh_token(refresh_expires_at=int(self.clock()) + 100)
        store.save_token(token)
        second = self.refresh(store, token)
        self.clock.advance(101)
        with pytest.raises(AccessTokenNotFound) as expired:
            store.fetch_by_refresh_token(token.refresh_token or "")
        assert type(expired.value) is AccessTokenNotFound
        self.assert_live(store, second)

    def test_of_concurrent_refreshes_one_wins_and_the_others_are_reuse(self) -> None:
        store = self.store()
        tokens = [self.fresh_token() for _ in range(10)]
        for token in tokens:
            store.save_token(token)
        _assert_exactly_once([token.refresh_token or "" for token in tokens], store.delete_refresh_token, AccessTokenNotFound, self.racing_threads)
        for token in tokens:
            with pytest.raises(GrantRevokedError):
                store.save_token(self.fresh_token(client_id=token.client_id, grant_id=token.grant_id))

    def test_revoking_a_refresh_token_revokes_its_grant(self) -> None:
        store = self.store()
        _, first = self.issue_from_code(store)
        second = self.refresh(store, first)
        sibling = self.fresh_token(client_id=first.client_id, user_id=first.user_id, grant_id=first.grant_id, refresh_token=None, refresh_expires_at=None)
        store.save_token(sibling)
        store.revoke_token(second.refresh_token or "", "refresh_token")
        self.assert_dead(store, second, sibling)

    def test_a_grant_of_another_client_cannot_be_joined(self) -> None:
        store = self.store()
        token = self.fresh_token()
        store.save_token(token)
        with pytest.raises(RecordValueError, match="another client"):
            store.save_token(self.fresh_token(grant_id=token.grant_id))
        with pytest.raises(RecordValueError, match="another client"):
            store.save_code(self.fresh_code(grant_id=token.grant_id))
        self.assert_live(store, token)

    def test_revoke_grant_ends_its_tokens_and_code_and_nothing_else(self) -> None:
        store = self.store()
        _, token = self.issue_from_code(store)
        code = self.fresh_code(client_id=token.client_id, user_id=token.user_id, grant_id=token.grant_id)
        store.save_code(code)
        other = self.issue_from_code(store, client_id=token.client_id, user_id=token.user_id)[1]
        store.revoke_grant(token.grant_id)
        self.assert_dead(store, token)
        with pytest.raises(AuthCodeNotFound):
            store.consume_code(code.code)
        self.assert_live(store, other)
        store.revoke_grant(_secret("grant"))  # unknown: not an error

    def test_revoke_user_ends_every_grant_of_the_user_and_only_those(self) -> None:
        store = self.store()
        user, client, other_client = _secret("user"), _secret("client"), _secret("client")
        first = self.issue_from_code(store, client_id=client, user_id=user)[1]
        second = self.refresh(store, self.issue_from_code(store, client_id=other_client, user_id=user)[1])
        pending = self.fresh_code(client_id=client, user_id=user)
        store.save_code(pending)
        someone_else = self.issue_from_code(store, client_id=client)[1]
        store.revoke_user(user)
        self.assert_dead(store, first, second)
        with pytest.raises(AuthCodeNotFound):
            store.consume_code(pending.code)
        self.assert_live(store, someone_else)
        after = self.issue_from_code(store, client_id=client, user_id=user)[1]  # a new login works
        self.assert_live(store, after)
        store.revoke_user(_secret("user"))  # unknown: not an error

    def test_revoke_user_for_one_client_leaves_the_users_other_clients(self) -> None:
        store = self.store()
        user, client, other_client = _secret("user"), _secret("client"), _secret("client")
        mine = self.issue_from_code(store, client_id=client, user_id=user)[1]
        theirs = self.issue_from_code(store, client_id=other_client, user_id=user)[1]
        store.revoke_user(user, client)
        self.assert_dead(store, mine)
        self.assert_live(store, theirs)

    def test_revoke_client_ends_its_tokens_and_unconsumed_codes(self) -> None:
        store = self.store()
        client = _secret("client")
        tokens = [self.issue_from_code(store, client_id=client)[1] for _ in range(3)]
        direct = self.fresh_token(client_id=client, grant_type="client_credentials", user_id=None, refresh_token=None, refresh_expires_at=None)
        store.save_token(direct)
        pending = self.fresh_code(client_id=client)
        store.save_code(pending)
        other = self.issue_from_code(store)[1]
        store.revoke_client(client)
        self.assert_dead(store, *tokens, direct)
        with pytest.raises(AuthCodeNotFound):
            store.consume_code(pending.code)
        self.assert_live(store, other)
        after = self.issue_from_code(store, client_id=client)[1]  # the client (a new secret) works again
        self.assert_live(store, after)
        store.revoke_client(_secret("client"))  # unknown: not an error


class ClientStoreContract(abc.ABC):
    """The documented client contract: ``fetch_by_client_id``."""

    @abc.abstractmethod
    def make_client_store(self, clients: Sequence[Client]) -> ClientStoreProtocol:
        """Return the store under test, holding exactly ``clients``."""

    def test_registered_clients_are_found(self) -> None:
        clients = [
            Client(_secret("client"), _secret("secret"), ["https://a.example/cb"]),
            Client(_secret("client"), "", ["com.example.app:/cb"], authorized_grants=["authorization_code"], authorized_response_types=["code"]),
            Client(_secret("client"), _secret("secret"), scopes=["read", "write"], token_endpoint_auth_method="client_secret_post"),
        ]
        store = self.make_client_store(clients)
        for client in clients:
            found = store.fetch_by_client_id(client.identifier)
            # A store may keep the secret hashed: the record is the registered one but for that.
            assert attrs.evolve(found, secret=client.secret, secret_hash=None) == client
            assert found.check_secret(client.secret) is not client.is_public
            assert not found.check_secret(_secret("another secret"))

    def test_unknown_client_raises_client_not_found_error(self) -> None:
        store = self.make_client_store([Client(_secret("client"), _secret("secret"))])
        with pytest.raises(ClientNotFoundError):
            store.fetch_by_client_id(_secret("client"))


def _assert_exactly_once(keys: Sequence[str], attempt: Callable[[str], object], miss: type[Exception], threads: int) -> None:
    """Race ``threads`` threads through every key of ``keys`` (each in its own order); assert that
    for each key ``attempt`` succeeded once and raised ``miss`` for every other thread."""
    wins: Counter[str] = Counter()
    losses: Counter[str] = Counter()
    failures: list[BaseException] = []
    tally = threading.Lock()
    start = threading.Barrier(threads)

    def racer(order: Sequence[str]) -> None:
        start.wait()
        for key in order:
            try:
                attempt(key)
            except miss:
                with tally:
                    losses[key] += 1
            except BaseException as error:  # reported below, with the racer's failure
                failures.append(error)
            else:
                with tally:
                    wins[key] += 1

    orders = [list(keys[i:]) + list(keys[:i]) for i in range(threads)]
    _run_threads([functools.partial(racer, order) for order in orders])
    assert not failures, failures
    assert all(wins[key] == 1 for key in keys), "some were won more than once, or never"
    assert all(losses[key] == threads - 1 for key in keys), "some losers did not get the documented miss"


def _run_threads(targets: Sequence[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _look_alike(record: AccessToken | AuthorizationCode) -> object:
    """An object with every field and method of ``record`` that is not one of our records."""
    fields = attrs.asdict(record, recurse=False)
    return types.SimpleNamespace(**fields, is_expired=record.is_expired, is_refresh_expired=getattr(record, "is_refresh_expired", None))
