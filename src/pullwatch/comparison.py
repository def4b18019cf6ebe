"""Side by side: which identity to pull with now.

Ranked best first: unmetered (no quota to spend), then by pulls remaining as last measured, then
exhausted, then those that could not be measured. The best one to use is the first with room to
pull now (a stale number is not room now); identities charged to the same bucket share it, so
the label of the first is enough.
"""

from __future__ import annotations

from collections.abc import Sequence

from pullwatch.assess import Assessment
from pullwatch.reading import State


def _rank(assessment: Assessment) -> tuple[int, int, int]:
    quota = assessment.quota
    if assessment.state is State.UNMETERED:
        return (0, 0, 0)
    if assessment.state in (State.OK, State.LOW) and quota is not None:
        return (1, -quota.remaining, -quota.limit)
    if assessment.state is State.EXHAUSTED:
        return (2, 0, 0)
    return (3, 0, 0)


def ranked(assessments: Sequence[Assessment]) -> list[Assessment]:
    """Best first; ties keep the given order."""
    return sorted(assessments, key=_rank)


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


def best_to_use(assessments: Sequence[Assessment]) -> Assessment | None:
    """The identity with the most room now, or None if none can pull."""
    for assessment in ranked(assessments):
        if has_room_now(assessment):
            return assessment
    return None
