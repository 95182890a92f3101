"""SqlTokenStore on SQLite and PostgreSQL next to raw SQLAlchemy Core statements on the same engine
(the floor: the same rows, the same statement shape, a transaction begun the same way, and no store
around them), and TieredTokenStore (memcached in front of PostgreSQL) next to the stores it is
made of. Contenders alternate operation by operation.

Reads are timed first with records the process has not decoded yet (cold) and then with records
it has (warm: the codec's cache of records by payload; the select and the unsealing still run).
python-oauth2 1.1.1 has no row here: its only SQL store (``oauth2.store.dbapi``) is a DB-API base
class whose one concrete adapter is for MySQL (``oauth2.store.dbapi.mysql``), with no SQLite or
PostgreSQL store to run it on."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
from harness import Operation, Part, Section, Sizes, alternate
from memcache_bench import _tokens
from sqlalchemy.engine import Engine

from oauth2_store import AccessToken
from oauth2_store.codec import ACCESS_TOKEN_CODEC
from oauth2_store.sealing import seal, secret_key
from oauth2_store.store import sql as sql_module
from oauth2_store.store.memcache import MemcacheTokenStore
from oauth2_store.store.sql import SqlTokenStore, sql_engine
from oauth2_store.store.sql_engine import SqlDatabase
from oauth2_store.store.sql_schema import SqlSchema
from oauth2_store.store.tiered import TieredTokenStore
from tests.memcached_server import MemcachedServer
from tests.postgres_server import PostgresServer

OURS = "SqlTokenStore"
TIERED = "TieredTokenStore"
MEMCACHE = "MemcacheTokenStore"
PREFIX = "bench"
RAW_SELECT = "raw SQLAlchemy select"
RAW_SAVE = "raw SQLAlchemy: the token's 2 rows, 1 transaction"
TIERED_CACHE_PREFIX = "tier0"
MEMCACHE_PREFIX = "mcst0"  # as long as TIERED_CACHE_PREFIX: both stores' keys are as long
WARM_TOKENS = 100
"""How many tokens the warm contenders cycle through (read once, untimed, beforehand)."""
SETUP_THREADS = 8
"""Threads saving the tokens the reads read, untimed (the timed saves run one at a time)."""

SQLITE, POSTGRES = "SQLite", "PostgreSQL"


def measure(sizes: Sizes, postgres: PostgresServer, memcached: MemcachedServer) -> Part:
    """Time SqlTokenStore's ``save_token`` and ``fetch_by_token`` on a SQLite file (in a temporary
    directory) and on ``postgres`` against raw SQLAlchemy on the same engines, and
    TieredTokenStore's ``fetch_by_token`` (``memcached`` over ``postgres``) on a cache hit and a
    miss against MemcacheTokenStore and SqlTokenStore alone.

    Raises:
        RuntimeError: a raw statement found nothing where the store wrote (the schema changed).
        StoreUnavailableError: a database or memcached failed.
    """
    n = sizes.warmup + sizes.memcache_ops
    with tempfile.TemporaryDirectory(prefix="oauth2-store-bench-sqlite-") as directory:
        engines = {SQLITE: sql_engine(f"sqlite:///{Path(directory) / 'bench.db'}"), POSTGRES: sql_engine(postgres.url)}
        stores = {name: SqlTokenStore(engine, PREFIX) for name, engine in engines.items()}
        tiered = TieredTokenStore(SqlTokenStore(engines[POSTGRES], "tiered"), MemcacheTokenStore(servers=[memcached.address], prefix=TIERED_CACHE_PREFIX))
        memcache_alone = MemcacheTokenStore(servers=[memcached.address], prefix=MEMCACHE_PREFIX)
        try:
            for store in [*stores.values(), tiered.durable]:
                store.migrate()
            counted = {name: _counted_once(store) for name, store in stores.items()}
            counted_tiered = _counted_tiered(tiered, memcached)
            # The tokens the timed saves store are the cold reads' tokens: saved, never read since.
            saved = {name: _tokens(AccessToken, n) for name in stores}
            saves = {name: _timed(_save(store, engines[name], saved[name]), sizes) for name, store in stores.items()}
            fetches = {name: _timed(_fetch(store, engines[name], saved[name]), sizes) for name, store in stores.items()}
            hit = _timed(_tiered_hit(tiered, memcache_alone, n), sizes)
            miss = _timed(_tiered_miss(tiered, n), sizes)
        finally:
            memcache_alone.close()
            tiered.close()
            for engine in engines.values():
                engine.dispose()
    sections = [
        *(
            Section(
                f"{name}: save_token with refresh token and user id",
                samples,
                RAW_SAVE,
                notes=(
                    "The raw row inserts the token's own two rows (access token and refresh token, sealed values of the "
                    "same size) in one transaction: the floor of a durable save. Each token here starts a grant of its own "
                    "(none names one), so the store also writes the grant's row, and it seals the record twice, in the same "
                    f"one transaction; SQLAlchemy counted, for one such save: {counted[name]['save']} (the transaction's "
                    f"`BEGIN` left out). {_purge_note()}"
                    + (_SQLITE_NOTE if name == SQLITE else _POSTGRES_NOTE),
                ),
            )
            for name, samples in saves.items()
        ),
        *(
            Section(
                f"{name}: fetch_by_token",
                samples,
                RAW_SELECT,
                notes=(
                    "`fetch_by_token` is one `SELECT record FROM bench_tokens WHERE digest = :d AND (expires_at IS NULL OR "
                    f"expires_at > :now)` in a transaction (SQLAlchemy counted {counted[name]['fetch']}), then the record "
                    "unsealed (AES-GCM) and decoded. The raw row runs the same select, built the same way (SQLAlchemy "
                    "Core, the digest computed per call), on the same engine in a read transaction begun as the store begins its own, reading the rows the cold "
                    "contender reads; it neither unseals nor decodes. Cold: the tokens the save_token table above saved, not "
                    "read since. Warm: the record's payload was decoded before (untimed), so the codec's cache answers; the "
                    "select and the unsealing still run. "
                    + (_SQLITE_READ_NOTE if name == SQLITE else ""),
                ),
            )
            for name, samples in fetches.items()
        ),
        Section(
            "tiered (memcached over PostgreSQL): fetch_by_token on a cache hit",
            hit,
            f"{MEMCACHE}, cold",
            notes=(
                f"A hit is one memcached get, as `{MEMCACHE}.fetch_by_token` is: both read a sealed token record of the same "
                f"size under a key of the same length (prefixes `{TIERED_CACHE_PREFIX}` and `{MEMCACHE_PREFIX}`), on the same "
                f"memcached (the one of the Memcached part). Counted for one hit: {counted_tiered['hit']}.",
            ),
        ),
        Section(
            "tiered (memcached over PostgreSQL): fetch_by_token on a cache miss",
            miss,
            f"{OURS} alone, cold",
            notes=(
                "The tokens were saved through the tiered store, then deleted from the cache "
                "(`cache.uncache_access_tokens`): a miss is a memcached get that finds nothing, then the SQL store's "
                f"select (a miss does not fill the cache). Counted for one miss: {counted_tiered['miss']}. `{OURS} alone` is the "
                "tiered store's own durable store (`tiered.durable`), read directly, on tokens saved there.",
            ),
        ),
    ]
    return Part(
        heading="SQL",
        intro=(
            f"A SQLite file in a temporary directory and one PostgreSQL server on loopback (started by the benchmark), "
            f"one engine each from `sql_engine`. {sizes.memcache_ops} operations per contender after {sizes.warmup} "
            "untimed, alternating op by op; per operation, one thread. No targets: the issue sets none for the SQL stores, "
            "so these are figures only."
        ),
        sections=sections,
        targets=[],
        extra=_summary(saves, fetches, hit, miss),
    )


_SQLITE_NOTE = (
    "SQLite runs in WAL mode with `synchronous=FULL` (as `sql_engine` sets it): every commit fsyncs the write-ahead log, "
    "for the store and the raw row alike, and that fsync is most of the time."
)
_POSTGRES_NOTE = (
    "PostgreSQL runs with `fsync` and `synchronous_commit` on (the test server's settings, `shared_buffers` 16 MB, "
    "otherwise untuned): every commit flushes the write-ahead log."
)
_SQLITE_READ_NOTE = (
    "On SQLite a read is a deferred transaction (`BEGIN`, taking no write lock: in WAL mode it reads a snapshot); the "
    "raw row's transaction is begun the same way (`SqlDatabase.read`, the store's own path to the engine)."
)


def _timed(contenders: dict[str, Operation], sizes: Sizes) -> dict[str, list[float]]:
    """:func:`alternate` over ``contenders`` at the memcached sizes."""
    return alternate(contenders, sizes.memcache_ops, sizes.warmup)


def _purge_note() -> str:
    """What a timed save may include besides the save: the store's purge now and then (if it has one)."""
    every = getattr(sql_module, "PURGE_EVERY", None)
    if not isinstance(every, int):
        return ""
    return f"Every {every}th save also purges expired rows (none here) in a transaction of its own: in the max, not the median. "


