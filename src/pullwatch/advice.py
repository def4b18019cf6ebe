"""What a reading means and what to do next, in plain language.

`advise()` is the one entry point the dashboard, the check screens and `check` output use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pullwatch.reading import Reading, State

STATE_MEANINGS: dict[State, str] = {
    State.OK: "Metered, with pulls to spare.",
    State.LOW: "Metered, and at or under the warning threshold: pulls will soon fail with 429.",
    State.EXHAUSTED: "No pulls left in this bucket: pulls fail with 429 until the rolling window "
    "gives some back.",
    State.UNMETERED: "Docker Hub sent no rate-limit headers: a paid plan or an exempt image or IP. "
    "No quota to show.",
    State.AUTH_FAILED: "The credentials (or the token) were refused. Not retried automatically: "
    "repeated bad logins lock a username out for about 10 minutes.",
    State.THROTTLED: "Rate-limited by the token endpoint or by the abuse limit (HAP429): not the "
    "pull quota. Backing off as Retry-After asks.",
    State.ERROR: "The probe could not complete (network, TLS, server error, odd answer or the "
    "keyring). Retried with backoff.",
    State.UNKNOWN: "Not probed yet.",
}


@dataclass(frozen=True, slots=True)
class Advice:
    meaning: str
    steps: tuple[str, ...] = ()  # what to do next, most useful first; empty when nothing to do


def advise(reading: Reading, others: Sequence[Reading] = ()) -> Advice:
    """The meaning of `reading` and the next steps; `others` are the other identities' latest
    readings (to say which one has room now)."""
    return Advice(meaning=STATE_MEANINGS[reading.state])
