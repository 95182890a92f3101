"""One typed seam in front of every memcached client library the memcache store accepts.

:class:`MemcacheConnection` is all the store needs: get, get_many, set_many, add, append,
prepend, touch, delete, delete_many, with str keys and bytes values, each call one round trip per
server involved, each write waiting for the server's reply. :func:`connect` wraps a client object of pymemcache (``Client``,
``PooledClient``, ``HashClient``, ``RetryingClient``), pylibmc or python-memcached in the adapter
for its library. Everything that differs between the libraries is handled here and nowhere else:

- **Failures.** Every library error, socket error and timeout becomes
  :class:`~oauth2_store.error.StoreUnavailableError` naming the server, in :class:`_translated`.
  Where a library hides a failure as a miss, the adapter detects it or avoids the call that hides
  it: pymemcache's ``HashClient`` answers misses for a server in its retry window, so keys are
  routed to the per-server clients directly; python-memcached answers None/0 for a dead server and
  routes keys to other servers, so its dead-host marks are checked after every call (and reset
  before it, so a server that is back is used at once instead of after ``dead_retry``); pylibmc
  answers the first read after a server died or timed out as a miss, and a multi-get silently
  leaves out a failed server's keys, so a miss is read twice, the second time key by key (the
  second read raises); with the binary protocol it retries a failed server on reads only, so after a
  failure a write or delete first reads its keys. Clients that retry or eject servers in ways that
  lose a result are refused or bypassed:
  ``ignore_exc``, pylibmc's ``auto_eject``, and ``RetryingClient`` for deletes and conditional
  writes (a retried delete of a code whose first reply was lost answers NOT_FOUND: the code would
  be used by nobody; a retried ``add`` of a consumed-code marker answers NOT_STORED: the winner
  would read as a replay).
- **Values.** Only bytes are written and read. A client that would unpickle what it reads (a
  pymemcache serde, python-memcached's and pylibmc's built-in pickle support) could be made to run
  code by whoever can write to the cache, so the adapters refuse such clients or switch the
  unpickling off (a plain ``pylibmc.Client`` is replaced by a twin that never unpickles, see
  :func:`_never_unpickling`); a value that is not bytes raises
  :class:`~oauth2_store.error.CodecError`.
- **Thread safety.** Clients that hold a single socket (pymemcache ``Client``, pylibmc ``Client``)
  are used under a lock; pooled clients and python-memcached's thread-local client are not.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol, TypeVar, cast

from pymemcache.client.base import Client as PymemcacheClient
from pymemcache.client.base import PooledClient
from pymemcache.client.hash import HashClient
from pymemcache.client.retrying import RetryingClient
from pymemcache.exceptions import MemcacheError, MemcacheServerError
from pymemcache.serde import LegacyWrappingSerde

from oauth2_store.error import CodecError, RecordTooLargeError, StoreError, StoreUnavailableError
from oauth2_store.store.keyvalue import KeyValueConnection

__all__ = ["MemcacheConnection", "PylibmcClient", "SafePylibmcClientClass", "connect", "safe_pylibmc_client_class"]

_T = TypeVar("_T")


MemcacheConnection = KeyValueConnection
"""The connection protocol, under the name it had before Redis joined (see :mod:`oauth2_store.store.keyvalue`)."""


class _translated:
    """Context manager turning socket and library errors into the package's errors.

    A class, not a generator-based context manager: it runs around every memcached call. It keeps
    no state between uses, so each adapter builds its own once and reuses it, across threads too.
    """

    __slots__ = ("_caught", "_servers", "_too_large")

    def __init__(
        self, servers: str, library_errors: tuple[type[BaseException], ...] = (), too_large: tuple[type[BaseException], ...] = ()
    ) -> None:
        self._servers = servers
        self._caught = (OSError, MemcacheError) + library_errors
        self._too_large = too_large

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> None:
        if error is None or isinstance(error, StoreError) or not isinstance(error, self._caught):
            return
        servers = self._servers
        if isinstance(error, self._too_large):
            raise RecordTooLargeError(f"memcached at {servers} refused a value as too large") from error
        if isinstance(error, MemcacheServerError):
            if "too large" in str(error):
                raise RecordTooLargeError(f"memcached at {servers} refused a value as too large") from error
            raise StoreUnavailableError(f"memcached at {servers} answered with an error: {error}", servers) from error
        # Messages of these libraries name keys (digests here), never values.
        raise StoreUnavailableError(f"memcached at {servers} failed: {type(error).__name__}: {error}", servers) from error


def _bytes_or_none(value: object) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    raise CodecError(f"memcached returned a {type(value).__name__}, not bytes: the value was not written by oauth2-store")


def _bytes_values(found: Mapping[str, object]) -> dict[str, bytes]:
    values: dict[str, bytes] = {}
    for key, value in found.items():
        checked = _bytes_or_none(value)
        if checked is not None:
            values[key] = checked
    return values


def _server_name(server: object) -> str:
    if isinstance(server, tuple) and len(server) == 2:
        return f"{server[0]}:{server[1]}"
    return str(server)


# pymemcache


class _PymemcacheOps(Protocol):
    """The calls made on a pymemcache client (Client, PooledClient, or RetryingClient of one)."""

    def get(self, key: str) -> object: ...
    def get_many(self, keys: Sequence[str]) -> Mapping[str, object]: ...
    def set_many(self, values: Mapping[str, bytes], expire: int = 0, noreply: bool | None = None) -> list[str]: ...
    def add(self, key: str, value: bytes, expire: int = 0, noreply: bool | None = None) -> bool: ...
    def append(self, key: str, value: bytes, expire: int = 0, noreply: bool | None = None) -> bool: ...
    def prepend(self, key: str, value: bytes, expire: int = 0, noreply: bool | None = None) -> bool: ...
    def touch(self, key: str, expire: int = 0, noreply: bool | None = None) -> bool: ...
    def delete(self, key: str, noreply: bool | None = None) -> bool: ...
    def delete_many(self, keys: Sequence[str], noreply: bool | None = None) -> bool: ...
    def close(self) -> None: ...


def _check_pymemcache_client(client: PymemcacheClient | PooledClient) -> None:
    if client.ignore_exc:
        raise ValueError("the pymemcache client has ignore_exc=True: it would turn failures into misses")
    serde = client.serde
    if not (isinstance(serde, LegacyWrappingSerde) and getattr(serde.deserialize, "__func__", None) is LegacyWrappingSerde._default_deserialize):
        raise ValueError(
            "the pymemcache client has a serde or deserializer: it could unpickle values others wrote to the "
            "cache; pass a client with the default serde (oauth2-store writes and reads bytes only)"
        )


class _PymemcacheConnection:
    """A pymemcache Client or PooledClient, or a RetryingClient of one: one server, errors raised.

    A RetryingClient retries reads and writes, which is harmless; a delete and the conditional
    writes (add, append, prepend) go to the client it wraps, because retried they answer
    NOT_FOUND or NOT_STORED when only the first reply was lost.
    """

    library = "pymemcache"
    max_value_size: int | None = None

    def __init__(self, client: object, inner: PymemcacheClient | PooledClient) -> None:
        _check_pymemcache_client(inner)
        # RetryingClient forwards calls through __getattr__, which neither mypy nor typeguard can
        # see, and is not generic at run time: hence object and a cast.
        self._client = cast(_PymemcacheOps, client)
        self._deleter = cast(_PymemcacheOps, inner)
        self.servers = _server_name(inner.server)
        self._translated = _translated(self.servers)
        thread_safe = isinstance(inner, PooledClient)
        self._lock: contextlib.AbstractContextManager[object] = contextlib.nullcontext() if thread_safe else threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock, self._translated:
            return _bytes_or_none(self._client.get(key))

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        with self._lock, self._translated:
            found = self._client.get_many(keys)
        return _bytes_values(found)

    def set_many(self, values: Mapping[str, bytes], expire: int) -> None:
        with self._lock, self._translated:
            failed = self._client.set_many(values, expire=expire, noreply=False)
        if failed:
            raise StoreUnavailableError(f"memcached at {self.servers} did not store {len(failed)} of {len(values)} values", self.servers)

    def add(self, key: str, value: bytes, expire: int) -> bool:
        with self._lock, self._translated:
            return self._deleter.add(key, value, expire, noreply=False)

    def append(self, key: str, value: bytes) -> bool:
        with self._lock, self._translated:
            return self._deleter.append(key, value, noreply=False)

    def prepend(self, key: str, value: bytes) -> bool:
        with self._lock, self._translated:
            return bool(self._deleter.prepend(key, value, noreply=False))

    def touch(self, key: str, expire: int) -> bool:
        with self._lock, self._translated:
            return self._client.touch(key, expire, noreply=False)

    def delete(self, key: str) -> bool:
        with self._lock, self._translated:
            return self._deleter.delete(key, noreply=False)

    def delete_many(self, keys: Sequence[str]) -> None:
        with self._lock, self._translated:
            self._deleter.delete_many(keys, noreply=False)

    def close(self) -> None:
        with self._lock, self._translated:
            self._deleter.close()


class _HashConnection:
    """A pymemcache HashClient, with keys routed to its per-server clients by this adapter.

    HashClient's own methods answer misses (get None, set_many "failed") while a server is in its
    retry window, and drop a failing server from the ring so its keys silently move to another
    server (where a revoked token is not revoked). Calling the per-server clients directly keeps
    every failure an error and the ring unchanged; a ring from which HashClient already dropped a
    server (used elsewhere by the application) is refused as unavailable.
    """

    library = "pymemcache"
    max_value_size: int | None = None

    def __init__(self, client: HashClient) -> None:
        if client.ignore_exc:
            raise ValueError("the HashClient has ignore_exc=True: it would turn failures into misses")
        for server_client in client.clients.values():
            _check_pymemcache_client(server_client)
        self._client = client
        self.servers = ",".join(client.clients)
        self._translated = _translated(self.servers)
        names = [_server_name(server_client.server) for server_client in client.clients.values()]
        self._server_translated = {name: _translated(name) for name in names}  # by the names _route gives
        self._lock: contextlib.AbstractContextManager[object] = contextlib.nullcontext() if client.use_pooling else threading.Lock()

    def _route(self, keys: Sequence[str]) -> dict[str, tuple[_PymemcacheOps, list[str]]]:
        if self._client._dead_clients:
            dropped = ",".join(self._client._dead_clients)
            raise StoreUnavailableError(f"memcached at {dropped} was dropped from the HashClient's ring", dropped)
        batches: dict[str, tuple[_PymemcacheOps, list[str]]] = {}
        for key in keys:
            server_client = self._client._get_client(key)
            if server_client is None:
                raise StoreUnavailableError(f"no memcached server is left in the ring ({self.servers})", self.servers)
            name = _server_name(server_client.server)
            batches.setdefault(name, (cast(_PymemcacheOps, server_client), []))[1].append(key)
        return batches

    def get(self, key: str) -> bytes | None:
        with self._lock:
            ((name, (server_client, _)),) = self._route([key]).items()
            with self._server_translated[name]:
                return _bytes_or_none(server_client.get(key))

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        with self._lock:
            for name, (server_client, server_keys) in self._route(keys).items():
                with self._server_translated[name]:
                    found.update(_bytes_values(server_client.get_many(server_keys)))
        return found

    def _one(self, key: str) -> tuple[str, _PymemcacheOps]:
        ((name, (server_client, _)),) = self._route([key]).items()
        return name, server_client

    def add(self, key: str, value: bytes, expire: int) -> bool:
        with self._lock:
            name, server_client = self._one(key)
            with self._server_translated[name]:
                return server_client.add(key, value, expire, noreply=False)

    def append(self, key: str, value: bytes) -> bool:
        with self._lock:
            name, server_client = self._one(key)
            with self._server_translated[name]:
                return server_client.append(key, value, noreply=False)

    def prepend(self, key: str, value: bytes) -> bool:
        with self._lock:
            name, server_client = self._one(key)
            with self._server_translated[name]:
                return bool(server_client.prepend(key, value, noreply=False))

    def touch(self, key: str, expire: int) -> bool:
        with self._lock:
            name, server_client = self._one(key)
            with self._server_translated[name]:
                return server_client.touch(key, expire, noreply=False)

    def set_many(self, values: Mapping[str, bytes], expire: int) -> None:
        with self._lock:
            for name, (server_client, server_keys) in self._route(list(values)).items():
                with self._server_translated[name]:
                    failed = server_client.set_many({key: values[key] for key in server_keys}, expire=expire, noreply=False)
                if failed:
                    raise StoreUnavailableError(f"memcached at {name} did not store {len(failed)} values", name)

    def delete(self, key: str) -> bool:
        with self._lock:
            ((name, (server_client, _)),) = self._route([key]).items()
            with self._server_translated[name]:
                return server_client.delete(key, noreply=False)

    def delete_many(self, keys: Sequence[str]) -> None:
        with self._lock:
            for name, (server_client, server_keys) in self._route(keys).items():
                with self._server_translated[name]:
                    server_client.delete_many(server_keys, noreply=False)

    def close(self) -> None:
        with self._lock, self._translated:
            self._client.close()


# python-memcached


class _MemcacheHost(Protocol):
    deaduntil: float

    def __str__(self) -> str: ...


class _PythonMemcachedClient(Protocol):
    """The part of python-memcached's ``memcache.Client`` (1.6x) the adapter uses."""

    servers: list[_MemcacheHost]
    unpickler: Callable[..., object]
    server_max_value_length: int

    def get(self, key: str) -> object: ...
    def get_multi(self, keys: Sequence[str]) -> Mapping[str, object]: ...
    def set_multi(self, mapping: Mapping[str, bytes], time: int = 0) -> list[str]: ...
    def add(self, key: str, val: bytes, time: int = 0) -> int: ...
    def append(self, key: str, val: bytes) -> int: ...
    def prepend(self, key: str, val: bytes) -> int: ...
    def touch(self, key: str, time: int = 0) -> int: ...
    def delete(self, key: str) -> int: ...
    def delete_multi(self, keys: Sequence[str]) -> int: ...
    def forget_dead_hosts(self) -> None: ...
    def disconnect_all(self) -> None: ...