def _statements(engines: list[Engine], action: Callable[[], object]) -> str:
    """The SQL statements ``action`` ran on ``engines``, by kind (``SELECT 1``), the transactions'
    ``BEGIN`` left out (SQLite's is a statement, PostgreSQL's is psycopg's own)."""
    counts: Counter[str] = Counter()

    def count(_connection: object, _cursor: object, statement: str, *_rest: object) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb != "BEGIN":
            counts[verb] += 1

    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", count)
    try:
        action()
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", count)
    return ", ".join(f"`{verb}` {calls}" for verb, calls in sorted(counts.items())) or "none"


def _gets(memcached: MemcachedServer, action: Callable[[], object]) -> str:
    """The keys ``action`` read from ``memcached``, as its statistics count them: hits and misses."""
    before = memcached.stats()
    action()
    after = memcached.stats()
    hits, misses = (int(after[name]) - int(before[name]) for name in ("get_hits", "get_misses"))
    return f"memcached {hits} key(s) found, {misses} missed"


def _counted_once(store: SqlTokenStore) -> dict[str, str]:
    """The statements of one save (a token starting its grant) and one fetch, on tokens of their own."""
    token = _tokens(AccessToken, 1)[0]
    engines = [store.engine]
    return {"save": _statements(engines, lambda: store.save_token(token)), "fetch": _statements(engines, lambda: store.fetch_by_token(token.token))}


