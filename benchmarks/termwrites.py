"""Which parts of the screen a terminal program repaints: a small parser of what it writes.

Textual positions the cursor (`ESC [ row ; col H`) before each run of cells it repaints, so the
byte stream says exactly which rows were written and how wide each run was: a cell update is a
short run, a repainted row is a run across the whole width.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_TOKEN = re.compile(
    rb"\x1b\[(?P<row>\d+);(?P<col>\d+)H"  # cursor position
    rb"|\x1b\[[0-9;?<>=$]*[ -/]*[@-~]"  # any other CSI (colours, modes)
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC
    rb"|\x1b[P^_][^\x1b]*\x1b\\"  # DCS, PM, APC
    rb"|\x1b."  # two-byte escapes
    rb"|(?P<nl>\r\n|\n)"
    rb"|(?P<cr>\r)"
    rb"|(?P<text>[^\x1b\r\n]+)"
)


@dataclass(frozen=True, slots=True)
class Run:
    """`text` (`width` cells) written on `row` (1-based) from `col`."""

    row: int
    col: int
    width: int
    text: str


def runs(data: bytes) -> list[Run]:
    """Every run of cells written, in order (consecutive text on one row is one run)."""
    out: list[Run] = []
    row, col = 1, 1
    current: list | None = None  # [row, col, width, text]
    for m in _TOKEN.finditer(data):
        if m.group("row"):
            if current:
                out.append(Run(*current))
            current = None
            row, col = int(m.group("row")), int(m.group("col"))
        elif m.group("nl"):
            if current:
                out.append(Run(*current))
            current = None
            row, col = row + 1, 1
        elif m.group("cr"):
            if current:
                out.append(Run(*current))
            current = None
            col = 1
        elif m.group("text") is not None:
            text = m.group("text").decode("utf-8", "replace")
            if current is None:
                current = [row, col, 0, ""]
            current[2] += len(text)
            current[3] += text
            col += len(text)
        # other escapes (SGR, modes) change no position and end no run
    if current:
        out.append(Run(*current))
    return out


@dataclass
class Region:
    name: str
    first_row: int
    last_row: int
    writes: int = 0
    cells: int = 0
    widest: int = 0
    full_rows: int = 0  # runs covering (nearly) the whole width: a repainted row

    def add(self, run: Run, screen_width: int) -> None:
        self.writes += 1
        self.cells += run.width
        self.widest = max(self.widest, run.width)
        if run.width >= screen_width - 4:
            self.full_rows += 1


def by_region(
    all_runs: Iterable[Run], regions: list[tuple[str, int, int]], screen_width: int
) -> list[Region]:
    found = [Region(name, a, b) for name, a, b in regions]
    for run in all_runs:
        for region in found:
            if region.first_row <= run.row <= region.last_row:
                region.add(run, screen_width)
                break
    return found