class _RefusingUnpickler:
    """Installed as python-memcached's unpickler: a pickled value from the cache is never loaded.

    python-memcached turns the error into a miss; ``refused`` lets the adapter tell, per thread.
    """

    refused = threading.local()

    def __init__(self, file: object) -> None:
        pass

    def load(self) -> object:
        _RefusingUnpickler.refused.value = True
        raise CodecError("oauth2-store never unpickles values read from memcached")


class _PythonMemcachedConnection:
    """A python-memcached ``memcache.Client``.

    It reports a dead server as a miss (get None, delete 0, set_multi "failed") and sends the keys
    of a dead server to another one, so before each call the adapter clears the dead-host marks
    (the server is tried again now, not after ``dead_retry``) and after it raises
    StoreUnavailableError if a server was marked dead during the call. It also unpickles values
    flagged as pickles; the adapter replaces the unpickler (per thread: the client is a
    ``threading.local``) with one that refuses, and raises CodecError where python-memcached would
    report the refusal as a miss.
    """

    library = "python-memcached"

    def __init__(self, client: _PythonMemcachedClient) -> None:
        self._client = client
        # Larger values it refuses itself, after waiting out socket_timeout and marking the
        # server dead: the store refuses them first.
        self.max_value_size: int | None = client.server_max_value_length or None
        self.servers = ",".join(str(host).split(" ")[0].removeprefix("inet:") for host in client.servers)
        self._translated = _translated(self.servers)

    @contextlib.contextmanager
    def _call(self) -> Iterator[_PythonMemcachedClient]:
        client = self._client
        if client.unpickler is not _RefusingUnpickler:
            client.unpickler = _RefusingUnpickler
        client.forget_dead_hosts()
        _RefusingUnpickler.refused.value = False
        with self._translated:
            yield client
        dead = [str(host) for host in client.servers if host.deaduntil]
        if dead:
            raise StoreUnavailableError(f"memcached at {', '.join(dead)} failed (python-memcached marked it dead)", self.servers)
        if _RefusingUnpickler.refused.value:
            raise CodecError("memcached returned a value flagged as a pickle: it was not written by oauth2-store")

    def get(self, key: str) -> bytes | None:
        with self._call() as client:
            value = client.get(key)
        return _bytes_or_none(value)

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        with self._call() as client:
            found = client.get_multi(keys)
        return _bytes_values(found)

    def add(self, key: str, value: bytes, expire: int) -> bool:
        with self._call() as client:
            return bool(client.add(key, value, time=expire))

    def append(self, key: str, value: bytes) -> bool:
        with self._call() as client:
            return bool(client.append(key, value))

    def prepend(self, key: str, value: bytes) -> bool:
        with self._call() as client:
            return bool(client.prepend(key, value))

    def touch(self, key: str, expire: int) -> bool:
        with self._call() as client:
            return bool(client.touch(key, time=expire))

    def set_many(self, values: Mapping[str, bytes], expire: int) -> None:
        with self._call() as client:
            failed = client.set_multi(values, time=expire)
        if failed:
            raise StoreUnavailableError(
                f"memcached at {self.servers} did not store {len(failed)} of {len(values)} values "
                "(python-memcached does not say why: too large for the server's item size, or out of memory)",
                self.servers,
            )

    def delete(self, key: str) -> bool:
        with self._call() as client:
            return bool(client.delete(key))

    def delete_many(self, keys: Sequence[str]) -> None:
        with self._call() as client:
            client.delete_multi(keys)

    def close(self) -> None:
        self._client.disconnect_all()


