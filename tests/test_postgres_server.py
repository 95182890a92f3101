"""The PostgreSQL test fixture itself (tests/postgres_server.py), checked with psycopg directly: the
URL's password gets in and no other does, a commit survives a SIGKILL, and dump() shows the data."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.postgres_server import DATABASE, USER, PostgresServer


def test_the_urls_password_connects_and_a_wrong_one_is_refused(postgres_server: PostgresServer) -> None:
    url = make_url(postgres_server.url)
    assert (url.drivername, url.host, url.port, url.username, url.database) == ("postgresql+psycopg", "127.0.0.1", postgres_server.port, USER, DATABASE)
    assert url.password == postgres_server.password
    assert postgres_server.password not in postgres_server.dsn_without_password
    with psycopg.connect(host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database, connect_timeout=5) as connection:
        assert connection.execute("SELECT current_user, current_database()").fetchone() == (USER, DATABASE)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        postgres_server.connect(password=postgres_server.password + "x").close()


def test_dump_contains_a_committed_row(postgres_server: PostgresServer) -> None:
    table, value = f"dump_{secrets.token_hex(4)}", f"value-{secrets.token_hex(8)}"
    with postgres_server.connect() as connection:
        connection.execute(f"CREATE TABLE {table} (value text)")
        connection.execute(f"INSERT INTO {table} VALUES (%s)", (value,))
    dump = postgres_server.dump()
    assert table.encode() in dump
    assert value.encode() in dump
    assert postgres_server.password.encode() not in dump


def test_a_commit_survives_kill_and_restart() -> None:
    server = PostgresServer().start()
    try:
        value = secrets.token_hex(8)
        with server.connect() as connection:
            connection.execute("CREATE TABLE durable (value text)")
            connection.execute("INSERT INTO durable VALUES (%s)", (value,))
        idle = server.connect()  # a session still open at the crash: its backend must exit too
        server.kill()
        assert not server.running
        with pytest.raises(psycopg.OperationalError):
            server.connect().close()
        idle.close()
        server.restart()
        with server.connect() as connection:
            assert connection.execute("SELECT value FROM durable").fetchall() == [(value,)]
        server.stop()
        assert not server.running
        server.restart()
        with server.connect() as connection:
            assert connection.execute("SELECT count(*) FROM durable").fetchone() == (1,)
    finally:
        server.remove()
    assert not server.directory.exists()
