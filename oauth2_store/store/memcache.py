"""The memcached token store: tokens and codes shared by every process and host of a provider.

The key layout, the records and the token lifecycle are the key-value store's (see
:mod:`oauth2_store.store.keyvalue`); this module builds the memcached client and wraps it in its
library's adapter (:mod:`oauth2_store.store.memcache_clients`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, overload

from pymemcache.client.base import PooledClient
from pymemcache.client.hash import HashClient
from pymemcache.client.rendezvous import RendezvousHash

from oauth2_store.clock import Clock, system_clock
from oauth2_store.store.keyvalue import KeyValueTokenStore
from oauth2_store.store.memcache_clients import connect, safe_pylibmc_client_class

__all__ = ["DEFAULT_PORT", "MemcacheTokenStore", "pymemcache_client"]

DEFAULT_PORT = 11211

MAX_VALUE_SIZE = 1024 * 1024 - 1024
"""Default largest value written: memcached's default item size (1 MiB) less room for the key
and item header. Larger records are refused before anything is written."""

# Keyword arguments that only one client library takes: passing one selects that library.
_PYLIBMC_KWARGS = frozenset({"binary", "behaviors", "username", "password"})
_PYTHON_MEMCACHED_KWARGS = frozenset(
    {"debug", "socket_timeout", "dead_retry", "server_max_key_length", "server_max_value_length", "flush_on_reconnect"}
)
_PYMEMCACHE_KWARGS = frozenset({"connect_timeout", "timeout"})


class MemcacheTokenStore(KeyValueTokenStore):
    """Stores access tokens, refresh tokens and authorization codes in memcached.

    Implements every operation of :class:`~oauth2_store.protocols.LifecycleTokenStoreProtocol`.
    Codes, refresh tokens and saves confirm their grant is live against the grant entry and the
    owner epochs, so a lost entry refuses them (fail closed). ``fetch_by_token`` stays one round
    trip: revocations delete access tokens through the grant entries, so an access token whose
    grant entry or index was evicted or lost in a restart stays usable until its own expiry, unless
    ``verify_grants`` is set.

    Set-up, as documented for python-oauth2 (all forms work unchanged):

    - ``MemcacheTokenStore(mc=client)``: an existing client object of pymemcache (``Client``,
      ``PooledClient``, ``HashClient``, ``RetryingClient``), pylibmc (``pylibmc.Client``: since a
      plain one unpickles what it reads, the store talks through a twin with the same servers,
      protocol and behaviors that never does; SASL credentials cannot be copied, so a client that
      needs them is built by the store or as a
      :func:`~oauth2_store.store.memcache_clients.safe_pylibmc_client_class` instance), or
      python-memcached (``memcache.Client``).
    - ``MemcacheTokenStore(servers=["127.0.0.1:11211", ...])``: builds a pymemcache client,
      pooled and thread-safe, hashing keys over several servers, with finite ``connect_timeout``
      and ``timeout`` (1 s each by default) and TCP_NODELAY. A server without a port uses 11211.
    - pylibmc's keyword arguments (``binary``, ``behaviors``, ``username``, ``password``) select
      pylibmc; python-memcached's (``debug``, ``socket_timeout``, ``dead_retry``, ...) select
      python-memcached. Unknown keyword arguments, or ones of two libraries, are an error, and
      each set-up is its own overload, so mypy reports a misspelt keyword or a wrong type.

    Args:
        mc: An existing memcached client, or None to build one from the other arguments.
        prefix: Put before every key, so stores with different prefixes on one server never see
            each other's records: 1 to 100 characters of ``A-Z a-z 0-9 _ . : -``.
        *args: The servers, positionally (python-oauth2's form); at most one argument.
        clock: Where the store reads the time to decide expiry (default :func:`time.time`).
        max_value_size: Largest encoded record written, in bytes.
        verify_grants: Make :meth:`fetch_by_token` confirm that the token's grant is live (a second
            round trip), so an access token whose grant entry or index was lost to eviction or a
            restart is refused at once instead of at its own expiry (see "Token lifecycle" in the
            README).
        reissue_key: At least 32 random bytes the servers hold, which seal the user entries
            :meth:`fetch_existing_token_of_user` reads (python-oauth2's ``unique_token``). Without
            it, none is written and that method raises AccessTokenNotFound: a stored token that
            can be handed out again is a usable secret at rest.
        **kwargs: ``servers`` and the client library's keyword arguments (see above).

    Raises:
        ValueError: an invalid prefix, a reissue key shorter than 32 bytes, no servers, a server with a bad port, or keyword arguments
            of two libraries; a client configured to hide failures or to unpickle values.
        TypeError: a prefix that is not a str, unknown keyword arguments, or an unsupported
            client object.
        ImportError: the selected library is not installed; the message names the extra to install.
    """

    # The documented set-ups, one overload each, so that mypy refuses a typo or a wrong type.
    @overload
    def __init__(self, mc: object, prefix: str = ..., *, clock: Clock = ..., max_value_size: int = ..., verify_grants: bool = ..., reissue_key: bytes | None = ...) -> None: ...
    @overload
    def __init__(
        self,
        mc: None = None,
        prefix: str = ...,
        servers: Sequence[str] = ...,
        *,
        connect_timeout: float = ...,
        timeout: float = ...,
        clock: Clock = ...,
        max_value_size: int = ...,
        verify_grants: bool = ...,
        reissue_key: bytes | None = ...,
    ) -> None: ...
    @overload
    def __init__(
        self,
        mc: None = None,
        prefix: str = ...,
        servers: Sequence[str] = ...,
        *,
        binary: bool = ...,
        behaviors: Mapping[str, object] | None = ...,
        username: str | None = ...,
        password: str | None = ...,
        clock: Clock = ...,
        max_value_size: int = ...,
        verify_grants: bool = ...,
        reissue_key: bytes | None = ...,
    ) -> None: ...
    @overload
    def __init__(
        self,
        mc: None = None,
        prefix: str = ...,
        servers: Sequence[str] = ...,
        *,
        debug: int = ...,
        socket_timeout: float = ...,
        dead_retry: int = ...,
        server_max_key_length: int = ...,
        server_max_value_length: int = ...,
        flush_on_reconnect: int = ...,
        clock: Clock = ...,
        max_value_size: int = ...,
        verify_grants: bool = ...,
        reissue_key: bytes | None = ...,
    ) -> None: ...
    def __init__(
        self,
        mc: object = None,
        prefix: str = "oauth2",
        *args: Any,
        clock: Clock = system_clock,
        max_value_size: int = MAX_VALUE_SIZE,
        verify_grants: bool = False,
        reissue_key: bytes | None = None,
        **kwargs: Any,
    ) -> None:
        if mc is None:
            mc = _build_client(args, kwargs)
        elif args or kwargs:
            raise TypeError("pass either mc= or the arguments to build a client, not both")
        super().__init__(
            connect(mc), prefix, clock=clock, max_value_size=max_value_size, verify_grants=verify_grants, backend="memcached", reissue_key=reissue_key
        )


_HOST = re.compile(r"[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")


def _parse_server(server: object) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[ipv6]:port`` into (host, port); 11211 when no port is given.

    Raises:
        ValueError: not such a string (an IPv6 address needs brackets), or an invalid port.
    """
    if not isinstance(server, str) or not server:
        raise ValueError("each server must be a non-empty 'host' or 'host:port' string")
    if server.startswith("["):
        host, _, port = server.partition("]")
        host += "]"
        if port and not port.startswith(":"):
            raise ValueError(f"server {server!r} is not [address]:port")
        port = port[1:]
    else:
        host, _, port = server.partition(":")
        if ":" in port:
            raise ValueError(f"server {server!r}: write an IPv6 address in brackets, as [::1]:11211")
    if _HOST.fullmatch(host) is None:
        raise ValueError(f"server {server!r} has an invalid host")
    if not port:
        return host.strip("[]"), DEFAULT_PORT
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"server {server!r} has an invalid port")
    return host.strip("[]"), int(port)


