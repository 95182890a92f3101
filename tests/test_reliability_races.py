"""Reliability: concurrent writers and readers never see a mixture of records, and codes are used once.

Issue 7's race scenarios that the process race in ``tests/test_memcache_races.py`` does not cover:

- ``save_token`` and ``revoke_token`` racing with the reads, on memcached (through every
  client set-up of ``tests/memcache_backends.py``, threads sharing one store and threads with their
  own) and on :class:`~oauth2_store.store.LocalTokenStore`: a reader gets one of the saved records
  exactly, or a miss; never fields of two versions, never another token's record, and never a miss
  for a token that is live and is only ever saved again;
- ``consume_code`` on :class:`~oauth2_store.store.LocalTokenStore` across threads, at a size the
  conformance suite's 16 threads x 20 codes does not reach.

Each scenario prints a one-line summary (``pytest -s``). Sizes come from the ``scale`` fixture.
Threads start together at a barrier, and the interpreter switches threads every few µs instead of
every 5 ms, so the in-memory store's Python code is interleaved finely. (Tried against deliberately
broken stores: a save that removes a record before putting it back was caught in 10 bounded
runs of 10, a consume_code that reads then pops without the lock in 3 of 4.)
"""

from __future__ import annotations

import hashlib
import random
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.clock import ManualClock
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound
from oauth2_store.protocols import TokenStoreProtocol
from oauth2_store.store import LocalTokenStore
from tests.memcache_backends import BACKENDS, Backend
from tests.memcached_server import MemcachedServer
from tests.support import Figures, Scale

pytestmark = pytest.mark.reliability

CLIENT = "race-client"
GRANT = "authorization_code"
USER = "race-user"
VERSIONS = 12
"""How many versions of the contended token the writers save, in random order."""


@contextmanager
def fine_thread_switching(seconds: float) -> Iterator[None]:
    """Let the interpreter switch threads every ``seconds`` (instead of every 5 ms) for the duration."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def run_together(targets: Sequence[Callable[[], None]]) -> None:
    """Run each target in its own thread, all released at once; re-raise the first failure."""
    start = threading.Barrier(len(targets))
    failures: list[BaseException] = []

    def run(target: Callable[[], None]) -> None:
        start.wait()
        try:
            target()
        except BaseException as error:  # reported in the test's thread, below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def contended_versions(now: int, refresh_token: str) -> list[AccessToken]:
    """Versions of one grant that share a refresh token, client, grant type and user, and differ in
    every other field. Each one's data signs its own fields, so a record assembled from two
    versions fails :func:`self_consistent` even if it happened to equal none of them."""
    versions = []
    for version in range(VERSIONS):
        token = f"tok-{version}-{secrets.token_hex(12)}"
        versions.append(
            AccessToken(
                CLIENT,
                GRANT,
                token,
                {"version": version, "token": _digest(token), "pad": "p" * (version * 53 % 400), "list": list(range(version % 5))},
                now + 3600 + version,
                refresh_token,
                [f"v{version}", "read"],
                refresh_expires_at=now + 86400 + version,
                user_id=USER,
            )
        )
    return versions


def self_consistent(token: AccessToken) -> bool:
    """Whether the fields of ``token`` all belong to the version its data names."""
    version = token.data.get("version")
    if not isinstance(version, int):
        return False
    return (
        token.data.get("token") == _digest(token.token)
        and token.data.get("pad") == "p" * (version * 53 % 400)
        and token.data.get("list") == tuple(range(version % 5))
        and token.scopes == (f"v{version}", "read")
        and token.expires_at is not None
        and token.refresh_expires_at is not None
        and token.refresh_expires_at - token.expires_at == 86400 - 3600
    )


@dataclass
class Tally:
    """What the readers saw."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    reads: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)

    def add(self, seen: Counter[str]) -> None:
        with self.lock:
            self.reads.update(seen)


