"""MemcacheTokenStore next to raw pymemcache calls moving the same bytes (the floor: the same round
trips with no store around them) and python-oauth2 1.1.1's memcache TokenStore (python-memcached,
pickled dicts), on one memcached. Contenders alternate operation by operation.

The token lifecycle's operations (``fetch_by_token`` with and without ``verify_grants``,
``consume_code``, ``delete_refresh_token``, ``revoke_user``) are each timed against raw pymemcache
making the same requests with values of the same sizes, first with records the process has not
decoded yet (cold) and then with records it has (warm: the codec's cache of records by payload)."""

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
SAVE_NOTE = (
    "The raw rows make only the token's own writes, the floor before the token lifecycle. Each token here starts a grant "
    "of its own (none names one), so the store also writes the grant entry and its owner epochs and indexes, and reads the "
    "grant back after writing: 7 to 8 requests in all, 4 to 5 for a token saved into an existing grant."
)
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


_EPOCH_SIZE = 16
_GRANT_HEADER_SIZE = 1 + 32 + 3 * _EPOCH_SIZE  # L, the client's digest, three owner epochs
_MEMBER_SIZE = 32 + 8  # an access token's digest and expiry


def _grant_entry(members: int) -> bytes:
    """A value as long as a grant entry with ``members`` access tokens."""
    return b"L" + secrets.token_bytes(_GRANT_HEADER_SIZE - 1 + _MEMBER_SIZE * members)


def _marker(expires_at: int) -> bytes:
    """A value as long as a consumed-code or retired-refresh marker: ``<expiry> <grant id>``."""
    return f"{expires_at} g-{secrets.token_hex(16)}".encode()


def _grant_keys(secret: str) -> list[str]:
    """Raw keys standing for a grant entry and its three owner epochs (client, user, user and client)."""
    return [_raw_key("g", secret), *(_raw_key("e", f"{kind}:{secret}") for kind in ("c", "u", "uc"))]


def _raw_set(raw: PooledClient, values: dict[str, bytes], expire: int = 3600) -> None:
    items = list(values.items())
    for start in range(0, len(items), 500):
        raw.set_many(dict(items[start : start + 500]), expire=expire, noreply=False)


def _raw_grant(secret: str, members: int = 1) -> dict[str, bytes]:
    """A grant entry and its epochs, as raw values under :func:`_grant_keys`."""
    grant, *epochs = _grant_keys(secret)
    return {grant: _grant_entry(members), **{key: secrets.token_bytes(_EPOCH_SIZE) for key in epochs}}


def _stored_bytes(server: MemcachedServer) -> int:
    """The server's ``bytes`` statistic: item headers, keys and values of everything it holds."""
    return int(server.stats()["bytes"])


