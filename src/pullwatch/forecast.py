"""When a bucket runs out at the current pace: a forecast from watching it, said honestly.

Docker Hub's window rolls and no reset time is sent: a pull comes back `w` seconds after it was
made, and pullwatch never sees pulls, only readings of `remaining`. From one bucket's readings,
in time order, this module says how fast pulls are being spent and when `remaining` reaches 0
if that pace holds - or that it cannot say yet.

What is inferred, reading by reading (the reasoning of the "recovers in" estimate):

- A fall of k in `remaining` between two readings means at least k pulls were made in between.
- Outstanding pulls are kept in batches, each with the latest time its pulls can have been made
  (the reading that first showed them) and, when the fall was watched, the earliest (the reading
  before). A pull is back `w` after it was made, so a batch is surely back `w` after its latest
  time; a rise means the oldest pulls came back first.
- When a watched batch is surely back, its pulls came back in this interval (their return began
  at most two readings ago), so if `remaining` did not rise to match, new pulls were made: they
  are counted. That is how the pace stays gross - pulls made, not the net fall - while the
  window rolls and gives pulls back.
- Pulls proved only by a batch of unknown age (the deficit at the first reading, or a fall spread
  over a long gap) are "hidden": kept as outstanding, not counted in the pace, since when they
  were made is unknown. While such old pulls come back unseen a fall may hide pulls, so the pace
  counted is net of those returns, and the forecast assumes they keep coming back as they have
  (it does not count them back a second time).
- An interval is blind when pulls came back in it that cannot be pinned to it (a rise before
  their time, or pulls of unknown age), or when the bucket was at 0 at either end (pulls are
  refused: what was taken says nothing of what was wanted). The pace is measured within the
  stretches of readings between blind ones, never across one: what a blind stretch held is
  unknown, and leaving its time out would shift a bursty pace's phase.

What is assumed ("assumes the recent pace"):

- Each reading's pulls were made as early as the readings allow: just after the reading before.
- The pace goes on: no span from now on holds more pulls than `burst + rate x span`. The rate is
  the fastest seen between two readings over any basis from the short one (15 min; all there is,
  while there is less) to the long one (60 min); the burst is the most pulls beyond that rate any
  run of readings held. So a burst, a pace that picked up or one that slowed down all give the
  earlier of the plausible run-out times, never the rosier one. Silence since the last pull,
  beyond the longest pause seen between readings that saw pulls, counts as time without pulls:
  a steady consumer pauses no longer than it does, one that stopped has - so after a burst the
  forecast relaxes as the silence grows, and periodic jobs are seen at their period.
- Outstanding pulls come back at the latest time the readings allow; pulls made from now on come
  back `w` after they are made. Over the next window, remaining follows `remaining now + pulls
  back by then - pulls made by then`; the bucket runs out when that reaches 0, and one that has
  not run out one window ahead never does at that pace ("levels off").

Readings see whole pulls per refresh interval, so a pace is only known to a pull in how many were
seen. Three readings a minute apart that each saw one pull fit a pull a minute - and a pull every
45 s read before its double shows (1, 1, 1, then 2). No single time can be both within one
refresh interval of the first and never later than the second, so a Forecast carries both:

- `runs_out_at`, the earliest plausible: the earlier of the pace seen and the fastest pace the
  readings allow (a span can miss at its edge what one reading takes - a pull of a steady pace,
  a burst of a bursty one - so k pulls seen after a reading allow k + the most one reading
  took). If pulls go on at the pace seen or slower, and in no bigger bursts, the bucket does not
  empty before it. Alarm on this. For a steady pace it is early by at most one refresh interval
  plus the time left over (the readings that saw pulls - 1): it draws in as they accumulate.
- `expected_at`, at the pace as seen. When the pace is steady in whole pulls per refresh interval
  (or one pull every few intervals) and readings come at that steady interval, it is within one
  refresh interval of when the bucket really empties; otherwise it is off by about as much as
  `runs_out_at` is early.

Refusals: fewer than three readings that saw pulls (not blind) within the long basis is "not
enough readings yet", whatever the time between them (two readings an hour apart are not a
pace); no pull at all in it is "not draining"; `remaining` 0 is "exhausted" (when pulls come back
is the "recovers in" estimate's business); no reading within the long basis is "not enough".
After pulls were refused, what was wanted is unknown but more than the bucket gave, so "may run
out again any moment" is the earliest plausible time: within the short basis until three readings
show the pace since; within the window while most outstanding pulls are of unknown age, or while
no more are left than one reading has seen taken at once (likewise when returns hid pulls).

Limits, besides a consumer that speeds up (it empties the bucket sooner; nothing seen before can
tell): a burst split across two readings may come back within one, so a forecast can be late by
up to one refresh interval (and the seconds the burst is spread over); and a bursty consumer
that was already keeping the bucket near empty before watching began takes pulls as its own
bursts come back, in the same intervals, where no reading can see them - until the readings
catch a 0, the pace counted is too slow. `older_pulls` (outstanding pulls of unknown age) says
how much of the bucket the readings have not seen.

State is bounded per bucket: outstanding batches (closer than `w / MAX_BATCHES` they merge, which
only moves a return later - the early side) and the readings within the longer of the long basis
and the window that saw pulls, returns or blindness (at most `MAX_STEPS`). `record()` is O(1)
amortized; `forecast()` walks the bounded state, never the history; `to_state()` /
`from_state()` carry it across processes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from pullwatch.reading import Reading
from pullwatch.recovery import BucketKey, usable

SHORT_BASIS = 900.0  # seconds: the shortest basis, once there is that much to go on
LONG_BASIS = 3600.0  # seconds: the longest basis (readings older than this are forgotten)
MIN_DROPS = 3  # readings that saw pulls, within the long basis, before there is a pace
ENDS = 4  # rates end at one of the last ENDS readings that saw pulls
MAX_BATCHES = 1024  # outstanding batches per window: closer ones merge
MAX_STEPS = 2048  # readings kept per bucket that saw pulls, returns or blindness
STATE_VERSION = 1


class ForecastStatus(StrEnum):
    NOT_ENOUGH = "not_enough"  # fewer than MIN_DROPS readings saw pulls: no pace yet
    NOT_DRAINING = "not_draining"  # no pull seen in the long basis
    DRAINING = "draining"  # at the pace, remaining reaches 0 at `runs_out_at`
    LEVELS_OFF = "levels_off"  # pulls are made, but come back before the bucket runs out
    EXHAUSTED = "exhausted"  # remaining is 0 now


@dataclass(frozen=True, slots=True)
class Forecast:
    """One bucket's outlook as of its latest reading (`as_of`), and what it is based on.

    `per_hour` is the pace seen (pulls made per hour); `fastest_per_hour` the fastest pace the
    readings allow, which `runs_out_at` and the status allow for; `net_per_hour` what `remaining`
    did over the basis (pulls made minus pulls seen coming back). `pulls_seen`, `returned_seen`
    and `drops_seen` (readings that saw pulls) are counted over `basis_seconds`, from the reading
    before the first one that saw pulls up to `as_of`: "12 pulls in the last 15 min". For
    NOT_DRAINING, `basis_seconds` is how long no pull was seen. For LEVELS_OFF,
    `lowest_remaining` is how low the bucket gets. `runs_out_at` is the earliest plausible time
    (alarm on it), `expected_at` the one at the pace seen. `exhausted_at` / `hidden_at` say why
    a DRAINING forecast is "any moment" after pulls were refused or hidden. `older_pulls` are
    outstanding pulls of unknown age, not counted as coming back. Times are epoch seconds.
    """

    status: ForecastStatus
    as_of: float | None  # the latest reading; None when there was none
    remaining: int | None
    per_hour: float | None = None
    fastest_per_hour: float | None = None
    net_per_hour: float | None = None
    runs_out_at: float | None = None  # the earliest plausible
    expected_at: float | None = None  # at the pace seen (None: it levels off at that pace)
    lowest_remaining: int | None = None
    basis_seconds: float = 0.0
    pulls_seen: int = 0
    returned_seen: int = 0
    drops_seen: int = 0
    last_drop_at: float | None = None  # the latest reading that saw pulls
    exhausted_at: float | None = None  # the reading at 0 behind "may run out again any moment"
    hidden_at: float | None = None  # the reading that proved hidden pulls, behind the same
    older_pulls: int = 0

    @property
    def assumes_recent_pace(self) -> bool:
        """True whenever there is a projection: it holds only if the pace does not pick up."""
        return self.status in (ForecastStatus.DRAINING, ForecastStatus.LEVELS_OFF)

    def runs_out_in(self, now: float) -> float | None:
        return None if self.runs_out_at is None else max(self.runs_out_at - now, 0.0)

    def basis_text(self) -> str:
        """`12 pulls in the last 15 min`: what the pace was measured over."""
        noun = "pull" if self.pulls_seen == 1 else "pulls"
        return f"{self.pulls_seen} {noun} in the last {span_text(self.basis_seconds)}"

    def text(self, now: float) -> str:
        """One line, e.g. `runs out in ~25 min (12 pulls in the last 15 min; assumes the recent
        pace)`; with `as early as ~20 min` when the readings allow a faster pace."""
        status = self.status
        if status is ForecastStatus.EXHAUSTED:
            return "exhausted now"
        if status is ForecastStatus.NOT_ENOUGH:
            return (
                f"not enough readings yet (pulls seen at {self.drops_seen} of the "
                f"{MIN_DROPS} readings a pace needs)"
            )
        if status is ForecastStatus.NOT_DRAINING:
            return f"not draining (no pull seen in the last {span_text(self.basis_seconds)})"
        if self.exhausted_at is not None:
            ago = span_text(max(now - self.exhausted_at, 0.0))
            return f"may run out again any moment (exhausted {ago} ago: pulls were refused)"
        if self.hidden_at is not None:
            return (
                "may run out any moment (pulls are taken as they come back: "
                "the readings cannot see how fast)"
            )
        basis = f"{self.basis_text()}; assumes the recent pace"
        if status is ForecastStatus.LEVELS_OFF:
            return (
                f"does not run out at this pace: pulls come back as fast "
                f"(lowest ~{self.lowest_remaining} left; {basis})"
            )
        earliest = self.runs_out_in(now)
        assert earliest is not None
        if earliest < 60:
            return f"may run out any moment ({basis})"
        if self.expected_at is None:
            return f"may run out in ~{span_text(earliest)} ({basis})"
        expected = max(self.expected_at - now, 0.0)
        if span_text(expected) == span_text(earliest):
            return f"runs out in ~{span_text(earliest)} ({basis})"
        return f"runs out in ~{span_text(expected)}, as early as ~{span_text(earliest)} ({basis})"


def span_text(seconds: float) -> str:
    """A rounded span: `45 s`, `25 min`, `2 h 10 min`, `3 d 4 h`."""
    s = max(seconds, 0.0)
    if s < 60:
        return f"{round(s)} s"
    minutes = round(s / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h" if rest == 0 else f"{hours} h {rest} min"
    hours = round(s / 3600)
    days, rest = divmod(hours, 24)
    return f"{days} d" if rest == 0 else f"{days} d {rest} h"


class _Batch:
    """Outstanding pulls made in (start, bound]; start None when unknown."""

    __slots__ = ("bound", "count", "start")

    def __init__(self, start: float | None, bound: float, count: int) -> None:
        self.start = start
        self.bound = bound
        self.count = count


@dataclass(frozen=True, slots=True)
class _Step:
    """A reading that saw pulls, returns or blindness, and the time of the reading before it."""

    before: float
    at: float
    made: int
    returned: int
    blind: bool = False


@dataclass(frozen=True, slots=True)
class _Pace:
    """What the readings in the basis allow: two rates, and pulls due now at each."""

    seen: float  # pulls per second, as seen
    fastest: float  # pulls per second, the fastest steady pace the readings allow (>= seen)
    due_seen: float  # pulls that may already be due now, at each rate
    due_fastest: float
    basis_seconds: float
    pulls: int
    returned: int
    drops: int
    last_drop_at: float


class ForecastTracker:
    """The incremental forecast for one bucket (`key`: registry, repository, source): feed its
    readings in time order.

    `observe(reading)` takes a Reading (other buckets', unusable and out-of-order ones are
    ignored); `record(...)` takes the bare numbers. `forecast(now)` walks the bounded state.
    """

    __slots__ = (
        "_batches",
        "_first_at",
        "_hidden_at",
        "_last",
        "_long",
        "_outstanding",
        "_prev_at",
        "_readings",
        "_short",
        "_steps",
        "_zero_at",
        "key",
    )

    def __init__(
        self, key: BucketKey, short_basis: float = SHORT_BASIS, long_basis: float = LONG_BASIS
    ) -> None:
        if not 0 < short_basis <= long_basis or not math.isfinite(long_basis):
            raise ValueError("bases must satisfy 0 < short <= long (seconds)")
        self.key = key
        self._short = float(short_basis)
        self._long = float(long_basis)
        self._batches: deque[_Batch] = deque()  # outstanding pulls, oldest first
        self._outstanding = 0  # their sum: the deficit at the last reading
        self._steps: deque[_Step] = deque(maxlen=MAX_STEPS)
        self._last: tuple[float, int, int, int] | None = None  # (at, limit, remaining, window)
        self._prev_at: float | None = None  # the reading before the last one
        self._first_at: float | None = None  # when watching began (or the limit last changed)
        self._zero_at: float | None = None  # the latest reading with remaining 0
        self._hidden_at: float | None = None  # the latest reading that proved hidden pulls
        self._readings = 0

    @property
    def bases(self) -> tuple[float, float]:
        return self._short, self._long

    @property
    def readings(self) -> int:
        return self._readings

    def state_size(self) -> int:
        """Entries held (bounded whatever the uptime: for tests and benchmarks)."""
        return len(self._batches) + len(self._steps)

    def observe(self, reading: Reading) -> None:
        """Take one usable reading of this bucket (others, and out-of-order ones, are ignored)."""
        if not usable(reading) or reading.bucket_key != self.key:
            return
        assert reading.limit is not None and reading.remaining is not None
        assert reading.window_seconds is not None
        self.record(reading.checked_at, reading.limit, reading.remaining, reading.window_seconds)

    def record(self, checked_at: float, limit: int, remaining: int, window_seconds: int) -> None:
        """Take one reading's numbers (ignored when older than the last one, or nonsense)."""
        if window_seconds <= 0 or limit < 0 or remaining < 0 or not math.isfinite(checked_at):
            return
        last = self._last
        if last is not None and checked_at < last[0]:
            return
        now = float(checked_at)
        window = int(window_seconds)
        deficit = max(limit - remaining, 0)
        self._readings += 1
        if remaining == 0:
            self._zero_at = now
        if last is None:
            self._first_at = now
            if deficit:  # pulled before this reading, when exactly is unknown
                self._batches.append(_Batch(None, now, deficit))
                self._outstanding = deficit
            self._last = (now, limit, remaining, window)
            return
        last_at, last_limit, last_remaining, _ = last
        last_deficit = self._outstanding
        since = last_at if self._prev_at is None else self._prev_at
        pinned = 0  # pulls surely back now that came back in this interval
        unpinned = 0  # pulls surely back now that may have come back any time before
        batches = self._batches
        while batches and batches[0].bound + window <= now:
            batch = batches.popleft()
            if batch.start is not None and batch.start + window >= since:
                pinned += batch.count
            else:
                unpinned += batch.count
        outstanding = last_deficit - pinned - unpinned
        made = max(deficit - last_deficit + pinned, 0)
        if deficit > outstanding:  # pulls made since the last reading, by now at the latest
            hidden = deficit - outstanding - made  # proved by unpinned returns: made any time
            if hidden:
                _add_batch(batches, _Batch(None, now, hidden), window)
                self._hidden_at = now
            if made:
                _add_batch(batches, _Batch(last_at, now, made), window)
        excess = outstanding - deficit
        while excess > 0 and batches:  # pulls came back earlier than their bound: oldest first
            take = min(excess, batches[0].count)
            batches[0].count -= take
            excess -= take
            if batches[0].count <= 0:
                batches.popleft()
        self._outstanding = deficit
        returned = made - (deficit - last_deficit)
        blind = deficit < outstanding or unpinned > 0 or remaining == 0 or last_remaining == 0
        if limit != last_limit:  # a new limit moves remaining without a pull: start over
            self._steps.clear()
            self._first_at = now
        elif made or returned or blind:
            self._steps.append(_Step(last_at, now, made, returned, blind))
        while self._steps and self._steps[0].at <= now - max(self._long, window):
            self._steps.popleft()
        self._prev_at, self._last = last_at, (now, limit, remaining, window)

    def _pace(self) -> _Pace | int:
        """The pace the readings allow, or how many readings saw pulls when that is too few.

        The pace is measured within stretches of readings between blind ones (never across a
        blind stretch: what it held is unknown, and leaving it out would shift a bursty pace's
        phase); each stretch with three readings that saw pulls gives rates, and all count.
        """
        assert self._last is not None
        now = self._last[0]
        steps = [s for s in self._steps if s.at > now - self._long]
        runs: list[list[_Step]] = [[]]  # readings that saw pulls, stretch by stretch
        for s in steps:
            if s.blind:
                if runs[-1]:
                    runs.append([])
            elif s.made > 0:
                runs[-1].append(s)
        open_run = runs[-1] if not (steps and steps[-1].blind) else []
        full = [run for run in runs if len(run) >= MIN_DROPS]
        if not full:
            return max(len(run) for run in runs)
        # The pace seen: rates between two readings of a stretch, their pulls counted on the
        # left of the span or on the right (a burst then counts once either way), starting
        # at least the short basis back (or at the first reading since watching began or pulls
        # were last refused, while there is less), ending at one of the last few readings of
        # the stretch (the latest burst may be going on); and the pulls since a reading up to
        # now. Silence since the last pull, beyond the longest pause seen between readings
        # that saw pulls, counts as time without pulls: a steady consumer pauses no longer than
        # it does, one that stopped has. The fastest.
        fresh = min(run[0].before for run in full)
        if self._zero_at is not None:
            after = [run[0].before for run in full if run[0].before >= self._zero_at]
            fresh = max(fresh, min(after, default=fresh))
        shortest = min(self._short, now - fresh)
        silence = now - max(run[-1].at for run in runs if run)
        seen, chosen = 0.0, (full[-1], 0)
        for run in full:
            upto = _upto(run)
            n = len(run)
            pause = [0.0] * n  # pause[i]: the longest pause between readings from run[i] on
            for k in range(n - 2, -1, -1):
                pause[k] = max(pause[k + 1], run[k + 1].at - run[k].at)
            for j in range(max(n - ENDS, MIN_DROPS - 1), n):
                for i in range(j - MIN_DROPS + 2):
                    span = run[j].before - run[i].before + max(silence - pause[i], 0.0)
                    if span <= 0 or now - run[i].before < shortest:
                        continue
                    pulls = max(upto[j + 1] - upto[i + 1], upto[j] - upto[i])
                    if pulls / span > seen:
                        seen, chosen = pulls / span, (run, i)
        if open_run and len(open_run) >= MIN_DROPS:
            upto = _upto(open_run)
            for i in range(len(open_run) - MIN_DROPS + 1):
                span = now - open_run[i].at
                if span > 0 and now - open_run[i].before >= shortest:
                    rate = (upto[-1] - upto[i + 1]) / span
                    if rate > seen:
                        seen, chosen = rate, (open_run, i)
        if seen <= 0:
            return max(len(run) for run in runs)
        # The fastest pace the readings allow: a span can miss, at its edge, what one reading
        # takes (one pull of a steady pace, a whole burst of a bursty one), so k pulls seen
        # after a reading, pulls going on, allow k + the most one reading took. Only spans up to
        # now with nothing blind in them say so.
        fastest = seen
        if len(open_run) >= MIN_DROPS:
            upto = _upto(open_run)
            most = max(s.made for s in open_run)
            bound = min(
                (
                    (upto[-1] - upto[i + 1] + most) / (now - s.at)
                    for i, s in enumerate(open_run)
                    if now > s.at
                ),
                default=seen,
            )
            fastest = max(seen, bound)
        run, first = chosen[0], chosen[0][chosen[1]]
        return _Pace(
            seen=seen,
            fastest=fastest,
            due_seen=self._due(seen, full, open_run),
            due_fastest=self._due(fastest, full, open_run),
            basis_seconds=now - first.before,
            pulls=sum(s.made for s in run[chosen[1] :]),
            returned=sum(s.returned for s in steps if s.before >= first.before),
            drops=len(run) - chosen[1],
            last_drop_at=max(r[-1].at for r in runs if r),
        )

    def _due(self, rate: float, runs: list[list[_Step]], open_run: list[_Step]) -> float:
        """Pulls that may already be due now at `rate`: the burst the readings showed beyond
        the rate (the most pulls beyond it between two readings of a stretch), less what the
        readings since the last blind one used of it."""
        assert self._last is not None
        now = self._last[0]
        burst = 0.0
        for run in runs:
            upto = _upto(run)
            lowest = math.inf  # min over i <= j of upto[i] - rate * before_i
            for j, s in enumerate(run):
                lowest = min(lowest, upto[j] - rate * s.before)
                burst = max(burst, upto[j + 1] - rate * s.before - lowest)
        used = 0.0
        if open_run:
            upto = _upto(open_run)
            used = max(upto[-1] - upto[i] - rate * (now - s.before) for i, s in enumerate(open_run))
        return max(burst - max(used, 0.0), 0.0)

    def _pressed(self) -> tuple[float, bool] | None:
        """When "may run out (again) any moment" is the earliest plausible time: the reading
        that says so, and whether it was one at 0 (True) or one that proved hidden pulls.

        - Pulls were refused within the short basis, and too few readings since show the pace.
        - Pulls were refused within the last window, and most of what is outstanding was pulled
          at times no reading saw: the readings cannot tell how fast pulls are taken.
        - Pulls were refused (more was wanted than the window gives back) or hidden by returns
          (the readings undercount what is taken) within the last window, and no more are left
          than one reading has seen taken at once within it.
        """
        assert self._last is not None
        at, _, remaining, window = self._last
        zero, hidden = self._zero_at, self._hidden_at
        if remaining <= 0:
            return None
        if zero is not None and at - zero <= self._short:
            since = [s for s in self._steps if s.before >= zero and s.made > 0 and not s.blind]
            if len(since) < MIN_DROPS:
                return zero, True
        refused = zero is not None and at - zero <= window
        if refused and zero is not None and 2 * self._older() >= self._outstanding:
            return zero, True
        taken = max((s.made for s in self._steps if s.at > at - window), default=0)
        if remaining > taken:
            return None
        if refused and zero is not None:
            return zero, True
        if hidden is not None and at - hidden <= window:
            return hidden, False
        return None

    def _older(self) -> int:
        """Outstanding pulls of unknown age."""
        return sum(b.count for b in self._batches if b.start is None)

    def _project(self, rate: float, due: float) -> tuple[float | None, int]:
        """(when remaining reaches 0, or None; the lowest remaining before that) at this pace.

        Over the next window remaining is `remaining now + pulls back - pulls made`; watched
        pulls come back at their batches' latest times + w. Past one window it stays level.
        """
        assert self._last is not None
        now, _, remaining, window = self._last
        end = now + window
        back = 0
        lowest = math.inf
        start = now
        # Pulls of unknown age are left out: while they come back unseen, the pace is already
        # net of them; counting them back again would count them twice.
        events = [(b.bound + window, b.count) for b in self._batches if b.start is not None]
        events.append((end, 0))
        for at, count in events:
            stop = min(at, end)
            if stop >= start:
                need = remaining + back - due  # pulls still to make before 0
                if need <= 0:
                    return start, 0
                crossing = now + need / rate
                if crossing <= stop:
                    return max(crossing, start), 0
                lowest = min(lowest, need - rate * (stop - now))
                start = stop
            back += count
        return None, max(math.floor(lowest), 0)

    def forecast(self, now: float | None = None) -> Forecast:
        """The outlook as of the latest reading.

        `now`, when given, only decides staleness: with no reading within the long basis there
        is no recent pace ("not enough readings yet").
        """
        if self._last is None:
            return Forecast(ForecastStatus.NOT_ENOUGH, None, None)
        at, _, remaining, _ = self._last
        older = self._older()
        if now is not None and now - at > self._long:
            return Forecast(ForecastStatus.NOT_ENOUGH, at, remaining, older_pulls=older)
        pace = self._pace()
        pressed = self._pressed()
        base = Forecast(ForecastStatus.EXHAUSTED, at, remaining, older_pulls=older)
        if remaining <= 0:
            return base if isinstance(pace, int) else _with_pace(base, pace)
        if pressed is not None:
            since, refused = pressed
            again = replace(
                base,
                status=ForecastStatus.DRAINING,
                runs_out_at=at,
                expected_at=at,
                exhausted_at=since if refused else None,
                hidden_at=None if refused else since,
            )
            return again if isinstance(pace, int) else _with_pace(again, pace)
        if isinstance(pace, int):
            if not any(s.made > 0 and s.at > at - self._long for s in self._steps):
                assert self._first_at is not None
                watched = min(self._long, at - self._first_at)
                if watched <= 0:  # one reading: nothing watched yet, not "no pull in 0 s"
                    return replace(base, status=ForecastStatus.NOT_ENOUGH)
                return replace(base, status=ForecastStatus.NOT_DRAINING, basis_seconds=watched)
            return replace(base, status=ForecastStatus.NOT_ENOUGH, drops_seen=pace)
        fastest_at, lowest = self._project(pace.fastest, pace.due_fastest)
        expected_at, lowest_seen = self._project(pace.seen, pace.due_seen)
        if fastest_at is None and expected_at is None:
            lowest = min(lowest, lowest_seen)
            levels = replace(base, status=ForecastStatus.LEVELS_OFF, lowest_remaining=lowest)
            return _with_pace(levels, pace)
        runs_out_at = min(t for t in (fastest_at, expected_at) if t is not None)
        draining = replace(
            base,
            status=ForecastStatus.DRAINING,
            runs_out_at=runs_out_at,
            expected_at=expected_at,
        )
        return _with_pace(draining, pace)

    def to_state(self) -> dict[str, object]:
        """A JSON-able snapshot, so the history database can carry the forecast forward."""
        return {
            "version": STATE_VERSION,
            "bases": [self._short, self._long],
            "batches": [[b.start, b.bound, b.count] for b in self._batches],
            "steps": [[s.before, s.at, s.made, s.returned, s.blind] for s in self._steps],
            "last": None if self._last is None else list(self._last),
            "prev_at": self._prev_at,
            "first_at": self._first_at,
            "zero_at": self._zero_at,
            "hidden_at": self._hidden_at,
            "readings": self._readings,
        }

    @classmethod
    def from_state(cls, key: BucketKey, state: object) -> ForecastTracker:
        """The tracker `to_state()` described; a fresh one if the state is unreadable."""
        try:
            if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
                raise ValueError("not a forecast state")
            short, long = state["bases"]
            tracker = cls(key, float(short), float(long))
            for start, bound, count in state["batches"]:
                start = None if start is None else float(start)
                tracker._batches.append(_Batch(start, float(bound), int(count)))
            tracker._outstanding = sum(b.count for b in tracker._batches)
            for before, at, made, returned, blind in state["steps"]:
                step = _Step(float(before), float(at), int(made), int(returned), bool(blind))
                tracker._steps.append(step)
            last = state["last"]
            if last is not None:
                t, limit, remaining, window = last
                tracker._last = (float(t), int(limit), int(remaining), int(window))
            tracker._prev_at = _float_or_none(state["prev_at"])
            tracker._first_at = _float_or_none(state["first_at"])
            tracker._zero_at = _float_or_none(state["zero_at"])
            tracker._hidden_at = _float_or_none(state["hidden_at"])
            tracker._readings = int(state["readings"])
        except (KeyError, TypeError, ValueError):
            return cls(key)
        return tracker


