"""Exactly-once and revocation across processes and threads, each process on its own connections.

Reliability scenarios on a real memcached, every racer in a spawned process with its own store:

- ``consume_code`` is won exactly once (bounded: 4 processes x 4 threads over 300 codes; full size
  with ``--reliability-full``: 8 processes x 4 threads over 2,000 codes);
- a code consumed by every racer: one wins, the others are replays, and the code's grant ends;
- a refresh token rotated (``delete_refresh_token``) by every racer: one retires it, the others are
  reuse, and the grant ends (its other tokens included);
- ``revoke_user`` while other processes fetch the user's tokens: no fetch that started after it
  returned succeeds, none that ended before it began fails, bystanders are untouched.

Each prints a one-line summary (``pytest -s``; listed at the end of the run). Every loop is bounded
in count, and the fetchers in time too.
"""

from __future__ import annotations

import functools
import multiprocessing
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from typing import Literal, TypeVar

import pytest

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, CodeReplayError, GrantRevokedError, RefreshTokenReuseError
from oauth2_store.store.memcache import MemcacheTokenStore
from tests.memcached_server import MemcachedServer
from tests.support import Figures, Scale

_Result = TypeVar("_Result")

CLIENT = "race-client"


def race_in_random_orders(racer: Callable[[list[str]], None], keys: list[str], threads: int, start: Barrier) -> None:
    """Run ``threads`` threads of ``racer``, each over ``keys`` in its own random order, all started
    once every process passed ``start``; return when they are done."""
    orders = [random.sample(keys, len(keys)) for _ in range(threads)]
    running = [threading.Thread(target=racer, args=(order,)) for order in orders]
    start.wait()
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()


def gather(processes: Sequence[BaseProcess], results: Queue[_Result]) -> list[_Result]:
    """One result from each started process (waiting at most 120 s for each), then every process
    joined and asserted to have exited cleanly."""
    gathered = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    return gathered


def racer_process(
    address: str, library: str, prefix: str, codes: list[str], threads_per_process: int, start: Barrier, results: Queue[tuple[list[str], list[str]]]
) -> None:
    """One process: ``threads_per_process`` threads, each consuming every code in its own random
    order. Sends the codes it won and the errors other than a miss that any thread met."""
    store = MemcacheTokenStore(servers=[address], prefix=prefix, debug=0) if library == "python-memcached" else MemcacheTokenStore(servers=[address], prefix=prefix)
    wins: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    threads_ready = threading.Barrier(threads_per_process)

    def racer(order: list[str]) -> None:
        threads_ready.wait()
        for code in order:
            try:
                store.consume_code(code)
            except AuthCodeNotFound:
                continue
            except Exception as error:  # reported to the test, which fails on it
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")
                continue
            with lock:
                wins.append(code)

    race_in_random_orders(racer, codes, threads_per_process, start)
    store.close()
    results.put((wins, errors))


@pytest.mark.reliability
@pytest.mark.parametrize("library", ["pymemcache", "python-memcached"])
def test_consume_code_is_won_exactly_once_across_processes(memcached: MemcachedServer, library: str, scale: Scale, figures: Figures) -> None:
    processes_count, threads_per_process, codes_count = scale.pick(4, 8), 4, scale.pick(300, 2_000)
    prefix = f"race-{secrets.token_hex(4)}"
    store = MemcacheTokenStore(servers=[memcached.address], prefix=prefix)
    now = int(time.time())
    codes = [f"code-{i}-{secrets.token_hex(8)}" for i in range(codes_count)]
    for code in codes:
        store.save_code(AuthorizationCode("client", code, now + 600, None, ["read"]))
    store.close()

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes_count)
    results: Queue[tuple[list[str], list[str]]] = context.Queue()
    processes = [
        context.Process(target=racer_process, args=(memcached.address, library, prefix, codes, threads_per_process, start, results))
        for _ in range(processes_count)
    ]
    for process in processes:
        process.start()
    wins: Counter[str] = Counter()
    errors: list[str] = []
    for process_wins, process_errors in gather(processes, results):
        wins.update(process_wins)
        errors += process_errors
    racers = processes_count * threads_per_process
    singles = sum(1 for code in codes if wins[code] == 1)
    doubles = sum(1 for code in codes if wins[code] > 1)
    figures(
        f"consume_code race ({library}): {codes_count:,} codes, {processes_count} processes x {threads_per_process} threads = "
        f"{racers} racers: {singles:,} single wins, {doubles:,} double, {codes_count - singles - doubles:,} never won"
    )
    assert not errors, errors[:5]
    assert sum(wins.values()) == codes_count, f"{sum(wins.values())} wins for {codes_count} codes"
    assert set(wins) == set(codes) and max(wins.values()) == 1


