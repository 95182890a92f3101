"""MemcacheTokenStore next to raw pymemcache calls moving the same bytes (the floor) and to
python-oauth2 1.1.1's memcache TokenStore (python-memcached, pickled dicts), on one local
memcached started here. Contenders are interleaved; figures are medians per operation.

Run: .venv/bin/pip install python-oauth2==1.1.1 && .venv/bin/python benchmarks/memcache_bench.py
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from harness import Batch, interleave, report  # noqa: E402
from pymemcache.client.base import PooledClient  # noqa: E402

from oauth2_store import AccessToken, AuthorizationCode  # noqa: E402
from oauth2_store.codec import ACCESS_TOKEN_CODEC  # noqa: E402
from oauth2_store.store.memcache import MemcacheTokenStore  # noqa: E402
from tests.memcached_server import MemcachedServer  # noqa: E402

try:
    import memcache
    from oauth2.datatype import AccessToken as LegacyAccessToken
    from oauth2.datatype import AuthorizationCode as LegacyAuthorizationCode
    from oauth2.store.memcache import TokenStore as LegacyMemcacheStore
except ImportError:
    sys.exit("install python-oauth2==1.1.1 first: .venv/bin/pip install python-oauth2==1.1.1")

OPS = 1000
ROUNDS = 9


def _tokens(cls: Any, n: int, refresh: bool = True) -> list[Any]:
    now = int(time.time())
    return [
        cls(
            "client-id",
            "authorization_code",
            secrets.token_hex(16),
            {"key": "value"},
            now + 3600,
            secrets.token_hex(16) if refresh else None,
            scopes=["read", "write"],
            user_id="user-1",
        )
        for _ in range(n)
    ]


def main() -> None:
    server = MemcachedServer(memory_mb=512).start()
    try:
        run(server.address)
    finally:
        server.stop()


def run(address: str) -> None:
    host, port = address.rsplit(":", 1)
    store = MemcacheTokenStore(servers=[address], prefix="bench")
    raw = PooledClient((host, int(port)), no_delay=True, default_noreply=False, connect_timeout=1.0, timeout=1.0)
    legacy = LegacyMemcacheStore(mc=memcache.Client([address]), prefix="legacy")

    def ours_save(refresh: bool) -> Batch:
        tokens = _tokens(AccessToken, OPS, refresh)

        def batch(n: int) -> None:
            for token in tokens[:n]:
                store.save_token(token)

        return batch

    def raw_save(refresh: bool) -> Batch:
        # The same keys and bytes, in the same round trips (one set_many per distinct expiry).
        items = []
        for token in _tokens(AccessToken, OPS, refresh):
            payload = ACCESS_TOKEN_CODEC.encode(token)
            items.append(({f"bench:t:{token.token}": payload, f"bench:u:{token.token}": payload}, {f"bench:r:{token.refresh_token}": payload} if refresh else None))

        def batch(n: int) -> None:
            for access, refresh_item in items[:n]:
                raw.set_many(access, expire=3600, noreply=False)
                if refresh_item:
                    raw.set_many(refresh_item, expire=0, noreply=False)

        return batch

    def legacy_save(refresh: bool) -> Batch:
        tokens = _tokens(LegacyAccessToken, OPS, refresh)

        def batch(n: int) -> None:
            for token in tokens[:n]:
                legacy.save_token(token)

        return batch

    saved = _tokens(AccessToken, OPS)
    for token in saved:
        store.save_token(token)
        raw.set(f"raw:{token.token}", ACCESS_TOKEN_CODEC.encode(token), noreply=False)

    def ours_fetch_cold() -> Batch:
        # Tokens this process has never decoded: every fetch decodes and validates its record.
        tokens = _tokens(AccessToken, OPS)
        for token in tokens:
            store.save_token(token)
        ACCESS_TOKEN_CODEC._decode_recent.cache_clear()

        def batch(n: int) -> None:
            for token in tokens[:n]:
                store.fetch_by_token(token.token)

        return batch

    def ours_fetch_warm() -> Batch:
        # The same tokens read again, as a resource server does on every request.
        def batch(n: int) -> None:
            for token in saved[:n]:
                store.fetch_by_token(token.token)

        return batch

    def ours_fetch_refresh() -> Batch:
        def batch(n: int) -> None:
            for token in saved[:n]:
                store.fetch_by_refresh_token(token.refresh_token)

        return batch

    def raw_get() -> Batch:
        def batch(n: int) -> None:
            for token in saved[:n]:
                raw.get(f"raw:{token.token}")

        return batch

    codes_now = int(time.time())

    def ours_consume() -> Batch:
        codes = [AuthorizationCode("client-id", secrets.token_hex(16), codes_now + 600, "https://a.example/cb", ["read"]) for _ in range(OPS)]
        for code in codes:
            store.save_code(code)

        def batch(n: int) -> None:
            for code in codes[:n]:
                store.consume_code(code.code)

        return batch

    def legacy_fetch_delete_code() -> Batch:
        codes = [LegacyAuthorizationCode("client-id", secrets.token_hex(16), codes_now + 600, "https://a.example/cb", ["read"]) for _ in range(OPS)]
        for code in codes:
            legacy.save_code(code)

        def batch(n: int) -> None:
            for code in codes[:n]:
                legacy.fetch_by_code(code.code)
                legacy.delete_code(code.code)

        return batch

    def raw_get_delete() -> Batch:
        keys = [f"raw:c:{secrets.token_hex(16)}" for _ in range(OPS)]
        for key in keys:
            raw.set(key, b"x" * 120, expire=600, noreply=False)

        def batch(n: int) -> None:
            for key in keys[:n]:
                raw.get(key)
                raw.delete(key, noreply=False)

        return batch

    sections = [
        ("save_token with refresh token and user id", {"MemcacheTokenStore": lambda: ours_save(True), "raw pymemcache set_many x2": lambda: raw_save(True), "python-oauth2 1.1.1": lambda: legacy_save(True)}, "python-oauth2 1.1.1"),
        ("save_token without refresh token", {"MemcacheTokenStore": lambda: ours_save(False), "raw pymemcache set_many x1": lambda: raw_save(False), "python-oauth2 1.1.1": lambda: legacy_save(False)}, "python-oauth2 1.1.1"),
        (
            "fetch_by_token / fetch_by_refresh_token",
            {
                "fetch_by_token, first read": ours_fetch_cold,
                "fetch_by_token, read again": ours_fetch_warm,
                "fetch_by_refresh_token, read again": ours_fetch_refresh,
                "raw pymemcache get": raw_get,
            },
            "raw pymemcache get",
        ),
        ("consume_code", {"MemcacheTokenStore": ours_consume, "raw pymemcache get + delete": raw_get_delete, "python-oauth2 1.1.1 fetch_by_code + delete_code": legacy_fetch_delete_code}, "raw pymemcache get + delete"),
    ]
    print(f"memcached on {address}; {OPS} ops x {ROUNDS} rounds per contender, interleaved\n")
    for title, contenders, baseline in sections:
        print(report(title, interleave(contenders, OPS, ROUNDS), baseline))
    store.close()
    raw.close()


if __name__ == "__main__":
    main()
