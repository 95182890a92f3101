"""Reliability under load (issue 7): many tokens through one memcached by several threads, every one
read back exactly, with the client's memory flat; and the in-memory store holding a million
short-lived records over time, bounded by the records that are live.

Sizes: bounded in the normal run, full with --reliability-full (`make reliability`).
"""

from __future__ import annotations

import gc
import secrets
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.clock import ManualClock
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, CodecError
from oauth2_store.store import LocalTokenStore
from oauth2_store.store.memcache import MemcacheTokenStore
from tests.memcache_faults import token_lookups
from tests.memcached_server import MemcachedServer
from tests.support import Figures, Scale
from tests.memcache_backends import REISSUE_KEY

pytestmark = pytest.mark.reliability

MiB = 1024 * 1024


def rss() -> int:
    """This process's resident set size, in bytes (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def traced_now() -> int:
    """Bytes Python has allocated and not freed (tracemalloc), after a full collection."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.fixture
def tracing() -> Iterator[None]:
    """tracemalloc on for the test, off after it."""
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


# Many tokens through memcached

THREADS = 8
PHASES = 5

WARM_UP = 1_100
"""Tokens in the first phase, at least: more than the codec's decode cache holds (1,024 records),
so the cache is full before memory is compared."""

FLAT = 512 * 1024
"""How much the client's traced memory may grow after the first phase, whatever the number of
tokens: room for allocator and pool noise, less than keeping even one 170-byte payload (a 203-byte
bytes object) per token would take at the bounded size (3,900 tokens after the first phase)."""


class LoadTokens:
    """The tokens of one run, made again from their number whenever needed: the test keeps no
    list of them, so its own memory does not grow with the run and cannot hide the client's."""

    def __init__(self) -> None:
        self.run = secrets.token_hex(4)
        self.now = int(time.time())

    def token(self, number: int) -> AccessToken:
        return AccessToken(
            f"client-{number % 50}",
            "authorization_code",
            f"tok-{self.run}-{number}",
            {"n": number},
            self.now + 3600,
            f"ref-{self.run}-{number}",
            ["read", "write"],
            refresh_expires_at=self.now + 7200,
            user_id=f"user-{self.run}-{number}",
        )


