"""The token store on a shared key-value backend (memcached, Redis): its key layout, its records,
and the token lifecycle, written once for every backend.

A backend is reached through a :class:`KeyValueConnection` (memcached's adapters are in
:mod:`oauth2_store.store.memcache_clients`, Redis's in :mod:`oauth2_store.store.redis_clients`);
:class:`~oauth2_store.store.memcache.MemcacheTokenStore` and
:class:`~oauth2_store.store.redis.RedisTokenStore` add their set-up.

Key layout: ``<prefix>:<kind>:<digest>`` (on Redis ``<prefix>:{<digest>}:<kind>``: a hash tag,
so that a code and its consumed marker, or a refresh token and its retired marker, share a Redis
Cluster slot), where kind is ``t`` (access token), ``r`` (refresh token), ``c`` (authorization
code) or ``u`` (a user's latest token) and digest is the hex SHA-256 of the secret's UTF-8 (for
``u``, of ``<len>:<client_id><len>:<grant_type><len>:<user_id>``, with ``-`` for a user id of
None). No token, refresh token or code ever appears in a key, every key is valid for memcached
whatever the token holds, and kinds and prefixes never collide.

Values are the versioned codec's bytes, sealed (AES-256-GCM, :mod:`oauth2_store.sealing`) under
the secret the key was derived from: ``t`` under the access token, ``r`` under the refresh token,
``c`` under the code, so what the backend holds yields no secret that works. ``u`` is sealed under
the store's ``reissue_key`` and written only when the store has one.

Each key's memcached expiration follows its record (access token and user keys at
``expires_at``, refresh key at ``refresh_expires_at``); reads check expiry too, against the
store's clock, so clock skew and memcached's one-second granularity never hand out an expired
record.

The token lifecycle (:class:`~oauth2_store.protocols.LifecycleTokenStoreProtocol`) adds:

- ``g`` (digest of the grant id): the grant's entry, ``L``, the client's digest, the owner epochs
  it was created under, then one fixed-size member per access token saved into it (the token's
  digest and expiry), appended atomically. Revoking prepends ``R``: an append after that lands
  behind it, so no member is ever missed. It lives as long as its longest-lived member.
- ``k`` / ``x`` (digest of the code / refresh token): a consumed code's and a retired refresh
  token's marker, ``n<nonce> <expiry> <grant id>``, written with ``add`` (exactly one writer succeeds) and
  kept until the code or refresh token would have expired.
- ``e`` (digest of the client, user, or user and client): an epoch, 16 random bytes. Revoking a
  user or client replaces it; a grant created under another epoch is dead.
- ``i`` (digest of the client or user): the grants created for it, appended, so that revoking
  them can delete their access tokens at once.
"""

from __future__ import annotations

import contextlib
import math
import re
import secrets
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, Protocol

import attrs

from oauth2_store._digest import owner_digest, secret_digest
from oauth2_store.clock import Clock
from oauth2_store.codec import ACCESS_TOKEN_CODEC, AUTH_CODE_CODEC
from oauth2_store.error import (
    AccessTokenNotFound,
    AuthCodeNotFound,
    CodecError,
    CodeReplayError,
    GrantRevokedError,
    RecordTooLargeError,
    RecordValueError,
    RefreshTokenReuseError,
    StoreUnavailableError,
)
from oauth2_store.models import AccessToken, AuthorizationCode, require_record
from oauth2_store.protocols import TokenTypeHint
from oauth2_store.sealing import SEALED_OVERHEAD, seal, secret_key, server_key, unseal
from oauth2_store.store.base import AccessTokenStore, AuthCodeStore, check_token_type_hint

__all__ = ["THIRTY_DAYS", "KeyValueConnection", "KeyValueTokenStore", "checked_prefix"]

THIRTY_DAYS = 30 * 24 * 3600
"""memcached reads an expiration above this as an absolute unix time, not a number of seconds."""

MEMCACHED_MAX_TIME = 2**31 - 1
"""The latest absolute expiration memcached keeps (January 2038)."""

_PREFIX = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")

_Kind = Literal["t", "r", "c", "u", "g", "k", "x", "e", "i"]

_EPOCH_SIZE = 16
_NO_EPOCH = bytes(_EPOCH_SIZE)  # in the header of a grant without a user
_GRANT_HEADER = struct.Struct(f">c32s{_EPOCH_SIZE}s{_EPOCH_SIZE}s{_EPOCH_SIZE}s")  # L, client, epochs
_MEMBER = struct.Struct(">32sQ")  # an access token's digest, its expiry (0: never)
_TOMBSTONE_SECONDS = 3600
"""How long the revocation of a grant whose entry was already gone is remembered: long enough for
a save racing with it to see it (a grant without an entry is refused anyway)."""

