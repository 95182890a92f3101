"""The SQL stores on SQLite files and on a real PostgreSQL: the conformance suite, the schema, and
what a dump of the database holds."""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from oauth2_store import AccessToken, AuthorizationCode, Client
from oauth2_store.cli import main
from oauth2_store.clock import ManualClock
from oauth2_store.error import AccessTokenNotFound, ClientNotFoundError, RefreshTokenReuseError, StoreUnavailableError
from oauth2_store.store import sql
from oauth2_store.store.sql import SqlClientStore, SqlTokenStore, migrate, sql_engine
from oauth2_store.store.sql_schema import SCHEMA_VERSION, SqlSchema
from oauth2_store.testing import LifecycleTokenStoreContract
from oauth2_store.urls import open_store
from tests.memcache_backends import REISSUE_KEY
from tests.memcached_server import free_port
from tests.postgres_server import PostgresServer
from tests.test_client_secrets import HashingClientStoreContract, _add_all

DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="module")
def postgres_engine(postgres_server: PostgresServer) -> Iterator[Engine]:
    engine = sql_engine(postgres_server.url)
    yield engine
    engine.dispose()


def _engine(database: str, request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """A fresh SQLite file's engine, or the module's PostgreSQL engine (stores there get a table
    prefix of their own)."""
    if database == "postgresql":
        engine: Engine = request.getfixturevalue("postgres_engine")
        return engine
    return sql_engine(f"sqlite:///{tmp_path / f'{secrets.token_hex(4)}.db'}")


def _prefix() -> str:
    return f"t{secrets.token_hex(6)}"


class TestSqlTokenStore(LifecycleTokenStoreContract):
    """The whole conformance suite on a SQLite file and on PostgreSQL."""

    racing_threads = 8

    @pytest.fixture(autouse=True, params=DATABASES)
    def _database(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
        self.engine = _engine(request.param, request, tmp_path)
        self.stores: list[SqlTokenStore] = []
        yield
        if request.param == "sqlite":
            self.engine.dispose()

    def make_store(self, clock: ManualClock) -> SqlTokenStore:
        store = SqlTokenStore(self.engine, _prefix(), clock=clock, reissue_key=REISSUE_KEY)
        self.stores.append(store)
        return store


class TestSqlClientStore(HashingClientStoreContract):
    @pytest.fixture(autouse=True, params=DATABASES)
    def _database(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.engine = _engine(request.param, request, tmp_path)

    def make_client_store(self, clients: Sequence[Client]) -> SqlClientStore:
        store = SqlClientStore(self.engine, _prefix())
        _add_all(store, clients)
        return store


@pytest.fixture(params=DATABASES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    return _engine(request.param, request, tmp_path)


def _lifecycle(store: SqlTokenStore, clients: SqlClientStore) -> tuple[list[str], AccessToken]:
    """Save a client, a code, consume it, save its token, rotate it once: every kind of row. The
    secrets of it all, and the token that is live at the end."""
    client_secret = f"client-secret-{secrets.token_hex(8)}"
    clients.add_client("client", client_secret, ["https://a.example/cb"])
    code = AuthorizationCode("client", f"code-{secrets.token_hex(8)}", 2**40, None, ["read"], user_id="user-1")
    store.save_code(code)
    store.consume_code(code.code)
    first = AccessToken("client", "authorization_code", f"tok-{secrets.token_hex(8)}", {}, 2**40, f"ref-{secrets.token_hex(8)}", ["read"], user_id="user-1", grant_id=code.grant_id)
    store.save_token(first)
    assert first.refresh_token is not None
    store.delete_refresh_token(first.refresh_token)
    second = AccessToken("client", "authorization_code", f"tok-{secrets.token_hex(8)}", {}, 2**40, f"ref-{secrets.token_hex(8)}", ["read"], user_id="user-1", grant_id=code.grant_id)
    store.save_token(second)
    assert second.refresh_token is not None
    return [client_secret, code.code, first.token, first.refresh_token, second.token, second.refresh_token], second


def test_a_sqlite_file_holds_no_secret_that_was_saved(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    engine = sql_engine(f"sqlite:///{path}")
    store, clients = SqlTokenStore(engine, reissue_key=REISSUE_KEY), SqlClientStore(engine)
    saved, live = _lifecycle(store, clients)
    assert store.fetch_by_token(live.token) == live
    engine.dispose()  # checkpoints the WAL into the file
    contents = b"".join(file.read_bytes() for file in tmp_path.iterdir())
    assert contents  # the database is there, in the file and its WAL
    for secret in saved:
        assert secret.encode() not in contents


def test_a_postgres_dump_holds_no_secret_that_was_saved(postgres_server: PostgresServer, postgres_engine: Engine) -> None:
    prefix = _prefix()
    store, clients = SqlTokenStore(postgres_engine, prefix, reissue_key=REISSUE_KEY), SqlClientStore(postgres_engine, prefix)
    saved, live = _lifecycle(store, clients)
    assert store.fetch_by_token(live.token) == live
    dump = postgres_server.dump()
    assert f"{prefix}_tokens".encode() in dump
    for secret in saved:
        assert secret.encode() not in dump


def test_rows_are_keyed_by_digests_and_hold_sealed_records(engine: Engine) -> None:
    prefix = _prefix()
    store = SqlTokenStore(engine, prefix)
    token = AccessToken("client", "authorization_code", f"tok-{secrets.token_hex(8)}", {}, 2**40, f"ref-{secrets.token_hex(8)}", ["read"])
    store.save_token(token)
    schema = SqlSchema(prefix)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(schema.tokens.c.digest, schema.tokens.c.record)).all()
    assert len(rows) == 1
    digest, record = rows[0]
    assert len(digest) == 32 and bytes(record).startswith(b"sealed:1:")


def test_token_lookup_is_an_index_lookup(engine: Engine) -> None:
    prefix = _prefix()
    SqlTokenStore(engine, prefix).save_token(AccessToken("client", "password", f"tok-{secrets.token_hex(8)}"))
    schema = SqlSchema(prefix)
    query = sa.select(schema.tokens.c.record).where(schema.tokens.c.digest == b"\x01" * 32)
    compiled = query.compile(engine)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params.values())))
            assert "USING INDEX" in plan or "USING PRIMARY KEY" in plan, plan
        else:
            connection.exec_driver_sql("SET enable_seqscan = off")  # a near-empty table would be scanned anyway
            plan = " ".join(str(row[0]) for row in connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params))
            assert "Index" in plan, plan


