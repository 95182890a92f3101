"""RedisTokenStore when Redis fails: a killed, frozen, full or restarted server, a lost cluster
node. Every failure is StoreUnavailableError naming the server, never a miss; what was
acknowledged survives a restart."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.error import AccessTokenNotFound, CodeReplayError, RefreshTokenReuseError, StoreUnavailableError
from oauth2_store.store.redis import RedisTokenStore, redis_client, redis_cluster_client
from tests.redis_server import RedisServer, start_cluster

TIMEOUT = 0.5


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server for one test, which it may kill, freeze or restart."""
    server = RedisServer().start()
    yield server
    server.remove()


def _token(lifetime: int = 3600) -> AccessToken:
    now = int(time.time())
    return AccessToken(
        "client",
        "authorization_code",
        f"tok-{secrets.token_hex(12)}",
        expires_at=now + lifetime,
        scopes=["read"],
        refresh_token=f"ref-{secrets.token_hex(12)}",
        refresh_expires_at=now + 30 * 86400,
        user_id=f"user-{secrets.token_hex(4)}",
    )


def _operations(store: RedisTokenStore, token: AccessToken) -> dict[str, Callable[[], object]]:
    code = AuthorizationCode("client", f"code-{secrets.token_hex(8)}", int(time.time()) + 600, "https://app.example/cb", ["read"])
    return {
        "save_token": lambda: store.save_token(_token()),
        "fetch_by_token": lambda: store.fetch_by_token(token.token),
        "fetch_by_refresh_token": lambda: store.fetch_by_refresh_token(token.refresh_token or ""),
        "delete_refresh_token": lambda: store.delete_refresh_token(token.refresh_token or ""),
        "save_code": lambda: store.save_code(code),
        "consume_code": lambda: store.consume_code(code.code),
        "revoke_token": lambda: store.revoke_token(token.token),
        "revoke_user": lambda: store.revoke_user(token.user_id or ""),
    }


def test_a_killed_server_is_unavailable_and_a_restart_keeps_what_was_acknowledged(own_redis: RedisServer) -> None:
    store = RedisTokenStore(redis_client("127.0.0.1", own_redis.port, timeout=TIMEOUT))
    token = _token()
    store.save_token(token)
    own_redis.stop()
    for name, operation in _operations(store, token).items():
        with pytest.raises(StoreUnavailableError) as caught:
            operation()
        assert caught.value.server == own_redis.address, name
        assert token.token not in str(caught.value) and (token.refresh_token or "") not in str(caught.value)
    own_redis.start()  # same port, same directory: the append-only file is read back
    assert store.fetch_by_token(token.token) == token
    assert store.fetch_by_refresh_token(token.refresh_token or "") == token
    store.close()


def test_a_frozen_server_times_out_and_works_again_when_thawed(own_redis: RedisServer) -> None:
    store = RedisTokenStore(redis_client("127.0.0.1", own_redis.port, timeout=TIMEOUT))
    token = _token()
    store.save_token(token)
    own_redis.freeze()
    try:
        slowest = 0.0
        for name, operation in _operations(store, token).items():
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="Timeout"):
                operation()
            slowest = max(slowest, time.monotonic() - started)
            assert slowest < 5 * TIMEOUT, name
    finally:
        own_redis.thaw()
    assert store.fetch_by_token(token.token) == token
    store.close()


def test_a_full_server_refuses_the_save_whole_and_keeps_serving_reads() -> None:
    server = RedisServer(maxmemory_mb=3).start()
    try:
        store = RedisTokenStore(redis_client("127.0.0.1", server.port))
        saved: list[AccessToken] = []
        big = {"blob": "x" * 20_000}
        token = AccessToken("client", "password", "never-saved", scopes=["read"])
        with pytest.raises(StoreUnavailableError, match=r"answered an error \(OutOfMemoryError\)") as caught:
            for _ in range(10_000):  # bounded: 3 MB fill up long before
                token = AccessToken("client", "password", f"tok-{secrets.token_hex(12)}", data=big, scopes=["read"], refresh_token=f"ref-{secrets.token_hex(12)}")
                store.save_token(token)
                saved.append(token)
        assert caught.value.server == server.address
        assert saved, "the server refused the first save: it tested nothing"
        with pytest.raises(AccessTokenNotFound):  # the refused save left nothing usable
            store.fetch_by_token(token.token)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_refresh_token(token.refresh_token or "")
        assert store.fetch_by_token(saved[-1].token) == saved[-1]
        store.close()
    finally:
        server.remove()


def test_a_killed_cluster_node_fails_its_slots_and_leaves_the_others_serving() -> None:
    cluster = start_cluster(3)
    try:
        store = RedisTokenStore(redis_cluster_client([("127.0.0.1", server.port) for server in cluster.servers], timeout=TIMEOUT))
        tokens = [_token() for _ in range(30)]
        for token in tokens:
            store.save_token(token)
        victim = cluster.servers[1]
        victim.stop()
        failed, served = 0, 0
        for token in tokens:
            try:
                assert store.fetch_by_token(token.token) == token
                served += 1
            except StoreUnavailableError as error:
                assert error.server is not None and victim.address in error.server or error.server == store.servers
                failed += 1
        assert failed and served, f"{failed} failed, {served} served: the kill tested nothing"
        store.close()
    finally:
        for server in cluster.servers:
            server.remove()


class LosingProxy:
    """A loopback proxy in front of redis-server that relays bytes both ways, and loses the reply
    to the first ``SET ... NX`` of the key ``needle`` (the server did run it): the connection
    drops with it. A fault no healthy server produces, made on a real connection."""

    def __init__(self, server: RedisServer, needle: bytes) -> None:
        self.server = server
        self.needle = needle
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lost = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        # One request, then its reply: redis-py waits for each reply before its next request.
        with client, socket.create_connection(("127.0.0.1", self.server.port)) as upstream:
            while request := client.recv(65536):
                upstream.sendall(request)
                reply = upstream.recv(65536)
                if self.needle in request and b"\r\nNX\r\n" in request and not self.lost.is_set():
                    self.lost.set()
                    return
                client.sendall(reply)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("marker", ["consumed code", "retired refresh token"])
def test_a_lost_reply_to_a_marker_still_leaves_exactly_one_winner_and_no_replay(own_redis: RedisServer, marker: str) -> None:
    probe = RedisTokenStore(redis_client("127.0.0.1", own_redis.port), prefix="lost")
    token, code = _token(), AuthorizationCode("client", f"code-{secrets.token_hex(8)}", int(time.time()) + 600, None, ["read"])
    marker_key = probe._key("k", code.code) if marker == "consumed code" else probe._key("x", token.refresh_token or "")
    proxy = LosingProxy(own_redis, marker_key.encode())
    store = RedisTokenStore(redis_client("127.0.0.1", proxy.port, timeout=TIMEOUT), prefix="lost")
    try:
        store.save_code(code)
        store.save_token(token)
        if marker == "consumed code":
            assert store.consume_code(code.code) == code  # the marker read back is this call's
            replay: Callable[[], object] = lambda: store.consume_code(code.code)
        else:
            store.delete_refresh_token(token.refresh_token or "")
            with pytest.raises(AccessTokenNotFound):  # rotated: the old access token went with it
                store.fetch_by_token(token.token)
            replay = lambda: store.fetch_by_refresh_token(token.refresh_token or "")
        assert proxy.lost.is_set(), "no reply was lost: the test tested nothing"
        with pytest.raises((CodeReplayError, RefreshTokenReuseError)):
            replay()
    finally:
        store.close()
        probe.close()
        proxy.close()
