"""What a caller sees when memcached fails: StoreUnavailableError within the timeout, never a miss,
and a store that works again once the server is back, without being rebuilt.

Reliability scenarios (issue 7), with test_reliability_faults.py: real servers killed, frozen,
and proxied; shared helpers are in tests/memcache_faults.py."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable

import pytest
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient
from pymemcache.client.retrying import RetryingClient

from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, CodeReplayError, GrantRevokedError, StoreUnavailableError
from oauth2_store.store.memcache import MemcacheTokenStore, pymemcache_client
from tests.memcache_faults import (
    GIVE_UP,
    TIMEOUT,
    StoreOn,
    assert_unavailable_fast,
    back_in_service,
    every_operation,
    make_code,
    make_token,
    pylibmc_store,
    store_on,  # noqa: F401  (a fixture)
)
from tests.memcached_server import MemcachedServer
from tests.support import Figures
from tests.memcache_backends import REISSUE_KEY

pytestmark = pytest.mark.reliability


def test_a_dead_server_is_an_error_and_a_restarted_one_works_again(store_on: StoreOn, figures: Figures) -> None:
    server = MemcachedServer().start()
    try:
        store = store_on([server])
        token = make_token()
        store.save_token(token)
        server.kill()
        operations = every_operation(store, token)
        elapsed = {name: assert_unavailable_fast(operation, server, token.token) for name, operation in operations.items()}
        figures(f"{store.library}, server killed: {_slowest(elapsed)}")
        server.start()  # same port, and empty: memcached keeps nothing across a restart
        back_in_service(store)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)
        fresh = make_token()
        store.save_token(fresh)
        assert store.fetch_by_token(fresh.token) == fresh
    finally:
        server.stop()


def test_a_frozen_server_times_out_and_works_again_when_thawed(store_on: StoreOn, figures: Figures) -> None:
    server = MemcachedServer().start()
    try:
        store = store_on([server])
        token = make_token()
        store.save_token(token)
        server.freeze()
        operations = every_operation(store, token)
        elapsed = {name: assert_unavailable_fast(operation, server, token.token) for name, operation in operations.items()}
        server.thaw()
        back_in_service(store)
        assert store.fetch_by_token(token.token) == token
        figures(f"{store.library}, server frozen (SIGSTOP): {_slowest(elapsed)}; after SIGCONT the token reads back")
    finally:
        server.stop()


def test_a_user_entry_that_outlived_its_access_key_is_a_miss(store_on: StoreOn, memcached: MemcachedServer) -> None:
    """A server restarted empty, or evicting, can lose a token's access key while its user entry
    (on another server, or not evicted) survives: fetch_existing_token_of_user must not hand out a
    token that fetch_by_token no longer finds."""
    store = store_on([memcached])
    token = make_token(user_id=f"user-{secrets.token_hex(4)}")
    store.save_token(token)
    assert memcached.command(f"delete {store._key('t', token.token)}\r\n".encode()) == b"DELETED\r\n"
    assert store.fetch_by_refresh_token(token.refresh_token or "") == token
    with pytest.raises(AccessTokenNotFound):
        store.fetch_existing_token_of_user(token.client_id, token.grant_type, token.user_id)


def _slowest(elapsed: dict[str, float]) -> str:
    """``elapsed`` (seconds per operation) as a figure: how many failed, and the slowest."""
    name = max(elapsed, key=elapsed.__getitem__)
    return f"{len(elapsed)} operations each raised StoreUnavailableError, slowest {name} {elapsed[name]:.2f} s (timeout {TIMEOUT} s, limit {GIVE_UP} s)"


def test_consume_code_on_a_dead_server_never_reads_as_already_used(store_on: StoreOn) -> None:
    server = MemcachedServer().start()
    try:
        store = store_on([server])
        code = make_code()
        store.save_code(code)
        server.kill()
        for _ in range(3):  # python-memcached and HashClient hide failures on repeated calls: not here
            with pytest.raises(StoreUnavailableError):
                store.consume_code(code.code)
        server.start()
        back_in_service(store)
        with pytest.raises(AuthCodeNotFound):
            store.consume_code(code.code)
    finally:
        server.stop()


@pytest.mark.parametrize("binary", [False, True], ids=["ascii", "binary"])
@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_pylibmc_never_reads_a_failure_as_a_miss(binary: bool, fault: str) -> None:
    """pylibmc answers the first read after a write and a server death or freeze as a miss
    (either protocol); the store reads a miss twice, and the second read raises."""
    server = MemcachedServer().start()
    store = pylibmc_store([server.address], "pylibmc", binary=binary)
    try:
        token = make_token()
        code = make_code()
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


@pytest.mark.parametrize("binary", [False, True], ids=["ascii", "binary"])
@pytest.mark.parametrize("operation", ["save_token", "delete_code"])
def test_pylibmc_writes_alone_reach_a_restarted_server_after_the_retry_timeout(binary: bool, operation: str) -> None:
    """libmemcached (binary protocol) retries a failed server on reads only: a store that only
    writes or deletes after an outage would raise StoreUnavailableError forever. The store makes
    writes and deletes reach the server again after retry_timeout, like reads. The ASCII protocol
    retries on writes by itself; it runs too, so neither protocol regresses."""
    server = MemcachedServer().start()
    store = pylibmc_store([server.address], "pylibmc", binary=binary)
    writes: dict[str, Callable[[], None]] = {"save_token": lambda: store.save_token(make_token()), "delete_code": lambda: store.delete_code("code")}
    write = writes[operation]
    try:
        write()
        server.kill()
        with pytest.raises(StoreUnavailableError):
            write()
        server.start()
        back_in_service(store, call=write)  # raises if writes never reach the restarted server
    finally:
        store.close()
        server.stop()


class LosingProxy:
    """A loopback proxy in front of memcached that loses the reply to the first ``command`` it
    relays (the server did run it): a fault no healthy server produces, made on a real connection."""

    def __init__(self, server: MemcachedServer, command: bytes = b"delete ") -> None:
        self.server = server
        self.command = command
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lose_next = True
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
                if request.startswith(self.command) and self.lose_next:
                    self.lose_next = False
                    return  # the connection drops with the reply
                client.sendall(reply)

    def close(self) -> None:
        self.listener.close()


def test_a_lost_reply_to_the_consumed_marker_still_hands_the_code_to_its_winner_even_through_retrying_client() -> None:
    server = MemcachedServer().start()
    proxy = LosingProxy(server, b"add lost:k:")  # the consumed marker's add, not the grant's
    store = MemcacheTokenStore(mc=RetryingClient(Client(("127.0.0.1", proxy.port), timeout=1), attempts=3), prefix="lost")
    try:
        code = make_code()
        store.save_code(code)
        # Retrying the add would answer NOT_STORED and read as a replay: the caller would be told
        # the code was used by someone else, and the grant revoked. The store reads its marker
        # back instead, and finds its own nonce.
        assert store.consume_code(code.code) == code
        assert not proxy.lose_next, "no reply was lost: the test tested nothing"
        with pytest.raises(CodeReplayError):
            store.consume_code(code.code)
    finally:
        store.close()
        proxy.close()
        server.stop()


def test_a_lost_reply_to_the_code_delete_still_hands_the_code_out_once() -> None:
    server = MemcachedServer().start()
    proxy = LosingProxy(server, b"delete ")
    store = MemcacheTokenStore(mc=RetryingClient(Client(("127.0.0.1", proxy.port), timeout=1), attempts=3), prefix="lost")
    try:
        code = make_code()
        store.save_code(code)
        assert store.consume_code(code.code) == code  # the marker decided: this caller won
        with pytest.raises(CodeReplayError):
            store.consume_code(code.code)
    finally:
        store.close()
        proxy.close()
        server.stop()


def test_a_failed_save_leaves_no_part_of_the_token_on_the_other_servers() -> None:
    servers = [MemcachedServer().start() for _ in range(3)]
    store = MemcacheTokenStore(servers=[server.address for server in servers], prefix="half", connect_timeout=TIMEOUT, timeout=TIMEOUT, reissue_key=REISSUE_KEY)
    try:
        ring = pymemcache_client([server.address for server in servers])  # placed as the store places them
        assert isinstance(ring, HashClient)
        lost = servers[1].address
        # A user whose entry lives on servers[1] (with a client and user whose epochs do not),
        # and a token whose own key lives elsewhere.
        client, user = next(
            (client, user)
            for client, user in ((f"client-{i % 30}", f"user-{i}") for i in range(3000))
            if ring.hasher.get_node(store._user_key(client, "password", user)) == lost
            and lost not in [ring.hasher.get_node(key) for key in store._epoch_keys(client, user)]
        )
        token = next(
            t
            for t in (make_token(user_id=user, client_id=client) for _ in range(5000))
            # Every other key its save and reads touch (grant entry, retired marker) elsewhere too.
            if lost
            not in [
                ring.hasher.get_node(key)
                for key in [
                    store._key("t", t.token),
                    store._key("r", t.refresh_token or ""),
                    store._key("x", t.refresh_token or ""),
                    store._grant_key(t.grant_id),
                ]
            ]
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


def test_an_evicted_index_entry_epoch_or_marker_never_lets_more_through_than_the_readme_bounds(memcached: MemcachedServer) -> None:
    """What memcached evicting one lifecycle key can let through (README, Token lifecycle): a lost
    user index, only the revoked user's access tokens, until their own expiry, and a
    verify_grants store refuses them; a lost grant entry or epoch refuses its refresh tokens and
    saves into it; a lost consumed marker leaves a replayed code refused (its key is gone)."""
    prefix = f"evict-{secrets.token_hex(4)}"
    store = MemcacheTokenStore(servers=[memcached.address], prefix=prefix)
    verifying = MemcacheTokenStore(servers=[memcached.address], prefix=prefix, verify_grants=True)

    def evict(key: str) -> None:
        assert memcached.command(f"delete {key}\r\n".encode()) == b"DELETED\r\n"

    try:
        index_lost, entry_lost, epoch_lost = (make_token(user_id=f"user-{secrets.token_hex(4)}") for _ in range(3))
        for token in (index_lost, entry_lost, epoch_lost):
            store.save_token(token)

        evict(store._key("i", f"u:{index_lost.user_id}"))
        store.revoke_user(index_lost.user_id or "")
        assert store.fetch_by_token(index_lost.token) == index_lost  # let through ...
        ttl = memcached.ttl(store._key("t", index_lost.token))
        assert ttl is not None and 0 < ttl <= (index_lost.expires_at or 0) - int(time.time()) + 2  # ... until its expiry
        with pytest.raises(AccessTokenNotFound):
            verifying.fetch_by_token(index_lost.token)
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_refresh_token(index_lost.refresh_token or "")

        evict(store._grant_key(entry_lost.grant_id))
        evict(store._epoch_keys(epoch_lost.client_id, epoch_lost.user_id)[1])
        for token in (entry_lost, epoch_lost):
            with pytest.raises(AccessTokenNotFound):
                store.fetch_by_refresh_token(token.refresh_token or "")
            with pytest.raises(AccessTokenNotFound):
                verifying.fetch_by_token(token.token)
        store.revoke_grant(entry_lost.grant_id)  # an operator revokes it: remembered without its entry
        for token in (entry_lost, epoch_lost):
            with pytest.raises(GrantRevokedError):
                store.save_token(token)

        code = make_code()
        store.save_code(code)
        assert store.consume_code(code.code) == code
        evict(store._key("k", code.code))
        with pytest.raises(AuthCodeNotFound):
            store.consume_code(code.code)
    finally:
        store.close()
        verifying.close()
