"""The recent past, bounded whatever the uptime: what `assess` needs besides the reading itself.

Per bucket (registry, repository and source: see `Reading.bucket_key`) an incremental
`RecoveryTracker` and `ForecastTracker`; per identity its last good reading (the last one that
measured the quota, so a failed probe does not blank the truth), a sparkline series of
`remaining` (at most `points` values: readings closer together than window/points share a slot)
and the last few distinct sources it was charged to. Fed in time order: what the history
database kept, at start, then every new reading.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from pullwatch.forecast import Forecast, ForecastTracker
from pullwatch.reading import Reading, Source
from pullwatch.recovery import Recovery, RecoveryTracker, usable

SPARK_POINTS = 120
SOURCES_KEPT = 8

BucketKey = tuple[str, str, str]


class RecentHistory:
    def __init__(self, points: int = SPARK_POINTS) -> None:
        self._points = points
        self._trackers: dict[BucketKey, RecoveryTracker] = {}
        self._forecasts: dict[BucketKey, ForecastTracker] = {}
        self._series: dict[str, deque[tuple[float, int]]] = {}
        self._sources: dict[str, deque[tuple[float, Source]]] = {}
        self._last_good: dict[str, Reading] = {}

    def load(self, readings: Iterable[Reading]) -> None:
        """Feed readings in time order (for a one-off list; the database keeps its own state)."""
        for reading in sorted(readings, key=lambda r: r.checked_at):
            self.add(reading)

    def adopt(
        self,
        trackers: Iterable[RecoveryTracker],
        sources_seen: Mapping[str, Sequence[tuple[float, Source]]],
        last_good: Iterable[Reading] = (),
        forecasts: Iterable[ForecastTracker] = (),
    ) -> None:
        """Start from what the history database kept: bucket trackers, sources, last good."""
        for tracker in trackers:
            self._trackers[tracker.key] = tracker
        for forecast in forecasts:
            self._forecasts[forecast.key] = forecast
        for label, pairs in sources_seen.items():
            seen = self._sources.setdefault(label, deque(maxlen=SOURCES_KEPT))
            for at, source in pairs:
                if not seen or seen[-1][1] != source:
                    seen.append((at, source))
        for reading in last_good:
            self._keep_good(reading)

    def add(self, reading: Reading) -> None:
        if reading.source is not None:
            seen = self._sources.setdefault(reading.label, deque(maxlen=SOURCES_KEPT))
            if not seen or seen[-1][1] != reading.source:
                seen.append((reading.checked_at, reading.source))
        self._keep_good(reading)
        key = reading.bucket_key
        if not usable(reading) or key is None:
            return
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = RecoveryTracker(key)
        tracker.observe(reading)
        forecast = self._forecasts.get(key)
        if forecast is None:
            forecast = self._forecasts[key] = ForecastTracker(key)
        forecast.observe(reading)
        self.add_point(reading)

    def _keep_good(self, reading: Reading) -> None:
        if not reading.measured:
            return
        kept = self._last_good.get(reading.label)
        if kept is None or kept.checked_at <= reading.checked_at:
            self._last_good[reading.label] = reading

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

    def forget(self, label: str) -> None:
        """An identity was removed or changed its login: its own memory goes (buckets stay)."""
        self._series.pop(label, None)
        self._sources.pop(label, None)
        self._last_good.pop(label, None)

    def recovery(self, key: BucketKey | None) -> Recovery | None:
        tracker = self._trackers.get(key) if key else None
        return tracker.recovery() if tracker else None

    def forecast(self, key: BucketKey | None, now: float | None = None) -> Forecast | None:
        """When the bucket runs out at the recent pace (None: nothing metered to go on)."""
        tracker = self._forecasts.get(key) if key else None
        return tracker.forecast(now) if tracker is not None and tracker.readings else None

    def last_good(self, label: str) -> Reading | None:
        """The identity's last reading that measured the quota (metered or not)."""
        return self._last_good.get(label)

    def series(self, label: str, since: float) -> list[float]:
        """`remaining` over time for one identity, from `since` on (oldest first)."""
        return [float(v) for t, v in self._series.get(label, ()) if t >= since]

    def sources(self, label: str, since: float = 0.0) -> list[Source]:
        """Distinct sources this identity was charged to since `since`, in order."""
        out: list[Source] = []
        for t, source in self._sources.get(label, ()):
            if t >= since and source not in out:
                out.append(source)
        return out
