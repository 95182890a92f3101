"""consume_code is exactly-once across processes and threads, each on its own connection.

A reliability scenario: bounded (4 processes x 4 threads over 300 codes) in the normal suite, full
size (8 processes x 4 threads over 2,000 codes) with ``--reliability-full``.
"""

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
from tests.support import Figures, Scale


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

    orders = [random.sample(codes, len(codes)) for _ in range(threads_per_process)]
    threads = [threading.Thread(target=racer, args=(order,)) for order in orders]
    start.wait()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
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
    for _ in processes:
        process_wins, process_errors = results.get(timeout=120)
        wins.update(process_wins)
        errors += process_errors
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
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
