"""The identity table: one keyed row per identity, updated cell by cell, never rebuilt on a tick.

Columns are planned for the width available (`plan_columns`): at 80 columns the least important
ones drop out and the gauge shrinks; wider terminals get a longer gauge and the state's reason.
A cell is written only when its text changes, and the per-second countdown cells repaint only
their own region, so an idle dashboard sends almost nothing to the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from pullwatch.assess import Assessment
from pullwatch.tui import format as fmt

CELL_PADDING = 2  # DataTable pads each cell by one column on each side
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


CellRenderer = Callable[[Assessment, float], Text]


class IdentityTable(DataTable[Text]):
    """Rows keyed by identity label; cells written only when their text changes."""

    DEFAULT_CSS = """
    IdentityTable { height: auto; max-height: 60%; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._columns_plan: list[Column] = []
        self._order: list[str] = []
        self._labels: set[str] = set()  # _order as a set: a lookup per reading
        self._widths: dict[str, int] = {}  # column key -> planned width
        self._geometry: tuple[dict[str, tuple[int, int]], int] | None = None  # cells x, width
        self._assessments: dict[str, Assessment] = {}
        self._shown: dict[tuple[str, str], Text] = {}
        self._extra_columns: list[Column] = []
        self._extra_renderers: dict[str, CellRenderer] = {}
        self._ticking: list[str] = ["token", "age", "remaining"]
        self._marks: dict[str, str] = {}
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
        self._rebuild()
        return True

    def set_rows(self, labels: Sequence[str], assessments: dict[str, Assessment]) -> None:
        """Show these identities in this order; keeps the cursor on the same identity."""
        self._assessments = {label: assessments[label] for label in labels if label in assessments}
        if list(labels) == self._order:
            for label in labels:
                self.show(self._assessments[label])
            return
        self._order = list(labels)
        self._labels = set(self._order)
        self._rebuild()

    def _rebuild(self) -> None:
        keep = self.selected_label
        keep_row = self.cursor_row
        self.rebuilds += 1
        self.clear(columns=True)
        self._shown.clear()
        self._geometry = None
        for column in self._columns_plan:
            self.add_column(column.title, width=column.width, key=column.key)
        for label in self._order:
            assessment = self._assessments.get(label)
            cells = [self._cell(column.key, assessment) for column in self._columns_plan]
            self.add_row(*cells, key=label)
            for column, cell in zip(self._columns_plan, cells, strict=True):
                self._shown[(label, column.key)] = cell
        if keep in self._order:
            self.move_cursor(row=self._order.index(keep), animate=False)
        elif self._order:  # the selected identity went away: stay at the same place
            self.move_cursor(row=min(max(keep_row, 0), len(self._order) - 1), animate=False)

    # -- content ---------------------------------------------------------------------------

    @property
    def selected_label(self) -> str | None:
        if not self._order or self.row_count == 0:
            return None
        row = min(max(self.cursor_row, 0), self.row_count - 1)
        key = self._row_locations.get_key(row)  # asked for every reading: no Coordinate
        return None if key is None else key.value

    @property
    def labels(self) -> list[str]:
        return list(self._order)

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
        if label not in self._labels:
            return
        self._assessments[label] = assessment
        row = self._data.get(RowKey(label))
        changed = [
            column.key
            for column in self._columns_plan
            if self._write(label, column.key, self._cell(column.key, assessment), row)
        ]
        self._repaint(label, changed)

    def tick(self, now: float) -> None:
        """The once-a-second update: only the time cells, each repainting only itself."""
        self.now = now
        planned = {c.key for c in self._columns_plan}
        ticking = [key for key in self._ticking if key in planned]
        for label in self._order:
            assessment = self._assessments.get(label)
            if assessment is None:
                continue
            row = self._data.get(RowKey(label))
            changed = [
                key for key in ticking if self._write(label, key, self._cell(key, assessment), row)
            ]
            self._repaint(label, changed)

    def _cell(self, key: str, assessment: Assessment | None) -> Text:
        """One cell's text for one identity (named apart from Widget._render, which it is not)."""
        if assessment is None:
            return Text("")
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
        return renderer(assessment, self.now) if renderer else Text("")

    def _write(self, label: str, key: str, value: Text, row: dict[ColumnKey, Text] | None) -> bool:
        """Store a cell's text in its `row` if it changed (`_repaint` shows it); whether it did."""
        if self._shown.get((label, key)) == value:
            return False
        self._shown[(label, key)] = value
        if row is None:  # no rows yet: the next rebuild shows it
            return False
        row[ColumnKey(key)] = value
        return True

    def _cells(self) -> tuple[dict[str, tuple[int, int]], int]:
        """Each column's cell x and width, and the row's width (fixed widths: per layout)."""
        if self._geometry is None:
            x, cells = self._row_label_column_width, {}
            for column in self.ordered_columns:
                width = column.get_render_width(self)
                cells[str(column.key.value)] = (x, width)
                x += width
            self._geometry = (cells, x)
        return self._geometry

    def _repaint(self, label: str, keys: Sequence[str]) -> None:
        """Repaint these cells of one row: the cells (one or two), else the row.

        What `update_cell` does without its whole-table refresh, and what `refresh_coordinate`
        does without its cost per call of summing the heights of every row above (rows here
        are one line high): a round of 1000 readings or a tick of 1000 countdowns stays linear.
        """
        if not keys:
            return
        index = self._row_locations.get(RowKey(label))
        if index is None:
            return
        self._update_count += 1  # the table's line caches are keyed on it
        y = index + (self.header_height if self.show_header else 0)
        cells, row_width = self._cells()
        if len(keys) > 2:
            self._refresh_region(Region(0, y, row_width, 1))
            return
        for key in keys:
            if key in cells:
                x, width = cells[key]
                self._refresh_region(Region(x, y, width, 1))
