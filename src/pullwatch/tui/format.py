"""How assessments look on screen: gauges, countdowns, state labels (Rich `Text`, never markup).

Cells are always `Text` objects, so a label, a header value or a server's words can never be
read as markup. Times are formatted coarsely on purpose: a countdown cell that changes only when
its text changes keeps the idle dashboard quiet over SSH. Bad states are bold, so they stand out
without colour (`NO_COLOR`) too; a stale number (the latest probe failed) is dimmed and says how
old it is - never shown as if fresh.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from rich.text import Text

from pullwatch.durations import format_coarse, format_span
from pullwatch.reading import Source, State

if TYPE_CHECKING:
    from pullwatch.assess import Assessment

STATE_STYLES: dict[State, str] = {
    State.OK: "green",
    State.LOW: "bold yellow",
    State.EXHAUSTED: "bold reverse red",
    State.UNMETERED: "cyan",
    State.AUTH_FAILED: "bold red",
    State.THROTTLED: "bold magenta",
    State.ERROR: "bold red",
    State.UNKNOWN: "italic",
}

FULL, EMPTY, STALE = "█", "░", "▒"


def _level_style(state: State, limit: int | None, remaining: int | None) -> str:
    if state is State.OK and limit and remaining is not None:
        return "green" if remaining / limit > 0.5 else "bright_green"
    return "bold red" if state is State.EXHAUSTED else STATE_STYLES[state]


STALE_AGE_ROOM = len(" <1m ago")  # what a table leaves beside a stale gauge for its age


def gauge(assessment: Assessment, bar_width: int, now: float | None = None) -> Text:
    """`███████░░░░░  76/100`, `unlimited` (`not reported` off Docker Hub), `-`, or a dimmed
    stale gauge with its age.

    A stale gauge (the latest probe failed; these are the last good numbers) is dimmed and
    aged: `▒▒▒░░ 180/200 3m ago` where there is room for a bar (a longer age takes its room
    from the bar), else ` 76/100 3m` - no wider than the numbers and a bar would be.
    """
    quota = assessment.quota
    if assessment.state is State.UNMETERED and not assessment.reading.docker_hub:
        # another registry or a mirror without rate-limit headers: not a promise of no limit
        return Text("not reported", style="cyan")
    if assessment.state is State.UNMETERED:
        return _gauge(State.UNMETERED, None, None, bar_width, False)
    if quota is None:
        if assessment.unmetered:
            was = "unlimited" if assessment.reading.docker_hub else "not reported"
            return Text(f"was {was}", style="dim")
        return Text("-", style="dim")
    if not quota.stale or now is None:
        return _gauge(assessment.state, quota.limit, quota.remaining, bar_width, quota.stale)
    age = format_coarse(now - quota.as_of)
    suffix = f" {age} ago"
    bar = bar_width - max(len(suffix) - STALE_AGE_ROOM, 0)
    if bar > 0:
        text = _gauge(assessment.state, quota.limit, quota.remaining, bar, True).copy()
        text.append(suffix, style="dim italic")
        return text
    text = _gauge(assessment.state, quota.limit, quota.remaining, 0, True).copy()
    text.append(f" {age}", style="dim italic")  # ` 76/100 3m`: the numbers stay aligned
    return text


@functools.lru_cache(maxsize=4096)
def _gauge(state: State, limit: int | None, remaining: int | None, bar: int, stale: bool) -> Text:
    """Cached (a round of 1000 readings draws few distinct gauges): callers copy before editing."""
    if state is State.UNMETERED:
        return Text("unlimited", style="cyan")
    numbers = f"{'?' if remaining is None else remaining}/" + ("?" if limit is None else str(limit))
    style = "dim" if stale else _level_style(state, limit, remaining)
    text = Text()
    if bar > 0:
        if limit and remaining is not None:
            filled = round(bar * min(remaining, limit) / limit)
            if remaining > 0:
                filled = max(filled, 1)
            text.append((STALE if stale else FULL) * filled, style=style)
            text.append(EMPTY * (bar - filled), style="dim")
        else:
            text.append(EMPTY * bar, style="dim")
        text.append(" ")
    text.append(numbers.rjust(7), style=style)
    return text


def state_text(assessment: Assessment, with_reason: bool = False, width: int | None = None) -> Text:
    """The state's label in its style (bad states bold or reversed); the reason in plain text,
    readable with or without colour."""
    text = Text()
    text.append(assessment.state.label, style=STATE_STYLES[assessment.state])
    if with_reason and assessment.reason:
        text.append(f"  {assessment.reason}")
    if width is not None:
        text.truncate(width, overflow="ellipsis")
    return text


@functools.lru_cache(maxsize=4096)
def bucket_text(source: Source | None) -> Text:
    """The bucket's short form. Cached: the Text is shared between calls, do not modify it."""
    if source is None:
        return Text("-", style="dim")
    return Text(source.display)


def window_text(assessment: Assessment) -> Text:
    quota = assessment.quota
    window = quota.window_seconds if quota is not None else assessment.reading.window_seconds
    if window is None:
        return Text("-", style="dim")
    return Text(format_span(window), style="dim" if quota is not None and quota.stale else "")


def token_countdown(expires_at: float | None, now: float) -> Text:
    if expires_at is None:
        return Text("-", style="dim")
    left = expires_at - now
    if left <= 0:
        return Text("expired", style="dim")
    return Text(format_coarse(left), style="yellow" if left < 60 else "")


def age_text(checked_at: float | None, now: float) -> Text:
    if checked_at is None:
        return Text("-", style="dim")
    return Text(format_coarse(now - checked_at), style="dim" if now - checked_at > 300 else "")
