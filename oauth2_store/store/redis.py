"""The Redis token store: tokens and codes that survive a restart (with persistence on), shared by
every process and host of a provider, on one server or a Redis Cluster.

The key layout, the records and the token lifecycle are the key-value store's (see
:mod:`oauth2_store.store.keyvalue`), with every key carrying a hash tag; what is particular to
redis-py (no automatic retries, slots, errors) is in :mod:`oauth2_store.store.redis_clients`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis
import redis.exceptions
from redis.cluster import ClusterNode, RedisCluster

from oauth2_store.clock import Clock, system_clock
from oauth2_store.error import StoreUnavailableError
from oauth2_store.store.keyvalue import KeyValueTokenStore
from oauth2_store.store.redis_client_store import RedisClientStore
from oauth2_store.store.redis_clients import RedisClient, RedisConnection, no_retry

__all__ = ["DEFAULT_PORT", "MAX_VALUE_SIZE", "RedisClientStore", "RedisTokenStore", "redis_client", "redis_cluster_client"]

DEFAULT_PORT = 6379

MAX_VALUE_SIZE = 1024 * 1024
"""Default largest value written (1 MiB, as on memcached): larger records are refused before
anything is written."""


class RedisTokenStore(KeyValueTokenStore):
    """Stores access tokens, refresh tokens and authorization codes in Redis.

    Implements every operation of :class:`~oauth2_store.protocols.LifecycleTokenStoreProtocol`,
    as :class:`~oauth2_store.store.MemcacheTokenStore` does and with the same guarantees; Redis
    adds durability (with RDB or AOF persistence, a restart keeps every record) and never evicts
    under ``maxmemory-policy noeviction`` (a full server refuses writes, which fail the save).

    Every key expires with its record; keys are ``<prefix>:{<digest>}:<kind>``, so a code and its
    consumed marker, or a refresh token and its retired marker, share a Redis Cluster slot.

    Args:
        client: A redis-py client without automatic retries: :func:`redis_client` or
            :func:`redis_cluster_client` build one.
        prefix: Put before every key: 1 to 100 characters of ``A-Z a-z 0-9 _ . : -``.
        clock: Where the store reads the time to decide expiry (default :func:`time.time`).
        max_value_size: Largest encoded record written, in bytes.
        verify_grants: Make :meth:`fetch_by_token` confirm that the token's grant is live (a second
            round trip).
        reissue_key: At least 32 random bytes the servers hold, which seal the user entries
            :meth:`fetch_existing_token_of_user` reads; without it, none is written and that
            method raises AccessTokenNotFound.

    Raises:
        ValueError: an invalid prefix or reissue key; a client that decodes replies or retries commands.
        TypeError: a prefix that is not a str, or a client that is not redis-py's.
    """

    def __init__(
        self,
        client: RedisClient,
        prefix: str = "oauth2",
        *,
        clock: Clock = system_clock,
        max_value_size: int = MAX_VALUE_SIZE,
        verify_grants: bool = False,
        reissue_key: bytes | None = None,
    ) -> None:
        self._redis = RedisConnection(client)
        super().__init__(
            self._redis,
            prefix,
            clock=clock,
            max_value_size=max_value_size,
            verify_grants=verify_grants,
            backend="Redis",
            hash_tags=True,
            reissue_key=reissue_key,
        )

    def _send_writes(self, batches: Mapping[int, Mapping[str, bytes]], deletes: Sequence[str]) -> None:
        """A record's writes and deletes in one request: a transaction on one server."""
        self._redis.write(batches, deletes)


def redis_client(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    db: int = 0,
    username: str | None = None,
    password: str | None = None,
    tls: bool = False,
    ca_file: str | None = None,
    timeout: float = 1.0,
) -> RedisClient:
    """A client of one Redis server as the store needs it: replies as bytes, finite connect and
    read timeouts, no automatic retries. It connects on first use.

    Args:
        tls: Speak TLS; the server's certificate is verified against ``ca_file`` (or the system's
            trusted CAs) and its host name.

    Raises:
        ValueError: a non-positive timeout, or a port or database out of range.
    """
    _check(port, timeout)
    if not 0 <= db:
        raise ValueError("db must be a database number, 0 or more")
    return redis.Redis(
        host=host,
        port=port,
        db=db,
        username=username,
        password=password,
        ssl=tls,
        ssl_ca_certs=ca_file,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=no_retry(),
    )


def redis_cluster_client(
    nodes: Sequence[tuple[str, int]],
    *,
    username: str | None = None,
    password: str | None = None,
    tls: bool = False,
    ca_file: str | None = None,
    timeout: float = 1.0,
) -> RedisClient:
    """A Redis Cluster client as the store needs it (see :func:`redis_client`). redis-py reads
    the cluster's slots from the first node that answers, here.

    Raises:
        ValueError: no nodes, a port out of range or a non-positive timeout.
        StoreUnavailableError: no node answered.
    """
    if not nodes:
        raise ValueError("name at least one cluster node")
    for _, port in nodes:
        _check(port, timeout)
    try:
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            username=username,
            password=password,
            ssl=tls,
            ssl_ca_certs=ca_file,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=no_retry(),
        )
    except redis.exceptions.RedisError as error:
        shown = ",".join(f"{host}:{port}" for host, port in nodes)
        raise StoreUnavailableError(f"no Redis Cluster node of {shown} answered: {type(error).__name__}", shown) from None


def _check(port: int, timeout: float) -> None:
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    if not timeout > 0:
        raise ValueError("timeout must be a positive number of seconds")