def race_writers_and_readers(
    writer_stores: Sequence[TokenStoreProtocol], reader_stores: Sequence[TokenStoreProtocol], now: int, operations: int
) -> Tally:
    """Writers save random versions of a contended token (and revoke one one time in five) and
    re-save a stable token; readers read both every way there is. Returns what the readers saw."""
    refresh_token = f"ref-{secrets.token_hex(12)}"
    versions = contended_versions(now, refresh_token)
    exact = set(versions)
    stable = AccessToken(CLIENT, GRANT, f"stable-{secrets.token_hex(12)}", {"stable": True}, now + 3600, f"stable-ref-{secrets.token_hex(12)}", ["read"], user_id="stable-user")
    assert stable.refresh_token is not None
    writer_stores[0].save_token(stable)
    writer_stores[0].save_token(versions[0])
    tally = Tally()

    def writer(store: TokenStoreProtocol, seed: int) -> Callable[[], None]:
        def write() -> None:
            rng = random.Random(seed)
            for _ in range(operations):
                roll = rng.random()
                if roll < 0.2:
                    # Revoked as RFC 7009 revokes an access token: delete_refresh_token would
                    # retire the shared refresh token, and every later save of it is reuse.
                    store.revoke_token(rng.choice(versions).token, "access_token")
                elif roll < 0.5:
                    store.save_token(stable)  # saved again, never revoked: it must never read as a miss
                else:
                    store.save_token(rng.choice(versions))

        return write

    def reader(store: TokenStoreProtocol, seed: int) -> Callable[[], None]:
        def read() -> None:
            rng = random.Random(seed)
            seen: Counter[str] = Counter()
            for _ in range(operations):
                kind = rng.choice(["refresh", "token", "user", "stable", "stable"])
                how = rng.randrange(3)  # which way the stable token is read
                try:
                    if kind == "refresh":
                        got = store.fetch_by_refresh_token(refresh_token)
                    elif kind == "token":
                        wanted = rng.choice(versions)
                        got = store.fetch_by_token(wanted.token)
                        if got != wanted:
                            tally.wrong.append(f"fetch_by_token of version {wanted.data['version']} returned {got!r}")
                    elif kind == "user":
                        got = store.fetch_existing_token_of_user(CLIENT, GRANT, USER)
                    else:
                        if how == 0:
                            got = store.fetch_by_token(stable.token)
                        elif how == 1:
                            got = store.fetch_by_refresh_token(stable.refresh_token or "")
                        else:
                            got = store.fetch_existing_token_of_user(CLIENT, GRANT, "stable-user")
                        if got != stable:
                            tally.wrong.append(f"the stable token read as {got!r}")
                        seen["hit"] += 1
                        continue
                except AccessTokenNotFound:
                    if kind == "stable":
                        tally.wrong.append(f"the stable token, live and only ever saved again, read as a miss ({['token', 'refresh token', 'user'][how]})")
                    seen["miss"] += 1
                    continue
                if got not in exact or not self_consistent(got):
                    tally.wrong.append(f"{kind} read returned a record that is no saved version: {got!r}")
                seen["hit"] += 1
            tally.add(seen)

        return read

    targets = [writer(store, index) for index, store in enumerate(writer_stores)]
    targets += [reader(store, 1000 + index) for index, store in enumerate(reader_stores)]
    with fine_thread_switching(1e-5):  # long enough for a reader to run into a writer's window
        run_together(targets)
    return tally