def measure(sizes: Sizes, server: MemcachedServer) -> Part:
    """Time the store's operations against raw pymemcache and python-oauth2 on ``server``, and
    measure the bytes the server spends per stored token for each store."""
    n = sizes.warmup + sizes.memcache_ops
    store = MemcacheTokenStore(servers=[server.address], prefix="bench")
    verifying = MemcacheTokenStore(servers=[server.address], prefix="bench", verify_grants=True)
    raw = PooledClient(("127.0.0.1", server.port), no_delay=True, default_noreply=False, connect_timeout=1.0, timeout=1.0)
    legacy = LegacyMemcacheStore(mc=memcache.Client([server.address]), prefix="legacy")
    try:
        sections = [
            Section(
                "save_token with refresh token and user id",
                alternate(_save(store, raw, legacy, n, refresh=True), sizes.memcache_ops, sizes.warmup),
                LEGACY,
                notes=(SAVE_NOTE,),
            ),
            Section(
                "save_token without refresh token",
                alternate(_save(store, raw, legacy, n, refresh=False), sizes.memcache_ops, sizes.warmup),
                LEGACY,
                notes=(SAVE_NOTE,),
            ),
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
            Section(
                "consume_code",
                _alternate(_consume(store, raw, legacy, n), sizes),
                RAW_CONSUME,
                notes=(
                    "With the token lifecycle `consume_code` makes four requests: the code with its consumed marker, its "
                    "grant entry with the owner epochs, an `add` of the marker (the exactly-once arbiter), the delete. "
                    "Warm: the code was read just before (untimed), so its record comes from the codec's cache.",
                ),
            ),
            Section(
                "token lifecycle: fetch_by_token with and without verify_grants",
                alternate(_fetch_verified(store, verifying, raw, n), sizes.memcache_ops, sizes.warmup),
                "raw pymemcache get",
                notes=(
                    "`fetch_by_token` is one get, as before the lifecycle; `verify_grants=True` adds a read of the grant "
                    "entry and its owner epochs (one `get_many`).",
                ),
            ),
            Section(
                "token lifecycle: delete_refresh_token (rotation)",
                _alternate(_rotate(store, raw, n), sizes),
                RAW_ROTATE,
                notes=(
                    "Four requests: the refresh token with its retired marker, the grant entry with the owner epochs, an "
                    "`add` of the retired marker, one delete of the refresh, access and user keys. Warm: the refresh "
                    "token was read just before (untimed).",
                ),
            ),
            Section(
                "token lifecycle: revoke_user",
                _alternate(_revoke_user(store, raw, n), sizes),
                RAW_REVOKE,
                notes=(
                    "Four requests whatever the number of grants (up to 500): a new epoch, the user's index, its grant "
                    "entries, one delete of their access tokens. Again: the same user revoked just before (untimed), "
                    "so the index and entries are read and nothing is left live to delete.",
                ),
            ),
        ]
        ours_bytes, legacy_bytes = _bytes_per_token(server, store, legacy, sizes.bytes_tokens)
    finally:
        store.close()
        verifying.close()
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
            f"Bytes per stored token, as memcached counts them (its `bytes` statistic: item headers, keys and values), over "
            f"{sizes.bytes_tokens} tokens. Ours are the token, refresh-token and user entries and, since the token lifecycle, "
            "what a grant adds: here every token starts a grant of its own for a user of its own (the most a token costs), "
            "so each also writes a grant entry, three owner epochs and two index entries:",
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


def _alternate(contenders: tuple[dict[str, Operation], dict[str, Operation]], sizes: Sizes) -> dict[str, list[float]]:
    """:func:`alternate` over contenders and their untimed preparation steps."""
    return alternate(contenders[0], sizes.memcache_ops, sizes.warmup, prepare=contenders[1])


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


RAW_CONSUME = "raw pymemcache, the same 4 requests"
RAW_ROTATE = "raw pymemcache, the same 4 requests"
RAW_REVOKE = "raw pymemcache, the same 4 requests (1 grant)"


def _code(client_id: str, now: int, user_id: str | None = None) -> AuthorizationCode:
    return AuthorizationCode(client_id, secrets.token_hex(16), now + 600, "https://a.example/cb", ["read"], user_id=user_id)


