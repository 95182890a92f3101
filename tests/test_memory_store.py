"""The in-memory stores: the conformance suite, the documented bases, bounded memory."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Sequence

import attrs
import pytest

from oauth2_store import AccessToken, AuthorizationCode, Client
from oauth2_store.clock import ManualClock
from oauth2_store.error import AccessTokenNotFound, RecordTypeError
from oauth2_store.protocols import (
    ClientStoreProtocol,
    ExtendedAccessTokenStoreProtocol,
    ExtendedAuthCodeStoreProtocol,
    TokenStoreProtocol,
)
from oauth2_store.store import AccessTokenStore, AuthCodeStore, ClientStore, LocalClientStore, LocalTokenStore
from oauth2_store.testing import ClientStoreContract, LifecycleTokenStoreContract


class TestLocalTokenStore(LifecycleTokenStoreContract):
    def make_store(self, clock: ManualClock) -> LocalTokenStore:
        return LocalTokenStore(clock=clock)


class TestLocalClientStore(ClientStoreContract):
    def make_client_store(self, clients: Sequence[Client]) -> LocalClientStore:
        store = LocalClientStore()
        for client in clients:
            store.add_client(
                client.identifier,
                client.secret,
                client.redirect_uris,
                authorized_grants=client.authorized_grants,
                authorized_response_types=client.authorized_response_types,
                scopes=client.scopes,
                token_endpoint_auth_method=client.token_endpoint_auth_method,
            )
        return store


def test_concrete_stores_have_exactly_the_documented_bases() -> None:
    assert LocalTokenStore.__bases__ == (AccessTokenStore, AuthCodeStore)
    assert LocalClientStore.__bases__ == (ClientStore,)


def test_local_token_store_fulfils_every_token_contract_at_run_time() -> None:
    assert isinstance(LocalTokenStore(), TokenStoreProtocol)
    assert isinstance(LocalClientStore(), ClientStoreProtocol)


def test_add_client_validates_like_client_and_returns_the_record() -> None:
    store = LocalClientStore()
    client = store.add_client("app", "secret", ["https://a.example/cb"], authorized_grants=["password"])
    assert client == Client("app", "secret", ["https://a.example/cb"], authorized_grants=["password"])
    assert store.fetch_by_client_id("app") is client
    with pytest.raises(RecordTypeError):
        store.add_client("app2", "secret", "https://a.example/cb")


class DocumentedOnlyStore(AccessTokenStore, AuthCodeStore):
    """A user's store written against python-oauth2's documented methods and nothing else."""

    def __init__(self) -> None:
        self.tokens: dict[str, AccessToken] = {}
        self.codes: dict[str, AuthorizationCode] = {}

    def save_token(self, access_token: AccessToken) -> None:
        if access_token.refresh_token is not None:
            self.tokens[access_token.refresh_token] = access_token

    def fetch_by_refresh_token(self, refresh_token: str) -> AccessToken:
        if refresh_token not in self.tokens:
            raise AccessTokenNotFound
        return self.tokens[refresh_token]

    def save_code(self, authorization_code: AuthorizationCode) -> None:
        self.codes[authorization_code.code] = authorization_code

    def fetch_by_code(self, code: str) -> AuthorizationCode:
        return self.codes[code]


def test_a_subclass_with_only_the_documented_methods_works_and_claims_no_more() -> None:
    store = DocumentedOnlyStore()
    token = AccessToken("c", "password", "t", refresh_token="r")
    store.save_token(token)
    assert store.fetch_by_refresh_token("r") == token
    assert not isinstance(store, ExtendedAccessTokenStoreProtocol)
    assert not isinstance(store, ExtendedAuthCodeStoreProtocol)


def test_a_subclass_missing_a_documented_method_cannot_be_instantiated() -> None:
    class Incomplete(AccessTokenStore):
        def save_token(self, access_token: AccessToken) -> None:
            pass

    with pytest.raises(TypeError, match="fetch_by_refresh_token"):
        Incomplete()  # type: ignore[abstract]  # the point: the ABC refuses it


def test_memory_stays_bounded_by_the_live_records() -> None:
    clock = ManualClock(start=1_000_000)
    store = LocalTokenStore(clock=clock)
    rounds, per_round = 20, 150
    traced: list[int] = []
    tracemalloc.start()
    try:
        for round_ in range(rounds):
            now = int(clock())
            for i in range(per_round):
                store.save_token(
                    AccessToken("c", "password", f"t-{round_}-{i}", expires_at=now + 10, refresh_token=f"r-{round_}-{i}", refresh_expires_at=now + 20)
                )
                store.save_code(AuthorizationCode("c", f"code-{round_}-{i}", now + 5, None, []))
            clock.advance(30)
            gc.collect()
            traced.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    # Each round's entries have expired before the next round writes. A store that kept them would
    # grow by one round's worth (what round 0 cost) every round; this one must not grow by even
    # one round's worth over the last 15 rounds.
    one_round = traced[0]
    assert traced[-1] - traced[4] < one_round, traced
    # 9,000 entries were written; every one has expired except what the last write saw live.
    store.save_code(AuthorizationCode("c", "last", int(clock()) + 5, None, []))
    assert len(store) == 2  # the code and its grant
    assert len(store._expiries) <= 2 * len(store) + 1024
    assert len(store._latest_of_user) == 0


def test_replaced_records_do_not_grow_the_expiry_schedule_without_bound() -> None:
    clock = ManualClock(start=1_000_000)
    store = LocalTokenStore(clock=clock)
    for i in range(5_000):
        # The same code saved again and again, never expiring within the test.
        store.save_code(AuthorizationCode("c", "same", int(clock()) + 3600 + i, None, []))
    assert len(store) == 2  # the code and its grant
    assert len(store._expiries) <= 2 * len(store) + 1024
    assert store.fetch_by_code("same").expires_at == 1_000_000 + 3600 + 4_999


def test_a_token_string_saved_again_for_another_user_leaves_no_stale_user_entry() -> None:
    store = LocalTokenStore()
    alice = AccessToken("c", "password", "shared", user_id="alice")
    store.save_token(alice)
    store.save_token(attrs.evolve(alice, user_id="bob"))
    assert store.fetch_existing_token_of_user("c", "password", "bob").user_id == "bob"
    with pytest.raises(AccessTokenNotFound):
        store.fetch_existing_token_of_user("c", "password", "alice")
    assert len(store._latest_of_user) == 1


def test_revoking_a_large_live_set_shrinks_the_expiry_schedule_with_it() -> None:
    clock = ManualClock(start=1_000_000)
    store = LocalTokenStore(clock=clock)
    count = 20_000
    for i in range(count):
        store.save_token(AccessToken("c", "password", f"t-{i}", expires_at=1_086_400, refresh_token=f"r-{i}", refresh_expires_at=3_592_000))
    assert len(store._expiries) >= 2 * count  # the peak: one entry per token and per refresh token
    for i in range(count):
        store.delete_refresh_token(f"r-{i}")
    # Nothing has expired yet: only revocation can have shrunk the schedule, for weeks to come.
    # What is left is each grant and its retired refresh token's marker, until they would expire.
    assert len(store) == 2 * count
    assert not store._tokens and not store._refresh_tokens
    assert len(store._expiries) <= 2 * len(store) + 1024
