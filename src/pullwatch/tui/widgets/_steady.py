"""Static text that changes every second without re-arranging the screen.

`Static.update()` asks for a layout pass by default, and a layout pass re-arranges every widget
on the screen: once a second for a countdown, that was most of an idle dashboard's CPU
(benchmarks/idle.py). When the new text takes exactly the lines the old one took, the widget's
size cannot change and only its own region needs repainting.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget


def same_shape(widget: Widget, old: Text | None, new: Text) -> bool:
    """Whether `new` occupies the same lines as `old` in `widget` (so no layout is needed)."""
    width = widget.content_size.width
    if old is None or width <= 0:
        return False
    old_lines, new_lines = old.plain.split("\n"), new.plain.split("\n")
    return len(old_lines) == len(new_lines) and all(
        cell_len(line) <= width for line in (*old_lines, *new_lines)
    )
