"""A small interleaved timing harness: contenders run A B C A B C ... so machine drift cancels.

Figures are per-operation medians over rounds, with min and max, and ratios against a baseline
taken from the same rounds. No contender is favoured by running first: the order rotates.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

Batch = Callable[[int], None]
"""Runs an operation ``n`` times (on fresh inputs prepared outside the timed region, if needed)."""


def interleave(contenders: Mapping[str, Callable[[], Batch]], ops: int, rounds: int) -> dict[str, list[float]]:
    """Time each contender ``rounds`` times, ``ops`` operations each, interleaved.

    ``contenders`` maps a name to a set-up function that prepares a fresh batch (untimed) and
    returns it. Returns the seconds per operation of every round, per contender.
    """
    names = list(contenders)
    per_op: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            batch = contenders[name]()
            start = time.perf_counter()
            batch(ops)
            per_op[name].append((time.perf_counter() - start) / ops)
    return per_op


def report(title: str, per_op: Mapping[str, list[float]], baseline: str) -> str:
    """A Markdown table of medians (with min/max) in microseconds and the ratio to ``baseline``."""
    base = statistics.median(per_op[baseline])
    lines = [f"### {title}", "", f"| contender | median µs | min µs | max µs | ratio to {baseline} |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, samples in per_op.items():
        median = statistics.median(samples)
        lines.append(f"| {name} | {median * 1e6:.2f} | {min(samples) * 1e6:.2f} | {max(samples) * 1e6:.2f} | {median / base:.2f}x |")
    return "\n".join(lines) + "\n"


Operation = Callable[[int], object]
"""Runs the ``i``-th operation of a contender (inputs prepared beforehand, untimed)."""


def alternate(contenders: Mapping[str, Operation], ops: int) -> dict[str, list[float]]:
    """Time single operations, alternating contenders op by op (A B C, B C A, ...).

    For network operations, where latency drifts from one millisecond to the next: each
    contender's i-th operation runs right next to the others' i-th. Returns the seconds of every
    operation, per contender; :func:`report` gives their medians.
    """
    names = list(contenders)
    per_op: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    for i in range(ops):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            operation = contenders[name]
            start = clock()
            operation(i)
            per_op[name].append(clock() - start)
    return per_op