class KeyValueConnection(Protocol):
    """What the store needs from a backend client: str keys, bytes values, replies awaited.

    Expirations are memcached's: 0 never expires, up to :data:`THIRTY_DAYS` is a number of
    seconds from now, anything larger an absolute unix time.
    """

    servers: str
    """The servers, as ``host:port`` joined by commas, for messages."""

    library: str
    """The client library: ``pymemcache``, ``pylibmc``, ``python-memcached`` or ``redis-py``."""

    max_value_size: int | None
    """The largest value the client library itself accepts, if it has its own limit."""

    def get(self, key: str) -> bytes | None:
        """Return the value of ``key``, or None if it does not exist.

        Raises:
            StoreUnavailableError: the server failed.
            CodecError: the value is not bytes.
        """
        ...

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Return the values of those of ``keys`` that exist (one request per server).

        Raises:
            StoreUnavailableError: a server failed.
            CodecError: a value is not bytes.
        """
        ...

    def set_many(self, values: Mapping[str, bytes], expire: int) -> None:
        """Store every value with the expiration ``expire``.

        Raises:
            StoreUnavailableError: a server failed or did not store every value.
            RecordTooLargeError: the server refused a value as too large.
        """
        ...

    def add(self, key: str, value: bytes, expire: int) -> bool:
        """Store ``value`` only if ``key`` does not exist; True if this call stored it.

        Raises:
            StoreUnavailableError: the server failed.
            RecordTooLargeError: the server refused the value as too large.
        """
        ...

    def append(self, key: str, value: bytes) -> bool:
        """Append ``value`` to the existing value of ``key`` (its expiration unchanged); False if
        ``key`` does not exist.

        Raises:
            StoreUnavailableError: the server failed.
            RecordTooLargeError: the value would grow too large for the server.
        """
        ...

    def prepend(self, key: str, value: bytes) -> bool:
        """Put ``value`` before the existing value of ``key``; False if ``key`` does not exist.

        Raises:
            StoreUnavailableError: the server failed.
            RecordTooLargeError: the value would grow too large for the server.
        """
        ...

    def touch(self, key: str, expire: int) -> bool:
        """Set the expiration of ``key`` to ``expire``; False if it does not exist.

        Raises:
            StoreUnavailableError: the server failed.
        """
        ...

    def delete(self, key: str) -> bool:
        """Delete ``key``; True if this call removed it, False if it was not there.

        Raises:
            StoreUnavailableError: a server failed.
        """
        ...

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete every key that exists.

        Raises:
            StoreUnavailableError: a server failed.
        """
        ...

    def close(self) -> None:
        """Close the client's connections (the libraries reconnect on the next call)."""
        ...


