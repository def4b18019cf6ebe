"""What a Textual app puts on the terminal, read back cell by cell.

`screen_cells(app)` renders the current screen exactly as `App.export_screenshot` does (the
compositor's full update, with the app's line filters - NO_COLOR's among them - applied), but
as ANSI text, then parses the SGR codes back into one `Cell` per terminal column: character,
colours, bold, dim, italic, reverse. Tests then ask what the user sees: which text is where,
whether it is bold or reversed, and its contrast against its background.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, replace

from rich.cells import cell_len
from rich.console import Console
from textual.app import App

RGB = tuple[int, int, int]
_CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")  # SGR ("m") sets the style; moves are dropped
_XTERM_GREYS = {232 + n: 8 + 10 * n for n in range(24)}


@dataclass(frozen=True, slots=True)
class Cell:
    char: str = " "
    fg: RGB | None = None
    bg: RGB | None = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    reverse: bool = False

    def shown(self, default_fg: RGB, default_bg: RGB) -> tuple[RGB, RGB]:
        """The foreground and background the user sees (reverse video swaps them)."""
        fg, bg = self.fg or default_fg, self.bg or default_bg
        return (bg, fg) if self.reverse else (fg, bg)


def _xterm(n: int) -> RGB:
    if n in _XTERM_GREYS:
        grey = _XTERM_GREYS[n]
        return (grey, grey, grey)
    if 16 <= n < 232:
        n -= 16
        steps = (0, 95, 135, 175, 215, 255)
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    raise AssertionError(f"unexpected basic colour {n}: the export is in true colour")


def _apply(cell: Cell, params: list[int]) -> Cell:
    i = 0
    while i < len(params):
        code = params[i]
        if code == 0:
            cell = Cell()
        elif code == 1:
            cell = replace(cell, bold=True)
        elif code == 2:
            cell = replace(cell, dim=True)
        elif code == 3:
            cell = replace(cell, italic=True)
        elif code == 7:
            cell = replace(cell, reverse=True)
        elif code == 22:
            cell = replace(cell, bold=False, dim=False)
        elif code == 23:
            cell = replace(cell, italic=False)
        elif code == 27:
            cell = replace(cell, reverse=False)
        elif code == 39:
            cell = replace(cell, fg=None)
        elif code == 49:
            cell = replace(cell, bg=None)
        elif code in (38, 48):
            if params[i + 1] == 2:
                rgb: RGB = (params[i + 2], params[i + 3], params[i + 4])
                i += 4
            else:
                rgb = _xterm(params[i + 2])
                i += 2
            cell = replace(cell, fg=rgb) if code == 38 else replace(cell, bg=rgb)
        elif 30 <= code <= 49 or 90 <= code <= 107:
            raise AssertionError(f"unexpected basic colour SGR {code}: not true colour")
        # 4 (underline), 9 (strike) and the like change no colour: ignored here
        i += 1
    return cell


def parse_ansi(text: str) -> list[list[Cell]]:
    """Rows of cells from ANSI text: SGR sets the style; the compositor's cursor moves (one
    at the start of each line) are dropped."""
    rows: list[list[Cell]] = []
    for line in text.split("\n"):
        row: list[Cell] = []
        style = Cell()
        position = 0
        for match in _CSI.finditer(line):
            for char in line[position : match.start()]:
                row.append(replace(style, char=char))
                row.extend(replace(style, char="") for _ in range(cell_len(char) - 1))
            if match.group(2) == "m":
                params = [int(p) for p in match.group(1).split(";") if p] or [0]
                style = _apply(style, params)
            position = match.end()
        for char in line[position:]:
            row.append(replace(style, char=char))
        rows.append(row)
    return rows


def screen_ansi(app: App[object]) -> str:
    """The current screen as the ANSI text a terminal would be sent (true colour)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    update = app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens, simplify=True
    )
    console.print(update)
    return console.export_text(styles=True)


def screen_cells(app: App[object]) -> list[list[Cell]]:
    return parse_ansi(screen_ansi(app))[: app.size[1]]


def line_text(row: list[Cell]) -> str:
    return "".join(cell.char for cell in row)


def find(rows: list[list[Cell]], text: str) -> list[tuple[int, int]]:
    """Every (row, column) where `text` starts on screen."""
    found = []
    for y, row in enumerate(rows):
        line = line_text(row)
        start = line.find(text)
        while start >= 0:
            found.append((y, start))
            start = line.find(text, start + 1)
    return found


def _luminance(rgb: RGB) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: RGB, bg: RGB) -> float:
    """WCAG contrast ratio, 1 (none) to 21 (black on white)."""
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def cell_contrast(
    cell: Cell, default_fg: RGB = (255, 255, 255), default_bg: RGB = (0, 0, 0)
) -> float:
    fg, bg = cell.shown(default_fg, default_bg)
    if cell.dim:  # the terminal draws it half way to the background
        fg = (
            (fg[0] + bg[0]) // 2,
            (fg[1] + bg[1]) // 2,
            (fg[2] + bg[2]) // 2,
        )
    return contrast(fg, bg)
