"""Store URLs: name a deployment in one string, for configuration files and the command line.

- ``memory://``: the embedded in-memory store (:class:`~oauth2_store.store.LocalTokenStore`).
- ``memcache://host[:port][,host[:port]...][?prefix=...&client=...&timeout=...&verify_grants=...]``:
  :class:`~oauth2_store.store.MemcacheTokenStore` over those servers (port 11211 when none is
  given; ``[::1]:11211`` for IPv6), with ``client`` one of ``pymemcache`` (the default),
  ``pylibmc`` or ``python-memcached``, ``timeout`` the connect and read timeout in seconds
  (default 1), and ``verify_grants`` ``true`` or ``false`` (the default): whether
  ``fetch_by_token`` also checks the token's grant.
- Either shared store takes ``reissue_key_file``: a file of at least 32 random bytes whose key
  seals the user entries ``fetch_existing_token_of_user`` reads (python-oauth2's
  ``unique_token``); without it there are none (see "Secrets at rest" in the README).
- ``redis://[user:password@]host[:port][/db][?prefix=...&timeout=...&verify_grants=...]``:
  :class:`~oauth2_store.store.redis.RedisTokenStore` on one Redis server (port 6379, database 0
  when none is given); user name and password percent-encoded, as in any URL. ``rediss://``
  speaks TLS, verifying the server's certificate against the system's CAs or the PEM file of
  option ``ca_file``.
- ``redis+cluster://[user:password@]host:port[,host:port...][?...]``: the same on a Redis
  Cluster, whose slots are read from the first node that answers (``rediss+cluster://`` for TLS).
- ``sqlite:///relative/path`` or ``sqlite:////absolute/path``: :class:`~oauth2_store.store.sql.SqlTokenStore`
  in a SQLite file (created with its tables when missing); ``postgresql://[user:password@]host[:port]/database``
  (or ``postgresql+psycopg://``): the same on PostgreSQL. Options ``prefix`` (of the table names,
  ``a-z 0-9 _``; default ``oauth2``), ``timeout`` (default 5 seconds) and ``reissue_key_file``.

:data:`STORE_SCHEMES` maps each scheme to the function that opens it: a new adapter is one entry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from oauth2_store.protocols import LifecycleTokenStoreProtocol, TokenStoreProtocol
from oauth2_store.store.memcache import MemcacheTokenStore
from oauth2_store.store.memory import LocalTokenStore

__all__ = ["STORE_SCHEMES", "StoreOpener", "discard_store", "open_store", "redact_url"]

StoreOpener = Callable[[SplitResult, dict[str, str]], LifecycleTokenStoreProtocol]
"""Opens the store a parsed URL names, given its query options (it must use or refuse each). Every
store it opens implements the token lifecycle."""

MEMCACHE_CLIENTS = ("pymemcache", "pylibmc", "python-memcached")


def open_store(url: str, *, prefix: str | None = None) -> LifecycleTokenStoreProtocol:
    """Open the token store ``url`` names: a store with the token lifecycle
    (:class:`~oauth2_store.protocols.LifecycleTokenStoreProtocol`). Connections are made on first
    use, not here.

    Args:
        url: A store URL (see the module documentation).
        prefix: Overrides the URL's ``prefix`` option (for example a fresh one for checks).

    Raises:
        ValueError: the URL is malformed, names an unknown scheme or option, or gives an option a
            value of the wrong type; the message names the part that is wrong and never repeats a
            password.
        ImportError: the selected client library is not installed.
    """
    shown = redact_url(url)
    if url != url.strip():
        raise ValueError(f"{shown!r}: a store URL has no leading or trailing white space")
    if "://" not in url:
        raise ValueError(f"{shown}: not a store URL; write {' or '.join(_EXAMPLES)}")
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ValueError(f"{shown}: not a valid URL") from None
    opener = STORE_SCHEMES.get(parts.scheme)
    if opener is None:
        raise ValueError(f"{shown}: unknown scheme {parts.scheme!r}; use one of {', '.join(f'{s}://' for s in STORE_SCHEMES)}")
    options: dict[str, str] = {}
    for name, value in query:
        if name in options:
            raise ValueError(f"{shown}: option {name!r} is given twice")
        options[name] = value
    if parts.fragment:
        raise ValueError(f"{shown}: a store URL has no fragment")
    try:
        if prefix is not None and "prefix" in options:
            # The URL's own prefix must be valid even when replaced: a tool that vets a deployment
            # (check, bench) refuses what the deployment itself would refuse.
            _close(opener(parts, dict(options)))
            options["prefix"] = prefix
        elif prefix is not None:
            options["prefix"] = prefix
        return opener(parts, options)
    except ValueError as error:
        raise ValueError(f"{shown}: {error}") from None


_EXAMPLES = ("memory://", "memcache://host[:port]", "redis://host[:port]", "sqlite:///path")

_SHOWN_OPTIONS = frozenset({"prefix", "client", "timeout", "verify_grants", "ca_file", "reissue_key_file"})


def redact_url(url: str) -> str:
    """``url`` as it may be shown in messages and logs: credentials (anything before an ``@``,
    whatever characters the password holds) become ``***``, and so do the values of options other
    than ``prefix``, ``client``, ``timeout``, ``verify_grants``, ``ca_file`` and ``reissue_key_file``,
    and any fragment."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    if "@" in rest:  # no store URL has an @ elsewhere: everything before the last one is credentials
        rest = "***@" + rest.rpartition("@")[2]
    rest = rest.split("#", 1)[0] + ("#***" if "#" in rest else "")
    base, question, query = rest.partition("?")
    if question:
        shown = []
        for option in query.split("&"):
            name, equals, value = option.partition("=")
            shown.append(f"{name}{equals}{value if name in _SHOWN_OPTIONS else '***' if equals else ''}")
        base += "?" + "&".join(shown)
    return f"{scheme}{separator}{base}"


