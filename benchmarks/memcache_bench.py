"""MemcacheTokenStore next to raw pymemcache calls moving the same bytes (the floor) and to
python-oauth2 1.1.1's memcache TokenStore (python-memcached, pickled dicts), on one local
memcached started here. Contenders alternate operation by operation; figures are medians per operation.

Run: .venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/memcache_bench.py
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from harness import Operation, alternate, report  # noqa: E402
from pymemcache.client.base import PooledClient  # noqa: E402

from oauth2_store import AccessToken, AuthorizationCode  # noqa: E402
from oauth2_store.codec import ACCESS_TOKEN_CODEC, AUTH_CODE_CODEC  # noqa: E402
from oauth2_store.error import AuthCodeNotFound  # noqa: E402
from oauth2_store.store.memcache import MemcacheTokenStore  # noqa: E402
from tests.memcached_server import MemcachedServer  # noqa: E402

try:
    import memcache
    from oauth2.datatype import AccessToken as LegacyAccessToken
    from oauth2.datatype import AuthorizationCode as LegacyAuthorizationCode
    from oauth2.store.memcache import TokenStore as LegacyMemcacheStore
except ImportError:
    sys.exit("install python-oauth2 1.1.1 first: .venv/bin/pip install -e '.[bench]'")

OPS = 3000


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
    now = int(time.time())

    def save_contenders(refresh: bool) -> dict[str, Operation]:
        ours, legacy_tokens = _tokens(AccessToken, OPS, refresh), _tokens(LegacyAccessToken, OPS, refresh)
        # The floor: the same keys and bytes in the same round trips (one set_many per expiry).
        raw_items = []
        for token in _tokens(AccessToken, OPS, refresh):
            payload = ACCESS_TOKEN_CODEC.encode(token)
            refresh_item = {f"raw:r:{token.refresh_token}": payload} if refresh else None
            raw_items.append(({f"raw:t:{token.token}": payload, f"raw:u:{token.token}": payload}, refresh_item))

        def raw_save(i: int) -> None:
            access, refresh_item = raw_items[i]
            raw.set_many(access, expire=3600, noreply=False)
            if refresh_item:
                raw.set_many(refresh_item, expire=0, noreply=False)

        return {
            "MemcacheTokenStore": lambda i: store.save_token(ours[i]),
            f"raw pymemcache set_many x{2 if refresh else 1}": raw_save,
            "python-oauth2 1.1.1": lambda i: legacy.save_token(legacy_tokens[i]),
        }

    fetched = _tokens(AccessToken, OPS)
    for token in fetched:
        store.save_token(token)
        raw.set(f"raw:{token.token}", ACCESS_TOKEN_CODEC.encode(token), noreply=False)
    again = fetched[: OPS // 10]
    for token in again:  # decoded once already: a resource server reads the same token again
        store.fetch_by_token(token.token)
    fetch_contenders: dict[str, Operation] = {
        "fetch_by_token, first read": lambda i: store.fetch_by_token(fetched[i].token),
        "fetch_by_token, read again": lambda i: store.fetch_by_token(again[i % len(again)].token),
        "fetch_by_refresh_token, first read": lambda i: store.fetch_by_refresh_token(fetched[i].refresh_token),
        "raw pymemcache get": lambda i: raw.get(f"raw:{fetched[i].token}"),
    }

    ours_codes = [AuthorizationCode("client-id", secrets.token_hex(16), now + 600, "https://a.example/cb", ["read"]) for _ in range(OPS)]
    legacy_codes = [LegacyAuthorizationCode("client-id", secrets.token_hex(16), now + 600, "https://a.example/cb", ["read"]) for _ in range(OPS)]
    raw_codes = [f"raw:c:{secrets.token_hex(16)}" for _ in range(OPS)]
    for code, legacy_code, raw_code in zip(ours_codes, legacy_codes, raw_codes):
        store.save_code(code)
        legacy.save_code(legacy_code)
        raw.set(raw_code, AUTH_CODE_CODEC.encode(code), expire=600, noreply=False)

    def legacy_consume(i: int) -> None:
        legacy.fetch_by_code(legacy_codes[i].code)
        legacy.delete_code(legacy_codes[i].code)

    def raw_consume(i: int) -> None:
        raw.get(raw_codes[i])
        raw.delete(raw_codes[i], noreply=False)

    consume_contenders: dict[str, Operation] = {
        "MemcacheTokenStore consume_code": lambda i: store.consume_code(ours_codes[i].code),
        "raw pymemcache get + delete": raw_consume,
        "python-oauth2 1.1.1 fetch_by_code + delete_code": legacy_consume,
    }

    sections = [
        ("save_token with refresh token and user id", save_contenders(True), "python-oauth2 1.1.1"),
        ("save_token without refresh token", save_contenders(False), "python-oauth2 1.1.1"),
        ("fetch_by_token / fetch_by_refresh_token", fetch_contenders, "raw pymemcache get"),
        ("consume_code", consume_contenders, "raw pymemcache get + delete"),
    ]
    for _ in range(100):  # warm up: connections open, code paths loaded
        raw.get("warm-up")
        legacy.mc.get("warm-up")
        try:
            store.fetch_by_code("warm-up")
        except AuthCodeNotFound:
            pass
    print(f"memcached on {address}; {OPS} operations per contender, alternating op by op; medians per operation\n")
    for title, contenders, baseline in sections:
        print(report(title, alternate(contenders, OPS), baseline))
    store.close()
    raw.close()


if __name__ == "__main__":
    main()
