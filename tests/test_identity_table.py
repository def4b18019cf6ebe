"""The identity table on its own: a Line-API widget on Textual's public API.

A small app holds one `IdentityTable` filled with hand-made assessments on a fixed clock. What
repaints is read from the regions the table passes to `refresh` (a spy), never from timings.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.pilot import Pilot

from pullwatch.assess import Assessment, Policy, assess
from pullwatch.demo import Demo
from pullwatch.reading import Reading, State
from pullwatch.tui.app import PullwatchApp, make_app
from pullwatch.tui.widgets import identity_table
from pullwatch.tui.widgets.identity_table import CELL_PADDING, IdentityTable

NOW = 1_800_000_000.0
POLICY = Policy(warn_below=30)


def reading(label: str, n: int, *, remaining: int | None = None, at: float = NOW) -> Reading:
    """Identity number `n`: a varied but fixed quota, token and probe age."""
    if n % 13 == 12:
        return Reading(
            label=label,
            username=f"user{n}",
            checked_at=at - n,
            state=State.AUTH_FAILED,
            http_status=401,
            detail="incorrect username or password",
        )
    limit = 200 if n % 4 else 100
    if remaining is None:
        remaining = 0 if n % 11 == 10 else limit - n * 7 % limit
    return Reading(
        label=label,
        username=None if n % 4 == 0 else f"user{n}",
        checked_at=at - n,
        state=State.OK,
        limit=limit,
        remaining=remaining,
        window_seconds=21600 if n % 4 else 3600,
        source=f"203.0.113.{n % 250}",
        http_status=200,
        token_expires_at=None if n % 4 == 0 else at + 30 + 60 * (n % 6),
    )


def assessed(label: str, n: int, **options: object) -> Assessment:
    return assess(reading(label, n, **options), policy=POLICY)  # type: ignore[arg-type]


class TableApp(App[None]):
    """One table, filled on mount; the messages it posts are kept."""

    def __init__(self, count: int, *, labels: list[str] | None = None) -> None:
        super().__init__()
        self.names = labels or [f"id{n:03d}" for n in range(count)]
        self.highlighted: list[str] = []
        self.selected: list[str] = []

    def compose(self) -> ComposeResult:
        yield IdentityTable(id="identities")

    @property
    def table(self) -> IdentityTable:
        return self.query_one(IdentityTable)

    def rows(self) -> dict[str, Assessment]:
        return {label: assessed(label, n) for n, label in enumerate(self.names)}

    def on_mount(self) -> None:
        table = self.table
        table.now = NOW
        table.set_rows(self.names, self.rows())
        table.set_layout(self.size.width - 2)
        table.focus()

    def on_identity_table_row_highlighted(self, event: IdentityTable.RowHighlighted) -> None:
        assert event.control is self.table
        self.highlighted.append(event.label)

    def on_identity_table_row_selected(self, event: IdentityTable.RowSelected) -> None:
        assert event.control is self.table
        self.selected.append(event.label)


def visible_rows(table: IdentityTable) -> int:
    return table.scrollable_content_region.height - 1  # below the header


def line(table: IdentityTable, y: int) -> str:
    return table.render_line(y).text


def cell_region(table: IdentityTable, label: str, key: str) -> Region:
    """Where a cell is on screen, from the planned columns (padding included)."""
    x = 0
    for column in table.columns:
        if column.key == key:
            y = 1 + table.labels.index(label) - table.scroll_offset.y
            return Region(x - table.scroll_offset.x, y, column.width + CELL_PADDING, 1)
        x += column.width + CELL_PADDING
    raise KeyError(key)


class RefreshSpy:
    """Every region the table asks to repaint (None: the whole widget)."""

    def __init__(self, table: IdentityTable, monkeypatch: pytest.MonkeyPatch) -> None:
        self.regions: list[Region | None] = []
        original = table.refresh

        def refresh(*regions: Region, **options: bool) -> IdentityTable:
            self.regions.extend(regions or [None])
            return original(*regions, **options)

        monkeypatch.setattr(table, "refresh", refresh)

    def take(self) -> list[Region | None]:
        taken, self.regions = self.regions, []
        return taken


# -- the cursor: keys, mouse, messages ---------------------------------------------------------


async def test_keys_move_the_cursor_and_enter_selects() -> None:
    app = TableApp(40)
    async with app.run_test(size=(120, 32)) as pilot:
        table = app.table
        assert table.has_focus
        assert table.selected_label == "id000"
        await pilot.press("down", "down")
        assert table.selected_label == "id002" and table.cursor_row == 2
        await pilot.press("up")
        assert table.selected_label == "id001"
        await pilot.press("up", "up")  # stops at the first row
        assert table.cursor_row == 0
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.selected == ["id001"]
        # every move to another identity is announced once, the first fill included
        assert app.highlighted == ["id000", "id001", "id002", "id001", "id000", "id001"]


async def test_page_and_home_end_keep_the_cursor_visible() -> None:
    app = TableApp(40)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.table
        page = visible_rows(table)
        assert 5 < page < 40  # the table scrolls: 40 rows do not fit
        await pilot.press("pagedown")
        assert table.cursor_row == page
        await pilot.press("end")
        assert table.selected_label == "id039"
        assert table.scroll_offset.y == 40 - page  # the last row at the bottom
        assert "id039" in line(table, page)
        assert line(table, 0).split()[:2] == ["Identity", "Bucket"]  # the header stays
        await pilot.press("pageup")
        assert table.cursor_row == 39 - page
        top = table.scroll_offset.y
        assert top <= table.cursor_row < top + page
        await pilot.press("home")
        assert table.cursor_row == 0 and table.scroll_offset.y == 0
        await pilot.press("ctrl+end")
        assert table.cursor_row == 39
        await pilot.press("ctrl+home")
        assert table.cursor_row == 0
        for _ in range(page + 2):  # walking down past the fold scrolls one row at a time
            await pilot.press("down")
        assert table.scroll_offset.y == 3
        assert f"id{page + 2:03d}" in line(table, page)


async def test_a_click_highlights_and_a_second_click_selects() -> None:
    app = TableApp(40)
    async with app.run_test(size=(120, 32)) as pilot:
        table = app.table
        x, y = table.region.x + 3, table.region.y
        await pilot.click(offset=(x, y + 1 + 4))  # the fifth row
        assert table.selected_label == "id004"
        assert app.highlighted[-1] == "id004"
        assert app.selected == []
        await pilot.click(offset=(x, y + 1 + 4))  # the highlighted row: selected
        await pilot.pause()
        assert app.selected == ["id004"]
        await pilot.click(offset=(x, y))  # the header: nothing
        await pilot.pause()
        assert table.selected_label == "id004" and app.selected == ["id004"]
        await pilot.press("end")  # scrolled: a click still picks the row under the pointer
        top = table.scroll_offset.y
        assert top > 0
        await pilot.click(offset=(table.region.x + 60, y + 2))
        assert table.selected_label == f"id{top + 1:03d}"


async def test_the_cursor_stays_on_its_identity_when_rows_are_reordered_or_removed() -> None:
    app = TableApp(20)
    async with app.run_test(size=(120, 32)) as pilot:
        table = app.table
        await pilot.press(*["down"] * 5)
        await pilot.pause()
        assert table.selected_label == "id005"
        seen = len(app.highlighted)
        rebuilds = table.rebuilds
        rows = app.rows()
        reordered = list(reversed(app.names))
        table.set_rows(reordered, rows)  # comparison mode ranks the rows
        await pilot.pause()
        assert table.rebuilds == rebuilds + 1
        assert table.selected_label == "id005" and table.cursor_row == 14
        assert "id005" in line(table, 1 + 14)
        assert len(app.highlighted) == seen  # the same identity: nothing to announce
        without = [label for label in reordered if label != "id005"]
        table.set_rows(without, rows)  # the highlighted identity is deleted
        await pilot.pause()
        assert table.cursor_row == 14  # stays at the same place
        assert app.highlighted[-1] == table.selected_label == "id004"


async def test_the_cursor_stays_on_its_identity_across_a_relayout() -> None:
    app = TableApp(20)
    async with app.run_test(size=(120, 32)) as pilot:
        table = app.table
        await pilot.press(*["down"] * 7)
        wide = [c.key for c in table.columns]
        seen, rebuilds = len(app.highlighted), table.rebuilds
        assert table.set_layout(78)  # a narrower plan: the table is rebuilt
        await pilot.pause()
        assert [c.key for c in table.columns] != wide
        assert table.rebuilds == rebuilds + 1
        assert table.selected_label == "id007" and len(app.highlighted) == seen
        assert not table.set_layout(78)  # the same plan: nothing happens
        assert table.rebuilds == rebuilds + 1


async def test_highlight_moves_the_cursor_to_an_identity_and_scrolls_to_it() -> None:
    app = TableApp(100)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.table
        assert table.highlight("id070")
        await pilot.pause()
        assert table.selected_label == "id070" and app.highlighted[-1] == "id070"
        top = table.scroll_offset.y
        assert top <= 70 < top + visible_rows(table)
        assert not table.highlight("nobody")
        assert table.selected_label == "id070"


# -- what repaints ------------------------------------------------------------------------------


async def test_show_repaints_only_the_cells_that_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    app = TableApp(20)
    async with app.run_test(size=(120, 32)) as pilot:
        table = app.table
        await pilot.pause()
        spy = RefreshSpy(table, monkeypatch)
        rebuilds = table.rebuilds
        table.show(assessed("id003", 3))  # the same reading again: nothing changes
        assert spy.take() == []
        table.show(assessed("id003", 3, remaining=150))  # the count moves: one cell
        assert spy.take() == [cell_region(table, "id003", "remaining")]
        table.show(assessed("id003", 3, remaining=10))  # now low: the count and the state
        assert spy.take() == [
            cell_region(table, "id003", "remaining"),
            cell_region(table, "id003", "state"),
        ]
        later = assess(reading("id003", 3, remaining=150, at=NOW + 3600), policy=POLICY)
        table.show(later)  # three or more cells: their row, once
        assert spy.take() == [Region(0, 1 + 3, table.size.width, 1)]
        assert table.rebuilds == rebuilds
        await pilot.pause()
        assert "150/200" in line(table, 1 + 3)
        assert table.get_cell("id003", "remaining").plain.endswith("150/200")


async def test_a_reading_for_a_row_off_screen_repaints_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = TableApp(1000)
    async with app.run_test(size=(120, 32)) as pilot:
        table = app.table
        await pilot.pause()
        spy = RefreshSpy(table, monkeypatch)
        table.show(assessed("id900", 900, remaining=3))
        assert spy.take() == []  # not on screen: drawn from its new cells when scrolled to
        assert table.highlight("id900")
        await pilot.pause()
        y = 1 + 900 - table.scroll_offset.y
        assert table.get_cell("id900", "remaining").plain.endswith("3/100")
        assert "3/100" in line(table, y) and "low" in line(table, y)


async def test_tick_repaints_only_countdowns_whose_text_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = TableApp(24)
    async with app.run_test(size=(200, 50)) as pilot:  # every row on screen
        table = app.table
        assert visible_rows(table) >= 24
        assert {"token", "age"} <= {c.key for c in table.columns}
        await pilot.pause()
        spy = RefreshSpy(table, monkeypatch)
        rebuilds = table.rebuilds
        table.tick(NOW + 1)  # no countdown crosses a minute: nothing at all
        assert spy.take() == []
        # tokens expire 30 s + n % 6 minutes after NOW: at NOW + 31 every one crosses a minute,
        # and the identities probed 29 s or more before NOW turn one minute old
        changed = {
            (label, key)
            for n, label in enumerate(app.names)
            for key in ("token", "age")
            if (key == "token" and n % 4 and n % 13 != 12) or (key == "age" and n >= 29)
        }
        table.tick(NOW + 31)
        regions = spy.take()
        assert sorted(regions, key=str) == sorted(
            (cell_region(table, label, key) for label, key in changed), key=str
        )
        assert len(regions) == len(changed) > 0
        assert table.rebuilds == rebuilds
        await pilot.pause()
        assert table.get_cell("id001", "token").plain == "<1m"


async def test_a_cell_whose_style_alone_changes_is_repainted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = TableApp(1)  # id000: probed at NOW, no token
    async with app.run_test(size=(200, 40)) as pilot:
        table = app.table
        await pilot.pause()
        spy = RefreshSpy(table, monkeypatch)
        table.tick(NOW + 59)  # "<1m" still
        assert spy.take() == []
        table.tick(NOW + 300)  # "5m"
        assert spy.take() == [cell_region(table, "id000", "age")]
        assert not table.get_cell("id000", "age").style
        table.tick(NOW + 301)  # "5m" again, dimmed once older than 300 s
        assert spy.take() == [cell_region(table, "id000", "age")]
        assert table.get_cell("id000", "age").style == "dim"


# -- 1000 rows, the drawing --------------------------------------------------------------------


async def test_1000_rows_render_and_scroll() -> None:
    app = TableApp(1000)
    async with app.run_test(size=(120, 32)) as pilot:
        table = app.table
        page = visible_rows(table)
        assert table.virtual_size.height == 1 + 1000
        for y in range(1 + page):
            assert table.render_line(y).cell_length == table.size.width
        assert "id000" in line(table, 1) and f"id{page - 1:03d}" in line(table, page)
        await pilot.press("pagedown", "pagedown")
        assert table.cursor_row == 2 * page
        top = table.scroll_offset.y
        assert top <= table.cursor_row < top + page
        assert f"id{top:03d}" in line(table, 1)
        await pilot.press("end")
        assert table.selected_label == "id999"
        assert "id999" in line(table, page)
        assert line(table, 0).startswith(" Identity")
        await pilot.press("home")
        assert "id000" in line(table, 1)


async def test_cells_are_text_never_markup() -> None:
    labels = ["[bold red]x[/]", "[link=x]y[/link]", "plain"]
    app = TableApp(3, labels=labels)
    async with app.run_test(size=(120, 32)) as pilot:
        await pilot.pause()
        table = app.table
        assert table.labels == labels
        assert "[bold red]x[/]" in line(table, 1)
        assert "[link=x]y[/link]" in line(table, 2)


async def test_the_cursor_is_reversed_without_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    app = TableApp(3)
    async with app.run_test(size=(80, 24)):
        assert not app.table.get_component_rich_style("identity-table--cursor").reverse
    monkeypatch.setenv("NO_COLOR", "1")
    app = TableApp(3)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.no_color
        cursor = app.table.get_component_rich_style("identity-table--cursor")
        assert cursor.reverse and cursor.bold


SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 32), id="120x32")]


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_scrolled_with_a_mark(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """40 identities, scrolled past the fold: the header stays, the cursor row mid-screen."""

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, TableApp)
        app.table.set_marks({"id021": "★"})
        await pilot.press("pagedown", "down", "down")
        await pilot.pause()

    assert snap_compare(TableApp(40), terminal_size=size, run_before=run_before)


# -- in the dashboard ---------------------------------------------------------------------------


def dashboard_app(demo: Demo) -> PullwatchApp:
    return make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)


async def test_dashboard_keeps_the_identity_across_a_breakpoint_and_a_ranking(
    demo: Demo,
) -> None:
    app = dashboard_app(demo)
    async with app.run_test(size=(120, 32)) as pilot:
        await app.wait_for_round()
        await pilot.press("down", "down", "down")  # release
        table = app.dashboard.table
        wide = [c.key for c in table.columns]
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert [c.key for c in table.columns] != wide
        assert table.selected_label == "release"
        await pilot.press("c")  # comparison mode: rows ranked by pulls remaining
        await pilot.pause()
        assert table.labels != [i.label for i in app.monitor.identities]
        assert table.selected_label == "release"
        assert app.dashboard.detail.assessment is not None
        assert app.dashboard.detail.assessment.label == "release"
        await pilot.press("down")
        await pilot.pause()
        below = table.labels[table.labels.index("release") + 1]
        assert app.dashboard.detail.assessment.label == below  # RowHighlighted reached the app


# -- public API only ------------------------------------------------------------------------------


def test_the_table_uses_no_private_textual_api() -> None:
    """Every `self._name` the widget uses is its own, and nothing comes from `textual._*`.

    The widget once wrote into DataTable's private attributes, which tied pullwatch to one
    exact Textual release without saying so; this fails if such a use comes back.
    """
    source = Path(inspect.getfile(identity_table)).read_text(encoding="utf-8")
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module not in (None, "__future__"):
            assert node.module is not None
            assert not any(part.startswith("_") for part in node.module.split("."))
            assert not any(alias.name.startswith("_") for alias in node.names)
    table = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "IdentityTable")
    own = {n.name for n in ast.walk(table) if isinstance(n, ast.FunctionDef)}
    for node in ast.walk(table):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            own |= {t.attr for t in targets if isinstance(t, ast.Attribute)}
    used = {
        n.attr
        for n in ast.walk(table)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Name)
        and n.value.id == "self"
        and n.attr.startswith("_")
        and not n.attr.startswith("__")
    }
    assert used <= own, f"private attributes not the widget's own: {sorted(used - own)}"
    assert [ast.unparse(base) for base in table.bases] == ["ScrollView"]
