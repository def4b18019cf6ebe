"""Durations as people type them: `90`, `90s`, `45m`, `1.5h`, `1h30m`, `7d`, `2w`.

One parser for the whole command line (`history --since`, `plan --interval`, `--window`) and
the planner screen. Exact: the result is a `Fraction` of seconds, so 1.5 h is 5400 s.
"""

from __future__ import annotations

import re
from fractions import Fraction

UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(sec|min|s|m|h|d|w)?", re.IGNORECASE)


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
