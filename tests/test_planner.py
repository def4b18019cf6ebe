"""The scan-budget planner against hand-worked cases (exact arithmetic)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from pullwatch.assess import assess
from pullwatch.durations import format_span
from pullwatch.planner import (
    PlanError,
    Quota,
    ScanPlan,
    describe,
    evaluate,
    parse_duration,
    quota_from_assessment,
    scans_per_window,
)
from pullwatch.reading import Reading, State

H = 3600
ANONYMOUS = Quota(100, 21600, "documented anonymous", anonymous=True)
PERSONAL = Quota(200, 21600, "documented Personal")


def test_the_seeds_default_scanner_against_the_anonymous_limit() -> None:
    # 40 repositories x Cap 5 x 1 arch = 200 pulls a scan; every 24 h -> 1 scan per 6 h window.
    result = evaluate(ScanPlan(repositories=40), ANONYMOUS)
    assert (result.pulls_per_scan, result.scans_per_window) == (200, 1)
    assert result.pulls_per_window == 200
    assert result.fits is False and result.headroom == -100
    assert result.largest_cap == 2  # 100 // (40 x 1 x 1 x 1) = 2 images per repository
    assert result.shortest_interval is None  # one scan alone (200) is over 100
    assert any("with a free Docker ID" in note and "would fit" in note for note in result.notes)


def test_multi_arch_every_4_hours_fits_exactly() -> None:
    # 10 x 5 x 2 = 100 per scan; 6 h / 4 h = 1.5 -> at most 2 scans in a window -> 200 of 200.
    plan = ScanPlan(repositories=10, architectures=2, interval=Fraction(4 * H))
    result = evaluate(plan, PERSONAL)
    assert (result.pulls_per_scan, result.scans_per_window, result.pulls_per_window) == (
        100,
        2,
        200,
    )
    assert result.fits and result.headroom == 0
    assert result.largest_cap == 5  # 200 // (10 x 2 x 2) = 5
    # 200 // 100 = 2 scans per window -> 21600 / 2 = 3 h.
    assert result.shortest_interval == Fraction(3 * H)
    assert result.shortest_interval_hours == 3
    assert result.most_scans_per_day == 8
    assert result.pulls_per_day == 600


def test_fractional_interval_is_exact() -> None:
    # 1.5 h = 5400 s: 21600 / 5400 = 4 scans exactly (no float rounding to 4.000001 -> 5).
    plan = ScanPlan(repositories=5, cap=1, interval=parse_duration("1.5"))
    result = evaluate(plan, ANONYMOUS)
    assert plan.interval == 5400
    assert (result.scans_per_window, result.pulls_per_window) == (4, 20)
    # 100 // 5 = 20 scans per window -> 21600 / 20 = 1080 s = 18 min.
    assert result.shortest_interval == 1080
    assert format_span(result.shortest_interval) == "18 min"
    assert result.shortest_interval_hours == 1


def test_seven_scans_a_day() -> None:
    # 86400 / 7 s apart: 21600 / (86400 / 7) = 1.75 -> 2 scans can fall into one window.
    plan = ScanPlan(repositories=10, cap=3, interval=Fraction(86400, 7))
    result = evaluate(plan, ANONYMOUS)
    assert result.scans_per_window == 2
    assert result.pulls_per_window == 60
    assert result.pulls_per_day == 210
    assert result.fits


def test_cap_zero_needs_tags_and_all_tags_can_fit() -> None:
    with pytest.raises(PlanError, match="--tags"):
        ScanPlan(repositories=3, cap=0)
    # 3 x 12 tags = 36 a scan; an hourly live window and daily scans -> 36 of 100.
    plan = ScanPlan(repositories=3, cap=0, tags=12)
    result = evaluate(plan, Quota(100, 3600, "live"))
    assert result.pulls_per_window == 36
    assert result.all_tags_fit and result.largest_cap == 0
    assert result.shortest_interval == 1800  # 100 // 36 = 2 scans -> 3600 / 2
    assert "Largest Cap at this interval: 0 (every tag fits)" in describe(result)


def test_cap_is_bounded_by_the_tags_there_are() -> None:
    plan = ScanPlan(repositories=4, cap=5, tags=2)
    assert plan.images_per_repository == 2
    assert evaluate(plan, ANONYMOUS).pulls_per_scan == 8


def test_hosts_and_reserve_share_the_bucket() -> None:
    # 3 hosts x 10 x 1 x 1 = 30 a scan; every 2 h -> 3 per window -> 90; limit 100 - 20 reserve.
    plan = ScanPlan(repositories=10, cap=1, interval=Fraction(2 * H), hosts=3, reserve=20)
    result = evaluate(plan, ANONYMOUS)
    assert result.pulls_per_window == 90
    assert not result.fits and result.headroom == -10
    assert result.largest_cap is None  # even Cap 1 is over at this interval
    assert result.shortest_interval == Fraction(21600, 2)  # 80 // 30 = 2 scans -> 3 h
    lines = describe(result)
    assert "Fits: NO, 10 pulls over per window." in lines
    assert any("even Cap 1 is over" in line for line in lines)


def test_remaining_now_is_noted() -> None:
    quota = Quota(200, 21600, "live", remaining=30)
    result = evaluate(ScanPlan(repositories=10), quota)
    assert any("only 30 pulls remain" in note for note in result.notes)


def test_unmetered_always_fits() -> None:
    result = evaluate(ScanPlan(repositories=500, cap=0, tags=50), Quota(None, 21600, "paid"))
    assert result.fits and result.headroom is None
    assert "Limit: none" in describe(result)[-2]


def test_scans_per_window_is_a_ceiling() -> None:
    assert scans_per_window(21600, Fraction(21600)) == 1
    assert scans_per_window(21600, Fraction(18000)) == 2  # 1.2 -> 2
    assert scans_per_window(21600, Fraction(86400)) == 1
    assert scans_per_window(3600, Fraction(1200)) == 3


@pytest.mark.parametrize(
    ("text", "unit", "seconds"),
    [("24", "h", 86400), ("1.5h", "h", 5400), ("90m", "h", 5400), ("3d", "h", 259200),
     ("21600", "s", 21600), ("6h", "s", 21600)],
)  # fmt: skip
def test_parse_duration(text: str, unit: str, seconds: int) -> None:
    assert parse_duration(text, unit) == seconds


@pytest.mark.parametrize("text", ["", "0", "-3", "soon", "1e3", "5 weeks"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(PlanError):
        parse_duration(text)


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(PlanError, match="architectures"):
        ScanPlan(repositories=1, architectures=0)
    with pytest.raises(PlanError, match="repositories"):
        ScanPlan(repositories=-1)


def quota_from_reading(reading: Reading) -> Quota | None:
    return quota_from_assessment(assess(reading))


def test_quota_from_assessments() -> None:
    live = Reading(
        "ci", "cibot", 0.0, State.OK, limit=200, remaining=12, window_seconds=21600,
        source="186e63fa-1b6a-4c51-9f12-61a26f0a9c01",
    )  # fmt: skip
    quota = quota_from_reading(live)
    assert quota is not None
    assert (quota.limit, quota.window, quota.remaining, quota.anonymous) == (200, 21600, 12, False)
    paid = quota_from_reading(Reading("rel", "r", 0.0, State.UNMETERED))
    assert paid is not None and paid.limit is None
    spent = quota_from_reading(Reading("anon", None, 0.0, State.EXHAUSTED, http_status=429))
    assert spent is not None and (spent.limit, spent.anonymous) == (100, True)
    assert quota_from_reading(Reading("x", None, 0.0, State.ERROR)) is None