# pylibmc


class PylibmcClient(Protocol):
    """The part of ``pylibmc.Client`` (1.6) the store uses: what a
    :func:`safe_pylibmc_client_class` instance is typed as (pylibmc ships no types)."""

    addresses: list[str]
    behaviors: dict[str, object]

    def get(self, key: str) -> object: ...
    def get_multi(self, keys: Sequence[str]) -> Mapping[str, object]: ...
    def set_multi(self, mapping: Mapping[str, bytes], time: int = 0) -> list[str]: ...
    def add(self, key: str, val: bytes, time: int = 0, /) -> bool: ...
    def append(self, key: str, val: bytes, /) -> bool: ...
    def prepend(self, key: str, val: bytes, /) -> bool: ...
    def gets(self, key: str, /) -> tuple[object, int]: ...
    def cas(self, key: str, val: bytes | None, cas: int, time: int = 0, /) -> bool: ...
    def delete(self, key: str) -> bool: ...
    def delete_multi(self, keys: Sequence[str]) -> bool: ...
    def deserialize(self, value: bytes, flags: int) -> object: ...
    def disconnect_all(self) -> None: ...


class _PylibmcConnection:
    """A ``pylibmc.Client``, used under a lock (a pylibmc client is not thread-safe).

    Its first read after a server dies or stops answering answers a miss (``get``: None,
    ``get_multi``: ``{}``), with either protocol; later reads raise. So a miss is read twice: a
    genuine one costs two round trips, a failure raises. ``get_multi`` over several servers
    leaves out the keys of one that failed earlier, without an error, so the second read of each
    key ``get_multi`` missed is a ``get`` of its own. ``auto_eject`` is refused: it moves a
    failing server's keys to the others.

    libmemcached (1.0, binary protocol) retries a failed server after ``retry_timeout`` on reads
    only: writes and deletes raise "SERVER HAS FAILED AND IS DISABLED UNTIL TIMED RETRY" for as long
    as no read comes. So after a failure the next write or delete first reads its keys (the result
    is not used), which lets libmemcached retry; once a call succeeds, writes are single calls again.
    It also disables a server that answers a write with an error (out of memory): the adapter
    reconnects then, so the store can delete what the failed save wrote.
    """

    library = "pylibmc"
    max_value_size: int | None = None

    def __init__(
        self, client: PylibmcClient, library_errors: tuple[type[BaseException], ...], too_big: type[BaseException], server_down: type[BaseException]
    ) -> None:
        if client.behaviors.get("auto_eject"):
            raise ValueError("the pylibmc client has auto_eject: a failing server's keys would move to another server")
        self._client = client
        client.behaviors["cas"] = True  # for touch, see there
        self.servers = ",".join(client.addresses)
        self._translated = _translated(self.servers, library_errors, too_large=(too_big,))
        self._server_down = server_down
        self._lock = threading.Lock()
        self._failing = False  # the last call failed (read and written with the lock held)
        self._refused_write = False  # the last call was a write the server did not store

    def _send(self, call: Callable[[], _T]) -> _T:
        """Make one libmemcached call (lock held), marking the connection failing until it returns.

        libmemcached also disables a server that *answered* a write with an error (out of memory;
        pylibmc then returns False, as for NOT_STORED), and refuses every later call with
        ServerDown, unsent, for retry_timeout. A refusal right after a refused write can be that:
        reconnect and send the call once more (a server really down fails it again).
        """
        after_refused_write = self._refused_write
        self._failing, self._refused_write = True, False
        try:
            result = call()
        except self._server_down:
            if not after_refused_write:
                raise
            self._client.disconnect_all()
            result = call()
        self._failing = False
        return result

    def get(self, key: str) -> bytes | None:
        with self._lock, self._translated:
            # pylibmc answers the first read after the server died or stopped answering as a
            # miss, and raises from then on: a miss is only believed when a second read says so.
            def read() -> object:
                value = self._client.get(key)
                return self._client.get(key) if value is None else value

            return _bytes_or_none(self._send(read))

    def _revive(self, keys: Sequence[str]) -> None:
        """Before a write or delete of ``keys`` (lock held): if the last call failed, read them, so
        libmemcached retries their servers once ``retry_timeout`` has passed (writes do not)."""
        if self._failing:
            with contextlib.suppress(CodecError):  # a value not ours: the read was only to reconnect
                self._client.get_multi(keys)

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        def read() -> dict[str, bytes]:
            found = _bytes_values(self._client.get_multi(keys))
            # As in get, a miss is only believed when a second read says so; and that read is one
            # get per key, since libmemcached's mget silently skips a server that failed when
            # others answer, where a get raises.
            for key in keys:
                if key not in found:
                    value = _bytes_or_none(self._client.get(key))
                    if value is not None:
                        found[key] = value
            return found

        with self._lock, self._translated:
            return self._send(read)

    def _conditional(self, key: str, write: Callable[[], bool]) -> bool:
        with self._lock, self._translated:
            self._revive([key])
            done = bool(self._send(write))
            self._refused_write = not done
            return done

    def add(self, key: str, value: bytes, expire: int) -> bool:
        return self._conditional(key, lambda: self._client.add(key, value, expire))

    def append(self, key: str, value: bytes) -> bool:
        return self._conditional(key, lambda: self._client.append(key, value))

    def prepend(self, key: str, value: bytes) -> bool:
        return self._conditional(key, lambda: self._client.prepend(key, value))

    def touch(self, key: str, expire: int) -> bool:
        # libmemcached's binary-protocol touch waits out its 5 s poll timeout before answering:
        # rewrite the value with its own cas id instead (retried if an append came in between).
        for _ in range(8):
            with self._lock, self._translated:
                self._revive([key])
                found = self._send(lambda: self._client.gets(key))
                if found[0] is None:
                    return False
                value = _bytes_or_none(found[0])
                if self._send(lambda: self._client.cas(key, value, found[1], expire)):
                    return True
        raise StoreUnavailableError(f"memcached at {self.servers} kept changing a value as its expiration was set", self.servers)

    def set_many(self, values: Mapping[str, bytes], expire: int) -> None:
        with self._lock, self._translated:
            self._revive(list(values))
            try:
                failed = self._send(lambda: self._client.set_multi(values, time=expire))
            except self._server_down:
                # The server answered a set this batch began with (out of memory) and libmemcached
                # disabled it for the rest: reconnect, so the store can delete what was written.
                self._client.disconnect_all()
                raise
            if failed:
                # The server answered (out of memory, say), yet libmemcached disables it for
                # retry_timeout, so the store could not delete what this save wrote: reconnect.
                self._client.disconnect_all()
        if failed:
            raise StoreUnavailableError(f"memcached at {self.servers} did not store {len(failed)} of {len(values)} values", self.servers)

    def delete(self, key: str) -> bool:
        with self._lock, self._translated:
            self._revive([key])
            return bool(self._send(lambda: self._client.delete(key)))

    def delete_many(self, keys: Sequence[str]) -> None:
        with self._lock, self._translated:
            self._revive(keys)
            self._send(lambda: self._client.delete_multi(keys))

    def close(self) -> None:
        with self._lock, self._translated:
            self._client.disconnect_all()


