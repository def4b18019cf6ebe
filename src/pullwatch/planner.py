"""The scan-budget planner: will a registry scanner's schedule fit the pull limit?

The scanner of the article pullwatch started from (docs/protocol.md) pulls every image it
scans (pull, scan, remove), so one scan costs

    pulls per scan = repositories x images per repository x architectures x hosts

where images per repository is the scanner's Cap (0 = every tag) bounded by the tags there are,
and `hosts` is how many hosts run that scan through the same bucket (one account, or one
egress IP). Docker Hub's window is rolling: a pull counts against the limit for `w` seconds. If
scans start every `interval` seconds, any window of length `w` holds at most ceil(w / interval)
scan starts, so the worst case is

    pulls per window = pulls per scan x ceil(window / interval)

All arithmetic is exact (`fractions.Fraction`): an interval of 1.5 h is 5400 s, not a float.
The remedies are the article's, computed: the largest Cap that fits at this interval, and the
shortest interval that fits at this Cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from pullwatch import durations
from pullwatch.assess import Assessment
from pullwatch.durations import format_span
from pullwatch.insights import DOCUMENTED_ANONYMOUS, DOCUMENTED_PERSONAL
from pullwatch.reading import State

HOUR = 3600
DAY = 86400
DEFAULT_CAP = 5  # that scanner's default: the 5 newest images per repository
DEFAULT_INTERVAL_HOURS = 24  # that scanner's default: every 24 h


class PlanError(ValueError):
    """An input the planner cannot use: one line."""


def parse_duration(text: str, default_unit: str = "h") -> Fraction:
    """`24` (in `default_unit`), `1.5h`, `90m`, `3d`, `21600s` -> exact seconds (> 0)."""
    try:
        seconds = durations.parse_duration(text, default_unit)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    if seconds <= 0:
        raise PlanError(f"{text!r}: a duration must be more than 0")
    return seconds


@dataclass(frozen=True, slots=True)
class ScanPlan:
    """What the scanner does."""

    repositories: int
    cap: int = DEFAULT_CAP  # images per repository; 0 = every tag
    tags: int | None = None  # tags per repository (needed when cap is 0)
    architectures: int = 1  # a multi-arch pull counts once per architecture pulled
    interval: Fraction = Fraction(DEFAULT_INTERVAL_HOURS * HOUR)  # seconds between scan starts
    hosts: int = 1  # hosts running this scan through the same bucket
    reserve: int = 0  # pulls per window kept for everything else charged to the bucket

    def __post_init__(self) -> None:
        for name in ("repositories", "cap", "hosts", "reserve"):
            if getattr(self, name) < 0:
                raise PlanError(f"{name} must be 0 or more")
        if self.architectures < 1:
            raise PlanError("architectures must be 1 or more")
        if self.tags is not None and self.tags < 0:
            raise PlanError("tags must be 0 or more")
        if self.interval <= 0:
            raise PlanError("the interval must be more than 0")
        if self.cap == 0 and self.tags is None:
            raise PlanError("cap 0 scans every tag: give the tags per repository (--tags)")

    @property
    def images_per_repository(self) -> int:
        if self.cap == 0:
            assert self.tags is not None
            return self.tags
        return self.cap if self.tags is None else min(self.cap, self.tags)

    @property
    def pulls_per_scan(self) -> int:
        return self.repositories * self.images_per_repository * self.architectures * self.hosts


@dataclass(frozen=True, slots=True)
class Quota:
    """The bucket's limit: live from an identity, given by hand, or Docker's documented one."""

    limit: int | None  # None: not metered
    window: int  # seconds
    origin: str  # where the numbers come from, for the output
    remaining: int | None = None
    anonymous: bool = False

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise PlanError("the limit must be 0 or more")
        if self.window <= 0:
            raise PlanError("the window must be more than 0 seconds")


def quota_from_assessment(assessment: Assessment) -> Quota | None:
    """The planner's quota from an identity's assessment; None when nothing is known.

    A stale quota (the latest probe failed) is the last live limit, and says so.
    """
    reading = assessment.reading
    quota = assessment.quota
    source = quota.source if quota is not None else reading.source
    anonymous = reading.username is None or (source is not None and source.is_ip)
    if assessment.unmetered:
        return Quota(None, DOCUMENTED_PERSONAL[1], f"live: {reading.label} is not metered")
    if quota is not None and quota.window_seconds:
        origin = f"live: {reading.label}"
        if quota.stale:
            origin = f"{reading.label}'s last live reading (the latest probe failed)"
        return Quota(
            quota.limit,
            quota.window_seconds,
            origin,
            remaining=quota.remaining,
            anonymous=anonymous,
        )
    if assessment.state is State.EXHAUSTED:  # a HEAD 429 without headers: no numbers to read
        limit, window = DOCUMENTED_ANONYMOUS if anonymous else DOCUMENTED_PERSONAL
        return Quota(
            limit,
            window,
            f"{reading.label} is exhausted and sent no limit: Docker's documented one",
            remaining=0,
            anonymous=anonymous,
        )
    return None


def documented_quota(anonymous: bool = True) -> Quota:
    """Docker's documented limit, when no live one is at hand."""
    limit, window = DOCUMENTED_ANONYMOUS if anonymous else DOCUMENTED_PERSONAL
    kind = "anonymous" if anonymous else "Personal"
    return Quota(limit, window, f"Docker's documented {kind} limit", anonymous=anonymous)


