"""Reliability scenarios on the SQL stores: a PostgreSQL server killed mid-write, a long run of
short-lived tokens kept in check by ``purge``, and several processes on one SQLite file.

- PostgreSQL killed with SIGKILL while threads save codes and tokens (own server, fsync on):
  after the restart every acknowledged save reads back whole, and every save that failed is
  either there whole (committed, the reply lost) or not there at all; the tables hold no row of
  a partial record (checked directly, with SQLAlchemy Core on :class:`SqlSchema`'s tables).
- Tokens issued in waves under a :class:`ManualClock`, each living a short time, ``purge`` between
  waves: the rows stay at the live set, however many were issued; live tokens are found, expired
  ones are not; the token lookup is still a primary-key lookup at the end (SQLite, PostgreSQL).
- Four spawned processes on one SQLite file, each saving and reading back its own tokens while
  revoking other processes' users: no busy timeout at this load, every read whole.

Each prints a one-line summary (``pytest -s``; listed at the end of the run). Every loop is bounded
in count, and every wait in time.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.clock import ManualClock
from oauth2_store.codec import ACCESS_TOKEN_CODEC
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, StoreUnavailableError
from oauth2_store.sealing import seal, secret_key, unseal
from oauth2_store.store.sql import SqlTokenStore, sql_engine
from oauth2_store.store.sql_schema import SqlSchema
from oauth2_store.urls import open_store
from tests.memcache_backends import REISSUE_KEY
from tests.postgres_server import PostgresServer
from tests.support import Figures, Scale
from tests.test_memcache_races import gather

pytestmark = pytest.mark.reliability

CLIENT = "sql-reliability-client"

_R = TypeVar("_R", AccessToken, AuthorizationCode)


def digest(secret: str) -> bytes:
    """The key of a secret's row: its SHA-256 digest (see :mod:`oauth2_store.store.sql_schema`)."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def count_rows(connection: Connection, table: sa.Table) -> int:
    """How many rows ``table`` holds."""
    return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def orphan_rows(connection: Connection, schema: SqlSchema, *, with_latest: bool) -> dict[str, int]:
    """The rows of a partial record, by what is wrong with them (only the kinds found): a token,
    refresh token, code or latest-token entry without its grant row, or in a revoked grant; an
    access token without the refresh token it was saved with, or the other way round; a latest
    entry without its token, and (``with_latest``: every token was saved by a store with a reissue
    key, each for a user of its own) a token without its latest entry.

    Every token of the scenarios that call this has a refresh token, and none is rotated."""
    grants, tokens, refresh_tokens, codes, latest = schema.grants, schema.tokens, schema.refresh_tokens, schema.codes, schema.latest
    checks: dict[str, sa.Select[int]] = {}
    for name, table in (("token", tokens), ("refresh token", refresh_tokens), ("code", codes), ("latest entry", latest)):
        joined = table.join(grants, grants.c.grant_id == table.c.grant_id, isouter=True)
        checks[f"{name} without its grant"] = sa.select(sa.func.count()).select_from(joined).where(grants.c.grant_id.is_(None))
    for name, table, live in (
        ("token", tokens, sa.true()),
        ("refresh token", refresh_tokens, refresh_tokens.c.retired.is_(False)),
        ("code", codes, codes.c.consumed.is_(False)),
        ("latest entry", latest, sa.true()),
    ):
        joined = table.join(grants, grants.c.grant_id == table.c.grant_id)
        checks[f"{name} in a revoked grant"] = sa.select(sa.func.count()).select_from(joined).where(grants.c.revoked.is_(True), live)
    token_without_refresh = tokens.join(refresh_tokens, refresh_tokens.c.token_digest == tokens.c.digest, isouter=True)
    checks["token without its refresh token"] = sa.select(sa.func.count()).select_from(token_without_refresh).where(refresh_tokens.c.digest.is_(None))
    refresh_without_token = refresh_tokens.join(tokens, tokens.c.digest == refresh_tokens.c.token_digest, isouter=True)
    checks["refresh token without its token"] = sa.select(sa.func.count()).select_from(refresh_without_token).where(tokens.c.digest.is_(None))
    latest_without_token = latest.join(tokens, tokens.c.digest == latest.c.token_digest, isouter=True)
    checks["latest entry without its token"] = sa.select(sa.func.count()).select_from(latest_without_token).where(tokens.c.digest.is_(None))
    if with_latest:
        token_without_latest = tokens.join(latest, latest.c.token_digest == tokens.c.digest, isouter=True)
        checks["token without its latest entry"] = sa.select(sa.func.count()).select_from(token_without_latest).where(latest.c.digest.is_(None))
    found = {name: int(connection.execute(query).scalar_one()) for name, query in checks.items()}
    return {name: count for name, count in found.items() if count}


