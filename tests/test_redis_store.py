"""RedisTokenStore: the whole conformance suite on one server, on a Redis Cluster, with ACL
credentials and over TLS; what it writes, inspected on the server itself."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator

import pytest

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.clock import ManualClock
from oauth2_store.error import StoreUnavailableError
from oauth2_store.store.redis import RedisTokenStore, redis_client, redis_cluster_client
from oauth2_store.store.redis_clients import RedisClient, RedisConnection
from oauth2_store.testing import LifecycleTokenStoreContract
from oauth2_store.urls import open_store
from tests.memcache_backends import REISSUE_KEY
from tests.redis_server import ACL_PASSWORD, ACL_USER, RedisCluster, RedisServer


def _nodes(cluster: RedisCluster) -> list[tuple[str, int]]:
    return [("127.0.0.1", server.port) for server in cluster.servers]


SETUPS = ["plain", "acl", "tls"]
"""One redis-server each: open, with an ACL user and password (the default user off), TLS only."""


def single_server_client(setup: str, request: pytest.FixtureRequest) -> RedisClient:
    """A client of the session's server of that set-up, with what it needs to get in."""
    if setup == "acl":
        server: RedisServer = request.getfixturevalue("redis_acl_server")
        return redis_client("127.0.0.1", server.port, username=ACL_USER, password=ACL_PASSWORD)
    if setup == "tls":
        server = request.getfixturevalue("redis_tls_server")
        assert server.tls is not None
        return redis_client("127.0.0.1", server.port, tls=True, ca_file=str(server.tls.ca))
    server = request.getfixturevalue("redis_server")
    return redis_client("127.0.0.1", server.port)


class TestRedisTokenStore(LifecycleTokenStoreContract):
    """The whole conformance suite on one redis-server, in each set-up."""

    racing_threads = 8

    @pytest.fixture(autouse=True, params=SETUPS)
    def _server(self, request: pytest.FixtureRequest) -> Iterator[None]:
        self.setup: str = request.param
        self.request = request
        self.stores: list[RedisTokenStore] = []
        yield
        for store in self.stores:
            store.close()

    def make_store(self, clock: ManualClock) -> RedisTokenStore:
        store = RedisTokenStore(single_server_client(self.setup, self.request), f"t-{secrets.token_hex(6)}", clock=clock, reissue_key=REISSUE_KEY)
        self.stores.append(store)
        return store


class TestRedisClusterTokenStore(LifecycleTokenStoreContract):
    """The whole conformance suite on a 3-master Redis Cluster."""

    racing_threads = 8

    @pytest.fixture(autouse=True)
    def _cluster(self, redis_cluster: RedisCluster) -> Iterator[None]:
        self.cluster = redis_cluster
        self.stores: list[RedisTokenStore] = []
        yield
        for store in self.stores:
            store.close()

    def make_store(self, clock: ManualClock) -> RedisTokenStore:
        store = RedisTokenStore(redis_cluster_client(_nodes(self.cluster)), f"t-{secrets.token_hex(6)}", clock=clock, reissue_key=REISSUE_KEY)
        self.stores.append(store)
        return store


# Store URLs, opened against the servers.


def test_redis_urls_open_a_working_store_in_every_set_up(redis_server: RedisServer, redis_acl_server: RedisServer, redis_tls_server: RedisServer, redis_cluster: RedisCluster) -> None:
    assert redis_tls_server.tls is not None
    urls = [
        redis_server.url + "/3?prefix=url-plain",
        redis_acl_server.url + "?prefix=url-acl&timeout=2",
        f"{redis_tls_server.url}?ca_file={redis_tls_server.tls.ca}",
        redis_cluster.url + "?verify_grants=true",
    ]
    for url in urls:
        store = open_store(url, prefix=f"url-{secrets.token_hex(4)}")
        assert isinstance(store, RedisTokenStore)
        token = AccessToken("client", "authorization_code", f"tok-{secrets.token_hex(8)}", scopes=["read"], refresh_token=f"ref-{secrets.token_hex(8)}")
        try:
            store.save_token(token)
            assert store.fetch_by_token(token.token) == token
            assert store.fetch_by_refresh_token(token.refresh_token or "") == token
        finally:
            store.close()
    assert redis_server.command("SELECT", "3") == b"OK"


def test_a_wrong_password_is_unavailable_naming_the_server_never_the_password(redis_acl_server: RedisServer) -> None:
    store = open_store(redis_acl_server.url.replace("%40", "x"))
    with pytest.raises(StoreUnavailableError) as caught:
        store.fetch_by_token("anything")
    assert redis_acl_server.address in str(caught.value) and caught.value.server == redis_acl_server.address
    assert ACL_PASSWORD not in str(caught.value) and "s3cret" not in repr(caught.value)


def test_a_tls_server_refuses_plain_text_and_an_unknown_ca(redis_tls_server: RedisServer) -> None:
    for url in [redis_tls_server.url.replace("rediss://", "redis://"), redis_tls_server.url]:  # plain text; the system CAs
        store = open_store(url + "?timeout=1")
        with pytest.raises(StoreUnavailableError, match=redis_tls_server.address):
            store.fetch_by_token("anything")
        assert isinstance(store, RedisTokenStore)
        store.close()


