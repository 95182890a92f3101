# Stubs for pymemcache 4.0.0 (pymemcache/client/base.py).
#
# Typing policy:
# * ``Any`` appears in return types ONLY for cached *values* (get, get_many,
#   gets, gets_many, __getitem__): they are whatever the configured serde's
#   ``deserialize`` returns (plain ``bytes`` with the default serde), so no
#   narrower type can be given without making the client generic.  The CAS
#   token returned by gets/gets_many is always ``bytes`` (or the caller's
#   default when the key is missing).
# * Value *arguments* are ``object``: the default serde stores ``bytes`` as-is
#   and ``str(value).encode(encoding)`` for anything else; a custom serde
#   decides for itself.
# * Return types follow what the 4.0.0 code really returns, which is sometimes
#   narrower than upstream's own annotations (set/prepend return ``bool``;
#   only ``cas`` can return ``None``, for NOT_FOUND).
# * get_many/gets_many take a ``Collection`` rather than upstream's
#   ``Iterable``: Client iterates the keys twice, so a generator/iterator
#   silently breaks it (KeyError, or ``{}`` with ignore_exc=True).

import socket
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import AbstractContextManager
from ssl import SSLContext
from types import ModuleType
from typing import Any, Final, TypeVar, overload

from pymemcache.pool import ObjectPool
from pymemcache.serde import _Deserializer, _SerdeProtocol, _Serializer

_T = TypeVar("_T")
_KeyT = TypeVar("_KeyT", bound=str | bytes)

ServerSpec = tuple[str, int] | str
Key = bytes | str

RECV_SIZE: Final[int]
VALID_STORE_RESULTS: Final[dict[bytes, tuple[bytes, ...]]]
SOCKET_KEEPALIVE_SUPPORTED_SYSTEM: Final[set[str]]
STORE_RESULTS_VALUE: Final[dict[bytes, bool | None]]
STAT_TYPES: Final[dict[bytes, Callable[[bytes], Any]]]

# Values of Client.stats(): converted to int/float/bool where pymemcache knows
# how, otherwise the raw bytes.
_StatValue = bytes | int | float | bool

def check_key_helper(key: Key, allow_unicode_keys: bool, key_prefix: bytes = b"") -> bytes: ...
def normalize_server_spec(server: ServerSpec) -> ServerSpec: ...

class KeepaliveOpts:
    idle: int
    intvl: int
    cnt: int
    def __init__(self, idle: int = 1, intvl: int = 1, cnt: int = 5) -> None: ...

