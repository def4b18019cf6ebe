"""The identity table: one row per identity, updated cell by cell, never rebuilt on a tick.

Columns are planned for the width available (`plan_columns`): at 80 columns the least important
ones drop out and the gauge shrinks; wider terminals get a longer gauge and the state's reason.
A cell is written only when its text changes, and only the changed cells' regions are repainted
(the per-second countdowns too), so an idle dashboard sends almost nothing to the terminal.

`IdentityTable` is a small Line-API widget of its own (`ScrollView.render_line`), built on
Textual's public API only: `Strip`, `Segment`, `refresh(Region)`, `virtual_size`, component
classes. It replaced a `DataTable` subclass that wrote into DataTable's private attributes
(which tied pullwatch to one exact Textual release).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from pullwatch.tui import format as fmt

if TYPE_CHECKING:
    from pullwatch.assess import Assessment

CELL_PADDING = 2  # each cell is padded by one column on each side
NUMBERS = 7  # "180/200"
MIN_BAR = 5
MAX_BAR = 15
STATE_WITH_REASON = 44
LUXURY = 7  # columns dropped before the state's reason is
MAX_STATE = 64


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    priority: int  # lower survives longer when space runs out


def plan_columns(
    available: int, label_width: int, *, extra: Sequence[Column] = (), max_label: int = 16
) -> list[Column]:
    """The columns that fit in `available` cells, in display order.

    The least important columns drop out first; the gauge keeps at least a short bar while it
    can, and spare width goes to the state's reason, then to a longer bar.
    `extra` adds feature columns (e.g. recovery estimates) into the plan by priority.
    """
    label_width = max(8, min(label_width, max_label))
    base = [
        Column("label", "Identity", label_width, 0),
        Column("bucket", "Bucket", 16, 3),
        Column("remaining", "Remaining", NUMBERS + 1 + MIN_BAR, 1),
        Column("window", "Window", 6, 5),
        *extra,
        Column("token", "Token", 6, 6),
        Column("age", "Probed", 6, 7),
        Column("state", "State", 11, 2),
    ]
    chosen = list(base)

    def total(cols: Sequence[Column]) -> int:
        return sum(c.width + CELL_PADDING for c in cols)

    while total(chosen) > available and len(chosen) > 3:
        chosen.remove(max(chosen, key=lambda c: c.priority))
    # the state's reason is worth more than the probe age (which the detail pane shows too)
    reason_room = STATE_WITH_REASON - 11
    while available - total(chosen) < reason_room and any(c.priority >= LUXURY for c in chosen):
        chosen.remove(max(chosen, key=lambda c: c.priority))
    widths = {c.key: c.width for c in chosen}
    if total(chosen) > available and "remaining" in widths:
        widths["remaining"] = NUMBERS  # very narrow: numbers without a bar
    spare = available - sum(w + CELL_PADDING for w in widths.values())
    if spare > 0 and "state" in widths:  # room for a short reason first
        grow = min(spare, STATE_WITH_REASON - widths["state"])
        widths["state"] += grow
        spare -= grow
    if spare > 0 and "remaining" in widths and widths["remaining"] > NUMBERS:
        grow = min(spare, NUMBERS + 1 + MAX_BAR - widths["remaining"])
        widths["remaining"] += grow
        spare -= grow
    if spare > 0 and "state" in widths:
        widths["state"] = min(widths["state"] + spare, MAX_STATE)
    return [Column(c.key, c.title, widths[c.key], c.priority) for c in chosen]


CellRenderer = Callable[["Assessment", float], Text]

HEADER = "identity-table--header"
CURSOR = "identity-table--cursor"
BLANK = Text("")


def _fit(text: Text, width: int) -> Text:
    """The first line of `text`, cropped to `width` cells (the caller pads it, unstyled)."""
    plain = text.plain
    if "\n" in plain:
        text = text.split("\n", allow_blank=True)[0]
    if "\t" in plain:
        text = text.copy()
        text.expand_tabs()
    if text.cell_len > width:
        text = text.copy()
        text.truncate(width)  # crops, or ends in "…" for a Text whose overflow is "ellipsis"
    return text


class IdentityTable(ScrollView, can_focus=True):
    """Rows keyed by identity label, under a fixed header; a row cursor; cells written only when
    their text changes, and only their regions repainted.

    Rendering: `render_line(y)` draws the header at y 0 and row `scroll_y + y - 1` below it.
    Each row's strip is kept until one of its cells changes (or the styles, the cursor or the
    width do), so scrolling and cursor moves redraw rows without re-rendering their cells.
    Cells are the Rich `Text` they are given, never parsed as markup.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {HEADER, CURSOR}

    DEFAULT_CSS = """
    IdentityTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 60%;
        &:focus {
            background-tint: $foreground 5%;
            & > .identity-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .identity-table--header {
                background-tint: $foreground 5%;
            }
        }
        & > .identity-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .identity-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .identity-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        /* NO_COLOR: the cursor row must not depend on its colours: reversed */
        &:nocolor > .identity-table--cursor {
            text-style: reverse;
        }
        &:nocolor:focus > .identity-table--cursor {
            text-style: bold reverse;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "cursor_page_up", "Page up", show=False),
        Binding("pagedown", "cursor_page_down", "Page down", show=False),
        Binding("home,ctrl+home", "cursor_first", "First", show=False),
        Binding("end,ctrl+end", "cursor_last", "Last", show=False),
    ]

    class RowHighlighted(Message):
        """The cursor moved to another identity (by key, click, or the rows changing)."""

        def __init__(self, table: IdentityTable, label: str) -> None:
            super().__init__()
            self.table = table
            self.label = label

        @property
        def control(self) -> IdentityTable:
            return self.table

    class RowSelected(Message):
        """Enter on the highlighted identity, or a click on it."""

        def __init__(self, table: IdentityTable, label: str) -> None:
            super().__init__()
            self.table = table
            self.label = label

        @property
        def control(self) -> IdentityTable:
            return self.table

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._columns_plan: list[Column] = []
        self._widths: dict[str, int] = {}  # column key -> planned width
        self._cell_x: dict[str, int] = {}  # column key -> x of its cell (padding included)
        self._row_width = 0
        self._order: list[str] = []
        self._rows: dict[str, int] = {}  # label -> row index (_order inverted)
        self._assessments: dict[str, Assessment] = {}
        self._shown: dict[str, dict[str, Text]] = {}  # label -> column key -> the cell's text
        self._strips: dict[str, tuple[tuple[object, ...], Strip]] = {}  # label -> drawn row
        self._header: tuple[tuple[object, ...], Strip] | None = None
        self._extra_columns: list[Column] = []
        self._extra_renderers: dict[str, CellRenderer] = {}
        self._ticking: list[str] = ["token", "age", "remaining"]
        self._marks: dict[str, str] = {}
        self._cursor = 0
        self._highlighted: str | None = None  # the identity last announced as highlighted
        self.now: float = 0.0
        self.max_label_width = 16  # fleet mode's `node/identity` labels need more
        self.rebuilds = 0  # how often rows and columns were recreated (never on a tick)

    # -- structure (rare: mount, resize across a breakpoint, identities added or removed) ------

    def add_feature_column(
        self, column: Column, renderer: CellRenderer, *, ticking: bool = False
    ) -> None:
        """A column computed by `renderer(reading, now)`; `ticking` ones follow the clock."""
        self._extra_columns.append(column)
        self._extra_renderers[column.key] = renderer
        if ticking:
            self._ticking.append(column.key)

    def set_layout(self, available: int) -> bool:
        """Re-plan the columns for a width; rebuilds only when the plan changes."""
        label_width = max((len(label) + 2 for label in self._order), default=8)
        plan = plan_columns(
            available, label_width, extra=self._extra_columns, max_label=self.max_label_width
        )
        if plan == self._columns_plan:
            return False
        self._columns_plan = plan
        self._widths = {c.key: c.width for c in plan}
        self._rebuild(self.selected_label)
        return True

    def set_rows(self, labels: Sequence[str], assessments: dict[str, Assessment]) -> None:
        """Show these identities in this order; keeps the cursor on the same identity."""
        self._assessments = {label: assessments[label] for label in labels if label in assessments}
        if list(labels) == self._order:
            for label in labels:
                if label in self._assessments:
                    self.show(self._assessments[label])
            return
        keep = self.selected_label
        self._order = list(labels)
        self._rebuild(keep)

    def _rebuild(self, keep: str | None) -> None:
        """Rows and columns anew; the cursor stays on `keep`, or where it was if `keep` went."""
        self.rebuilds += 1
        self._rows = {label: row for row, label in enumerate(self._order)}
        self._shown = {
            label: {
                c.key: self._cell(c.key, self._assessments.get(label), label)
                for c in self._columns_plan
            }
            for label in self._order
        }
        self._strips.clear()
        self._header = None
        x = 0
        self._cell_x = {}
        for column in self._columns_plan:
            self._cell_x[column.key] = x
            x += column.width + CELL_PADDING
        self._row_width = x
        if keep is not None and keep in self._rows:
            self._cursor = self._rows[keep]
        else:  # the selected identity went away: stay at the same place
            self._cursor = min(max(self._cursor, 0), max(len(self._order) - 1, 0))
        self.virtual_size = Size(self._row_width, 1 + len(self._order))
        self.refresh()
        self._scroll_to_cursor()
        self._announce()

    # -- content ---------------------------------------------------------------------------

    @property
    def selected_label(self) -> str | None:
        """The identity under the cursor."""
        return self._order[self._cursor] if self._order else None

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def labels(self) -> list[str]:
        return list(self._order)

    @property
    def columns(self) -> list[Column]:
        """The columns shown, in display order (each cell is padded by one space either side)."""
        return list(self._columns_plan)

    def get_cell(self, label: str, column: str) -> Text:
        """The text a cell shows (KeyError for an identity not shown or a column not planned)."""
        return self._shown[label][column]

    def set_marks(self, marks: dict[str, str]) -> None:
        """Short markers shown after labels (e.g. "★" for the best identity to use now)."""
        changed = {
            lb for lb in set(self._marks) | set(marks) if self._marks.get(lb) != marks.get(lb)
        }
        self._marks = dict(marks)
        for label in changed:
            if label in self._assessments:
                self.show(self._assessments[label])

    def show(self, assessment: Assessment) -> None:
        """Write an identity's cells (only those whose text changed), repainting only them."""
        label = assessment.label
        cells = self._shown.get(label)
        if cells is None:
            return
        self._assessments[label] = assessment
        changed = [
            column.key
            for column in self._columns_plan
            if self._write(cells, column.key, self._cell(column.key, assessment))
        ]
        self._repaint(label, changed)

    def tick(self, now: float) -> None:
        """The once-a-second update: only the time cells, each repainting only itself."""
        self.now = now
        ticking = [c.key for c in self._columns_plan if c.key in self._ticking]
        if not ticking:
            return
        for label in self._order:
            assessment = self._assessments.get(label)
            if assessment is None:
                continue
            cells = self._shown[label]
            changed = [
                key for key in ticking if self._write(cells, key, self._cell(key, assessment))
            ]
            self._repaint(label, changed)

    def _cell(self, key: str, assessment: Assessment | None, label: str = "") -> Text:
        """One cell's text for one identity; before its first assessment only its label."""
        if assessment is None:
            return Text(label, style="bold") if key == "label" and label else BLANK
        reading = assessment.reading
        width = self._widths.get(key, 10)
        if key == "label":
            text = Text(reading.label, style="bold")
            mark = self._marks.get(reading.label)
            if mark:
                text.append(f" {mark}", style="bold green")
            return text
        if key == "bucket":
            quota = assessment.quota
            return fmt.bucket_text(reading.source or (quota.source if quota else None))
        if key == "remaining":
            stale = assessment.quota is not None and assessment.quota.stale
            room = 8 + (8 if stale else 0)  # a stale gauge gives up bar for its age
            return fmt.gauge(assessment, max(width - room, 0), self.now)
        if key == "window":
            return fmt.window_text(assessment)
        if key == "token":
            return fmt.token_countdown(reading.token_expires_at, self.now)
        if key == "age":
            return fmt.age_text(reading.checked_at if reading.probed else None, self.now)
        if key == "state":
            return fmt.state_text(assessment, with_reason=width > 16, width=width)
        renderer = self._extra_renderers.get(key)
        return renderer(assessment, self.now) if renderer else BLANK

    @staticmethod
    def _write(cells: dict[str, Text], key: str, value: Text) -> bool:
        """Keep a cell's new text if it differs (words, spans or style); whether it did."""
        old = cells.get(key)
        if old is not None and old == value and old.style == value.style:
            return False
        cells[key] = value
        return True

    def _repaint(self, label: str, keys: Sequence[str]) -> None:
        """Repaint these cells of one row: the cells (one or two), else the row.

        A row off screen is only forgotten: it is drawn from its new cells when it scrolls into
        view, so a round of 1000 readings or a tick of 1000 countdowns asks for a repaint of
        the rows on screen only.
        """
        if not keys:
            return
        self._strips.pop(label, None)
        scroll_x, scroll_y = self.scroll_offset
        y = 1 + self._rows[label] - scroll_y
        width, height = self.size  # a row under a horizontal scrollbar is repainted too
        if not 1 <= y < height:
            return
        if len(keys) > 2:
            self.refresh(Region(0, y, width, 1))
            return
        for key in keys:
            self.refresh(
                Region(self._cell_x[key] - scroll_x, y, self._widths[key] + CELL_PADDING, 1)
            )

    # -- the cursor ------------------------------------------------------------------------

    def highlight(self, label: str) -> bool:
        """Put the cursor on this identity (scrolled into view); whether it is shown."""
        row = self._rows.get(label)
        if row is None:
            return False
        self._move(row)
        return True

    def _move(self, row: int) -> None:
        if not self._order:
            return
        row = min(max(row, 0), len(self._order) - 1)
        if row != self._cursor:
            self.refresh_line(1 + self._cursor)
            self._cursor = row
            self.refresh_line(1 + row)
        self._scroll_to_cursor()
        self._announce()

    def _visible_rows(self) -> int:
        return self.scrollable_content_region.height - 1  # below the header

    def _scroll_to_cursor(self) -> None:
        visible = self._visible_rows()
        if visible < 1 or not self._order:
            return  # not laid out yet: on_resize comes back here
        top = self.scroll_offset.y
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False)

    def _announce(self) -> None:
        label = self.selected_label
        if label != self._highlighted:
            self._highlighted = label
            if label is not None:
                self.post_message(self.RowHighlighted(self, label))

    def _page(self, direction: int) -> None:
        page = max(1, self._visible_rows())
        self.scroll_to(y=self.scroll_offset.y + direction * page, animate=False)
        self._move(self._cursor + direction * page)

    def action_cursor_up(self) -> None:
        self._move(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self._cursor + 1)

    def action_cursor_page_up(self) -> None:
        self._page(-1)

    def action_cursor_page_down(self) -> None:
        self._page(1)

    def action_cursor_first(self) -> None:
        self._move(0)

    def action_cursor_last(self) -> None:
        self._move(len(self._order) - 1)

    def action_select_cursor(self) -> None:
        label = self.selected_label
        if label is not None:
            self.post_message(self.RowSelected(self, label))

    def on_click(self, event: events.Click) -> None:
        """A click highlights a row; a click on the highlighted row selects it."""
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:  # the header
            return
        row = self.scroll_offset.y + offset.y - 1
        if not 0 <= row < len(self._order):
            return
        event.stop()
        if row == self._cursor:
            self.post_message(self.RowSelected(self, self._order[row]))
        else:
            self._move(row)

    def on_resize(self, event: events.Resize) -> None:
        self._scroll_to_cursor()

    # -- drawing ---------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        scroll_x, scroll_y = self.scroll_offset
        if y == 0:
            strip = self._header_strip(width)
        else:
            row = scroll_y + y - 1
            if not 0 <= row < len(self._order):
                return Strip.blank(width, base)
            strip = self._row_strip(row, base, width)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _header_strip(self, width: int) -> Strip:
        style = self.get_component_rich_style(HEADER)
        key: tuple[object, ...] = (style, width, tuple(self._columns_plan))
        if self._header is not None and self._header[0] == key:
            return self._header[1]
        titles = {column.key: Text(column.title) for column in self._columns_plan}
        strip = self._draw(titles, style, None, style, width)
        self._header = (key, strip)
        return strip

    def _row_strip(self, row: int, base: Style, width: int) -> Strip:
        label = self._order[row]
        if row == self._cursor:
            cursor = self.get_component_rich_style(CURSOR)
            key: tuple[object, ...] = (True, base, cursor, width)
            pre = base + cursor
            post: Style | None = Style.from_color(cursor.color)  # over the cells' own colours
        else:
            key, pre, post = (False, base, width), base, None
        cached = self._strips.get(label)
        if cached is not None and cached[0] == key:
            return cached[1]
        strip = self._draw(self._shown[label], pre, post, pre, width)
        self._strips[label] = (key, strip)
        return strip

    def _draw(
        self, cells: dict[str, Text], pre: Style, post: Style | None, fill: Style, width: int
    ) -> Strip:
        """One row: each cell padded by a space either side, under `pre` and over `post`,
        then `fill` to the widget's width."""
        console: Console = self.app.console
        segments: list[Segment] = []
        for column in self._columns_plan:
            text = _fit(cells.get(column.key, BLANK), column.width)
            segments.append(Segment(" "))
            if text.spans:
                segments.extend(text.render(console))
            elif text.plain:  # Text.render leaves out the style of a Text without spans
                segments.append(Segment(text.plain, console.get_style(text.style)))
            missing = column.width - text.cell_len
            segments.append(Segment(" " * (missing + 1)))
        drawn: Iterable[Segment] = Segment.apply_style(segments, pre, post)
        room = width - self._row_width
        if room > 0:
            drawn = [*drawn, Segment(" " * room, fill)]
        return Strip(drawn, max(width, self._row_width)).simplify()
