"""SQL stores (extra ``oauth2-store[sql]``): tokens, codes and clients in SQLite or PostgreSQL,
durable across restarts, with the whole token lifecycle.

- :class:`SqlTokenStore` implements :class:`~oauth2_store.protocols.LifecycleTokenStoreProtocol`
  exactly, as the in-memory store does, for every process sharing the database: each operation
  is one transaction; ``consume_code`` and ``delete_refresh_token`` are one conditional
  ``UPDATE`` (exactly once, across processes); revoking a grant, a user's or a client's grants
  is one set-based statement per table.
- :class:`SqlClientStore` keeps clients with their secrets hashed (scrypt).
- Nothing usable in a dump: rows are keyed by digests and hold sealed records (see
  :mod:`oauth2_store.store.sql_schema`).
- SQLite is the embedded durable default: a file in WAL mode, safe for several processes on one
  host. Build engines with :func:`sql_engine`; everything particular to SQLAlchemy and the drivers
  is in :mod:`oauth2_store.store.sql_engine`.

The tables are created on first use when the database has none; a database whose recorded schema
is newer than this release's is refused (:func:`migrate` creates or checks them explicitly).
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from oauth2_store._digest import owner_digest, secret_digest
from oauth2_store._fields import GRANT_ID
from oauth2_store.clock import Clock, system_clock
from oauth2_store.codec import ACCESS_TOKEN_CODEC, AUTH_CODE_CODEC, CLIENT_CODEC
from oauth2_store.error import (
    AccessTokenNotFound,
    AuthCodeNotFound,
    ClientNotFoundError,
    CodecError,
    CodeReplayError,
    GrantRevokedError,
    RecordValueError,
    RefreshTokenReuseError,
    StoreUnavailableError,
)
from oauth2_store.models import AccessToken, AuthorizationCode, Client, TokenEndpointAuthMethod, require_record
from oauth2_store.protocols import TokenTypeHint
from oauth2_store.sealing import seal, secret_key, server_key, unseal
from oauth2_store.store.base import AccessTokenStore, AuthCodeStore, ClientStore, check_token_type_hint
from oauth2_store.store.sql_engine import SqlDatabase, sql_engine
from oauth2_store.store.sql_schema import SCHEMA_VERSION, SqlSchema

__all__ = ["SqlClientStore", "SqlTokenStore", "migrate", "sql_engine"]

_T = TypeVar("_T")

PURGE_EVERY = 200
"""Every this many saves (tokens and codes), a store purges expired rows: at most :data:`PURGE_BATCH`."""

PURGE_BATCH = 500
"""The most rows per table an opportunistic purge deletes: a save that purges costs a bounded extra transaction."""

log = logging.getLogger(__name__)


def _id(identifier: str) -> bytes:
    """A client or user id as the tables hold it: its UTF-8 bytes. Bytes, not text, so that any id
    a record allows (NUL included, which PostgreSQL's text refuses) is stored, and a lookup string
    no record can hold (a lone surrogate) matches nothing instead of failing to encode."""
    return identifier.encode("utf-8", "surrogatepass")


def _optional_id(identifier: str | None) -> bytes | None:
    return None if identifier is None else _id(identifier)


def _live(column: sa.ColumnElement[int | None], now: int) -> sa.ColumnElement[bool]:
    return sa.or_(column.is_(None), column > now)


def _later(first: int | None, second: int | None) -> int | None:
    """The later of two expiries, None (never) being the latest."""
    if first is None or second is None:
        return None
    return max(first, second)


def migrate(engine: Engine, prefix: str = "oauth2") -> int:
    """Create the tables of ``prefix`` in the database if it has none, and return the schema
    version it is at (this release's, :data:`~oauth2_store.store.sql_schema.SCHEMA_VERSION`).

    Raises:
        StoreUnavailableError: the database failed, or its schema is newer than this release's
            (nothing is changed: upgrade oauth2-store).
        TypeError, ValueError: an invalid prefix.
    """
    return _Tables(SqlDatabase(engine), SqlSchema(prefix)).ready()


class _Tables:
    """A schema on a database, made ready (created, or its version checked) once per store."""

    def __init__(self, database: SqlDatabase, schema: SqlSchema) -> None:
        self.database = database
        self.schema = schema
        self._ready = False
        self._lock = threading.Lock()

    def ready(self) -> int:
        """Create the tables if there are none; return the recorded version.

        Raises:
            StoreUnavailableError: the database failed, or its schema is newer than this release's.
        """
        with self._lock:
            if not self._ready:
                self.database.transaction(self._create_or_check)
                self._ready = True
        return SCHEMA_VERSION

    def _create_or_check(self, connection: Connection) -> None:
        # Processes starting together on an empty database would each create the tables.
        self.database.serialize(connection, f"schema {self.schema.prefix}")
        self.schema.metadata.create_all(connection, checkfirst=True)
        version = connection.execute(sa.select(self.schema.version.c.version)).scalar()
        if version is None:
            connection.execute(self.schema.version.insert().values(version=SCHEMA_VERSION))
        elif version > SCHEMA_VERSION:
            raise StoreUnavailableError(
                f"the SQL database at {self.database.where} has schema version {version} under prefix {self.schema.prefix!r}, "
                f"newer than this release's {SCHEMA_VERSION}: upgrade oauth2-store",
                self.database.where,
            )

    def forget(self) -> None:
        """Check the tables again before the next transaction (they were dropped)."""
        with self._lock:
            self._ready = False

    def run(self, work: Callable[[Connection], _T]) -> _T:
        """``work`` in one transaction, the tables ready (see :meth:`SqlDatabase.transaction`)."""
        if not self._ready:
            self.ready()
        return self.database.transaction(work)

    def read(self, work: Callable[[Connection], _T]) -> _T:
        """``work``, which only reads, in one transaction, the tables ready (see :meth:`SqlDatabase.read`)."""
        if not self._ready:
            self.ready()
        return self.database.read(work)


class SqlTokenStore(AccessTokenStore, AuthCodeStore):
    """Stores access tokens, refresh tokens and authorization codes in a SQL database (SQLite or
    PostgreSQL), with every operation of
    :class:`~oauth2_store.protocols.LifecycleTokenStoreProtocol`, exactly: every check and
    revocation is in the transaction that acts on it, so nothing is lost or let through, in any
    number of processes.

    Args:
        engine: From :func:`sql_engine` (``sqlite:///path`` or ``postgresql://...``).
        prefix: Put before every table name: 1 to 40 characters of ``a-z 0-9 _``. Stores with
            different prefixes share nothing.
        clock: Where the store reads the time to decide expiry.
        reissue_key: At least 32 random bytes the servers hold (never the database), which seal
            the entries :meth:`fetch_existing_token_of_user` reads: they hold a token to hand out
            again. Without it, none is written and that method raises AccessTokenNotFound.

    Raises:
        ValueError: an invalid prefix, a reissue key shorter than 32 bytes, an engine of another
            database.
        TypeError: a prefix that is not a str, a reissue key that is not bytes.
    """

    def __init__(self, engine: Engine, prefix: str = "oauth2", *, clock: Clock = system_clock, reissue_key: bytes | None = None) -> None:
        self._tables = _Tables(SqlDatabase(engine), SqlSchema(prefix))
        self._schema = self._tables.schema
        self._database = self._tables.database
        self._clock = clock
        self._reissue_key = None if reissue_key is None else server_key(reissue_key)
        self._listener: Callable[[Sequence[bytes]], None] | None = None
        self._saves = itertools.count(1)

    @property
    def where(self) -> str:
        """The database, as errors name it (its URL without the password)."""
        return self._database.where

    @property
    def reissues_tokens(self) -> bool:
        """Whether the store has a ``reissue_key``, so that :meth:`fetch_existing_token_of_user`
        can hand out a saved token again."""
        return self._reissue_key is not None

    @property
    def prefix(self) -> str:
        """The prefix of the store's table names."""
        return self._schema.prefix

    @property
    def engine(self) -> Engine:
        """The engine the store runs on (a :class:`SqlClientStore` can share it)."""
        return self._database.engine

    def migrate(self) -> int:
        """Create the store's tables if the database has none; return the schema version.

        Raises:
            StoreUnavailableError: the database failed, or its schema is newer than this release's.
        """
        return self._tables.ready()

    def drop_tables(self) -> None:
        """Drop the tables of the store's prefix, with everything in them (for a throwaway prefix,
        as ``oauth2-store check`` and ``bench`` use).

        Raises:
            StoreUnavailableError: the database failed.
        """
        self._database.transaction(lambda connection: self._schema.metadata.drop_all(connection, checkfirst=True))
        self._tables.forget()

    def close(self) -> None:
        """Close the pooled connections; the next call opens new ones."""
        self._database.close()

    def on_tokens_deleted(self, listener: Callable[[Sequence[bytes]], None]) -> None:
        """Call ``listener`` with the SHA-256 digests of the access tokens an operation deleted
        (revoked, rotated, re-saved expired; possibly some that were not stored), after it
        committed, before it returns: how a :class:`~oauth2_store.store.tiered.TieredTokenStore`
        keeps its cache from serving them. An error the listener raises is the operation's
        (what the database did stays done)."""
        self._listener = listener

    def _run(self, work: Callable[[Connection], _T], deleted: list[bytes]) -> _T:
        """``work`` in one transaction; then the listener told of the access tokens it deleted."""
        result = self._tables.run(work)
        if deleted and self._listener is not None:
            self._listener(deleted)
        return result

    def _now(self) -> int:
        # A record expiring at second E is live while now < E, that is while E > floor(now).
        return int(self._clock())

    # Tokens

    def save_token(self, access_token: AccessToken) -> None:
        """Store ``access_token``: findable by token until ``expires_at``, by refresh token until
        ``refresh_expires_at``, and as its user's latest token (with a reissue key), as a member
        of its grant (which it starts if the grant is new), in one transaction. An expired part is
        not stored and deletes what was stored under the same token or refresh token.

        Raises:
            RecordTypeError: ``access_token`` is not an :class:`~oauth2_store.AccessToken`.
            RecordValueError: its ``grant_id`` names a grant of another client; nothing is stored.
            GrantRevokedError: its grant was revoked; nothing is stored.
            StoreUnavailableError: the database failed; nothing is stored, unless the failure came
                with the commit (then it may be).
        """
        if type(access_token) is not AccessToken:
            require_record(access_token, AccessToken, "save_token")
        payload = ACCESS_TOKEN_CODEC.encode(access_token)
        token_digest = secret_digest(access_token.token)
        latest = None if self._reissue_key is None else seal(self._reissue_key, b"u", payload)
        sealed_token = seal(secret_key(access_token.token), b"t", payload)
        refresh = access_token.refresh_token
        sealed_refresh = None if refresh is None else seal(secret_key(refresh), b"r", payload)
        refresh_digest = None if refresh is None else secret_digest(refresh)

        def save(connection: Connection) -> None:
            now = self._now()
            token_live = access_token.expires_at is None or access_token.expires_at > now
            refresh_live = refresh is not None and (access_token.refresh_expires_at is None or access_token.refresh_expires_at > now)
            if token_live or refresh_live:
                # Kept until the latest expiry of the record's parts: that of a live part.
                expires_at = access_token.expires_at if refresh is None else _later(access_token.expires_at, access_token.refresh_expires_at)
                self._join_grant(connection, access_token, expires_at)
            else:
                self._refuse_to_join(connection, access_token)
            tokens, schema = self._schema.tokens, self._schema
            if token_live:
                # token_digest: the refresh token's, so that rotating an older refresh token of a
                # token saved again does not delete it.
                row = {"digest": token_digest, "grant_id": access_token.grant_id, "expires_at": access_token.expires_at, "token_digest": refresh_digest, "record": sealed_token}
                connection.execute(self._database.upsert(tokens, row, ["digest"]))
                if latest is not None:  # a store without a reissue key writes no latest entries
                    owner = owner_digest(access_token.client_id, access_token.grant_type, access_token.user_id)
                    # A token saved again for other owners is no longer the latest of the previous ones.
                    connection.execute(schema.latest.delete().where(schema.latest.c.token_digest == token_digest, schema.latest.c.digest != owner))
                    entry = {"digest": owner, "grant_id": access_token.grant_id, "expires_at": access_token.expires_at, "token_digest": token_digest, "record": latest}
                    connection.execute(self._database.upsert(schema.latest, entry, ["digest"]))
            else:
                connection.execute(tokens.delete().where(tokens.c.digest == token_digest))
                connection.execute(schema.latest.delete().where(schema.latest.c.token_digest == token_digest))
                deleted.append(token_digest)
            if refresh is not None and refresh_digest is not None:
                if refresh_live and sealed_refresh is not None:
                    row = {
                        "digest": refresh_digest,
                        "grant_id": access_token.grant_id,
                        "expires_at": access_token.refresh_expires_at,
                        "token_digest": token_digest,
                        "retired": False,
                        "record": sealed_refresh,
                    }
                    # A retired refresh token saved again stays retired: its row is the reuse marker.
                    connection.execute(self._database.upsert(schema.refresh_tokens, row, ["digest"], unless=schema.refresh_tokens.c.retired))
                else:
                    refresh_tokens = schema.refresh_tokens
                    connection.execute(refresh_tokens.delete().where(refresh_tokens.c.digest == refresh_digest, refresh_tokens.c.retired.is_(False)))

        deleted: list[bytes] = []
        self._run(save, deleted)
        self._purge_now_and_then()

    def fetch_by_token(self, token: str) -> AccessToken:
        """Return the live access token ``token`` (one indexed select: revoking deletes tokens,
        so no grant needs a look).

        Raises:
            AccessTokenNotFound: no such token, it was revoked, or it expired.
            CodecError: the stored record is not a valid token record, or not this token's.
            StoreUnavailableError: the database failed.
        """
        tokens, digest = self._schema.tokens, secret_digest(token)
        # The time read in the transaction: one that waited for a connection reads it as it ends.
        record = self._tables.read(
            lambda connection: connection.execute(sa.select(tokens.c.record).where(tokens.c.digest == digest, _live(tokens.c.expires_at, self._now()))).scalar()
        )
        if record is None:
            raise AccessTokenNotFound("no live access token matches")
        access_token = ACCESS_TOKEN_CODEC.decode(unseal(secret_key(token), b"t", record, sealed_only=True))
        if access_token.token != token:
            raise CodecError("the token record stored under that token names another token")
        return access_token

    def fetch_by_refresh_token(self, refresh_token: str) -> AccessToken:
        """Return the access token issued with ``refresh_token``, even if the access token expired.

        Raises:
            RefreshTokenReuseError: ``refresh_token`` was retired by :meth:`delete_refresh_token`;
                its grant is now revoked.
            AccessTokenNotFound: no such refresh token, it was revoked, or it expired.
            CodecError: the stored record is not a valid token record, or not this token's.
            StoreUnavailableError: the database failed.
        """
        record = self._unless_used(self._schema.refresh_tokens, "retired", secret_digest(refresh_token))
        if record is _REUSED:
            raise RefreshTokenReuseError("the refresh token was already used; its grant is revoked")
        if record is None:
            raise AccessTokenNotFound("no live refresh token matches")
        access_token = ACCESS_TOKEN_CODEC.decode(unseal(secret_key(refresh_token), b"r", record, sealed_only=True))
        if access_token.refresh_token != refresh_token:
            raise CodecError("the token record stored under that refresh token names another refresh token")
        return access_token

    def fetch_existing_token_of_user(self, client_id: str, grant_type: str, user_id: str | None) -> AccessToken:
        """Return the live access token most recently saved for this client, grant and user.
        Only a store with a ``reissue_key`` keeps these entries.

        Raises:
            AccessTokenNotFound: none was saved, the latest one was revoked or expired, or the
                store has no ``reissue_key``.
            CodecError: the stored record is not a valid token record, or not theirs.
            StoreUnavailableError: the database failed.
        """
        reissue_key = self._reissue_key
        if reissue_key is None:
            raise AccessTokenNotFound("this store keeps no token to hand out again: give it a reissue_key")
        latest, tokens = self._schema.latest, self._schema.tokens
        owner = owner_digest(client_id, grant_type, user_id)

        def read(connection: Connection) -> bytes | None:
            query = sa.select(latest.c.record).join(tokens, tokens.c.digest == latest.c.token_digest).where(latest.c.digest == owner, _live(tokens.c.expires_at, self._now()))
            record: bytes | None = connection.execute(query).scalar()
            return record

        record = self._tables.read(read)
        if record is None:
            raise AccessTokenNotFound("no live access token for this client, grant and user")
        access_token = ACCESS_TOKEN_CODEC.decode(unseal(reissue_key, b"u", record, sealed_only=True))
        if (access_token.client_id, access_token.grant_type, access_token.user_id) != (client_id, grant_type, user_id):
            raise CodecError("the latest-token entry names another client, grant or user")
        return access_token

    def delete_refresh_token(self, refresh_token: str) -> None:
        """Retire ``refresh_token`` and delete the access token issued with it (rotation), exactly
        once across processes: one conditional ``UPDATE``. Presenting it again is reuse, which
        revokes its grant.

        Raises:
            RefreshTokenReuseError: ``refresh_token`` was already retired (concurrent losers
                included); its grant is now revoked.
            AccessTokenNotFound: no such refresh token (revoked, or expired), or its grant is revoked.
            StoreUnavailableError: the database failed; it may or may not be retired.
        """
        refresh_tokens, grants, schema = self._schema.refresh_tokens, self._schema.grants, self._schema
        digest = secret_digest(refresh_token)

        def retire(connection: Connection) -> bool | _Reused:
            now = self._now()
            live_grant = sa.exists().where(grants.c.grant_id == refresh_tokens.c.grant_id, grants.c.revoked.is_(False))
            retired = connection.execute(
                refresh_tokens.update()
                .where(
                    refresh_tokens.c.digest == digest,
                    refresh_tokens.c.retired.is_(False),
                    _live(refresh_tokens.c.expires_at, now),
                    live_grant,
                )
                .values(retired=True)
                .returning(refresh_tokens.c.grant_id, refresh_tokens.c.token_digest)
            ).first()
            if retired is not None:
                tokens = schema.tokens
                connection.execute(tokens.delete().where(tokens.c.digest == retired.token_digest, tokens.c.token_digest == digest))
                deleted.append(bytes(retired.token_digest))
                connection.execute(schema.latest.delete().where(schema.latest.c.token_digest == retired.token_digest))
                return True
            marker = connection.execute(
                sa.select(refresh_tokens.c.grant_id).where(refresh_tokens.c.digest == digest, refresh_tokens.c.retired.is_(True), _live(refresh_tokens.c.expires_at, now))
            ).first()
            if marker is None:
                return False
            self._revoke_grants(connection, grants.c.grant_id == marker.grant_id, deleted)
            return _REUSED

        deleted: list[bytes] = []
        found = self._run(retire, deleted)
        if found is _REUSED:
            raise RefreshTokenReuseError("the refresh token was already used; its grant is revoked")
        if not found:
            raise AccessTokenNotFound("no live refresh token matches")

    def revoke_token(self, token: str, token_type_hint: TokenTypeHint | None = None) -> None:
        """Revoke ``token``: an access token alone, or a refresh token with its whole grant (RFC
        7009 §2.1). Unknown tokens are not an error; both kinds are searched whatever the hint.

        Raises:
            ValueError: ``token_type_hint`` is not ``"access_token"``, ``"refresh_token"`` or None.
            StoreUnavailableError: the database failed; the token may still work.
        """
        check_token_type_hint(token_type_hint)
        schema, digest = self._schema, secret_digest(token)

        def revoke(connection: Connection) -> None:
            connection.execute(schema.tokens.delete().where(schema.tokens.c.digest == digest))
            connection.execute(schema.latest.delete().where(schema.latest.c.token_digest == digest))
            deleted.append(digest)
            refresh_tokens = schema.refresh_tokens
            grant_id = connection.execute(sa.select(refresh_tokens.c.grant_id).where(refresh_tokens.c.digest == digest, refresh_tokens.c.retired.is_(False))).scalar()
            if grant_id is not None:
                self._revoke_grants(connection, schema.grants.c.grant_id == grant_id, deleted)
                connection.execute(refresh_tokens.delete().where(refresh_tokens.c.digest == digest))

        deleted: list[bytes] = []
        self._run(revoke, deleted)

    def revoke_grant(self, grant_id: str) -> None:
        """End grant ``grant_id``: its tokens, refresh tokens and unconsumed code are deleted, and
        nothing can be saved into it again. An unknown grant is not an error.

        Raises:
            StoreUnavailableError: the database failed; the grant may still be live.
        """
        if GRANT_ID.fullmatch(grant_id) is None:
            return  # no grant has such an id (and NUL or a lone surrogate cannot reach the database)
        grants = self._schema.grants
        deleted: list[bytes] = []
        self._run(lambda connection: self._revoke_grants(connection, grants.c.grant_id == grant_id, deleted), deleted)

    def revoke_user(self, user_id: str, client_id: str | None = None) -> None:
        """End every grant of ``user_id`` (with ``client_id``: of that client only), with their
        tokens and codes, in one statement per table. Grants authorized afterwards work.

        Raises:
            StoreUnavailableError: the database failed; grants may still be live.
        """
        grants = self._schema.grants
        condition = grants.c.user_id == _id(user_id) if client_id is None else sa.and_(grants.c.user_id == _id(user_id), grants.c.client_id == _id(client_id))
        deleted: list[bytes] = []
        self._run(lambda connection: self._revoke_grants(connection, condition, deleted), deleted)

    def revoke_client(self, client_id: str) -> None:
        """End every grant of ``client_id``, with its tokens and unconsumed codes, in one
        statement per table. Grants authorized afterwards work.

        Raises:
            StoreUnavailableError: the database failed; grants may still be live.
        """
        grants = self._schema.grants
        deleted: list[bytes] = []
        self._run(lambda connection: self._revoke_grants(connection, grants.c.client_id == _id(client_id), deleted), deleted)

    # Codes

    def save_code(self, authorization_code: AuthorizationCode) -> None:
        """Store ``authorization_code`` until its ``expires_at``, starting its grant. An expired
        code is not stored (and starts no grant), and removes what was stored under the same code.

        Raises:
            RecordTypeError: ``authorization_code`` is not an :class:`~oauth2_store.AuthorizationCode`.
            RecordValueError: its ``grant_id`` names a grant of another client; nothing is stored.
            GrantRevokedError: its grant was revoked; nothing is stored.
            StoreUnavailableError: the database failed; nothing is stored, unless the failure came
                with the commit (then it may be).
        """
        if type(authorization_code) is not AuthorizationCode:
            require_record(authorization_code, AuthorizationCode, "save_code")
        codes = self._schema.codes
        digest = secret_digest(authorization_code.code)
        sealed = seal(secret_key(authorization_code.code), b"c", AUTH_CODE_CODEC.encode(authorization_code))

        def save(connection: Connection) -> None:
            if authorization_code.expires_at <= self._now():
                self._refuse_to_join(connection, authorization_code)
                connection.execute(codes.delete().where(codes.c.digest == digest, codes.c.consumed.is_(False)))
                return
            self._join_grant(connection, authorization_code, authorization_code.expires_at)
            row = {"digest": digest, "grant_id": authorization_code.grant_id, "expires_at": authorization_code.expires_at, "consumed": False, "record": sealed}
            connection.execute(self._database.upsert(codes, row, ["digest"]))  # a code saved again is a new one (as in memory)

        self._tables.run(save)
        self._purge_now_and_then()

    def fetch_by_code(self, code: str) -> AuthorizationCode:
        """Return the live authorization code ``code`` without using it up.

        Raises:
            CodeReplayError: ``code`` was already consumed; its grant is now revoked.
            AuthCodeNotFound: no such code, it was deleted, it expired, or its grant is revoked.
            CodecError: the stored record is not a valid code record, or not this code's.
            StoreUnavailableError: the database failed.
        """
        record = self._unless_used(self._schema.codes, "consumed", secret_digest(code))
        if record is _REUSED:
            raise CodeReplayError("the authorization code was already used; its grant is revoked")
        if record is None:
            raise AuthCodeNotFound("no live authorization code matches")
        return self._open_code(code, record)

    def delete_code(self, code: str) -> None:
        """Delete ``code`` (it is not consumed: presenting it again is no replay); deleting a code
        that is not there is not an error.

        Raises:
            StoreUnavailableError: the database failed; the code may still be there.
        """
        codes = self._schema.codes
        statement = codes.delete().where(codes.c.digest == secret_digest(code), codes.c.consumed.is_(False))
        self._tables.run(lambda connection: connection.execute(statement))

    def consume_code(self, code: str) -> AuthorizationCode:
        """Fetch and use up ``code``, exactly once across processes: one conditional ``UPDATE``
        that keeps the row as the replay marker until the code would have expired. Presenting it
        again is a replay, which revokes its grant (RFC 6749 §4.1.2).

        Raises:
            CodeReplayError: ``code`` was already consumed (concurrent losers included); its grant
                is now revoked.
            AuthCodeNotFound: no such code, it expired, or its grant is revoked.
            CodecError: the stored record is not a valid code record, or not this code's.
            StoreUnavailableError: the database failed; the code may or may not be consumed.
        """
        codes, grants = self._schema.codes, self._schema.grants
        digest = secret_digest(code)

        def consume(connection: Connection) -> bytes | _Reused | None:
            now = self._now()
            live_grant = sa.exists().where(grants.c.grant_id == codes.c.grant_id, grants.c.revoked.is_(False))
            record = connection.execute(
                codes.update()
                .where(codes.c.digest == digest, codes.c.consumed.is_(False), codes.c.expires_at > now, live_grant)
                .values(consumed=True)
                .returning(codes.c.record)
            ).scalar()
            if record is not None:
                return bytes(record)
            marker = connection.execute(sa.select(codes.c.grant_id).where(codes.c.digest == digest, codes.c.consumed.is_(True), codes.c.expires_at > now)).first()
            if marker is not None:
                self._revoke_grants(connection, grants.c.grant_id == marker.grant_id, deleted)
                return _REUSED
            return None

        deleted: list[bytes] = []
        record = self._run(consume, deleted)
        if record is _REUSED:
            raise CodeReplayError("the authorization code was already used; its grant is revoked")
        if record is None:
            raise AuthCodeNotFound("no live authorization code matches")
        return self._open_code(code, record)

    def purge(self, limit: int = 10_000) -> int:
        """Delete up to ``limit`` rows of each table that have expired (markers of consumed codes
        and retired refresh tokens included, and grants once everything issued in them expired),
        on the indexed expiry columns; return how many rows went.

        Raises:
            ValueError: ``limit`` is not a positive int.
            StoreUnavailableError: the database failed.
        """
        if type(limit) is not int or limit < 1:
            raise ValueError("limit must be a positive int")
        schema = self._schema

        def purge(connection: Connection) -> int:
            now = self._now()
            deleted = 0
            for table in (schema.tokens, schema.refresh_tokens, schema.codes, schema.latest):
                expired = sa.select(table.c.digest).where(table.c.expires_at <= now).limit(limit)
                # The expiry again in the outer condition: PostgreSQL re-checks only that one on a
                # row a concurrent save just extended (and locked), and must then leave it.
                deleted += connection.execute(table.delete().where(table.c.digest.in_(expired), table.c.expires_at <= now)).rowcount
            grants = schema.grants
            expired_grants = sa.select(grants.c.grant_id).where(grants.c.expires_at <= now).limit(limit)
            deleted += connection.execute(grants.delete().where(grants.c.grant_id.in_(expired_grants), grants.c.expires_at <= now)).rowcount
            return deleted

        return self._tables.run(purge)

    def _unless_used(self, table: sa.Table, used: str, digest: bytes) -> bytes | _Reused | None:
        """The live record under ``digest`` in ``table`` (refresh tokens or codes) if its grant
        is live; :data:`_REUSED` if the row is a marker (column ``used`` set: retired, consumed),
        whose grant this then revokes; None if there is no live row or its grant is revoked."""
        grants = self._schema.grants

        def fetch(connection: Connection) -> bytes | str | None:
            row = connection.execute(
                sa.select(table.c.record, table.c[used], table.c.grant_id, grants.c.revoked)
                .join(grants, grants.c.grant_id == table.c.grant_id, isouter=True)
                .where(table.c.digest == digest, _live(table.c.expires_at, self._now()))
            ).first()
            if row is None:
                return None
            if row[1]:
                return str(row.grant_id)  # a marker: its grant is to be revoked
            return None if row.revoked is not False else bytes(row.record)

        found = self._tables.read(fetch)
        if not isinstance(found, str):
            return found
        # A marker stays until it expires: revoking its grant in a second transaction is as right
        # as in the first, and keeps the read from taking SQLite's write lock.
        deleted: list[bytes] = []
        self._run(lambda connection: self._revoke_grants(connection, grants.c.grant_id == found, deleted), deleted)
        return _REUSED

    def _purge_now_and_then(self) -> None:
        """Every :data:`PURGE_EVERY` saves, purge at most :data:`PURGE_BATCH` expired rows per table
        (its own transaction, after the save committed): the tables stay bounded without a
        scheduled ``purge``. A failure is logged, not raised: the save itself succeeded."""
        if next(self._saves) % PURGE_EVERY:
            return
        try:
            self.purge(PURGE_BATCH)
        except StoreUnavailableError as error:
            log.warning("opportunistic purge failed: %s", error)

    # Grants

    def _join_grant(self, connection: Connection, record: AccessToken | AuthorizationCode, expires_at: int | None) -> None:
        """Start the record's grant, or join it (keeping it until ``expires_at`` at least); the
        grant's row stays locked until the transaction ends, so a revocation waits for it.

        Raises:
            GrantRevokedError: the grant was revoked.
            RecordValueError: the grant belongs to another client.
        """
        grants = self._schema.grants
        row = {"grant_id": record.grant_id, "client_id": _id(record.client_id), "user_id": _optional_id(record.user_id), "revoked": False, "expires_at": expires_at}
        # One statement creates the row or locks it as it is (a no-op update), and returns it:
        # nothing (a purge) can take it between the two.
        grant = connection.execute(
            self._database.upsert(grants, row, ["grant_id"], keep=True).returning(grants.c.client_id, grants.c.revoked, grants.c.expires_at)
        ).one()
        if grant.revoked:
            raise GrantRevokedError("the record's grant was revoked")
        if bytes(grant.client_id) != _id(record.client_id):
            raise RecordValueError("grant_id names a grant of another client")
        later = _later(grant.expires_at, expires_at)
        if later != grant.expires_at:
            connection.execute(grants.update().where(grants.c.grant_id == record.grant_id).values(expires_at=later))

    def _refuse_to_join(self, connection: Connection, record: AccessToken | AuthorizationCode) -> None:
        """Raise if a record with nothing live names a grant it could not join.

        Raises:
            GrantRevokedError: the grant was revoked.
            RecordValueError: the grant belongs to another client.
        """
        grants = self._schema.grants
        grant = connection.execute(sa.select(grants.c.client_id, grants.c.revoked).where(grants.c.grant_id == record.grant_id)).first()
        if grant is not None and grant.revoked:
            raise GrantRevokedError("the record's grant was revoked")
        if grant is not None and bytes(grant.client_id) != _id(record.client_id):
            raise RecordValueError("grant_id names a grant of another client")

    def _revoke_grants(self, connection: Connection, which: sa.ColumnElement[bool], deleted: list[bytes]) -> None:
        """Mark the grants ``which`` selects revoked and delete what was issued in them (the
        markers of consumed codes and retired refresh tokens stay: they are how a replay is told);
        add the digests of the access tokens deleted to ``deleted``."""
        schema, grants = self._schema, self._schema.grants
        connection.execute(grants.update().where(which, grants.c.revoked.is_(False)).values(revoked=True))
        # Only grants revoked now or before: one committed meanwhile by a save is not touched.
        revoked = sa.select(grants.c.grant_id).where(which, grants.c.revoked.is_(True))
        tokens = schema.tokens
        deleted += (bytes(digest) for digest in connection.execute(tokens.delete().where(tokens.c.grant_id.in_(revoked)).returning(tokens.c.digest)).scalars())
        connection.execute(schema.latest.delete().where(schema.latest.c.grant_id.in_(revoked)))
        connection.execute(schema.refresh_tokens.delete().where(schema.refresh_tokens.c.grant_id.in_(revoked), schema.refresh_tokens.c.retired.is_(False)))
        connection.execute(schema.codes.delete().where(schema.codes.c.grant_id.in_(revoked), schema.codes.c.consumed.is_(False)))

    def _open_code(self, code: str, record: bytes) -> AuthorizationCode:
        authorization_code = AUTH_CODE_CODEC.decode(unseal(secret_key(code), b"c", record, sealed_only=True))
        if authorization_code.code != code:
            raise CodecError("the code record stored under that code names another code")
        return authorization_code


class _Reused(enum.Enum):
    """What a transaction returns when it found a consumed code or a retired refresh token and
    revoked its grant: the error is raised after the commit (raising inside would roll the
    revocation back)."""

    REUSED = "reused"


_REUSED = _Reused.REUSED


class SqlClientStore(ClientStore):
    """Stores clients in a SQL database, each secret as a scrypt hash.

    Args:
        engine: From :func:`sql_engine`.
        prefix: Put before every table name (see :class:`SqlTokenStore`); a token store may share it.

    Raises:
        ValueError, TypeError: an invalid prefix, or an engine of another database.
    """

    def __init__(self, engine: Engine, prefix: str = "oauth2") -> None:
        self._tables = _Tables(SqlDatabase(engine), SqlSchema(prefix))
        self._clients = self._tables.schema.clients

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: Iterable[str],
        *,
        authorized_grants: Iterable[str] | None = None,
        authorized_response_types: Iterable[str] | None = None,
        scopes: Iterable[str] | None = None,
        token_endpoint_auth_method: TokenEndpointAuthMethod | None = None,
    ) -> Client:
        """Register a client app (replacing one with the same identifier) and return its record,
        the secret hashed (``secret`` ``""``, ``secret_hash`` set).

        Args:
            client_id: Identifier of the client app.
            client_secret: Secret the client app uses to authenticate; ``""`` for a public client.
                Only its hash is stored.
            redirect_uris: The URIs it may redirect to (absolute, no fragment).
            authorized_grants: Grant types it may use; None allows all.
            authorized_response_types: Response types it may request; None allows all.
            scopes: Scopes it may be granted; None allows any.
            token_endpoint_auth_method: How it authenticates at the token endpoint; None: ``none``
                for a public client, ``client_secret_basic`` otherwise.

        Raises:
            RecordTypeError, RecordValueError: as :class:`~oauth2_store.Client` does; nothing is
                written.
            StoreUnavailableError: the database failed; nothing is stored, unless the failure came
                with the commit (then it may be).
        """
        client = Client(
            client_id,
            client_secret,
            redirect_uris,
            authorized_grants=authorized_grants,
            authorized_response_types=authorized_response_types,
            scopes=scopes,
            token_endpoint_auth_method=token_endpoint_auth_method,
        ).with_hashed_secret()
        statement = self._tables.database.upsert(self._clients, {"client_id": _id(client.identifier), "record": CLIENT_CODEC.encode(client)}, ["client_id"])
        self._tables.run(lambda connection: connection.execute(statement))
        return client

    def fetch_by_client_id(self, client_id: str) -> Client:
        """Retrieve a client by its identifier.

        Raises:
            ClientNotFoundError: no client has that identifier (or ``client_id`` is not a str).
            CodecError: the row holds a corrupt record, or the record of another client.
            StoreUnavailableError: the database failed.
        """
        if not isinstance(client_id, str):
            raise ClientNotFoundError("no client with that identifier")
        query = sa.select(self._clients.c.record).where(self._clients.c.client_id == _id(client_id))
        record = self._tables.read(lambda connection: connection.execute(query).scalar())
        if record is None:
            raise ClientNotFoundError("no client with that identifier")
        client = CLIENT_CODEC.decode(bytes(record))
        if client.identifier != client_id:
            raise CodecError("the client record stored under that identifier names another client")
        return client

    def close(self) -> None:
        """Close the pooled connections; the next call opens new ones."""
        self._tables.database.close()
