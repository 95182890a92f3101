"""MemcacheTokenStore next to raw pymemcache calls moving the same bytes (the floor: the same round
trips with no store around them) and python-oauth2 1.1.1's memcache TokenStore (python-memcached,
pickled dicts), on one memcached. Contenders alternate operation by operation."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import memcache
from harness import Operation, Part, Section, Sizes, Target, alternate
from oauth2.datatype import AccessToken as LegacyAccessToken
from oauth2.datatype import AuthorizationCode as LegacyAuthorizationCode
from oauth2.store.memcache import TokenStore as LegacyMemcacheStore
from pymemcache.client.base import PooledClient

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.codec import ACCESS_TOKEN_CODEC, AUTH_CODE_CODEC
from oauth2_store.store.memcache import MemcacheTokenStore
from tests.memcached_server import MemcachedServer

LEGACY = "python-oauth2 1.1.1"
OURS = "MemcacheTokenStore"


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
            user_id=f"user-{secrets.token_hex(6)}",
        )
        for _ in range(n)
    ]


def _raw_key(kind: str, secret: str) -> str:
    """A key as long as the store's (``bench:t:`` and a sha256 hex digest), so raw calls move the same bytes."""
    return f"raw00:{kind}:{hashlib.sha256(secret.encode()).hexdigest()}"


def _stored_bytes(server: MemcachedServer) -> int:
    """The server's ``bytes`` statistic: item headers, keys and values of everything it holds."""
    return int(server.stats()["bytes"])


def measure(sizes: Sizes, server: MemcachedServer) -> Part:
    """Time the store's operations against raw pymemcache and python-oauth2 on ``server``, and
    measure the bytes the server spends per stored token for each store."""
    n = sizes.warmup + sizes.memcache_ops
    store = MemcacheTokenStore(servers=[server.address], prefix="bench")
    raw = PooledClient(("127.0.0.1", server.port), no_delay=True, default_noreply=False, connect_timeout=1.0, timeout=1.0)
    legacy = LegacyMemcacheStore(mc=memcache.Client([server.address]), prefix="legacy")
    try:
        sections = [
            Section("save_token with refresh token and user id", alternate(_save(store, raw, legacy, n, refresh=True), sizes.memcache_ops, sizes.warmup), LEGACY),
            Section("save_token without refresh token", alternate(_save(store, raw, legacy, n, refresh=False), sizes.memcache_ops, sizes.warmup), LEGACY),
            Section(
                "fetch_by_token and fetch_by_refresh_token",
                alternate(_fetch(store, raw, n), sizes.memcache_ops, sizes.warmup),
                "raw pymemcache get",
                notes=(
                    "A first read decodes and validates the record; a read again finds the payload's record in the codec's cache. "
                    "python-oauth2 1.1.1's memcache store is not in this table: it has no `fetch_by_token`, and its "
                    "`fetch_by_refresh_token` and `fetch_existing_token_of_user` read keys without the prefix its `save_token` "
                    "writes, so they never find a token.",
                ),
            ),
            Section("consume_code", alternate(_consume(store, raw, legacy, n), sizes.memcache_ops, sizes.warmup), "raw pymemcache get + delete"),
        ]
        ours_bytes, legacy_bytes = _bytes_per_token(server, store, legacy, sizes.bytes_tokens)
    finally:
        store.close()
        raw.close()
        legacy.mc.disconnect_all()
    save, save_bare, fetch = sections[0], sections[1], sections[2]
    targets = [
        Target("memcache: save_token with refresh token at least 1.4x faster than python-oauth2", save.ratio(OURS), 1 / 1.4),
        Target("memcache: save_token without refresh token at least 2x faster than python-oauth2", save_bare.ratio(OURS), 1 / 2),
        *(
            Target(f"memcache: {name} within 1.2x of a raw get", fetch.ratio(name), 1.2)
            for name in fetch.samples
            if name.startswith("fetch")
        ),
        Target("bytes per stored token at most 0.7x python-oauth2's", ours_bytes / legacy_bytes, 0.7),
    ]
    extra = "\n".join(
        [
            f"Bytes per stored token, as memcached counts them (its `bytes` statistic: item headers, keys and values of the "
            f"token, refresh-token and user entries), over {sizes.bytes_tokens} tokens:",
            "",
            "| store | bytes per token | ratio | tokens per GiB |",
            "| --- | ---: | ---: | ---: |",
            f"| {OURS} | {ours_bytes:.0f} | {ours_bytes / legacy_bytes:.2f}x | {2**30 / ours_bytes:,.0f} |",
            f"| {LEGACY} | {legacy_bytes:.0f} | 1.00x | {2**30 / legacy_bytes:,.0f} |",
        ]
    )
    return Part(
        heading="Memcached",
        intro=(
            f"One memcached on loopback. {sizes.memcache_ops} operations per contender after {sizes.warmup} untimed, "
            "alternating op by op; per operation. Raw pymemcache moves the same bytes in the same round trips."
        ),
        sections=sections,
        targets=targets,
        extra=extra,
    )


