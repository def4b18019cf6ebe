"""The one source of time.

Everything that shows or stores a time asks a `Clock`: wall time (`time()`, epoch seconds) for
timestamps, token expiry and history, and `monotonic()` for latencies. Production code uses
`SYSTEM_CLOCK`; tests, snapshots and screenshots inject a `ManualClock` that only moves when told.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Wall time and monotonic time, both in seconds."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that stands still until `advance()` or `set()` moves it (thread-safe).

    Both readings move together, so latencies measured against it are zero unless a test
    advances it in between - or unless `real_monotonic` is set: then wall time stands still
    while `monotonic()` is the real one, so latencies are real (screenshots use this).
    """

    # 2026-11-30 12:00:00 UTC: a fixed, recognisable default for snapshots.
    DEFAULT_START = 1_796_040_000.0

    def __init__(self, start: float = DEFAULT_START, *, real_monotonic: bool = False) -> None:
        self._lock = threading.Lock()
        self._wall = float(start)
        self._mono = 1_000.0
        self._real_monotonic = real_monotonic

    def time(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        if self._real_monotonic:
            return time.monotonic()
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._wall += seconds
            self._mono += seconds

    def set(self, wall: float) -> None:
        with self._lock:
            if wall < self._wall:
                raise ValueError("a clock does not go backwards")
            self._mono += wall - self._wall
            self._wall = wall


SYSTEM_CLOCK: Clock = SystemClock()