class Client:
    server: ServerSpec
    serde: _SerdeProtocol
    connect_timeout: float | None
    timeout: float | None
    no_delay: bool
    ignore_exc: bool
    socket_module: ModuleType
    socket_keepalive: KeepaliveOpts | None
    sock: socket.socket | None
    key_prefix: bytes
    default_noreply: bool
    allow_unicode_keys: bool
    encoding: str
    tls_context: SSLContext | None
    def __init__(
        self,
        server: ServerSpec,
        serde: _SerdeProtocol | None = None,
        serializer: _Serializer | None = None,
        deserializer: _Deserializer | None = None,
        connect_timeout: float | None = None,
        timeout: float | None = None,
        no_delay: bool = False,
        ignore_exc: bool = False,
        socket_module: ModuleType = ...,
        socket_keepalive: KeepaliveOpts | None = None,
        key_prefix: bytes = b"",
        default_noreply: bool = True,
        allow_unicode_keys: bool = False,
        encoding: str = "ascii",
        tls_context: SSLContext | None = None,
    ) -> None: ...
    def check_key(self, key: Key, key_prefix: bytes) -> bytes: ...
    def close(self) -> None: ...
    def disconnect_all(self) -> None: ...
    # Store commands.  With noreply=True (the default when default_noreply is
    # True) they never wait for the server and always report success.
    def set(
        self,
        key: Key,
        value: object,
        expire: int = 0,
        noreply: bool | None = None,
        flags: int | None = None,
    ) -> bool: ...
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
    def add(
        self,
        key: Key,
        value: object,
        expire: int = 0,
        noreply: bool | None = None,
        flags: int | None = None,
    ) -> bool: ...
    def replace(
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
    def prepend(
        self,
        key: Key,
        value: object,
        expire: int = 0,
        noreply: bool | None = None,
        flags: int | None = None,
    ) -> bool: ...
    # True = stored, False = EXISTS (cas mismatch), None = NOT_FOUND.
    # noreply defaults to False here (default_noreply is NOT consulted);
    # noreply=True always returns True.
    def cas(
        self,
        key: Key,
        value: object,
        cas: int | str | bytes,
        expire: int = 0,
        noreply: bool | None = False,
        flags: int | None = None,
    ) -> bool | None: ...
    def get(self, key: Key, default: Any = None) -> Any: ...
    def get_many(self, keys: Collection[_KeyT]) -> dict[_KeyT, Any]: ...
    def get_multi(self, keys: Collection[_KeyT]) -> dict[_KeyT, Any]: ...
    @overload
    def gets(self, key: Key, default: Any = None, cas_default: None = None) -> tuple[Any, bytes | None]: ...
    @overload
    def gets(self, key: Key, default: Any, cas_default: _T) -> tuple[Any, bytes | _T]: ...
    @overload
    def gets(self, key: Key, default: Any = None, *, cas_default: _T) -> tuple[Any, bytes | _T]: ...
    def gets_many(self, keys: Collection[_KeyT]) -> dict[_KeyT, tuple[Any, bytes]]: ...
    def delete(self, key: Key, noreply: bool | None = None) -> bool: ...
    def delete_many(self, keys: Iterable[Key], noreply: bool | None = None) -> bool: ...
    def delete_multi(self, keys: Iterable[Key], noreply: bool | None = None) -> bool: ...
    # New value, or None if the key was not found or noreply is true.
    def incr(self, key: Key, value: int, noreply: bool | None = False) -> int | None: ...
    def decr(self, key: Key, value: int, noreply: bool | None = False) -> int | None: ...
    def touch(self, key: Key, expire: int = 0, noreply: bool | None = None) -> bool: ...
    def stats(self, *args: Key) -> dict[bytes, _StatValue]: ...
    def cache_memlimit(self, memlimit: int) -> bool: ...
    def version(self) -> bytes: ...
    def raw_command(self, command: str | bytes, end_tokens: str | bytes = "\r\n") -> bytes: ...
    def flush_all(self, delay: int = 0, noreply: bool | None = None) -> bool: ...
    def quit(self) -> None: ...
    def shutdown(self, graceful: bool = False) -> None: ...
    def __setitem__(self, key: Key, value: object) -> None: ...
    def __getitem__(self, key: Key) -> Any: ...
    def __delitem__(self, key: Key) -> None: ...

class PooledClient:
    client_class: type[Client]
    server: ServerSpec
    serde: _SerdeProtocol
    connect_timeout: float | None
    timeout: float | None
    no_delay: bool
    ignore_exc: bool
    socket_module: ModuleType
    socket_keepalive: KeepaliveOpts | None
    default_noreply: bool
    allow_unicode_keys: bool
    key_prefix: bytes
    client_pool: ObjectPool[Client]
    encoding: str
    tls_context: SSLContext | None
    def __init__(
        self,
        server: ServerSpec,
        serde: _SerdeProtocol | None = None,
        serializer: _Serializer | None = None,
        deserializer: _Deserializer | None = None,
        connect_timeout: float | None = None,
        timeout: float | None = None,
        no_delay: bool = False,
        ignore_exc: bool = False,
        socket_module: ModuleType = ...,
        socket_keepalive: KeepaliveOpts | None = None,
        key_prefix: bytes = b"",
        max_pool_size: int | None = None,
        pool_idle_timeout: float = 0,
        lock_generator: Callable[[], AbstractContextManager[Any]] | None = None,
        default_noreply: bool = True,
        allow_unicode_keys: bool = False,
        encoding: str = "ascii",
        tls_context: SSLContext | None = None,
    ) -> None: ...
    def check_key(self, key: Key) -> bytes: ...
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
    def replace(
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
    def prepend(
        self,
        key: Key,
        value: object,
        expire: int = 0,
        noreply: bool | None = None,
        flags: int | None = None,
    ) -> bool: ...
    def cas(
        self,
        key: Key,
        value: object,
        cas: int | str | bytes,
        expire: int = 0,
        noreply: bool | None = False,
        flags: int | None = None,
    ) -> bool | None: ...
    def get(self, key: Key, default: Any = None) -> Any: ...
    def get_many(self, keys: Collection[_KeyT]) -> dict[_KeyT, Any]: ...
    def get_multi(self, keys: Collection[_KeyT]) -> dict[_KeyT, Any]: ...
    # (None, None) on a miss, or on any error when ignore_exc=True.
    def gets(self, key: Key) -> tuple[Any, bytes | None]: ...
    def gets_many(self, keys: Collection[_KeyT]) -> dict[_KeyT, tuple[Any, bytes]]: ...
    def delete(self, key: Key, noreply: bool | None = None) -> bool: ...
    def delete_many(self, keys: Iterable[Key], noreply: bool | None = None) -> bool: ...
    def delete_multi(self, keys: Iterable[Key], noreply: bool | None = None) -> bool: ...
    def add(
        self,
        key: Key,
        value: object,
        expire: int = 0,
        noreply: bool | None = None,
        flags: int | None = None,
    ) -> bool: ...
    def incr(self, key: Key, value: int, noreply: bool | None = False) -> int | None: ...
    def decr(self, key: Key, value: int, noreply: bool | None = False) -> int | None: ...
    def touch(self, key: Key, expire: int = 0, noreply: bool | None = None) -> bool: ...
    def stats(self, *args: Key) -> dict[bytes, _StatValue]: ...
    def version(self) -> bytes: ...
    def flush_all(self, delay: int = 0, noreply: bool | None = None) -> bool: ...
    def quit(self) -> None: ...
    def shutdown(self, graceful: bool = False) -> None: ...
    def raw_command(self, command: str | bytes, end_tokens: str | bytes = b"\r\n") -> bytes: ...
    def __setitem__(self, key: Key, value: object) -> None: ...
    def __getitem__(self, key: Key) -> Any: ...
    def __delitem__(self, key: Key) -> None: ...
