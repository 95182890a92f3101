"""TieredTokenStore: a SQL store of record behind a memcached cache of access tokens."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.clock import ManualClock
from oauth2_store._digest import sha256_digest
from oauth2_store.error import AccessTokenNotFound, CodeReplayError, GrantRevokedError, RefreshTokenReuseError, StoreUnavailableError
from oauth2_store.store.memcache import MemcacheTokenStore
from oauth2_store.store.sql import SqlTokenStore, sql_engine
from oauth2_store.store.tiered import TieredTokenStore
from oauth2_store.testing import LifecycleTokenStoreContract
from tests.memcache_backends import REISSUE_KEY
from tests.memcached_server import MemcachedServer


def _tiered(engine: Engine, memcached: MemcachedServer, clock: ManualClock | None = None) -> TieredTokenStore:
    suffix = secrets.token_hex(6)
    if clock is None:
        return TieredTokenStore(SqlTokenStore(engine, f"t{suffix}", reissue_key=REISSUE_KEY), MemcacheTokenStore(servers=[memcached.address], prefix=f"c{suffix}"))
    return TieredTokenStore(
        SqlTokenStore(engine, f"t{suffix}", clock=clock, reissue_key=REISSUE_KEY), MemcacheTokenStore(servers=[memcached.address], prefix=f"c{suffix}", clock=clock)
    )


class TestTieredTokenStore(LifecycleTokenStoreContract):
    """The whole conformance suite: a SQLite file behind the session's memcached."""

    racing_threads = 8

    @pytest.fixture(autouse=True)
    def _stores(self, memcached: MemcachedServer, tmp_path: Path) -> Iterator[None]:
        self.memcached = memcached
        self.engine = sql_engine(f"sqlite:///{tmp_path / 'tiered.db'}")
        self.stores: list[TieredTokenStore] = []
        yield
        for store in self.stores:
            store.close()
        self.engine.dispose()

    def make_store(self, clock: ManualClock) -> TieredTokenStore:
        store = _tiered(self.engine, self.memcached, clock)
        self.stores.append(store)
        return store


@pytest.fixture
def tiered(memcached: MemcachedServer, tmp_path: Path) -> Iterator[TieredTokenStore]:
    engine = sql_engine(f"sqlite:///{tmp_path / 'tiered.db'}")
    store = _tiered(engine, memcached)
    yield store
    store.close()


def _token(grant_id: str | None = None, user_id: str = "user-1") -> AccessToken:
    return AccessToken("client", "authorization_code", f"tok-{secrets.token_hex(8)}", {}, 2**40, f"ref-{secrets.token_hex(8)}", ["read"], user_id=user_id, grant_id=grant_id)


def _digest(token: str) -> bytes:
    return sha256_digest(token.encode())


def _statements(engine: Engine) -> list[str]:
    """Every SQL statement ``engine`` runs from now on, appended as it runs."""
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda _conn, _cursor, statement, *_: seen.append(statement))
    return seen


def test_a_cache_hit_asks_the_database_nothing(tiered: TieredTokenStore) -> None:
    token = _token()
    tiered.save_token(token)
    statements = _statements(tiered.durable._database.engine)
    assert tiered.fetch_by_token(token.token) == token
    assert statements == []


def test_a_cache_miss_reads_the_database_and_does_not_refill_the_cache(tiered: TieredTokenStore) -> None:
    token = _token()
    tiered.save_token(token)
    tiered.cache.uncache_access_tokens([_digest(token.token)])
    assert tiered.fetch_by_token(token.token) == token
    assert tiered.cache.cached_access_token(token.token) is None


def test_a_restarted_cache_revokes_nothing_and_revives_nothing(tmp_path: Path) -> None:
    """memcached killed and started again, empty: every token, refresh token, code marker and
    revocation is as it was, read from the database."""
    memcached = MemcachedServer().start()
    tiered = _tiered(sql_engine(f"sqlite:///{tmp_path / 'tiered.db'}"), memcached)
    try:
        live, revoked = _token(user_id="alice"), _token(user_id="bob")
        code = AuthorizationCode("client", f"code-{secrets.token_hex(8)}", 2**40, None, ["read"], user_id="carol")
        for token in (live, revoked):
            tiered.save_token(token)
        tiered.save_code(code)
        tiered.consume_code(code.code)
        tiered.revoke_user("bob")
        memcached.stop()
        memcached.start()
        assert live.refresh_token is not None and revoked.refresh_token is not None
        with contextlib.suppress(StoreUnavailableError):  # the first request meets the connection the restart closed
            tiered.cache.cached_access_token(live.token)
        assert tiered.cache.cached_access_token(live.token) is None  # the cache is empty
        assert tiered.fetch_by_token(live.token) == live
        assert tiered.fetch_by_refresh_token(live.refresh_token) == live
        with pytest.raises(AccessTokenNotFound):
            tiered.fetch_by_token(revoked.token)
        with pytest.raises(AccessTokenNotFound):
            tiered.fetch_by_refresh_token(revoked.refresh_token)
        with pytest.raises(CodeReplayError):
            tiered.consume_code(code.code)
    finally:
        tiered.close()
        memcached.stop()


def test_revocations_delete_the_cached_copies(tiered: TieredTokenStore) -> None:
    by_grant, by_user, by_client_of_user, rotated = _token(), _token(user_id="u2"), _token(user_id="u3"), _token(user_id="u4")
    for token in (by_grant, by_user, by_client_of_user, rotated):
        tiered.save_token(token)
        assert tiered.cache.cached_access_token(token.token) == token
    tiered.revoke_grant(by_grant.grant_id)
    tiered.revoke_user("u2")
    tiered.revoke_user("u3", "client")
    assert rotated.refresh_token is not None
    tiered.delete_refresh_token(rotated.refresh_token)
    for token in (by_grant, by_user, by_client_of_user, rotated):
        assert tiered.cache.cached_access_token(token.token) is None
        with pytest.raises(AccessTokenNotFound):
            tiered.fetch_by_token(token.token)
    with pytest.raises(RefreshTokenReuseError):
        tiered.fetch_by_refresh_token(rotated.refresh_token)


def test_a_replay_deletes_the_cached_copies_of_its_grant(tiered: TieredTokenStore) -> None:
    code = AuthorizationCode("client", f"code-{secrets.token_hex(8)}", 2**40, None, ["read"], user_id="dave")
    tiered.save_code(code)
    tiered.consume_code(code.code)
    token = _token(grant_id=code.grant_id, user_id="dave")
    tiered.save_token(token)
    with pytest.raises(CodeReplayError):
        tiered.consume_code(code.code)
    assert tiered.cache.cached_access_token(token.token) is None


def test_a_save_the_database_refuses_leaves_nothing_in_the_cache(tiered: TieredTokenStore) -> None:
    first = _token(user_id="erin")
    tiered.save_token(first)
    tiered.revoke_grant(first.grant_id)
    late = _token(grant_id=first.grant_id, user_id="erin")
    with pytest.raises(GrantRevokedError):
        tiered.save_token(late)
    assert tiered.cache.cached_access_token(late.token) is None
