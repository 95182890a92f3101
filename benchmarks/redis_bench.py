"""RedisTokenStore next to raw redis-py calls making the same requests (the floor: the same round
trips with no store around them), on one redis-server. Contenders alternate operation by operation.

Every raw value is a copy of what the store wrote, read back from the server, under a key as long
as the store's: the raw calls move the same bytes whatever the store's format is (sealed values,
and whichever keys it writes). Every client, raw ones included, is built by
:func:`~oauth2_store.store.redis.redis_client`, so only the store's own work differs.

Reads are timed first with records the process has not decoded yet (cold) and then with records
it has (warm: the codec's cache of records by payload). python-oauth2 1.1.1's redis
``TokenStore`` stands next to the saves and ``consume_code``, as on memcached."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis
from harness import Operation, Part, Section, Sizes, Target, alternate
from memcache_bench import _tokens
from oauth2.datatype import AccessToken as LegacyAccessToken
from oauth2.datatype import AuthorizationCode as LegacyAuthorizationCode
from oauth2.store.redisdb import TokenStore as LegacyRedisStore

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.store.redis import RedisTokenStore, redis_client
from tests.redis_server import RedisServer

OURS = "RedisTokenStore"
LEGACY = "python-oauth2 1.1.1"
PREFIX = "bench"
RAW_PREFIX = "raw00"  # as long as PREFIX: raw keys are as long as the store's
RAW_GET = "raw redis-py GET"
RAW_REFRESH = "raw redis-py MGET + MGET (fetch_by_refresh_token's 2 requests)"
RAW_CONSUME = "raw redis-py, the same 4 requests"
RAW_ROTATE = "raw redis-py, the same 4 requests"
FETCH_LIMIT = 1.15

GRANT_ROLES = ("g", "e:c", "e:u", "e:uc")
"""A grant entry and its three owner epochs (client, user, user with client)."""


def _store_key(kind: str, secret: str, prefix: str = PREFIX) -> str:
    """The store's key for ``secret`` (the layout of :mod:`oauth2_store.store.keyvalue` on Redis:
    ``<prefix>:{<sha256 hex>}:<kind>``)."""
    return f"{prefix}:{{{hashlib.sha256(secret.encode()).hexdigest()}}}:{kind}"


def _raw_key(role: str, secret: str) -> str:
    """A raw contender's key for ``role`` (``t``, ``e:u``...) of ``secret``: as long as the store's."""
    return _store_key(role[0], f"{role}:{secret}", RAW_PREFIX)


def _grant_keys(grant_id: str, client_id: str, user_id: str) -> dict[str, str]:
    """The store's keys of a grant entry and its owner epochs, by role (see :data:`GRANT_ROLES`)."""
    return {
        "g": _store_key("g", grant_id),
        "e:c": _store_key("e", f"c:{client_id}"),
        "e:u": _store_key("e", f"u:{user_id}"),
        "e:uc": _store_key("e", f"uc:{len(user_id)}:{user_id}{client_id}"),
    }


def _token_keys(token: AccessToken) -> dict[str, str]:
    """The store's keys of a saved token (with a user id), by role; ``r`` only with a refresh token."""
    assert token.user_id is not None
    user = f"{len(token.client_id)}:{token.client_id}{len(token.grant_type)}:{token.grant_type}{len(token.user_id)}:{token.user_id}"
    keys = {"t": _store_key("t", token.token), "u": _store_key("u", user), **_grant_keys(token.grant_id, token.client_id, token.user_id)}
    if token.refresh_token is not None:
        keys["r"] = _store_key("r", token.refresh_token)
    return keys


def _code_keys(code: AuthorizationCode) -> dict[str, str]:
    """The store's keys of a saved code (with a user id), by role."""
    assert code.user_id is not None
    return {"c": _store_key("c", code.code), **_grant_keys(code.grant_id, code.client_id, code.user_id)}


def _stored(raw: redis.Redis, key: str) -> bytes:
    """The value the store wrote under ``key``, read back from the server."""
    value = raw.get(key)
    if not isinstance(value, bytes):
        raise RuntimeError(f"the store wrote nothing under {key}: has its key layout changed?")
    return value


