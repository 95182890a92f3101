"""The one seam between the store and redis-py: a :class:`~oauth2_store.store.keyvalue.KeyValueConnection`
on a ``redis.Redis`` or ``redis.cluster.RedisCluster`` client.

memcached's operations map onto Redis commands, each atomic on the server: ``add`` is ``SET NX``,
an append or prepend that needs the key to exist and a touch are short Lua scripts, writes carry
their expiration (``EX`` seconds, ``EXAT`` for an absolute time). Everything specific to redis-py
is here and nowhere else:

- **Failures.** Every redis-py error (a refused connection, a timeout, a server still loading its
  data, a failed authentication, ``ClusterDownError``, ``TryAgainError``, an error reply such as
  ``OOM`` or ``READONLY``) becomes :class:`~oauth2_store.error.StoreUnavailableError` naming the
  server. Of an error reply only its code is kept: its text can quote the command's arguments.
  redis-py never puts a password in a message, and neither does this module.
- **No automatic retries.** redis-py re-sends a command after a connection error or a timeout (three
  times by default since 6.0; ``RedisCluster`` also after ``ClusterDownError``). A re-sent
  ``SET NX`` whose first reply was lost answers "not stored": the caller that won a code would
  read as its replay. So the clients built here never retry, and a client passed in that retries
  is refused.
- **Redis Cluster.** Keys of several slots are never sent in one command: multi-key reads, writes
  and deletes go one key per command in a pipeline, which redis-py groups by node (one round trip
  per node). On a single server, ``set_many`` is one ``MULTI``/``EXEC``: all of it or nothing.
- **Values.** Only bytes are written and read: a client that decodes replies to str is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from oauth2_store.error import CodecError, StoreError, StoreUnavailableError
from oauth2_store.store.keyvalue import THIRTY_DAYS

__all__ = ["RedisClient", "RedisConnection", "no_retry"]

RedisClient = redis.Redis | RedisCluster
"""A redis-py client the store accepts: one server, or a Redis Cluster."""

_T = TypeVar("_T")

# KEYS[1] exists: run the command on it and answer 1; otherwise 0 (memcached's append and prepend).
_APPEND_IF_EXISTS = "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end redis.call('APPEND', KEYS[1], ARGV[1]) return 1"
_PREPEND_IF_EXISTS = (
    "local value = redis.call('GET', KEYS[1]) if not value then return 0 end "
    "redis.call('SET', KEYS[1], ARGV[1] .. value, 'KEEPTTL') return 1"
)
# ARGV[1]: the key-value store's expiration (0: never; up to 30 days: seconds; beyond: unix time).
_TOUCH = (
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end local expire = tonumber(ARGV[1]) "
    f"if expire == 0 then redis.call('PERSIST', KEYS[1]) elseif expire <= {THIRTY_DAYS} then redis.call('EXPIRE', KEYS[1], expire) "
    "else redis.call('EXPIREAT', KEYS[1], expire) end return 1"
)


def no_retry() -> Retry:
    """The retry policy of the clients the store builds: none (see the module documentation)."""
    return Retry(NoBackoff(), 0)


class RedisConnection:
    """A redis-py client as the key-value store's connection.

    Args:
        client: A ``redis.Redis`` (one server) or ``redis.cluster.RedisCluster``.

    Raises:
        ValueError: the client decodes replies to str, or retries commands.
        TypeError: ``client`` is not a redis-py client.
    """

    library = "redis-py"
    max_value_size: int | None = 512 * 1024 * 1024  # Redis's largest string

    def __init__(self, client: RedisClient) -> None:
        if not isinstance(client, (redis.Redis, RedisCluster)):
            raise TypeError(f"expected a redis.Redis or redis.cluster.RedisCluster, not {type(client).__name__}")
        if client.get_encoder().decode_responses:
            raise ValueError("the Redis client decodes replies (decode_responses=True): the store reads bytes")
        retry = client.get_retry() if isinstance(client, redis.Redis) else client.retry
        if retry is not None and retry.get_retries() > 0:
            raise ValueError("the Redis client retries commands: a re-sent SET NX would make the winner of a code read as its replay; pass retry=no_retry()")
        self._client = client
        self._cluster = isinstance(client, RedisCluster)
        self.servers = _servers(client)
        self._append = client.register_script(_APPEND_IF_EXISTS)
        self._prepend = client.register_script(_PREPEND_IF_EXISTS)
        self._touch = client.register_script(_TOUCH)

    def _call(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except StoreError:
            raise
        except redis.exceptions.ResponseError as error:
            raise StoreUnavailableError(f"Redis at {self.servers} answered an error ({_reply_code(error)})", self.servers) from None
        except (redis.exceptions.RedisError, OSError) as error:
            raise StoreUnavailableError(f"Redis at {self.servers} failed: {type(error).__name__}: {error}", self.servers) from None

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None (see :class:`~oauth2_store.store.keyvalue.KeyValueConnection`)."""
        return _bytes_or_none(self._call(lambda: self._client.get(key)))

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The values of those of ``keys`` that exist: one ``MGET``, or on a cluster one ``GET``
        per key in a pipeline."""
        values: Sequence[object]
        if self._cluster:
            values = self._pipelined(lambda pipe, key: pipe.get(key), keys, transaction=False)
        else:
            values = self._call(lambda: self._client.mget(keys))
        found = {}
        for key, value in zip(keys, values):
            checked = _bytes_or_none(value)
            if checked is not None:
                found[key] = checked
        return found

    def set_many(self, values: Mapping[str, bytes], expire: int) -> None:
        """Store every value with expiration ``expire``: one ``MULTI``/``EXEC`` on one server."""
        self.write({expire: values}, ())

    def write(self, batches: Mapping[int, Mapping[str, bytes]], deletes: Sequence[str]) -> None:
        """Store every batch of values with its expiration and delete ``deletes``: on one server a
        single ``MULTI``/``EXEC``, all of it or nothing; on a cluster one pipeline, one round trip
        per node, which may apply in part.

        Raises:
            StoreUnavailableError: a server failed or did not store every value.
        """
        writes = [(key, value, _expiration(expire)) for expire, values in batches.items() for key, value in values.items()]

        def run() -> list[object]:
            with self._client.pipeline(transaction=not self._cluster) as pipe:
                for key, value, (ex, exat) in writes:
                    pipe.set(key, value, ex=ex, exat=exat)
                for key in deletes:
                    pipe.delete(key)
                return list(pipe.execute())

        replies = self._call(run)
        if not all(replies[: len(writes)]):
            raise StoreUnavailableError(f"Redis at {self.servers} did not store every value", self.servers)

    def add(self, key: str, value: bytes, expire: int) -> bool:
        """``SET NX``: True if this call stored ``value``."""
        ex, exat = _expiration(expire)
        return bool(self._call(lambda: self._client.set(key, value, nx=True, ex=ex, exat=exat)))

    def append(self, key: str, value: bytes) -> bool:
        """Append to an existing value (a script: ``APPEND`` alone would create the key)."""
        return bool(self._call(lambda: self._append(keys=[key], args=[value])))

    def prepend(self, key: str, value: bytes) -> bool:
        """Put ``value`` before an existing value, keeping its expiration (a script)."""
        return bool(self._call(lambda: self._prepend(keys=[key], args=[value])))

    def touch(self, key: str, expire: int) -> bool:
        """Set an existing key's expiration (a script: ``PERSIST`` cannot tell a missing key)."""
        return bool(self._call(lambda: self._touch(keys=[key], args=[expire])))

    def delete(self, key: str) -> bool:
        """``DEL``: True if the key was there."""
        return bool(self._call(lambda: self._client.delete(key)))

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete every key: one ``DEL``, or on a cluster one per key in a pipeline."""
        if not keys:
            return
        if self._cluster:
            self._pipelined(lambda pipe, key: pipe.delete(key), keys, transaction=False)
        else:
            self._call(lambda: self._client.delete(*keys))

    def ttl(self, key: str) -> int | None:
        """Seconds ``key`` has left (-1: it never expires), None if it does not exist."""
        seconds = self._call(lambda: self._client.ttl(key))
        return None if seconds == -2 else int(seconds)

    def evicting_servers(self) -> list[str]:
        """The servers that evict keys when full: a ``maxmemory`` and a policy other than
        ``noeviction`` (``CONFIG GET``).

        Raises:
            StoreUnavailableError: a server failed, or refused ``CONFIG`` (an ACL without it).
        """

        def read() -> list[str]:
            if isinstance(self._client, RedisCluster):
                primaries: list[ClusterNode] = self._client.get_primaries()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                configs = [(f"{node.host}:{node.port}", _config(self._client.config_get("maxmemory*", target_nodes=node))) for node in primaries]
            else:
                configs = [(self.servers, _config(self._client.config_get("maxmemory*")))]
            return [name for name, config in configs if config.get("maxmemory", "0") != "0" and config.get("maxmemory-policy") != "noeviction"]

        return self._call(read)

    def close(self) -> None:
        """Close the client's connections (redis-py reconnects on the next command)."""
        self._call(self._client.close)

    def _pipelined(self, queue: Callable[[redis.client.Pipeline | redis.cluster.ClusterPipeline, str], object], keys: Sequence[str], *, transaction: bool) -> list[object]:
        def run() -> list[object]:
            with self._client.pipeline(transaction=transaction) as pipe:
                for key in keys:
                    queue(pipe, key)
                return list(pipe.execute())

        return self._call(run)


