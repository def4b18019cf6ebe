"""Run-out forecasts: refusals and mechanics on synthetic readings, then against ground truth.

Ground truth comes from the simulated hub: consumers pull from a `HubModel` on a `ManualClock`
at known times, an observer reads `model.quota()` every refresh interval and feeds the tracker,
and each forecast is compared with the moment the simulator's bucket really empties.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pullwatch.clock import ManualClock
from pullwatch.forecast import (
    MAX_BATCHES,
    MAX_STEPS,
    Forecast,
    ForecastStatus,
    ForecastTracker,
    forecast_from,
    span_text,
)
from pullwatch.reading import Reading, State
from pullwatch.simhub.model import ANONYMOUS, HubModel

W = 21600
SOURCE = "203.0.113.7"
KEY = ("", "", SOURCE)  # (registry, repository, source): hand-made readings name neither
T0 = ManualClock.DEFAULT_START
STEP = 60  # the refresh interval
# Deterministic by default; FORECAST_EXAMPLES=2000 explores: that many fresh random examples.
EXAMPLES = int(os.environ.get("FORECAST_EXAMPLES", "60"))
EXPLORE = "FORECAST_EXAMPLES" in os.environ


def r(t: float, remaining: int, limit: int = 100, window: int = W, source: str = SOURCE,
      state: State | None = None, label: str = "anon") -> Reading:  # fmt: skip
    if state is None:
        state = State.EXHAUSTED if remaining == 0 else State.OK
    return Reading(label, None, T0 + t, state, limit, remaining, window, source)


def feed(remainings: Sequence[int], step: float = STEP, limit: int = 100,
         window: int = W, start: float = 0.0) -> ForecastTracker:  # fmt: skip
    """A tracker fed one reading per `step` seconds, from `start` on."""
    tracker = ForecastTracker(KEY)
    for k, remaining in enumerate(remainings):
        tracker.observe(r(start + k * step, remaining, limit, window))
    return tracker


# -- refusals ---------------------------------------------------------------------------------


def test_nothing_read_yet() -> None:
    forecast = ForecastTracker(KEY).forecast()
    assert forecast.status is ForecastStatus.NOT_ENOUGH
    assert forecast.as_of is None and forecast.runs_out_at is None
    assert forecast_from([]) is None


def test_two_readings_that_saw_pulls_are_not_a_pace() -> None:
    forecast = feed([100, 95, 95, 90]).forecast()
    assert forecast.status is ForecastStatus.NOT_ENOUGH
    assert forecast.drops_seen == 2 and forecast.runs_out_at is None
    assert (
        forecast.text(T0)
        == "not enough readings yet (pulls seen at 2 of the 3 readings a pace needs)"
    )


def test_the_third_reading_that_saw_pulls_gives_a_pace() -> None:
    forecast = feed([100, 95, 90, 85]).forecast()
    assert forecast.status is ForecastStatus.DRAINING
    assert (forecast.pulls_seen, forecast.drops_seen, forecast.basis_seconds) == (15, 3, 180)
    assert forecast.per_hour == pytest.approx(300)  # 5 a minute
    # 85 left at 5 a minute, the next 5 possibly due at once: 16 min after the last reading
    assert forecast.expected_at == pytest.approx(T0 + 180 + 16 * 60)
    # the 2 min after the first reading may have missed a reading's worth: 15 in 2 min
    assert forecast.fastest_per_hour == pytest.approx(450)
    assert forecast.runs_out_at == pytest.approx(T0 + 180 + 80 / 7.5 * 60)
    assert forecast.text(T0 + 180) == (
        "runs out in ~16 min, as early as ~11 min (15 pulls in the last 3 min; "
        "assumes the recent pace)"
    )


@pytest.mark.parametrize("gap", [1800, 3600, 7200, 86400])
def test_readings_far_apart_are_never_a_pace(gap: int) -> None:
    """Every reading sees pulls, but never three within the long basis: no pace, ever."""
    tracker = ForecastTracker(KEY)
    for k in range(12):
        tracker.observe(r(k * gap, 100 - 8 * k))
        forecast = tracker.forecast(T0 + k * gap)
        assert forecast.status in (ForecastStatus.NOT_ENOUGH, ForecastStatus.NOT_DRAINING)
        assert forecast.runs_out_at is None and forecast.per_hour is None


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    st.lists(st.floats(min_value=1801, max_value=10 * 86400), min_size=1, max_size=15),
    st.lists(st.integers(min_value=1, max_value=6), min_size=15, max_size=15),
)
def test_three_falls_far_apart_are_still_not_a_pace(gaps: list[float], falls: list[int]) -> None:
    t, remaining = 0.0, 100
    tracker = ForecastTracker(KEY)
    tracker.observe(r(t, remaining))
    for gap, fall in zip(gaps, falls, strict=False):
        t, remaining = t + gap, max(remaining - fall, 1)
        tracker.observe(r(t, remaining))
        assert tracker.forecast(T0 + t).status is ForecastStatus.NOT_ENOUGH


def test_no_fall_is_not_draining() -> None:
    forecast = feed([80] * 10).forecast()
    assert forecast.status is ForecastStatus.NOT_DRAINING
    assert forecast.basis_seconds == 9 * 60  # only what was watched
    assert forecast.text(T0) == "not draining (no pull seen in the last 9 min)"
    forecast = feed([80] * 200).forecast()
    assert forecast.basis_seconds == 3600


def test_pulls_older_than_the_long_basis_are_forgotten() -> None:
    tracker = feed([100, 90, 80, 70] + [70] * 61)
    assert tracker.forecast().status is ForecastStatus.NOT_DRAINING


def test_an_exhausted_bucket_says_so() -> None:
    forecast = feed([10, 6, 3, 0]).forecast()
    assert forecast.status is ForecastStatus.EXHAUSTED
    assert forecast.remaining == 0 and forecast.runs_out_at is None
    assert forecast.text(T0) == "exhausted now"


def test_right_after_pulls_were_refused_it_may_run_out_again_any_moment() -> None:
    """A 10-minute window: 110 pulls wanted in 4 minutes empty a 100-pull bucket; when they come
    back, pulls resume at 3 a minute."""
    pulls = [30.0] * 30 + [90.0] * 30 + [150.0] * 30 + [210.0] * 20 + evenly(20, 700, 2000)
    at = {round(s.t): s for s in simulate(pulls, limit=100, window=600, until=900)}
    # 10 left, and a reading saw 30 taken at once: the next burst may empty it
    assert at[180].forecast.runs_out_at == T0 + 180 and at[180].truth == 210
    assert all(at[t].forecast.status is ForecastStatus.EXHAUSTED for t in range(240, 601, 60))
    again = at[660].forecast  # 30 came back; 10 were refused: more was wanted than that
    assert again.status is ForecastStatus.DRAINING
    assert again.runs_out_at == again.expected_at == again.as_of == T0 + 660
    assert again.exhausted_at == T0 + 600
    assert again.text(T0 + 660) == (
        "may run out again any moment (exhausted 1 min ago: pulls were refused)"
    )
    later = at[840].forecast  # three readings have shown the pace since
    assert later.status is ForecastStatus.DRAINING and later.exhausted_at is None
    assert later.runs_out_at is not None and later.runs_out_at > T0 + 840


def test_stale_readings_are_no_pace() -> None:
    tracker = feed([100, 95, 90, 85])
    assert tracker.forecast(T0 + 200).status is ForecastStatus.DRAINING
    assert tracker.forecast(T0 + 180 + 3601).status is ForecastStatus.NOT_ENOUGH


# -- mechanics --------------------------------------------------------------------------------


def test_rises_are_pulls_coming_back_not_negative_pulls() -> None:
    """A 10-minute window, 3 pulls a minute for 20 minutes, then 1: the window gives the pulls
    back as it rolls. Remaining flattens while 3 a minute go on (the pace seen stays gross)."""
    seen = simulate(evenly(20, 0, 1200) + evenly(60, 1200, 7000), limit=100, window=600,
                    until=6000)  # fmt: skip
    at = {round(s.t): s for s in seen}
    flat = at[1140].forecast  # 30 pulled and 30 back in the last 10 min: remaining flat at 70
    assert at[1140].remaining == at[900].remaining == 70
    assert flat.status is ForecastStatus.LEVELS_OFF
    assert flat.per_hour == pytest.approx(180)  # gross: 3 a minute, though remaining is flat
    assert flat.net_per_hour is not None and flat.net_per_hour < flat.per_hour / 2
    assert flat.returned_seen > 0
    rising = at[1500].forecast  # 1 a minute now, 3 a minute coming back: remaining rises
    assert at[1500].remaining > at[1200].remaining
    assert rising.status is ForecastStatus.LEVELS_OFF
    assert rising.returned_seen > flat.returned_seen
    slower = at[3540].forecast  # the faster pace is within the long basis: it still counts
    assert slower.per_hour is not None and slower.per_hour > 60
    settled = at[5940].forecast  # an hour of 1 a minute: it settles around 90 left
    assert settled.status is ForecastStatus.LEVELS_OFF
    assert settled.per_hour == pytest.approx(60)
    assert settled.lowest_remaining is not None and 85 <= settled.lowest_remaining <= 90
    assert settled.text(T0 + 5940).startswith("does not run out at this pace")


def test_a_limit_change_restarts_the_pace() -> None:
    tracker = feed([100, 95, 90, 85])
    tracker.observe(r(4 * STEP, 185, limit=200))
    # one reading of the new limit: nothing watched yet, so no claim either way
    assert tracker.forecast().status is ForecastStatus.NOT_ENOUGH
    for k, remaining in enumerate([180, 175, 170], start=5):
        tracker.observe(r(k * STEP, remaining, limit=200))
    assert tracker.forecast().status is ForecastStatus.DRAINING


def test_a_single_reading_is_not_enough_not_not_draining() -> None:
    tracker = feed([100])
    forecast = tracker.forecast()
    assert forecast.status is ForecastStatus.NOT_ENOUGH
    assert "0 s" not in forecast.text(T0)


def test_only_this_buckets_usable_readings_in_order_count() -> None:
    tracker = ForecastTracker(KEY)
    for k, remaining in enumerate([100, 95, 90]):
        tracker.observe(r(k * STEP, remaining))
    tracker.observe(r(150, 0, source="198.51.100.9"))  # another bucket
    tracker.observe(Reading("anon", None, T0 + 160, State.ERROR, detail="HEAD answered 503"))
    tracker.observe(r(60, 10))  # older than the last reading
    assert tracker.readings == 3 and tracker.forecast().status is ForecastStatus.NOT_ENOUGH
    tracker.observe(r(180, 85))
    assert tracker.forecast().status is ForecastStatus.DRAINING


def test_forecast_from_takes_the_latest_bucket_and_matches_the_tracker() -> None:
    readings = [r(k * STEP, 100 - 4 * k) for k in range(8)]
    readings += [r(30, 50, source="198.51.100.9"), r(500, 77, source="198.51.100.9")]
    assert forecast_from(readings) == forecast_from(readings[::-1]) is not None
    other = forecast_from(readings)
    assert other is not None and other.remaining == 77  # the latest reading's bucket
    mine = forecast_from(readings[:8])
    assert mine == feed([100 - 4 * k for k in range(8)]).forecast()
    assert forecast_from([Reading("anon", None, T0, State.ERROR)]) is None


def test_pulls_of_unknown_age_are_not_counted_back() -> None:
    """60 pulls were made before watching began: they come back within the window, but when
    is unknown - while they do, unseen, the pace seen is already net of them."""
    forecast = feed([40, 38, 36, 34, 32]).forecast()
    assert forecast.older_pulls == 60
    assert forecast.status is ForecastStatus.DRAINING
    assert forecast.expected_at == pytest.approx(T0 + 4 * STEP + 15 * STEP)


def test_state_round_trips_through_json_and_carries_on() -> None:
    seen = simulate(bursts(6, 4, 0, 7200, seed=3), limit=60, window=1800, until=7200)
    readings = [r(s.t, s.remaining, limit=60, window=1800) for s in seen]
    whole = ForecastTracker(KEY)
    half = ForecastTracker(KEY)
    for reading in readings[:60]:
        whole.observe(reading)
        half.observe(reading)
    restored = ForecastTracker.from_state(KEY, json.loads(json.dumps(half.to_state())))
    assert restored.to_state() == half.to_state()
    for reading in readings[60:]:
        whole.observe(reading)
        restored.observe(reading)
        assert restored.forecast() == whole.forecast()


@pytest.mark.parametrize(
    "state",
    [None, 7, "x", {}, {"version": 99}, {"version": 1, "bases": [900, 3600]},
     {"version": 1, "bases": [900, 3600], "batches": [[None, "x", 1]], "steps": [], "last": None,
      "prev_at": None, "first_at": None, "zero_at": None, "hidden_at": None, "readings": 0}],
)  # fmt: skip
def test_an_unreadable_state_gives_a_fresh_tracker(state: object) -> None:
    tracker = ForecastTracker.from_state(KEY, state)
    assert tracker.readings == 0 and tracker.state_size() == 0
    assert tracker.forecast().status is ForecastStatus.NOT_ENOUGH


@pytest.mark.parametrize("window", [21600, 600])
def test_state_stays_bounded_over_100k_readings(window: int) -> None:
    """Readings every 0.5 s to 2 min, pulls at most of them, pulls rolling back: whatever the
    uptime, the tracker holds a bounded number of entries and a bounded JSON state."""
    rng = random.Random(window)
    tracker = ForecastTracker(KEY)
    limit, t = 10_000, 0.0
    pulls: list[float] = []
    first = 0  # pulls[first:] are in the window
    largest = 0
    for k in range(100_000):
        t += rng.choice((0.5, 1.0, 5.0, 60.0, 120.0))
        while first < len(pulls) and pulls[first] + window <= t:
            first += 1
        made = min(rng.choice((0, 1, 1, 3, 20)), limit - (len(pulls) - first))
        pulls.extend([t] * made)
        tracker.record(T0 + t, limit, limit - (len(pulls) - first), window)
        if k % 1000 == 0:
            largest = max(largest, tracker.state_size())
    largest = max(largest, tracker.state_size())
    assert largest <= 2 * MAX_BATCHES + MAX_STEPS + 2
    assert len(json.dumps(tracker.to_state())) < 250_000
    assert tracker.forecast().status in (ForecastStatus.DRAINING, ForecastStatus.LEVELS_OFF)


def test_span_text_rounds_for_people() -> None:
    assert [span_text(s) for s in (0, 44.6, 89, 1500, 3600, 7800, 200_000, 172_800)] == [
        "0 s", "45 s", "1 min", "25 min", "1 h", "2 h 10 min", "2 d 8 h", "2 d",
    ]  # fmt: skip


def test_text_for_each_status() -> None:
    steady = Forecast(
        ForecastStatus.DRAINING, T0, 40, per_hour=48.0, runs_out_at=T0 + 1500,
        expected_at=T0 + 1520, basis_seconds=900, pulls_seen=12, drops_seen=12,
    )  # fmt: skip
    assert (
        steady.text(T0)
        == "runs out in ~25 min (12 pulls in the last 15 min; assumes the recent pace)"
    )
    assert steady.assumes_recent_pace and steady.runs_out_in(T0 + 2000) == 0.0
    assert steady.text(T0 + 1470) == (
        "may run out any moment (12 pulls in the last 15 min; assumes the recent pace)"
    )
    one = Forecast(ForecastStatus.DRAINING, T0, 1, runs_out_at=T0 + 600, basis_seconds=60,
                   pulls_seen=1)  # fmt: skip
    assert (
        one.text(T0) == "may run out in ~10 min (1 pull in the last 1 min; assumes the recent pace)"
    )
    assert not Forecast(ForecastStatus.NOT_DRAINING, T0, 5).assumes_recent_pace
    hidden = Forecast(ForecastStatus.DRAINING, T0, 3, runs_out_at=T0, hidden_at=T0 - 600)
    assert hidden.text(T0) == (
        "may run out any moment (pulls are taken as they come back: "
        "the readings cannot see how fast)"
    )
    levels = Forecast(
        ForecastStatus.LEVELS_OFF, T0, 60, lowest_remaining=27, basis_seconds=3600, pulls_seen=12,
    )  # fmt: skip
    assert levels.text(T0) == (
        "does not run out at this pace: pulls come back as fast (lowest ~27 left; "
        "12 pulls in the last 1 h; assumes the recent pace)"
    )


# -- ground truth -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    t: float  # seconds since watching began
    remaining: int
    forecast: Forecast
    truth: float  # when the bucket next empties (seconds since watching began), or inf


def simulate(pulls: Sequence[float], limit: int, window: int, until: float,
             step: float = STEP) -> list[Seen]:  # fmt: skip
    """A consumer pulls at `pulls` (seconds; before 0 is before watching began) from a simulated
    hub; an observer reads the quota every `step` from 0 to `until` and feeds a tracker. A pull
    and a reading at the same moment: the pull first. The truth of each forecast is the next
    moment a pull empties the bucket (inf: not while the consumer goes on)."""
    clock = ManualClock(T0 + min([0.0, *pulls]) - 1)
    model = HubModel(clock, anonymous_limit=limit, anonymous_window=window)
    tracker = ForecastTracker(("", "", model.egress_source))
    readings = [k * step for k in range(int(until // step) + 1)]
    events = sorted([(p, 0) for p in pulls] + [(t, 1) for t in readings])
    empties: list[float] = []
    seen: list[tuple[float, int, Forecast]] = []
    for t, kind in events:
        clock.set(T0 + t)
        if kind == 0:
            if model.consume(ANONYMOUS) and model.remaining(ANONYMOUS) == 0:
                empties.append(t)
        else:
            quota = model.quota(ANONYMOUS)
            assert quota.limit is not None and quota.remaining is not None
            tracker.record(T0 + t, quota.limit, quota.remaining, quota.window)
            seen.append((t, quota.remaining, tracker.forecast(T0 + t)))
    out = []
    for t, remaining, forecast in seen:
        truth = next((e for e in empties if e > t), math.inf)
        out.append(Seen(t, remaining, forecast, truth))
    return out


def evenly(period: float, start: float, end: float) -> list[float]:
    """A steady consumer: one pull every `period` seconds in [start, end)."""
    count = max(math.ceil((end - start) / period), 0)
    return [start + k * period for k in range(count)]


def per_interval(
    counts: Callable[[int], int], end: float, seed: int, start: int = 0
) -> list[float]:
    """`counts(k)` pulls in the k-th refresh interval (from interval `start`, which may be
    before watching began), at random moments within it."""
    rng = random.Random(seed)
    out: list[float] = []
    for k in range(start, int(end // STEP)):
        out += [k * STEP + rng.uniform(0.5, STEP - 0.5) for _ in range(counts(k))]
    return sorted(out)


def bursts(size: int, every: int, start: int, end: float, seed: int) -> list[float]:
    """`size` pulls every `every` refresh intervals, each burst within one interval."""
    return per_interval(lambda k: size if k >= start and (k - start) % every == 0 else 0,
                        end, seed)  # fmt: skip


def draining(seen: list[Seen]) -> list[Seen]:
    return [s for s in seen if s.forecast.status is ForecastStatus.DRAINING and s.truth < math.inf]


STEADY = [pytest.param(60 / c, id=f"{c}-per-interval") for c in (1, 2, 3, 5)] + [
    pytest.param(60.0 * k, id=f"one-every-{k}-intervals") for k in (2, 3, 5)
]


@pytest.mark.parametrize("period", STEADY)
@pytest.mark.parametrize("phase", [0.5, 29.0, 59.5])
@pytest.mark.parametrize("limit", [40, 70])
def test_a_steady_pace_runs_out_within_one_refresh_interval_of_the_truth(
    period: float, phase: float, limit: int
) -> None:
    """A steady consumer in whole pulls per refresh interval (or one every few): from the first
    forecast on, `expected_at` is within one refresh interval before the bucket really empties.
    `runs_out_at` (the earliest plausible) is never later, and early by at most one interval
    plus the time left over the readings that saw pulls: it draws in as they accumulate."""
    start = 300 + phase
    until = start + period * (limit + 5)
    seen = simulate(evenly(period, start, until + 3600), limit, W, until=until)
    forecasts = draining(seen)
    assert len(forecasts) >= 3
    fell = [b for a, b in itertools.pairwise(seen) if b.remaining < a.remaining]
    assert forecasts[0].t == fell[2].t  # the third reading that saw pulls
    for s in forecasts:
        f = s.forecast
        assert f.expected_at is not None and f.runs_out_at is not None
        assert 0 <= (T0 + s.truth) - f.expected_at <= STEP
        assert f.runs_out_at <= f.expected_at
        # the pace is known to one pull over the span watched: no earlier than that allows
        assert (T0 + s.truth) - f.runs_out_at <= STEP + (s.truth - s.t) / (f.drops_seen - 1)
    assert (T0 + forecasts[-1].truth) - (forecasts[-1].forecast.runs_out_at or 0) <= STEP


def test_a_steady_pace_below_the_limit_per_window_levels_off() -> None:
    """One pull every 5 min is 72 per 6 h window: a 100-pull bucket never empties, it settles at
    28 left. Once an hour of readings shows the pace, the forecast levels off too; its lowest
    allows for the pull an hour the readings cannot rule out (6 over the window), never more
    than the truth."""
    seen = simulate(evenly(300, 30, 40000), 100, W, until=30000)
    assert all(s.truth == math.inf for s in seen)
    late = [s.forecast for s in seen if s.t >= 4000]
    assert all(f.status is ForecastStatus.LEVELS_OFF for f in late)
    assert all(f.lowest_remaining is not None and 20 <= f.lowest_remaining <= 28 for f in late)


# -- never later than the truth, while the pace holds or slows -------------------------------


@dataclass(frozen=True)
class Pattern:
    kind: str
    pulls: list[float]
    limit: int
    window: int
    until: float


@st.composite
def patterns(draw: st.DrawFn) -> Pattern:
    """A consumer whose pace holds or slows, and never bursts bigger than it has: steady at any
    period, whole pulls per interval at random moments, one every few intervals, bursts at a
    fixed period within one interval, and slowing versions of each. It goes on two windows past
    the last reading, so the truth is known. The steady ones may have started up to a window
    before watching began; a bursty one that was already emptying the bucket then hides its
    pulls behind its own returns, which no reading can see (the module's stated limit), so the
    bursty ones start with watching."""
    window = draw(st.sampled_from([900, 1800, 3600, W]))
    limit = draw(st.sampled_from([20, 50, 100]))
    until = float(draw(st.sampled_from([3600, 7200, 10800])))
    end = until + 2 * window
    seed = draw(st.integers(0, 2**16))
    rng = random.Random(seed)
    kinds = ["steady", "per-interval", "every-k", "slowing", "slowing-steps"]
    kind = draw(st.sampled_from([*kinds, "bursts", "slowing-bursts"]))
    earliest = -window // STEP if kind in kinds else 0
    first = draw(st.integers(earliest, 20))  # the interval the consumer starts in
    if kind == "steady":
        period = draw(st.floats(15, 600))
        pulls = evenly(period, first * STEP + rng.uniform(0, period), end)
    elif kind == "per-interval":
        count = draw(st.integers(1, 4))
        pulls = per_interval(lambda k: count, end, seed, first)
    elif kind == "every-k":
        every = draw(st.integers(2, 6))
        pulls = per_interval(lambda k: int((k - first) % every == 0), end, seed, first)
    elif kind == "bursts":
        size, every = draw(st.integers(2, 12)), draw(st.integers(2, 8))
        pulls = per_interval(lambda k: size * ((k - first) % every == 0), end, seed, first)
    elif kind == "slowing":  # evenly spaced, each gap a little longer than the last
        gap, factor = draw(st.floats(10, 120)), draw(st.floats(1.0, 1.1))
        t, pulls = first * STEP + rng.uniform(0, gap), []
        while t < end:
            pulls.append(t)
            t, gap = t + gap, gap * factor
    elif kind == "slowing-steps":  # whole pulls per interval, fewer from segment to segment
        counts = sorted(draw(st.lists(st.integers(0, 5), min_size=1, max_size=5)), reverse=True)
        length = draw(st.integers(5, 60))
        pulls = per_interval(lambda k: counts[min((k - first) // length, len(counts) - 1)],
                             end, seed, first)  # fmt: skip
    else:  # bursts no bigger, no closer together, than the ones before
        sizes = sorted(draw(st.lists(st.integers(1, 12), min_size=1, max_size=8)), reverse=True)
        gaps = sorted(draw(st.lists(st.integers(1, 10), min_size=1, max_size=8)))
        at, burst_at = first, {}
        for k in range(10_000):
            burst_at[at] = sizes[min(k, len(sizes) - 1)]
            at += gaps[min(k, len(gaps) - 1)]
            if at * STEP >= end:
                break
        pulls = per_interval(lambda k: burst_at.get(k, 0), end, seed, first)
    return Pattern(kind, pulls, limit, window, until)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not EXPLORE)
@given(patterns())
def test_never_later_than_the_truth_while_the_pace_holds_or_slows(pattern: Pattern) -> None:
    """Whenever the forecast says the bucket runs out, it does not run out earlier; whenever it
    says it levels off, it does not run out at all - while pulls roll back through the window,
    after pulls were refused, and with pulls from before watching began."""
    seen = simulate(pattern.pulls, pattern.limit, pattern.window, until=pattern.until)
    for s in seen:
        f = s.forecast
        if f.status is ForecastStatus.DRAINING:
            assert f.runs_out_at is not None
            assert f.expected_at is None or f.runs_out_at <= f.expected_at
            assert f.runs_out_at <= T0 + s.truth + 1e-6, (pattern.kind, s)
        elif f.status is ForecastStatus.LEVELS_OFF:
            assert s.truth == math.inf, (pattern.kind, s)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not EXPLORE)
@given(
    size=st.integers(2, 12),
    every=st.integers(2, 8),
    spread=st.floats(1, STEP),
    limit=st.sampled_from([20, 50, 100]),
    window=st.sampled_from([900, 1800, 3600, W]),
    seed=st.integers(0, 2**16),
)
def test_a_burst_split_across_readings_is_at_most_one_interval_late(
    size: int, every: int, spread: float, limit: int, window: int, seed: int
) -> None:
    """Bursts spread over up to a refresh interval straddle readings (6 seen, then 2): the next
    one may come within one reading, so the forecast may be late: by at most one interval (and
    the seconds the burst itself is spread over)."""
    rng = random.Random(seed)
    end = 7200 + 2 * window
    pulls = sorted(
        start + rng.uniform(0, spread)
        for start in evenly(every * STEP, rng.uniform(0, STEP), end)
        for _ in range(size)
    )
    for s in simulate(pulls, limit, window, until=7200):
        f = s.forecast
        if f.status is ForecastStatus.DRAINING:
            assert f.runs_out_at is not None and f.runs_out_at <= T0 + s.truth + STEP + spread
        elif f.status is ForecastStatus.LEVELS_OFF:
            assert s.truth == math.inf


def test_bursts_with_pulls_rolling_back_before_the_bucket_empties() -> None:
    """9 pulls every 4 minutes against 50 per 20-minute window: 45 pulls in any 20 minutes, 54 in
    some 21. The window gives the first bursts back while new ones come; the bucket empties
    when a window holds a sixth burst. Every forecast before that is no later."""
    seen = simulate(bursts(9, 4, 0, 14400, seed=7), limit=50, window=1200, until=3600)
    first_empty = min(s.truth for s in seen)
    assert first_empty > 1200  # pulls came back before it emptied
    returned = [s for s in seen if s.t < first_empty and s.forecast.returned_seen > 0]
    assert returned  # and the forecast saw them come back
    forecasts = [s for s in seen if s.t < first_empty and s.forecast.runs_out_at is not None]
    assert forecasts
    for s in forecasts:
        assert s.forecast.runs_out_at is not None
        assert s.forecast.runs_out_at <= T0 + s.truth


def test_a_consumer_that_speeds_up_is_the_one_case_not_promised() -> None:
    """One pull a minute, then four: forecasts made before the change are later than the truth.
    They never claimed more: each says it assumes the recent pace."""
    pulls = evenly(60, 30, 1800) + evenly(15, 1800, 6000)
    seen = simulate(pulls, limit=100, window=W, until=1800)
    before = draining(seen)
    assert before and all(s.truth < 1800 + 60 * 25 for s in before)
    late = [s for s in before if (s.forecast.runs_out_at or 0) > T0 + s.truth]
    assert late  # the pace picked up: the forecast could not know
    for s in before:
        assert s.forecast.assumes_recent_pace
        assert "assumes the recent pace" in s.forecast.text(T0 + s.t)


def test_periodic_jobs_relax_in_the_silence_between_them_and_are_never_late() -> None:
    """A CI job pulls 30 images over 10 minutes every hour; 100 pulls per 6 h; rounds every 60 s
    plus a probe's few seconds. Between jobs the forecast relaxes as the silence grows (the
    job's pace is not the pace now); the fourth job empties the bucket, and no forecast said
    later."""
    rng = random.Random(4)
    pulls = sorted(h * 3600 + 120 + rng.uniform(0, 600) for h in range(6) for _ in range(30))
    reads, t = [], 0.0
    while t < 4 * 3600:
        reads.append(t)
        t += STEP + rng.uniform(0.1, 2.5)
    clock = ManualClock(T0)
    model = HubModel(clock, anonymous_limit=100, anonymous_window=W)
    tracker = ForecastTracker(("", "", model.egress_source))
    empties: list[float] = []
    seen: list[tuple[float, Forecast]] = []
    for t, kind in sorted([(p, 0) for p in pulls] + [(x, 1) for x in reads]):
        clock.set(T0 + t)
        if kind == 0:
            if model.consume(ANONYMOUS) and model.remaining(ANONYMOUS) == 0:
                empties.append(t)
        else:
            quota = model.quota(ANONYMOUS)
            assert quota.limit is not None and quota.remaining is not None
            tracker.record(T0 + t, quota.limit, quota.remaining, quota.window)
            seen.append((t, tracker.forecast(T0 + t)))
    assert 3 * 3600 < empties[0] < 3 * 3600 + 720  # during the fourth job
    for t, f in seen:
        if f.runs_out_at is not None:
            assert f.runs_out_at <= T0 + min(e for e in empties if e > t)
    after_job = min(seen, key=lambda s: abs(s[0] - 15 * 60))  # 3 min after the first job
    before_next = min(seen, key=lambda s: abs(s[0] - 58 * 60))  # 45 min of silence later
    soon = after_job[1].runs_out_in(T0 + after_job[0])
    later = before_next[1].runs_out_in(T0 + before_next[0])
    assert soon is not None and later is not None and later > 2 * soon