def _open_memory(parts: SplitResult, options: dict[str, str]) -> LifecycleTokenStoreProtocol:
    if parts.netloc or parts.path not in ("", "/"):
        raise ValueError("memory:// takes no host or path")
    options.pop("prefix", None)  # one process's memory: nothing to keep apart
    _refuse_unknown(options)
    return LocalTokenStore()


def _open_memcache(parts: SplitResult, options: dict[str, str]) -> LifecycleTokenStoreProtocol:
    if "@" in parts.netloc:
        raise ValueError("credentials are not supported in memcache URLs")
    if parts.path not in ("", "/"):
        raise ValueError("a memcache URL has no path")
    if not parts.netloc:
        raise ValueError("name at least one server: memcache://host[:port][,host[:port]...]")
    servers = parts.netloc.split(",")
    for index, server in enumerate(servers):
        if not server:
            raise ValueError(f"server {index + 1} of {len(servers)} is empty: separate servers with single commas, none at the end")
        if server.endswith(":"):
            raise ValueError(f"server {server!r} has an empty port: write {server}11211, or leave out the colon")
    prefix = options.pop("prefix", "oauth2")
    client = options.pop("client", "pymemcache")
    if client not in MEMCACHE_CLIENTS:
        raise ValueError(f"option client={client!r} is not one of {', '.join(MEMCACHE_CLIENTS)}")
    timeout = _positive_seconds(options.pop("timeout", "1"))
    verify_grants = _boolean("verify_grants", options.pop("verify_grants", "false"))
    reissue_key = _reissue_key(options.pop("reissue_key_file", None))
    _refuse_unknown(options)
    library_options: dict[str, Any]
    if client == "pylibmc":
        milliseconds = max(1, int(timeout * 1000))
        library_options = {"binary": True, "behaviors": {"connect_timeout": milliseconds, "_poll_timeout": milliseconds, "retry_timeout": 1}}
    elif client == "python-memcached":
        library_options = {"socket_timeout": timeout, "debug": 0}
    else:
        library_options = {"connect_timeout": timeout, "timeout": timeout}
    return MemcacheTokenStore(None, prefix, servers, verify_grants=verify_grants, reissue_key=reissue_key, **library_options)