def save_all(store: MemcacheTokenStore, tokens: LoadTokens, numbers: Sequence[int]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for number in numbers:
        store.save_token(tokens.token(number))
        outcomes["saved"] += 1
    return outcomes


def read_all(store: MemcacheTokenStore, tokens: LoadTokens, numbers: Sequence[int], every_lookup: bool) -> Counter[str]:
    """Read each token back (by access token; with ``every_lookup`` by refresh token and user too)
    and classify: ``same`` (exactly the saved record), ``lost`` (a miss), ``corrupt`` (CodecError),
    ``wrong`` (another record)."""
    outcomes: Counter[str] = Counter()
    for number in numbers:
        token = tokens.token(number)
        lookups = token_lookups(store, token)
        for lookup in lookups.values() if every_lookup else [lookups["access"]]:
            try:
                outcomes["same" if lookup() == token else "wrong"] += 1
            except AccessTokenNotFound:
                outcomes["lost"] += 1
            except CodecError:
                outcomes["corrupt"] += 1
    return outcomes


def in_threads(pool: ThreadPoolExecutor, work: Callable[..., Counter[str]], store: MemcacheTokenStore, tokens: LoadTokens, numbers: range, *args: bool) -> Counter[str]:
    """Run ``work`` over ``numbers`` split between the pool's threads; the outcomes added up."""
    total: Counter[str] = Counter()
    futures = [pool.submit(work, store, tokens, numbers[start::THREADS], *args) for start in range(THREADS)]
    for future in futures:
        total.update(future.result())
    return total


def test_many_tokens_saved_by_threads_all_read_back_exactly_and_client_memory_stays_flat(
    scale: Scale, figures: Figures, tracing: None
) -> None:
    count = scale.pick(5_000, 200_000, typeguard=1_500)
    server = MemcachedServer(memory_mb=1024).start()
    store = MemcacheTokenStore(servers=[server.address], prefix=f"load-{secrets.token_hex(4)}", reissue_key=REISSUE_KEY)
    tokens = LoadTokens()
    outcomes: Counter[str] = Counter()
    traced: list[int] = []
    rss_after: list[int] = []
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            size = (count - WARM_UP) // (PHASES - 1)
            for phase in range(PHASES):
                numbers = range(0, WARM_UP) if phase == 0 else range(WARM_UP + (phase - 1) * size, count if phase == PHASES - 1 else WARM_UP + phase * size)
                outcomes += in_threads(pool, save_all, store, tokens, numbers)
                outcomes += in_threads(pool, read_all, store, tokens, numbers, True)
                traced.append(traced_now())
                rss_after.append(rss())
            # Every token once more, after all were saved: none lost or overwritten since.
            final = in_threads(pool, read_all, store, tokens, range(count), False)
        stats = server.stats()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        store.close()
        server.stop()
    elapsed = time.monotonic() - started
    assert outcomes["saved"] == count
    assert outcomes["same"] == 3 * count and final["same"] == count, (outcomes, final)
    assert outcomes["lost"] == outcomes["corrupt"] == outcomes["wrong"] == 0
    assert final["lost"] == final["corrupt"] == final["wrong"] == 0
    # Per token its three keys, its grant entry, its user's two epochs and index; per client
    # (50 of them) an epoch and an index.
    keys = 3 * count + 4 * count + 2 * 50
    assert int(stats["curr_items"]) == keys and stats["evictions"] == "0"
    growth = max(traced[1:]) - traced[0]
    assert growth < FLAT, f"client memory grew by {growth} bytes after the first phase: {traced}"
    figures(
        f"{count:,} tokens, {THREADS} threads, pymemcache, one memcached: saved and read back by token, refresh token and user "
        f"({3 * count:,} lookups) then all again by token: {final['same']:,} read back, 0 lost, 0 corrupt, 0 wrong; "
        f"memcached holds {keys:,} keys, 0 evictions; client traced memory after phase 1..{PHASES}: "
        f"{', '.join(f'{value / MiB:.2f}' for value in traced)} MiB (growth {growth / 1024:+.0f} KiB, limit {FLAT // 1024} KiB, peak {peak / MiB:.1f} MiB); "
        f"RSS {rss_after[0] / MiB:.0f} -> {rss_after[-1] / MiB:.0f} MiB; {elapsed:.1f} s"
    )


# The in-memory store over time

LIFETIME = 60
"""Seconds an access token lives; its refresh token lives twice as long, a code a sixth."""



def test_the_in_memory_store_holding_a_million_short_lived_records_stays_bounded_by_the_live_ones(
    scale: Scale, figures: Figures, tracing: None
) -> None:
    """Records are saved while a ManualClock advances a second every ``per_second`` records; each
    expires within 2 * LIFETIME. The store must purge as it goes: its size never exceeds what can
    be live, every record saved in the last second is found, and its memory once the live set is
    reached stays within a small multiple of it, however many records went through."""
    count = scale.pick(50_000, 1_000_000, typeguard=6_000)
    # Records saved per second of the store's clock (half tokens, half codes): the live set is
    # reached after a quarter of the bounded run, whatever its size.
    per_second = min(100, count // 500)
    clock = ManualClock()
    store = LocalTokenStore(clock=clock)
    run = secrets.token_hex(4)
    # Live at once, at most: access tokens LIFETIME s, refresh tokens and their grants 2 *
    # LIFETIME s, codes (or, once consumed, their markers) and their grants LIFETIME / 6 s, each
    # kind saved per_second / 2 a second, plus the second in progress.
    tokens_per_second = codes_per_second = per_second // 2
    live_bound = tokens_per_second * 5 * LIFETIME + codes_per_second * 2 * LIFETIME // 6 + per_second * 3
    steady_at = 2 * LIFETIME * per_second  # records saved before the live set is reached
    largest = 0
    steady_memory = 0
    tracemalloc.reset_peak()
    for number in range(count):
        now = int(clock())
        if number % 2 == 0:
            token = AccessToken(
                "client",
                "authorization_code",
                f"tok-{run}-{number}",
                expires_at=now + LIFETIME,
                refresh_token=f"ref-{run}-{number}",
                refresh_expires_at=now + 2 * LIFETIME,
                user_id=f"user-{number}",
            )
            store.save_token(token)
            assert store.fetch_by_token(token.token) is token
        else:
            code = AuthorizationCode("client", f"code-{run}-{number}", now + LIFETIME // 6, None, [])
            store.save_code(code)
            if number % 4 == 1:
                assert store.consume_code(code.code) is code
            else:
                assert store.fetch_by_code(code.code) is code
        if number % per_second == per_second - 1:
            largest = max(largest, len(store))
            assert len(store) <= live_bound
            clock.advance(1)
            if number + 1 == steady_at:
                steady_memory = traced_now()
                tracemalloc.reset_peak()
    peak = tracemalloc.get_traced_memory()[1]
    # The oldest records are long gone, the newest still there.
    with pytest.raises(AccessTokenNotFound):
        store.fetch_by_refresh_token(f"ref-{run}-0")
    with pytest.raises(AuthCodeNotFound):
        store.fetch_by_code(f"code-{run}-3")
    assert store.fetch_by_refresh_token(f"ref-{run}-{count - 2}").token == f"tok-{run}-{count - 2}"
    assert largest > live_bound // 2  # the live set was really reached: the bound is not vacuous
    assert steady_memory > 0
    assert peak < 2 * steady_memory, f"peak {peak} bytes against {steady_memory} at the live set"
    figures(
        f"LocalTokenStore, {count:,} records ({count // 2:,} tokens with refresh tokens, {count // 2:,} codes, half consumed) "
        f"over {count // per_second:,} s of ManualClock: at most {largest:,} entries held (live bound {live_bound:,}); "
        f"traced memory at the live set {steady_memory / MiB:.1f} MiB, peak after it {peak / MiB:.1f} MiB ({peak / steady_memory:.2f}x, limit 2x)"
    )