def _servers(args: Sequence[Any], kwargs: dict[str, Any]) -> list[str]:
    if len(args) > 1:
        raise TypeError("pass the servers as one list (positionally or as servers=)")
    if args and "servers" in kwargs:
        raise TypeError("servers given twice")
    servers = args[0] if args else kwargs.pop("servers", None)
    if isinstance(servers, str) or not isinstance(servers, Iterable):
        raise ValueError("servers must be a list of 'host' or 'host:port' strings")
    listed = list(servers)
    if not listed:
        raise ValueError("servers must name at least one memcached server")
    return listed


def _build_client(args: Sequence[Any], kwargs: dict[str, Any]) -> object:
    kwargs = dict(kwargs)
    servers = _servers(args, kwargs)
    given = set(kwargs)
    unknown = given - _PYLIBMC_KWARGS - _PYTHON_MEMCACHED_KWARGS - _PYMEMCACHE_KWARGS
    if unknown:
        raise TypeError(f"unknown keyword arguments: {', '.join(sorted(unknown))}")
    libraries = [name for name, names in (("pylibmc", _PYLIBMC_KWARGS), ("python-memcached", _PYTHON_MEMCACHED_KWARGS), ("pymemcache", _PYMEMCACHE_KWARGS)) if given & names]
    if len(libraries) > 1:
        raise ValueError(f"keyword arguments of several client libraries given ({', '.join(libraries)}): use one library's")
    library = libraries[0] if libraries else "pymemcache"
    addresses = [f"{host}:{port}" for host, port in map(_parse_server, servers)]
    if library == "pylibmc":
        _require("pylibmc", "pylibmc")
        ejecting = {"auto_eject", "remove_failed"} & set(kwargs.get("behaviors") or {})
        if ejecting:
            raise ValueError(f"pylibmc behaviors {', '.join(sorted(ejecting))} move a failing server's keys to another server: not allowed")
        return safe_pylibmc_client_class()(addresses, **kwargs)
    if library == "python-memcached":
        # Its unpickler is replaced by the adapter (connect), for built and passed clients alike.
        return _require("memcache", "python-memcached").Client(addresses, **kwargs)
    return pymemcache_client(servers, connect_timeout=kwargs.get("connect_timeout", 1.0), timeout=kwargs.get("timeout", 1.0))


