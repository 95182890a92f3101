# Stubs for pymemcache 4.0.0 (pymemcache/client/hash.py).
#
# ``Any`` in return types is used ONLY for cached values (get, get_many,
# gets, gets_many): they are whatever the serde's ``deserialize`` returns.
#
# At runtime most HashClient methods are ``(key, *args, **kwargs)`` wrappers
# that forward to Client/PooledClient; the explicit parameters below are the
# ones the forwarded-to method accepts (for gets only ``key``, because
# PooledClient.gets takes nothing else).
#
# Return types include HashClient's "default values": while a server is in
# its retry window (after an OSError, for retry_timeout seconds), or when
# ignore_exc=True and an error occurs / no server is left, a call returns
# without touching the network: set/add/replace/append/prepend/delete/touch/
# cas -> False, incr/decr -> False, get -> ``default``, gets -> None (not a
# tuple!), get_many/gets_many -> that server's keys are just missing,
# set_many -> those keys are reported as failed.

import logging
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from ssl import SSLContext
from types import ModuleType
from typing import Any, Literal, Protocol, TypeVar, overload

from pymemcache.client.base import Client, KeepaliveOpts, Key, PooledClient, ServerSpec
from pymemcache.serde import _Deserializer, _SerdeProtocol, _Serializer

_KeyT = TypeVar("_KeyT", bound=str | bytes)

logger: logging.Logger

class _Hasher(Protocol):
    def add_node(self, node: str, /) -> object: ...
    def remove_node(self, node: str, /) -> object: ...
    def get_node(self, key: Key, /) -> str | None: ...

class HashClient:
    client_class: type[Client]
    # Keyed by "host:port" (TCP) or the unix socket path.
    clients: dict[str, Client | PooledClient]
    retry_attempts: int
    retry_timeout: float
    dead_timeout: float
    use_pooling: bool
    key_prefix: bytes
    ignore_exc: bool
    allow_unicode_keys: bool
    hasher: _Hasher
    default_kwargs: dict[str, Any]
    encoding: str
    tls_context: SSLContext | None
    # Private state oauth2-store reads to route keys itself (never through the retry-window
    # defaults): servers dropped from the ring, and the client a key hashes to.
    _dead_clients: dict[str, float]
    _failed_clients: dict[str, dict[str, float]]
    def _get_client(self, key: Key) -> Client | PooledClient | None: ...
    def __init__(
        self,
        servers: Iterable[ServerSpec],
        hasher: Callable[[], _Hasher] = ...,
        serde: _SerdeProtocol | None = None,
        serializer: _Serializer | None = None,
        deserializer: _Deserializer | None = None,
        connect_timeout: float | None = None,
        timeout: float | None = None,
        no_delay: bool = False,
        socket_module: ModuleType = ...,
        socket_keepalive: KeepaliveOpts | None = None,
        key_prefix: bytes = b"",
        max_pool_size: int | None = None,
        pool_idle_timeout: float = 0,
        lock_generator: Callable[[], AbstractContextManager[Any]] | None = None,
        retry_attempts: int = 2,
        retry_timeout: float = 1,
        dead_timeout: float = 60,
        use_pooling: bool = False,
        ignore_exc: bool = False,
        allow_unicode_keys: bool = False,
        default_noreply: bool = True,
        encoding: str = "ascii",
        tls_context: SSLContext | None = None,
    ) -> None: ...
    @overload
    def add_server(self, server: ServerSpec, port: None = None) -> None: ...
    @overload
    def add_server(self, server: str, port: int) -> None: ...
    # Raises KeyError in 4.0.0 unless the server is currently marked failed.
    @overload
    def remove_server(self, server: ServerSpec, port: None = None) -> None: ...
    @overload
    def remove_server(self, server: str, port: int) -> None: ...
    def close(self) -> None: ...
    def disconnect_all(self) -> None: ...
    def set(
        self,
        key: Key,
        value: object,
        expire: int = 0,
        noreply: bool | None = None,
        flags: int | None = None,
    ) -> bool: ...
    def get(self, key: Key, default: Any = None) -> Any: ...
    def incr(self, key: Key, value: int, noreply: bool | None = False) -> int | Literal[False] | None: ...
    def decr(self, key: Key, value: int, noreply: bool | None = False) -> int | Literal[False] | None: ...
    def set_many(
        self,
        values: Mapping[_KeyT, object],
        expire: int = 0,
        noreply: bool | None = None,
        flags: int | None = None,
    ) -> list[_KeyT]: ...
    def set_multi(
        self,
        values: Mapping[_KeyT, object],
        expire: int = 0,
        noreply: bool | None = None,
        flags: int | None = None,
    ) -> list[_KeyT]: ...
    @overload
    def get_many(self, keys: Iterable[_KeyT], gets: Literal[False] = False) -> dict[_KeyT, Any]: ...
    @overload
    def get_many(self, keys: Iterable[_KeyT], gets: Literal[True]) -> dict[_KeyT, tuple[Any, bytes]]: ...
    @overload
    def get_many(self, keys: Iterable[_KeyT], gets: bool) -> dict[_KeyT, Any]: ...
    @overload
    def get_multi(self, keys: Iterable[_KeyT], gets: Literal[False] = False) -> dict[_KeyT, Any]: ...
    @overload
    def get_multi(self, keys: Iterable[_KeyT], gets: Literal[True]) -> dict[_KeyT, tuple[Any, bytes]]: ...
    @overload
    def get_multi(self, keys: Iterable[_KeyT], gets: bool) -> dict[_KeyT, Any]: ...
    def gets(self, key: Key) -> tuple[Any, bytes | None] | None: ...
    def gets_many(self, keys: Iterable[_KeyT]) -> dict[_KeyT, tuple[Any, bytes]]: ...
    def gets_multi(self, keys: Iterable[_KeyT]) -> dict[_KeyT, tuple[Any, bytes]]: ...
    def add(
        self,
        key: Key,
        value: object,
        expire: int = 0,
        noreply: bool | None = None,
        flags: int | None = None,
    ) -> bool: ...
    def prepend(
        self,
        key: Key,
        value: object,
        expire: int = 0,
        noreply: bool | None = None,
        flags: int | None = None,
    ) -> bool: ...
    def append(
        self,
        key: Key,
        value: object,
        expire: int = 0,
        noreply: bool | None = None,
        flags: int | None = None,
    ) -> bool: ...
    def delete(self, key: Key, noreply: bool | None = None) -> bool: ...
    # Always True; per-key results are discarded.
    def delete_many(self, keys: Iterable[Key], noreply: bool | None = None) -> bool: ...
    def delete_multi(self, keys: Iterable[Key], noreply: bool | None = None) -> bool: ...
    def cas(
        self,
        key: Key,
        value: object,
        cas: int | str | bytes,
        expire: int = 0,
        noreply: bool | None = False,
        flags: int | None = None,
    ) -> bool | None: ...
    def replace(
        self,
        key: Key,
        value: object,
        expire: int = 0,
        noreply: bool | None = None,
        flags: int | None = None,
    ) -> bool: ...
    def touch(self, key: Key, expire: int = 0, noreply: bool | None = None) -> bool: ...
    # Returns None (per-server results are discarded).
    def flush_all(self, delay: int = 0, noreply: bool | None = None) -> None: ...
    def quit(self) -> None: ...
    # HashClient has no stats(), version(), raw_command(), shutdown() or
    # item access (__getitem__ etc.) in 4.0.0.
