"""The seam between the SQL stores and SQLAlchemy with its drivers (sqlite3, psycopg 3).

Everything particular to them is here: building an engine (SQLite in WAL mode with ``BEGIN
IMMEDIATE`` writes and a busy timeout; PostgreSQL through psycopg with a connect timeout), running
a transaction with a bounded number of retries of the failures that only mean "try again"
(PostgreSQL's serialization failures and deadlocks, a busy SQLite database), dialect-specific
upserts, and turning every other driver failure into
:class:`~oauth2_store.error.StoreUnavailableError` naming the database without its password. An
error's text is never passed on: SQLAlchemy's quotes the statement's parameters.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from oauth2_store.error import StoreUnavailableError

__all__ = ["SqlDatabase", "sql_engine"]

_T = TypeVar("_T")

ATTEMPTS = 4
"""How many times a transaction runs when it keeps failing with "try again"."""

_RETRY_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
_READ_ONLY = "oauth2_store_read_only"


def sql_engine(url: str, *, timeout: float = 5.0) -> Engine:
    """An engine for ``url``: ``sqlite:///path`` (a file; WAL mode, writes take the lock at
    ``BEGIN``, waiting up to ``timeout`` seconds for another writer) or ``postgresql://...`` /
    ``postgresql+psycopg://...`` (psycopg 3; connecting gives up after ``timeout`` seconds).

    Raises:
        ValueError: a URL of another database, an in-memory SQLite database (each connection would
            get its own), or a timeout that is not positive.
        ImportError: psycopg is not installed (``pip install 'oauth2-store[sql]'``).
    """
    if not timeout > 0:
        raise ValueError("the timeout must be a positive number of seconds")
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ValueError("not a SQL database URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.drivername != "sqlite" or not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
            raise ValueError("a SQLite store is a file: sqlite:///relative/path or sqlite:////absolute/path")
        engine = sa.create_engine(parsed, connect_args={"timeout": timeout, "isolation_level": None})
        sa.event.listen(engine, "connect", _sqlite_connected)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        if parsed.drivername not in ("postgresql", "postgresql+psycopg"):
            raise ValueError("a PostgreSQL store uses psycopg 3: postgresql:// or postgresql+psycopg://")
        # pool_pre_ping: a pooled connection the server closed (a restart while the store was idle)
        # is replaced before use, not failed on; one short round trip per checkout.
        return sa.create_engine(
            parsed.set(drivername="postgresql+psycopg"), connect_args={"connect_timeout": max(1, round(timeout))}, pool_size=5, max_overflow=10, pool_pre_ping=True
        )
    raise ValueError(f"no SQL store for {backend!r} databases: use sqlite:/// or postgresql://")


def _sqlite_connected(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # WAL: readers never wait for the writer (sqlite3's timeout sets how long a writer waits for
    # another). synchronous=FULL: a committed save survives a power cut, not only a crash.
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=FULL")


def _sqlite_begin(connection: Connection) -> None:
    # Take the write lock at BEGIN: a transaction that reads and then writes cannot lose the lock
    # to another writer halfway (which SQLite answers with SQLITE_BUSY, no waiting). A read-only
    # one takes none: in WAL mode it reads a snapshot and never waits.
    connection.exec_driver_sql("BEGIN" if connection.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")


class SqlDatabase:
    """One database the stores run their transactions on.

    Args:
        engine: Built by :func:`sql_engine` (an engine of another origin must behave the same:
            SQLite with ``BEGIN IMMEDIATE``, or PostgreSQL).

    Raises:
        ValueError: the engine is of another database.
    """

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(f"no SQL store for {engine.dialect.name!r} databases")
        self.engine = engine
        self.dialect = engine.dialect.name
        # Driver, user, host, port and database only: a query string can hold a password too.
        self.where = engine.url.set(query={}).render_as_string(hide_password=True)

    def transaction(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in one transaction and commit it; run it again (up to :data:`ATTEMPTS`
        times in all) when the database answers that it must be retried.

        Raises:
            StoreUnavailableError: the database failed, could not be reached, or kept asking for a
                retry; what ``work`` wrote may be committed only if the failure came with the
                commit itself (its reply lost).
            Exception: whatever ``work`` raises (after a rollback).
        """
        return self._attempts(work, read_only=False)

    def read(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work``, which only reads, in one transaction: as :meth:`transaction`, but on
        SQLite a deferred one, which takes no write lock and waits for no writer.

        Raises:
            StoreUnavailableError: as :meth:`transaction`.
            Exception: whatever ``work`` raises.
        """
        return self._attempts(work, read_only=True)

    def _attempts(self, work: Callable[[Connection], _T], *, read_only: bool) -> _T:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.engine.connect() as connection:
                    if read_only:
                        connection = connection.execution_options(**{_READ_ONLY: True})
                    with connection.begin():
                        return work(connection)
            except sa.exc.DBAPIError as error:
                if attempt < ATTEMPTS and _must_retry(error):
                    time.sleep(0.005 * attempt)  # back off: the rival transaction is finishing
                    continue
                raise self.unavailable(error) from None
            except sa.exc.SQLAlchemyError as error:
                raise self.unavailable(error) from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def unavailable(self, error: BaseException) -> StoreUnavailableError:
        """The error a store raises for a driver failure: the database and the failure's class
        (and SQLSTATE), never its text."""
        original = getattr(error, "orig", None) or error
        code = getattr(original, "sqlstate", None)
        detail = type(original).__name__ + (f" (SQLSTATE {code})" if isinstance(code, str) else "")
        return StoreUnavailableError(f"the SQL database at {self.where} failed: {detail}", self.where)

    def upsert(self, table: sa.Table, values: Mapping[str, object], keys: Sequence[str], *, unless: sa.ColumnElement[bool] | None = None, keep: bool = False) -> sa.Insert:
        """An ``INSERT`` of ``values`` that replaces the row with the same ``keys`` columns, except
        where ``unless`` holds of the stored row; with ``keep``, the stored row is left as it is
        but locked and, with ``RETURNING``, returned (a no-op update of its key)."""
        insert = (postgresql_dialect.insert if self.dialect == "postgresql" else sqlite_dialect.insert)(table).values(dict(values))
        if keep:
            return insert.on_conflict_do_update(index_elements=list(keys), set_={name: table.c[name] for name in keys})
        where = None if unless is None else sa.not_(unless)
        return insert.on_conflict_do_update(index_elements=list(keys), set_={name: insert.excluded[name] for name in values if name not in keys}, where=where)

    def serialize(self, connection: Connection, name: str) -> None:
        """Make transactions that call this with the same ``name`` run one at a time (until this
        one ends): PostgreSQL's transaction-level advisory lock; on SQLite, every writing
        transaction already holds the database's lock."""
        if self.dialect == "postgresql":
            key = int.from_bytes(hashlib.sha256(f"oauth2-store {name}".encode()).digest()[:8], "big", signed=True)
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def close(self) -> None:
        """Close the pooled connections; the next transaction opens new ones."""
        self.engine.dispose()



def _must_retry(error: sa.exc.DBAPIError) -> bool:
    original = error.orig
    if getattr(original, "sqlstate", None) in _RETRY_SQLSTATES:
        return True
    # SQLITE_BUSY after the busy timeout, or SQLITE_LOCKED: another writer held on. (Python 3.10's
    # sqlite3 errors have no error code: its message says so.)
    if not isinstance(original, sqlite3.OperationalError):
        return False
    return getattr(original, "sqlite_errorcode", None) in (_SQLITE_BUSY, _SQLITE_LOCKED) or "database is locked" in str(original)
