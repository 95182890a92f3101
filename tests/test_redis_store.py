"""RedisTokenStore: the whole conformance suite on one server, on a Redis Cluster, with ACL
credentials and over TLS; what it writes, inspected on the server itself."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from oauth2_store.clock import ManualClock
from oauth2_store.store.redis import RedisTokenStore, redis_client, redis_cluster_client
from oauth2_store.testing import LifecycleTokenStoreContract
from tests.redis_server import ACL_PASSWORD, ACL_USER, RedisCluster, RedisServer


def _nodes(cluster: RedisCluster) -> list[tuple[str, int]]:
    return [("127.0.0.1", server.port) for server in cluster.servers]


class TestRedisTokenStore(LifecycleTokenStoreContract):
    """The whole conformance suite on one redis-server."""

    racing_threads = 8

    @pytest.fixture(autouse=True)
    def _server(self, redis_server: RedisServer) -> Iterator[None]:
        self.server = redis_server
        self.stores: list[RedisTokenStore] = []
        yield
        for store in self.stores:
            store.close()

    def make_store(self, clock: ManualClock) -> RedisTokenStore:
        store = RedisTokenStore(redis_client("127.0.0.1", self.server.port), f"t-{secrets.token_hex(6)}", clock=clock)
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
