"""What a caller sees when memcached fails: StoreUnavailableError within the timeout, never a miss,
and a store that works again once the server is back, without being rebuilt."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient
from pymemcache.client.retrying import RetryingClient

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, StoreUnavailableError
from oauth2_store.store.memcache import MemcacheTokenStore, pymemcache_client
from oauth2_store.store.memcache_clients import _server_name
from tests.memcache_backends import _host_port
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


def _token(user_id: str = "u") -> AccessToken:
    return AccessToken(
        "client",
        "password",
        f"tok-{secrets.token_hex(8)}",
        expires_at=int(time.time()) + 600,
        refresh_token=f"ref-{secrets.token_hex(8)}",
        refresh_expires_at=int(time.time()) + 3600,
        user_id=user_id,
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
        for operation in _every_operation(store, token):
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


@pytest.mark.parametrize("binary", [False, True], ids=["ascii", "binary"])
@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_pylibmc_never_reads_a_failure_as_a_miss(binary: bool, fault: str) -> None:
    """pylibmc answers the first read after a write and a server death or freeze as a miss
    (either protocol); the store reads a miss twice, and the second read raises."""
    server = MemcachedServer().start()
    store = MemcacheTokenStore(
        servers=[server.address], prefix="pylibmc", binary=binary, behaviors={"connect_timeout": 500, "_poll_timeout": 500, "retry_timeout": 1}
    )
    try:
        token = _token()
        code = AuthorizationCode("client", f"code-{secrets.token_hex(8)}", int(time.time()) + 600, None, [])
        store.save_token(token)
        store.save_code(code)
        server.kill() if fault == "kill" else server.freeze()
        with pytest.raises(StoreUnavailableError):
            store.consume_code(code.code)
        with pytest.raises(StoreUnavailableError):
            store.fetch_by_token(token.token)
    finally:
        store.close()
        server.stop()


class LosingProxy:
    """A loopback proxy in front of memcached that loses the reply to the first delete it relays
    (the server did delete): a fault no healthy server produces, made on a real connection."""

    def __init__(self, server: MemcachedServer) -> None:
        self.server = server
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lose_next_delete = True
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.server.port)) as upstream:
            while request := client.recv(65536):
                upstream.sendall(request)
                reply = upstream.recv(65536)
                ends = (b"END\r\n",) if request.startswith(b"get") else (b"\r\n",)
                while not reply.endswith(ends):
                    reply += upstream.recv(65536)
                if request.startswith(b"delete ") and self.lose_next_delete:
                    self.lose_next_delete = False
                    return  # the connection drops with the reply
                client.sendall(reply)

    def close(self) -> None:
        self.listener.close()


def test_a_lost_delete_reply_is_an_error_not_a_used_code_even_through_retrying_client() -> None:
    server = MemcachedServer().start()
    proxy = LosingProxy(server)
    store = MemcacheTokenStore(mc=RetryingClient(Client(("127.0.0.1", proxy.port), timeout=1), attempts=3), prefix="lost")
    try:
        code = AuthorizationCode("client", f"code-{secrets.token_hex(8)}", int(time.time()) + 600, None, [])
        store.save_code(code)
        # Retrying the delete would answer NOT_FOUND and read as "already used": nobody would win.
        with pytest.raises(StoreUnavailableError):
            store.consume_code(code.code)
    finally:
        store.close()
        proxy.close()
        server.stop()


def test_a_failed_save_leaves_no_part_of_the_token_on_the_other_servers() -> None:
    servers = [MemcachedServer().start() for _ in range(3)]
    store = MemcacheTokenStore(servers=[server.address for server in servers], prefix="half", connect_timeout=TIMEOUT, timeout=TIMEOUT)
    try:
        ring = pymemcache_client([server.address for server in servers])  # placed as the store places them
        assert isinstance(ring, HashClient)
        # A user whose entry lives on servers[1], and a token whose own key lives elsewhere.
        user = next(u for u in (f"user-{i}" for i in range(1000)) if _server_of(ring, store._user_key("client", "password", u)) == servers[1].port)
        token = next(
            t
            for t in (_token(user_id=user) for _ in range(1000))
            if _server_of(ring, store._key("t", t.token)) != servers[1].port and _server_of(ring, store._key("r", t.refresh_token or "")) != servers[1].port
        )
        servers[1].kill()
        with pytest.raises(StoreUnavailableError):
            store.save_token(token)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_refresh_token(token.refresh_token or "")
    finally:
        store.close()
        for server in servers:
            server.stop()


def _server_of(ring: HashClient, key: str) -> int:
    client = ring._get_client(key)
    assert client is not None
    return _host_port(_server_name(client.server))[1]