def test_a_newer_schema_is_refused_and_left_as_it_is(engine: Engine) -> None:
    prefix = _prefix()
    assert migrate(engine, prefix) == SCHEMA_VERSION
    schema = SqlSchema(prefix)
    with engine.begin() as connection:
        connection.execute(schema.version.update().values(version=SCHEMA_VERSION + 1))
    with pytest.raises(StoreUnavailableError, match="newer than this release"):
        SqlTokenStore(engine, prefix).fetch_by_token("anything")
    with engine.connect() as connection:
        assert connection.execute(sa.select(schema.version.c.version)).scalar() == SCHEMA_VERSION + 1


def test_purge_deletes_expired_rows_and_keeps_live_ones(engine: Engine) -> None:
    clock = ManualClock(1_000_000)
    store = SqlTokenStore(engine, _prefix(), clock=clock)
    short = [AccessToken("client", "password", f"tok-{secrets.token_hex(8)}", {}, 1_000_100, scopes=["read"]) for _ in range(5)]
    long = AccessToken("client", "password", f"tok-{secrets.token_hex(8)}", {}, 1_900_000)
    for token in [*short, long]:
        store.save_token(token)
    assert store.purge() == 0
    clock.advance(200)
    assert store.purge(limit=2) == 4  # 2 tokens and 2 of their grants
    assert store.purge() == 6
    assert store.fetch_by_token(long.token) == long


