"""A small timing harness: contenders run side by side (A B C, B C A, ...) so machine drift cancels.

Figures are per-operation medians, with min and max, and ratios against a reference timed in the
same run. No contender is favoured by running first: the order rotates.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Batch = Callable[[int], None]
"""Runs an operation ``n`` times (on fresh inputs prepared outside the timed region, if needed)."""

Operation = Callable[[int], object]
"""Runs the ``i``-th operation of a contender (inputs prepared beforehand, untimed)."""


@dataclass(frozen=True)
class Sizes:
    """How much work each benchmark does: the full run, or a tiny one for the smoke test."""

    codec_ops: int
    local_ops: int
    rounds: int
    memcache_ops: int
    warmup: int
    bytes_tokens: int
    scale_ops: int
    scale_rounds: int


FULL = Sizes(codec_ops=2000, local_ops=5000, rounds=15, memcache_ops=3000, warmup=200, bytes_tokens=2000, scale_ops=6000, scale_rounds=3)
QUICK = Sizes(codec_ops=20, local_ops=20, rounds=2, memcache_ops=20, warmup=5, bytes_tokens=20, scale_ops=40, scale_rounds=1)


@dataclass(frozen=True)
class Section:
    """One measured operation: seconds per operation of every sample, per contender."""

    title: str
    samples: Mapping[str, list[float]]
    reference: str
    notes: tuple[str, ...] = ()

    def median(self, contender: str) -> float:
        """Median seconds per operation of ``contender``."""
        return statistics.median(self.samples[contender])

    def ratio(self, contender: str, reference: str | None = None) -> float:
        """Median time of ``contender`` over that of ``reference`` (default: the section's)."""
        return self.median(contender) / self.median(reference or self.reference)

    def markdown(self) -> str:
        """A Markdown table of medians (with min/max) in microseconds and ratios to the reference."""
        lines = [
            f"#### {self.title}",
            "",
            f"| contender | median µs | min µs | max µs | time ratio to {self.reference} |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for name, samples in self.samples.items():
            lines.append(
                f"| {name} | {self.median(name) * 1e6:.2f} | {min(samples) * 1e6:.2f} | {max(samples) * 1e6:.2f} | {self.ratio(name):.2f}x |"
            )
        return "\n".join([*lines, "", *self.notes]).rstrip() + "\n"


@dataclass(frozen=True)
class Target:
    """A goal of issue 6, as ours over a reference (time or bytes) that must not exceed ``limit``."""

    goal: str
    ratio: float
    limit: float

    @property
    def met(self) -> bool:
        """Whether the measured ratio is within the limit."""
        return self.ratio <= self.limit


@dataclass
class Part:
    """One benchmark's results: a heading, what it measured, its tables and the targets it checks."""

    heading: str
    intro: str
    sections: list[Section] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    extra: str = ""

    def markdown(self) -> str:
        """The part as Markdown: heading, intro, extra text, then every table."""
        blocks = [f"### {self.heading}", self.intro, *([self.extra] if self.extra else []), *(section.markdown() for section in self.sections)]
        return "\n\n".join(block.strip() for block in blocks) + "\n"


def interleave(contenders: Mapping[str, Callable[[], Batch]], ops: int, rounds: int) -> dict[str, list[float]]:
    """Time each contender ``rounds`` times, ``ops`` operations each, interleaved, after one
    untimed warm-up round.

    ``contenders`` maps a name to a set-up function that prepares a fresh batch (untimed) and
    returns it. Returns the seconds per operation of every timed round, per contender.
    """
    names = list(contenders)
    for name in names:
        contenders[name]()(ops)
    per_op: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            batch = contenders[name]()
            start = time.perf_counter()
            batch(ops)
            per_op[name].append((time.perf_counter() - start) / ops)
    return per_op


def alternate(
    contenders: Mapping[str, Operation], ops: int, warmup: int, prepare: Mapping[str, Operation] | None = None
) -> dict[str, list[float]]:
    """Time single operations, alternating contenders op by op (A B C, B C A, ...).

    For network operations, where latency drifts from one millisecond to the next: each
    contender's i-th operation runs right next to the others' i-th. Operations ``0 .. warmup-1``
    run untimed first, so every contender needs inputs for ``warmup + ops`` operations.
    ``prepare`` maps some contenders to a step run, untimed, right before each of their
    operations (with the same ``i``): to warm a cache for that operation alone, say. Returns the
    seconds of every timed operation, per contender.
    """
    names = list(contenders)
    steps = prepare or {}
    per_op: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    for i in range(warmup):
        for name in names:
            if name in steps:
                steps[name](i)
            contenders[name](i)
    for i in range(warmup, warmup + ops):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            if name in steps:
                steps[name](i)
            operation = contenders[name]
            start = clock()
            operation(i)
            per_op[name].append(clock() - start)
    return per_op