def _counted_tiered(tiered: TieredTokenStore, memcached: MemcachedServer) -> dict[str, str]:
    """The memcached reads and SQL statements of one tiered hit and one miss, on tokens of their own."""
    hit, miss = _tokens(AccessToken, 2)
    for token in (hit, miss):
        tiered.save_token(token)
    tiered.cache.uncache_access_tokens([_digest(miss.token)])
    engines = [tiered.durable.engine]

    def counted(token: AccessToken) -> str:
        sql: list[str] = []
        gets = _gets(memcached, lambda: sql.append(_statements(engines, lambda: tiered.fetch_by_token(token.token))))
        return f"{gets}; SQL statements: {sql[0]}"

    return {"hit": counted(hit), "miss": counted(miss)}


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _raw_select(database: SqlDatabase, tokens: sa.Table, token: str) -> bytes | None:
    """The store's select of a token's record, by digest and live, in a read transaction begun
    as the store begins its own."""
    query = sa.select(tokens.c.record).where(tokens.c.digest == _digest(token), sa.or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > int(time.time())))
    record = database.read(lambda connection: connection.execute(query).scalar())
    return None if record is None else bytes(record)


def _save_all(save: Callable[[AccessToken], None], tokens: list[AccessToken]) -> None:
    """Save ``tokens`` (untimed set-up) from :data:`SETUP_THREADS` threads: PostgreSQL flushes
    the write-ahead log for concurrent commits together."""
    with ThreadPoolExecutor(max_workers=SETUP_THREADS) as pool:
        for _ in pool.map(save, tokens):  # re-raises a save's error
            pass


