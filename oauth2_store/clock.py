"""Clocks: where stores read the time, so tests can move it instead of sleeping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Clock", "ManualClock", "system_clock"]

Clock = Callable[[], float]
"""A function returning the current unix time in seconds, like :func:`time.time`."""

system_clock: Clock = time.time
"""The default clock of every store."""


class ManualClock:
    """A clock that stands still until told to move, for tests.

    It starts at the current unix time (whole seconds), so backends that keep their own time
    (memcached TTLs) see sensible expiries.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = float(int(time.time())) if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """Return the clock's current time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``.

        Raises:
            ValueError: ``seconds`` is negative (a clock that goes back breaks expiry contracts).
        """
        if seconds < 0:
            raise ValueError("a ManualClock only moves forward")
        with self._lock:
            self._now += seconds