def test_sql_engine_refuses_what_it_cannot_store_in() -> None:
    for url in ("sqlite://", "sqlite:///:memory:", "mysql://h/db", "postgresql+psycopg2://h/db", "not a url"):
        with pytest.raises(ValueError):
            sql_engine(url)


def test_a_postgres_failure_names_the_database_without_its_password(postgres_server: PostgresServer) -> None:
    url = postgres_server.url.replace(f":{postgres_server.port}/", f":{free_port()}/")  # nothing listens there
    store = SqlTokenStore(sql_engine(url, timeout=1), _prefix())
    with pytest.raises(StoreUnavailableError) as caught:
        store.fetch_by_token("anything")
    assert postgres_server.password not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    SqlTokenStore(sql_engine(f"sqlite:///{path}")).save_token(AccessToken("client", "password", "tok"))
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_sql_urls_open_a_working_store(tmp_path: Path, postgres_server: PostgresServer) -> None:
    for url in (f"sqlite:///{tmp_path / 'url.db'}?prefix=url_store&timeout=2", f"{postgres_server.url}?prefix={_prefix()}"):
        store = open_store(url)
        assert isinstance(store, SqlTokenStore)
        token = AccessToken("client", "password", f"tok-{secrets.token_hex(8)}")
        store.save_token(token)
        assert store.fetch_by_token(token.token) == token
        store.close()


def test_sql_urls_refuse_bad_options_without_showing_the_password(tmp_path: Path) -> None:
    password = "pw-secret-%40x"
    for url, message in (
        (f"sqlite:///{tmp_path / 'a.db'}?prefix=Bad-Prefix", "table prefix"),
        (f"sqlite:///{tmp_path / 'a.db'}?verify_grants=true", "unknown option"),
        ("sqlite:///:memory:", "file"),
        (f"postgresql://user:{password}@127.0.0.1/db?timeout=0", "timeout"),
    ):
        with pytest.raises(ValueError, match=message) as caught:
            open_store(url)
        assert "pw-secret" not in str(caught.value)


def test_migrate_and_purge_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["migrate", url]) == 0
    assert f"schema version {SCHEMA_VERSION} under prefix oauth2" in capsys.readouterr().out
    # Saved by a store whose clock is 100 s behind: live for it, expired for the command.
    past = int(time.time()) - 100
    store = SqlTokenStore(sql_engine(url), clock=ManualClock(past))
    for _ in range(3):
        store.save_token(AccessToken("client", "password", f"tok-{secrets.token_hex(8)}", {}, past + 10))
    store.close()
    assert main(["purge", url, "--batch", "2"]) == 0
    assert capsys.readouterr().out.startswith("deleted 6 expired rows under prefix oauth2")  # 3 tokens, 3 grants
    assert main(["purge", "memory://"]) == 1
    assert "is for SQL stores" in capsys.readouterr().err


def test_saves_purge_expired_rows_now_and_then(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "PURGE_EVERY", 4)
    clock = ManualClock(1_000_000)
    prefix = _prefix()
    store = SqlTokenStore(engine, prefix, clock=clock)
    for _ in range(3):
        store.save_token(AccessToken("client", "password", f"tok-{secrets.token_hex(8)}", {}, 1_000_010))
    clock.advance(20)
    schema = SqlSchema(prefix)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(schema.tokens)).scalar() == 3
    store.save_token(AccessToken("client", "password", f"tok-{secrets.token_hex(8)}", {}, 1_000_100))  # the 4th save purges
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(schema.tokens)).scalar() == 1
        assert connection.execute(sa.select(sa.func.count()).select_from(schema.grants)).scalar() == 1


def test_a_token_saved_again_for_another_user_is_no_longer_the_first_users_latest(engine: Engine) -> None:
    store = SqlTokenStore(engine, _prefix(), reissue_key=REISSUE_KEY)
    token = AccessToken("client", "password", f"tok-{secrets.token_hex(8)}", user_id="alice")
    store.save_token(token)
    store.save_token(attrs.evolve(token, user_id="bob"))
    with pytest.raises(AccessTokenNotFound):
        store.fetch_existing_token_of_user("client", "password", "alice")
    assert store.fetch_existing_token_of_user("client", "password", "bob").user_id == "bob"


