"""Side by side: which identity to pull with now.

Ranked best first: unmetered (no quota to spend), then by pulls remaining, then exhausted, then
those that could not be measured. The best one to use is the first with room to pull; identities
charged to the same bucket share it, so the label of the first is enough.
"""

from __future__ import annotations

from collections.abc import Sequence

from pullwatch.reading import Reading, State


def _rank(reading: Reading) -> tuple[int, int, int]:
    if reading.state is State.UNMETERED:
        return (0, 0, 0)
    if reading.state in (State.OK, State.LOW) and reading.remaining is not None:
        return (1, -reading.remaining, -(reading.limit or 0))
    if reading.state is State.EXHAUSTED:
        return (2, 0, 0)
    return (3, 0, 0)


def ranked(readings: Sequence[Reading]) -> list[Reading]:
    """Best first; ties keep the given order."""
    return sorted(readings, key=_rank)


def best_to_use(readings: Sequence[Reading]) -> Reading | None:
    """The identity with the most room now, or None if none can pull."""
    for reading in ranked(readings):
        if reading.state is State.UNMETERED or (
            reading.state in (State.OK, State.LOW) and (reading.remaining or 0) > 0
        ):
            return reading
    return None
