"""When pulls come back: upper-bound estimates from watching one bucket.

Docker Hub's window is rolling and no reset time is sent, so a pull returns `w` seconds after it
was made - and pullwatch never sees pulls, only readings of `remaining`. What it can say for
sure, reading by reading (docs/protocol.md, "The window"):

- the deficit seen at the first reading (limit - remaining) was pulled before that reading, so
  it is all back by `first reading + w` at the latest;
- a drop of k between readings at t1 < t2 was pulled before t2, so it is back by `t2 + w`;
- a rise means the oldest outstanding pulls came back (the window returns them oldest first);
- outstanding pulls whose bound has passed are back; if `remaining` did not rise to match,
  other pulls were made in between, no later than the reading that shows it.

So the estimate keeps batches of outstanding pulls, each with the latest time its pulls can
have been made; a pull is back by that time + w. "Next pull back" is the oldest batch's bound,
"full" the newest's. Both are upper bounds ("≤"), and they tighten as readings accumulate: when
every drop is watched, they are within one refresh interval of the truth.

Readings are grouped by bucket (`Reading.bucket_key`: registry, repository and source), not by
identity: two identities charged to one account or one IP share one quota and one history;
readings of another registry or probe repository never mix in. Only the last window's
readings matter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pullwatch.reading import METERED_STATES, Reading


@dataclass(frozen=True, slots=True)
class Recovery:
    """Recovery of one bucket as of its latest reading."""

    deficit: int  # pulls outstanding (limit - remaining) at the latest reading
    next_at: float | None  # a pull is back by then at the latest (None: nothing outstanding)
    full_at: float | None  # every outstanding pull is back by then at the latest
    window: int
    readings_used: int

    @property
    def recovering(self) -> bool:
        return self.deficit > 0

    def next_in(self, now: float) -> float | None:
        return None if self.next_at is None else max(self.next_at - now, 0.0)

    def full_in(self, now: float) -> float | None:
        return None if self.full_at is None else max(self.full_at - now, 0.0)


BucketKey = tuple[str, str, str]


def usable(reading: Reading) -> bool:
    """Does this reading say how many pulls a bucket has left (a valid quota, a window)?"""
    return (
        reading.state in METERED_STATES
        and reading.quota_valid
        and reading.window_seconds is not None
        and reading.source is not None
    )


class RecoveryTracker:
    """The incremental estimate for one bucket: feed its readings in time order.

    Holds only the outstanding batches (a handful), so watching many buckets for hours costs
    next to nothing; `estimate()` is the same computation over a list.
    """

    __slots__ = ("_batches", "_last_at", "_readings", "_window", "key")

    def __init__(self, key: BucketKey) -> None:
        self.key = key
        self._batches: list[list[float]] = []  # [latest possible pull time, count], oldest first
        self._window: int | None = None
        self._last_at: float | None = None
        self._readings = 0

    def observe(self, reading: Reading) -> None:
        """Take one usable reading of this bucket (others, and out-of-order ones, are ignored)."""
        if not usable(reading) or reading.bucket_key != self.key:
            return
        if self._last_at is not None and reading.checked_at < self._last_at:
            return
        assert reading.limit is not None and reading.remaining is not None
        window = reading.window_seconds
        assert window is not None
        now = reading.checked_at
        self._window = window  # the window in force now decides when pulls return
        self._last_at = now
        self._readings += 1
        deficit = max(reading.limit - reading.remaining, 0)
        batches = [b for b in self._batches if b[0] + window > now]
        outstanding = sum(int(b[1]) for b in batches)
        if outstanding < deficit:  # pulls made since the last reading, by now at the latest
            batches.append([now, float(deficit - outstanding)])
        excess = outstanding - deficit
        while excess > 0 and batches:  # pulls came back earlier than their bound: oldest first
            take = min(excess, int(batches[0][1]))
            batches[0][1] -= take
            excess -= take
            if batches[0][1] <= 0:
                batches.pop(0)
        self._batches = batches

    def to_state(self) -> dict[str, object]:
        """A JSON-able snapshot, so the history database can carry the estimate forward."""
        return {
            "batches": [list(b) for b in self._batches],
            "window": self._window,
            "last_at": self._last_at,
            "readings": self._readings,
        }

    @classmethod
    def from_state(cls, key: BucketKey, state: object) -> RecoveryTracker:
        """The tracker `to_state()` described; a fresh one if the state is unreadable."""
        tracker = cls(key)
        try:
            assert isinstance(state, dict)
            batches = [[float(t), float(n)] for t, n in state["batches"]]
            window = state["window"]
            last_at = state["last_at"]
            tracker._batches = batches
            tracker._window = None if window is None else int(window)
            tracker._last_at = None if last_at is None else float(last_at)
            tracker._readings = int(state["readings"])
        except (AssertionError, KeyError, TypeError, ValueError):
            return cls(key)
        return tracker

    def recovery(self) -> Recovery | None:
        if self._window is None:
            return None
        window = self._window
        if not self._batches:
            return Recovery(0, None, None, window, self._readings)
        return Recovery(
            deficit=sum(int(b[1]) for b in self._batches),
            next_at=self._batches[0][0] + window,
            full_at=self._batches[-1][0] + window,
            window=window,
            readings_used=self._readings,
        )


def estimate(readings: Iterable[Reading]) -> Recovery | None:
    """The recovery of the bucket of the latest usable reading, from that bucket's readings.

    Readings of other buckets (another source, registry or repository) are ignored; so are
    failed or unmetered ones.
    None when there is nothing metered to go on.
    """
    ordered = sorted((r for r in readings if usable(r)), key=lambda r: r.checked_at)
    if not ordered:
        return None
    latest = ordered[-1]
    assert latest.bucket_key is not None and latest.window_seconds is not None
    tracker = RecoveryTracker(latest.bucket_key)
    horizon = latest.checked_at - 2 * latest.window_seconds  # older readings cannot matter
    for reading in ordered:
        if reading.checked_at > horizon:
            tracker.observe(reading)
    return tracker.recovery()