def _open_redis(parts: SplitResult, options: dict[str, str], *, tls: bool, cluster: bool) -> LifecycleTokenStoreProtocol:
    try:
        from oauth2_store.store.redis import RedisTokenStore, redis_client, redis_cluster_client
    except ImportError:
        raise ImportError("the redis client library is not installed: pip install 'oauth2-store[redis]'") from None
    credentials, at, hosts = parts.netloc.rpartition("@")
    username: str | None = None
    password: str | None = None
    if at:
        user, colon, secret = credentials.partition(":")
        username, password = unquote(user) or None, unquote(secret) if colon else None
    if not hosts:
        raise ValueError("name a server: redis://host[:port]")
    nodes = [_redis_node(node) for node in hosts.split(",")]
    prefix = options.pop("prefix", "oauth2")
    timeout = _positive_seconds(options.pop("timeout", "1"))
    verify_grants = _boolean("verify_grants", options.pop("verify_grants", "false"))
    ca_file = options.pop("ca_file", None)
    reissue_key = _reissue_key(options.pop("reissue_key_file", None))
    if ca_file is not None and not tls:
        raise ValueError("option ca_file is for TLS: use rediss://")
    _refuse_unknown(options)
    if cluster:
        if parts.path not in ("", "/"):
            raise ValueError("a Redis Cluster has no databases: leave out the path")
        client = redis_cluster_client(nodes, username=username, password=password, tls=tls, ca_file=ca_file, timeout=timeout)
    else:
        if len(nodes) != 1:
            raise ValueError("redis:// names one server: use redis+cluster://host:port,host:port for a cluster")
        database = parts.path.strip("/") or "0"
        if not (database.isascii() and database.isdigit()):
            raise ValueError(f"database {database!r} is not a number")
        host, port = nodes[0]
        client = redis_client(host, port, db=int(database), username=username, password=password, tls=tls, ca_file=ca_file, timeout=timeout)
    return RedisTokenStore(client, prefix, verify_grants=verify_grants, reissue_key=reissue_key)


def _open_sql(parts: SplitResult, options: dict[str, str]) -> LifecycleTokenStoreProtocol:
    try:
        from oauth2_store.store.sql import SqlTokenStore, sql_engine
    except ImportError:
        raise ImportError("SQLAlchemy is not installed: pip install 'oauth2-store[sql]'") from None
    prefix = options.pop("prefix", "oauth2")
    timeout = _positive_seconds(options.pop("timeout", "5"))
    reissue_key = _reissue_key(options.pop("reissue_key_file", None))
    _refuse_unknown(options)
    # Rebuilt by hand: urlunsplit drops the "//" of a URL without a host (sqlite:///path).
    return SqlTokenStore(sql_engine(f"{parts.scheme}://{parts.netloc}{parts.path}", timeout=timeout), prefix, reissue_key=reissue_key)


def _redis_node(node: str) -> tuple[str, int]:
    if not node:
        raise ValueError("a server is empty: separate servers with single commas, none at the end")
    if node.startswith("["):
        host, _, port = node[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = node.partition(":")
    if not host:
        raise ValueError(f"server {node!r} has no host")
    if not port:
        return host, 6379
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"server {node!r} has an invalid port")
    return host, int(port)


def _close(store: TokenStoreProtocol) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        close()


def discard_store(store: TokenStoreProtocol) -> None:
    """Close a store opened under a throwaway prefix (as ``check`` and ``bench`` do), first
    dropping the tables of that prefix where the store has its own (a SQL store's); records in a
    key-value store expire by themselves.

    Raises:
        StoreUnavailableError: the backend failed.
    """
    drop_tables = getattr(store, "drop_tables", None)
    try:
        if callable(drop_tables):
            drop_tables()
    finally:
        _close(store)


def _reissue_key(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            key = file.read(4096)
    except OSError as error:
        raise ValueError(f"option reissue_key_file={path!r} cannot be read ({error.strerror})") from None
    if len(key) < 32:
        raise ValueError(f"option reissue_key_file={path!r} holds fewer than 32 bytes: write 32 random bytes to it")
    return key


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"option timeout={value!r} is not a number of seconds") from None
    if not 0 < seconds < 3600:
        raise ValueError(f"option timeout={value!r} must be more than 0 and less than 3600 seconds")
    return seconds


def _boolean(name: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise ValueError(f"option {name}={value!r} is not true or false")
    return value == "true"


def _refuse_unknown(options: Mapping[str, str]) -> None:
    if options:
        raise ValueError(f"unknown option {sorted(options)[0]!r}")


STORE_SCHEMES: Mapping[str, StoreOpener] = {
    "memory": _open_memory,
    "memcache": _open_memcache,
    "redis": functools.partial(_open_redis, tls=False, cluster=False),
    "rediss": functools.partial(_open_redis, tls=True, cluster=False),
    "redis+cluster": functools.partial(_open_redis, tls=False, cluster=True),
    "rediss+cluster": functools.partial(_open_redis, tls=True, cluster=True),
    "sqlite": _open_sql,
    "postgresql": _open_sql,
    "postgresql+psycopg": _open_sql,
}
"""Scheme to opener: the whole registry of store URLs."""
