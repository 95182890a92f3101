"""One table of memcached client set-ups: every memcache test class runs against each of them."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import memcache
import pylibmc
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient
from pymemcache.client.retrying import RetryingClient

from oauth2_store.clock import Clock, ManualClock
from oauth2_store.store.memcache import MemcacheTokenStore
from oauth2_store.store.memcache_clients import safe_pylibmc_client_class


REISSUE_KEY = secrets.token_bytes(32)
"""The servers' key sealing user entries: every set-up keeps them, as python-oauth2's unique_token needs."""


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


@dataclass(frozen=True)
class Backend:
    """A way to set up a MemcacheTokenStore: from a client object, or from keyword arguments."""

    name: str
    servers: int  # 1: the shared server; 3: the trio
    build: Callable[[Sequence[str], str, Clock], MemcacheTokenStore]

    def make_store(self, addresses: Sequence[str], clock: Clock | None = None) -> MemcacheTokenStore:
        """A store with a fresh random prefix, so tests never see each other's records."""
        return self.build(addresses, f"test-{secrets.token_hex(6)}", clock or ManualClock())


BACKENDS = [
    Backend("pymemcache-built", 1, lambda a, p, c: MemcacheTokenStore(servers=list(a), prefix=p, clock=c, reissue_key=REISSUE_KEY)),
    Backend("pymemcache-built-hash", 3, lambda a, p, c: MemcacheTokenStore(servers=list(a), prefix=p, clock=c, reissue_key=REISSUE_KEY)),
    # default_noreply stays True here: the store must wait for replies anyway.
    Backend("pymemcache-Client", 1, lambda a, p, c: MemcacheTokenStore(mc=Client(_host_port(a[0]), timeout=2), prefix=p, clock=c, reissue_key=REISSUE_KEY)),
    Backend("pymemcache-HashClient", 3, lambda a, p, c: MemcacheTokenStore(mc=HashClient([_host_port(x) for x in a], timeout=2), prefix=p, clock=c, reissue_key=REISSUE_KEY)),
    Backend(
        "pymemcache-RetryingClient",
        1,
        lambda a, p, c: MemcacheTokenStore(mc=RetryingClient(Client(_host_port(a[0]), timeout=2), attempts=2), prefix=p, clock=c, reissue_key=REISSUE_KEY),
    ),
    Backend(
        "pylibmc-built",
        1,
        lambda a, p, c: MemcacheTokenStore(None, p, [a[0]], binary=True, behaviors={"tcp_nodelay": True, "ketama": True}, clock=c, reissue_key=REISSUE_KEY),
    ),
    Backend("pylibmc-mc", 1, lambda a, p, c: MemcacheTokenStore(mc=safe_pylibmc_client_class()([a[0]]), prefix=p, clock=c, reissue_key=REISSUE_KEY)),
    # python-oauth2's documented form: a plain pylibmc.Client, which unpickles; the store must not.
    Backend("pylibmc-plain-mc", 1, lambda a, p, c: MemcacheTokenStore(mc=pylibmc.Client([a[0]], binary=True), prefix=p, clock=c, reissue_key=REISSUE_KEY)),
    Backend("python-memcached-built", 1, lambda a, p, c: MemcacheTokenStore(servers=[a[0]], debug=0, prefix=p, clock=c, reissue_key=REISSUE_KEY)),
    Backend("python-memcached-mc", 3, lambda a, p, c: MemcacheTokenStore(mc=memcache.Client(list(a), debug=0), prefix=p, clock=c, reissue_key=REISSUE_KEY)),
]