def scans_per_window(window: int | Fraction, interval: Fraction) -> int:
    """Most scan starts any rolling window can hold: ceil(window / interval)."""
    return math.ceil(Fraction(window) / interval)


@dataclass(frozen=True, slots=True)
class PlanResult:
    plan: ScanPlan
    quota: Quota
    pulls_per_scan: int
    scans_per_window: int
    pulls_per_window: int
    pulls_per_day: Fraction
    fits: bool
    headroom: int | None  # limit - reserve - pulls per window (None: not metered)
    largest_cap: int | None  # largest Cap that fits at this interval; None: not even 1
    all_tags_fit: bool  # Cap 0 (every tag) fits at this interval (tags known)
    shortest_interval: Fraction | None  # seconds; None: one scan alone is over the limit
    notes: tuple[str, ...] = field(default=())

    @property
    def shortest_interval_hours(self) -> int | None:
        """The shortest whole number of hours that fits (scanners take hours)."""
        if self.shortest_interval is None:
            return None
        return max(math.ceil(self.shortest_interval / HOUR), 1)

    @property
    def most_scans_per_day(self) -> int | None:
        if self.shortest_interval is None:
            return None
        return math.floor(Fraction(DAY) / self.shortest_interval)

    def to_json(self) -> dict[str, Any]:
        plan, quota = self.plan, self.quota
        return {
            "inputs": {
                "repositories": plan.repositories,
                "cap": plan.cap,
                "tags": plan.tags,
                "architectures": plan.architectures,
                "interval_seconds": _number(plan.interval),
                "hosts": plan.hosts,
                "reserve": plan.reserve,
            },
            "quota": {
                "limit": quota.limit,
                "window_seconds": quota.window,
                "remaining": quota.remaining,
                "origin": quota.origin,
            },
            "images_per_repository": plan.images_per_repository,
            "pulls_per_scan": self.pulls_per_scan,
            "scans_per_window": self.scans_per_window,
            "pulls_per_window": self.pulls_per_window,
            "pulls_per_day": _number(self.pulls_per_day),
            "fits": self.fits,
            "headroom": self.headroom,
            "largest_cap": self.largest_cap,
            "all_tags_fit": self.all_tags_fit,
            "shortest_interval_seconds": None
            if self.shortest_interval is None
            else _number(self.shortest_interval),
            "shortest_interval_hours": self.shortest_interval_hours,
            "most_scans_per_day": self.most_scans_per_day,
            "notes": list(self.notes),
        }


def _number(value: Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)