@pytest.fixture(params=BACKENDS, ids=[backend.name for backend in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    parameter: Backend = request.param
    return parameter


def test_memcached_readers_see_a_whole_saved_record_or_a_miss_never_a_mixture(
    backend: Backend, memcached: MemcachedServer, memcached_trio: list[MemcachedServer], scale: Scale, figures: Figures
) -> None:
    addresses = [memcached.address] if backend.servers == 1 else [server.address for server in memcached_trio]
    clock = ManualClock()
    prefix = f"race-{secrets.token_hex(6)}"
    # Two writers and two readers share one store (and its connections); two readers have their own.
    shared = backend.build(addresses, prefix, clock)
    own = [backend.build(addresses, prefix, clock) for _ in range(2)]
    operations = scale.pick(500, 5_000, typeguard=100)
    try:
        started = time.perf_counter()
        tally = race_writers_and_readers([shared, shared], [shared, shared, *own], int(clock()), operations)
        elapsed = time.perf_counter() - started
    finally:
        for store in (shared, *own):
            store.close()
    reads = sum(tally.reads.values())
    figures(
        f"save/delete vs fetch ({backend.name}): 2 writers x {operations:,} writes, 4 readers x {operations:,} reads in "
        f"{elapsed:.1f} s: {tally.reads['hit']:,} whole records, {tally.reads['miss']:,} misses, {len(tally.wrong)} wrong"
    )
    assert not tally.wrong, tally.wrong[:5]
    assert reads == 4 * operations
    assert tally.reads["hit"] and tally.reads["miss"], "the race never produced both outcomes: it tested nothing"


def test_local_store_readers_see_a_whole_saved_record_or_a_miss_never_a_mixture(scale: Scale, figures: Figures) -> None:
    clock = ManualClock()
    store = LocalTokenStore(clock=clock)
    operations = scale.pick(20_000, 200_000, typeguard=2_000)
    started = time.perf_counter()
    tally = race_writers_and_readers([store] * 3, [store] * 5, int(clock()), operations)
    elapsed = time.perf_counter() - started
    figures(
        f"save/delete vs fetch (LocalTokenStore): 3 writers x {operations:,} writes, 5 readers x {operations:,} reads in "
        f"{elapsed:.1f} s: {tally.reads['hit']:,} whole records, {tally.reads['miss']:,} misses, {len(tally.wrong)} wrong"
    )
    assert not tally.wrong, tally.wrong[:5]
    assert sum(tally.reads.values()) == 5 * operations
    assert tally.reads["hit"] and tally.reads["miss"], "the race never produced both outcomes: it tested nothing"


def test_local_store_consume_code_is_won_exactly_once_across_threads(scale: Scale, figures: Figures) -> None:
    threads, codes_count = 8, scale.pick(20_000, 200_000, typeguard=2_000)
    clock = ManualClock()
    store = LocalTokenStore(clock=clock)
    now = int(clock())
    codes = [AuthorizationCode("client", f"code-{i}-{secrets.token_hex(8)}", now + 600, None, ["read"]) for i in range(codes_count)]
    for code in codes:
        store.save_code(code)
    wins: Counter[str] = Counter()
    losses: Counter[str] = Counter()
    wrong: list[str] = []
    tally = threading.Lock()

    def racer(order: list[AuthorizationCode]) -> Callable[[], None]:
        def race() -> None:
            won: list[str] = []
            lost: list[str] = []
            for code in order:
                try:
                    got = store.consume_code(code.code)
                except AuthCodeNotFound:
                    lost.append(code.code)
                    continue
                if got != code:
                    wrong.append(f"consume_code returned {got!r} for {code!r}")
                won.append(code.code)
            with tally:
                wins.update(won)
                losses.update(lost)

        return race

    # Every thread goes through the codes in the same order, so each code is contended by all of them.
    order = random.Random(7).sample(codes, len(codes))
    started = time.perf_counter()
    with fine_thread_switching(1e-6):
        run_together([racer(order) for _ in range(threads)])
    elapsed = time.perf_counter() - started
    singles = sum(1 for code in codes if wins[code.code] == 1)
    doubles = sum(1 for code in codes if wins[code.code] > 1)
    figures(
        f"consume_code race (LocalTokenStore): {codes_count:,} codes, {threads} threads in {elapsed:.1f} s: "
        f"{singles:,} single wins, {doubles:,} double, {codes_count - singles - doubles:,} never won"
    )
    assert not wrong, wrong[:5]
    assert singles == codes_count and doubles == 0
    assert all(losses[code.code] == threads - 1 for code in codes)
    # No code is left; each leaves its grant and its consumed marker until it would have expired.
    assert not store._codes and len(store) == 2 * codes_count