def checked_prefix(prefix: object) -> str:
    """``prefix`` as a store puts it before its keys: exactly the checked text, even from a str
    subclass (which could format as anything).

    Raises:
        TypeError: ``prefix`` is not a str.
        ValueError: it is not 1 to 100 characters of ``A-Z a-z 0-9 _ . : -``.
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
    if _PREFIX.fullmatch(prefix) is None:
        raise ValueError("prefix must be 1 to 100 characters of A-Z a-z 0-9 _ . : -")
    return str.__str__(prefix)


class KeyValueTokenStore(AccessTokenStore, AuthCodeStore):
    """The token store's logic on any :class:`KeyValueConnection`; use a backend's subclass
    (their documentation says what the stores guarantee).

    Args:
        connection: The backend.
        prefix: Put before every key, so stores with different prefixes on one server never see
            each other's records: 1 to 100 characters of ``A-Z a-z 0-9 _ . : -``.
        clock: Where the store reads the time to decide expiry.
        max_value_size: Largest encoded record written, in bytes.
        verify_grants: Make :meth:`fetch_by_token` confirm that the token's grant is live (a second
            round trip).
        backend: The backend's name, for messages (``"memcached"``, ``"Redis"``).
        hash_tags: Write keys as ``<prefix>:{<digest>}:<kind>`` (Redis Cluster hash tags).
        reissue_key: At least 32 random bytes the servers hold (never the backend), which seal the
            user entries :meth:`fetch_existing_token_of_user` reads: they hold a token to be handed
            out again, which no secret of the caller's could unseal. Without it, no user entry is
            written and :meth:`fetch_existing_token_of_user` raises AccessTokenNotFound.

    Raises:
        ValueError: an invalid prefix, or a reissue key shorter than 32 bytes.
        TypeError: a prefix that is not a str, or a reissue key that is not bytes.
    """

    def __init__(
        self,
        connection: KeyValueConnection,
        prefix: str,
        *,
        clock: Clock,
        max_value_size: int,
        verify_grants: bool,
        backend: str,
        hash_tags: bool = False,
        reissue_key: bytes | None = None,
    ) -> None:
        self._prefix = checked_prefix(prefix)
        self._connection = connection
        self._clock = clock
        self._max_value_size = min(max_value_size, connection.max_value_size or max_value_size)
        self._verify_grants = verify_grants
        self._where = f"{backend} at {connection.servers}"
        self._hash_tags = hash_tags
        self._reissue_key = None if reissue_key is None else server_key(reissue_key)

    @property
    def servers(self) -> str:
        """The servers the store talks to, as ``host:port`` joined by commas."""
        return self._connection.servers

    @property
    def library(self) -> str:
        """The client library in use (``pymemcache``, ``pylibmc``, ``python-memcached``, ``redis-py``)."""
        return self._connection.library

    @property
    def reissues_tokens(self) -> bool:
        """Whether the store has a ``reissue_key``, so that :meth:`fetch_existing_token_of_user`
        can hand a saved token out again."""
        return self._reissue_key is not None

    def close(self) -> None:
        """Close the client's connections; the store reconnects on its next call."""
        self._connection.close()

    def _key(self, kind: _Kind, secret: str) -> str:
        return self._digest_key(kind, secret_digest(secret))

    def _user_key(self, client_id: str, grant_type: str, user_id: str | None) -> str:
        return self._digest_key("u", owner_digest(client_id, grant_type, user_id))

    def _digest_key(self, kind: _Kind, digest: bytes) -> str:
        if self._hash_tags:  # Redis Cluster: the keys of one secret (a code and its marker) share a slot
            return f"{self._prefix}:{{{digest.hex()}}}:{kind}"
        return f"{self._prefix}:{kind}:{digest.hex()}"

    def save_token(self, access_token: AccessToken) -> None:
        """Store ``access_token`` under its token, its refresh token and its user, with each key's
        memcached expiration following its record, as a member of its grant (which it starts if
        the grant is new). An expired part is not written, and deletes what was stored under its
        keys (so re-saving a token with an earlier expiry ends it early).

        Round trips on one server: an append to the grant entry, one write per distinct
        expiration (or a write and a delete), a read of the grant entry and its owners' epochs to
        confirm the grant is live after the write, and a touch extending the grant entry: four or
        five. A new grant costs three more (the epochs read, the entry's add and two index appends
        instead of the touch), and more for a client or user never seen before. With several servers,
        one per server a request's keys hash to.

        Raises:
            RecordTypeError: ``access_token`` is not an :class:`~oauth2_store.AccessToken`.
            RecordTooLargeError: the encoded token is larger than ``max_value_size`` or than the
                server accepts; nothing of it is stored.
            GrantRevokedError: the token's grant is revoked, or its entry was lost; what this call
                wrote is deleted again.
            RecordValueError: its ``grant_id`` names a grant of another client; what this call
                wrote is deleted again.
            StoreUnavailableError: the backend failed; the call then deletes every key it named,
                where the servers let it (an earlier version of the same token goes too).
        """
        if type(access_token) is not AccessToken:
            require_record(access_token, AccessToken, "save_token")
        payload = ACCESS_TOKEN_CODEC.encode(access_token)
        now = self._clock()
        writes: dict[int, dict[str, bytes]] = {}
        deletes: list[str] = []
        token_key = self._key("t", access_token.token)
        token_values = {token_key: self._sealed(secret_key(access_token.token), b"t", payload)}
        user_key = self._user_key(access_token.client_id, access_token.grant_type, access_token.user_id)
        if self._reissue_key is not None:
            token_values[user_key] = self._sealed(self._reissue_key, b"u", payload)
        token_expire = _memcached_expiration(access_token.expires_at, now)
        if token_expire is None:
            deletes += [token_key, user_key]
        else:
            writes[token_expire] = token_values
        life: int | None = access_token.expires_at if token_expire is not None else -1
        if access_token.refresh_token is not None:
            refresh_key = self._key("r", access_token.refresh_token)
            refresh_expire = _memcached_expiration(access_token.refresh_expires_at, now)
            if refresh_expire is None:
                deletes.append(refresh_key)
            else:
                writes.setdefault(refresh_expire, {})[refresh_key] = self._sealed(secret_key(access_token.refresh_token), b"r", payload)
                life = _later(life, access_token.refresh_expires_at)
        if not writes:  # nothing live: nothing joins the grant
            self._write(writes, deletes)
            return
        member = _MEMBER.pack(secret_digest(access_token.token), 0 if life is None else max(life, 0))
        grant_key = self._grant_key(access_token.grant_id)
        started = self._join_grant(access_token.grant_id, access_token.client_id, access_token.user_id, member, _expiration_or_never(life, now))
        self._write(writes, deletes)
        written = [key for batch in writes.values() for key in batch]
        try:
            entry = self._live_grant(grant_key, access_token.client_id, access_token.user_id, saving=True)
        except BaseException:  # another client's grant, a corrupt entry, a failed read
            with contextlib.suppress(Exception):  # the original error is the one to report
                self._connection.delete_many(written)
            raise
        if entry is None:
            # Revoked meanwhile, or before: what this call wrote must not outlive the check.
            self._connection.delete_many(written)
            raise GrantRevokedError("the token's grant is revoked, or its entry was lost")
        if not started:
            self._connection.touch(grant_key, _expiration_or_never(entry.latest_expiry(), now))

    def _write(self, batches: Mapping[int, Mapping[str, bytes]], deletes: Sequence[str] = ()) -> None:
        """Write each batch, then delete ``deletes``; on failure, delete every key this call named.

        A request that fails may be stored in part (on another server, before the error, or with
        its reply lost), so every key is deleted: a failed save leaves none of the record, not an
        access key without its refresh key, nor a refresh key whose expired access key was not
        deleted.
        """
        try:
            self._send_writes(batches, deletes)
        except BaseException:
            with contextlib.suppress(Exception):  # the original error is the one to report
                self._connection.delete_many([key for values in batches.values() for key in values] + list(deletes))
            raise

    def _send_writes(self, batches: Mapping[int, Mapping[str, bytes]], deletes: Sequence[str]) -> None:
        """Send a record's writes: one ``set_many`` per expiration, then the deletes. A backend
        that can send them all in one request overrides this."""
        for expire, values in batches.items():
            self._connection.set_many(values, expire)
        if deletes:
            self._connection.delete_many(deletes)

    def _sealed(self, key: bytes, kind: bytes, payload: bytes) -> bytes:
        """``payload`` sealed for the backend (see :mod:`oauth2_store.sealing`), if it fits.

        Raises:
            RecordTooLargeError: the sealed value is larger than ``max_value_size``.
        """
        if len(payload) + SEALED_OVERHEAD > self._max_value_size:
            raise RecordTooLargeError(
                f"the encoded record is {len(payload) + SEALED_OVERHEAD} bytes sealed, more than the {self._max_value_size} the backend takes"
            )
        return seal(key, kind, payload)

    # Grants

    def _grant_key(self, grant_id: str) -> str:
        return self._key("g", grant_id)

    def _epoch_keys(self, client_id: str, user_id: str | None) -> list[str]:
        """The keys of the epochs a grant of this client and user lives under: client, then user
        and user-with-client when there is a user (length-prefixed, so no two pairs collide)."""
        keys = [self._key("e", f"c:{client_id}")]
        if user_id is not None:
            keys += [self._key("e", f"u:{user_id}"), self._key("e", f"uc:{len(user_id)}:{user_id}{client_id}")]
        return keys

    def _index_keys(self, client_id: str | None, user_id: str | None) -> list[str]:
        """The keys of the grant indexes of this client and of this user (each when not None)."""
        return ([] if client_id is None else [self._key("i", f"c:{client_id}")]) + ([] if user_id is None else [self._key("i", f"u:{user_id}")])

    def _current_epochs(self, keys: Sequence[str]) -> list[bytes]:
        """The current value of each epoch, creating those that do not exist (with ``add``, so
        concurrent creators agree)."""
        found = self._connection.get_many(keys)
        epochs = []
        for key in keys:
            epoch = found.get(key)
            if epoch is None:
                created = secrets.token_bytes(_EPOCH_SIZE)
                epoch = created if self._connection.add(key, created, 0) else self._connection.get(key)
                if epoch is None:
                    raise StoreUnavailableError(f"{self._where} lost an epoch as it was created", self._connection.servers)
            epochs.append(epoch)
        return epochs

    def _join_grant(self, grant_id: str, client_id: str, user_id: str | None, member: bytes, expire: int) -> bool:
        """Add ``member`` to the grant entry, creating the entry (and indexing the grant under its
        client and user) if there is none; True if this call created it.

        Raises:
            GrantRevokedError: the entry exists and is revoked (checked only for a code, which
                has no member: a member's save checks after writing).
        """
        grant_digest = secret_digest(grant_id)
        grant_key = self._digest_key("g", grant_digest)
        if member and self._connection.append(grant_key, member):
            return False  # save_token checks the entry (its client, its state) after writing
        epoch_keys = self._epoch_keys(client_id, user_id)
        epochs = self._current_epochs(epoch_keys)
        epochs += [_NO_EPOCH] * (3 - len(epochs))
        header = _GRANT_HEADER.pack(b"L", secret_digest(client_id), *epochs)
        if self._connection.add(grant_key, header + member, expire):
            for index_key in self._index_keys(client_id, user_id):
                self._index(index_key, grant_digest)
            return True
        if member:
            if not self._connection.append(grant_key, member):
                raise StoreUnavailableError(f"{self._where} lost a grant entry as it was written", self._connection.servers)
        elif self._live_grant(grant_key, client_id, user_id, saving=True) is None:
            raise GrantRevokedError("the code's grant is revoked")
        return False

    def _index(self, index_key: str, grant_digest: bytes) -> None:
        """Append a grant to an owner's index. An index that outgrew the backend's item size starts
        over (the grants it forgets still end by epoch; only their access tokens then wait for
        their own expiry)."""
        try:
            if self._connection.append(index_key, grant_digest) or self._connection.add(index_key, grant_digest, 0):
                return
            self._connection.append(index_key, grant_digest)
        except RecordTooLargeError:
            self._connection.set_many({index_key: grant_digest}, 0)

    def _live_grant(self, grant_key: str, client_id: str, user_id: str | None, *, saving: bool = False) -> _GrantEntry | None:
        """The grant entry if the grant is live: present, not revoked, created under its owners'
        current epochs (one round trip); None otherwise.

        Raises:
            CodecError: the entry is corrupt, or (reading a stored record: ``saving`` false) it
                belongs to another client than the record, which the store never writes.
            RecordValueError: ``saving``, and the grant belongs to another client: the record
                being saved names another client's grant.
        """
        epoch_keys = self._epoch_keys(client_id, user_id)
        found = self._connection.get_many([grant_key, *epoch_keys])
        value = found.get(grant_key)
        if value is None:
            return None
        entry = _GrantEntry.parse(value)
        if entry.revoked:
            return None
        if entry.client != secret_digest(client_id):
            if saving:
                raise RecordValueError("grant_id names a grant of another client")
            raise CodecError("a grant entry of another client than its record: the stored state is corrupt")
        if [found.get(key) for key in epoch_keys] != list(entry.epochs[: len(epoch_keys)]):
            return None
        return entry

    def revoke_grant(self, grant_id: str) -> None:
        """End grant ``grant_id``: its refresh tokens and codes are refused from now on, its access
        tokens are deleted. An unknown grant is not an error. Three round trips: the revoked mark,
        a read of the entry, one delete per 500 access tokens.

        Raises:
            CodecError: the grant entry is corrupt (it is marked revoked anyway).
            StoreUnavailableError: the backend failed; the grant may still be live.
        """
        self._revoke_grant_key(self._grant_key(grant_id))

    def _revoke_grant_key(self, grant_key: str) -> None:
        tombstone = _GRANT_HEADER.pack(b"L", bytes(32), _NO_EPOCH, _NO_EPOCH, _NO_EPOCH)
        if not self._connection.prepend(grant_key, b"R") and not self._connection.add(grant_key, b"R" + tombstone, _TOMBSTONE_SECONDS):
            if not self._connection.prepend(grant_key, b"R"):  # created between the two
                raise StoreUnavailableError(f"{self._where} lost a grant entry as it was revoked", self._connection.servers)
        value = self._connection.get(grant_key)
        if value is None:  # evicted already: its access tokens cannot be found (see the README)
            return
        self._delete_members([_GrantEntry.parse(value)])

    def _delete_members(self, entries: Iterable[_GrantEntry]) -> None:
        keys = [self._digest_key("t", digest) for entry in entries for digest, _ in entry.members]
        for start in range(0, len(keys), 500):
            self._connection.delete_many(keys[start : start + 500])

    def revoke_user(self, user_id: str, client_id: str | None = None) -> None:
        """End every grant of ``user_id`` (with ``client_id``: of that client only): a new epoch
        refuses their refresh tokens and codes at once, and the access tokens of the grants in
        the user's index are deleted. Grants authorized afterwards work. Round trips: a write,
        a read of the index, one read per 500 grants, one delete per 500 tokens.

        Raises:
            StoreUnavailableError: the backend failed; grants may still be live.
        """
        epoch = f"u:{user_id}" if client_id is None else f"uc:{len(user_id)}:{user_id}{client_id}"
        self._connection.set_many({self._key("e", epoch): secrets.token_bytes(_EPOCH_SIZE)}, 0)
        self._revoke_indexed(self._index_keys(None, user_id)[0], None if client_id is None else secret_digest(client_id))

    def revoke_client(self, client_id: str) -> None:
        """End every grant of ``client_id``: a new epoch refuses its refresh tokens and codes at
        once, and the access tokens of the grants in its index are deleted. Grants authorized
        afterwards work. Round trips as :meth:`revoke_user`.

        Raises:
            StoreUnavailableError: the backend failed; grants may still be live.
        """
        self._connection.set_many({self._key("e", f"c:{client_id}"): secrets.token_bytes(_EPOCH_SIZE)}, 0)
        self._revoke_indexed(self._index_keys(client_id, None)[0], None)

    def _revoke_indexed(self, index_key: str, client: bytes | None) -> None:
        index = self._connection.get(index_key) or b""
        grant_keys = [self._digest_key("g", index[start : start + 32]) for start in range(0, len(index) - len(index) % 32, 32)]
        for start in range(0, len(grant_keys), 500):
            found = self._connection.get_many(grant_keys[start : start + 500])
            entries = []
            for value in found.values():
                try:
                    entry = _GrantEntry.parse(value)
                except CodecError:  # one corrupt entry must not keep the others' tokens live
                    continue
                if client is None or entry.client == client:
                    entries.append(entry)
            self._delete_members(entries)

    # Access tokens

    def fetch_by_token(self, token: str) -> AccessToken:
        """Return the live access token ``token`` (one round trip; two with ``verify_grants``).

        Raises:
            AccessTokenNotFound: no such token, it was revoked, or it expired.
            CodecError: the stored value is not a valid token record.
            StoreUnavailableError: the backend failed.
        """
        access_token = self._get_token(self._key("t", token), secret_key(token), b"t")
        if access_token.token != token or access_token.is_expired(self._clock()):
            raise AccessTokenNotFound("no live access token matches")
        if self._verify_grants and self._live_grant(self._grant_key(access_token.grant_id), access_token.client_id, access_token.user_id) is None:
            raise AccessTokenNotFound("no live access token matches")
        return access_token

    def fetch_by_refresh_token(self, refresh_token: str) -> AccessToken:
        """Return the access token issued with ``refresh_token``, even if the access token expired
        (two round trips: the refresh key with its retired marker, then the grant).

        Raises:
            RefreshTokenReuseError: ``refresh_token`` was retired by :meth:`delete_refresh_token`;
                its grant is now revoked.
            AccessTokenNotFound: no such refresh token, it was revoked, or it expired; or its
                grant is revoked or its entry was lost.
            CodecError: the stored value is not a valid token record.
            StoreUnavailableError: the backend failed.
        """
        payload = self._unless_marked(self._key("r", refresh_token), self._key("x", refresh_token), RefreshTokenReuseError, "refresh token")
        if payload is None:
            raise AccessTokenNotFound("no live refresh token matches")
        access_token = ACCESS_TOKEN_CODEC.decode(unseal(secret_key(refresh_token), b"r", payload))
        if access_token.refresh_token != refresh_token or access_token.is_refresh_expired(self._clock()):
            raise AccessTokenNotFound("no live refresh token matches")
        if self._live_grant(self._grant_key(access_token.grant_id), access_token.client_id, access_token.user_id) is None:
            raise AccessTokenNotFound("no live refresh token matches")
        return access_token

    def _claim(self, marker_key: str, marker: bytes, expire: int) -> bool:
        """Write ``marker`` (a consumed code's, a retired refresh token's) unless one is there;
        True if this call's is the one stored. A lost reply to the ``add`` is settled by reading the
        marker back: each carries a random nonce, so this call's is told from a rival's, and the
        winner whose reply was lost is not turned into a replay.

        Raises:
            StoreUnavailableError: the backend failed and no marker is there (the code or refresh
                token is still usable), or the read back failed too (unknown).
        """
        try:
            return self._connection.add(marker_key, marker, expire)
        except StoreUnavailableError:
            stored = self._connection.get(marker_key)
            if stored is None:
                raise
            return stored == marker

    def _unless_marked(self, key: str, marker_key: str, replay: type[CodeReplayError | RefreshTokenReuseError], what: str) -> bytes | None:
        """The value under ``key``, read with its marker (of a consumed code or a retired refresh
        token) in one round trip; None when there is neither. A live marker without the value
        is a replay: the grant it names is revoked, and ``replay`` raised.

        Raises:
            CodeReplayError, RefreshTokenReuseError: ``replay``, when the marker is live.
            CodecError: the marker is corrupt.
        """
        found = self._connection.get_many([key, marker_key])
        payload = found.get(key)
        if payload is None:
            marker = found.get(marker_key)
            if marker is not None:
                expires_at, grant_id = _parse_marker(marker)
                if expires_at == 0 or self._clock() < expires_at:
                    self.revoke_grant(grant_id)
                    raise replay(f"the {what} was already used; its grant is revoked")
        return payload

    def fetch_existing_token_of_user(self, client_id: str, grant_type: str, user_id: str | None) -> AccessToken:
        """Return the live access token most recently saved for this client, grant and user (two
        round trips: the user entry, then the token's own key). Only a store with a
        ``reissue_key`` keeps user entries: they hold a token to hand out again, sealed under it.

        Only a token :meth:`fetch_by_token` returns too is handed out: the user entry and the
        token's key can be on different servers, and a restarted or full server loses its keys, so
        a user entry that outlived its token's key reads as a miss, never as a token nobody can use.

        Revoking a token with :meth:`delete_refresh_token` clears this entry even when a newer token
        of the same client, grant and user was saved since: this then raises AccessTokenNotFound
        until the next :meth:`save_token` for them (a new token is issued; none is wrongly reused).

        Raises:
            AccessTokenNotFound: none was saved, the latest one was revoked or expired, or the store
                has no ``reissue_key``.
            CodecError: the stored value is not a valid token record.
            StoreUnavailableError: the backend failed.
        """
        if self._reissue_key is None:
            raise AccessTokenNotFound("this store keeps no token to hand out again: give it a reissue_key")
        access_token = self._get_token(self._user_key(client_id, grant_type, user_id), self._reissue_key, b"u", sealed_only=True)
        if (access_token.client_id, access_token.grant_type, access_token.user_id) != (client_id, grant_type, user_id) or access_token.is_expired(
            self._clock()
        ):
            raise AccessTokenNotFound("no live access token for this client, grant and user")
        if self._get_token(self._key("t", access_token.token), secret_key(access_token.token), b"t") != access_token:
            raise AccessTokenNotFound("no live access token for this client, grant and user")
        return access_token

    def delete_refresh_token(self, refresh_token: str) -> None:
        """Retire ``refresh_token`` and revoke its access token and user entry (rotation), exactly
        once across threads, processes and hosts: the retired marker is written with ``add``,
        which one caller wins; every other caller, then or later, is reuse and revokes the grant.
        Four round trips.

        Raises:
            RefreshTokenReuseError: ``refresh_token`` was already retired (or another caller
                retired it first); its grant is now revoked.
            AccessTokenNotFound: no such refresh token (revoked, or expired), or its grant is not live.
            CodecError: the stored value is not a valid token record.
            StoreUnavailableError: the backend failed; the tokens may still be live.
        """
        access_token = self.fetch_by_refresh_token(refresh_token)
        expire = _memcached_expiration(access_token.refresh_expires_at, self._clock())
        marker = _marker(access_token.refresh_expires_at or 0, access_token.grant_id)
        if expire is None or not self._claim(self._key("x", refresh_token), marker, expire):
            if expire is None:
                raise AccessTokenNotFound("no live refresh token matches")
            self.revoke_grant(access_token.grant_id)
            raise RefreshTokenReuseError("the refresh token was already used; its grant is revoked")
        self._connection.delete_many(
            [
                self._key("r", refresh_token),
                self._key("t", access_token.token),
                self._user_key(access_token.client_id, access_token.grant_type, access_token.user_id),
            ]
        )

    def revoke_token(self, token: str, token_type_hint: TokenTypeHint | None = None) -> None:
        """Revoke ``token``: an access token alone, or a refresh token with its whole grant (RFC
        7009 §2.1). Unknown tokens are not an error; both kinds are searched whatever the hint.

        Two round trips for an access token: a read of the refresh key (to learn whether the
        token is one), then one delete request naming every key. A refresh token adds the grant's
        revocation (:meth:`revoke_grant`). User entries are left to fail
        :meth:`fetch_existing_token_of_user`'s check of the token's own key, so a newer token of
        the same user keeps its entry.

        Raises:
            ValueError: ``token_type_hint`` is not ``"access_token"``, ``"refresh_token"`` or None.
            CodecError: the refresh key held a corrupt record; the token's own keys are deleted
                anyway, but an access token issued with it may still be live.
            StoreUnavailableError: the backend failed; the token may still be live.
        """
        check_token_type_hint(token_type_hint)
        refresh_key = self._key("r", token)
        keys = [self._key("t", token), refresh_key]
        payload = self._connection.get(refresh_key)
        if payload is not None:
            try:
                refreshed = ACCESS_TOKEN_CODEC.decode(unseal(secret_key(token), b"r", payload))
            except CodecError:  # a corrupt record must not keep the token's own keys alive
                self._connection.delete_many(keys)
                raise
            if refreshed.refresh_token == token:
                keys.append(self._key("t", refreshed.token))
                self.revoke_grant(refreshed.grant_id)
        self._connection.delete_many(keys)

    # The access-token tier of a TieredTokenStore: the token's own key only, no grant bookkeeping.

    def cache_access_token(self, access_token: AccessToken) -> None:
        """Write ``access_token`` under its token only (no refresh token, user entry or grant
        entry), expiring with it; an expired one deletes the key. For a
        :class:`~oauth2_store.store.tiered.TieredTokenStore`, whose durable store keeps the rest.

        Raises:
            RecordTooLargeError: the encoded token is larger than the backend takes; nothing is written.
            StoreUnavailableError: the backend failed; the key is deleted where the servers let it.
        """
        key = self._key("t", access_token.token)
        expire = _memcached_expiration(access_token.expires_at, self._clock())
        if expire is None:
            self._write({}, [key])
        else:
            self._write({expire: {key: self._sealed(secret_key(access_token.token), b"t", ACCESS_TOKEN_CODEC.encode(access_token))}})

    def cached_access_token(self, token: str) -> AccessToken | None:
        """The live access token written by :meth:`cache_access_token` (or :meth:`save_token`)
        under ``token``, or None (one round trip).

        Raises:
            CodecError: the stored value is not a valid token record, or not this token's.
            StoreUnavailableError: the backend failed.
        """
        value = self._connection.get(self._key("t", token))
        if value is None:
            return None
        access_token = ACCESS_TOKEN_CODEC.decode(unseal(secret_key(token), b"t", value))
        if access_token.token != token:
            raise CodecError("the token record stored under that token names another token")
        return None if access_token.is_expired(self._clock()) else access_token

    def uncache_access_tokens(self, digests: Sequence[bytes]) -> None:
        """Delete the keys of the access tokens whose SHA-256 digests are ``digests``.

        Raises:
            StoreUnavailableError: the backend failed; some may still be there.
        """
        for start in range(0, len(digests), 500):
            self._connection.delete_many([self._digest_key("t", digest) for digest in digests[start : start + 500]])

    def _get_token(self, key: str, sealing_key: bytes, kind: bytes, *, sealed_only: bool = False) -> AccessToken:
        value = self._connection.get(key)
        if value is None:
            raise AccessTokenNotFound("no live access token matches")
        return ACCESS_TOKEN_CODEC.decode(unseal(sealing_key, kind, value, sealed_only=sealed_only))

    # Codes

    def save_code(self, authorization_code: AuthorizationCode) -> None:
        """Store ``authorization_code`` until its ``expires_at``, starting its grant. An expired
        code is not written, and deletes what was stored under the same code. Round trips on one
        server: five when the code starts its grant (the owners' epochs read, the entry added, two
        index appends, the code), ten for a client and user never seen before (their epochs and
        indexes are created), four into an existing grant.

        Raises:
            RecordTypeError: ``authorization_code`` is not an :class:`~oauth2_store.AuthorizationCode`.
            RecordTooLargeError: the encoded code is larger than the backend takes; nothing is stored.
            GrantRevokedError: the code's grant is revoked; nothing is stored.
            RecordValueError: its ``grant_id`` names a grant of another client; nothing is stored.
            StoreUnavailableError: the backend failed.
        """
        if type(authorization_code) is not AuthorizationCode:
            require_record(authorization_code, AuthorizationCode, "save_code")
        payload = self._sealed(secret_key(authorization_code.code), b"c", AUTH_CODE_CODEC.encode(authorization_code))
        key = self._key("c", authorization_code.code)
        expire = _memcached_expiration(authorization_code.expires_at, self._clock())
        if expire is None:
            self._connection.delete(key)
            return
        self._join_grant(authorization_code.grant_id, authorization_code.client_id, authorization_code.user_id, b"", expire)
        self._write({expire: {key: payload}})

    def fetch_by_code(self, code: str) -> AuthorizationCode:
        """Return the live authorization code ``code`` without using it up (two round trips: the
        code with its consumed marker, then its grant).

        Raises:
            CodeReplayError: ``code`` was already consumed; its grant is now revoked.
            AuthCodeNotFound: no such code, it was deleted, it expired, or its grant is not live.
            CodecError: the stored value is not a valid code record.
            StoreUnavailableError: the backend failed.
        """
        return self._live_code(code)

    def _live_code(self, code: str) -> AuthorizationCode:
        payload = self._unless_marked(self._key("c", code), self._key("k", code), CodeReplayError, "authorization code")
        if payload is None:
            raise AuthCodeNotFound("no live authorization code matches")
        authorization_code = AUTH_CODE_CODEC.decode(unseal(secret_key(code), b"c", payload))
        if authorization_code.code != code or authorization_code.is_expired(self._clock()):
            raise AuthCodeNotFound("no live authorization code matches")
        grant_key = self._grant_key(authorization_code.grant_id)
        if self._live_grant(grant_key, authorization_code.client_id, authorization_code.user_id) is None:
            raise AuthCodeNotFound("no live authorization code matches")
        return authorization_code

    def delete_code(self, code: str) -> None:
        """Delete ``code`` (it is not consumed: presenting it again is no replay); deleting a code
        that is not there is not an error (one round trip).

        Raises:
            StoreUnavailableError: the backend failed; the code may still be there.
        """
        self._connection.delete(self._key("c", code))

    def consume_code(self, code: str) -> AuthorizationCode:
        """Use up ``code``: only the caller whose ``add`` of the consumed marker succeeds gets it.

        Exactly once across threads, processes and hosts: the backend stores an ``add`` once, and
        every other answers NOT_STORED; those callers, and any later one until the code would have
        expired, are replays and revoke the grant (RFC 6749 §4.1.2). Four round trips.

        Raises:
            CodeReplayError: ``code`` was already consumed (concurrent losers included); its
                grant is now revoked.
            AuthCodeNotFound: no such code, it expired, or its grant is not live.
            CodecError: the stored value is not a valid code record.
            StoreUnavailableError: the backend failed; whether the code was used is unknown, and it
                was not returned to this caller.
        """
        authorization_code = self._live_code(code)
        marker = _marker(authorization_code.expires_at, authorization_code.grant_id)
        expire = _memcached_expiration(authorization_code.expires_at, self._clock())
        if expire is None:
            raise AuthCodeNotFound("no live authorization code matches")
        if not self._claim(self._key("k", code), marker, expire):
            self.revoke_grant(authorization_code.grant_id)
            raise CodeReplayError("the authorization code was already used; its grant is revoked")
        try:
            self._connection.delete(self._key("c", code))
        except StoreUnavailableError:  # the marker already makes this caller the only one
            pass
        return authorization_code


