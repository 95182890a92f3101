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
        return sa.create_engine(parsed.set(drivername="postgresql+psycopg"), connect_args={"connect_timeout": max(1, round(timeout))}, pool_size=5, max_overflow=10)
    raise ValueError(f"no SQL store for {backend!r} databases: use sqlite:/// or postgresql://")


def _sqlite_connected(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # WAL: readers never wait for the writer (sqlite3's timeout sets how long a writer waits for
    # another). synchronous=FULL: a committed save survives a power cut, not only a crash.
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=FULL")


def _sqlite_begin(connection: Connection) -> None:
    # Take the write lock at BEGIN: a transaction that reads and then writes cannot lose the lock
    # to another writer halfway (which SQLite answers with SQLITE_BUSY, no waiting).
    connection.exec_driver_sql("BEGIN IMMEDIATE")


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
        self.where = engine.url.render_as_string(hide_password=True)

    def transaction(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in one transaction and commit it; run it again (up to :data:`ATTEMPTS`
        times in all) when the database answers that it must be retried.

        Raises:
            StoreUnavailableError: the database failed, could not be reached, or kept asking for a
                retry; nothing ``work`` wrote is committed.
            Exception: whatever ``work`` raises (after a rollback).
        """
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.engine.begin() as connection:
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

    def upsert(self, table: sa.Table, values: Mapping[str, object], keys: Sequence[str]) -> sa.Executable:
        """An ``INSERT`` of ``values`` that replaces the row with the same ``keys`` columns."""
        insert = (postgresql_dialect.insert if self.dialect == "postgresql" else sqlite_dialect.insert)(table).values(dict(values))
        return insert.on_conflict_do_update(index_elements=list(keys), set_={name: insert.excluded[name] for name in values if name not in keys})

    def insert_if_absent(self, table: sa.Table, values: Mapping[str, object], keys: Sequence[str]) -> sa.Executable:
        """An ``INSERT`` of ``values`` that does nothing if a row with the same ``keys`` exists."""
        insert = (postgresql_dialect.insert if self.dialect == "postgresql" else sqlite_dialect.insert)(table).values(dict(values))
        return insert.on_conflict_do_nothing(index_elements=list(keys))

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