def connect(client: object) -> MemcacheConnection:
    """Wrap a memcached client object of a supported library in its adapter.

    Raises:
        TypeError: ``client`` is not a client of a supported library.
        ValueError: the client is configured to hide failures or to unpickle values.
    """
    if isinstance(client, RetryingClient):
        inner = client._client
        if isinstance(inner, HashClient):
            # Retries would go through HashClient's own methods; route per server instead.
            return _HashConnection(inner)
        return _PymemcacheConnection(client, inner)
    if isinstance(client, HashClient):
        return _HashConnection(client)
    if isinstance(client, (PymemcacheClient, PooledClient)):
        return _PymemcacheConnection(client, client)
    module = type(client).__module__
    if module == "memcache":
        return _PythonMemcachedConnection(cast(_PythonMemcachedClient, client))
    if module.split(".")[0] == "pylibmc":
        pylibmc = importlib.import_module("pylibmc")
        safe = _never_unpickling(cast(PylibmcClient, client), pylibmc.Client)
        return _PylibmcConnection(safe, (pylibmc.Error,), pylibmc.TooBig, pylibmc.ServerDown)
    raise TypeError(
        f"unsupported memcached client {type(client).__module__}.{type(client).__qualname__}: pass a pymemcache "
        "Client, PooledClient, HashClient or RetryingClient, a pylibmc.Client, or a python-memcached memcache.Client"
    )


