"""The fleet dashboard: rows keyed node/identity, keys, stale rows and the Prometheus-down screen.

The app reads a `FleetSource`; here a fake one hands out fixed snapshots (tests/fleet_samples.py)
on a frozen clock, so what is on screen is the same on every run. The dashboard against a real
Prometheus is in test_prometheus_contrib.py.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import pytest
from textual.pilot import Pilot

from fleet_samples import NOW, SAMPLE_PROMETHEUS, sample_fleet
from pullwatch.clock import ManualClock
from pullwatch.fleet import FleetError, FleetErrorKind, FleetSnapshot
from pullwatch.tui.fleet import FleetApp, FleetHelpScreen

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 32), id="120x32")]
DOWN = FleetError(FleetErrorKind.CONNECT, "connection refused (is Prometheus running there?)",
                  SAMPLE_PROMETHEUS)  # fmt: skip


class FakeSource:
    """Hands out `outcomes` one per read (the last one again and again); counts reads."""

    def __init__(self, outcomes: Sequence[FleetSnapshot | FleetError]) -> None:
        self.outcomes = list(outcomes)
        self.reads = 0
        self.closed = False

    @property
    def url(self) -> str:
        return SAMPLE_PROMETHEUS

    async def read(self) -> FleetSnapshot:
        outcome = self.outcomes[min(self.reads, len(self.outcomes) - 1)]
        self.reads += 1
        if isinstance(outcome, FleetError):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        self.closed = True


def fleet_app(*outcomes: FleetSnapshot | FleetError, clock: ManualClock | None = None) -> FleetApp:
    return FleetApp(
        FakeSource(outcomes or (sample_fleet(),)),
        interval=30,
        clock=clock or ManualClock(NOW),
        watch_terminal=False,
    )


def screen_text(app: Any) -> str:
    svg = app.export_screenshot()
    lines: dict[str, list[str]] = {}
    for line, text in re.findall(r'clip-path="url\(#[\w-]+-line-(\d+)\)">([^<]*)<', svg):
        lines.setdefault(line, []).append(html.unescape(text).replace("\xa0", " "))
    return "\n".join("".join(parts) for _, parts in sorted(lines.items(), key=lambda i: int(i[0])))


async def started(pilot: Pilot[None]) -> FleetApp:
    app = pilot.app
    assert isinstance(app, FleetApp)
    await app.wait_for_reads(1)
    await pilot.pause()
    return app


def table(app: FleetApp) -> Any:
    screen = app.fleet_screen
    assert screen is not None
    return screen.table


async def test_rows_are_keyed_node_slash_identity_and_the_detail_follows_the_cursor() -> None:
    app = fleet_app()
    async with app.run_test(size=(120, 32)) as pilot:
        await started(pilot)
        rows = table(app)
        assert rows.labels == [
            "build-01/anonymous", "build-01/ci-bot", "build-02/anonymous", "build-02/ci-bot",
            "build-03/anonymous", "scanner/anonymous", "scanner/release", "scanner/scanbot",
        ]  # fmt: skip
        text = screen_text(app)
        assert "8 identities on 4 nodes" in text
        assert "stale: build-03" in text  # the status line names the stale node
        assert "unknown  stale: scrape failing; was ok" in text
        for shown in ("71/100", "0/100", "9/100", "unlimited", "88/100 7m"):
            assert shown in text, shown
        await pilot.press("down", "down", "down", "down")
        await pilot.pause()
        assert rows.selected_label == "build-03/anonymous"
        detail = screen_text(app)
        assert "build-03/anonymous  anonymous · 192.0.2.44" in detail
        assert "scraped from build-03.example:9723 (job pullwatch)" in detail
        assert "Prometheus cannot scrape pullwatch on build-03" in detail
        assert "88 of 100 per 6 h as of 7m ago" in detail


async def test_keys_refresh_compare_help_enter_and_quit() -> None:
    app = fleet_app()
    source = app.source
    assert isinstance(source, FakeSource)
    async with app.run_test(size=(120, 32)) as pilot:
        await started(pilot)
        await pilot.press("r")
        await app.wait_for_reads(2)
        assert source.reads == 2
        await pilot.press("c")
        await pilot.pause()
        rows = table(app)
        assert rows.labels[0] == "scanner/release"  # not metered: the most room
        assert "scanner/release ★" in screen_text(app)
        assert "best first" in screen_text(app)
        assert rows.labels.index("build-01/ci-bot") < rows.labels.index("build-01/anonymous")
        assert rows.labels[-1] == "build-03/anonymous" or "build-03/anonymous" in rows.labels[-3:]
        await pilot.press("c")
        await pilot.pause()
        assert rows.labels[0] == "build-01/anonymous" and "★" not in screen_text(app)
        await pilot.press("enter")
        await pilot.pause()
        notes = [n.message for n in app._notifications]
        assert any(
            "read-only: nothing to probe" in note
            and "`pullwatch head anonymous` on build-01" in note
            for note in notes
        ), notes
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, FleetHelpScreen)
        assert "A row is stale" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("q")
    assert source.closed  # the reader's connections are closed on the way out


async def test_prometheus_down_turns_every_row_stale_under_a_red_banner() -> None:
    clock = ManualClock(NOW)
    app = fleet_app(sample_fleet(), DOWN, sample_fleet(NOW + 90), clock=clock)
    async with app.run_test(size=(120, 32)) as pilot:
        await started(pilot)
        clock.advance(60)
        await pilot.press("r")
        await app.wait_for_reads(2)
        await pilot.pause()
        text = screen_text(app)
        assert f"Prometheus at {SAMPLE_PROMETHEUS}: connection refused" in text
        assert "Every row is its last answer, 1m ago, marked stale." in text
        snapshot = app.snapshot
        assert snapshot is not None and snapshot.failed
        assert all(row.stale for row in snapshot.rows)
        assert "stale: Prometheus down; was ok" in text
        assert "71/100 1m" in text  # build-01's numbers, dimmed with their age
        clock.advance(30)
        await pilot.press("r")  # Prometheus is back
        await app.wait_for_reads(3)
        await pilot.pause()
        text = screen_text(app)
        assert "connection refused" not in text and "stale: Prometheus down" not in text
        snapshot = app.snapshot
        assert snapshot is not None and not snapshot.failed


async def test_no_answer_yet_and_no_metrics_are_said_plainly() -> None:
    app = fleet_app(DOWN)
    async with app.run_test(size=(100, 24)) as pilot:
        await started(pilot)
        text = screen_text(app)
        assert "connection refused" in text and "No rows: nothing has been read yet." in text
        assert "Prometheus does not answer" in text  # the detail pane's title
    empty = FleetSnapshot(prometheus=SAMPLE_PROMETHEUS, fetched_at=NOW, answered_at=NOW)
    app = fleet_app(empty)
    async with app.run_test(size=(100, 24)) as pilot:
        await started(pilot)
        text = screen_text(app)
        assert "answers, but has no pullwatch metrics" in text
        assert "No pullwatch metrics" in text


async def test_a_bug_in_a_read_is_said_not_raised() -> None:
    class Broken(FakeSource):
        async def read(self) -> FleetSnapshot:
            raise ValueError("boom")

    app = FleetApp(Broken([]), clock=ManualClock(NOW), watch_terminal=False)
    async with app.run_test(size=(100, 24)) as pilot:
        await started(pilot)
        assert "internal error: ValueError: boom (please report it)" in screen_text(app)


async def test_it_refreshes_on_its_interval() -> None:
    source = FakeSource([sample_fleet()])
    app = FleetApp(source, interval=2, clock=ManualClock(NOW), watch_terminal=False)
    async with app.run_test(size=(100, 24)) as pilot:
        await started(pilot)
        assert "next refresh 2s" in screen_text(app)
        await app.wait_for_reads(2)  # about 2 s later, by itself
        assert source.reads >= 2


# -- snapshots ----------------------------------------------------------------------------------


def after(*keys: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await started(pilot)
        await pilot.press(*keys)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_fleet_dashboard(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(fleet_app(), terminal_size=size, run_before=after("down", "down"))


def test_fleet_comparison(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(fleet_app(), terminal_size=(120, 32), run_before=after("c"))


def test_fleet_prometheus_down(snap_compare) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock(NOW)

    async def run_before(pilot: Pilot[None]) -> None:
        app = await started(pilot)
        clock.advance(120)
        await pilot.press("r")
        await app.wait_for_reads(2)
        await pilot.pause()

    app = fleet_app(sample_fleet(), DOWN, clock=clock)
    assert snap_compare(app, terminal_size=(120, 32), run_before=run_before)
