"""Alerts: crossing into `low` or `exhausted` raises one alert, never one per round.

The low threshold is the identity's `warn_below` (else the config's, else 20% of the limit):
it is already folded into the assessed state. An identity alerts when its level rises (ok -> low,
low -> exhausted, ok -> exhausted); it can alert again only after it has recovered. A failed
probe says nothing about the quota and changes nothing; the first reading sets the baseline
without alerting (what is already red at start-up is on screen, not news).

The forecast is watched the same way: a bucket forecast to run out within the user's
`warn_within` raises one alert when it crosses into that, and can alert again once the
forecast has moved out of it (or the bucket is exhausted, which alerts on its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from pullwatch.assess import Assessment
from pullwatch.durations import format_coarse
from pullwatch.reading import State


class Level(IntEnum):
    FINE = 0
    RUNS_OUT_SOON = 1  # a forecast, not a state: kept apart from the state's levels
    LOW = 2
    EXHAUSTED = 3


_LEVELS = {
    State.OK: Level.FINE,
    State.UNMETERED: Level.FINE,
    State.LOW: Level.LOW,
    State.EXHAUSTED: Level.EXHAUSTED,
}


@dataclass(frozen=True, slots=True)
class Alert:
    label: str
    level: Level
    message: str


class AlertTracker:
    def __init__(self) -> None:
        self._levels: dict[str, Level] = {}
        self._soon: dict[str, bool] = {}

    def observe(self, assessment: Assessment, now: float | None = None) -> Alert | None:
        level = _LEVELS.get(assessment.state)
        if level is None or not assessment.fresh:  # a failure or not probed: no news
            return None
        reading = assessment.reading
        previous = self._levels.get(reading.label)
        self._levels[reading.label] = level
        soon = self._runs_out_soon(assessment, level, now)
        if previous is None or level <= previous:
            return soon
        if level is Level.EXHAUSTED:
            message = f"{reading.label} is exhausted: pulls now fail with 429"
        else:
            left = "?" if assessment.quota is None else assessment.quota.remaining
            message = f"{reading.label} is low: {left} pulls left"
        return Alert(reading.label, level, message)

    def _runs_out_soon(
        self, assessment: Assessment, level: Level, now: float | None
    ) -> Alert | None:
        """One alert per crossing into "forecast to run out within warn_within"."""
        label = assessment.label
        when = assessment.reading.checked_at if now is None else now
        soon = level is not Level.EXHAUSTED and assessment.runs_out_soon(when)
        before = self._soon.get(label)
        self._soon[label] = soon
        if not soon or before is None or before:
            return None
        left = assessment.runs_out_in(when) or 0.0
        return Alert(
            label,
            Level.RUNS_OUT_SOON,
            f"{label} runs out in ~{format_coarse(left)} at the recent pace",
        )