# What the server holds: keys, expirations, and no secret that works.


def test_keys_carry_hash_tags_and_every_key_expires_with_its_record(redis_server: RedisServer) -> None:
    store = RedisTokenStore(redis_client("127.0.0.1", redis_server.port), f"ttl-{secrets.token_hex(6)}", reissue_key=REISSUE_KEY)
    now = int(time.time())
    token = AccessToken("client", "authorization_code", f"tok-{secrets.token_hex(8)}", expires_at=now + 3600, scopes=["read"],
                        refresh_token=f"ref-{secrets.token_hex(8)}", refresh_expires_at=now + 40 * 86400, user_id="user-1")
    code = AuthorizationCode("client", f"code-{secrets.token_hex(8)}", now + 600, None, ["read"], user_id="user-1")
    try:
        store.save_token(token)
        store.save_code(code)
        store.consume_code(code.code)
        keys = [key.decode() for key in _list(redis_server.command("KEYS", f"{store._prefix}:*"))]
        assert keys and all(re.fullmatch(rf"{store._prefix}:\{{[0-9a-f]{{64}}\}}:[trcugkxei]", key) for key in keys), keys
        expiring = {
            store._key("t", token.token): now + 3600,
            store._user_key(token.client_id, token.grant_type, token.user_id): now + 3600,
            store._key("r", token.refresh_token or ""): now + 40 * 86400,
            store._grant_key(token.grant_id): now + 40 * 86400,
            store._key("k", code.code): now + 600,
        }
        for key, expires_at in expiring.items():
            at = redis_server.command("EXPIRETIME", key)
            assert isinstance(at, int) and abs(at - expires_at) <= 2, (key, at, expires_at)
        # Only owner state (epochs, indexes) lives without an expiry: it is not a record.
        forever = sorted(key.rsplit(":", 1)[1] for key in keys if redis_server.command("EXPIRETIME", key) == -1)
        assert set(forever) <= {"e", "i"}, forever
    finally:
        store.close()


def test_a_dump_of_the_server_holds_no_token_refresh_token_or_code(redis_server: RedisServer) -> None:
    store = RedisTokenStore(redis_client("127.0.0.1", redis_server.port), f"dump-{secrets.token_hex(6)}", reissue_key=REISSUE_KEY)
    now = int(time.time())
    tokens = [AccessToken(f"client-{n}", "authorization_code", f"tok-{secrets.token_hex(16)}", expires_at=now + 3600, scopes=["read"],
                          refresh_token=f"ref-{secrets.token_hex(16)}", user_id=f"user-{n}") for n in range(20)]
    codes = [AuthorizationCode(f"client-{n}", f"code-{secrets.token_hex(16)}", now + 600, None, ["read"], user_id=f"user-{n}") for n in range(20)]
    try:
        for token, code in zip(tokens, codes):
            store.save_token(token)
            store.save_code(code)
        store.consume_code(codes[0].code)
        store.delete_refresh_token(tokens[0].refresh_token or "")
        keys = _list(redis_server.command("KEYS", f"{store._prefix}:*"))
        values = b"".join(_bytes_of(redis_server.command("GET", key)) for key in keys)
        dump = redis_server.dump()  # the append-only files, rewritten: what a stolen backup holds
        assert store._prefix.encode() in dump, "the dump holds none of the store's keys: it tested nothing"
        secrets_at_rest = [t.token for t in tokens] + [t.refresh_token or "" for t in tokens] + [c.code for c in codes]
        for secret in secrets_at_rest:
            # Whole, and the random part alone (a prefix-stripped or re-encoded copy would still work).
            for needle in (secret.encode(), secret.split("-", 1)[1].encode()):
                assert needle not in values and needle not in dump and needle not in b"".join(keys)
    finally:
        store.close()


def _list(reply: object) -> list[bytes]:
    assert isinstance(reply, list) and all(isinstance(item, bytes) for item in reply), reply
    return reply


def _bytes_of(reply: object) -> bytes:
    assert isinstance(reply, bytes), reply
    return reply


def test_touch_sets_seconds_an_absolute_time_or_no_expiry_and_misses_a_missing_key(redis_server: RedisServer) -> None:
    connection = RedisConnection(redis_client("127.0.0.1", redis_server.port))
    key = f"touch-{secrets.token_hex(6)}"
    try:
        connection.set_many({key: b"v"}, 100)
        assert connection.touch(key, 500) and (connection.ttl(key) or 0) in range(498, 501)
        at = int(time.time()) + 40 * 86400  # beyond 30 days: an absolute unix time
        assert connection.touch(key, at) and redis_server.command("EXPIRETIME", key) in (at - 1, at, at + 1)
        assert connection.touch(key, 0) and connection.ttl(key) == -1
        assert not connection.touch(f"missing-{secrets.token_hex(6)}", 10)
    finally:
        connection.delete_many([key])
        connection.close()
