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
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, GrantRevokedError, NotFoundError, StoreUnavailableError
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
    """The keys ``token`` is stored under or depends on, by kind: t (access), r (refresh), u (user
    entry), g (its grant entry), e:c, e:u, e:uc (its client's, user's and user-with-client's
    epochs), i:c, i:u (its client's and user's grant indexes)."""
    assert token.user_id is not None
    client_epoch, user_epoch, user_client_epoch = store._epoch_keys(token.client_id, token.user_id)
    return {
        "t": store._key("t", token.token),
        "r": store._key("r", token.refresh_token or ""),
        "u": store._user_key(token.client_id, token.grant_type, token.user_id),
        "g": store._grant_key(token.grant_id),
        "e:c": client_epoch,
        "e:u": user_epoch,
        "e:uc": user_client_epoch,
        "i:c": store._key("i", f"c:{token.client_id}"),
        "i:u": store._key("i", f"u:{token.user_id}"),
    }


SAVE_AGAIN_KINDS = ("t", "r", "u", "g", "e:c", "e:u", "e:uc")
"""What saving a token into its existing grant touches: its own keys, the grant entry it appends
to, and the epochs the grant is checked against (the indexes only when a grant starts)."""

GRANT_KINDS = ("g", "e:c", "e:u", "e:uc")
"""What a refresh token's grant is checked against: the grant entry and its owners' epochs."""


class _Homes(dict[str, int]):
    """Which server (index) holds each key, as the servers' metadumps list them; a key a dump left
    out (the crawler can miss an item that moved in its LRU meanwhile) is asked for on each server."""

    def __init__(self, servers: list[MemcachedServer]) -> None:
        super().__init__((key, index) for index, server in enumerate(servers) for key in server.keys())
        self._servers = servers

    def __missing__(self, key: str) -> int:
        holders = [index for index, server in enumerate(self._servers) if server.ttl(key) is not None]
        if len(holders) != 1:
            raise KeyError(f"{key} is held by {len(holders)} servers")
        self[key] = holders[0]
        return holders[0]


def home_of_keys(servers: list[MemcachedServer]) -> dict[str, int]:
    """Which server (index) holds each key, read from the servers themselves."""
    return _Homes(servers)