def make_store(address: str, library: str, prefix: str, verify_grants: bool = False) -> MemcacheTokenStore:
    """A store of its own for a racing process, built through ``library``."""
    if library == "python-memcached":
        return MemcacheTokenStore(servers=[address], prefix=prefix, debug=0, verify_grants=verify_grants)
    return MemcacheTokenStore(servers=[address], prefix=prefix, verify_grants=verify_grants)


def issued_token(client_id: str, user_id: str | None, grant_id: str | None, now: int) -> AccessToken:
    """A fresh token with a refresh token, live for the test, in grant ``grant_id`` (None: its own)."""
    return AccessToken(
        client_id,
        "authorization_code",
        f"token-{secrets.token_hex(12)}",
        expires_at=now + 600,
        refresh_token=f"refresh-{secrets.token_hex(12)}",
        refresh_expires_at=now + 3600,
        user_id=user_id,
        grant_id=grant_id,
        scopes=["read"],
    )


Operation = Literal["consume_code", "delete_refresh_token"]
"""The store method a lifecycle race calls: each wins once per code or refresh token."""


def lifecycle_racer_process(
    address: str,
    library: str,
    prefix: str,
    operation: Operation,
    keys: list[str],
    threads_per_process: int,
    start: Barrier,
    results: Queue[tuple[list[tuple[str, str]], list[str]]],
) -> None:
    """One process: ``threads_per_process`` threads, each calling ``operation`` once on every key
    (a code, or a refresh token) in its own random order. Sends each call's outcome, as (key,
    ``won`` / ``replay`` / ``dead``), and the errors that are none of those.

    ``replay`` is exactly CodeReplayError (RefreshTokenReuseError); ``dead`` is exactly
    AuthCodeNotFound (AccessTokenNotFound), which a loser gets when another loser revoked the
    grant before this one checked it (see the tests).
    """
    store = make_store(address, library, prefix)
    attempt: Callable[[str], object] = store.consume_code if operation == "consume_code" else store.delete_refresh_token
    replay, dead = (CodeReplayError, AuthCodeNotFound) if operation == "consume_code" else (RefreshTokenReuseError, AccessTokenNotFound)
    outcomes: list[tuple[str, str]] = []
    errors: list[str] = []
    lock = threading.Lock()
    threads_ready = threading.Barrier(threads_per_process)

    def racer(order: list[str]) -> None:
        threads_ready.wait()
        for key in order:
            try:
                attempt(key)
            except Exception as error:  # classified exactly: a subclass of the expected ones is a failure
                if type(error) is replay or type(error) is dead:
                    with lock:
                        outcomes.append((key, "replay" if type(error) is replay else "dead"))
                else:
                    with lock:
                        errors.append(f"{type(error).__name__}: {error}")
                continue
            with lock:
                outcomes.append((key, "won"))

    race_in_random_orders(racer, keys, threads_per_process, start)
    store.close()
    results.put((outcomes, errors))