def _copy(raw: redis.Redis, records: Sequence[tuple[str, Mapping[str, str]]], roles: Sequence[str], optional: Sequence[str] = ()) -> None:
    """For each raw secret and the store's keys of a record, copy the value of each of ``roles``
    to the raw key of that role and secret (expiring in an hour: longer than any run). A role in
    ``optional`` the store did not write (a user entry, without a reissue key) is not copied."""
    pairs = [(_raw_key(role, secret), keys[role], role in optional) for secret, keys in records for role in [*roles, *optional]]
    for start in range(0, len(pairs), 500):
        chunk = pairs[start : start + 500]
        values = raw.mget([store_key for _, store_key, _ in chunk])
        with raw.pipeline(transaction=False) as pipe:
            for (raw_key, store_key, skip_missing), value in zip(chunk, values):
                if isinstance(value, bytes):
                    pipe.set(raw_key, value, ex=3600)
                elif not skip_missing:
                    raise RuntimeError(f"the store wrote nothing under {store_key}: has its key layout changed?")
            pipe.execute()


OWN_ROLES = {"t": "access token", "u": "user entry", "r": "refresh token"}


def _own_writes(raw: redis.Redis, token: AccessToken) -> list[tuple[dict[str, bytes], int | None]]:
    """The token's own values as the store wrote them for ``token`` (read back from the server),
    by role, in one batch per expiration as the store writes them: those that expire (in an hour,
    as the bench's tokens do), then those that never do (a refresh token without
    ``refresh_expires_at``). Each batch with its ``EX`` (None: never)."""
    keys = _token_keys(token)
    expiring: dict[str, bytes] = {}
    forever: dict[str, bytes] = {}
    for role in (role for role in OWN_ROLES if role in keys):
        value = raw.get(keys[role])
        if isinstance(value, bytes):
            ttl = raw.ttl(keys[role])
            assert isinstance(ttl, int)
            (forever if ttl < 0 else expiring)[role] = value  # TTL -1: no expiry
    if "t" not in expiring:
        raise RuntimeError(f"the store wrote no expiring value under {keys['t']}: has its key layout changed?")
    return [(expiring, 3600), *([(forever, None)] if forever else [])]



def _code(now: int) -> AuthorizationCode:
    # A client and user of their own, as a provider's codes have: the grant has three owner epochs.
    return AuthorizationCode("bench-codes", secrets.token_hex(16), now + 600, "https://a.example/cb", ["read"], user_id="alice")


def _tally(server: RedisServer, action: Callable[[], object]) -> str:
    """The commands the server counted while ``action`` ran (``INFO commandstats``), e.g. ``GET 1``."""
    server.command("CONFIG", "RESETSTAT")
    action()
    info = server.command("INFO", "commandstats")
    assert isinstance(info, bytes)
    counts: Counter[str] = Counter()
    for line in info.decode().splitlines():
        if line.startswith("cmdstat_"):
            name, _, stats = line[len("cmdstat_") :].partition(":")
            calls = int(stats.split(",")[0].removeprefix("calls="))
            if name.split("|")[0] not in ("config", "info"):
                counts[name.upper()] += calls
    return ", ".join(f"{name} {calls}" for name, calls in sorted(counts.items()))