def outcome(read: Callable[[], _R]) -> _R | str:
    """What ``read`` returned, or the class name of what it raised."""
    try:
        return read()
    except Exception as error:  # tallied by the caller
        return type(error).__name__


def shown(value: object, record: object) -> str:
    """One read's result for a message: ``ok``, ``another record``, or the error's class name."""
    if isinstance(value, str):
        return value
    return "ok" if value == record else "another record"


# 1. PostgreSQL killed with SIGKILL mid-write.

WRITE_SECONDS = 60.0
"""How long the writers write at most, and how long the test waits for anything."""

MAX_ITERATIONS = 20_000
"""The most (code, token) pairs a writer saves, whatever happens."""


@dataclass
class WriteLog:
    """What the writers saved: acknowledged, failed (unknown whether stored), and every other
    error; ``changed`` is notified at each entry."""

    changed: threading.Condition = field(default_factory=threading.Condition)
    codes: list[AuthorizationCode] = field(default_factory=list)
    tokens: list[AccessToken] = field(default_factory=list)
    failed_codes: list[AuthorizationCode] = field(default_factory=list)
    failed_tokens: list[AccessToken] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    finished: int = 0

    @property
    def acknowledged(self) -> int:
        """Saves that returned (codes and tokens)."""
        return len(self.codes) + len(self.tokens)

    @property
    def failed(self) -> int:
        """Saves that raised StoreUnavailableError."""
        return len(self.failed_codes) + len(self.failed_tokens)


def logged_save(log: WriteLog, save: Callable[[_R], None], record: _R, acknowledged: list[_R], failed: list[_R]) -> bool:
    """Save ``record`` and log how it went; whether it was acknowledged."""
    try:
        save(record)
    except StoreUnavailableError:
        with log.changed:
            failed.append(record)
            log.changed.notify_all()
        return False
    except Exception as error:  # a writer must see nothing but success or StoreUnavailableError
        with log.changed:
            log.errors.append(f"{type(error).__name__}: {error}")
            log.changed.notify_all()
        return False
    with log.changed:
        acknowledged.append(record)
        log.changed.notify_all()
    return True


def write_until_failure(store: SqlTokenStore, writer: int, log: WriteLog, stop: threading.Event) -> None:
    """Save a code, then a token with a refresh token in the code's grant (each pair its own user
    and grant), until a save fails, ``stop`` is set, or the bounds are reached."""
    now = int(time.time())
    deadline = time.monotonic() + WRITE_SECONDS
    try:
        for n in range(MAX_ITERATIONS):
            if stop.is_set() or time.monotonic() > deadline:
                break
            user = f"user-{writer}-{n}"
            code = AuthorizationCode(CLIENT, f"code-{writer}-{n}-{secrets.token_hex(12)}", now + 300, "https://client.example/cb", ["read"], user_id=user)
            if not logged_save(log, store.save_code, code, log.codes, log.failed_codes):
                break
            token = AccessToken(
                CLIENT,
                "authorization_code",
                f"token-{writer}-{n}-{secrets.token_hex(12)}",
                {"writer": writer, "n": n},
                now + 600,
                f"refresh-{writer}-{n}-{secrets.token_hex(12)}",
                ["read"],
                refresh_expires_at=now + 3600,
                user_id=user,
                grant_id=code.grant_id,
            )
            if not logged_save(log, store.save_token, token, log.tokens, log.failed_tokens):
                break
    finally:
        with log.changed:
            log.finished += 1
            log.changed.notify_all()


@dataclass(frozen=True)
class TokenRows:
    """Which rows of one saved token a database holds, and its grant's expiry (``grant``: whether
    the grant row is there)."""

    token: bool
    refresh: bool
    latest: bool
    grant: bool
    grant_expires_at: int | None

    @property
    def parts(self) -> tuple[bool, bool, bool]:
        """Whether the token, refresh token and latest entry rows are there."""
        return (self.token, self.refresh, self.latest)


