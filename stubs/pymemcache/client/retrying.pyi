# Stubs for pymemcache 4.0.0 (pymemcache/client/retrying.py).
#
# At runtime RetryingClient forwards every attribute through __getattr__ to
# the wrapped client (retrying on exceptions).  The stub is generic in the
# wrapped client type and spells out the forwarded methods; the few whose
# result differs between Client/PooledClient and HashClient are overloaded on
# ``self``.  ``Any`` in return types is used ONLY for cached values.
# ``__getattr__`` is deliberately NOT declared, so that a misspelt method is a
# type error instead of silently ``Any``; forwarded methods other than those
# below (raw_command, shutdown, ...) are therefore not available to type
# checkers -- call them on the wrapped client instead.

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Generic, Literal, TypeVar, overload

from pymemcache.client.base import Client, Key, PooledClient, _StatValue
from pymemcache.client.hash import HashClient

_KeyT = TypeVar("_KeyT", bound=str | bytes)
_C = TypeVar("_C", Client, PooledClient, HashClient, covariant=True)

class RetryingClient(Generic[_C]):
    # Private: the wrapped client (oauth2-store inspects it to route HashClient keys itself).
    _client: _C
    def __init__(
        self,
        client: _C,
        attempts: int = 2,
        retry_delay: float = 0,
        retry_for: tuple[type[Exception], ...] | set[type[Exception]] | list[type[Exception]] | None = None,
        do_not_retry_for: tuple[type[Exception], ...] | set[type[Exception]] | list[type[Exception]] | None = None,
    ) -> None: ...
    def __dir__(self) -> list[str]: ...
    def __setitem__(self, key: Key, value: object) -> None: ...
    def __getitem__(self, key: Key) -> Any: ...
    def __delitem__(self, key: Key) -> None: ...
    # --- forwarded to the wrapped client (see module comment) ---
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
    def gets(self: RetryingClient[HashClient], key: Key) -> tuple[Any, bytes | None] | None: ...
    @overload
    def gets(self: RetryingClient[Client] | RetryingClient[PooledClient], key: Key) -> tuple[Any, bytes | None]: ...
    def gets_many(self, keys: Collection[_KeyT]) -> dict[_KeyT, tuple[Any, bytes]]: ...
    def delete(self, key: Key, noreply: bool | None = None) -> bool: ...
    def delete_many(self, keys: Iterable[Key], noreply: bool | None = None) -> bool: ...
    def delete_multi(self, keys: Iterable[Key], noreply: bool | None = None) -> bool: ...
    @overload
    def incr(self: RetryingClient[HashClient], key: Key, value: int, noreply: bool | None = False) -> int | Literal[False] | None: ...
    @overload
    def incr(self: RetryingClient[Client] | RetryingClient[PooledClient], key: Key, value: int, noreply: bool | None = False) -> int | None: ...
    @overload
    def decr(self: RetryingClient[HashClient], key: Key, value: int, noreply: bool | None = False) -> int | Literal[False] | None: ...
    @overload
    def decr(self: RetryingClient[Client] | RetryingClient[PooledClient], key: Key, value: int, noreply: bool | None = False) -> int | None: ...
    def touch(self, key: Key, expire: int = 0, noreply: bool | None = None) -> bool: ...
    # Not available when wrapping a HashClient.
    def stats(self: RetryingClient[Client] | RetryingClient[PooledClient], *args: Key) -> dict[bytes, _StatValue]: ...
    def version(self: RetryingClient[Client] | RetryingClient[PooledClient]) -> bytes: ...
    @overload
    def flush_all(self: RetryingClient[HashClient], delay: int = 0, noreply: bool | None = None) -> None: ...
    @overload
    def flush_all(self: RetryingClient[Client] | RetryingClient[PooledClient], delay: int = 0, noreply: bool | None = None) -> bool: ...
    def quit(self) -> None: ...