def _float_or_none(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float | str):
        raise TypeError("not a number")
    return float(value)


def _add_batch(batches: deque[_Batch], batch: _Batch, window: int) -> None:
    """Append a batch; one within the same 1/MAX_BATCHES of a window merges into the last."""
    quantum = window / MAX_BATCHES
    if batches:
        last = batches[-1]
        same_kind = (last.start is None) == (batch.start is None)
        if same_kind and math.floor(last.bound / quantum) == math.floor(batch.bound / quantum):
            last.bound = batch.bound  # later: those pulls are assumed back later (early side)
            last.count += batch.count
            return
    batches.append(batch)


def _upto(run: list[_Step]) -> list[int]:
    """upto[k]: pulls seen at the readings before run[k] (upto[-1]: all of them)."""
    upto = [0]
    for s in run:
        upto.append(upto[-1] + s.made)
    return upto


def _with_pace(base: Forecast, pace: _Pace) -> Forecast:
    return replace(
        base,
        per_hour=pace.seen * 3600.0,
        fastest_per_hour=pace.fastest * 3600.0,
        net_per_hour=(pace.pulls - pace.returned) / pace.basis_seconds * 3600.0,
        basis_seconds=pace.basis_seconds,
        pulls_seen=pace.pulls,
        returned_seen=pace.returned,
        drops_seen=pace.drops,
        last_drop_at=pace.last_drop_at,
    )


def forecast_from(
    readings: Iterable[Reading],
    now: float | None = None,
    short_basis: float = SHORT_BASIS,
    long_basis: float = LONG_BASIS,
) -> Forecast | None:
    """The forecast of the bucket of the latest usable reading, from that bucket's readings.

    Readings of other buckets, failed and unmetered ones are ignored; None when there is
    nothing metered to go on. Only the recent past matters: two windows and the long basis
    back from the latest reading.
    """
    ordered = sorted((r for r in readings if usable(r)), key=lambda r: r.checked_at)
    if not ordered:
        return None
    latest = ordered[-1]
    assert latest.bucket_key is not None and latest.window_seconds is not None
    tracker = ForecastTracker(latest.bucket_key, short_basis, long_basis)
    horizon = latest.checked_at - 2 * latest.window_seconds - long_basis
    for reading in ordered:
        if reading.checked_at > horizon:
            tracker.observe(reading)
    return tracker.forecast(now)