def token_rows(connection: Connection, schema: SqlSchema, token: AccessToken) -> TokenRows:
    """The rows ``token``'s save writes, as the database holds them."""
    assert token.refresh_token is not None
    token_digest = digest(token.token)

    def there(query: sa.Select[int]) -> bool:
        return int(connection.execute(query).scalar_one()) > 0

    grant = connection.execute(sa.select(schema.grants.c.expires_at).where(schema.grants.c.grant_id == token.grant_id)).first()
    return TokenRows(
        token=there(sa.select(sa.func.count()).select_from(schema.tokens).where(schema.tokens.c.digest == token_digest)),
        refresh=there(
            sa.select(sa.func.count())
            .select_from(schema.refresh_tokens)
            .where(schema.refresh_tokens.c.digest == digest(token.refresh_token), schema.refresh_tokens.c.token_digest == token_digest)
        ),
        latest=there(sa.select(sa.func.count()).select_from(schema.latest).where(schema.latest.c.token_digest == token_digest)),
        grant=grant is not None,
        grant_expires_at=None if grant is None else grant.expires_at,
    )


def code_rows(connection: Connection, schema: SqlSchema, code: AuthorizationCode) -> tuple[bool, bool]:
    """Whether the code's row and its grant's row are there."""
    code_there = connection.execute(sa.select(schema.codes.c.digest).where(schema.codes.c.digest == digest(code.code))).first() is not None
    grant_there = connection.execute(sa.select(schema.grants.c.grant_id).where(schema.grants.c.grant_id == code.grant_id)).first() is not None
    return code_there, grant_there


def token_reads(store: SqlTokenStore, token: AccessToken) -> list[AccessToken | str]:
    """The token read by token, by refresh token and as its user's latest token."""
    return [
        outcome(lambda: store.fetch_by_token(token.token)),
        outcome(lambda: store.fetch_by_refresh_token(token.refresh_token or "")),
        outcome(lambda: store.fetch_existing_token_of_user(token.client_id, token.grant_type, token.user_id)),
    ]


def test_postgres_killed_mid_write_keeps_acknowledged_saves_and_no_partial_record(scale: Scale, figures: Figures) -> None:
    """Four threads on one store save codes and tokens (each with a refresh token, in the code's
    grant, with a latest-token entry) on a server of the test's own; once enough saves were
    acknowledged the test SIGKILLs the postmaster. The writers see only success or
    StoreUnavailableError. After the restart, through a fresh engine: every acknowledged save
    reads back whole (every way), every failed one is whole or wholly absent (its grant's expiry
    tells which), no table holds a row of a partial record, and the row counts are exactly the
    acknowledged saves plus the failed ones found whole."""
    target, writers = scale.pick(200, 4_000, typeguard=60), 4
    server = PostgresServer().start()
    try:
        prefix = f"kill{secrets.token_hex(4)}"
        engine = sql_engine(server.url, timeout=2)
        store = SqlTokenStore(engine, prefix, reissue_key=REISSUE_KEY)
        store.migrate()
        log, stop = WriteLog(), threading.Event()
        threads = [threading.Thread(target=write_until_failure, args=(store, writer, log, stop)) for writer in range(writers)]
        started = time.perf_counter()
        try:
            for thread in threads:
                thread.start()
            with log.changed:
                reached = log.changed.wait_for(lambda: log.acknowledged >= target or log.failed > 0 or bool(log.errors) or log.finished > 0, timeout=WRITE_SECONDS)
                at_kill = log.acknowledged
                before_kill = (log.failed, list(log.errors), log.finished)
            assert reached and before_kill == (0, [], 0), f"before the kill: {at_kill} acknowledged, (failed, errors, finished writers) {before_kill}"
            server.kill()
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=WRITE_SECONDS)
        written = time.perf_counter() - started
        assert not any(thread.is_alive() for thread in threads)
        store.close()
        assert not log.errors, log.errors[:5]

        restarting = time.perf_counter()
        server.restart()
        recovery = time.perf_counter() - restarting
        fresh_engine = sql_engine(server.url)
        fresh = SqlTokenStore(fresh_engine, prefix, reissue_key=REISSUE_KEY)
        schema = SqlSchema(prefix)
        lost: list[str] = []  # acknowledged saves not read back whole
        partial: list[str] = []  # failed saves stored in part, or read as another record
        ended: Counter[str] = Counter()
        code_of_grant = {code.grant_id: code for code in log.codes}
        with fresh_engine.connect() as connection:
            for code in log.codes:
                read = outcome(lambda: fresh.fetch_by_code(code.code))
                if read != code or code_rows(connection, schema, code) != (True, True):
                    lost.append(f"code of {code.user_id}: {shown(read, code)}, rows {code_rows(connection, schema, code)}")
            for token in log.tokens:
                reads, rows = token_reads(fresh, token), token_rows(connection, schema, token)
                if reads != [token] * 3 or rows.parts != (True, True, True) or rows.grant_expires_at != token.refresh_expires_at:
                    lost.append(f"token of {token.user_id}: {[shown(value, token) for value in reads]}, {rows}")
            for code in log.failed_codes:
                read, there = outcome(lambda: fresh.fetch_by_code(code.code)), code_rows(connection, schema, code)
                if there == (True, True) and read == code:
                    ended["code whole"] += 1
                elif there == (False, False) and read == "AuthCodeNotFound":
                    ended["code absent"] += 1
                else:
                    partial.append(f"failed code of {code.user_id}: {shown(read, code)}, (code row, grant row) {there}")
            for token in log.failed_tokens:
                # A token is saved only after its code was acknowledged: the grant row is the code's.
                code_expiry = code_of_grant[token.grant_id].expires_at
                reads, rows = token_reads(fresh, token), token_rows(connection, schema, token)
                if reads == [token] * 3 and rows.parts == (True, True, True) and rows.grant_expires_at == token.refresh_expires_at:
                    ended["token whole"] += 1
                elif reads == ["AccessTokenNotFound"] * 3 and rows.parts == (False, False, False) and rows.grant_expires_at == code_expiry:
                    ended["token absent"] += 1
                else:
                    partial.append(f"failed token of {token.user_id}: {[shown(value, token) for value in reads]}, {rows}")
            orphans = orphan_rows(connection, schema, with_latest=True)
            counts = {name: count_rows(connection, table) for name, table in (("tokens", schema.tokens), ("codes", schema.codes), ("grants", schema.grants))}
        fresh.close()
        fresh_engine.dispose()
    finally:
        server.remove()
    expected = {
        "tokens": len(log.tokens) + ended["token whole"],
        "codes": len(log.codes) + ended["code whole"],
        "grants": len(log.codes) + ended["code whole"],
    }
    figures(
        f"PostgreSQL SIGKILL mid-write (fsync on; {writers} writers, one store): killed at {at_kill} acknowledged saves, {written:.1f} s of writing, "
        f"{recovery:.1f} s to recover; {log.acknowledged} acknowledged saves ({len(log.codes)} codes, {len(log.tokens)} tokens), "
        f"{log.acknowledged - len(lost)} read back whole; {log.failed} failed saves ({len(log.failed_codes)} codes: {ended['code whole']} whole, "
        f"{ended['code absent']} absent; {len(log.failed_tokens)} tokens: {ended['token whole']} whole, {ended['token absent']} absent), "
        f"{len(partial)} partial, {sum(orphans.values())} orphan rows"
    )
    assert not lost, lost[:5]
    assert not partial, partial[:5]
    assert not orphans, orphans
    assert counts == expected
    assert log.failed >= 1, "no save failed at the kill: the kill tested nothing"


