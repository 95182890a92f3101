"""What a caller sees when memcached fails: StoreUnavailableError within the timeout, never a miss,
and a store that works again once the server is back, without being rebuilt."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, StoreUnavailableError
from oauth2_store.store.memcache import MemcacheTokenStore
from tests.memcached_server import MemcachedServer

TIMEOUT = 0.5
"""The client timeout these tests configure; a failing call must give up about as fast."""

GIVE_UP = 5 * TIMEOUT
"""How long a failing call may take at most: connect and read timeouts plus a reconnect try."""

Builder = Callable[[list[str], str], MemcacheTokenStore]

BUILDERS: dict[str, Builder] = {
    "pymemcache": lambda servers, prefix: MemcacheTokenStore(servers=servers, prefix=prefix, connect_timeout=TIMEOUT, timeout=TIMEOUT),
    "python-memcached": lambda servers, prefix: MemcacheTokenStore(servers=servers, prefix=prefix, socket_timeout=TIMEOUT, debug=0),
    "pylibmc": lambda servers, prefix: MemcacheTokenStore(
        servers=servers,
        prefix=prefix,
        binary=True,
        behaviors={
            "connect_timeout": int(TIMEOUT * 1000),
            "receive_timeout": int(TIMEOUT * 1e6),
            "send_timeout": int(TIMEOUT * 1e6),
            "retry_timeout": PYLIBMC_RETRY_TIMEOUT,
            "_poll_timeout": int(TIMEOUT * 1000),
        },
    ),
}

PYLIBMC_RETRY_TIMEOUT = 1
"""pylibmc (libmemcached) keeps a failed server out for this many seconds (1 is its minimum)."""


def _back_in_service(store: MemcacheTokenStore, probe: str = "probe") -> None:
    """Wait until the store reaches its restarted server (the one token ``probe`` hashes to): at
    once, except with pylibmc, which keeps a failed server out for its retry_timeout."""
    deadline = time.monotonic() + (PYLIBMC_RETRY_TIMEOUT + 3 if store.library == "pylibmc" else 0)
    while True:
        try:
            store.fetch_by_token(probe)
        except AccessTokenNotFound:
            return
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling for pylibmc's documented retry window, not a race


@pytest.fixture(params=sorted(BUILDERS))
def build(request: pytest.FixtureRequest) -> Builder:
    builder: Builder = BUILDERS[request.param]
    return builder


@pytest.fixture
def store_on(build: Builder) -> Iterator[Callable[[list[MemcachedServer]], MemcacheTokenStore]]:
    stores: list[MemcacheTokenStore] = []

    def make(servers: list[MemcachedServer]) -> MemcacheTokenStore:
        stores.append(build([server.address for server in servers], f"fail-{secrets.token_hex(4)}"))
        return stores[-1]

    yield make
    for store in stores:
        try:
            store.close()
        except StoreUnavailableError:
            pass


def _token() -> AccessToken:
    return AccessToken(
        "client", "password", f"tok-{secrets.token_hex(8)}", expires_at=int(time.time()) + 600, refresh_token=f"ref-{secrets.token_hex(8)}", user_id="u"
    )


def _every_operation(store: MemcacheTokenStore, token: AccessToken) -> list[Callable[[], Any]]:
    code = AuthorizationCode("client", f"code-{secrets.token_hex(8)}", int(time.time()) + 600, None, [])
    refresh = token.refresh_token or ""
    return [
        lambda: store.save_token(_token()),
        lambda: store.fetch_by_token(token.token),
        lambda: store.fetch_by_refresh_token(refresh),
        lambda: store.fetch_existing_token_of_user("client", "password", "u"),
        lambda: store.delete_refresh_token(refresh),
        lambda: store.save_code(code),
        lambda: store.fetch_by_code(code.code),
        lambda: store.consume_code(code.code),
        lambda: store.delete_code(code.code),
    ]


def _assert_unavailable_fast(operation: Callable[[], Any], server: MemcachedServer, secret: str) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as caught:
        operation()
    assert time.monotonic() - started < GIVE_UP
    assert caught.value.server is not None and str(server.port) in caught.value.server
    assert secret not in str(caught.value)


def test_a_dead_server_is_an_error_and_a_restarted_one_works_again(store_on: Callable[[list[MemcachedServer]], MemcacheTokenStore]) -> None:
    server = MemcachedServer().start()
    try:
        store = store_on([server])
        token = _token()
        store.save_token(token)
        server.kill()
        for operation in _every_operation(store, token):
            _assert_unavailable_fast(operation, server, token.token)
        server.start()  # same port, and empty: memcached keeps nothing across a restart
        _back_in_service(store)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)
        fresh = _token()
        store.save_token(fresh)
        assert store.fetch_by_token(fresh.token) == fresh
    finally:
        server.stop()


def test_a_frozen_server_times_out_and_works_again_when_thawed(store_on: Callable[[list[MemcachedServer]], MemcacheTokenStore]) -> None:
    server = MemcachedServer().start()
    try:
        store = store_on([server])
        token = _token()
        store.save_token(token)
        server.freeze()
        for operation in _every_operation(store, token)[:3]:
            _assert_unavailable_fast(operation, server, token.token)
        server.thaw()
        _back_in_service(store)
        assert store.fetch_by_token(token.token) == token
    finally:
        server.stop()


def test_one_of_three_servers_lost_fails_its_keys_and_only_those(store_on: Callable[[list[MemcachedServer]], MemcacheTokenStore]) -> None:
    servers = [MemcachedServer().start() for _ in range(3)]
    try:
        store = store_on(servers)
        tokens = [_token() for _ in range(30)]
        for token in tokens:
            store.save_token(token)
        lost = servers[1]
        on_lost = {token.token for token in tokens if any(key.endswith(_digest(token.token)) for key in lost.keys())}
        assert 0 < len(on_lost) < len(tokens)
        lost.kill()
        for token in tokens:
            if token.token in on_lost:
                _assert_unavailable_fast(lambda: store.fetch_by_token(token.token), lost, token.token)
            else:
                assert store.fetch_by_token(token.token) == token
        lost.start()
        _back_in_service(store, probe=next(iter(on_lost)))
        for token in tokens:
            if token.token in on_lost:  # the server came back empty: a miss, never a stale record
                with pytest.raises(AccessTokenNotFound):
                    store.fetch_by_token(token.token)
            else:
                assert store.fetch_by_token(token.token) == token
    finally:
        for server in servers:
            server.stop()


def test_consume_code_on_a_dead_server_never_reads_as_already_used(store_on: Callable[[list[MemcachedServer]], MemcacheTokenStore]) -> None:
    server = MemcachedServer().start()
    try:
        store = store_on([server])
        code = AuthorizationCode("client", f"code-{secrets.token_hex(8)}", int(time.time()) + 600, None, [])
        store.save_code(code)
        server.kill()
        for _ in range(3):  # python-memcached and HashClient hide failures on repeated calls: not here
            with pytest.raises(StoreUnavailableError):
                store.consume_code(code.code)
        server.start()
        _back_in_service(store)
        with pytest.raises(AuthCodeNotFound):
            store.consume_code(code.code)
    finally:
        server.stop()


def _digest(secret: str) -> str:
    import hashlib

    return hashlib.sha256(secret.encode()).hexdigest()


def test_pylibmc_ascii_protocol_hides_the_first_failure_as_a_miss() -> None:
    """Pins a limit of pylibmc, documented in the README: with the ASCII protocol (binary=False,
    pylibmc's default) the first read after the server dies answers a miss; later calls raise.
    With binary=True the first read raises too (the tests above)."""
    server = MemcachedServer().start()
    store = MemcacheTokenStore(servers=[server.address], prefix="ascii", behaviors={"connect_timeout": 500, "retry_timeout": 1})
    try:
        token = _token()
        store.save_token(token)
        server.kill()
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)
        with pytest.raises(StoreUnavailableError):
            store.fetch_by_token(token.token)
    finally:
        store.close()
        server.stop()
