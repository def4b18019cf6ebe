"""NO_COLOR: the states that matter stand out by bold or reverse video, and every word keeps
a readable contrast - checked on what the terminal is sent, cell by cell (screenkit)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from pullwatch.demo import Demo
from pullwatch.tui.app import PullwatchApp, make_app
from screenkit import Cell, cell_contrast, find, line_text, screen_cells

READABLE = 4.5  # WCAG AA for body text
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
# The demo's identities in table order, and the state each is driven into.
STATES = {
    "anonymous": "error",
    "ci-bot": "ok",
    "dev-laptop": "low",
    "release": "throttled",
    "old-bot": "auth failed",
    "scanner": "exhausted",
}
BAD = ("exhausted", "auth failed", "throttled", "error", "low")


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def app_for(demo: Demo) -> PullwatchApp:
    return make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)


async def every_state(pilot: Pilot[None], demo: Demo) -> None:
    """The demo's ok, low, exhausted and auth failed, plus throttled (an abuse-limit 429 on
    release) and error (a 503 on anonymous, after a good reading: its numbers go stale)."""
    app = pilot.app
    assert isinstance(app, PullwatchApp)
    app.monitor.rng = random.Random(0)  # the backoff's jitter, shown in the detail pane
    await app.wait_for_round()
    await app.workers.wait_for_complete()
    faults = {"release": {"hap429": {"any"}}, "anonymous": {"status": {"head": 503}}}
    for label, switches in faults.items():
        for name, value in switches.items():
            setattr(demo.model.faults, name, value)
        app.refresh_identity(label)
        await app.workers.wait_for_complete()
        demo.model.faults.clear()
    await pilot.pause()
    assert {a.label: a.state.label for a in app.assessments()} == STATES


def row_of(rows: list[list[Cell]], label: str) -> list[Cell]:
    """The table row that starts with `label`."""
    matches = [row for row in rows if line_text(row).strip().startswith(f"{label} ")]
    assert matches, f"no row for {label}"
    return matches[0]


def check_state(row: list[Cell], word: str, where: str) -> None:
    """`word` bold or reversed and readable; the reason after it readable, never dim."""
    line = line_text(row)
    start = line.find(f"{word}  ")
    assert start >= 0, (where, line)
    label = row[start : start + len(word)]
    for cell in label:
        assert cell.bold or cell.reverse, (where, word, cell)
        assert not cell.dim and cell_contrast(cell) >= READABLE, (where, word, cell)
    rest = row[start + len(word) :]
    text = line_text(rest)
    begin = len(text) - len(text.lstrip())
    gap = text.find("  ", begin)  # the reason runs to the next gap (a border, a column)
    reason = [c for c in rest[begin : gap if gap >= 0 else None] if c.char.strip()]
    assert reason, (where, line)
    for cell in reason:
        assert not cell.dim and cell_contrast(cell) >= READABLE, (where, word, cell)


@pytest.mark.parametrize("size", SIZES)
async def test_bad_states_stand_out_without_colour(
    demo: Demo, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for(demo)
    async with app.run_test(size=size) as pilot:
        assert app.no_color
        await every_state(pilot, demo)
        labels = list(STATES)
        for index, label in enumerate(labels):  # each row selected in turn: the detail pane
            rows = screen_cells(app)
            word = STATES[label]
            if word in BAD:
                check_state(row_of(rows, label), word, f"table row {label}")
                detail = row_of(rows, "State")
                check_state(detail, word, f"detail pane of {label}")
            if index + 1 < len(labels):
                await pilot.press("down")
                await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
async def test_no_text_is_grey_on_grey_without_colour(
    demo: Demo, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    """Every letter of the dashboard reads at 3:1 or better (dimmed hints included); the help's
    state names and the form's errors stand out as the table's do."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for(demo)
    async with app.run_test(size=size) as pilot:
        await every_state(pilot, demo)
        faint = [
            (line_text(row).strip()[:50], cell)
            for row in screen_cells(app)
            for cell in row
            if cell.char.isalnum() and cell_contrast(cell) < 3
        ]
        assert not faint, faint[:5]
        await pilot.press("question_mark")
        await pilot.pause()
        rows = screen_cells(app)
        if size[1] >= 40:  # at 24 lines the states are below the keys: scrolled to
            for word in BAD[:4]:  # "low" is also a word of the help's prose
                (y, _), *_ = find(rows, f"{word}  ")
                check_state(rows[y], word, f"help: {word}")
        await pilot.press("escape")
        await pilot.press("a")
        await until(lambda: isinstance(app.focused, Input), "the form")
        await pilot.press(*"ci-bot", "ctrl+s")
        await until(lambda: bool(find(screen_cells(app), "an identity called")), "the error")
        rows = screen_cells(app)
        [(y, x)] = find(rows, "an identity called")
        for cell in rows[y][x : x + 18]:
            assert cell.char == " " or (cell.bold and cell_contrast(cell) >= READABLE), cell


async def test_states_keep_their_colours_with_colour(demo: Demo) -> None:
    """The palette change is for NO_COLOR only: with colour, exhausted is still red."""
    app = app_for(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        assert not app.no_color
        await every_state(pilot, demo)
        row = row_of(screen_cells(app), "scanner")
        start = line_text(row).find("exhausted")
        cell = row[start]
        assert cell.reverse and cell.fg is not None  # red, reversed
        assert cell.fg[0] > 2 * max(cell.fg[1], 1), cell