def home_of_absent_key(store: MemcacheTokenStore, servers: list[MemcachedServer], key: str) -> int:
    """Which server a key that does not exist would be stored on: written, looked for, deleted."""
    assert store._connection.add(key, b"where", 60)
    (index,) = [index for index, server in enumerate(servers) if key in server.keys()]
    store._connection.delete(key)
    return index


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
    its retry_timeout). Back empty, it has lost grant entries and epochs: the grants they governed
    are refused from then on (fail closed), the others work as before."""
    servers = start_servers(3)
    lost_index = 1
    lost = servers[lost_index]
    store = store_on(servers)
    tokens: list[AccessToken] = []
    keys: dict[str, dict[str, str]] = {}

    def on_lost_server(token: AccessToken, kinds: tuple[str, ...]) -> bool:
        return any(home[keys[token.token][kind]] == lost_index for kind in kinds)

    # Each token has its own client and user, so its nine keys spread over the servers. About one
    # token in seventeen saves again without touching the server to be lost: save until 3 do.
    home: dict[str, int] = {}
    while len(tokens) < 30 or sum(not on_lost_server(token, SAVE_AGAIN_KINDS) for token in tokens) < 3:
        assert len(tokens) < 600, "tokens kept hashing to the lost server"
        for _ in range(30):
            token = make_token(user_id=f"user-{len(tokens)}", client_id=f"client-{len(tokens)}")
            store.save_token(token)
            tokens.append(token)
            keys[token.token] = token_keys(store, token)
        home = home_of_keys(servers)
    assert set(home) == {key for token_keys in keys.values() for key in token_keys.values()}
    # fetch_by_refresh_token also reads the retired marker, which no token has yet.
    for token in tokens:
        keys[token.token]["x"] = store._key("x", token.refresh_token or "")
        home[keys[token.token]["x"]] = home_of_absent_key(store, servers, keys[token.token]["x"])
    on_lost = {token.token for token in tokens if on_lost_server(token, ("t",))}
    touches_lost = {token.token for token in tokens if on_lost_server(token, SAVE_AGAIN_KINDS)}
    refresh_on_lost = {token.token for token in tokens if on_lost_server(token, ("r", "x", *GRANT_KINDS))}
    assert 0 < len(on_lost) < len(touches_lost) < len(tokens)

    lost.kill()
    for token in tokens:
        if token.token in on_lost:
            assert_unavailable_fast(lambda: store.fetch_by_token(token.token), lost, token.token)
        else:
            assert store.fetch_by_token(token.token) == token
        if token.token in refresh_on_lost:
            assert_unavailable_fast(lambda: store.fetch_by_refresh_token(token.refresh_token or ""), lost, token.token)
        else:
            assert store.fetch_by_refresh_token(token.refresh_token or "") == token
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
    grant_lost = {token.token for token in tokens if on_lost_server(token, GRANT_KINDS)}
    # An epoch lost while its grant entry survived: the grant no longer proves it is live.
    epoch_lost = {token.token for token in tokens if on_lost_server(token, GRANT_KINDS[1:]) and not on_lost_server(token, ("g",))}
    assert epoch_lost and grant_lost - epoch_lost
    for token in tokens:
        if token.token in on_lost:
            with pytest.raises(AccessTokenNotFound):
                store.fetch_by_token(token.token)
        elif token.token not in touches_lost:
            assert store.fetch_by_token(token.token) == token
        if token.token in grant_lost:  # refused even where its refresh key survived
            with pytest.raises(AccessTokenNotFound):
                store.fetch_by_refresh_token(token.refresh_token or "")
        elif token.token not in touches_lost:
            assert store.fetch_by_refresh_token(token.refresh_token or "") == token
    # Saving every token again: into a grant whose epoch was lost it is refused and leaves
    # nothing; a grant whose entry was lost starts again (the integrations only save into a grant
    # after its code or refresh token passed the grant check, which a lost entry fails).
    refused = 0
    for token in tokens:
        if token.token in epoch_lost:
            with pytest.raises(GrantRevokedError):
                store.save_token(token)
            refused += 1
            for lookup in token_lookups(store, token).values():
                with pytest.raises(AccessTokenNotFound):
                    lookup()
        else:
            store.save_token(token)
            assert store.fetch_by_token(token.token) == token
            assert store.fetch_by_refresh_token(token.refresh_token or "") == token
    now = home_of_keys(servers)
    assert set(now) <= set(home) - {token_keys["x"] for token_keys in keys.values()} and all(home[key] == at for key, at in now.items())  # no key moved
    assert lost_index in now.values()  # and the lost server holds its keys again
    figures(
        f"{store.library}, 3 servers, {len(tokens)} tokens (own client and user each), one killed: {len(on_lost)} "
        f"tokens on it and {len(refresh_on_lost)} refresh tokens depending on it raised StoreUnavailableError, "
        f"the rest read back; {len(touches_lost)} re-saves touching it raised (x3), no key moved; after it came "
        f"back empty, {len(grant_lost)} refresh tokens whose grant entry or epoch it lost were refused, {refused} saves "
        f"into a grant whose epoch it lost raised GrantRevokedError, every other token was saved back where it was"
    )


# A server restarted empty


def test_a_server_restarted_empty_reads_as_misses_never_as_stale_or_partial_records(
    store_on: StoreOn, start_servers: StartServers, figures: Figures
) -> None:
    """With three servers, one restarted empty: each lookup returns exactly the saved record when
    every key it depends on survived, and a miss otherwise. A user entry that survived its token's
    access key is a miss too: fetch_existing_token_of_user never hands out a token that
    fetch_by_token no longer finds. A refresh token or code whose grant entry or epoch was lost
    is a miss even where its own key survived (fail closed)."""
    servers = start_servers(3)
    restarted_index = 2
    store = store_on(servers)
    # Own clients and users, so that grant entries and epochs spread over the servers too.
    tokens = [make_token(user_id=f"user-{index}", client_id=f"client-{index}") for index in range(90)]
    codes = [make_code(client_id=f"code-client-{index}") for index in range(60)]
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
    grant_refusals: Counter[str] = Counter()

    def expect(kind: str, live: bool, lookup: Callable[[], object], record: object, miss: type[NotFoundError]) -> None:
        if live:
            assert lookup() == record
        else:
            misses[kind] += 1
            with pytest.raises(miss):
                lookup()

    def refresh_live(token: AccessToken) -> bool:
        keys = token_keys(store, token)
        return all(survived(keys[kind]) for kind in ("r", *GRANT_KINDS))

    orphaned_users = 0
    for token in tokens:
        keys = token_keys(store, token)
        lookups = token_lookups(store, token)
        expect("access", survived(keys["t"]), lookups["access"], token, AccessTokenNotFound)
        expect("refresh", refresh_live(token), lookups["refresh"], token, AccessTokenNotFound)
        grant_refusals["refresh"] += survived(keys["r"]) and not refresh_live(token)
        expect("user", survived(keys["u"]) and survived(keys["t"]), lookups["user"], token, AccessTokenNotFound)
        orphaned_users += survived(keys["u"]) and not survived(keys["t"])
    for code in codes:
        code_keys = [store._key("c", code.code), store._grant_key(code.grant_id), *store._epoch_keys(code.client_id, code.user_id)]
        live = all(survived(key) for key in code_keys)
        expect("code", live, lambda: store.consume_code(code.code), code, AuthCodeNotFound)
        grant_refusals["code"] += survived(code_keys[0]) and not live
    # A refresh token that survived still revokes everything of its token.
    revoked = 0
    for token in tokens:
        if refresh_live(token):
            store.delete_refresh_token(token.refresh_token or "")
            revoked += 1
            for lookup in token_lookups(store, token).values():
                with pytest.raises(AccessTokenNotFound):
                    lookup()
    assert 0 < misses["access"] < len(tokens) and 0 < misses["code"] < len(codes)
    assert orphaned_users > 0  # the case the user entry check exists for did occur
    assert grant_refusals["refresh"] > 0 and grant_refusals["code"] > 0  # and the grant check's
    assert revoked > 0
    figures(
        f"{store.library}, 3 servers, {len(tokens)} tokens and {len(codes)} codes, one server restarted empty: misses for "
        f"{misses['access']} access, {misses['refresh']} refresh, {misses['user']} user lookups "
        f"({orphaned_users} user entries that outlived their access key) and {misses['code']} codes "
        f"({grant_refusals['refresh']} refresh tokens and {grant_refusals['code']} codes refused for a lost grant entry or epoch); "
        f"every other lookup returned exactly the saved record; {revoked} surviving refresh tokens revoked everything"
    )


# A server lost in the middle of a revocation


def test_revoke_user_that_meets_a_lost_server_raises_and_what_it_reached_stays_revoked(
    store_on: StoreOn, start_servers: StartServers, figures: Figures
) -> None:
    """revoke_user replaces the user's epoch, then reads the user's grant index to delete access
    tokens. With the index's server lost in between, the call raises StoreUnavailableError (the
    caller knows to retry), yet the new epoch already refuses the user's refresh tokens; the
    retry, once the server is back empty, succeeds. Access tokens the lost index named wait for
    their own expiry (README, Token lifecycle: the memcached limit)."""
    servers = start_servers(3)
    store = store_on(servers)
    # A user whose epoch and index hash to different servers: the index's is the one lost.
    for attempt in range(40):
        user = f"victim-{attempt}"
        epoch_key = store._epoch_keys("c-0", user)[1]
        index_key = store._key("i", f"u:{user}")
        epoch_at, index_at = (home_of_absent_key(store, servers, key) for key in (epoch_key, index_key))
        if epoch_at != index_at:
            break
    else:
        pytest.fail("no user's epoch and index hashed to different servers")
    down = servers[index_at]
    # The user's tokens, until 3 of them depend on nothing on that server for a refresh.
    tokens: list[AccessToken] = []
    reached: list[AccessToken] = []
    while len(reached) < 3:
        assert len(tokens) < 300, "tokens kept hashing to the lost server"
        token = make_token(user_id=user, client_id=f"c-{len(tokens)}")
        store.save_token(token)
        tokens.append(token)
        keys = token_keys(store, token)
        home = home_of_keys(servers)
        home[store._key("x", token.refresh_token or "")] = home_of_absent_key(store, servers, store._key("x", token.refresh_token or ""))
        depends = [keys[kind] for kind in ("t", "r", *GRANT_KINDS)] + [store._key("x", token.refresh_token or "")]
        if all(home[key] != index_at for key in depends):
            reached.append(token)

    down.kill()
    assert_unavailable_fast(lambda: store.revoke_user(user), down, user)
    for token in reached:
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_refresh_token(token.refresh_token or "")
        assert store.fetch_by_token(token.token) == token  # its index could not be read

    down.start()  # empty: the user's index is gone
    back_in_service(store, call=lambda: store.revoke_user(user))
    for token in reached:
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_refresh_token(token.refresh_token or "")
        with pytest.raises(GrantRevokedError):
            store.save_token(token)
    # A grant authorized afterwards works.
    fresh = make_token(user_id=user, client_id="c-0")
    store.save_token(fresh)
    assert store.fetch_by_refresh_token(fresh.refresh_token or "") == fresh
    figures(
        f"{store.library}, 3 servers, {len(tokens)} tokens of one user, the server of the user's index killed: "
        f"revoke_user raised StoreUnavailableError, and its new epoch already refused all {len(reached)} refresh tokens "
        f"off that server; retried after the server came back empty, it succeeded; access tokens the lost "
        f"index named stayed until their expiry; a grant authorized afterwards works"
    )


# A full server

SMALL_ITEMS = 256 * 1024
"""memcached refuses an item size limit over half its memory: this lets -m 1 (its minimum) start."""


def test_evictions_on_a_full_server_read_as_misses_never_as_wrong_records(start_servers: StartServers, scale: Scale, figures: Figures) -> None:
    """memcached with its smallest memory (-m 1, items up to SMALL_ITEMS) and many more tokens than
    fit. A save that returns was stored: read back at once, it is found whole by token
    (memcached evicts from the cold end of its LRU, never the item it just stored while the slab
    class holds others). A save whose grant entry or epoch was evicted as it was written raises
    GrantRevokedError and leaves nothing, and a refresh token whose grant state was evicted reads
    as a miss (fail closed). Later, each lookup returns exactly the saved record or a miss."""
    (server,) = start_servers(1, memory_mb=1, max_item_size=SMALL_ITEMS)
    store = BUILDERS["pymemcache"]([server.address], "full")
    count = scale.pick(3_000, 50_000, typeguard=2_000)
    tokens = [make_token(user_id=f"user-{index}") for index in range(count)]
    saved: list[AccessToken] = []
    refused = refresh_misses = 0
    try:
        for token in tokens:
            try:
                store.save_token(token)
            except GrantRevokedError:
                refused += 1
                with pytest.raises(AccessTokenNotFound):
                    store.fetch_by_token(token.token)
                continue
            saved.append(token)
            assert store.fetch_by_token(token.token) == token
            try:
                assert store.fetch_by_refresh_token(token.refresh_token or "") == token
            except AccessTokenNotFound:
                refresh_misses += 1
        assert len(saved) > count // 2  # refusals are the exception, not the rule
        tokens = saved
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
    assert 0 < outcomes["access", "same"] < len(tokens)  # some of it fitted, not all of it
    assert evictions > 0
    figures(
        f"pymemcache, memcached -m 1, {count:,} tokens: {len(tokens):,} saved (each read back whole at once by token; "
        f"{refresh_misses:,} refresh lookups at once missed an evicted grant entry or epoch), {refused:,} saves refused "
        f"with GrantRevokedError as their grant state was evicted, leaving nothing: "
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
