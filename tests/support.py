"""Helpers shared by the test modules."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

TYPEGUARD_RUN = bool(os.environ.get("OAUTH2_STORE_TYPEGUARD"))
"""True in `make pytest-typeguard`, where oauth2_store's annotations are checked at run time."""


def raised_for(error: type[Exception]) -> tuple[type[Exception], ...]:
    """The exceptions a test accepts where the package raises ``error`` for a wrong argument.

    In the typeguard run an annotation check may fire before the package's own check; the
    conftest makes it raise TypeError (naming the argument), which is accepted too.
    """
    return (error, TypeError) if TYPEGUARD_RUN else (error,)


class Scale:
    """How big the reliability scenarios run: bounded in the normal suite, full with --reliability-full."""

    def __init__(self, full: bool) -> None:
        self.full = full

    def pick(self, bounded: int, full: int, typeguard: int | None = None) -> int:
        """The size for this run: ``full`` with --reliability-full, else ``bounded``, or ``typeguard``
        when given in the typeguard run (where checking every call makes hot loops 5-20x slower)."""
        if self.full:
            return full
        return typeguard if typeguard is not None and TYPEGUARD_RUN else bounded


Figures = Callable[[str], None]
"""Records a one-line summary of what a reliability scenario did and found (the `figures` fixture)."""


def marked_errors(path: Path) -> dict[int, set[str]]:
    """The lines of ``path`` marked ``# E: code [code...]``: the mypy errors each must give."""
    expected: dict[int, set[str]] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if "# E:" in line:
            expected[number] = set(line.split("# E:")[1].split())
    return expected


def reported_errors(mypy_output: str, path: Path) -> dict[int, set[str]]:
    """The error codes mypy reported for each line of ``path``."""
    found: dict[int, set[str]] = {}
    for line in mypy_output.splitlines():
        match = re.match(rf".*{re.escape(path.name)}:(\d+): error: .*\[([a-z-]+)\]$", line)
        if match:
            found.setdefault(int(match[1]), set()).add(match[2])
    return found