# 2. Tokens issued and expired in waves; purge keeps the tables at the live set.

STEP = 60
"""Seconds between waves: an access token lives one step, its refresh token two."""

MAX_PURGE_CALLS = 10
"""How many times ``purge`` may be called between two waves before the test gives up."""


def batched_rows(tokens: Sequence[AccessToken]) -> tuple[list[dict[str, object]], list[dict[str, object]], list[dict[str, object]]]:
    """The grants, tokens and refresh_tokens rows :meth:`SqlTokenStore.save_token` writes for
    ``tokens`` (each with a refresh token, in a new grant, saved by a store without a reissue key,
    all parts live), for one batched insert: client and user ids as UTF-8 bytes, each token's row
    naming its refresh token's digest. The test checks them against the store's own
    (:func:`assert_batched_rows_are_the_stores`): a change to what ``save_token`` writes shows there."""
    grants: list[dict[str, object]] = []
    access_rows: list[dict[str, object]] = []
    refresh_rows: list[dict[str, object]] = []
    for token in tokens:
        assert token.refresh_token is not None
        payload = ACCESS_TOKEN_CODEC.encode(token)
        token_digest, refresh_digest = digest(token.token), digest(token.refresh_token)
        later = None if token.expires_at is None or token.refresh_expires_at is None else max(token.expires_at, token.refresh_expires_at)
        user = None if token.user_id is None else token.user_id.encode("utf-8")
        grants.append({"grant_id": token.grant_id, "client_id": token.client_id.encode("utf-8"), "user_id": user, "revoked": False, "expires_at": later})
        access_rows.append(
            {"digest": token_digest, "grant_id": token.grant_id, "expires_at": token.expires_at, "token_digest": refresh_digest, "record": seal(secret_key(token.token), b"t", payload)}
        )
        refresh_rows.append(
            {
                "digest": refresh_digest,
                "grant_id": token.grant_id,
                "expires_at": token.refresh_expires_at,
                "token_digest": token_digest,
                "retired": False,
                "record": seal(secret_key(token.refresh_token), b"r", payload),
            }
        )
    return grants, access_rows, refresh_rows


