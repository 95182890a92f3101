"""Helpers shared by the fault tests (test_memcache_failures.py, test_reliability_faults.py): the
client set-ups with short timeouts, the ``store_on`` fixture, and what a failing call must look like.

Test modules import the ``store_on`` fixture from here by name (pytest finds fixtures in a test
module's namespace); conftest.py cannot hold it, since it must not import oauth2_store before
typeguard's import hook is installed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.error import AccessTokenNotFound, StoreUnavailableError
from oauth2_store.store.memcache import MemcacheTokenStore
from tests.memcached_server import MemcachedServer
from tests.memcache_backends import REISSUE_KEY

TIMEOUT = 0.5
"""The client timeout these tests configure; a failing call must give up about as fast."""

GIVE_UP = 5 * TIMEOUT
"""How long a failing call may take at most: connect and read timeouts plus a reconnect try."""

PYLIBMC_RETRY_TIMEOUT = 1
"""pylibmc (libmemcached) keeps a failed server out for this many seconds (1 is its minimum)."""

Builder = Callable[[list[str], str], MemcacheTokenStore]


def pylibmc_store(servers: list[str], prefix: str, binary: bool = True) -> MemcacheTokenStore:
    """A pylibmc store with TIMEOUT and PYLIBMC_RETRY_TIMEOUT, over either protocol."""
    return MemcacheTokenStore(
        servers=servers,
        prefix=prefix,
        reissue_key=REISSUE_KEY,
        binary=binary,
        behaviors={
            "connect_timeout": int(TIMEOUT * 1000),
            "receive_timeout": int(TIMEOUT * 1e6),
            "send_timeout": int(TIMEOUT * 1e6),
            "retry_timeout": PYLIBMC_RETRY_TIMEOUT,
            "_poll_timeout": int(TIMEOUT * 1000),
        },
    )


BUILDERS: dict[str, Builder] = {
    "pymemcache": lambda servers, prefix: MemcacheTokenStore(servers=servers, prefix=prefix, connect_timeout=TIMEOUT, timeout=TIMEOUT, reissue_key=REISSUE_KEY),
    "python-memcached": lambda servers, prefix: MemcacheTokenStore(servers=servers, prefix=prefix, socket_timeout=TIMEOUT, debug=0, reissue_key=REISSUE_KEY),
    "pylibmc": pylibmc_store,
}
"""The store built by each client library, with TIMEOUT, over the given servers."""

StoreOn = Callable[[list[MemcachedServer]], MemcacheTokenStore]


@pytest.fixture(params=sorted(BUILDERS))
def store_on(request: pytest.FixtureRequest) -> Iterator[StoreOn]:
    """Builds a store of each client library (one test per library) over the given servers, with
    a fresh prefix; closes every store it built after the test."""
    build = BUILDERS[request.param]
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


def back_in_service(store: MemcacheTokenStore, probe: str = "probe", call: Callable[[], object] | None = None) -> None:
    """Wait until the store reaches its restarted server: until ``call`` (default: a lookup of
    token ``probe``, on the server it hashes to) stops raising StoreUnavailableError. At once,
    except with pylibmc, which keeps a failed server out for its retry_timeout.

    Raises:
        StoreUnavailableError: still unreachable once pylibmc's retry window has long passed.
    """
    deadline = time.monotonic() + (PYLIBMC_RETRY_TIMEOUT + 3 if store.library == "pylibmc" else 0)
    while True:
        try:
            if call is None:
                store.fetch_by_token(probe)
            else:
                call()
            return
        except AccessTokenNotFound:
            return
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling for pylibmc's documented retry window, not a race


def make_token(user_id: str = "u", client_id: str = "client") -> AccessToken:
    """A fresh token with a refresh token, live for ten minutes (refresh: an hour), starting its own grant."""
    return AccessToken(
        client_id,
        "password",
        f"tok-{secrets.token_hex(8)}",
        expires_at=int(time.time()) + 600,
        refresh_token=f"ref-{secrets.token_hex(8)}",
        refresh_expires_at=int(time.time()) + 3600,
        user_id=user_id,
    )


def make_code(client_id: str = "client") -> AuthorizationCode:
    """A fresh authorization code, live for ten minutes, starting its own grant."""
    return AuthorizationCode(client_id, f"code-{secrets.token_hex(8)}", int(time.time()) + 600, None, [])


def every_operation(store: MemcacheTokenStore, token: AccessToken) -> dict[str, Callable[[], Any]]:
    """Every operation of the store, by name, on ``token`` and a fresh code."""
    code = make_code()
    refresh = token.refresh_token or ""
    return {
        "save_token": lambda: store.save_token(make_token()),
        "fetch_by_token": lambda: store.fetch_by_token(token.token),
        "fetch_by_refresh_token": lambda: store.fetch_by_refresh_token(refresh),
        "fetch_existing_token_of_user": lambda: store.fetch_existing_token_of_user("client", "password", "u"),
        "delete_refresh_token": lambda: store.delete_refresh_token(refresh),
        "revoke_token": lambda: store.revoke_token(refresh),
        "save_code": lambda: store.save_code(code),
        "fetch_by_code": lambda: store.fetch_by_code(code.code),
        "consume_code": lambda: store.consume_code(code.code),
        "delete_code": lambda: store.delete_code(code.code),
    }


def assert_unavailable_fast(operation: Callable[[], Any], server: MemcachedServer, secret: str) -> float:
    """Assert ``operation`` raises StoreUnavailableError naming ``server`` (and not ``secret``)
    within GIVE_UP; return how long it took, in seconds."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as caught:
        operation()
    elapsed = time.monotonic() - started
    assert elapsed < GIVE_UP
    assert caught.value.server is not None and str(server.port) in caught.value.server
    assert secret not in str(caught.value)
    return elapsed


def token_lookups(store: MemcacheTokenStore, token: AccessToken) -> dict[str, Callable[[], AccessToken]]:
    """The three ways to find ``token``: by access token, by refresh token, as its user's latest."""
    return {
        "access": lambda: store.fetch_by_token(token.token),
        "refresh": lambda: store.fetch_by_refresh_token(token.refresh_token or ""),
        "user": lambda: store.fetch_existing_token_of_user(token.client_id, token.grant_type, token.user_id),
    }
