"""Exactly-once across processes on the SQL stores: a code redeemed by 8 processes, a refresh
token rotated by 8, on a SQLite file and on PostgreSQL. Every racer is a spawned process with its
own store, opened from the store's URL; one wins each secret, every other is the replay (or,
after a replay revoked the grant, a plain miss), and the grant ends."""

from __future__ import annotations

import multiprocessing
import secrets
import time
from collections.abc import Callable, Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, CodeReplayError, GrantRevokedError, RefreshTokenReuseError
from oauth2_store.protocols import LifecycleTokenStoreProtocol
from oauth2_store.urls import open_store
from tests.postgres_server import PostgresServer
from tests.support import Figures, Scale
from tests.test_memcache_races import CLIENT, Operation, RaceTally, assert_one_winner_and_replays, gather, issued_token, race_in_random_orders

PROCESSES = 8


def racer_process(url: str, operation: Operation, keys: list[str], start: Barrier, results: Queue[tuple[list[tuple[str, str]], list[str]]]) -> None:
    """One process, one thread: ``operation`` on every key, in its own random order. Sends each
    key's outcome (won, replay, dead) and every other error."""
    store = open_store(url)
    attempt: Callable[[str], object] = store.consume_code if operation == "consume_code" else store.delete_refresh_token
    replay, dead = (CodeReplayError, AuthCodeNotFound) if operation == "consume_code" else (RefreshTokenReuseError, AccessTokenNotFound)
    outcomes: list[tuple[str, str]] = []
    errors: list[str] = []

    def racer(order: list[str]) -> None:
        for key in order:
            try:
                attempt(key)
            except Exception as error:  # classified exactly: a subclass of the expected ones is a failure
                if type(error) is replay or type(error) is dead:
                    outcomes.append((key, "replay" if type(error) is replay else "dead"))
                else:
                    errors.append(f"{type(error).__name__}: {error}")
                continue
            outcomes.append((key, "won"))

    race_in_random_orders(racer, keys, 1, start)
    close = getattr(store, "close", None)
    if callable(close):
        close()
    results.put((outcomes, errors))


def run_race(url: str, operation: Operation, keys: list[str]) -> RaceTally:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    results: Queue[tuple[list[tuple[str, str]], list[str]]] = context.Queue()
    processes = [context.Process(target=racer_process, args=(url, operation, keys, start, results)) for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    tally = RaceTally()
    for outcomes, errors in gather(processes, results):
        for key, outcome in outcomes:
            getattr(tally, outcome)[key] += 1
        tally.errors += errors
    return tally


@pytest.fixture
def store(store_url: str) -> Iterator[LifecycleTokenStoreProtocol]:
    """The test's own store on ``store_url``, closed after it."""
    opened = open_store(store_url)
    yield opened
    close = getattr(opened, "close", None)
    if callable(close):
        close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    prefix = f"race{secrets.token_hex(4)}"
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return f"{server.url}?prefix={prefix}"
    return f"sqlite:///{tmp_path / 'race.db'}?prefix={prefix}"


@pytest.mark.reliability
def test_a_code_redeemed_by_8_processes_is_won_once_and_its_grant_ends(store_url: str, store: LifecycleTokenStoreProtocol, scale: Scale, figures: Figures) -> None:
    count = scale.pick(30, 300, typeguard=15)
    now = int(time.time())
    codes = [AuthorizationCode(CLIENT, f"code-{i}-{secrets.token_hex(8)}", now + 600, None, ["read"], user_id=f"user-{i}") for i in range(count)]
    tokens = [issued_token(code.client_id, code.user_id, code.grant_id, now) for code in codes]
    for code, token in zip(codes, tokens):
        store.save_code(code)
        store.save_token(token)
    started = time.perf_counter()
    tally = run_race(store_url, "consume_code", [code.code for code in codes])
    elapsed = time.perf_counter() - started
    assert_one_winner_and_replays(tally, [code.code for code in codes], PROCESSES)
    for code, token in zip(codes, tokens):
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)
        with pytest.raises(CodeReplayError):
            store.consume_code(code.code)
        with pytest.raises(GrantRevokedError):
            store.save_token(issued_token(code.client_id, code.user_id, code.grant_id, now))
    figures(
        f"SQL code replay race ({store_url.partition(':')[0]}): {count} codes, {PROCESSES} processes in {elapsed:.1f} s: {len(tally.won)} won once, "
        f"{sum(tally.replay.values())} CodeReplayError, {sum(tally.dead.values())} AuthCodeNotFound; every grant ended"
    )


@pytest.mark.reliability
def test_a_refresh_token_rotated_by_8_processes_is_retired_once_and_its_grant_ends(
    store_url: str, store: LifecycleTokenStoreProtocol, scale: Scale, figures: Figures
) -> None:
    count = scale.pick(30, 300, typeguard=15)
    now = int(time.time())
    rotated, siblings = [], []
    for i in range(count):
        grant_id = f"g-race-{i}-{secrets.token_hex(8)}"
        rotated.append(issued_token(CLIENT, f"user-{i}", grant_id, now))
        siblings.append(issued_token(CLIENT, f"user-{i}", grant_id, now))
        store.save_token(rotated[-1])
        store.save_token(siblings[-1])
    refresh_tokens = [token.refresh_token or "" for token in rotated]
    started = time.perf_counter()
    tally = run_race(store_url, "delete_refresh_token", refresh_tokens)
    elapsed = time.perf_counter() - started
    assert_one_winner_and_replays(tally, refresh_tokens, PROCESSES)
    for old, sibling in zip(rotated, siblings):
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(sibling.token)
        with pytest.raises(RefreshTokenReuseError):
            store.fetch_by_refresh_token(old.refresh_token or "")
        with pytest.raises(GrantRevokedError):
            store.save_token(issued_token(old.client_id, old.user_id, old.grant_id, now))
    figures(
        f"SQL refresh rotation race ({store_url.partition(':')[0]}): {count} refresh tokens, {PROCESSES} processes in {elapsed:.1f} s: "
        f"{len(tally.won)} retired once, {sum(tally.replay.values())} RefreshTokenReuseError, {sum(tally.dead.values())} AccessTokenNotFound; every grant ended"
    )


