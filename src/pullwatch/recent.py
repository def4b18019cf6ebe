"""What a running dashboard remembers between readings, bounded whatever the uptime.

Per bucket (`source`) an incremental `RecoveryTracker`; per identity a sparkline series of
`remaining` (at most `points` values: readings closer together than window/points share a
slot) and the last few distinct sources it was charged to. Fed in time order: the history
database's recent rows at start, then every new reading.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from pullwatch.reading import Reading
from pullwatch.recovery import Recovery, RecoveryTracker, usable

SPARK_POINTS = 120
SOURCES_KEPT = 8


class RecentHistory:
    def __init__(self, points: int = SPARK_POINTS) -> None:
        self._points = points
        self._trackers: dict[str, RecoveryTracker] = {}
        self._series: dict[str, deque[tuple[float, int]]] = {}
        self._sources: dict[str, deque[tuple[float, str]]] = {}

    def load(self, readings: Iterable[Reading]) -> None:
        """Feed readings in time order (for a one-off list; the database keeps its own state)."""
        for reading in sorted(readings, key=lambda r: r.checked_at):
            self.add(reading)

    def adopt(
        self,
        trackers: Iterable[RecoveryTracker],
        sources_seen: Mapping[str, Sequence[tuple[float, str]]],
    ) -> None:
        """Start from what the history database kept: bucket trackers, sources per identity."""
        for tracker in trackers:
            self._trackers[tracker.source] = tracker
        for label, pairs in sources_seen.items():
            seen = self._sources.setdefault(label, deque(maxlen=SOURCES_KEPT))
            for at, source in pairs:
                if not seen or seen[-1][1] != source:
                    seen.append((at, source))

    def add(self, reading: Reading) -> None:
        if reading.source is not None:
            seen = self._sources.setdefault(reading.label, deque(maxlen=SOURCES_KEPT))
            if not seen or seen[-1][1] != reading.source:
                seen.append((reading.checked_at, reading.source))
        if not usable(reading):
            return
        assert reading.source is not None and reading.remaining is not None
        tracker = self._trackers.get(reading.source)
        if tracker is None:
            tracker = self._trackers[reading.source] = RecoveryTracker(reading.source)
        tracker.observe(reading)
        self.add_point(reading)

    def add_point(self, reading: Reading) -> None:
        """Only the sparkline (trackers adopted from the database already saw the reading)."""
        if not usable(reading) or reading.remaining is None:
            return
        window = reading.window_seconds or 21600
        slot = max(window / self._points, 1.0)
        series = self._series.setdefault(reading.label, deque(maxlen=self._points))
        if series and reading.checked_at - series[-1][0] < slot:
            series[-1] = (series[-1][0], reading.remaining)  # same slot: keep the latest value
        else:
            series.append((reading.checked_at, reading.remaining))

    def recovery(self, source: str | None) -> Recovery | None:
        tracker = self._trackers.get(source) if source else None
        return tracker.recovery() if tracker else None

    def series(self, label: str, since: float) -> list[float]:
        """`remaining` over time for one identity, from `since` on (oldest first)."""
        return [float(v) for t, v in self._series.get(label, ()) if t >= since]

    def sources(self, label: str, since: float = 0.0) -> list[str]:
        """Distinct sources this identity was charged to since `since`, in order."""
        out: list[str] = []
        for t, source in self._sources.get(label, ()):
            if t >= since and source not in out:
                out.append(source)
        return out
