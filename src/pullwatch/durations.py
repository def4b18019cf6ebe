"""Durations in and out: one parser and one family of formatters for every command and screen.

In: `90`, `90s`, `45m`, `1.5h`, `1h30m`, `7d`, `2w` -> exact seconds (a `Fraction`, so 1.5 h is
5400 s), for `history --since`, `plan --interval`, `--window`, `--warn-within` and the screens.

Out, by what the text is for:
- `format_span`: a length, such as a window (`w=`) or a scan interval: `6 h`, `1 h 30 min`, `90 s`;
- `format_clock`: a countdown or an age to the second: `42s`, `4m10s`, `5h12m`, `3d4h`;
- `format_coarse`: the same to the minute (`<1m`, `4m`), so a table cell changes once a minute;
- `minutes_up` / `at_most`: an upper bound rounded up to the minute: `12m`, `≤ 5h13m`;
- `iso_time`: a moment, ISO 8601 in UTC (`2026-11-30T12:00:00Z`), for JSON and reports.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from fractions import Fraction

UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(sec|min|s|m|h|d|w)?", re.IGNORECASE)
HOUR = 3600
MINUTE = 60


def parse_duration(text: str, default_unit: str = "s") -> Fraction:
    """Seconds, exactly; a bare number is in `default_unit`. Raises ValueError (one line).

    Several parts add up (`1h30m`); every part but a lone number needs a unit.
    """
    value = text.strip().lower()
    parts: list[tuple[str, str | None]] = []
    position = 0
    while position < len(value):
        if value[position].isspace():
            position += 1
            continue
        match = _PART.match(value, position)
        if not match:
            raise ValueError(f"{text!r} is not a duration (like 90m, 1.5h, 6h, 7d)")
        parts.append((match.group(1), match.group(2)))
        position = match.end()
    if not parts:
        raise ValueError("empty duration")
    if len(parts) > 1 and any(unit is None for _, unit in parts):
        raise ValueError(f"{text!r} is not a duration (like 90m, 1.5h, 6h, 7d): add a unit")
    return sum(
        (Fraction(number) * UNITS[unit or default_unit] for number, unit in parts), Fraction(0)
    )


def format_span(seconds: int | Fraction | None) -> str:
    """A length for people: 21600 -> `6 h`, 5400 -> `1 h 30 min`, 1080 -> `18 min`, 90 -> `90 s`.

    Exact: a span that is not whole minutes is shown in seconds, or in hours to two places
    when it is not whole seconds either. None -> `-`.
    """
    if seconds is None:
        return "-"
    value = Fraction(seconds)
    if value % HOUR == 0:
        return f"{value // HOUR} h"
    if value % MINUTE == 0:
        hours, rest = divmod(value, HOUR)
        minutes = f"{rest // MINUTE} min"
        return f"{hours} h {minutes}" if hours else minutes
    if value.denominator == 1:
        return f"{value} s"
    return f"{float(value / HOUR):.2f} h"


def format_clock(seconds: float) -> str:
    """A countdown or an age, two units at most: `42s`, `4m10s`, `5h12m`, `3d4h`."""
    s = max(int(seconds), 0)
    if s < MINUTE:
        return f"{s}s"
    if s < HOUR:
        return f"{s // MINUTE}m{s % MINUTE:02d}s"
    if s < 86400:
        return f"{s // HOUR}h{(s % HOUR) // MINUTE:02d}m"
    return f"{s // 86400}d{(s % 86400) // HOUR}h"


def format_coarse(seconds: float) -> str:
    """To the minute: `<1m`, `4m`, `5h12m`. Table cells use it so they change once a minute."""
    s = max(int(seconds), 0)
    if s < MINUTE:
        return "<1m"
    if s < HOUR:
        return f"{s // MINUTE}m"
    return format_clock(s)


def minutes_up(seconds: float) -> str:
    """Rounded up to the minute, at least 1: `1m`, `12m`, `5h13m`."""
    minutes = max(math.ceil(seconds / MINUTE), 1)
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def at_most(seconds: float) -> str:
    """An upper bound, rounded up to the minute: `≤ 5m`, `≤ 5h13m`."""
    return f"≤ {minutes_up(seconds)}"


def iso_time(epoch: float) -> str:
    """`2026-11-30T12:00:00Z`: whole seconds, UTC."""
    return (
        dt.datetime.fromtimestamp(epoch, dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )
