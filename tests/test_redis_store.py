"""RedisTokenStore: the whole conformance suite on one server, on a Redis Cluster, with ACL
credentials and over TLS; what it writes, inspected on the server itself."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from oauth2_store import AccessToken
from oauth2_store.clock import ManualClock
from oauth2_store.error import StoreUnavailableError
from oauth2_store.store.redis import RedisTokenStore, redis_client, redis_cluster_client
from oauth2_store.store.redis_clients import RedisClient
from oauth2_store.testing import LifecycleTokenStoreContract
from oauth2_store.urls import open_store
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
        store = RedisTokenStore(single_server_client(self.setup, self.request), f"t-{secrets.token_hex(6)}", clock=clock)
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
        store = RedisTokenStore(redis_cluster_client(_nodes(self.cluster)), f"t-{secrets.token_hex(6)}", clock=clock)
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