@dataclass
class RaceTally:
    """The outcomes of a lifecycle race, per key, and every unexpected error."""

    won: Counter[str] = field(default_factory=Counter)
    replay: Counter[str] = field(default_factory=Counter)
    dead: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def run_lifecycle_race(address: str, library: str, prefix: str, operation: Operation, keys: list[str], processes_count: int, threads_per_process: int) -> RaceTally:
    """Start ``processes_count`` racer processes on ``keys``, wait for them, and tally what they met."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes_count)
    results: Queue[tuple[list[tuple[str, str]], list[str]]] = context.Queue()
    processes = [
        context.Process(target=lifecycle_racer_process, args=(address, library, prefix, operation, keys, threads_per_process, start, results))
        for _ in range(processes_count)
    ]
    for process in processes:
        process.start()
    tally = RaceTally()
    for outcomes, errors in gather(processes, results):
        for key, outcome in outcomes:
            getattr(tally, outcome)[key] += 1
        tally.errors += errors
    return tally


def assert_one_winner_and_replays(tally: RaceTally, keys: list[str], racers: int) -> None:
    """Every key was won exactly once; every other racer got the replay error or, only after some
    other loser's replay revoked the grant, the plain miss; no call was lost or failed otherwise."""
    assert not tally.errors, tally.errors[:5]
    assert set(tally.won) == set(keys) and max(tally.won.values()) == 1, "some keys were won twice or never"
    assert all(tally.won[key] + tally.replay[key] + tally.dead[key] == racers for key in keys), "some calls were not reported"
    # A dead grant is only ever the work of a replay: no key may have plain misses without one.
    assert all(tally.replay[key] >= 1 for key in keys), "a key had losers but no replay"


def grant_ended(
    store: MemcacheTokenStore,
    refused: list[tuple[Callable[[str], AccessToken], str]],
    replayed: tuple[Callable[[], object], type[Exception]],
    rejoined: AccessToken,
) -> str:
    """Whether a grant ended after a race: ``ended`` if every fetch in ``refused`` raised exactly
    AccessTokenNotFound (revoked, so neither live nor reuse), the ``replayed`` call raised its
    error, and saving ``rejoined`` into the grant raised GrantRevokedError; else what failed."""
    for fetch, secret in refused:
        try:
            fetch(secret)
        except AccessTokenNotFound as error:
            if type(error) is not AccessTokenNotFound:
                return f"a token was refused with {type(error).__name__}"
        else:
            return "a token stayed live"
    call, error_type = replayed
    try:
        call()
    except Exception as error:  # tallied: the test reports every grant that did not end
        if type(error) is not error_type:
            return f"presenting it again raised {type(error).__name__}"
    else:
        return "presenting it again succeeded"
    try:
        store.save_token(rejoined)
    except Exception as error:  # likewise
        return "ended" if type(error) is GrantRevokedError else f"joining the grant raised {type(error).__name__}"
    return "a token could join the grant"


@pytest.mark.reliability
@pytest.mark.parametrize("library", ["pymemcache", "python-memcached"])
def test_a_code_replayed_across_processes_is_won_once_and_its_grant_ends(memcached: MemcachedServer, library: str, scale: Scale, figures: Figures) -> None:
    """Every racer consumes every code (each code its own grant, holding a token saved before the
    race). One call wins each code; every other is a replay: CodeReplayError, or plain
    AuthCodeNotFound for a loser that read the code (not yet deleted by the winner) after another
    loser's replay had revoked the grant, which the lifecycle contract allows. Afterwards each
    grant is over: its token is refused by refresh token and by token, the code is a replay, and
    nothing can join the grant."""
    processes_count, threads_per_process, codes_count = scale.pick(4, 8), 4, scale.pick(200, 2_000, typeguard=100)
    prefix = f"race-{secrets.token_hex(4)}"
    store = MemcacheTokenStore(servers=[memcached.address], prefix=prefix)
    now = int(time.time())
    codes = [AuthorizationCode(CLIENT, f"code-{i}-{secrets.token_hex(8)}", now + 600, None, ["read"], user_id=f"user-{i}") for i in range(codes_count)]
    tokens = [issued_token(code.client_id, code.user_id, code.grant_id, now) for code in codes]
    for code, token in zip(codes, tokens):
        store.save_code(code)
        store.save_token(token)

    tally = run_lifecycle_race(memcached.address, library, prefix, "consume_code", [code.code for code in codes], processes_count, threads_per_process)
    racers = processes_count * threads_per_process
    assert_one_winner_and_replays(tally, [code.code for code in codes], racers)

    ended = Counter(
        grant_ended(
            store,
            refused=[(store.fetch_by_refresh_token, token.refresh_token or ""), (store.fetch_by_token, token.token)],
            replayed=(functools.partial(store.consume_code, code.code), CodeReplayError),
            rejoined=issued_token(code.client_id, code.user_id, code.grant_id, now),
        )
        for code, token in zip(codes, tokens)
    )
    store.close()
    figures(
        f"code replay race ({library}): {codes_count:,} codes, {processes_count} processes x {threads_per_process} threads = {racers} racers: "
        f"{len(tally.won):,} won once, {sum(tally.replay.values()):,} CodeReplayError, {sum(tally.dead.values()):,} AuthCodeNotFound "
        f"(grant already revoked); {ended['ended']:,} of {codes_count:,} grants ended"
    )
    assert ended["ended"] == codes_count, dict(ended)


