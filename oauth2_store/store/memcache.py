"""The memcached token store: tokens and codes shared by every process and host of a provider.

Key layout: ``<prefix>:<kind>:<digest>``, where kind is ``t`` (access token), ``r`` (refresh
token), ``c`` (authorization code) or ``u`` (a user's latest token) and digest is the hex SHA-256
of the secret's UTF-8 (for ``u``, of ``<len>:<client_id><len>:<grant_type><len>:<user_id>``, with
``-`` for a user id of None). No
token, refresh token or code ever appears in a key, every key is valid for memcached whatever the
token holds, and kinds and prefixes never collide. Values are the versioned codec's bytes.

Each key's memcached expiration follows its record (access token and user keys at
``expires_at``, refresh key at ``refresh_expires_at``); reads check expiry too, against the
store's clock, so clock skew and memcached's one-second granularity never hand out an expired
record.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, overload

from pymemcache.client.base import PooledClient
from pymemcache.client.hash import HashClient
from pymemcache.client.rendezvous import RendezvousHash

from oauth2_store.clock import Clock, system_clock
from oauth2_store.codec import ACCESS_TOKEN_CODEC, AUTH_CODE_CODEC
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, CodecError, RecordTooLargeError
from oauth2_store.models import AccessToken, AuthorizationCode, require_record
from oauth2_store.protocols import TokenTypeHint
from oauth2_store.store.base import AccessTokenStore, AuthCodeStore, check_token_type_hint
from oauth2_store.store.memcache_clients import MemcacheConnection, connect, safe_pylibmc_client_class

__all__ = ["DEFAULT_PORT", "MemcacheTokenStore", "pymemcache_client"]

DEFAULT_PORT = 11211

THIRTY_DAYS = 30 * 24 * 3600
"""memcached reads an expiration above this as an absolute unix time, not a number of seconds."""

MEMCACHED_MAX_TIME = 2**31 - 1
"""The latest absolute expiration memcached keeps (January 2038)."""

MAX_VALUE_SIZE = 1024 * 1024 - 1024
"""Default largest value written: memcached's default item size (1 MiB) less room for the key
and item header. Larger records are refused before anything is written."""

_PREFIX = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")

_Kind = Literal["t", "r", "c", "u"]

# Keyword arguments that only one client library takes: passing one selects that library.
_PYLIBMC_KWARGS = frozenset({"binary", "behaviors", "username", "password"})
_PYTHON_MEMCACHED_KWARGS = frozenset(
    {"debug", "socket_timeout", "dead_retry", "server_max_key_length", "server_max_value_length", "flush_on_reconnect"}
)
_PYMEMCACHE_KWARGS = frozenset({"connect_timeout", "timeout"})


class MemcacheTokenStore(AccessTokenStore, AuthCodeStore):
    """Stores access tokens, refresh tokens and authorization codes in memcached.

    Implements every operation of :class:`~oauth2_store.protocols.TokenStoreProtocol`.

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
        **kwargs: ``servers`` and the client library's keyword arguments (see above).

    Raises:
        ValueError: an invalid prefix, no servers, a server with a bad port, or keyword arguments
            of two libraries; a client configured to hide failures or to unpickle values.
        TypeError: a prefix that is not a str, unknown keyword arguments, or an unsupported
            client object.
        ImportError: the selected library is not installed; the message names the extra to install.
    """

    # The documented set-ups, one overload each, so that mypy refuses a typo or a wrong type.
    @overload
    def __init__(self, mc: object, prefix: str = ..., *, clock: Clock = ..., max_value_size: int = ...) -> None: ...
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
    ) -> None: ...
    def __init__(
        self,
        mc: object = None,
        prefix: str = "oauth2",
        *args: Any,
        clock: Clock = system_clock,
        max_value_size: int = MAX_VALUE_SIZE,
        **kwargs: Any,
    ) -> None:
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
        if _PREFIX.fullmatch(prefix) is None:
            raise ValueError("prefix must be 1 to 100 characters of A-Z a-z 0-9 _ . : -")
        if mc is None:
            mc = _build_client(args, kwargs)
        elif args or kwargs:
            raise TypeError("pass either mc= or the arguments to build a client, not both")
        self._connection: MemcacheConnection = connect(mc)
        self._prefix = str.__str__(prefix)  # what was checked: a str subclass could format as anything
        self._clock = clock
        self._max_value_size = min(max_value_size, self._connection.max_value_size or max_value_size)

    @property
    def servers(self) -> str:
        """The memcached servers the store talks to, as ``host:port`` joined by commas."""
        return self._connection.servers

    @property
    def library(self) -> str:
        """The client library in use: ``pymemcache``, ``pylibmc`` or ``python-memcached``."""
        return self._connection.library

    def close(self) -> None:
        """Close the client's connections; the store reconnects on its next call."""
        self._connection.close()

    def _key(self, kind: _Kind, secret: str) -> str:
        # surrogatepass: a lookup string no record can hold (a lone surrogate) is a miss, not a
        # UnicodeEncodeError; its bytes are not UTF-8, so they never match a stored record's.
        return f"{self._prefix}:{kind}:{hashlib.sha256(secret.encode('utf-8', 'surrogatepass')).hexdigest()}"

    def _user_key(self, client_id: str, grant_type: str, user_id: str | None) -> str:
        # Length-prefixed, so no two (client, grant, user) triples give the same string.
        user = "-" if user_id is None else f"{len(user_id)}:{user_id}"
        return self._key("u", f"{len(client_id)}:{client_id}{len(grant_type)}:{grant_type}{user}")

    def save_token(self, access_token: AccessToken) -> None:
        """Store ``access_token`` under its token, its refresh token and its user, with each key's
        memcached expiration following its record. An expired part is not written, and deletes
        what was stored under its keys (so re-saving a token with an earlier expiry ends it early).
        At most two requests (a write per distinct expiration, or a write and a delete), each
        waiting for the server's reply: two round trips on one server; with several servers, one
        per server a request's keys hash to, made in turn.

        Raises:
            RecordTypeError: ``access_token`` is not an :class:`~oauth2_store.AccessToken`.
            RecordTooLargeError: the encoded token is larger than ``max_value_size`` or than the
                server accepts; nothing of it is stored.
            StoreUnavailableError: memcached failed; the call then deletes every key it named,
                where the servers let it (an earlier version of the same token goes too).
        """
        if type(access_token) is not AccessToken:
            require_record(access_token, AccessToken, "save_token")
        payload = self._payload(ACCESS_TOKEN_CODEC.encode(access_token))
        now = self._clock()
        writes: dict[int, dict[str, bytes]] = {}
        deletes: list[str] = []
        token_keys = [self._key("t", access_token.token), self._user_key(access_token.client_id, access_token.grant_type, access_token.user_id)]
        token_expire = _memcached_expiration(access_token.expires_at, now)
        if token_expire is None:
            deletes += token_keys
        else:
            writes[token_expire] = dict.fromkeys(token_keys, payload)
        if access_token.refresh_token is not None:
            refresh_key = self._key("r", access_token.refresh_token)
            refresh_expire = _memcached_expiration(access_token.refresh_expires_at, now)
            if refresh_expire is None:
                deletes.append(refresh_key)
            else:
                writes.setdefault(refresh_expire, {})[refresh_key] = payload
        self._write(writes, deletes)

    def _write(self, batches: Mapping[int, Mapping[str, bytes]], deletes: Sequence[str] = ()) -> None:
        """Write each batch, then delete ``deletes``; on failure, delete every key this call named.

        A batch that fails may be stored in part (on another server, or before the error), so its
        keys are deleted too: a failed save leaves none of the record, not an access key without
        its refresh key, nor a refresh key whose expired access key was not deleted.
        """
        touched: list[str] = []
        try:
            for expire, values in batches.items():
                touched.extend(values)
                self._connection.set_many(values, expire)
            if deletes:
                touched.extend(deletes)
                self._connection.delete_many(deletes)
        except BaseException:
            try:
                self._connection.delete_many(touched)
            except Exception:  # the original error is the one to report
                pass
            raise

    def _payload(self, payload: bytes) -> bytes:
        if len(payload) > self._max_value_size:
            raise RecordTooLargeError(f"the encoded record is {len(payload)} bytes, more than the {self._max_value_size} memcached takes")
        return payload

    def fetch_by_token(self, token: str) -> AccessToken:
        """Return the live access token ``token`` (one round trip).

        Raises:
            AccessTokenNotFound: no such token, it was revoked, or it expired.
            CodecError: the stored value is not a valid token record.
            StoreUnavailableError: memcached failed.
        """
        access_token = self._get_token(self._key("t", token))
        if access_token.token != token or access_token.is_expired(self._clock()):
            raise AccessTokenNotFound("no live access token matches")
        return access_token

    def fetch_by_refresh_token(self, refresh_token: str) -> AccessToken:
        """Return the access token issued with ``refresh_token``, even if the access token expired
        (one round trip).

        Raises:
            AccessTokenNotFound: no such refresh token, it was revoked, or it expired.
            CodecError: the stored value is not a valid token record.
            StoreUnavailableError: memcached failed.
        """
        access_token = self._get_token(self._key("r", refresh_token))
        if access_token.refresh_token != refresh_token or access_token.is_refresh_expired(self._clock()):
            raise AccessTokenNotFound("no live refresh token matches")
        return access_token

    def fetch_existing_token_of_user(self, client_id: str, grant_type: str, user_id: str | None) -> AccessToken:
        """Return the live access token most recently saved for this client, grant and user (two
        round trips: the user entry, then the token's own key).

        Only a token :meth:`fetch_by_token` returns too is handed out: the user entry and the
        token's key can be on different servers, and a restarted or full server loses its keys, so
        a user entry that outlived its token's key reads as a miss, never as a token nobody can use.

        Revoking a token with :meth:`delete_refresh_token` clears this entry even when a newer token
        of the same client, grant and user was saved since: this then raises AccessTokenNotFound
        until the next :meth:`save_token` for them (a new token is issued; none is wrongly reused).

        Raises:
            AccessTokenNotFound: none was saved, or the latest one was revoked or expired.
            CodecError: the stored value is not a valid token record.
            StoreUnavailableError: memcached failed.
        """
        access_token = self._get_token(self._user_key(client_id, grant_type, user_id))
        if (access_token.client_id, access_token.grant_type, access_token.user_id) != (client_id, grant_type, user_id) or access_token.is_expired(
            self._clock()
        ):
            raise AccessTokenNotFound("no live access token for this client, grant and user")
        if self._get_token(self._key("t", access_token.token)) != access_token:
            raise AccessTokenNotFound("no live access token for this client, grant and user")
        return access_token

    def delete_refresh_token(self, refresh_token: str) -> None:
        """Revoke ``refresh_token``, its access token and its user entry (three round trips).

        Exactly once across threads, processes and hosts, as :meth:`consume_code`: the refresh key
        is read, then deleted, and only the caller whose delete removed it goes on to delete the
        access token and user entry; every other caller gets AccessTokenNotFound. A refresh grant
        that revokes the old refresh token before issuing new tokens thus issues them once.

        Raises:
            AccessTokenNotFound: no such refresh token (already revoked, or expired), or another
                caller revoked it first.
            CodecError: the stored value is not a valid token record.
            StoreUnavailableError: memcached failed; the tokens may still be live.
        """
        access_token = self.fetch_by_refresh_token(refresh_token)
        if not self._connection.delete(self._key("r", refresh_token)):
            raise AccessTokenNotFound("no live refresh token matches")
        self._connection.delete_many(
            [self._key("t", access_token.token), self._user_key(access_token.client_id, access_token.grant_type, access_token.user_id)]
        )

    def revoke_token(self, token: str, token_type_hint: TokenTypeHint | None = None) -> None:
        """Revoke ``token``: an access token alone, or a refresh token with its access token
        (RFC 7009). Unknown tokens are not an error; both kinds are searched whatever the hint.

        Two round trips: a read of the refresh key (to learn its access token), then one delete
        request naming every key, so a reader sees the access token and its refresh token go
        together. User entries are left to fail :meth:`fetch_existing_token_of_user`'s check of
        the token's own key, so a newer token of the same user keeps its entry.

        Raises:
            ValueError: ``token_type_hint`` is not ``"access_token"``, ``"refresh_token"`` or None.
            CodecError: the refresh key held a corrupt record; the token's own keys are deleted
                anyway, but an access token issued with it may still be live.
            StoreUnavailableError: memcached failed; the token may still be live.
        """
        check_token_type_hint(token_type_hint)
        refresh_key = self._key("r", token)
        keys = [self._key("t", token), refresh_key]
        payload = self._connection.get(refresh_key)
        if payload is not None:
            try:
                refreshed = ACCESS_TOKEN_CODEC.decode(payload)
            except CodecError:  # a corrupt record must not keep the token's own keys alive
                self._connection.delete_many(keys)
                raise
            if refreshed.refresh_token == token:
                keys.append(self._key("t", refreshed.token))
        self._connection.delete_many(keys)

    def _get_token(self, key: str) -> AccessToken:
        payload = self._connection.get(key)
        if payload is None:
            raise AccessTokenNotFound("no live access token matches")
        return ACCESS_TOKEN_CODEC.decode(payload)

    def save_code(self, authorization_code: AuthorizationCode) -> None:
        """Store ``authorization_code`` until its ``expires_at`` (one round trip). An expired code
        is not written, and deletes what was stored under the same code.

        Raises:
            RecordTypeError: ``authorization_code`` is not an :class:`~oauth2_store.AuthorizationCode`.
            RecordTooLargeError: the encoded code is larger than memcached takes; nothing is stored.
            StoreUnavailableError: memcached failed.
        """
        if type(authorization_code) is not AuthorizationCode:
            require_record(authorization_code, AuthorizationCode, "save_code")
        payload = self._payload(AUTH_CODE_CODEC.encode(authorization_code))
        key = self._key("c", authorization_code.code)
        expire = _memcached_expiration(authorization_code.expires_at, self._clock())
        if expire is None:
            self._connection.delete(key)
        else:
            self._write({expire: {key: payload}})

    def fetch_by_code(self, code: str) -> AuthorizationCode:
        """Return the live authorization code ``code`` without using it up (one round trip).

        Raises:
            AuthCodeNotFound: no such code, it was used or deleted, or it expired.
            CodecError: the stored value is not a valid code record.
            StoreUnavailableError: memcached failed.
        """
        return self._live_code(code, self._key("c", code))

    def _live_code(self, code: str, key: str) -> AuthorizationCode:
        payload = self._connection.get(key)
        if payload is None:
            raise AuthCodeNotFound("no live authorization code matches")
        authorization_code = AUTH_CODE_CODEC.decode(payload)
        if authorization_code.code != code or authorization_code.is_expired(self._clock()):
            raise AuthCodeNotFound("no live authorization code matches")
        return authorization_code

    def delete_code(self, code: str) -> None:
        """Delete ``code``; deleting a code that is not there is not an error (one round trip).

        Raises:
            StoreUnavailableError: memcached failed; the code may still be there.
        """
        self._connection.delete(self._key("c", code))

    def consume_code(self, code: str) -> AuthorizationCode:
        """Fetch then delete ``code``; only the caller whose delete removed the key gets it.

        Exactly once across threads, processes and hosts: memcached deletes a key once, and every
        other delete of it answers NOT_FOUND. Two round trips.

        Raises:
            AuthCodeNotFound: no such code, another caller consumed it, or it expired.
            CodecError: the stored value is not a valid code record.
            StoreUnavailableError: memcached failed; whether the code was used is unknown, and it
                was not returned to this caller.
        """
        key = self._key("c", code)
        authorization_code = self._live_code(code, key)
        if not self._connection.delete(key):
            raise AuthCodeNotFound("no live authorization code matches")
        return authorization_code


def _memcached_expiration(expires_at: int | None, now: float) -> int | None:
    """The memcached expiration for a record expiring at ``expires_at``: seconds (rounded up)
    within 30 days, the absolute unix time beyond; 0 (never) for no expiry or a time memcached
    cannot hold (2**31 and later: it answers STORED and drops the item); None if already expired.
    Reads check expiry themselves, so a key that outlives its record is never returned."""
    if expires_at is None:
        return 0
    remaining = expires_at - now
    if remaining <= 0:
        return None
    if remaining <= THIRTY_DAYS:
        return math.ceil(remaining)
    return expires_at if expires_at <= MEMCACHED_MAX_TIME else 0


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
