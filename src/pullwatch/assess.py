"""One step from readings to meaning: every front end renders an `Assessment`, nothing else.

A `Reading` says what the registry answered; an `Assessment` says what that means for the user,
given the identity's recent history and the user's thresholds:

- the **state** shown: `low` when a valid quota is at or under the warning threshold (the
  identity's `warn_below`, else the config's or `--warn`, else 20% of the limit); a HEAD 429
  without rate-limit headers read as the abuse limit (`throttled`) for an identity known to be
  unmetered, since it cannot be the pull quota;
- the **quota** shown, which is a promise: the reading's own when it measured a valid one, else
  the last good reading's, marked stale with its time - a failed probe never blanks the truth,
  and never shows a number it did not read;
- the bucket's **recovery** estimate and **forecast** (when it runs out at the recent pace,
  and whether that is within the user's `warn_within`), the bucket **insights** and the
  **advice** (meaning and next steps).

The dashboard, `check` (text, JSON, OpenMetrics), `head`, `history`, `report` and `serve` all
render these, so they cannot disagree. Insights and advice are computed on first use: the
dashboard assesses every reading of a round for its table but needs them only for the detail
pane.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from pullwatch.advice import Advice, advise
from pullwatch.forecast import Forecast, ForecastStatus
from pullwatch.insights import Insight, insights_for
from pullwatch.reading import (
    AMBIGUOUS_429,
    FAILED_STATES,
    METERED_STATES,
    Reading,
    Source,
    State,
)
from pullwatch.recent import RecentHistory
from pullwatch.recovery import Recovery

DEFAULT_LOW_FRACTION = 0.2
DEFAULT_WARN_WITHIN = 1800.0  # seconds: a forecast run-out this close is a warning
RECENT_SOURCES_SECONDS = 24 * 3600.0  # "several sources" looks this far back


def low_threshold(limit: int, warn_below: int | None) -> int:
    """Remaining at or under this is `low`: the configured number, else 20% of the limit."""
    if warn_below is not None:
        return warn_below
    return math.ceil(limit * DEFAULT_LOW_FRACTION)


@dataclass(frozen=True, slots=True)
class Policy:
    """The user's thresholds: a global `warn_below` and each identity's own."""

    warn_below: int | None = None
    identity_warn: Mapping[str, int | None] = field(default_factory=dict)
    warn_within: float | None = DEFAULT_WARN_WITHIN  # seconds; None: never warn on a forecast

    def warn_for(self, label: str) -> int | None:
        own = self.identity_warn.get(label)
        return own if own is not None else self.warn_below


@dataclass(frozen=True, slots=True)
class Quota:
    """Numbers on screen: a valid quota, from this reading or (stale) from the last good one."""

    limit: int
    remaining: int
    window_seconds: int | None
    source: Source | None
    as_of: float  # when the registry said so (epoch seconds)
    stale: bool  # True: not from the latest probe, which failed or could not read it

    @property
    def used(self) -> int:
        return self.limit - self.remaining


def _quota(reading: Reading, stale: bool) -> Quota | None:
    if reading.state not in METERED_STATES or not reading.quota_valid:
        return None
    assert reading.limit is not None and reading.remaining is not None
    return Quota(
        limit=reading.limit,
        remaining=reading.remaining,
        window_seconds=reading.window_seconds,
        source=reading.source,
        as_of=reading.checked_at,
        stale=stale,
    )


@dataclass(frozen=True)
class Assessment:
    """What one identity's latest reading means. Render this; never re-derive it."""

    reading: Reading
    state: State
    reason: str | None  # one line: why the state is what it is
    quota: Quota | None
    last_known: Reading | None  # the last reading that measured the quota (may be `reading`)
    recovery: Recovery | None
    forecast: Forecast | None = None
    warn_within: float | None = DEFAULT_WARN_WITHIN
    others: Sequence[Reading] = ()
    sources_seen: Sequence[Source] = ()
    shared_with: Sequence[str] = ()

    @property
    def label(self) -> str:
        return self.reading.label

    @property
    def username(self) -> str | None:
        return self.reading.username

    @property
    def fresh(self) -> bool:
        """The latest probe measured the quota (metered or not)."""
        return self.reading.measured and self.state not in FAILED_STATES

    @property
    def unmetered(self) -> bool:
        """Not metered now, or (stale) when last measured."""
        if self.state is State.UNMETERED:
            return True
        return (
            self.quota is None
            and self.last_known is not None
            and self.last_known.state is State.UNMETERED
            and not self.fresh
        )

    @property
    def measured(self) -> bool:
        """The latest probe measured the quota: `probe_success` in the metrics."""
        return self.state in (State.OK, State.LOW, State.EXHAUSTED, State.UNMETERED) and (
            self.state is State.UNMETERED or (self.quota is not None and not self.quota.stale)
        )

    @property
    def recovers_in(self) -> float | None:
        """Seconds until the bucket's next pull is back (an upper bound), when it lacks some."""
        if self.recovery is None or not self.recovery.recovering:
            return None
        return self.recovery.next_in(self.reading.checked_at)

    def runs_out_in(self, now: float) -> float | None:
        """Seconds until the bucket runs out at the recent pace (the earliest plausible time);
        None when it is not draining, or there is no pace yet."""
        forecast = self.forecast
        if forecast is None or forecast.status is not ForecastStatus.DRAINING:
            return None
        return forecast.runs_out_in(now)

    def runs_out_soon(self, now: float) -> bool:
        """The forecast says this bucket runs out within the user's `warn_within`."""
        left = self.runs_out_in(now)
        return left is not None and self.warn_within is not None and left <= self.warn_within

    @cached_property
    def insights(self) -> tuple[Insight, ...]:
        key = self.reading.bucket_key
        by_bucket = {key: [self.label, *self.shared_with]} if key else {}
        return tuple(insights_for(self.reading, by_bucket, {self.label: self.sources_seen}))

    @property
    def warnings(self) -> list[str]:
        return [insight.message for insight in self.insights]

    @cached_property
    def advice(self) -> Advice:
        reading = self.reading
        if self.reason != reading.detail:
            reading = _with_detail(reading, self.reason)
        return advise(reading, self.others, recovers_in=self.recovers_in, state=self.state)