@pytest.mark.reliability
@pytest.mark.parametrize("library", ["pymemcache", "python-memcached"])
def test_a_refresh_token_rotated_across_processes_is_retired_once_and_its_grant_ends(
    memcached: MemcachedServer, library: str, scale: Scale, figures: Figures
) -> None:
    """Every racer rotates (``delete_refresh_token``) every refresh token (each in a grant with a
    second token). One call retires each; every other is reuse: RefreshTokenReuseError (the add of
    the retired marker failed, or the marker was read), or plain AccessTokenNotFound for a loser
    that read the refresh token (not yet deleted by the winner) after another loser's reuse had
    revoked the grant. Afterwards each grant is over: its second token is refused by refresh token
    and by token, the rotated one is reuse, and the winner cannot save the rotated token into it."""
    processes_count, threads_per_process, grants_count = scale.pick(4, 8), 4, scale.pick(200, 2_000, typeguard=100)
    prefix = f"race-{secrets.token_hex(4)}"
    store = MemcacheTokenStore(servers=[memcached.address], prefix=prefix)
    now = int(time.time())
    rotated: list[AccessToken] = []
    siblings: list[AccessToken] = []
    for i in range(grants_count):
        grant_id = f"g-race-{i}-{secrets.token_hex(8)}"
        for family in (rotated, siblings):
            family.append(issued_token(CLIENT, f"user-{i}", grant_id, now))
            store.save_token(family[-1])
    refresh_tokens = [token.refresh_token or "" for token in rotated]

    tally = run_lifecycle_race(memcached.address, library, prefix, "delete_refresh_token", refresh_tokens, processes_count, threads_per_process)
    racers = processes_count * threads_per_process
    assert_one_winner_and_replays(tally, refresh_tokens, racers)

    ended = Counter(
        grant_ended(
            store,
            refused=[(store.fetch_by_refresh_token, sibling.refresh_token or ""), (store.fetch_by_token, sibling.token), (store.fetch_by_token, old.token)],
            replayed=(functools.partial(store.fetch_by_refresh_token, old.refresh_token or ""), RefreshTokenReuseError),
            rejoined=issued_token(old.client_id, old.user_id, old.grant_id, now),  # the winner's rotated token
        )
        for old, sibling in zip(rotated, siblings)
    )
    store.close()
    figures(
        f"refresh rotation race ({library}): {grants_count:,} refresh tokens, {processes_count} processes x {threads_per_process} threads = "
        f"{racers} racers: {len(tally.won):,} retired once, {sum(tally.replay.values()):,} RefreshTokenReuseError, "
        f"{sum(tally.dead.values()):,} AccessTokenNotFound (grant already revoked); {ended['ended']:,} of {grants_count:,} grants ended"
    )
    assert ended["ended"] == grants_count, dict(ended)


FetchKind = Literal["refresh", "access", "verified"]
FETCH_KINDS: tuple[FetchKind, ...] = ("refresh", "access", "verified")
"""fetch_by_refresh_token, fetch_by_token, and fetch_by_token on a ``verify_grants=True`` store."""