def _reply_code(error: redis.exceptions.ResponseError) -> str:
    """What an error reply was: redis-py's class for it (``OutOfMemoryError``, ``ReadOnlyError``...),
    else the reply's code (``WRONGTYPE``...). The rest of its text, and redis-py's note of which
    pipelined command failed, can quote the command's arguments."""
    if type(error) is not redis.exceptions.ResponseError:
        return type(error).__name__
    message = str(error)
    if "caused error: " in message:
        message = message.split("caused error: ", 1)[1]
    code = message.split(" ", 1)[0]
    return code if code.isascii() and code.isalpha() and code.isupper() else "ResponseError"


def _expiration(expire: int) -> tuple[int | None, int | None]:
    """redis-py's ``ex`` and ``exat`` for the key-value store's expiration: neither for 0 (never),
    ``ex`` for a number of seconds, ``exat`` for an absolute unix time."""
    if expire == 0:
        return None, None
    return (expire, None) if expire <= THIRTY_DAYS else (None, expire)


def _config(reply: object) -> dict[str, str]:
    """A ``CONFIG GET`` reply as str names and values."""
    if not isinstance(reply, dict):
        raise StoreUnavailableError(f"Redis answered CONFIG GET with {type(reply).__name__}")
    return {_text(name): _text(value) for name, value in reply.items()}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes_or_none(value: object) -> bytes | None:
    if value is None or type(value) is bytes:
        return value
    raise CodecError(f"the Redis client returned {type(value).__name__}, not bytes")


def _servers(client: RedisClient) -> str:
    if isinstance(client, RedisCluster):
        nodes: list[ClusterNode] = client.get_nodes()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        return ",".join(sorted(f"{node.host}:{node.port}" for node in nodes))
    kwargs = client.get_connection_kwargs()
    if kwargs.get("path"):
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