def _with_detail(reading: Reading, detail: str | None) -> Reading:
    from dataclasses import replace

    return replace(reading, detail=detail)


def assess(
    reading: Reading,
    *,
    others: Sequence[Reading] = (),
    recent: RecentHistory | None = None,
    policy: Policy | None = None,
    shared_with: Sequence[str] | None = None,
) -> Assessment:
    """The meaning of one identity's latest `reading`.

    `others` are the other identities' latest readings (who shares this bucket, who has room
    now); `recent` is what the history kept (last good reading, recovery, sources seen).
    `shared_with` (the other labels charged to this bucket) saves a scan of `others`.
    """
    policy = policy or Policy()
    last = recent.last_good(reading.label) if recent is not None else None
    if last is not None and (
        last.username != reading.username or last.checked_at > reading.checked_at
    ):
        last = None  # another login's numbers, or a clock gone backwards: not this identity's
    if reading.measured:
        last = reading
    state, reason = _state(reading, last, policy)
    quota = _quota(reading, stale=False) if state in METERED_STATES else None
    if quota is None and last is not None and last is not reading and state is not State.EXHAUSTED:
        quota = _quota(last, stale=True)
    if quota is not None and not quota.stale and state is State.OK:
        threshold = low_threshold(quota.limit, policy.warn_for(reading.label))
        if quota.remaining <= threshold:
            state, reason = State.LOW, reason or f"{quota.remaining} of {quota.limit} left"
    bucket = reading if reading.bucket_key is not None else last
    key = bucket.bucket_key if bucket is not None else None
    recovery = recent.recovery(key) if recent is not None else None
    forecast = recent.forecast(key, reading.checked_at) if recent is not None else None
    key = reading.bucket_key
    if shared_with is None:
        shared_with = [
            o.label for o in others if o.label != reading.label and key and o.bucket_key == key
        ]
    seen: Sequence[Source] = ()
    if recent is not None:
        seen = recent.sources(reading.label, reading.checked_at - RECENT_SOURCES_SECONDS)
    return Assessment(
        reading=reading,
        state=state,
        reason=reason,
        quota=quota,
        last_known=last,
        recovery=recovery,
        forecast=forecast,
        warn_within=policy.warn_within,
        others=others,
        sources_seen=seen,
        shared_with=shared_with,
    )


def _state(reading: Reading, last: Reading | None, policy: Policy) -> tuple[State, str | None]:
    """The state to show, before the low threshold, with its reason."""
    state = reading.state
    if state in (State.OK, State.LOW):
        if not reading.quota_valid:  # an old row, or anything else without a valid quota
            return State.UNKNOWN, reading.detail or "no valid quota in this reading"
        return State.OK, None if state is State.LOW else reading.detail
    if (
        state is State.EXHAUSTED
        and reading.remaining is None
        and reading.http_status == 429
        and reading.raw_remaining is None
        and last is not None
        and last.state is State.UNMETERED
    ):
        return (
            State.THROTTLED,
            f"{AMBIGUOUS_429}: this identity is not metered, so the abuse limit (HAP429)",
        )
    return state, reading.detail


def assess_all(
    readings: Sequence[Reading],
    *,
    recent: RecentHistory | None = None,
    policy: Policy | None = None,
) -> list[Assessment]:
    """Every identity's assessment, each seeing all the others (who shares, who has room)."""
    by_bucket: dict[tuple[str, str, str], list[str]] = {}
    for reading in readings:
        if reading.bucket_key is not None:
            by_bucket.setdefault(reading.bucket_key, []).append(reading.label)
    return [
        assess(
            reading,
            others=readings,
            recent=recent,
            policy=policy,
            shared_with=[
                label
                for label in by_bucket.get(reading.bucket_key or ("", "", ""), ())
                if label != reading.label
            ],
        )
        for reading in readings
    ]


def by_label(assessments: Iterable[Assessment]) -> dict[str, Assessment]:
    return {a.label: a for a in assessments}
