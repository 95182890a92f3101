"""Reliability under faults (issue 7): real memcached processes killed, restarted empty, lost from a
ring of three, and filled up, while stores use them. What a caller sees must be what the README
says: StoreUnavailableError within the timeout, misses for what a server lost, never a wrong,
stale or partial record, and the same store working again once the server is back.

A frozen server (SIGSTOP) and a killed one met call by call are in test_memcache_failures.py.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, NotFoundError, StoreUnavailableError
from oauth2_store.store.memcache import MemcacheTokenStore
from tests.memcache_faults import (
    BUILDERS,
    GIVE_UP,
    PYLIBMC_RETRY_TIMEOUT,
    StoreOn,
    assert_unavailable_fast,
    back_in_service,
    make_code,
    make_token,
    store_on,  # noqa: F401  (a fixture)
    token_lookups,
)
from tests.memcached_server import MemcachedServer
from tests.support import Figures, Scale

pytestmark = pytest.mark.reliability

StartServers = Callable[..., list[MemcachedServer]]


@pytest.fixture
def start_servers() -> Iterator[StartServers]:
    """Starts ``count`` memcached servers for the test (keyword arguments as MemcachedServer's),
    and stops them after it."""
    started: list[MemcachedServer] = []

    def start(count: int, **options: Any) -> list[MemcachedServer]:
        servers = [MemcachedServer(**options).start() for _ in range(count)]
        started.extend(servers)
        return servers

    yield start
    for server in started:
        server.stop()


def wait_for(condition: Callable[[], bool], within: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds. Polling for a state the
    test is waiting on (workers making progress), not sleeping over a race."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within} s waiting for {what}")
        time.sleep(0.005)


def token_keys(store: MemcacheTokenStore, token: AccessToken) -> dict[str, str]:
    """The keys ``token`` is stored under, by kind: t (access), r (refresh), u (user entry)."""
    return {
        "t": store._key("t", token.token),
        "r": store._key("r", token.refresh_token or ""),
        "u": store._user_key(token.client_id, token.grant_type, token.user_id),
    }


def home_of_keys(servers: list[MemcachedServer]) -> dict[str, int]:
    """Which server (index) holds each key, read from the servers themselves."""
    return {key: index for index, server in enumerate(servers) for key in server.keys()}


# A server killed while worker threads use the store, then restarted


class Workload:
    """Worker threads running save_token, fetch_by_token, save_code and consume_code in a loop on
    one store, classifying every call's outcome:

    - ``ok``: returned, and a fetch returned exactly the record saved;
    - ``unavailable``: StoreUnavailableError;
    - ``miss``: a miss for a record saved in an earlier phase (the restart lost it);
    - ``lost``: a miss for a record saved in the same phase, with no fault since: a failure;
    - ``wrong``: a fetch that returned another record: a failure;
    - ``stale``: a record saved before the kill, returned after the restart: a failure;
    - ``other``: any other exception: a failure.

    ``phase`` is 0 before the kill, 1 from just before the kill, 2 from just before the restart.
    After the restart, each worker also fetches (by refresh token) the last token it saved before
    the kill, until it gets an answer: it must be a miss (``restart_miss``), never the record.
    """

    def __init__(self, store: MemcacheTokenStore, threads: int) -> None:
        self.store = store
        self.phase = 0
        self.counts: Counter[tuple[int, str]] = Counter()
        self.saved_before_kill: Counter[int] = Counter()
        self.failed_in_outage: Counter[int] = Counter()
        self.restart_misses: Counter[int] = Counter()
        self.slowest = 0.0
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work, args=(index,), daemon=True) for index in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> list[threading.Thread]:
        """Stop the workers; return those still running after 2 * GIVE_UP (hung)."""
        self._stop.set()
        deadline = time.monotonic() + 2 * GIVE_UP
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [thread for thread in self._threads if thread.is_alive()]

    def count(self, phase: int, outcome: str) -> int:
        with self._lock:
            return self.counts[phase, outcome]

    def every_worker(self, counter: Counter[int], at_least: int = 1) -> bool:
        with self._lock:
            return all(counter[index] >= at_least for index in range(len(self._threads)))

    def _work(self, index: int) -> None:
        before_kill: AccessToken | None = None  # the last token this worker saved before the kill
        while not self._stop.is_set():
            if self.phase == 2 and before_kill is not None:
                earlier = before_kill
                outcome = self._call(index, "fetch_by_refresh_token", lambda: self.store.fetch_by_refresh_token(earlier.refresh_token or ""), 0, None)
                if outcome != "unavailable":
                    before_kill = None
            phase = self.phase
            token = make_token(user_id=f"worker-{secrets.token_hex(4)}")
            if self._call(index, "save_token", lambda: self.store.save_token(token), phase, None) == "ok":
                if phase == 0:
                    before_kill = token
                    with self._lock:
                        self.saved_before_kill[index] += 1
                self._call(index, "fetch_by_token", lambda: self.store.fetch_by_token(token.token), phase, token)
            code = make_code()
            if self._call(index, "save_code", lambda: self.store.save_code(code), phase, None) == "ok":
                self._call(index, "consume_code", lambda: self.store.consume_code(code.code), phase, code)

    def _call(self, index: int, name: str, call: Callable[[], object], saved_in: int, expected: AccessToken | AuthorizationCode | None) -> str:
        """Run ``call`` (about a record saved in phase ``saved_in``; ``expected`` None: a write, or
        a fetch that must miss) and count its outcome."""
        started = time.monotonic()
        problem = None
        fetch = name.startswith(("fetch", "consume"))
        try:
            result = call()
        except StoreUnavailableError:
            outcome = "unavailable"
        except NotFoundError:
            outcome = "lost" if self.phase == saved_in else "restart_miss" if expected is None else "miss"
        except Exception as error:
            outcome, problem = "other", f"{name}: {error!r}"
        else:
            outcome = "stale" if fetch and expected is None else "ok" if expected is None or result == expected else "wrong"
        elapsed = time.monotonic() - started
        with self._lock:
            self.counts[self.phase, outcome] += 1
            self.slowest = max(self.slowest, elapsed)
            if outcome == "unavailable" and self.phase == 1:
                self.failed_in_outage[index] += 1
            if outcome == "restart_miss":
                self.restart_misses[index] += 1
            if problem is not None:
                self.problems.append(problem)
        return outcome


WORKERS = 4


def test_a_server_killed_under_load_fails_calls_fast_and_the_same_store_works_after_restart(
    store_on: StoreOn, start_servers: StartServers, scale: Scale, figures: Figures
) -> None:
    (server,) = start_servers(1)
    store = store_on([server])
    workload = Workload(store, WORKERS)
    calls_per_phase = scale.pick(400, 20_000, typeguard=100)
    workload.start()
    try:
        wait_for(lambda: workload.count(0, "ok") >= calls_per_phase and workload.every_worker(workload.saved_before_kill), 60, "calls before the kill")
        workload.phase = 1
        server.kill()
        killed = time.monotonic()
        # Every worker meets the outage several times (so no save it began before the kill is
        # still running: its calls are sequential).
        wait_for(lambda: workload.every_worker(workload.failed_in_outage, 3), 2 * GIVE_UP, "every worker to fail")
        workload.phase = 2
        server.start()  # same port, empty
        outage = time.monotonic() - killed
        # pylibmc keeps a failed server out for its retry_timeout: allow that too.
        wait_for(
            lambda: workload.count(2, "ok") >= calls_per_phase and workload.every_worker(workload.restart_misses),
            60 + PYLIBMC_RETRY_TIMEOUT,
            "calls after the restart",
        )
    finally:
        hung = workload.stop()
    assert hung == []
    counts = workload.counts
    assert workload.problems == []
    failures = {outcome: number for (_, outcome), number in counts.items() if outcome in ("lost", "wrong", "stale", "other")}
    assert failures == {}, counts
    assert counts[0, "ok"] >= calls_per_phase and counts[2, "ok"] >= calls_per_phase
    assert counts[0, "unavailable"] == 0 and counts[1, "unavailable"] >= 3 * WORKERS
    assert workload.slowest < GIVE_UP
    fresh = make_token()
    store.save_token(fresh)
    assert store.fetch_by_token(fresh.token) == fresh
    misses = sum(number for (_, outcome), number in counts.items() if outcome in ("miss", "restart_miss"))
    figures(
        f"{store.library}, {WORKERS} threads, server killed for {outage:.2f} s then restarted empty: "
        f"{counts[0, 'ok']:,} calls ok before, {counts[1, 'unavailable']:,} StoreUnavailableError during, "
        f"{counts[2, 'ok']:,} ok after ({counts[2, 'unavailable']:,} unavailable while it came back); "
        f"{misses} misses for records the restart lost (each worker's last token before the kill among them), "
        f"0 lost, 0 wrong, 0 stale, 0 other; slowest call {workload.slowest:.3f} s (limit {GIVE_UP} s)"
    )


# One of three servers lost


def test_one_of_three_servers_lost_fails_its_keys_only_keys_never_move_and_it_is_used_again(
    store_on: StoreOn, start_servers: StartServers, figures: Figures
) -> None:
    """README, Failures: a lost server fails its own keys only, with StoreUnavailableError; keys
    never move to another server; the server is used again as soon as it is back (pylibmc: after
    its retry_timeout)."""
    servers = start_servers(3)
    lost_index = 1
    lost = servers[lost_index]
    store = store_on(servers)
    tokens = [make_token(user_id=f"user-{index}") for index in range(30)]
    for token in tokens:
        store.save_token(token)
    home = home_of_keys(servers)
    keys = {token.token: token_keys(store, token) for token in tokens}
    assert set(home) == {key for token_keys in keys.values() for key in token_keys.values()}
    on_lost = {token.token for token in tokens if home[keys[token.token]["t"]] == lost_index}
    touches_lost = {token.token for token in tokens if lost_index in {home[key] for key in keys[token.token].values()}}
    assert 0 < len(on_lost) < len(touches_lost) < len(tokens)

    lost.kill()
    for token in tokens:
        if token.token in on_lost:
            assert_unavailable_fast(lambda: store.fetch_by_token(token.token), lost, token.token)
        else:
            assert store.fetch_by_token(token.token) == token
    # Saving again: a token with a key on the lost server fails (repeatedly: libraries that move
    # keys do it after some failures); the others are stored where they were, and nothing lands
    # on a survivor that belongs to the lost server.
    for _ in range(3):
        for token in tokens:
            if token.token in touches_lost:
                assert_unavailable_fast(lambda: store.save_token(token), lost, token.token)
            else:
                store.save_token(token)
    for index in (0, 2):
        assert set(servers[index].keys()) <= {key for key, at in home.items() if at == index}

    lost.start()  # empty
    back_in_service(store, probe=next(iter(on_lost)))
    for token in tokens:
        if token.token in on_lost:
            with pytest.raises(AccessTokenNotFound):
                store.fetch_by_token(token.token)
        elif token.token not in touches_lost:
            assert store.fetch_by_token(token.token) == token
    for token in tokens:
        store.save_token(token)
    assert home_of_keys(servers) == home  # every key back where it was, the lost server's included
    for token in tokens:
        assert store.fetch_by_token(token.token) == token
        assert store.fetch_by_refresh_token(token.refresh_token or "") == token
    figures(
        f"{store.library}, 3 servers, 30 tokens, one killed: {len(on_lost)} tokens on it raised StoreUnavailableError, "
        f"{len(tokens) - len(on_lost)} read back; {len(touches_lost)} re-saves touching it raised (x3), no key moved; "
        f"after restart all 90 keys were written back to the servers they hashed to before"
    )


# A server restarted empty


def test_a_server_restarted_empty_reads_as_misses_never_as_stale_or_partial_records(
    store_on: StoreOn, start_servers: StartServers, figures: Figures
) -> None:
    """With three servers, one restarted empty: each lookup returns exactly the saved record when
    every key it depends on survived, and a miss otherwise. A user entry that survived its token's
    access key is a miss too: fetch_existing_token_of_user never hands out a token that
    fetch_by_token no longer finds."""
    servers = start_servers(3)
    restarted_index = 2
    store = store_on(servers)
    tokens = [make_token(user_id=f"user-{index}") for index in range(60)]
    codes = [make_code() for _ in range(60)]
    for token in tokens:
        store.save_token(token)
    for code in codes:
        store.save_code(code)
    home = home_of_keys(servers)
    servers[restarted_index].kill()
    servers[restarted_index].start()
    probe = next(token.token for token in tokens if home[store._key("t", token.token)] == restarted_index)
    # No call noticed the outage: the first one on the connection the kill broke fails.
    with pytest.raises(StoreUnavailableError):
        store.fetch_by_token(probe)
    back_in_service(store, probe)

    def survived(key: str) -> bool:
        return home[key] != restarted_index

    misses: Counter[str] = Counter()

    def expect(kind: str, live: bool, lookup: Callable[[], object], record: object, miss: type[NotFoundError]) -> None:
        if live:
            assert lookup() == record
        else:
            misses[kind] += 1
            with pytest.raises(miss):
                lookup()

    orphaned_users = 0
    for token in tokens:
        keys = token_keys(store, token)
        lookups = token_lookups(store, token)
        expect("access", survived(keys["t"]), lookups["access"], token, AccessTokenNotFound)
        expect("refresh", survived(keys["r"]), lookups["refresh"], token, AccessTokenNotFound)
        expect("user", survived(keys["u"]) and survived(keys["t"]), lookups["user"], token, AccessTokenNotFound)
        orphaned_users += survived(keys["u"]) and not survived(keys["t"])
    for code in codes:
        expect("code", survived(store._key("c", code.code)), lambda: store.consume_code(code.code), code, AuthCodeNotFound)
    # A refresh token that survived still revokes everything of its token.
    revoked = 0
    for token in tokens:
        if survived(token_keys(store, token)["r"]):
            store.delete_refresh_token(token.refresh_token or "")
            revoked += 1
            for lookup in token_lookups(store, token).values():
                with pytest.raises(AccessTokenNotFound):
                    lookup()
    assert 0 < misses["access"] < len(tokens) and 0 < misses["code"] < len(codes)
    assert orphaned_users > 0  # the case the user entry check exists for did occur
    figures(
        f"{store.library}, 3 servers, 60 tokens and 60 codes, one server restarted empty: misses for "
        f"{misses['access']} access, {misses['refresh']} refresh, {misses['user']} user lookups "
        f"({orphaned_users} user entries that outlived their access key) and {misses['code']} codes; "
        f"every other lookup returned exactly the saved record; {revoked} surviving refresh tokens revoked everything"
    )


# A full server

SMALL_ITEMS = 256 * 1024
"""memcached refuses an item size limit over half its memory: this lets -m 1 (its minimum) start."""


def test_evictions_on_a_full_server_read_as_misses_never_as_wrong_records(start_servers: StartServers, scale: Scale, figures: Figures) -> None:
    """memcached with its smallest memory (-m 1, items up to SMALL_ITEMS) and many more tokens than
    fit. A save that returns was stored: read back at once, it is found whole
    (memcached evicts from the cold end of its LRU, never the item it just stored while the slab
    class holds others). Later, each lookup returns exactly the saved record or a miss."""
    (server,) = start_servers(1, memory_mb=1, max_item_size=SMALL_ITEMS)
    store = BUILDERS["pymemcache"]([server.address], "full")
    count = scale.pick(3_000, 50_000, typeguard=2_000)
    tokens = [make_token(user_id=f"user-{index}") for index in range(count)]
    try:
        for token in tokens:
            store.save_token(token)
            assert store.fetch_by_token(token.token) == token
            assert store.fetch_by_refresh_token(token.refresh_token or "") == token
        outcomes: Counter[tuple[str, str]] = Counter()
        for token in tokens:
            for kind, lookup in token_lookups(store, token).items():
                try:
                    outcomes[kind, "same" if lookup() == token else "wrong"] += 1
                except AccessTokenNotFound:
                    outcomes[kind, "evicted"] += 1
        evictions = int(server.stats()["evictions"])
    finally:
        store.close()
    assert not any(outcome == "wrong" for _, outcome in outcomes), outcomes
    assert 0 < outcomes["access", "same"] < count  # some of it fitted, not all of it
    assert evictions > 0
    figures(
        f"pymemcache, memcached -m 1, {count:,} tokens saved (each read back whole at once): "
        f"{outcomes['access', 'same']:,} still found by token, {outcomes['refresh', 'same']:,} by refresh token, "
        f"{outcomes['user', 'same']:,} by user, the rest misses ({evictions:,} evictions); 0 wrong or corrupt"
    )


def test_a_full_server_that_refuses_writes_makes_save_token_fail_and_leave_nothing(
    store_on: StoreOn, start_servers: StartServers, figures: Figures
) -> None:
    """memcached -M (no evictions) answers "out of memory" once full: save_token raises
    StoreUnavailableError and no part of the token is left; every save that returned is found
    whole, then and at the end (nothing is evicted). (What a failed save deletes frees room, so a
    later save may fit again: saves and refusals can alternate once the server is full.)"""
    (server,) = start_servers(1, memory_mb=1, max_item_size=SMALL_ITEMS, evict=False)
    store = store_on([server])
    saved: list[AccessToken] = []
    refused = 0
    while refused < 50:
        token = make_token(user_id=f"user-{len(saved)}-{refused}")
        try:
            store.save_token(token)
        except StoreUnavailableError:
            refused += 1
            for kind, lookup in token_lookups(store, token).items():
                with pytest.raises(AccessTokenNotFound):
                    lookup()
        else:
            saved.append(token)
            assert store.fetch_by_token(token.token) == token
        assert len(saved) < 100_000, "the server never filled up"
    for token in saved:
        assert store.fetch_by_token(token.token) == token
        assert store.fetch_by_refresh_token(token.refresh_token or "") == token
    assert server.stats()["evictions"] == "0"
    figures(
        f"{store.library}, memcached -m 1 -M: {len(saved):,} tokens stored and all read back whole at the end; "
        f"{refused} refused saves raised StoreUnavailableError and left no part of the token behind"
    )