@attrs.frozen
class _GrantEntry:
    """A grant entry as read: revoked or not, its client's digest, epochs, and members."""

    revoked: bool
    client: bytes
    epochs: tuple[bytes, bytes, bytes]
    members: tuple[tuple[bytes, int], ...]

    @classmethod
    def parse(cls, value: bytes) -> _GrantEntry:
        """Raises:
        CodecError: ``value`` is not a grant entry."""
        body = value.lstrip(b"R")
        revoked = len(body) != len(value)
        if len(body) < _GRANT_HEADER.size or body[:1] != b"L" or (len(body) - _GRANT_HEADER.size) % _MEMBER.size:
            raise CodecError("not a grant entry: wrong header or length")
        _, client, *epochs = _GRANT_HEADER.unpack_from(body)
        members = tuple(_MEMBER.iter_unpack(body[_GRANT_HEADER.size :]))
        return cls(revoked, client, (epochs[0], epochs[1], epochs[2]), members)

    def latest_expiry(self) -> int | None:
        """When the longest-lived member expires; None if one never does."""
        latest = 0
        for _, expires_at in self.members:
            if expires_at == 0:
                return None
            latest = max(latest, expires_at)
        return latest


def _later(first: int | None, second: int | None) -> int | None:
    """The later of two expiries, where None (never) is latest and -1 means "nothing"."""
    if first is None or second is None:
        return None
    return max(first, second)


