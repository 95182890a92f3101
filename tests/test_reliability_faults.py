"""Reliability under faults (issue 7): real memcached processes killed, restarted empty, lost from a
ring of three, and filled up, while stores use them. What a caller sees must be what the README
says: StoreUnavailableError within the timeout, misses for what a server lost, never a wrong,
stale or partial record, and the same store working again once the server is back."""

from __future__ import annotations

import pytest

from oauth2_store.error import AccessTokenNotFound
from tests.memcache_faults import (
    StoreOn,
    assert_unavailable_fast,
    back_in_service,
    digest,
    make_token,
    store_on,  # noqa: F401  (a fixture)
)
from tests.memcached_server import MemcachedServer

pytestmark = pytest.mark.reliability


def test_one_of_three_servers_lost_fails_its_keys_and_only_those(store_on: StoreOn) -> None:
    servers = [MemcachedServer().start() for _ in range(3)]
    try:
        store = store_on(servers)
        tokens = [make_token() for _ in range(30)]
        for token in tokens:
            store.save_token(token)
        lost = servers[1]
        on_lost = {token.token for token in tokens if any(key.endswith(digest(token.token)) for key in lost.keys())}
        assert 0 < len(on_lost) < len(tokens)
        lost.kill()
        for token in tokens:
            if token.token in on_lost:
                assert_unavailable_fast(lambda: store.fetch_by_token(token.token), lost, token.token)
            else:
                assert store.fetch_by_token(token.token) == token
        lost.start()
        back_in_service(store, probe=next(iter(on_lost)))
        for token in tokens:
            if token.token in on_lost:  # the server came back empty: a miss, never a stale record
                with pytest.raises(AccessTokenNotFound):
                    store.fetch_by_token(token.token)
            else:
                assert store.fetch_by_token(token.token) == token
    finally:
        for server in servers:
            server.stop()