def _consume(store: MemcacheTokenStore, raw: PooledClient, legacy: Any, n: int) -> tuple[dict[str, Operation], dict[str, Operation]]:
    """consume_code cold and warm, the raw floor of its four requests, the two requests a store
    without the lifecycle made, and python-oauth2's fetch then delete."""
    now = int(time.time())
    # A client and user of their own, as a provider's codes have: the grant has three owner epochs.
    cold, warm = ([_code("bench-codes", now, "alice") for _ in range(n)] for _ in range(2))
    legacy_codes = [LegacyAuthorizationCode("client-id", secrets.token_hex(16), now + 600, "https://a.example/cb", ["read"]) for _ in range(n)]
    raw_codes = [secrets.token_hex(16) for _ in range(n)]
    for code in cold + warm:
        store.save_code(code)
    for legacy_code in legacy_codes:
        legacy.save_code(legacy_code)
    payload = AUTH_CODE_CODEC.encode(cold[0])
    raw_values: dict[str, bytes] = {}
    for raw_code in raw_codes:
        raw_values[_raw_key("c", raw_code)] = payload
        raw_values[_raw_key("c2", raw_code)] = payload  # for the two-request contender
        raw_values.update(_raw_grant(raw_code))
    _raw_set(raw, raw_values, expire=600)

    def legacy_consume(i: int) -> None:
        legacy.fetch_by_code(legacy_codes[i].code)
        legacy.delete_code(legacy_codes[i].code)

    def raw_consume(i: int) -> None:
        code_key = _raw_key("c", raw_codes[i])
        raw.get_many([code_key, _raw_key("k", raw_codes[i])])
        raw.get_many(_grant_keys(raw_codes[i]))
        raw.add(_raw_key("k", raw_codes[i]), _marker(now + 600), expire=600, noreply=False)
        raw.delete(code_key, noreply=False)

    def raw_get_delete(i: int) -> None:
        raw.get(_raw_key("c2", raw_codes[i]))
        raw.delete(_raw_key("c2", raw_codes[i]), noreply=False)

    contenders: dict[str, Operation] = {
        f"{OURS} consume_code (atomic), cold": lambda i: store.consume_code(cold[i].code),
        f"{OURS} consume_code (atomic), warm": lambda i: store.consume_code(warm[i].code),
        RAW_CONSUME: raw_consume,
        "raw pymemcache get + delete (the 2 requests before the lifecycle)": raw_get_delete,
        f"{LEGACY} fetch_by_code + delete_code (not atomic)": legacy_consume,
    }
    prepare: dict[str, Operation] = {f"{OURS} consume_code (atomic), warm": lambda i: store.fetch_by_code(warm[i].code)}
    return contenders, prepare


def _fetch_verified(store: MemcacheTokenStore, verifying: MemcacheTokenStore, raw: PooledClient, n: int) -> dict[str, Operation]:
    """fetch_by_token with and without verify_grants, cold and warm, against a raw get and the
    raw floor of verify_grants' two requests."""
    plain, verified, seen = _tokens(AccessToken, n), _tokens(AccessToken, n), _tokens(AccessToken, 100)
    for token in plain + verified + seen:
        store.save_token(token)
    for token in seen:  # decoded once already: a resource server reads the same token again
        store.fetch_by_token(token.token)
    raw_tokens = [secrets.token_hex(16) for _ in range(n)]
    payload = ACCESS_TOKEN_CODEC.encode(plain[0])
    raw_values: dict[str, bytes] = {}
    for raw_token in raw_tokens:
        raw_values[_raw_key("t", raw_token)] = payload
        raw_values.update(_raw_grant(raw_token))
    _raw_set(raw, raw_values)

    def raw_verified(i: int) -> None:
        raw.get(_raw_key("t", raw_tokens[i]))
        raw.get_many(_grant_keys(raw_tokens[i]))

    return {
        "fetch_by_token, cold": lambda i: store.fetch_by_token(plain[i].token),
        "fetch_by_token, warm": lambda i: store.fetch_by_token(seen[i % len(seen)].token),
        "fetch_by_token verify_grants=True, cold": lambda i: verifying.fetch_by_token(verified[i].token),
        "fetch_by_token verify_grants=True, warm": lambda i: verifying.fetch_by_token(seen[i % len(seen)].token),
        "raw pymemcache get": lambda i: raw.get(_raw_key("t", raw_tokens[i])),
        "raw pymemcache get + get_many (verify_grants' 2 requests)": raw_verified,
    }


