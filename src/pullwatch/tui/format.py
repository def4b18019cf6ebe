"""How readings look on screen: gauges, countdowns, state labels (Rich `Text`, never markup).

Cells are always `Text` objects, so a label, a header value or a server's words can never be
read as markup. Times are formatted coarsely on purpose: a countdown cell that changes only when
its text changes keeps the idle dashboard quiet over SSH.
"""

from __future__ import annotations

import functools
import math

from rich.text import Text

from pullwatch.hub.headers import format_window, parse_source
from pullwatch.output import STATE_LABELS
from pullwatch.reading import Reading, State

STATE_STYLES: dict[State, str] = {
    State.OK: "green",
    State.LOW: "yellow",
    State.EXHAUSTED: "bold red",
    State.UNMETERED: "cyan",
    State.AUTH_FAILED: "red",
    State.THROTTLED: "magenta",
    State.ERROR: "red",
    State.UNKNOWN: "dim",
}

FULL, EMPTY = "█", "░"


def level_style(reading: Reading) -> str:
    """The gauge colour: by the state, which already encodes the warning threshold."""
    return _level_style(reading.state, reading.limit, reading.remaining)


def _level_style(state: State, limit: int | None, remaining: int | None) -> str:
    if state is State.OK and limit and remaining is not None:
        return "green" if remaining / limit > 0.5 else "bright_green"
    return STATE_STYLES[state]


def gauge(reading: Reading, bar_width: int) -> Text:
    """`███████░░░░░  76/100`, `unlimited`, `?/100`, or `-`.

    Cached (a round of 1000 readings draws few distinct gauges): the Text is shared between
    calls, so do not modify it.
    """
    return _gauge(reading.state, reading.limit, reading.remaining, bar_width)


@functools.lru_cache(maxsize=4096)
def _gauge(state: State, limit: int | None, remaining: int | None, bar_width: int) -> Text:
    if state is State.UNMETERED:
        return Text("unlimited", style="cyan")
    if limit is None and remaining is None:
        return Text("-", style="dim")
    numbers = f"{'?' if remaining is None else remaining}/" + ("?" if limit is None else str(limit))
    style = _level_style(state, limit, remaining)
    text = Text()
    if bar_width > 0:
        if limit and remaining is not None:
            filled = round(bar_width * min(remaining, limit) / limit)
            if remaining > 0:
                filled = max(filled, 1)
            text.append(FULL * filled, style=style)
            text.append(EMPTY * (bar_width - filled), style="dim")
        else:
            text.append(EMPTY * bar_width, style="dim")
        text.append(" ")
    text.append(numbers.rjust(7), style=style)
    return text


def state_text(reading: Reading, with_reason: bool = False, width: int | None = None) -> Text:
    text = Text(STATE_LABELS[reading.state], style=STATE_STYLES[reading.state])
    if with_reason and reading.detail:
        text.append(f"  {reading.detail}", style="dim")
    if width is not None:
        text.truncate(width, overflow="ellipsis")
    return text


@functools.lru_cache(maxsize=4096)
def bucket_text(source: str | None) -> Text:
    """The bucket's short form. Cached: the Text is shared between calls, do not modify it."""
    parsed = parse_source(source)
    if parsed is None:
        return Text("-", style="dim")
    return Text(parsed.display)


def window_text(reading: Reading) -> Text:
    if reading.window_seconds is None:
        return Text("-", style="dim")
    return Text(format_window(reading.window_seconds))


def duration(seconds: float) -> str:
    """42s, 4m10s, 5h12m, 3d4h: two units at most."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def coarse_duration(seconds: float) -> str:
    """To the minute: `<1m`, `4m`, `5h12m`. Table cells use it so they change once a minute."""
    s = max(int(seconds), 0)
    if s < 60:
        return "<1m"
    if s < 3600:
        return f"{s // 60}m"
    return duration(s)


def token_countdown(expires_at: float | None, now: float) -> Text:
    if expires_at is None:
        return Text("-", style="dim")
    left = expires_at - now
    if left <= 0:
        return Text("expired", style="dim")
    return Text(coarse_duration(left), style="yellow" if left < 60 else "")


def age_text(checked_at: float | None, now: float) -> Text:
    if checked_at is None:
        return Text("-", style="dim")
    return Text(coarse_duration(now - checked_at), style="dim" if now - checked_at > 300 else "")


def at_most(seconds: float) -> str:
    """An upper bound, rounded up to the minute: `≤ 5m`, `≤ 5h13m`."""
    minutes = max(math.ceil(seconds / 60), 1)
    if minutes < 60:
        return f"≤ {minutes}m"
    return f"≤ {minutes // 60}h{minutes % 60:02d}m"