def measure(sizes: Sizes, server: RedisServer) -> Part:
    """Time the store's operations against raw redis-py making the same requests (and python-oauth2
    where it has the operation) on ``server``."""
    # The test servers fsync every write (a SIGKILL loses nothing); everysec is Redis's own
    # setting for the append-only file, and what a provider runs.
    server.command("CONFIG", "SET", "appendfsync", "everysec")
    n = sizes.warmup + sizes.memcache_ops
    store = RedisTokenStore(redis_client(port=server.port), prefix=PREFIX)
    raw = redis_client(port=server.port)
    assert isinstance(raw, redis.Redis)  # redis_client builds a one-server client
    legacy = LegacyRedisStore(rs=redis_client(port=server.port), prefix="legacy")
    try:
        commands = _commands(server, store)
        save_contenders, save_raw, save_writes = _save(store, raw, legacy, n, refresh=True)
        bare_contenders, bare_raw, bare_writes = _save(store, raw, legacy, n, refresh=False)
        sections = [
            Section(
                "save_token with refresh token and user id",
                alternate(save_contenders, sizes.memcache_ops, sizes.warmup),
                save_raw,
                notes=(
                    "The raw row makes only the token's own writes, one `MULTI`/`EXEC` per expiration, as the server shows the "
                    f"store wrote them: {save_writes}. Each token here starts a grant of its own for a user of its own (none "
                    "names a grant), so the store also writes the grant entry (a script's append, then `SET NX`), creates the "
                    "user's two owner epochs (`MGET`, then a `SET NX` each), indexes the grant under its client and user (script "
                    "appends, and a `SET NX` for the new user's index) and reads the grant entry and epochs back (`MGET`). The "
                    f"server counted (commands of the store's scripts included), for one such save: {commands['save_new']}; for a save into an existing grant: "
                    f"{commands['save_joined']}.",
                ),
            ),
            Section(
                "save_token without refresh token",
                alternate(bare_contenders, sizes.memcache_ops, sizes.warmup),
                bare_raw,
                notes=(f"As above; the raw row writes {bare_writes}. The server counted, for one save: {commands['save_bare']}.",),
            ),
            Section(
                "fetch_by_token and fetch_by_refresh_token",
                alternate(_fetch(store, raw, n), sizes.memcache_ops, sizes.warmup),
                RAW_GET,
                notes=(
                    "A first read (cold) decodes and validates the record; a read again (warm) finds the payload's record in the "
                    "codec's cache. `fetch_by_token` is one `GET`; `fetch_by_refresh_token` two `MGET`s: the refresh token with "
                    f"its retired marker, the grant entry with its owner epochs. The server counted {commands['fetch']}, and "
                    f"{commands['refresh']}.",
                ),
            ),
            Section(
                "consume_code",
                _alternate(_consume(store, raw, legacy, n), sizes),
                RAW_CONSUME,
                notes=(
                    "`consume_code` makes four requests: the code with its consumed marker (`MGET`), its grant entry with the "
                    "owner epochs (`MGET`), a `SET NX` of the marker (the exactly-once arbiter), the `DEL`; the server counted "
                    f"{commands['consume']}. Warm: the code was read just before (untimed), so its record comes from the codec's "
                    "cache.",
                ),
            ),
            Section(
                "delete_refresh_token (rotation)",
                _alternate(_rotate(store, raw, n), sizes),
                RAW_ROTATE,
                notes=(
                    "Four requests: the refresh token with its retired marker, the grant entry with the owner epochs, a `SET NX` "
                    "of the retired marker, one `DEL` of the refresh, access and user keys; the server counted "
                    f"{commands['rotate']}. Warm: the refresh token was read just before (untimed).",
                ),
            ),
        ]
    finally:
        store.close()
        raw.close()
        legacy.rs.close()
    save, save_bare, fetch, consume, rotate = sections
    targets = [Target(f"redis: {name} within {FETCH_LIMIT}x of a raw GET", fetch.ratio(name), FETCH_LIMIT) for name in ("fetch_by_token, cold", "fetch_by_token, warm")]
    figures = [
        ("save_token with refresh token (over the token's own writes)", save.ratio(OURS)),
        ("save_token without refresh token (over the token's own writes)", save_bare.ratio(OURS)),
        ("fetch_by_token, cold", fetch.ratio("fetch_by_token, cold")),
        ("fetch_by_token, warm", fetch.ratio("fetch_by_token, warm")),
        ("fetch_by_refresh_token, cold", fetch.ratio("fetch_by_refresh_token, cold", RAW_REFRESH)),
        ("consume_code, cold", consume.ratio(f"{OURS} consume_code, cold")),
        ("consume_code, warm", consume.ratio(f"{OURS} consume_code, warm")),
        ("delete_refresh_token, cold", rotate.ratio(f"{OURS} delete_refresh_token, cold")),
        ("delete_refresh_token, warm", rotate.ratio(f"{OURS} delete_refresh_token, warm")),
    ]
    extra = "\n".join(
        [
            "The store over raw redis-py making the same requests with the same bytes (median time ratios):",
            "",
            "| operation | RedisTokenStore / raw redis-py |",
            "| --- | ---: |",
            *(f"| {operation} | {ratio:.2f}x |" for operation, ratio in figures),
        ]
    )
    return Part(
        heading="Redis",
        intro=(
            f"One redis-server on loopback (append-only file on, `appendfsync everysec`). {sizes.memcache_ops} operations per "
            f"contender after {sizes.warmup} untimed, alternating op by op; per operation. Raw redis-py makes the same requests "
            "with copies of the store's values, under keys as long as the store's, through a client built by `redis_client` "
            "as the store's is. The store has no `reissue_key`, so it writes no user entries."
        ),
        sections=sections,
        targets=targets,
        extra=extra,
    )


def _alternate(contenders: tuple[dict[str, Operation], dict[str, Operation]], sizes: Sizes) -> dict[str, list[float]]:
    """:func:`alternate` over contenders and their untimed preparation steps."""
    return alternate(contenders[0], sizes.memcache_ops, sizes.warmup, prepare=contenders[1])