def test_rotating_an_older_refresh_token_keeps_the_token_saved_again_with_a_new_one(engine: Engine) -> None:
    store = SqlTokenStore(engine, _prefix())
    first = AccessToken("client", "password", f"tok-{secrets.token_hex(8)}", {}, 2**40, f"ref-{secrets.token_hex(8)}", grant_id="g-shared")
    again = attrs.evolve(first, refresh_token=f"ref-{secrets.token_hex(8)}")
    store.save_token(first)
    store.save_token(again)
    assert first.refresh_token is not None
    store.delete_refresh_token(first.refresh_token)
    assert store.fetch_by_token(first.token) == again


def test_a_retired_refresh_token_saved_again_stays_retired(engine: Engine) -> None:
    """Its row is the reuse marker: a save naming it again cannot make it work again."""
    store = SqlTokenStore(engine, _prefix())
    token = AccessToken("client", "password", f"tok-{secrets.token_hex(8)}", {}, 2**40, f"ref-{secrets.token_hex(8)}")
    store.save_token(token)
    assert token.refresh_token is not None
    store.delete_refresh_token(token.refresh_token)
    store.save_token(attrs.evolve(token, token=f"tok-{secrets.token_hex(8)}"))
    with pytest.raises(RefreshTokenReuseError):
        store.fetch_by_refresh_token(token.refresh_token)


def test_ids_any_record_allows_and_lookups_no_record_can_match(engine: Engine) -> None:
    """NUL in a user or client id (PostgreSQL's text refuses it) is stored; a lone surrogate or
    NUL in a lookup finds nothing instead of failing."""
    store, clients = SqlTokenStore(engine, _prefix()), SqlClientStore(engine, _prefix())
    token = AccessToken("client\x00x", "password", f"tok-{secrets.token_hex(8)}", {}, 2**40, user_id="user\x00é")
    store.save_token(token)
    assert store.fetch_by_token(token.token) == token
    for odd in ("a\x00b", "\ud800"):
        with pytest.raises(ClientNotFoundError):
            clients.fetch_by_client_id(odd)
        store.revoke_user(odd, odd)
        store.revoke_client(odd)
        store.revoke_grant(odd)
    store.revoke_user("user\x00é")
    with pytest.raises(AccessTokenNotFound):
        store.fetch_by_token(token.token)


def test_reads_take_no_write_lock_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = SqlTokenStore(sql_engine(f"sqlite:///{path}", timeout=0.2))
    token = AccessToken("client", "password", f"tok-{secrets.token_hex(8)}", {}, 2**40)
    store.save_token(token)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
        assert store.fetch_by_token(token.token) == token
        with pytest.raises(StoreUnavailableError):
            store.save_token(attrs.evolve(token, token=f"tok-{secrets.token_hex(8)}"))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        store.close()


def test_a_password_in_the_query_string_is_not_in_errors(postgres_server: PostgresServer) -> None:
    url = f"postgresql://oauth2@127.0.0.1:{free_port()}/db?password=hunter2-query-secret"
    with pytest.raises(StoreUnavailableError) as caught:
        SqlTokenStore(sql_engine(url, timeout=1), _prefix()).fetch_by_token("anything")
    assert "hunter2" not in str(caught.value)


def test_processes_starting_together_on_an_empty_database_all_work(postgres_server: PostgresServer) -> None:
    """Each with its own engine (its own connections), the first calls at once: the tables are
    created once, and no call fails."""
    prefix, errors = _prefix(), []
    start = threading.Barrier(4)

    def first_call() -> None:
        engine = sql_engine(postgres_server.url)
        try:
            store = SqlTokenStore(engine, prefix)
            start.wait(timeout=30)
            with pytest.raises(AccessTokenNotFound):
                store.fetch_by_token("anything")
        except BaseException as error:  # reported below
            errors.append(f"{type(error).__name__}: {error}")
        finally:
            engine.dispose()

    threads = [threading.Thread(target=first_call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
