"""Throughput as load grows: the CLI's bench engine (``oauth2-store bench``) with 1, 2, 4 and 8
threads sharing one store, over one memcached and over three (keys hashed across them)."""

from __future__ import annotations

import io
import statistics
from dataclasses import dataclass

from harness import Sizes

from oauth2_store.cli.bench import OPERATIONS, run_bench

THREADS = (1, 2, 4, 8)


@dataclass(frozen=True)
class Scale:
    """Operations per second of every round, per (number of servers, threads)."""

    throughput: dict[tuple[int, int], list[float]]

    def median(self, servers: int, threads: int) -> float:
        """Median operations per second with ``servers`` servers and ``threads`` threads."""
        return statistics.median(self.throughput[servers, threads])

    def server_counts(self) -> list[int]:
        """The numbers of servers measured, in order."""
        return sorted({servers for servers, _ in self.throughput})

    def markdown(self, ops: int, rounds: int) -> str:
        """The scale part as Markdown: what ran, and a table of throughput per configuration."""
        counts = self.server_counts()
        lines = [
            "### Scale",
            "",
            f"`oauth2-store bench`'s mix ({', '.join(OPERATIONS)}) with {ops} operations per run, {rounds} round(s) of every "
            "configuration, configurations interleaved. Operations per second: median (min-max); the ratio is to one "
            "thread on one server.",
            "",
            "| threads | " + " | ".join(f"{count} server{'s' if count > 1 else ''}" for count in counts) + " |",
            "| ---: | " + " | ".join("---:" for _ in counts) + " |",
        ]
        base = self.median(counts[0], THREADS[0])
        for threads in THREADS:
            cells = []
            for servers in counts:
                samples = self.throughput[servers, threads]
                cells.append(f"{self.median(servers, threads):,.0f} ({min(samples):,.0f}-{max(samples):,.0f}), {self.median(servers, threads) / base:.2f}x")
            lines.append(f"| {threads} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def measure(sizes: Sizes, addresses: list[str]) -> Scale:
    """Run the mix on the first server alone and on all of ``addresses``, with each thread count."""
    urls = {1: f"memcache://{addresses[0]}", len(addresses): "memcache://" + ",".join(addresses)}
    configurations = [(servers, threads) for threads in THREADS for servers in urls]
    throughput: dict[tuple[int, int], list[float]] = {configuration: [] for configuration in configurations}
    run_bench(urls[1], ops=len(OPERATIONS) * 20, threads=1, out=io.StringIO())  # warm-up
    for round_ in range(sizes.scale_rounds):
        shift = round_ % len(configurations)
        for servers, threads in configurations[shift:] + configurations[:shift]:
            result = run_bench(urls[servers], ops=sizes.scale_ops, threads=threads, out=io.StringIO())
            throughput[servers, threads].append(result["throughput_ops_per_second"])
    return Scale(throughput)
