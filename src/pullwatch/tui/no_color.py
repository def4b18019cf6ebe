"""`NO_COLOR`: text keeps its contrast; what matters stands out by bold and reverse video.

Under NO_COLOR Textual draws every colour as the grey of the same luminance. Red is dark, so
the states that matter most - `exhausted`, `auth failed`, `error` (red), `throttled` (magenta) -
came out grey 237 on the 235 background, and reverse video made `exhausted` as faint. pullwatch
hands Textual an ANSI palette in which every named colour is the text colour (black stays
dark): named colours then turn into the text's own grey, and what stands out is what is bold or
reversed - every bad state is (`format.STATE_STYLES`). Text set in theme colours uses the
`$text-*` variants, which are light enough to read in grey.
"""

from __future__ import annotations

from typing import Any

from rich.terminal_theme import TerminalTheme
from textual.app import App

_DARK_TEXT = (224, 224, 224)  # textual-dark's foreground
_LIGHT_TEXT = (32, 32, 32)


def _palette(text: tuple[int, int, int], background: tuple[int, int, int]) -> TerminalTheme:
    """Every colour the text colour, but black (and white on a light theme) stays itself."""
    dark = sum(background) < sum(text)
    black, white = (0, 0, 0), (255, 255, 255)
    normal = [black, *[text] * 6, text if dark else white]
    bright = [(160, 160, 160) if dark else text, *[text] * 6, text if dark else white]
    return TerminalTheme(background, text, normal, bright)


LEGIBLE_DARK = _palette(_DARK_TEXT, (18, 18, 18))
LEGIBLE_LIGHT = _palette(_LIGHT_TEXT, (240, 240, 240))


def keep_contrast(app: App[Any]) -> None:
    """Under NO_COLOR (`app.no_color`), named colours are drawn as plain text."""
    if app.no_color:
        app.ansi_theme_dark = LEGIBLE_DARK
        app.ansi_theme_light = LEGIBLE_LIGHT
