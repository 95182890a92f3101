"""Reliability scenarios on Redis: races across processes and threads, hostile keys, corrupt values,
and a server killed under load.

The memcached scenarios' helpers are reused (``tests/test_memcache_races.py``,
``tests/test_reliability_races.py``, ``tests/test_reliability_input.py``); what differs is where the
stores connect, on one redis-server and on a 3-master Redis Cluster:

- ``consume_code`` raced by every racer of several processes: each code is won exactly once, every
  other call is a replay, and the code's grant ends (server and cluster);
- a refresh token rotated (``delete_refresh_token``) by every racer: retired exactly once, the
  others are reuse, and the grant ends (server and cluster);
- writers saving and revoking while readers fetch: a whole saved record or a miss, never a mixture
  (server and cluster);
- hostile lookup strings (CR/LF, spaces, NUL, 64 KiB, lone surrogates, Redis protocol text, the
  ``{``/``}`` of hash tags): every key is ``<prefix>:{<sha256 hex>}:<kind>``, no command but the
  store's ever reaches the servers, no error reply, nothing else is touched (server and cluster);
- stored values overwritten on the server with mutated bytes (whatever their format): every read
  is the saved record, CodecError or a not-found error, never another record (server);
- a redis-server killed with SIGKILL under load and started again (append-only file, fsync always):
  every acknowledged save is read back whole (own server).

Each prints a one-line summary (``pytest -s``; listed at the end of the run). Every loop is bounded
in count, and every wait in time.
"""

from __future__ import annotations

import functools
import multiprocessing
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Literal
from unittest import mock

import pytest

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.clock import Clock, ManualClock, system_clock
from oauth2_store.codec import ACCESS_TOKEN_CODEC
from oauth2_store.error import (
    AccessTokenNotFound,
    AuthCodeNotFound,
    CodecError,
    CodeReplayError,
    NotFoundError,
    RefreshTokenReuseError,
    StoreUnavailableError,
)
from oauth2_store.store.redis import RedisTokenStore, redis_client, redis_cluster_client
from tests import test_memcache_races as memcache_races
from tests.memcache_backends import REISSUE_KEY
from tests.redis_server import SLOTS, RedisCluster, RedisServer
from tests.support import Figures, Scale
from tests.test_memcache_races import CLIENT, Operation, RaceTally, assert_one_winner_and_replays, gather, grant_ended, issued_token
from tests.test_reliability_input import HOSTILE_STRINGS, LONE_SURROGATES, _byte_mutation
from tests.test_reliability_races import race_writers_and_readers

pytestmark = pytest.mark.reliability

TIMEOUT = 10.0
"""The stores' socket timeout: generous, as up to 32 racers share two cores (a timeout fails a race)."""


@dataclass(frozen=True)
class Target:
    """Where a test's stores connect: one redis-server or the nodes of a cluster, by loopback port.
    Picklable, for the racing processes."""

    topology: Literal["server", "cluster"]
    ports: tuple[int, ...]
    reissue_key: bytes = REISSUE_KEY  # carried along: each spawned process draws its own REISSUE_KEY

    def store(self, prefix: str, *, clock: Clock = system_clock, verify_grants: bool = False) -> RedisTokenStore:
        """A store of its own (its own connections) on the target, keeping user entries."""
        if self.topology == "cluster":
            client = redis_cluster_client([("127.0.0.1", port) for port in self.ports], timeout=TIMEOUT)
        else:
            client = redis_client("127.0.0.1", self.ports[0], timeout=TIMEOUT)
        return RedisTokenStore(client, prefix, clock=clock, verify_grants=verify_grants, reissue_key=self.reissue_key)


@dataclass(frozen=True)
class Deployment:
    """A target and its servers, for inspecting what the stores wrote."""

    target: Target
    servers: list[RedisServer]
    cluster: RedisCluster | None = None

    @property
    def name(self) -> str:
        """For the figures."""
        return "Redis Cluster" if self.cluster else "redis-server"

    def keys(self, pattern: str = "*") -> set[str]:
        """Every key matching ``pattern`` (a KEYS pattern) on every server."""
        found: set[str] = set()
        for server in self.servers:
            listed = server.command("KEYS", pattern)
            assert isinstance(listed, list)
            found |= {key.decode("utf-8", "surrogateescape") for key in listed if isinstance(key, bytes)}
        return found

    def server_of(self, key: str) -> RedisServer:
        """The server holding ``key``: the one server, or the node of its slot."""
        if self.cluster is None:
            return self.servers[0]
        slot = self.servers[0].command("CLUSTER", "KEYSLOT", key.encode("utf-8", "surrogateescape"))
        assert isinstance(slot, int) and 0 <= slot < SLOTS
        return self.cluster.server_of_slot(slot)

    def command_calls(self) -> Counter[str]:
        """How often each command has run, summed over the servers (INFO commandstats)."""
        calls: Counter[str] = Counter()
        for server in self.servers:
            text = server.command("INFO", "commandstats")
            assert isinstance(text, bytes)
            for match in re.finditer(rb"cmdstat_([a-z|_-]+):calls=(\d+)", text):
                calls[match[1].decode()] += int(match[2])
        return calls

    def error_replies(self) -> Counter[str]:
        """How many error replies of each code the servers sent (INFO errorstats), but NOSCRIPT:
        redis-py runs a script by its digest first, and loads it on that answer."""
        errors: Counter[str] = Counter()
        for server in self.servers:
            text = server.command("INFO", "errorstats")
            assert isinstance(text, bytes)
            for match in re.finditer(rb"errorstat_([A-Za-z]+):count=(\d+)", text):
                if match[1] != b"NOSCRIPT":
                    errors[match[1].decode()] += int(match[2])
        return errors