def _save(store: RedisTokenStore, raw: redis.Redis, legacy: Any, n: int, refresh: bool) -> tuple[dict[str, Operation], str, str]:
    """save_token, raw redis-py writing the token's own values as the store did (the same sizes,
    in the same ``MULTI``/``EXEC`` batches, expiring or not), and python-oauth2's save_token.
    Returns the contenders, the raw contender's name and what it writes."""
    ours, legacy_tokens = _tokens(AccessToken, n, refresh), _tokens(LegacyAccessToken, n, refresh)
    sample = _tokens(AccessToken, 1, refresh)[0]
    store.save_token(sample)
    batches = _own_writes(raw, sample)
    raw_secrets = [secrets.token_hex(16) for _ in range(n)]

    def raw_save(i: int) -> None:
        for values, ex in batches:
            with raw.pipeline(transaction=True) as pipe:
                for role, value in values.items():
                    pipe.set(_raw_key(role, raw_secrets[i]), value, ex=ex)
                pipe.execute()

    described = "; ".join(
        " and ".join(f"the {OWN_ROLES[role]} ({len(value)} bytes)" for role, value in values.items()) + ("" if ex else ", never expiring")
        for values, ex in batches
    )
    name = f"raw redis-py, the token's own writes (MULTI/EXEC x{len(batches)})"
    contenders: dict[str, Operation] = {OURS: lambda i: store.save_token(ours[i]), name: raw_save, LEGACY: lambda i: legacy.save_token(legacy_tokens[i])}
    return contenders, name, described


def _fetch(store: RedisTokenStore, raw: redis.Redis, n: int) -> dict[str, Operation]:
    # save_token writes one payload under the token and the refresh token: each cold row reads
    # its own tokens, so neither finds a payload the other just decoded and cached.
    by_token, by_refresh, seen = _tokens(AccessToken, n), _tokens(AccessToken, n), _tokens(AccessToken, 100)
    for token in by_token + by_refresh + seen:
        store.save_token(token)
    _copy(raw, [(token.token, _token_keys(token)) for token in by_token], ["t"])
    _copy(raw, [(token.token, _token_keys(token)) for token in by_refresh], ["r", *GRANT_ROLES])
    for token in seen:  # decoded once already: a resource server reads the same token again
        store.fetch_by_token(token.token)

    def raw_refresh(i: int) -> None:
        secret = by_refresh[i].token
        raw.mget([_raw_key("r", secret), _raw_key("x", secret)])
        raw.mget([_raw_key(role, secret) for role in GRANT_ROLES])

    return {
        "fetch_by_token, cold": lambda i: store.fetch_by_token(by_token[i].token),
        "fetch_by_token, warm": lambda i: store.fetch_by_token(seen[i % len(seen)].token),
        "fetch_by_refresh_token, cold": lambda i: store.fetch_by_refresh_token(by_refresh[i].refresh_token or ""),
        RAW_GET: lambda i: raw.get(_raw_key("t", by_token[i].token)),
        RAW_REFRESH: raw_refresh,
    }


def _consume(store: RedisTokenStore, raw: redis.Redis, legacy: Any, n: int) -> tuple[dict[str, Operation], dict[str, Operation]]:
    """consume_code cold and warm, the raw floor of its four requests, the two requests a store
    without the lifecycle made, and python-oauth2's fetch then delete."""
    now = int(time.time())
    cold, warm, raw_codes = ([_code(now) for _ in range(n)] for _ in range(3))
    legacy_codes = [LegacyAuthorizationCode("client-id", secrets.token_hex(16), now + 600, "https://a.example/cb", ["read"]) for _ in range(n)]
    sample = _code(now)
    for code in [*cold, *warm, *raw_codes, sample]:
        store.save_code(code)
    for legacy_code in legacy_codes:
        legacy.save_code(legacy_code)
    records = [(code.code, _code_keys(code)) for code in raw_codes]
    _copy(raw, records, ["c", *GRANT_ROLES])
    _copy(raw, [(f"2:{secret}", keys) for secret, keys in records], ["c"])  # for the two-request contender
    store.consume_code(sample.code)
    marker = _stored(raw, _store_key("k", sample.code))

    def raw_consume(i: int) -> None:
        secret = raw_codes[i].code
        raw.mget([_raw_key("c", secret), _raw_key("k", secret)])
        raw.mget([_raw_key(role, secret) for role in GRANT_ROLES])
        raw.set(_raw_key("k", secret), marker, nx=True, ex=600)
        raw.delete(_raw_key("c", secret))

    def raw_get_delete(i: int) -> None:
        key = _raw_key("c", f"2:{raw_codes[i].code}")
        raw.get(key)
        raw.delete(key)

    def legacy_consume(i: int) -> None:
        legacy.fetch_by_code(legacy_codes[i].code)
        legacy.delete_code(legacy_codes[i].code)

    contenders: dict[str, Operation] = {
        f"{OURS} consume_code, cold": lambda i: store.consume_code(cold[i].code),
        f"{OURS} consume_code, warm": lambda i: store.consume_code(warm[i].code),
        RAW_CONSUME: raw_consume,
        "raw redis-py GET + DEL (the 2 requests before the lifecycle)": raw_get_delete,
        f"{LEGACY} fetch_by_code + delete_code (not atomic)": legacy_consume,
    }
    prepare: dict[str, Operation] = {f"{OURS} consume_code, warm": lambda i: store.fetch_by_code(warm[i].code)}
    return contenders, prepare