def _never_unpickling(client: PylibmcClient, plain: type) -> PylibmcClient:
    """``client`` if it never unpickles, else a twin that does not: same servers, protocol and behaviors.

    A plain ``pylibmc.Client`` unpickles values flagged as pickles, and decides so in C when it is
    built: replacing ``deserialize`` on the instance, changing its class or cloning it all keep
    unpickling. So the store uses a :func:`safe_pylibmc_client_class` twin built from the client's
    ``addresses``, ``binary`` and ``behaviors``. SASL credentials cannot be read back from a
    pylibmc client: a client that needs them must be built by the store (``username=``,
    ``password=``) or as a :func:`safe_pylibmc_client_class` instance; otherwise the twin's calls
    fail with :class:`~oauth2_store.error.StoreUnavailableError`, never silently.
    """
    if getattr(type(client), "deserialize", None) is not getattr(plain, "deserialize", None):
        return client
    binary = getattr(client, "binary", False)
    # Only the behaviors the user changed: some of the others pylibmc reports but refuses to set.
    defaults = plain(client.addresses, binary=binary).behaviors
    behaviors = {name: value for name, value in client.behaviors.items() if defaults.get(name) != value}
    return safe_pylibmc_client_class()(client.addresses, binary=binary, behaviors=behaviors)


class SafePylibmcClientClass(Protocol):
    """The class :func:`safe_pylibmc_client_class` returns: called as ``pylibmc.Client`` is."""

    def __call__(
        self,
        servers: Sequence[str],
        behaviors: Mapping[str, object] | None = None,
        binary: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> PylibmcClient: ...


@functools.cache
def safe_pylibmc_client_class() -> SafePylibmcClientClass:
    """A ``pylibmc.Client`` subclass that never unpickles: values other than plain bytes raise.

    Raises:
        ImportError: pylibmc is not installed (``pip install oauth2-store[pylibmc]``).
    """
    pylibmc = importlib.import_module("pylibmc")

    def deserialize(self: object, value: bytes, flags: int) -> object:
        if flags != 0:
            raise CodecError(f"memcached value has pylibmc flags {flags}: it was not written by oauth2-store")
        return value

    safe = type("SafePylibmcClient", (pylibmc.Client,), {"deserialize": deserialize, "__module__": "pylibmc.safe"})
    return cast(SafePylibmcClientClass, safe)  # pylibmc is untyped: the Protocol says how it is called