def _save(store: SqlTokenStore, engine: Engine, ours: list[AccessToken]) -> dict[str, Operation]:
    """save_token of ``ours`` (each with a refresh token, a user id and a grant of its own)
    against raw inserts of a token's two rows in one transaction."""
    schema = SqlSchema(store.prefix)
    n = len(ours)
    sample = _tokens(AccessToken, 1)[0]
    payload = ACCESS_TOKEN_CODEC.encode(sample)
    sealed_token, sealed_refresh = seal(secret_key(sample.token), b"t", payload), seal(secret_key(sample.refresh_token or ""), b"r", payload)
    raw_tokens = [(secrets.token_hex(16), secrets.token_hex(16), f"g-{secrets.token_hex(16)}") for _ in range(n)]
    expires_at = int(time.time()) + 3600

    def raw_save(i: int) -> None:
        token, refresh, grant_id = raw_tokens[i]
        token_digest = _digest(token)
        with engine.begin() as connection:
            connection.execute(
                schema.tokens.insert().values(digest=token_digest, grant_id=grant_id, expires_at=expires_at, token_digest=None, record=sealed_token)
            )
            connection.execute(
                schema.refresh_tokens.insert().values(
                    digest=_digest(refresh), grant_id=grant_id, expires_at=None, token_digest=token_digest, retired=False, record=sealed_refresh
                )
            )

    return {OURS: lambda i: store.save_token(ours[i]), RAW_SAVE: raw_save}


def _fetch(store: SqlTokenStore, engine: Engine, cold: list[AccessToken]) -> dict[str, Operation]:
    """fetch_by_token cold (``cold``: saved, never read) and warm against the raw select of the
    cold contender's rows."""
    warm = _tokens(AccessToken, WARM_TOKENS)
    _save_all(store.save_token, warm)
    for token in warm:  # decoded once already: a resource server reads the same token again
        store.fetch_by_token(token.token)
    tokens, database = SqlSchema(store.prefix).tokens, SqlDatabase(engine)
    if _raw_select(database, tokens, cold[0].token) is None:
        raise RuntimeError(f"the raw select found no row the store wrote in {tokens.name}: has the schema changed?")
    contenders: dict[str, Operation] = {
        "fetch_by_token, cold": lambda i: store.fetch_by_token(cold[i].token),
        "fetch_by_token, warm": lambda i: store.fetch_by_token(warm[i % len(warm)].token),
        RAW_SELECT: lambda i: _raw_select(database, tokens, cold[i].token),
    }
    return contenders


def _tiered_hit(tiered: TieredTokenStore, memcache_alone: MemcacheTokenStore, n: int) -> dict[str, Operation]:
    """TieredTokenStore.fetch_by_token on a cache hit against MemcacheTokenStore.fetch_by_token
    alone, both cold and warm, on the same memcached."""
    tiered_cold, tiered_warm = _tokens(AccessToken, n), _tokens(AccessToken, WARM_TOKENS)
    alone_cold, alone_warm = _tokens(AccessToken, n), _tokens(AccessToken, WARM_TOKENS)
    _save_all(tiered.save_token, tiered_cold + tiered_warm)
    _save_all(memcache_alone.save_token, alone_cold + alone_warm)
    for token in tiered_warm:
        tiered.fetch_by_token(token.token)
    for token in alone_warm:
        memcache_alone.fetch_by_token(token.token)
    if tiered.cache.cached_access_token(tiered_cold[0].token) is None:
        raise RuntimeError("a token saved through the tiered store is not in its cache")
    contenders: dict[str, Operation] = {
        f"{TIERED}, hit, cold": lambda i: tiered.fetch_by_token(tiered_cold[i].token),
        f"{TIERED}, hit, warm": lambda i: tiered.fetch_by_token(tiered_warm[i % WARM_TOKENS].token),
        f"{MEMCACHE}, cold": lambda i: memcache_alone.fetch_by_token(alone_cold[i].token),
        f"{MEMCACHE}, warm": lambda i: memcache_alone.fetch_by_token(alone_warm[i % WARM_TOKENS].token),
    }
    return contenders