def _rotate(store: RedisTokenStore, raw: redis.Redis, n: int) -> tuple[dict[str, Operation], dict[str, Operation]]:
    """delete_refresh_token cold and warm against the raw floor of its four requests."""
    cold, warm, raw_tokens = _tokens(AccessToken, n), _tokens(AccessToken, n), _tokens(AccessToken, n)
    sample = _tokens(AccessToken, 1)[0]
    for token in [*cold, *warm, *raw_tokens, sample]:
        store.save_token(token)
    _copy(raw, [(token.token, _token_keys(token)) for token in raw_tokens], ["r", "t", *GRANT_ROLES], optional=["u"])
    store.delete_refresh_token(sample.refresh_token or "")
    marker = _stored(raw, _store_key("x", sample.refresh_token or ""))

    def raw_rotate(i: int) -> None:
        secret = raw_tokens[i].token
        raw.mget([_raw_key("r", secret), _raw_key("x", secret)])
        raw.mget([_raw_key(role, secret) for role in GRANT_ROLES])
        raw.set(_raw_key("x", secret), marker, nx=True, ex=3600)
        raw.delete(_raw_key("r", secret), _raw_key("t", secret), _raw_key("u", secret))

    contenders: dict[str, Operation] = {
        f"{OURS} delete_refresh_token, cold": lambda i: store.delete_refresh_token(cold[i].refresh_token or ""),
        f"{OURS} delete_refresh_token, warm": lambda i: store.delete_refresh_token(warm[i].refresh_token or ""),
        RAW_ROTATE: raw_rotate,
    }
    prepare: dict[str, Operation] = {f"{OURS} delete_refresh_token, warm": lambda i: store.fetch_by_refresh_token(warm[i].refresh_token or "")}
    return contenders, prepare


def _commands(server: RedisServer, store: RedisTokenStore) -> dict[str, str]:
    """What the server counts for one of each operation timed, on records of their own, for the
    notes (the commands the store's Lua scripts run included)."""
    now = int(time.time())
    loader, first, rotated = _tokens(AccessToken, 3)
    bare = _tokens(AccessToken, 1, refresh=False)[0]
    code = _code(now)

    def into_grant(token: AccessToken) -> AccessToken:
        return AccessToken(token.client_id, token.grant_type, secrets.token_hex(16), {"key": "value"}, now + 3600, secrets.token_hex(16), ["read", "write"], user_id=token.user_id, grant_id=token.grant_id)

    # Saves into a new and an existing grant load every script the store runs into the server,
    # so no SCRIPT LOAD is counted below.
    for token in (loader, into_grant(loader), rotated):
        store.save_token(token)
    store.save_code(code)
    return {
        "save_new": _tally(server, lambda: store.save_token(first)),
        "save_joined": _tally(server, lambda: store.save_token(into_grant(first))),
        "save_bare": _tally(server, lambda: store.save_token(bare)),
        "fetch": _tally(server, lambda: store.fetch_by_token(first.token)),
        "refresh": _tally(server, lambda: store.fetch_by_refresh_token(rotated.refresh_token or "")),
        "consume": _tally(server, lambda: store.consume_code(code.code)),
        "rotate": _tally(server, lambda: store.delete_refresh_token(rotated.refresh_token or "")),
    }