def pymemcache_client(servers: Sequence[str], connect_timeout: float = 1.0, timeout: float = 1.0) -> PooledClient | HashClient:
    """The pymemcache client the store builds: pooled (thread-safe), TCP_NODELAY, finite
    timeouts, replies awaited, errors raised; a HashClient over several servers.

    Raises:
        ValueError: a server with a bad port, or a non-positive timeout.
    """
    if not (connect_timeout > 0 and timeout > 0):
        raise ValueError("connect_timeout and timeout must be positive numbers of seconds")
    parsed = [_parse_server(server) for server in servers]
    options: dict[str, Any] = dict(connect_timeout=connect_timeout, timeout=timeout, no_delay=True, default_noreply=False)
    if len(parsed) == 1:
        return PooledClient(parsed[0], **options)
    return HashClient(parsed, use_pooling=True, hasher=functools.partial(RendezvousHash, hash_function=_rendezvous_score), **options)


def _rendezvous_score(node_and_key: str, seed: int) -> int:
    """The score of a server for a key in rendezvous hashing: 64 bits of blake2b.

    pymemcache's default, murmur3 in pure Python, costs about 30 µs per server per key: with three
    servers, routing took longer than the round trip. ``seed`` is pymemcache's (always 0).
    """
    return int.from_bytes(hashlib.blake2b(node_and_key.encode(), digest_size=8).digest(), "big") ^ seed


def _require(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"the {extra} client library is not installed: pip install 'oauth2-store[{extra}]'") from None