def _save(store: MemcacheTokenStore, raw: PooledClient, legacy: Any, n: int, refresh: bool) -> dict[str, Operation]:
    ours, legacy_tokens = _tokens(AccessToken, n, refresh), _tokens(LegacyAccessToken, n, refresh)
    raw_items = []
    for token in _tokens(AccessToken, n, refresh):
        payload = ACCESS_TOKEN_CODEC.encode(token)
        refresh_item = {_raw_key("r", token.refresh_token or ""): payload} if refresh else None
        raw_items.append(({_raw_key("t", token.token): payload, _raw_key("u", token.user_id or ""): payload}, refresh_item))

    def raw_save(i: int) -> None:
        access, refresh_item = raw_items[i]
        raw.set_many(access, expire=3600, noreply=False)
        if refresh_item:  # the store writes a refresh token under its own expiry: a second set_many
            raw.set_many(refresh_item, expire=0, noreply=False)

    return {
        OURS: lambda i: store.save_token(ours[i]),
        f"raw pymemcache set_many x{2 if refresh else 1}": raw_save,
        LEGACY: lambda i: legacy.save_token(legacy_tokens[i]),
    }


def _fetch(store: MemcacheTokenStore, raw: PooledClient, n: int) -> dict[str, Operation]:
    # save_token writes one payload under the token and the refresh token: each first-read row
    # reads its own tokens, so neither finds a payload the other just decoded and cached.
    by_token, by_refresh, seen = _tokens(AccessToken, n), _tokens(AccessToken, n), _tokens(AccessToken, 100)
    for token in by_token + by_refresh + seen:
        store.save_token(token)
    for token in by_token:
        raw.set(_raw_key("t", token.token), ACCESS_TOKEN_CODEC.encode(token), noreply=False)
    for token in seen:  # decoded once already: a resource server reads the same token again
        store.fetch_by_token(token.token)
    return {
        "fetch_by_token, first read": lambda i: store.fetch_by_token(by_token[i].token),
        "fetch_by_token, read again": lambda i: store.fetch_by_token(seen[i % len(seen)].token),
        "fetch_by_refresh_token, first read": lambda i: store.fetch_by_refresh_token(by_refresh[i].refresh_token or ""),
        "raw pymemcache get": lambda i: raw.get(_raw_key("t", by_token[i].token)),
    }


def _consume(store: MemcacheTokenStore, raw: PooledClient, legacy: Any, n: int) -> dict[str, Operation]:
    now = int(time.time())
    ours = [AuthorizationCode("client-id", secrets.token_hex(16), now + 600, "https://a.example/cb", ["read"]) for _ in range(n)]
    legacy_codes = [LegacyAuthorizationCode("client-id", secrets.token_hex(16), now + 600, "https://a.example/cb", ["read"]) for _ in range(n)]
    raw_codes = [_raw_key("c", secrets.token_hex(16)) for _ in range(n)]
    for code, legacy_code, raw_code in zip(ours, legacy_codes, raw_codes):
        store.save_code(code)
        legacy.save_code(legacy_code)
        raw.set(raw_code, AUTH_CODE_CODEC.encode(code), expire=600, noreply=False)

    def legacy_consume(i: int) -> None:
        legacy.fetch_by_code(legacy_codes[i].code)
        legacy.delete_code(legacy_codes[i].code)

    def raw_consume(i: int) -> None:
        raw.get(raw_codes[i])
        raw.delete(raw_codes[i], noreply=False)

    return {
        f"{OURS} consume_code (atomic)": lambda i: store.consume_code(ours[i].code),
        "raw pymemcache get + delete": raw_consume,
        f"{LEGACY} fetch_by_code + delete_code (not atomic)": legacy_consume,
    }


def _bytes_per_token(server: MemcachedServer, store: MemcacheTokenStore, legacy: Any, n: int) -> tuple[float, float]:
    """Bytes the server holds per token saved by each store (every token with its own user)."""
    figures = []
    for save, tokens in ((store.save_token, _tokens(AccessToken, n)), (legacy.save_token, _tokens(LegacyAccessToken, n))):
        before = _stored_bytes(server)
        for token in tokens:
            save(token)
        figures.append((_stored_bytes(server) - before) / n)
    return figures[0], figures[1]