def _rotate(store: MemcacheTokenStore, raw: PooledClient, n: int) -> tuple[dict[str, Operation], dict[str, Operation]]:
    """delete_refresh_token cold and warm against the raw floor of its four requests."""
    now = int(time.time())
    cold, warm = _tokens(AccessToken, n), _tokens(AccessToken, n)
    for token in cold + warm:
        store.save_token(token)
    raw_tokens = [secrets.token_hex(16) for _ in range(n)]
    payload = ACCESS_TOKEN_CODEC.encode(cold[0])
    raw_values: dict[str, bytes] = {}
    for raw_token in raw_tokens:
        raw_values.update({_raw_key(kind, raw_token): payload for kind in ("r", "t", "u")})
        raw_values.update(_raw_grant(raw_token))
    _raw_set(raw, raw_values)

    def raw_rotate(i: int) -> None:
        refresh_key, retired_key = _raw_key("r", raw_tokens[i]), _raw_key("x", raw_tokens[i])
        raw.get_many([refresh_key, retired_key])
        raw.get_many(_grant_keys(raw_tokens[i]))
        raw.add(retired_key, _marker(now + 3600), expire=3600, noreply=False)
        raw.delete_many([refresh_key, _raw_key("t", raw_tokens[i]), _raw_key("u", raw_tokens[i])], noreply=False)

    contenders: dict[str, Operation] = {
        f"{OURS} delete_refresh_token, cold": lambda i: store.delete_refresh_token(cold[i].refresh_token or ""),
        f"{OURS} delete_refresh_token, warm": lambda i: store.delete_refresh_token(warm[i].refresh_token or ""),
        RAW_ROTATE: raw_rotate,
    }
    prepare: dict[str, Operation] = {f"{OURS} delete_refresh_token, warm": lambda i: store.fetch_by_refresh_token(warm[i].refresh_token or "")}
    return contenders, prepare


def _revoke_user(store: MemcacheTokenStore, raw: PooledClient, n: int) -> tuple[dict[str, Operation], dict[str, Operation]]:
    """revoke_user of a user with one grant, with three, and again, against the raw floor of its
    four requests for one grant."""
    now = int(time.time())

    def users(grants: int) -> list[str]:
        names = [f"user-{secrets.token_hex(6)}" for _ in range(n)]
        for name in names:
            for _ in range(grants):  # each token without grant_id starts a grant of its own
                store.save_token(AccessToken("bench-revoke", "authorization_code", secrets.token_hex(16), {"key": "value"}, now + 3600, secrets.token_hex(16), ["read", "write"], user_id=name))
        return names

    one, three, again = users(1), users(3), users(1)
    raw_users = [secrets.token_hex(16) for _ in range(n)]
    payload = ACCESS_TOKEN_CODEC.encode(AccessToken("bench-revoke", "authorization_code", secrets.token_hex(16), {"key": "value"}, now + 3600, secrets.token_hex(16), ["read", "write"], user_id="user-123456789abc"))
    raw_values: dict[str, bytes] = {}
    for raw_user in raw_users:
        raw_values[_raw_key("i", raw_user)] = secrets.token_bytes(32)
        raw_values[_raw_key("g", raw_user)] = _grant_entry(1)
        raw_values[_raw_key("t", raw_user)] = payload
    _raw_set(raw, raw_values)

    def raw_revoke(i: int) -> None:
        raw.set_many({_raw_key("e", f"u:{raw_users[i]}"): secrets.token_bytes(_EPOCH_SIZE)}, expire=0, noreply=False)
        raw.get(_raw_key("i", raw_users[i]))
        raw.get_many([_raw_key("g", raw_users[i])])
        raw.delete_many([_raw_key("t", raw_users[i])], noreply=False)

    contenders: dict[str, Operation] = {
        f"{OURS} revoke_user, 1 grant": lambda i: store.revoke_user(one[i]),
        f"{OURS} revoke_user, 3 grants": lambda i: store.revoke_user(three[i]),
        f"{OURS} revoke_user, 1 grant, again": lambda i: store.revoke_user(again[i]),
        RAW_REVOKE: raw_revoke,
    }
    prepare: dict[str, Operation] = {f"{OURS} revoke_user, 1 grant, again": lambda i: store.revoke_user(again[i])}
    return contenders, prepare


def _bytes_per_token(server: MemcachedServer, store: MemcacheTokenStore, legacy: Any, n: int) -> tuple[float, float]:
    """Bytes the server holds per token saved by each store (every token with its own user)."""
    figures = []
    for save, tokens in ((store.save_token, _tokens(AccessToken, n)), (legacy.save_token, _tokens(LegacyAccessToken, n))):
        before = _stored_bytes(server)
        for token in tokens:
            save(token)
        figures.append((_stored_bytes(server) - before) / n)
    return figures[0], figures[1]