def insert_batch(engine: Engine, schema: SqlSchema, tokens: Sequence[AccessToken]) -> None:
    """Insert the rows of ``tokens`` (see :func:`batched_rows`) in one transaction."""
    grants, tokens_rows, refresh_rows = batched_rows(tokens)
    with engine.begin() as connection:
        connection.execute(schema.grants.insert(), grants)
        connection.execute(schema.tokens.insert(), tokens_rows)
        connection.execute(schema.refresh_tokens.insert(), refresh_rows)


def assert_batched_rows_are_the_stores(connection: Connection, schema: SqlSchema, token: AccessToken) -> None:
    """The rows :func:`batched_rows` makes for ``token`` are those the store wrote when it saved
    it (the records compared opened: each seal has its own nonce). A failure here means
    :func:`batched_rows` is out of step with ``save_token``: the load would test other rows."""
    grant, token_row, refresh_row = (rows[0] for rows in batched_rows([token]))
    assert token.refresh_token is not None
    for table, made, key, secret, kind in (
        (schema.grants, grant, schema.grants.c.grant_id, None, b""),
        (schema.tokens, token_row, schema.tokens.c.digest, token.token, b"t"),
        (schema.refresh_tokens, refresh_row, schema.refresh_tokens.c.digest, token.refresh_token, b"r"),
    ):
        stored = dict(connection.execute(sa.select(table).where(key == made[key.name])).one()._mapping)
        assert set(stored) == set(made), f"batched_rows is out of step with save_token: the columns of {table.name}"
        for name, value in made.items():
            if name == "record" and secret is not None:
                assert isinstance(value, bytes)
                assert unseal(secret_key(secret), kind, bytes(stored[name]), sealed_only=True) == unseal(secret_key(secret), kind, value, sealed_only=True)
            else:
                assert stored[name] == value, f"batched_rows is out of step with save_token: {table.name}.{name} is {stored[name]!r}, not {value!r}"


def purge_expired(store: SqlTokenStore) -> int:
    """Call ``purge`` until it finds nothing more; how many rows went."""
    deleted = 0
    for _ in range(MAX_PURGE_CALLS):
        purged = store.purge()
        deleted += purged
        if purged == 0:
            return deleted
    raise AssertionError(f"purge still deleting after {MAX_PURGE_CALLS} calls")


def table_counts(engine: Engine, schema: SqlSchema) -> tuple[int, int, int]:
    """Rows in tokens, refresh_tokens and grants."""
    with engine.connect() as connection:
        return count_rows(connection, schema.tokens), count_rows(connection, schema.refresh_tokens), count_rows(connection, schema.grants)


def token_lookup_plan(engine: Engine, schema: SqlSchema, now: int) -> str:
    """The query plan of the store's lookup by token (the digest, and live at ``now``):
    ``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on PostgreSQL, a line per plan node."""
    tokens = schema.tokens
    query = sa.select(tokens.c.record).where(tokens.c.digest == digest("no-such-token"), sa.or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > now))
    compiled = query.compile(engine)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            positional = tuple(compiled.params[name] for name in compiled.positiontup or ())
            return "\n".join(str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional))
        return "\n".join(str(row[0]).strip() for row in connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params))