@pytest.fixture(params=["server", "cluster"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """The session's redis-server, or its Redis Cluster."""
    if request.param == "server":
        server: RedisServer = request.getfixturevalue("redis_server")
        return Deployment(Target("server", (server.port,)), [server])
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    return Deployment(Target("cluster", tuple(server.port for server in cluster.servers)), cluster.servers, cluster)


def fresh_prefix(label: str) -> str:
    """A key prefix no other test uses: the servers are shared and never flushed."""
    return f"{label}-{secrets.token_hex(6)}"


# Races across processes.


def racer_on_redis(
    target: Target,
    prefix: str,
    operation: Operation,
    keys: list[str],
    threads_per_process: int,
    start: Barrier,
    results: Queue[tuple[list[tuple[str, str]], list[str]]],
) -> None:
    """One racing process: the memcached race's ``lifecycle_racer_process`` (its threads, its
    outcome classes), with its store built on ``target``. Patched in this spawned process only."""
    with mock.patch.object(memcache_races, "make_store", lambda address, library, prefix: target.store(prefix)):
        memcache_races.lifecycle_racer_process("", "redis-py", prefix, operation, keys, threads_per_process, start, results)


def run_race(target: Target, prefix: str, operation: Operation, keys: list[str], processes_count: int, threads_per_process: int) -> RaceTally:
    """Start ``processes_count`` racer processes on ``keys``, wait for them, and tally what they met
    (as the memcached race's ``run_lifecycle_race``)."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes_count)
    results: Queue[tuple[list[tuple[str, str]], list[str]]] = context.Queue()
    processes = [
        context.Process(target=racer_on_redis, args=(target, prefix, operation, keys, threads_per_process, start, results)) for _ in range(processes_count)
    ]
    for process in processes:
        process.start()
    tally = RaceTally()
    for outcomes, errors in gather(processes, results):
        for key, outcome in outcomes:
            getattr(tally, outcome)[key] += 1
        tally.errors += errors
    return tally


def test_a_code_consumed_across_processes_is_won_exactly_once_and_its_grant_ends(deployment: Deployment, scale: Scale, figures: Figures) -> None:
    """Every racer consumes every code (each code its own grant, holding a token saved before the
    race): one call wins each code, every other is CodeReplayError (or AuthCodeNotFound once
    another loser's replay revoked the grant), and afterwards each grant is over. On a cluster the
    code and its consumed marker share a slot (the hash tag); the grant entry is elsewhere."""
    processes_count, threads_per_process, codes_count = scale.pick(4, 8), 4, scale.pick(150, 2_000, typeguard=80)
    prefix = fresh_prefix("race")
    store = deployment.target.store(prefix)
    now = int(time.time())
    codes = [AuthorizationCode(CLIENT, f"code-{i}-{secrets.token_hex(8)}", now + 600, None, ["read"], user_id=f"user-{i}") for i in range(codes_count)]
    tokens = [issued_token(code.client_id, code.user_id, code.grant_id, now) for code in codes]
    for code, token in zip(codes, tokens):
        store.save_code(code)
        store.save_token(token)

    started = time.perf_counter()
    tally = run_race(deployment.target, prefix, "consume_code", [code.code for code in codes], processes_count, threads_per_process)
    elapsed = time.perf_counter() - started
    racers = processes_count * threads_per_process
    assert_one_winner_and_replays(tally, [code.code for code in codes], racers)

    ended = Counter(
        grant_ended(
            store,  # type: ignore[arg-type]  # annotated MemcacheTokenStore; it only calls save_token, which every store has
            refused=[(store.fetch_by_refresh_token, token.refresh_token or ""), (store.fetch_by_token, token.token)],
            replayed=(functools.partial(store.consume_code, code.code), CodeReplayError),
            rejoined=issued_token(code.client_id, code.user_id, code.grant_id, now),
        )
        for code, token in zip(codes, tokens)
    )
    store.close()
    figures(
        f"code replay race ({deployment.name}): {codes_count:,} codes, {processes_count} processes x {threads_per_process} threads = {racers} racers "
        f"in {elapsed:.1f} s: {len(tally.won):,} won once, {sum(tally.won.values()) - len(tally.won):,} won twice, {sum(tally.replay.values()):,} "
        f"CodeReplayError, {sum(tally.dead.values()):,} AuthCodeNotFound (grant already revoked); {ended['ended']:,} of {codes_count:,} grants ended"
    )
    assert ended["ended"] == codes_count, dict(ended)


def test_a_refresh_token_rotated_across_processes_is_retired_once_and_its_grant_ends(deployment: Deployment, scale: Scale, figures: Figures) -> None:
    """Every racer rotates (``delete_refresh_token``) every refresh token, each in a grant with a
    second token: one call retires each, every other is RefreshTokenReuseError (or
    AccessTokenNotFound once another loser's reuse revoked the grant), and afterwards each grant is
    over: the second token is refused, the rotated one is reuse, nothing can join the grant."""
    processes_count, threads_per_process, grants_count = scale.pick(4, 8), 4, scale.pick(150, 2_000, typeguard=80)
    prefix = fresh_prefix("race")
    store = deployment.target.store(prefix)
    now = int(time.time())
    rotated: list[AccessToken] = []
    siblings: list[AccessToken] = []
    for i in range(grants_count):
        grant_id = f"g-race-{i}-{secrets.token_hex(8)}"
        for family in (rotated, siblings):
            family.append(issued_token(CLIENT, f"user-{i}", grant_id, now))
            store.save_token(family[-1])
    refresh_tokens = [token.refresh_token or "" for token in rotated]

    started = time.perf_counter()
    tally = run_race(deployment.target, prefix, "delete_refresh_token", refresh_tokens, processes_count, threads_per_process)
    elapsed = time.perf_counter() - started
    racers = processes_count * threads_per_process
    assert_one_winner_and_replays(tally, refresh_tokens, racers)

    ended = Counter(
        grant_ended(
            store,  # type: ignore[arg-type]  # annotated MemcacheTokenStore; it only calls save_token, which every store has
            refused=[(store.fetch_by_refresh_token, sibling.refresh_token or ""), (store.fetch_by_token, sibling.token), (store.fetch_by_token, old.token)],
            replayed=(functools.partial(store.fetch_by_refresh_token, old.refresh_token or ""), RefreshTokenReuseError),
            rejoined=issued_token(old.client_id, old.user_id, old.grant_id, now),  # the winner's rotated token
        )
        for old, sibling in zip(rotated, siblings)
    )
    store.close()
    figures(
        f"refresh rotation race ({deployment.name}): {grants_count:,} refresh tokens, {processes_count} processes x {threads_per_process} threads = "
        f"{racers} racers in {elapsed:.1f} s: {len(tally.won):,} retired once, {sum(tally.replay.values()):,} RefreshTokenReuseError, "
        f"{sum(tally.dead.values()):,} AccessTokenNotFound (grant already revoked); {ended['ended']:,} of {grants_count:,} grants ended"
    )
    assert ended["ended"] == grants_count, dict(ended)


# Readers and writers.


def test_readers_see_a_whole_saved_record_or_a_miss_never_a_mixture(deployment: Deployment, scale: Scale, figures: Figures) -> None:
    """Two writers save versions of a contended token, revoke it and re-save a stable one while
    four readers fetch both every way (two readers share the writers' store and connections, two
    have their own): every read is one saved version exactly, or a miss; the stable token never
    misses. On a cluster a token's keys are in different slots, written by one pipeline."""
    clock = ManualClock()
    prefix = fresh_prefix("race")
    shared = deployment.target.store(prefix, clock=clock)
    own = [deployment.target.store(prefix, clock=clock) for _ in range(2)]
    operations = scale.pick(300, 5_000, typeguard=60)
    try:
        started = time.perf_counter()
        tally = race_writers_and_readers([shared, shared], [shared, shared, *own], int(clock()), operations)
        elapsed = time.perf_counter() - started
    finally:
        for store in (shared, *own):
            store.close()
    figures(
        f"save/delete vs fetch ({deployment.name}): 2 writers x {operations:,} writes, 4 readers x {operations:,} reads in "
        f"{elapsed:.1f} s: {tally.reads['hit']:,} whole records, {tally.reads['miss']:,} misses, {len(tally.wrong)} wrong"
    )
    assert not tally.wrong, tally.wrong[:5]
    assert sum(tally.reads.values()) == 4 * operations
    assert tally.reads["hit"] and tally.reads["miss"], "the race never produced both outcomes: it tested nothing"


# Hostile keys.

REDIS_HOSTILE_STRINGS: tuple[str, ...] = (
    "{",
    "}",
    "{}",
    "}{",
    "{tag}",
    "a{b}c",
    "{" * 300 + "}",
    "{\r\nFLUSHALL\r\n}",
    "\r\nFLUSHALL\r\n",
    "*1\r\n$8\r\nFLUSHALL\r\n",
    "x\r\nDEL canary\r\nGET y",
    "$-1\r\n",
    "KEYS *",
    "L" * 65_536,
)
"""What matters to Redis besides the memcached ones: hash-tag braces (a key's slot is its first
``{...}``), RESP and inline command text, and a 64 KiB string."""

HOSTILE = tuple(dict.fromkeys(HOSTILE_STRINGS + REDIS_HOSTILE_STRINGS))

REDIS_KEY = re.compile(r"[A-Za-z0-9_.:\-]{1,100}:\{[0-9a-f]{64}\}:[trcugkxei]")
"""Every key the store writes: its prefix, the hash tag of a SHA-256 hex digest, a kind."""

STORE_COMMANDS = frozenset({"get", "mget", "set", "del", "multi", "exec", "evalsha", "script|load", "exists", "append", "persist", "expireat"})
"""What a connected store sends: reads, writes, deletes, transactions, and its scripts (append,
prepend, touch: run by digest, loaded on first use) with the commands they call."""

INSPECTION_COMMANDS = frozenset({"keys", "info", "cluster|keyslot"})
"""What the test itself sends, to list keys and count commands."""


def connect_to_every_server(store: RedisTokenStore, deployment: Deployment) -> None:
    """Make ``store`` open its connection to each server (a miss on a key held there), so that
    what it sends afterwards is its commands only: redis-py's connection set-up (HELLO, CLIENT
    SETINFO, which Redis 7.0 answers with errors) is done."""
    unreached = set(deployment.servers)
    for n in range(1_000):
        if not unreached:
            return
        secret = f"warm-up-{n}"
        server = deployment.server_of(store._key("t", secret))
        if server in unreached:
            with pytest.raises(AccessTokenNotFound):
                store.fetch_by_token(secret)
            unreached.discard(server)
    raise AssertionError("no key of 1,000 landed on some server")


def test_hostile_keys_never_reach_redis_as_commands_nor_touch_other_records(deployment: Deployment, figures: Figures) -> None:
    """Tokens, refresh tokens, codes, client ids, grant types and user ids made of each hostile
    string are saved, read, consumed, rotated and revoked: each lands under its digest keys only,
    canaries saved first (a record of another store, a raw key ``canary``) are intact, no key
    anywhere holds a hostile string, and the servers ran only the store's commands and sent no
    error reply. A prefix with hash-tag braces is refused."""
    for prefix in ("{", "}", "a{b}", "{x}:y"):
        with pytest.raises(ValueError):
            deployment.target.store(prefix)
    now = int(time.time())
    canary_store = deployment.target.store(fresh_prefix("canary"))
    store = deployment.target.store(fresh_prefix("hostile"))
    canary = AccessToken("canary", "password", f"canary-{secrets.token_hex(8)}", {"k": "v"}, now + 3600, f"canary-r-{secrets.token_hex(8)}", ["read"], user_id="canary")
    canary_code = AuthorizationCode("canary", f"canary-c-{secrets.token_hex(8)}", now + 600, None, ["read"])
    raw_canary = b"raw canary " + secrets.token_hex(8).encode()
    operations = keys_written = 0
    try:
        canary_store.save_token(canary)
        canary_store.save_code(canary_code)
        deployment.server_of("canary").command("SET", "canary", raw_canary)  # the key a hostile "DEL canary" would hit
        connect_to_every_server(store, deployment)
        keys_before = deployment.keys()
        calls_before, errors_before = deployment.command_calls(), deployment.error_replies()
        allowed: set[str] = set()
        for hostile in HOSTILE:
            token = AccessToken(hostile, hostile, hostile, {hostile: hostile}, now + 3600, hostile + "r", ["read"], user_id=hostile)
            code = AuthorizationCode(hostile, hostile, now + 600, None, ["read"], {hostile: hostile}, user_id=hostile)
            store.save_token(token)
            store.save_code(code)
            present = deployment.keys(f"{store._prefix}:*")
            records = {store._key("t", hostile), store._key("r", hostile + "r"), store._user_key(hostile, hostile, hostile), store._key("c", hostile)}
            lifecycle = {store._grant_key(token.grant_id), store._grant_key(code.grant_id), *store._epoch_keys(hostile, hostile)}
            lifecycle |= {store._key("i", f"c:{hostile}"), store._key("i", f"u:{hostile}")}
            markers = {store._key("k", hostile), store._key("x", hostile + "r")}  # the consumed and retired markers, below
            allowed |= records | lifecycle | markers
            # The token, refresh token, user entry and code, their grants, epochs, indexes and markers: nothing else.
            assert records <= present and present <= allowed, sorted(present - allowed)
            assert all(REDIS_KEY.fullmatch(key) for key in present), sorted(present)
            keys_written = max(keys_written, len(present))
            assert store.fetch_by_token(hostile) == token
            assert store.fetch_by_refresh_token(hostile + "r") == token
            assert store.fetch_existing_token_of_user(hostile, hostile, hostile) == token
            assert store.fetch_by_code(hostile) == code
            assert store.consume_code(hostile) == code
            with pytest.raises(CodeReplayError):
                store.consume_code(hostile)
            store.delete_code(hostile)
            store.delete_refresh_token(hostile + "r")
            with pytest.raises(AccessTokenNotFound):
                store.fetch_by_token(hostile)
            store.revoke_user(hostile)
            store.revoke_client(hostile)
            operations += 13
        for lone in LONE_SURROGATES:
            with pytest.raises(AccessTokenNotFound):
                store.fetch_by_token(lone)
            with pytest.raises(AccessTokenNotFound):
                store.delete_refresh_token(lone)
            with pytest.raises(AuthCodeNotFound):
                store.consume_code(lone)
            store.delete_code(lone)
            store.revoke_user(lone)
            allowed.add(store._key("e", f"u:{lone}"))  # the user's new epoch
            operations += 5
        calls = deployment.command_calls() - calls_before
        errors = deployment.error_replies() - errors_before
        keys_after = deployment.keys()
        # The canaries, saved first, are intact.
        assert canary_store.fetch_by_token(canary.token) == canary
        assert canary_store.fetch_by_refresh_token(canary.refresh_token or "") == canary
        assert canary_store.fetch_by_code(canary_code.code) == canary_code
        assert deployment.server_of("canary").command("GET", "canary") == raw_canary
    finally:
        for closing in (canary_store, store):
            closing.close()
    new_keys = keys_after - keys_before
    figures(
        f"hostile keys ({deployment.name}): {len(HOSTILE)} hostile strings + {len(LONE_SURROGATES)} lone surrogates, {operations} operations: "
        f"{len(new_keys)} keys left ({keys_written} at once at most), {sum(1 for key in new_keys if not REDIS_KEY.fullmatch(key))} malformed; "
        f"commands run: {', '.join(f'{name} {count}' for name, count in sorted(calls.items()))}; error replies: {dict(errors)}; canaries intact"
    )
    assert new_keys <= allowed, sorted(new_keys - allowed)[:5]
    assert not any(hostile in key for key in keys_after for hostile in HOSTILE if len(hostile) > 3), "a hostile string is in a key"
    assert set(calls) <= STORE_COMMANDS | INSPECTION_COMMANDS, sorted(set(calls) - STORE_COMMANDS - INSPECTION_COMMANDS)
    assert not errors, errors


# Corrupt values.

Outcome = str
"""What one read of a corrupt round gave: ``intact``, ``altered``, ``wrong``, ``done`` or the error's class name."""

REFUSALS: tuple[type[Exception], ...] = (CodecError, NotFoundError)
"""What a read of a corrupt value may raise: the store saw the defect, or found no live record."""

@dataclass
class CorruptRound:
    """One round's records: a token and a code of another client and user, so that they share no key."""

    token: AccessToken
    code: AuthorizationCode
    token_keys: set[str] = field(default_factory=set)
    code_keys: set[str] = field(default_factory=set)


def corrupt_round(store: RedisTokenStore, now: int) -> CorruptRound:
    """Save a token (with refresh token and user, its own grant) and a code (its own grant), and
    name the keys each one's reads depend on."""
    tag = secrets.token_hex(6)
    token = issued_token(f"client-t-{tag}", f"user-t-{tag}", None, now)
    code = AuthorizationCode(f"client-c-{tag}", f"code-{tag}", now + 600, "https://app.example/cb", ["read"], {"n": 1}, user_id=f"user-c-{tag}")
    store.save_token(token)
    store.save_code(code)
    records = CorruptRound(token, code)
    records.token_keys = {store._key("t", token.token), store._key("r", token.refresh_token or ""), store._user_key(token.client_id, token.grant_type, token.user_id)}
    records.token_keys |= {store._grant_key(token.grant_id), *store._epoch_keys(token.client_id, token.user_id)}
    records.code_keys = {store._key("c", code.code), store._grant_key(code.grant_id), *store._epoch_keys(code.client_id, code.user_id)}
    return records


def mutate(rng: random.Random, value: bytes, others: list[bytes]) -> bytes:
    """A different value: bytes flipped, inserted, deleted, cut or spliced from ``others``, or
    (one time in five) another key's whole value."""
    for _ in range(10):
        mutated = rng.choice(others) if rng.random() < 0.2 else _byte_mutation(rng, value, others)
        if mutated != value:
            return mutated
    return value + b"\x00"


def classify(read: Callable[[], object], saved: object, secret_of: Callable[[object], str] | None, secret: str) -> Outcome:
    """Run one read: ``intact`` if it returned the saved record, ``altered`` if a record of the
    same secret with other fields (possible only where values are readable plaintext), ``wrong``
    for a record of another secret; ``done`` for an operation that returns nothing; else the
    class name of what it raised."""
    try:
        got = read()
    except Exception as error:  # classified by the test: only the refusals are allowed
        if isinstance(error, REFUSALS):
            return type(error).__name__
        return f"unexpected {type(error).__name__}: {error}"
    if secret_of is None:
        return "done" if got is None else f"unexpected return {got!r}"
    if got == saved:
        return "intact"
    return "altered" if secret_of(got) == secret else "wrong"


def _token_secret(record: object) -> str:
    assert isinstance(record, AccessToken)
    return record.token


def _refresh_secret(record: object) -> str:
    assert isinstance(record, AccessToken)
    return record.refresh_token or ""


def _code_secret(record: object) -> str:
    assert isinstance(record, AuthorizationCode)
    return record.code


def test_corrupt_values_raise_codec_error_or_a_miss_never_another_record(redis_server: RedisServer, scale: Scale, figures: Figures) -> None:
    """Each round saves a token and a code, then overwrites one to all of their values on the
    server (records, grant entries, epochs, indexes, whatever bytes are there) with mutations, reads
    both every way, consumes the code and rotates the refresh token, mutates the markers those
    leave, and presents both again. Every read is the saved record, CodecError or a not-found
    error; never a record of another secret. A record none of whose keys was mutated reads intact.

    Where the values are the codec's plaintext, a mutation can make a valid record of the same
    secret with another field (``altered``): nothing can tell it from a saved one. Once values are
    sealed, none may be returned."""
    rounds = scale.pick(150, 3_000, typeguard=40)
    rng = random.Random(20261204)
    deployment = Deployment(Target("server", (redis_server.port,)), [redis_server])
    clock = ManualClock()
    now = int(clock())
    outcomes: Counter[tuple[str, Outcome]] = Counter()
    unexpected: list[str] = []
    mutated_keys: Counter[str] = Counter()
    plaintext = False
    previous: list[bytes] = []  # the last round's values: whole records of other secrets to splice in
    for number in range(rounds):
        prefix = fresh_prefix(f"corrupt-{number}")
        store, verified = deployment.target.store(prefix, clock=clock), deployment.target.store(prefix, clock=clock, verify_grants=True)
        records = corrupt_round(store, now)
        token, code = records.token, records.code
        keys = sorted(deployment.keys(f"{prefix}:*"))
        assert records.token_keys | records.code_keys <= set(keys), "the store did not write the keys named"
        values = {key: redis_server.command("GET", key) for key in keys}
        originals = {key: value for key, value in values.items() if isinstance(value, bytes)}
        if number == 0:
            try:
                plaintext = ACCESS_TOKEN_CODEC.decode(originals[store._key("t", token.token)]) == token
            except CodecError:
                plaintext = False
        chosen = rng.sample(keys, rng.choice([1, 1, 1, 2, 3, len(keys)]))
        for key in chosen:
            redis_server.command("SET", key, mutate(rng, originals[key], [*originals.values(), *previous]), "KEEPTTL")
            mutated_keys[key.rsplit(":", 1)[1]] += 1
        mutated_kinds = {key.rsplit(":", 1)[1] for key in chosen}
        token_touched, code_touched = bool(records.token_keys & set(chosen)), bool(records.code_keys & set(chosen))

        reads: list[tuple[str, bool, Callable[[], object], object, Callable[[object], str] | None, str]] = [
            ("fetch_by_token", token_touched, functools.partial(store.fetch_by_token, token.token), token, _token_secret, token.token),
            ("fetch_by_token verified", token_touched, functools.partial(verified.fetch_by_token, token.token), token, _token_secret, token.token),
            ("fetch_by_refresh_token", token_touched, functools.partial(store.fetch_by_refresh_token, token.refresh_token or ""), token, _refresh_secret, token.refresh_token or ""),
            ("fetch_existing_token_of_user", token_touched, functools.partial(store.fetch_existing_token_of_user, token.client_id, token.grant_type, token.user_id), token, _token_secret, token.token),
            ("fetch_by_code", code_touched, functools.partial(store.fetch_by_code, code.code), code, _code_secret, code.code),
            ("consume_code", code_touched, functools.partial(store.consume_code, code.code), code, _code_secret, code.code),
            ("delete_refresh_token", token_touched, functools.partial(store.delete_refresh_token, token.refresh_token or ""), None, None, ""),
        ]
        for name, touched, read, saved, secret_of, secret in reads:
            outcome = classify(read, saved, secret_of, secret)
            outcomes[(name, outcome)] += 1
            if outcome.startswith("unexpected") or outcome == "wrong" or (outcome == "altered" and not plaintext):
                unexpected.append(f"round {number}: {name} after mutating {sorted(mutated_kinds)} gave {outcome}")
            elif not touched and outcome not in ("intact", "done"):
                unexpected.append(f"round {number}: {name}, none of whose keys was mutated, gave {outcome}")

        # The markers consume_code and delete_refresh_token left, mutated, and both presented again.
        markers = [key for key in (store._key("k", code.code), store._key("x", token.refresh_token or "")) if redis_server.command("GET", key) is not None]
        for key in markers:
            if rng.random() < 0.5:
                marker = redis_server.command("GET", key)
                assert isinstance(marker, bytes)
                redis_server.command("SET", key, mutate(rng, marker, [marker, *originals.values()]), "KEEPTTL")
                mutated_keys[key.rsplit(":", 1)[1]] += 1
                mutated_kinds.add(key.rsplit(":", 1)[1])
        again: list[tuple[str, Callable[[], object]]] = [
            ("consume_code again", functools.partial(store.consume_code, code.code)),
            ("fetch_by_refresh_token again", functools.partial(store.fetch_by_refresh_token, token.refresh_token or "")),
            ("revoke_user", functools.partial(store.revoke_user, token.user_id or "")),
            ("revoke_client", functools.partial(store.revoke_client, code.client_id)),
        ]
        for name, call in again:
            # A used code or a rotated refresh token returned again is "unexpected return ...".
            outcome = classify(call, None, None, "")
            outcomes[(name, outcome)] += 1
            if outcome.startswith("unexpected") or (name.startswith("revoke") and outcome != "done"):
                unexpected.append(f"round {number}: {name} after mutating {sorted(mutated_kinds)} gave {outcome[:300]}")
        store.close()
        verified.close()
        previous = list(originals.values())

    by_outcome: Counter[Outcome] = Counter()
    for (_, outcome), count in outcomes.items():
        by_outcome[outcome.split(":")[0]] += count
    figures(
        f"corrupt values (redis-server, {'plaintext' if plaintext else 'sealed'} values): {rounds:,} rounds, "
        f"{sum(mutated_keys.values()):,} values mutated ({', '.join(f'{kind} {count}' for kind, count in sorted(mutated_keys.items()))}), "
        f"{sum(by_outcome.values()):,} reads: {', '.join(f'{name} {count:,}' for name, count in by_outcome.most_common())}; "
        f"{len(unexpected)} unexpected"
    )
    assert not unexpected, unexpected[:5]
    # Both kinds of outcome occur, or the mutations tested nothing.
    assert by_outcome["intact"] and by_outcome["CodecError"], by_outcome


# Defects the corrupt values once ran into, pinned down.


@pytest.mark.parametrize("marker", ["consumed code", "retired refresh token"])
def test_a_marker_of_thousands_of_digits_is_a_codec_error(redis_server: RedisServer, marker: str) -> None:
    """A consumed-code or retired-refresh marker overwritten with a 5,000-digit expiry: presenting
    the code or refresh token again raises CodecError."""
    store = Target("server", (redis_server.port,)).store(fresh_prefix("marker"))
    now = int(time.time())
    code = AuthorizationCode(CLIENT, f"code-{secrets.token_hex(8)}", now + 600, None, ["read"], user_id="marker-user")
    token = issued_token(CLIENT, "marker-user", None, now)
    store.save_code(code)
    store.save_token(token)
    store.consume_code(code.code)
    store.delete_refresh_token(token.refresh_token or "")
    key, present_again = (
        (store._key("k", code.code), functools.partial(store.consume_code, code.code))
        if marker == "consumed code"
        else (store._key("x", token.refresh_token or ""), functools.partial(store.fetch_by_refresh_token, token.refresh_token or ""))
    )
    assert redis_server.command("GET", key) is not None
    redis_server.command("SET", key, b"9" * 5_000 + b" g-grant", "KEEPTTL")
    try:
        with pytest.raises(CodecError):
            present_again()
    finally:
        store.close()


def test_a_grant_entry_swapped_for_another_clients_is_a_codec_error_or_a_miss(redis_server: RedisServer) -> None:
    """The grant entry of a code replaced, on the server, by the entry of another client's grant:
    reading the code raises CodecError or AuthCodeNotFound."""
    store = Target("server", (redis_server.port,)).store(fresh_prefix("swap"))
    now = int(time.time())
    mine, theirs = (AuthorizationCode(client, f"code-{secrets.token_hex(8)}", now + 600, None, ["read"]) for client in ("client-a", "client-b"))
    store.save_code(mine)
    store.save_code(theirs)
    entry = redis_server.command("GET", store._grant_key(theirs.grant_id))
    assert isinstance(entry, bytes)
    redis_server.command("SET", store._grant_key(mine.grant_id), entry, "KEEPTTL")
    try:
        with pytest.raises((CodecError, AuthCodeNotFound)):
            store.fetch_by_code(mine.code)
    finally:
        store.close()


# A restart under load.


@dataclass
class SaveLog:
    """What the writers saved: acknowledged, failed (unknown whether stored), and any other error."""

    changed: threading.Condition = field(default_factory=threading.Condition)
    acknowledged: list[AccessToken] = field(default_factory=list)
    failed: list[AccessToken] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


MAX_SAVES = 20_000
"""The most saves a writer attempts, whatever happens."""

LOAD_SECONDS = 120.0
"""How long the writers write at most, and the test waits for them at most."""


def write_until_stopped(store: RedisTokenStore, user_prefix: str, log: SaveLog, serving: threading.Event, stop: threading.Event) -> None:
    """Save fresh tokens (each its own user and grant) until ``stop``; after a failed save, wait
    until the server is ``serving`` again."""
    now = int(time.time())
    deadline = time.monotonic() + LOAD_SECONDS
    for n in range(MAX_SAVES):
        if stop.is_set() or time.monotonic() > deadline:
            break
        token = issued_token(CLIENT, f"{user_prefix}-{n}", None, now)
        try:
            store.save_token(token)
        except StoreUnavailableError:
            with log.changed:
                log.failed.append(token)
            serving.wait(timeout=LOAD_SECONDS)
            continue
        except Exception as error:  # reported: a save fails only because the server is down
            with log.changed:
                log.errors.append(f"{type(error).__name__}: {error}")
                log.changed.notify_all()
            continue
        with log.changed:
            log.acknowledged.append(token)
            log.changed.notify_all()


def lookups(store: RedisTokenStore, verified: RedisTokenStore, token: AccessToken) -> list[AccessToken | str]:
    """The token read every way (by token, on a verifying store too, by refresh token, by user):
    each the record, or the class name of what the read raised."""
    reads: list[Callable[[], AccessToken]] = [
        functools.partial(store.fetch_by_token, token.token),
        functools.partial(verified.fetch_by_token, token.token),
        functools.partial(store.fetch_by_refresh_token, token.refresh_token or ""),
        functools.partial(store.fetch_existing_token_of_user, token.client_id, token.grant_type, token.user_id),
    ]
    found: list[AccessToken | str] = []
    for read in reads:
        try:
            found.append(read())
        except Exception as error:  # tallied by the test
            found.append(type(error).__name__)
    return found


def shown(value: AccessToken | str, token: AccessToken) -> str:
    """One lookup's result, for a message: ``ok``, ``another record`` or the error's class name."""
    if isinstance(value, str):
        return value
    return "ok" if value == token else "another record"


def test_a_server_killed_under_load_keeps_every_acknowledged_save(scale: Scale, figures: Figures) -> None:
    """Writers save tokens while the test kills the server (SIGKILL) and starts it again on its
    append-only file, several times: afterwards every acknowledged save reads back whole every way;
    a save that failed (in flight at the kill) reads as the record or a miss, never as anything
    else."""
    restarts, per_phase, writers = scale.pick(2, 10), scale.pick(120, 1_500, typeguard=30), 3
    server = RedisServer().start()
    prefix = fresh_prefix("restart")
    target = Target("server", (server.port,))
    log = SaveLog()
    serving, stop = threading.Event(), threading.Event()
    serving.set()
    stores = [target.store(prefix) for _ in range(writers)]
    threads = [threading.Thread(target=write_until_stopped, args=(store, f"user-{index}", log, serving, stop)) for index, store in enumerate(stores)]
    acknowledged_at_kill: list[int] = []
    downtime = 0.0
    try:
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        try:
            for phase in range(restarts + 1):
                with log.changed:
                    reached = log.changed.wait_for(lambda: len(log.acknowledged) >= (phase + 1) * per_phase or bool(log.errors), timeout=LOAD_SECONDS)
                assert reached and not log.errors, (len(log.acknowledged), log.errors[:5])
                if phase == restarts:
                    break
                serving.clear()
                server.stop()  # SIGKILL, in mid-traffic
                killed = time.perf_counter()
                with log.changed:
                    acknowledged_at_kill.append(len(log.acknowledged))
                server.start()  # the same port and directory: the append-only file is read back
                downtime += time.perf_counter() - killed
                serving.set()
        finally:
            stop.set()
            serving.set()
            for thread in threads:
                thread.join(timeout=LOAD_SECONDS)
        elapsed = time.perf_counter() - started
        assert not any(thread.is_alive() for thread in threads)
        for store in stores:
            store.close()

        store, verified = target.store(prefix), target.store(prefix, verify_grants=True)
        lost: list[str] = []  # acknowledged saves not read back whole
        wrong: list[str] = []  # failed saves read as anything but the record or a miss
        failed_outcomes: Counter[str] = Counter()
        for token in log.acknowledged:
            found = lookups(store, verified, token)
            if found != [token] * 4:
                lost.append(f"{token.user_id}: {[shown(value, token) for value in found]}")
        for token in log.failed:
            found = lookups(store, verified, token)
            if any(value != token and value != "AccessTokenNotFound" for value in found):
                wrong.append(f"failed save of {token.user_id}: {[shown(value, token) for value in found]}")
            hits = sum(1 for value in found if value == token)
            failed_outcomes["whole" if hits == 4 else "absent" if hits == 0 else "partial"] += 1
        store.close()
        verified.close()
    finally:
        server.remove()
    figures(
        f"restart under load (redis-server, appendfsync always): {writers} writers, {restarts} SIGKILLs at {acknowledged_at_kill} acknowledged saves, "
        f"{downtime / max(restarts, 1) * 1000:.0f} ms down each, {elapsed:.1f} s in all: {len(log.acknowledged):,} acknowledged saves, "
        f"{len(log.acknowledged) - len(lost):,} read back whole every way; {len(log.failed)} failed saves "
        f"({failed_outcomes['whole']} stored whole, {failed_outcomes['partial']} in part, {failed_outcomes['absent']} absent), {len(wrong)} read wrong"
    )
    assert not lost, lost[:5]
    assert not wrong, wrong[:5]
    assert len(acknowledged_at_kill) == restarts and len(log.failed) >= restarts, "no save failed at a kill: the kills tested nothing"