WARM_FETCHES = 30
"""Fetches each fetcher thread makes before the warm barrier: every (whose, kind) pair, five times."""

MAX_FETCHES = 20_000
"""The most fetches a fetcher thread makes, whatever happens."""

FETCH_SECONDS = 60.0
"""How long a fetcher thread fetches at most, and waits at the warm barrier at most."""

Phase = Literal["before", "during", "after"]
FetchRecord = tuple[str, FetchKind, Phase, str]
"""(``victim`` / ``bystander``, kind, phase, ``live`` or the exception's class name)."""


def fetcher_process(
    address: str,
    library: str,
    prefix: str,
    victims: list[tuple[str, str]],
    bystanders: list[tuple[str, str]],
    threads_per_process: int,
    after_each: int,
    warm: Barrier,
    revoking: Event,
    revoked: Event,
    results: Queue[tuple[dict[FetchRecord, int], list[str]]],
) -> None:
    """One process: ``threads_per_process`` threads fetching (token, refresh token) pairs of the
    victims and the bystanders, alternately, through every kind of fetch in turn.

    Each thread makes WARM_FETCHES fetches, waits at ``warm`` (with the test, which then revokes),
    and goes on until it made ``after_each`` fetches that started after ``revoked`` was set
    (bounded by MAX_FETCHES and FETCH_SECONDS). A fetch's phase: ``after`` if ``revoked`` was set
    when it started, ``before`` if ``revoking`` was still unset when it returned, else ``during``.
    Sends the count of each (whose, kind, phase, outcome), and the errors that are not a miss.
    """
    stores = {"plain": make_store(address, library, prefix), "verified": make_store(address, library, prefix, verify_grants=True)}
    fetches: dict[FetchKind, Callable[[tuple[str, str]], object]] = {
        "refresh": lambda pair: stores["plain"].fetch_by_refresh_token(pair[1]),
        "access": lambda pair: stores["plain"].fetch_by_token(pair[0]),
        "verified": lambda pair: stores["verified"].fetch_by_token(pair[0]),
    }
    tally: Counter[FetchRecord] = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + FETCH_SECONDS

    def fetcher(seed: int) -> None:
        rng = random.Random(seed)
        mine: Counter[FetchRecord] = Counter()
        after = 0
        for n in range(MAX_FETCHES):
            if n == WARM_FETCHES:
                try:
                    warm.wait(timeout=FETCH_SECONDS)
                except threading.BrokenBarrierError:
                    with lock:
                        errors.append("the warm barrier broke: some thread or the test did not arrive")
                    break
            if time.monotonic() > deadline:
                break
            whose = "victim" if n % 2 == 0 else "bystander"
            kind = FETCH_KINDS[n % 3]  # with n % 2, every (whose, kind) pair once in six fetches
            pair = rng.choice(victims if whose == "victim" else bystanders)
            started_after = revoked.is_set()
            try:
                fetches[kind](pair)
                outcome = "live"
            except Exception as error:  # tallied by class; anything but a miss is reported too
                outcome = type(error).__name__
                if not isinstance(error, AccessTokenNotFound):
                    with lock:
                        errors.append(f"{kind}: {outcome}: {error}")
            phase: Phase = "after" if started_after else "before" if not revoking.is_set() else "during"
            mine[(whose, kind, phase, outcome)] += 1
            after += started_after
            if after >= after_each:
                break
        with lock:
            tally.update(mine)

    threads = [threading.Thread(target=fetcher, args=(random.randrange(2**32),)) for _ in range(threads_per_process)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores.values():
        store.close()
    results.put((dict(tally), errors))


@pytest.mark.reliability
@pytest.mark.parametrize("scope", ["user", "user-and-client"])
@pytest.mark.parametrize("library", ["pymemcache", "python-memcached"])
def test_no_fetch_started_after_revoke_user_returned_succeeds(memcached: MemcachedServer, library: str, scope: str, scale: Scale, figures: Figures) -> None:
    """Processes fetch the tokens of a user (by refresh token, by token, and by token on a
    ``verify_grants=True`` store) while the test calls ``revoke_user``: every fetch that returned
    before the call began found its token, every fetch that started after it returned is refused
    (AccessTokenNotFound, not reuse), and the bystanders' tokens (another user; with a client, the
    same user's tokens of another client) stay live throughout. Fetches overlapping the call may
    go either way."""
    processes_count, threads_per_process = scale.pick(2, 4), 3
    per_group, after_each = scale.pick(20, 200), scale.pick(150, 1_500)
    prefix = f"race-{secrets.token_hex(4)}"
    store = MemcacheTokenStore(servers=[memcached.address], prefix=prefix)
    now = int(time.time())
    user, other_user, client, other_client = (f"{name}-{secrets.token_hex(4)}" for name in ("user", "other-user", "client", "other-client"))

    def group(client_id: str, user_id: str) -> list[tuple[str, str]]:
        tokens = [issued_token(client_id, user_id, None, now) for _ in range(per_group)]
        for token in tokens:
            store.save_token(token)
        return [(token.token, token.refresh_token or "") for token in tokens]

    users_own, users_other_client, other_users = group(client, user), group(other_client, user), group(client, other_user)
    victims = users_own + (users_other_client if scope == "user" else [])
    bystanders = other_users + (users_other_client if scope == "user-and-client" else [])

    context = multiprocessing.get_context("spawn")
    warm = context.Barrier(processes_count * threads_per_process + 1)
    revoking, revoked = context.Event(), context.Event()
    results: Queue[tuple[dict[FetchRecord, int], list[str]]] = context.Queue()
    processes = [
        context.Process(
            target=fetcher_process,
            args=(memcached.address, library, prefix, victims, bystanders, threads_per_process, after_each, warm, revoking, revoked, results),
        )
        for _ in range(processes_count)
    ]
    for process in processes:
        process.start()
    warm.wait(timeout=120)  # every thread has fetched; the revocation lands in mid-traffic
    revoking.set()
    began = time.perf_counter()
    store.revoke_user(user, client if scope == "user-and-client" else None)
    took = time.perf_counter() - began
    revoked.set()

    tally: Counter[FetchRecord] = Counter()
    errors: list[str] = []
    for process_tally, process_errors in gather(processes, results):
        tally.update(process_tally)
        errors += process_errors
    store.close()

    def count(whose: str | None = None, kind: str | None = None, phase: str | None = None, outcome: str | None = None, not_outcome: str | None = None) -> int:
        return sum(
            n
            for (w, k, p, o), n in tally.items()
            if whose in (None, w) and kind in (None, k) and phase in (None, p) and outcome in (None, o) and o != not_outcome
        )

    figures(
        f"revoke_user race ({library}, {scope}): {processes_count} processes x {threads_per_process} threads fetching {len(victims)} victim and "
        f"{len(bystanders)} bystander tokens, revoke_user took {took * 1000:.1f} ms: victims' fetches {count('victim', phase='before'):,} before "
        f"({count('victim', phase='before', outcome='live'):,} live), {count('victim', phase='during'):,} during "
        f"({count('victim', phase='during', outcome='live'):,} live), {count('victim', phase='after'):,} after "
        f"({count('victim', phase='after', outcome='live'):,} live); bystanders' {count('bystander'):,} "
        f"({count('bystander', outcome='live'):,} live)"
    )
    assert not errors, errors[:5]
    for kind in FETCH_KINDS:
        assert count("victim", kind, "before") > 0 and count("victim", kind, "after") > 0, f"{kind}: no fetch before or after to judge"
        assert count("victim", kind, "before", not_outcome="live") == 0, f"{kind}: a victim's fetch failed before revoke_user was called"
        assert count("victim", kind, "after", outcome="AccessTokenNotFound") == count("victim", kind, "after"), f"{kind}: a fetch after revoke_user was not refused"
        assert count("victim", kind, "during", outcome="live") + count("victim", kind, "during", outcome="AccessTokenNotFound") == count("victim", kind, "during")
        assert count("bystander", kind, not_outcome="live") == 0, f"{kind}: a bystander's token was refused"

