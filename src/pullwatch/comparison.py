"""Side by side: which identity to pull with now.

Ranked best first: unmetered (no quota to spend), then those with room - the ones not being
drained before those forecast to run out, the later run-out first, then by pulls remaining as
last measured -, then exhausted, then those that could not be measured. The best one to use is
the first with room to pull now (a stale number is not room now); identities charged to the
same bucket share it, so the label of the first is enough.
"""

from __future__ import annotations

from collections.abc import Sequence

from pullwatch.assess import Assessment
from pullwatch.durations import format_coarse
from pullwatch.reading import State


def _rank(assessment: Assessment, now: float | None) -> tuple[int, float, int, int]:
    quota = assessment.quota
    if assessment.state is State.UNMETERED:
        return (0, 0.0, 0, 0)
    if assessment.state in (State.OK, State.LOW) and quota is not None:
        when = assessment.reading.checked_at if now is None else now
        left = assessment.runs_out_in(when)
        return (1, 0.0 if left is None else 1.0 / (1.0 + left), -quota.remaining, -quota.limit)
    if assessment.state is State.EXHAUSTED:
        return (2, 0.0, 0, 0)
    return (3, 0.0, 0, 0)


def ranked(assessments: Sequence[Assessment], now: float | None = None) -> list[Assessment]:
    """Best first; ties keep the given order."""
    return sorted(assessments, key=lambda a: _rank(a, now))


def has_room_now(assessment: Assessment) -> bool:
    if assessment.state is State.UNMETERED:
        return True
    quota = assessment.quota
    return (
        assessment.state in (State.OK, State.LOW)
        and quota is not None
        and not quota.stale
        and quota.remaining > 0
    )


def best_to_use(assessments: Sequence[Assessment], now: float | None = None) -> Assessment | None:
    """The identity with the most room now, or None if none can pull."""
    for assessment in ranked(assessments, now):
        if has_room_now(assessment):
            return assessment
    return None


def outlook(selected: Assessment, others: Sequence[Assessment], now: float) -> str | None:
    """`alice runs out in ~25m; bob is not draining: switch the scanner to bob`, when the
    selected identity is forecast to run out and another bucket has room that lasts longer."""
    left = selected.runs_out_in(now)
    if left is None:
        return None
    mine = selected.reading.bucket_key
    candidates = [
        other
        for other in others
        if other.label != selected.label
        and has_room_now(other)
        and (other.reading.bucket_key is None or other.reading.bucket_key != mine)
    ]
    best = best_to_use(candidates, now)
    head = f"{selected.label} runs out in ~{format_coarse(left)}"
    if best is None:
        return f"{head}; no other identity has room that lasts longer"
    their = best.runs_out_in(now)
    if best.state is State.UNMETERED:
        why = "is not metered"
    elif their is None:
        why = "is not draining"
    elif their > left:
        why = f"runs out in ~{format_coarse(their)}"
    else:
        return f"{head}; every other identity runs out sooner"
    return f"{head}; {best.label} {why}: switch the pulling client to {best.label}"
