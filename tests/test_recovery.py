"""Recovery estimates from synthetic histories with known answers, and against ground truth."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pullwatch.reading import Reading, State
from pullwatch.recovery import RecoveryTracker, estimate

W = 21600
SOURCE = "203.0.113.7"
KEY = ("", "", SOURCE)  # (registry, repository, source): hand-made readings name neither


def r(t: float, remaining: int, limit: int = 100, window: int = W, source: str = SOURCE,
      state: State | None = None, label: str = "anon") -> Reading:  # fmt: skip
    if state is None:
        state = State.EXHAUSTED if remaining == 0 else State.OK
    return Reading(label, None, t, state, limit, remaining, window, source)


def test_single_reading_says_at_most_one_window() -> None:
    rec = estimate([r(1000, 76)])
    assert rec is not None
    assert (rec.deficit, rec.next_at, rec.full_at) == (24, 1000 + W, 1000 + W)
    assert rec.readings_used == 1


def test_full_quota_has_nothing_to_recover() -> None:
    rec = estimate([r(0, 100), r(60, 100)])
    assert rec is not None and not rec.recovering
    assert rec.next_at is None and rec.full_at is None


def test_each_drop_returns_by_its_reading_plus_window() -> None:
    rec = estimate([r(0, 100), r(60, 90), r(120, 85)])
    assert rec is not None
    assert (rec.deficit, rec.next_at, rec.full_at) == (15, 60 + W, 120 + W)


def test_returns_remove_the_oldest_first() -> None:
    readings = [r(0, 100), r(60, 90), r(120, 85), r(60 + W + 30, 95)]
    rec = estimate(readings)
    assert rec is not None
    assert (rec.deficit, rec.next_at, rec.full_at) == (5, 120 + W, 120 + W)


def test_early_return_tightens_the_initial_deficit() -> None:
    # 20 were pulled before the first reading; 10 come back before their bound
    rec = estimate([r(0, 80), r(600, 90)])
    assert rec is not None
    assert (rec.deficit, rec.next_at, rec.full_at) == (10, W, W)


def test_hidden_pulls_after_a_bound_passes() -> None:
    # the first batch must be back by W, yet remaining did not rise: new pulls replaced it
    rec = estimate([r(0, 90), r(W + 60, 90)])
    assert rec is not None
    assert (rec.deficit, rec.next_at, rec.full_at) == (10, 2 * W + 60, 2 * W + 60)


def test_window_change_uses_the_window_in_force() -> None:
    readings = [r(0, 100, window=21600), r(60, 90, window=21600), r(120, 80, window=3600)]
    rec = estimate(readings)
    assert rec is not None
    assert rec.window == 3600
    assert (rec.next_at, rec.full_at) == (60 + 3600, 120 + 3600)


def test_limit_change_keeps_the_deficit() -> None:
    readings = [r(0, 76, limit=100), r(60, 176, limit=200)]
    rec = estimate(readings)
    assert rec is not None
    assert (rec.deficit, rec.next_at) == (24, W)  # the same 24 pulls, still due by 0 + W


def test_limit_cut_adds_a_deficit() -> None:
    rec = estimate([r(0, 100, limit=100), r(60, 40, limit=50)])
    assert rec is not None
    assert rec.deficit == 10 and rec.full_at == 60 + W


def test_source_change_starts_a_new_bucket() -> None:
    readings = [r(0, 50, source="203.0.113.7"), r(60, 95, source="198.51.100.9")]
    rec = estimate(readings)
    assert rec is not None
    assert (rec.deficit, rec.next_at, rec.readings_used) == (5, 60 + W, 1)


def test_failures_and_unmetered_readings_are_ignored() -> None:
    failed = Reading("anon", None, 30, State.ERROR, detail="HEAD answered 503")
    unmetered = Reading("paid", "bob", 40, State.UNMETERED, source="uuid")
    rec = estimate([r(0, 90), failed, unmetered, r(60, 90)])
    assert rec is not None and rec.readings_used == 2
    assert estimate([failed, unmetered]) is None


def test_readings_of_several_identities_in_one_bucket_combine() -> None:
    readings = [r(0, 200, limit=200, label="ci"), r(30, 190, limit=200, label="mirror")]
    rec = estimate(readings)
    assert rec is not None and (rec.deficit, rec.full_at) == (10, 30 + W)


def test_tracker_ignores_out_of_order_and_other_sources() -> None:
    tracker = RecoveryTracker(KEY)
    tracker.observe(r(100, 90))
    tracker.observe(r(50, 10))  # older than what was seen: ignored
    tracker.observe(r(120, 10, source="198.51.100.9"))
    rec = tracker.recovery()
    assert rec is not None and rec.deficit == 10 and rec.readings_used == 1


def test_readings_of_another_registry_or_repository_never_mix() -> None:
    mine = replace(r(0, 90), registry="https://registry-1.docker.io", repository="a/b:latest")
    other_registry = replace(mine, checked_at=30, remaining=10, registry="http://127.0.0.1:5000")
    other_repository = replace(mine, checked_at=40, remaining=20, repository="c/d:latest")
    assert estimate([mine, other_registry, other_repository]) == estimate([other_repository])
    tracker = RecoveryTracker(mine.bucket_key or KEY)
    for reading in (mine, other_registry, other_repository):
        tracker.observe(reading)
    rec = tracker.recovery()
    assert rec is not None and rec.deficit == 10 and rec.readings_used == 1


INTERVAL = 60
WINDOW = 3600
LIMIT = 50


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=3 * WINDOW), min_size=1, max_size=40))
def test_never_beaten_by_ground_truth_and_tight_when_every_drop_is_seen(pulls: list[int]) -> None:
    """A bucket with a rolling window, read every minute from a full quota.

    Whenever no pull and no return fall in the same interval (every drop is observed), the
    estimate is an upper bound of the truth and within one interval of it.
    """
    pulls = sorted(pulls)
    returns = [p + WINDOW for p in pulls]

    def outstanding(t: float) -> list[int]:
        return [p for p in pulls if t - WINDOW < p <= t]

    assume(all(len(outstanding(t)) <= LIMIT for t in range(0, 4 * WINDOW, INTERVAL)))
    for k in range(1, 4 * WINDOW // INTERVAL):
        lo, hi = (k - 1) * INTERVAL, k * INTERVAL
        pulled = any(lo < p <= hi for p in pulls)
        returned = any(lo < x <= hi for x in returns)
        assume(not (pulled and returned))
    tracker = RecoveryTracker(KEY)
    for t in range(0, 4 * WINDOW, INTERVAL):
        tracker.observe(r(t, LIMIT - len(outstanding(t)), limit=LIMIT, window=WINDOW))
        rec = tracker.recovery()
        assert rec is not None
        live = outstanding(t)
        assert rec.deficit == len(live)
        if not live:
            assert rec.next_at is None
            continue
        true_next, true_full = min(live) + WINDOW, max(live) + WINDOW
        assert rec.next_at is not None and rec.full_at is not None
        assert true_next <= rec.next_at <= true_next + INTERVAL
        assert true_full <= rec.full_at <= true_full + INTERVAL
