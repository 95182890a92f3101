"""consume_code is exactly-once across processes and threads, each on its own connection."""

from __future__ import annotations

import multiprocessing
import random
import secrets
import threading
import time
from collections import Counter
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import pytest

from oauth2_store import AuthorizationCode
from oauth2_store.error import AuthCodeNotFound
from oauth2_store.store.memcache import MemcacheTokenStore
from tests.memcached_server import MemcachedServer

PROCESSES = 4
THREADS = 4
CODES = 300


def racer_process(address: str, library: str, prefix: str, codes: list[str], start: Barrier, results: Queue[list[str]]) -> None:
    """One process: THREADS threads, each consuming every code in its own random order."""
    extra: dict[str, object] = {"debug": 0} if library == "python-memcached" else {}
    store = MemcacheTokenStore(servers=[address], prefix=prefix, **extra)  # type: ignore[arg-type]  # library kwargs are Any
    wins: list[str] = []
    lock = threading.Lock()
    threads_ready = threading.Barrier(THREADS)

    def racer(order: list[str]) -> None:
        threads_ready.wait()
        for code in order:
            try:
                store.consume_code(code)
            except AuthCodeNotFound:
                continue
            with lock:
                wins.append(code)

    orders = [random.sample(codes, len(codes)) for _ in range(THREADS)]
    threads = [threading.Thread(target=racer, args=(order,)) for order in orders]
    start.wait()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    results.put(wins)


@pytest.mark.parametrize("library", ["pymemcache", "python-memcached"])
def test_consume_code_is_won_exactly_once_across_processes(memcached: MemcachedServer, library: str) -> None:
    prefix = f"race-{secrets.token_hex(4)}"
    store = MemcacheTokenStore(servers=[memcached.address], prefix=prefix)
    now = int(time.time())
    codes = [f"code-{i}-{secrets.token_hex(8)}" for i in range(CODES)]
    for code in codes:
        store.save_code(AuthorizationCode("client", code, now + 600, None, ["read"]))
    store.close()

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    results: Queue[list[str]] = context.Queue()
    processes = [
        context.Process(target=racer_process, args=(memcached.address, library, prefix, codes, start, results)) for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    wins: Counter[str] = Counter()
    for _ in processes:
        wins.update(results.get(timeout=120))
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert sum(wins.values()) == CODES, f"{sum(wins.values())} wins for {CODES} codes"
    assert set(wins) == set(codes) and max(wins.values()) == 1