def evaluate(plan: ScanPlan, quota: Quota) -> PlanResult:
    """Pulls per window against the limit, and the largest Cap / shortest interval that fit."""
    per_scan = plan.pulls_per_scan
    per_window_scans = scans_per_window(quota.window, plan.interval)
    per_window = per_scan * per_window_scans
    per_day = per_scan * Fraction(DAY) / plan.interval
    notes: list[str] = []
    if quota.limit is None:
        notes.append("not metered: no pull limit applies (a paid plan or an exempt image)")
        return PlanResult(
            plan, quota, per_scan, per_window_scans, per_window, per_day,
            fits=True, headroom=None, largest_cap=None, all_tags_fit=plan.tags is not None,
            shortest_interval=None, notes=tuple(notes),
        )  # fmt: skip
    budget = quota.limit - plan.reserve
    fits = per_window <= budget
    # The largest Cap: images per repository such that the window's pulls stay in budget.
    per_image = plan.repositories * plan.architectures * plan.hosts * per_window_scans
    if per_image == 0:
        most_images: int | None = None  # no repositories (or hosts): any Cap fits
    else:
        most_images = budget // per_image if budget >= 0 else 0
    all_tags_fit = plan.tags is not None and (most_images is None or most_images >= plan.tags)
    if most_images is None:
        largest_cap: int | None = 0
    elif all_tags_fit:
        largest_cap = 0
    elif most_images >= 1:
        largest_cap = most_images
    else:
        largest_cap = None
    # The shortest interval: at most `scans` starts per window, scans = budget // pulls per scan.
    if per_scan == 0:
        shortest: Fraction | None = Fraction(1)
        notes.append("the plan pulls nothing")
    else:
        scans = budget // per_scan if budget >= 0 else 0
        shortest = Fraction(quota.window, scans) if scans >= 1 else None
    if budget < 0:
        notes.append(f"the reserve ({plan.reserve}) is larger than the limit ({quota.limit})")
    if quota.remaining is not None and per_scan > quota.remaining:
        notes.append(
            f"right now only {quota.remaining} pulls remain: the next scan ({per_scan} pulls) "
            "would run out"
        )
    if quota.anonymous and not fits:
        limit, window = DOCUMENTED_PERSONAL
        with_login = evaluate(plan, Quota(limit, window, "documented Personal"))
        verdict = "would fit" if with_login.fits else "would not fit either"
        notes.append(
            f"with a free Docker ID (documented {limit} per {format_span(window)}) this plan "
            f"{verdict} ({with_login.pulls_per_window} pulls per window)"
        )
    return PlanResult(
        plan, quota, per_scan, per_window_scans, per_window, per_day,
        fits=fits, headroom=budget - per_window, largest_cap=largest_cap,
        all_tags_fit=all_tags_fit, shortest_interval=shortest, notes=tuple(notes),
    )  # fmt: skip


def _pulls(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):.1f}"


def describe(result: PlanResult) -> list[str]:
    """The plan's verdict as plain lines (CLI output and the TUI screen)."""
    plan, quota = result.plan, result.quota
    cap = "every tag" if plan.cap == 0 else f"Cap {plan.cap}"
    arches = f" x {plan.architectures} architectures" if plan.architectures > 1 else ""
    hosts = f" x {plan.hosts} hosts" if plan.hosts > 1 else ""
    lines = [
        f"Per scan: {plan.repositories} repositories x {plan.images_per_repository} images "
        f"({cap}){arches}{hosts} = {result.pulls_per_scan} pulls",
        f"Scans: every {format_span(plan.interval)}, so at most {result.scans_per_window} "
        f"in any {format_span(quota.window)} window ({_pulls(result.pulls_per_day)} pulls a day)",
    ]
    if quota.limit is None:
        lines.append(f"Limit: none ({quota.origin}): the plan fits.")
        lines += [f"Note: {note}" for note in result.notes]
        return lines
    reserve = f" - {plan.reserve} reserved" if plan.reserve else ""
    lines.append(
        f"Pulls per window: {result.pulls_per_window} of {quota.limit}{reserve} "
        f"per {format_span(quota.window)} ({quota.origin})"
    )
    if result.fits:
        lines.append(f"Fits: yes, {result.headroom} pulls to spare per window.")
    else:
        lines.append(f"Fits: NO, {-(result.headroom or 0)} pulls over per window.")
    if result.all_tags_fit:
        lines.append("Largest Cap at this interval: 0 (every tag fits)")
    elif result.largest_cap is not None:
        lines.append(f"Largest Cap at this interval: {result.largest_cap}")
    else:
        lines.append("Largest Cap at this interval: none (even Cap 1 is over: scan less often)")
    if result.shortest_interval is not None and result.pulls_per_scan:
        shortest = result.shortest_interval
        hours = (
            f"; in whole hours, every {result.shortest_interval_hours} h"
            if shortest > HOUR and shortest % HOUR
            else ""
        )
        lines.append(
            f"Shortest interval at this Cap: {format_span(shortest)} (or longer{hours}; at most "
            f"{result.most_scans_per_day} scans a day)"
        )
    elif result.pulls_per_scan:
        lines.append(
            "Shortest interval at this Cap: none (one scan alone is over the limit: lower the Cap)"
        )
    lines += [f"Note: {note}" for note in result.notes]
    return lines
