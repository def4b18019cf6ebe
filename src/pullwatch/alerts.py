"""Alerts: crossing into `low` or `exhausted` raises one alert, never one per round.

The low threshold is the identity's `warn_below` (else the config's, else 20% of the limit):
it is already folded into the assessed state. An identity alerts when its level rises (ok -> low,
low -> exhausted, ok -> exhausted); it can alert again only after it has recovered. A failed
probe says nothing about the quota and changes nothing; the first reading sets the baseline
without alerting (what is already red at start-up is on screen, not news).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from pullwatch.assess import Assessment
from pullwatch.reading import State


class Level(IntEnum):
    FINE = 0
    LOW = 1
    EXHAUSTED = 2


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

    def observe(self, assessment: Assessment) -> Alert | None:
        level = _LEVELS.get(assessment.state)
        if level is None or not assessment.fresh:  # a failure or not probed: no news
            return None
        reading = assessment.reading
        previous = self._levels.get(reading.label)
        self._levels[reading.label] = level
        if previous is None or level <= previous:
            return None
        if level is Level.EXHAUSTED:
            message = f"{reading.label} is exhausted: pulls now fail with 429"
        else:
            left = "?" if assessment.quota is None else assessment.quota.remaining
            message = f"{reading.label} is low: {left} pulls left"
        return Alert(reading.label, level, message)
