"""``oauth2-store bench URL``: a mixed workload against a store, with latency percentiles.

Each operation of the mix is one call of the store: ``save_token`` (with a refresh token and a
user id), ``fetch_by_token``, ``fetch_by_refresh_token``, ``save_code`` and ``consume_code``. The
records are written under a fresh random prefix and expire within minutes.
"""

from __future__ import annotations

import json
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from typing import TextIO, TypedDict

from oauth2_store.models import AccessToken, AuthorizationCode
from oauth2_store.protocols import TokenStoreProtocol
from oauth2_store.urls import discard_store, open_store, redact_url

__all__ = ["BenchResult", "Latency", "run_bench"]

OPERATIONS = ("save_token", "fetch_by_token", "fetch_by_refresh_token", "save_code", "consume_code")


class Latency(TypedDict):
    """How many times an operation ran, and its latency percentiles in milliseconds."""

    count: int
    p50: float
    p95: float
    p99: float


class BenchResult(TypedDict):
    """What ``--json`` writes: the URL (redacted), threads used, operations run, wall time in
    seconds, throughput, and per operation its ``count`` and ``p50``/``p95``/``p99`` latency in
    milliseconds."""

    url: str
    threads: int
    operations: int
    seconds: float
    throughput_ops_per_second: float
    latency_ms: dict[str, Latency]


def _workload(store: TokenStoreProtocol) -> Callable[[], dict[str, float]]:
    """One round of the mix: every operation once, on fresh records; returns seconds per operation."""

    def round_() -> dict[str, float]:
        now = int(time.time())
        token = AccessToken(
            "bench", "authorization_code", secrets.token_urlsafe(24), {"bench": True}, now + 300, secrets.token_urlsafe(24), ["read"],
            refresh_expires_at=now + 600, user_id="bench-user",
        )  # fmt: skip
        code = AuthorizationCode("bench", secrets.token_urlsafe(24), now + 300, None, ["read"])
        refresh = token.refresh_token or ""
        calls: list[tuple[str, Callable[[], object]]] = [
            ("save_token", lambda: store.save_token(token)),
            ("fetch_by_token", lambda: store.fetch_by_token(token.token)),
            ("fetch_by_refresh_token", lambda: store.fetch_by_refresh_token(refresh)),
            ("save_code", lambda: store.save_code(code)),
            ("consume_code", lambda: store.consume_code(code.code)),
        ]
        seconds = {}
        for name, call in calls:
            started = time.perf_counter()
            call()
            seconds[name] = time.perf_counter() - started
        return seconds

    return round_


def run_bench(url: str, ops: int, threads: int, out: TextIO, progress: TextIO | None = None) -> BenchResult:
    """Run ``ops`` operations, rounded up to whole rounds of the mix, over ``threads`` threads
    (fewer if there are fewer rounds than threads).

    Prints throughput and p50/p95/p99 per operation to ``out``; draws a progress bar on
    ``progress`` (a terminal) if given. Returns the figures.

    Raises:
        ValueError: the URL is invalid, or ``ops``/``threads`` are not positive.
        StoreError: the store failed (the run stops at the first failure).
        KeyboardInterrupt: interrupted; the threads stop after their current round.
    """
    if ops < 1 or threads < 1:
        raise ValueError("--ops and --threads must be positive")
    store = open_store(url, prefix=f"oauth2_store_bench_{secrets.token_hex(6)}")  # a valid key prefix and table prefix
    rounds = -(-ops // len(OPERATIONS))
    threads = min(threads, rounds)
    samples: dict[str, list[float]] = {name: [] for name in OPERATIONS}
    lock = threading.Lock()
    done = [0]
    errors: list[BaseException] = []
    stop = threading.Event()
    per_thread = [rounds // threads + (1 if n < rounds % threads else 0) for n in range(threads)]

    def worker(count: int) -> None:
        round_ = _workload(store)
        for _ in range(count):
            if errors or stop.is_set():
                return
            try:
                seconds = round_()
            except BaseException as error:  # reported by the caller
                errors.append(error)
                return
            with lock:
                for name, value in seconds.items():
                    samples[name].append(value)
                done[0] += 1

    workers = [threading.Thread(target=worker, args=(count,), daemon=True) for count in per_thread]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    try:
        while any(thread.is_alive() for thread in workers):
            if progress is not None:
                _draw(progress, done[0], rounds)
            workers[0].join(0.1)
    except KeyboardInterrupt:
        stop.set()
        raise
    wall = time.perf_counter() - started
    if progress is not None:
        _draw(progress, done[0], rounds)
        progress.write("\n")
    discard_store(store)
    if errors:
        raise errors[0]
    total = done[0] * len(OPERATIONS)
    result: BenchResult = {
        "url": redact_url(url),
        "threads": threads,
        "operations": total,
        "seconds": round(wall, 3),
        "throughput_ops_per_second": round(total / wall, 1),
        "latency_ms": {name: _latency(values) for name, values in samples.items()},
    }
    rounded = f" (--ops {ops} rounded up to whole rounds of {len(OPERATIONS)})" if total != ops else ""
    out.write(f"{redact_url(url)}: {total} operations{rounded} in {wall:.2f} s with {threads} thread{'' if threads == 1 else 's'}: {total / wall:,.0f} ops/s\n")
    out.write(f"{'operation':<24}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}\n")
    for name, values in samples.items():
        figures = _latency(values)
        out.write(f"{name:<24}{len(values):>8}{figures['p50']:>10.3f}{figures['p95']:>10.3f}{figures['p99']:>10.3f}\n")
    return result


def write_json(result: BenchResult, file: TextIO) -> None:
    """Write ``result`` as JSON to ``file``."""
    file.write(json.dumps(result, indent=2) + "\n")


def _latency(values: list[float]) -> Latency:
    if len(values) < 2:
        single = round(values[0] * 1000, 4) if values else 0.0
        return {"count": len(values), "p50": single, "p95": single, "p99": single}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"count": len(values), "p50": round(cuts[49] * 1000, 4), "p95": round(cuts[94] * 1000, 4), "p99": round(cuts[98] * 1000, 4)}


def _draw(progress: TextIO, done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    progress.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} rounds")
    progress.flush()
