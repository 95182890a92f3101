"""Test configuration shared by the whole suite.

Nothing here imports oauth2_store: under ``--typeguard-packages=oauth2_store`` the package must be
imported after typeguard's import hook is installed, which happens after conftest files load.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import pytest
import typeguard
from hypothesis import HealthCheck, settings

from tests.memcached_server import MemcachedServer
from tests.postgres_server import PostgresServer
from tests.redis_server import RedisCluster, RedisServer, TlsFiles, start_cluster
from tests.support import Figures, Scale

pytest_plugins = ["pytester"]


def _raise_type_error(error: typeguard.TypeCheckError, memo: typeguard.TypeCheckMemo) -> NoReturn:
    """Report an annotation violation as the TypeError a wrong argument type is in Python."""
    raise TypeError(f"typeguard: {error}") from error


# Only has an effect in the typeguard run: uninstrumented code never calls it.
typeguard.config.typecheck_fail_callback = _raise_type_error

# Instrumented code is several times slower, and the machines are shared: no per-example deadline.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-full",
        action="store_true",
        help="run the reliability scenarios at full size (`make reliability`); the default is a bounded size for CI",
    )


@pytest.fixture(scope="session")
def scale(request: pytest.FixtureRequest) -> Scale:
    """The size of the reliability scenarios for this run."""
    return Scale(bool(request.config.getoption("--reliability-full")))


FIGURES = "figures"
"""The user_properties name under which reliability scenarios record their one-line summaries."""


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """Records a one-line summary of what the scenario did and found: printed (visible with -s),
    kept in the test's user_properties (junit XML), and listed at the end of the run."""

    def record(line: str) -> None:
        print(line)
        request.node.user_properties.append((FIGURES, line))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List the figures every reliability scenario recorded, after the test results."""
    lines = [
        f"{report.nodeid}: {value}"
        for reports in terminalreporter.stats.values()
        for report in reports
        if isinstance(report, pytest.TestReport) and report.when == "call"
        for name, value in report.user_properties
        if name == FIGURES
    ]
    if lines:
        terminalreporter.section("reliability figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def memcached() -> Iterator[MemcachedServer]:
    """A memcached server shared by the session: tests use random prefixes and keys, never flush."""
    server = MemcachedServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def memcached_trio() -> Iterator[list[MemcachedServer]]:
    """Three memcached servers, for clients that hash keys over several servers."""
    servers = [MemcachedServer().start() for _ in range(3)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server shared by the session (append-only file on): tests use random prefixes."""
    server = RedisServer().start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def redis_acl_server() -> Iterator[RedisServer]:
    """A redis-server whose default user is off: only the ACL user, with its password, gets in."""
    server = RedisServer(acl=True).start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def redis_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server that speaks TLS only, with a certificate of a throw-away CA."""
    server = RedisServer(tls=TlsFiles(tmp_path_factory.mktemp("tls"))).start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A Redis Cluster of three masters (no replicas), slots split in thirds."""
    cluster = start_cluster(3)
    yield cluster
    for server in cluster.servers:
        server.remove()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server shared by the session (fsync on), with the database ``oauth2_store``:
    tests use their own tables or random keys, and never kill or stop it (start their own for that)."""
    server = PostgresServer().start()
    yield server
    server.remove()


@pytest.fixture
def own_memcached() -> Iterator[MemcachedServer]:
    """A memcached server for one test, which it may kill, freeze or fill."""
    server = MemcachedServer().start()
    yield server
    server.stop()


@pytest.fixture
def plain_http_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the client libraries speak plain HTTP, which they refuse otherwise: the example servers
    listen on 127.0.0.1 only."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