@pytest.fixture(params=["sqlite", "postgresql"])
def load_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite file's engine, or one on the session's PostgreSQL (the test's tables get a
    prefix of their own, dropped after it)."""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        engine = sql_engine(server.url)
    else:
        engine = sql_engine(f"sqlite:///{tmp_path / 'load.db'}")
    yield engine
    engine.dispose()


def test_tokens_issued_in_waves_stay_bounded_by_the_live_set_with_purge(load_engine: Engine, scale: Scale, figures: Figures) -> None:
    """Tokens are issued in waves, one step of a ManualClock apart: each access token lives one
    step, its refresh token two, each in a grant of its own. Before each wave the clock moves on and
    ``purge`` runs until it finds nothing. After the purge the tables hold exactly the live set (the
    previous wave's refresh tokens and grants, no access token but a never-expiring sentinel's);
    after the wave, that plus the wave: never the total issued. The sentinel, a sample of the
    current wave (by token and refresh token) and of the previous wave (by refresh token) are
    found; the previous wave's access tokens and the wave before's refresh tokens are not.

    Size: 20,000 tokens in 20 waves on both databases (5,000 in the typeguard run). With
    --reliability-full, 1,000,000 in 100 waves of 10,000 on SQLite only; PostgreSQL stays at
    20,000. In each wave a few tokens (25) go through ``save_token``; the rest are inserted in
    one batch of the very rows the store writes (checked against the store's own on the first
    wave): a save costs about 2-4 ms of SQLAlchemy statement building, too slow for 20,000 in the
    time budget. At the end, the store's token lookup on the churned table is still a primary-key
    lookup (EXPLAIN)."""
    database = load_engine.dialect.name
    total = scale.pick(20_000, 1_000_000, typeguard=5_000) if database == "sqlite" else scale.pick(20_000, 20_000, typeguard=5_000)
    waves = 100 if total > 100_000 else 20
    wave_size = total // waves
    through_store = min(scale.pick(25, 25, typeguard=10), wave_size)
    prefix = f"load{secrets.token_hex(4)}"
    schema = SqlSchema(prefix)
    clock = ManualClock()
    store = SqlTokenStore(load_engine, prefix, clock=clock)
    run = secrets.token_hex(3)
    started = time.perf_counter()
    try:
        sentinel = AccessToken(CLIENT, "authorization_code", f"sentinel-{secrets.token_hex(12)}", {}, int(clock()) + 10 * 365 * 86_400, f"sentinel-refresh-{secrets.token_hex(12)}", ["read"], user_id="sentinel")
        store.save_token(sentinel)
        previous: list[AccessToken] = []  # the previous wave's sample
        before_previous: list[AccessToken] = []
        purged = 0
        peak = (0, 0, 0)
        for wave in range(waves):
            if wave:
                clock.advance(STEP)
                purged += purge_expired(store)
            live_refresh = wave_size if wave else 0
            counts = table_counts(load_engine, schema)
            assert counts == (1, 1 + live_refresh, 1 + live_refresh), f"wave {wave}, after the purge: (tokens, refresh_tokens, grants) {counts}"
            for token in previous:
                assert outcome(lambda: store.fetch_by_token(token.token)) == "AccessTokenNotFound", f"wave {wave}: an expired access token was found"
                assert store.fetch_by_refresh_token(token.refresh_token or "") == token
            for token in before_previous:
                assert outcome(lambda: store.fetch_by_refresh_token(token.refresh_token or "")) == "AccessTokenNotFound", f"wave {wave}: an expired refresh token was found"

            now = int(clock())
            issued = [
                AccessToken(
                    CLIENT,
                    "authorization_code",
                    f"t-{run}-{wave}-{i}-{secrets.token_urlsafe(16)}",
                    {},
                    now + STEP,
                    f"r-{run}-{wave}-{i}-{secrets.token_urlsafe(16)}",
                    ["read"],
                    refresh_expires_at=now + 2 * STEP,
                    user_id=f"user-{i % 97}",
                )
                for i in range(wave_size)
            ]
            for token in issued[:through_store]:
                store.save_token(token)
            if wave == 0:
                with load_engine.connect() as connection:
                    assert_batched_rows_are_the_stores(connection, schema, issued[0])
            if len(issued) > through_store:
                insert_batch(load_engine, schema, issued[through_store:])
            counts = table_counts(load_engine, schema)
            assert counts == (1 + wave_size, 1 + live_refresh + wave_size, 1 + live_refresh + wave_size), f"wave {wave}, issued: {counts}"
            peak = (max(peak[0], counts[0]), max(peak[1], counts[1]), max(peak[2], counts[2]))

            sample = [*issued[:2], *random.sample(issued[through_store:] or issued, min(5, len(issued))), issued[-1]]
            for token in [sentinel, *sample]:
                assert store.fetch_by_token(token.token) == token, f"wave {wave}: a live token was not found"
                assert store.fetch_by_refresh_token(token.refresh_token or "") == token
            before_previous, previous = previous, sample

        plan = token_lookup_plan(load_engine, schema, int(clock()))
        elapsed = time.perf_counter() - started
        if database == "sqlite":
            assert f"SEARCH {prefix}_tokens USING INDEX sqlite_autoindex_{prefix}_tokens_1 (digest=?)" in plan or "USING PRIMARY KEY" in plan, plan
        else:
            assert f"Index Scan using {prefix}_tokens_pkey on {prefix}_tokens" in plan, plan
    finally:
        store.drop_tables()
        store.close()
    figures(
        f"SQL load ({database}): {total:,} tokens issued in {waves} waves of {wave_size:,} ({through_store} a wave through save_token, the rest batched) "
        f"in {elapsed:.1f} s; {purged:,} rows purged; peak rows tokens {peak[0]:,} / refresh_tokens {peak[1]:,} / grants {peak[2]:,} "
        f"(live set at most {wave_size:,} / {2 * wave_size:,} / {2 * wave_size:,}, plus a sentinel); every live token found, every expired one missed; "
        f"lookup plan: {plan.splitlines()[0]}"
    )


# 3. Several processes on one SQLite file.

SQLITE_PROCESSES = 4

REVOKE_EVERY = 4
"""A process revokes another process's victim user once every this many saves."""