def _expiration_or_never(expires_at: int | None, now: float) -> int:
    """The memcached expiration for a grant entry living until ``expires_at`` (0: never); at
    least a second, so an entry is never written already expired."""
    expire = _memcached_expiration(expires_at, now)
    return 1 if expire is None else expire


def _marker(expires_at: int, grant_id: str) -> bytes:
    """A consumed-code or retired-refresh marker: ``n<nonce> <expires_at> <grant_id>`` (0: never
    expires), the nonce 16 random bytes in hex, so that the writer can recognise its own."""
    return f"n{secrets.token_hex(16)} {expires_at} {grant_id}".encode("ascii")


def _parse_marker(marker: bytes) -> tuple[int, str]:
    """A marker's expiry and grant id; markers written before the nonce have none.

    Raises:
        CodecError: it is not one.
    """
    if marker.startswith(b"n"):
        nonce, _, marker = marker.partition(b" ")
        if len(nonce) != 33:
            raise CodecError("not a consumed-code or retired-refresh marker")
    expires_at, _, grant_id = marker.partition(b" ")
    if not (0 < len(expires_at) <= 20 and expires_at.isdigit() and grant_id and grant_id.isascii()):
        raise CodecError("not a consumed-code or retired-refresh marker")
    return int(expires_at), grant_id.decode("ascii")


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