def _tiered_miss(tiered: TieredTokenStore, n: int) -> dict[str, Operation]:
    """TieredTokenStore.fetch_by_token on a cache miss (tokens deleted from the cache) against its
    durable SqlTokenStore alone, both cold and warm."""
    missed_cold, missed_warm = _tokens(AccessToken, n), _tokens(AccessToken, WARM_TOKENS)
    alone_cold, alone_warm = _tokens(AccessToken, n), _tokens(AccessToken, WARM_TOKENS)
    _save_all(tiered.save_token, missed_cold + missed_warm)
    for token in missed_warm:  # decoded once (a hit), then dropped from the cache below
        tiered.fetch_by_token(token.token)
    digests = [_digest(token.token) for token in missed_cold + missed_warm]
    tiered.cache.uncache_access_tokens(digests)
    _save_all(tiered.durable.save_token, alone_cold + alone_warm)
    for token in alone_warm:
        tiered.durable.fetch_by_token(token.token)
    if tiered.cache.cached_access_token(missed_cold[0].token) is not None or tiered.cache.cached_access_token(missed_warm[0].token) is not None:
        raise RuntimeError("uncache_access_tokens left a token in the cache")
    contenders: dict[str, Operation] = {
        f"{TIERED}, miss, cold": lambda i: tiered.fetch_by_token(missed_cold[i].token),
        f"{TIERED}, miss, warm": lambda i: tiered.fetch_by_token(missed_warm[i % WARM_TOKENS].token),
        f"{OURS} alone, cold": lambda i: tiered.durable.fetch_by_token(alone_cold[i].token),
        f"{OURS} alone, warm": lambda i: tiered.durable.fetch_by_token(alone_warm[i % WARM_TOKENS].token),
    }
    return contenders


def _summary(saves: dict[str, dict[str, list[float]]], fetches: dict[str, dict[str, list[float]]], hit: dict[str, list[float]], miss: dict[str, list[float]]) -> str:
    """The part's summary tables: medians and serial throughput per database, then the ratios."""
    rows = [
        ("save_token with refresh token", saves, OURS, RAW_SAVE),
        ("fetch_by_token, cold", fetches, "fetch_by_token, cold", RAW_SELECT),
        ("fetch_by_token, warm", fetches, "fetch_by_token, warm", RAW_SELECT),
    ]
    databases = list(saves)
    lines = [
        f"SQLite {sqlite3.sqlite_version} (Python's sqlite3), SQLAlchemy {sa.__version__}. Medians per operation, and "
        "what one thread does one operation at a time (1 / median):",
        "",
        "| operation | " + " | ".join(f"{db} µs | {db} ops/s" for db in databases) + " |",
        "| --- | " + " | ".join("---: | ---:" for _ in databases) + " |",
    ]
    for label, samples, contender, _ in rows:
        cells = [statistics.median(samples[db][contender]) for db in databases]
        lines.append(f"| {label} | " + " | ".join(f"{cell * 1e6:.0f} | {1 / cell:,.0f}" for cell in cells) + " |")
    lines += [
        "",
        "The stores over raw SQLAlchemy on the same engine, and the tiered store over the stores it is made of (median "
        "time ratios):",
        "",
        "| operation | over | ratio |",
        "| --- | --- | ---: |",
    ]
    for label, samples, contender, reference in rows:
        for db in databases:
            lines.append(f"| {OURS} on {db}: {label} | {reference} | {statistics.median(samples[db][contender]) / statistics.median(samples[db][reference]):.2f}x |")
    for temperature in ("cold", "warm"):
        ratio = statistics.median(hit[f"{TIERED}, hit, {temperature}"]) / statistics.median(hit[f"{MEMCACHE}, {temperature}"])
        lines.append(f"| {TIERED}: fetch_by_token, hit, {temperature} | {MEMCACHE}.fetch_by_token, {temperature} | {ratio:.2f}x |")
    for temperature in ("cold", "warm"):
        ratio = statistics.median(miss[f"{TIERED}, miss, {temperature}"]) / statistics.median(miss[f"{OURS} alone, {temperature}"])
        lines.append(f"| {TIERED}: fetch_by_token, miss, {temperature} | {OURS}.fetch_by_token on {POSTGRES}, {temperature} | {ratio:.2f}x |")
    return "\n".join(lines)