@dataclass(frozen=True)
class WorkerReport:
    """What one process did and met. Records travel as codec payloads (records do not pickle)."""

    index: int
    saves: int
    whole_reads: int
    revoked_reads: int
    revocations: int
    busy: list[str]
    errors: list[str]
    kept: list[bytes]
    victims: list[bytes]
    slowest: float
    seconds: float


def sqlite_worker(url: str, index: int, count: int, start: Barrier, results: Queue[WorkerReport]) -> None:
    """One spawned process with its own store on ``url``: ``count`` saves, alternately for its
    kept user (never revoked) and its victim user (revoked by the others), each read back by token
    and by refresh token; every :data:`REVOKE_EVERY` saves, ``revoke_user`` of another process's
    victim. A kept token must read whole; a victim's whole or not found (revoked meanwhile)."""
    store = open_store(url)
    busy: list[str] = []
    errors: list[str] = []
    kept: list[bytes] = []
    victims: list[bytes] = []
    saves = whole_reads = revoked_reads = revocations = 0
    slowest = 0.0
    now = int(time.time())

    def timed(call: Callable[[], object]) -> object:
        nonlocal slowest
        began = time.perf_counter()
        try:
            return call()
        finally:
            slowest = max(slowest, time.perf_counter() - began)

    start.wait(timeout=120)
    started = time.perf_counter()
    for n in range(count):
        victim = n % 2 == 1
        token = AccessToken(
            CLIENT,
            "authorization_code",
            f"token-{index}-{n}-{secrets.token_hex(12)}",
            {"process": index, "n": n},
            now + 600,
            f"refresh-{index}-{n}-{secrets.token_hex(12)}",
            ["read"],
            refresh_expires_at=now + 3600,
            user_id=f"p{index}-victim" if victim else f"p{index}-keep",
        )
        try:
            timed(lambda: store.save_token(token))
        except StoreUnavailableError as error:
            busy.append(f"save: {error}")
            continue
        except Exception as error:  # reported: nothing else may fail
            errors.append(f"save: {type(error).__name__}: {error}")
            continue
        saves += 1
        (victims if victim else kept).append(ACCESS_TOKEN_CODEC.encode(token))
        for name, read in (("fetch_by_token", lambda: store.fetch_by_token(token.token)), ("fetch_by_refresh_token", lambda: store.fetch_by_refresh_token(token.refresh_token or ""))):
            try:
                found = timed(read)
            except AccessTokenNotFound:
                if victim:
                    revoked_reads += 1
                else:
                    errors.append(f"{name}: a kept token of process {index} is missing")
            except StoreUnavailableError as error:
                busy.append(f"{name}: {error}")
            except Exception as error:  # reported: nothing else may fail
                errors.append(f"{name}: {type(error).__name__}: {error}")
            else:
                if found == token:
                    whole_reads += 1
                else:
                    errors.append(f"{name}: another record than the one saved")
        if n % REVOKE_EVERY == 0:
            other = (index + 1 + (n // REVOKE_EVERY) % (SQLITE_PROCESSES - 1)) % SQLITE_PROCESSES
            try:
                timed(lambda: store.revoke_user(f"p{other}-victim"))
                revocations += 1
            except StoreUnavailableError as error:
                busy.append(f"revoke_user: {error}")
            except Exception as error:  # reported: nothing else may fail
                errors.append(f"revoke_user: {type(error).__name__}: {error}")
    seconds = time.perf_counter() - started
    close = getattr(store, "close", None)
    if callable(close):
        close()
    results.put(WorkerReport(index, saves, whole_reads, revoked_reads, revocations, busy, errors, kept, victims, slowest, seconds))


def test_four_processes_on_one_sqlite_file_save_read_and_revoke_without_busy_errors(tmp_path: Path, scale: Scale, figures: Figures) -> None:
    """Four spawned processes open one SQLite file from its URL (the tables created on first use,
    by whichever comes first) and each saves, reads back and revokes (see :func:`sqlite_worker`).
    No call meets a busy timeout (StoreUnavailableError) at this load, and every read is whole.
    Afterwards, in this process, every kept token reads back whole and each victim token either
    whole (saved after the last revocation of its user) or not at all; no row of a revoked grant
    or a partial record is left."""
    count = scale.pick(60, 1_000, typeguard=30)
    prefix = f"multi{secrets.token_hex(4)}"
    url = f"sqlite:///{tmp_path / 'shared.db'}?prefix={prefix}"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(SQLITE_PROCESSES)
    results: Queue[WorkerReport] = context.Queue()
    processes: list[BaseProcess] = [context.Process(target=sqlite_worker, args=(url, index, count, start, results)) for index in range(SQLITE_PROCESSES)]
    started = time.perf_counter()
    try:
        for process in processes:
            process.start()
        reports = sorted(gather(processes, results), key=lambda report: report.index)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=30)
    elapsed = time.perf_counter() - started
    busy = [f"process {report.index}: {line}" for report in reports for line in report.busy]
    errors = [f"process {report.index}: {line}" for report in reports for line in report.errors]

    engine = sql_engine(f"sqlite:///{tmp_path / 'shared.db'}")
    store = SqlTokenStore(engine, prefix)
    missing: list[str] = []
    ended: Counter[str] = Counter()
    try:
        for report in reports:
            for payload in report.kept:
                token = ACCESS_TOKEN_CODEC.decode(payload)
                reads = [outcome(lambda: store.fetch_by_token(token.token)), outcome(lambda: store.fetch_by_refresh_token(token.refresh_token or ""))]
                if reads != [token, token]:
                    missing.append(f"kept token of process {report.index}: {[shown(value, token) for value in reads]}")
            for payload in report.victims:
                token = ACCESS_TOKEN_CODEC.decode(payload)
                reads = [outcome(lambda: store.fetch_by_token(token.token)), outcome(lambda: store.fetch_by_refresh_token(token.refresh_token or ""))]
                if reads == [token, token]:
                    ended["victim whole"] += 1
                elif reads == ["AccessTokenNotFound"] * 2:
                    ended["victim revoked"] += 1
                else:
                    missing.append(f"victim token of process {report.index}: {[shown(value, token) for value in reads]}")
        with engine.connect() as connection:
            orphans = orphan_rows(connection, SqlSchema(prefix), with_latest=False)
    finally:
        store.close()
        engine.dispose()
    saves = sum(report.saves for report in reports)
    figures(
        f"SQLite, {SQLITE_PROCESSES} spawned processes on one file (WAL, 5 s busy timeout): {saves} saves, "
        f"{sum(report.whole_reads for report in reports)} reads whole, {sum(report.revoked_reads for report in reports)} reads of a revoked victim missed, "
        f"{sum(report.revocations for report in reports)} revoke_user, {len(busy)} busy errors, {len(errors)} other errors; slowest call "
        f"{max(report.slowest for report in reports) * 1000:.0f} ms; {max(report.seconds for report in reports):.1f} s of work, {elapsed:.1f} s with the spawns; "
        f"afterwards {sum(len(report.kept) for report in reports)} kept tokens whole: {not missing}, victims {ended['victim whole']} whole, "
        f"{ended['victim revoked']} revoked; {sum(orphans.values())} orphan rows"
    )
    assert not busy, busy[:5]
    assert not errors, errors[:5]
    assert saves == SQLITE_PROCESSES * count
    assert not missing, missing[:5]
    assert not orphans, orphans


def test_an_idle_store_works_at_once_after_postgres_restarted() -> None:
    """No call while the server was down: the pool's connections are dead, and the first call
    after the restart replaces them instead of failing on one."""
    server = PostgresServer().start()
    engine = sql_engine(server.url)
    try:
        store = SqlTokenStore(engine, f"idle{secrets.token_hex(4)}")
        token = AccessToken("client", "password", f"tok-{secrets.token_hex(8)}", {}, 2**40)
        store.save_token(token)
        server.stop()
        server.restart()
        assert store.fetch_by_token(token.token) == token
        store.save_token(AccessToken("client", "password", f"tok-{secrets.token_hex(8)}", {}, 2**40))
    finally:
        engine.dispose()
        server.remove()
