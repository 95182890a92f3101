"""The in-memory stores: the conformance suite, the documented bases, bounded memory."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Sequence

import attrs
import pytest

from oauth2_store import AccessToken, AuthorizationCode, Client
from oauth2_store.clock import ManualClock
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, CodeReplayError, GrantRevokedError, RecordTypeError
from oauth2_store.protocols import (
    ClientStoreProtocol,
    ExtendedAccessTokenStoreProtocol,
    ExtendedAuthCodeStoreProtocol,
    TokenStoreProtocol,
)
from oauth2_store.store import AccessTokenStore, AuthCodeStore, ClientStore, LocalClientStore, LocalTokenStore
from oauth2_store.store.memory import _Grant
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


def test_consumed_and_retired_markers_go_with_their_grants_once_expired() -> None:
    clock = ManualClock(start=1_000_000)
    store = LocalTokenStore(clock=clock)
    now = int(clock())
    for i in range(500):
        code = AuthorizationCode("c", f"code-{i}", now + 60, None, [], user_id=f"u-{i % 7}")
        store.save_code(code)
        store.consume_code(code.code)
        old = AccessToken("c", "authorization_code", f"t-{i}", expires_at=now + 10, refresh_token=f"r-{i}", refresh_expires_at=now + 100, grant_id=code.grant_id)
        store.save_token(old)
        store.delete_refresh_token(f"r-{i}")
        store.save_token(AccessToken("c", "authorization_code", f"t2-{i}", expires_at=now + 10, refresh_token=f"r2-{i}", refresh_expires_at=now + 200, grant_id=code.grant_id))
    assert len(store._consumed) == len(store._retired) == len(store._grants) == 500
    clock.advance(150)  # the codes, the retired refresh tokens and the access tokens have expired
    store.save_code(AuthorizationCode("c", "probe", int(clock()) + 5, None, []))
    assert not store._consumed and not store._retired and not store._tokens
    assert len(store._grants) == 501  # kept for the live refresh tokens
    clock.advance(100)
    store.save_code(AuthorizationCode("c", "last", int(clock()) + 5, None, []))
    assert len(store) == 2  # the code and its grant
    assert not store._grants_of_user


def test_a_grant_emptied_by_deletions_is_still_purged_after_a_compaction() -> None:
    clock = ManualClock(start=1_000_000)
    store = LocalTokenStore(clock=clock)
    now = int(clock())
    for i in range(300):
        store.save_code(AuthorizationCode("c", f"code-{i}", now + 60, None, []))
        store.delete_code(f"code-{i}")
    before = len(store._expiries)
    for i in range(3_000):  # stale entries of one code saved again and again, until a compaction
        store.save_code(AuthorizationCode("c", "same", now + 30 + i % 20, None, []))
    assert len(store._expiries) < before + 3_000  # compacted: the deleted codes' entries are gone
    assert len(store._grants) == 301
    clock.advance(61)
    store.save_code(AuthorizationCode("c", "last", int(clock()) + 5, None, []))
    assert len(store) == 2  # the code and its grant


def test_a_grant_refreshed_many_times_keeps_a_bounded_member_list() -> None:
    store = LocalTokenStore()
    token = AccessToken("c", "password", "t-0", refresh_token="r-0", user_id="alice")
    store.save_token(token)
    for i in range(1, 2_000):
        assert token.refresh_token is not None
        store.delete_refresh_token(token.refresh_token)
        token = AccessToken("c", "password", f"t-{i}", refresh_token=f"r-{i}", user_id="alice", grant_id=token.grant_id)
        store.save_token(token)
        store.save_token(token)  # saved again: a second member, pruned with the stale ones
    grant = store._grants[token.grant_id]
    assert isinstance(grant, _Grant) and len(grant) <= 2 * 1 + 8  # one live record, pruned at 2 x 1 + 8
    store.revoke_user("alice")
    with pytest.raises(AccessTokenNotFound):
        store.fetch_by_token(token.token)
    with pytest.raises(AccessTokenNotFound):
        store.fetch_by_refresh_token("r-1999")


def test_a_save_with_nothing_live_starts_no_grant() -> None:
    clock = ManualClock(start=1_000_000)
    store = LocalTokenStore(clock=clock)
    store.save_token(AccessToken("c", "password", "t", expires_at=999_000, refresh_token="r", refresh_expires_at=999_500, user_id="alice"))
    store.save_code(AuthorizationCode("c", "code", 999_000, None, [], user_id="alice"))
    assert len(store) == 0
    assert not store._grants_of_user


def test_pruning_a_grants_member_list_keeps_every_live_member() -> None:
    store = LocalTokenStore()
    code = AuthorizationCode("c", "code", 2_000_000_000, None, [])
    store.save_code(code)
    tokens = [AccessToken("c", "password", f"t-{i}", refresh_token=f"r-{i}", grant_id=code.grant_id) for i in range(100)]
    for token in tokens:
        store.save_token(token)
        store.save_token(token)  # duplicates, so that the pruning has something to drop
    grant = store._grants[code.grant_id]
    assert isinstance(grant, _Grant) and len(grant) < 2 * len(tokens)
    store.revoke_grant(code.grant_id)
    assert len(store) == 1  # the revoked grant, kept until it would have expired
    for token in tokens:
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)


@pytest.mark.parametrize("revoke", ["replay", "grant", "user", "client", "refresh token"])
def test_no_code_of_a_revoked_grant_can_be_consumed(revoke: str) -> None:
    store = LocalTokenStore()
    first = AuthorizationCode("c", "first", 2_000_000_000, None, [], user_id="alice")
    store.save_code(first)
    token = AccessToken("c", "authorization_code", "t", refresh_token="r", user_id="alice", grant_id=first.grant_id)
    store.save_token(token)  # the second member: the grant gets its own object
    store.save_code(AuthorizationCode("c", "second", 2_000_000_000, None, [], user_id="alice", grant_id=first.grant_id))
    store.save_code(AuthorizationCode("c", "other", 2_000_000_000, None, [], user_id="bob"))
    if revoke == "replay":
        store.consume_code("first")
        with pytest.raises(CodeReplayError):
            store.consume_code("first")
    elif revoke == "grant":
        store.revoke_grant(first.grant_id)
    elif revoke == "user":
        store.revoke_user("alice")
    elif revoke == "client":
        store.revoke_client("c")
    else:
        store.revoke_token("r")
    with pytest.raises(AuthCodeNotFound):
        store.consume_code("second")
    with pytest.raises(GrantRevokedError):
        store.save_code(AuthorizationCode("c", "third", 2_000_000_000, None, [], grant_id=first.grant_id))
    with pytest.raises(AuthCodeNotFound):
        store.consume_code("third")
    if revoke == "client":
        with pytest.raises(AuthCodeNotFound):
            store.consume_code("other")
    else:
        assert store.consume_code("other").user_id == "bob"


def test_a_code_saved_into_another_grant_leaves_with_that_grant_only() -> None:
    store = LocalTokenStore()
    store.save_code(AuthorizationCode("c", "code", 2_000_000_000, None, [], grant_id="g-1"))
    store.save_code(AuthorizationCode("c", "code", 2_000_000_000, None, [], grant_id="g-2"))
    store.revoke_grant("g-1")
    assert store.consume_code("code").grant_id == "g-2"
    store.save_code(AuthorizationCode("c", "code-2", 2_000_000_000, None, [], grant_id="g-3"))
    store.save_code(AuthorizationCode("c", "code-2", 2_000_000_000, None, [], grant_id="g-4"))
    store.revoke_grant("g-4")
    with pytest.raises(AuthCodeNotFound):
        store.consume_code("code-2")
