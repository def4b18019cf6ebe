"""History in the dashboard: recovery countdowns against ground truth, comparison, alerts."""

from __future__ import annotations

from rich.text import Text
from textual.pilot import Pilot

from pullwatch.clock import ManualClock
from pullwatch.demo import Demo
from pullwatch.history import History
from pullwatch.tui.app import PullwatchApp, make_app

SIZE = (120, 32)
WINDOW = 3600  # the demo's anonymous bucket: 100 per hour


def cell(app: PullwatchApp, label: str, column: str) -> str:
    value = app.dashboard.table.get_cell(label, column)
    return value.plain if isinstance(value, Text) else str(value)


async def refresh(app: PullwatchApp, pilot: Pilot[None]) -> None:
    await pilot.press("r")
    await app.wait_for_round()
    app._tick()
    await pilot.pause()


async def test_recovers_counts_down_and_resets_when_pulls_return(
    demo: Demo, clock: ManualClock
) -> None:
    t0 = clock.time()
    model = demo.model
    app = make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)

    def bound_holds() -> None:
        """The estimate never promises pulls back earlier than the simulator returns them."""
        recovery = app._recent.recovery(
            (app.runtime.registry, app.runtime.repository, "203.0.113.7")
        )
        truth = model.pull_times("anonymous")
        assert recovery is not None and recovery.deficit == len(truth)
        if truth:
            assert recovery.next_at is not None and recovery.full_at is not None
            assert recovery.next_at >= min(truth) + WINDOW
            assert recovery.full_at >= max(truth) + WINDOW

    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.pause()
        assert cell(app, "anonymous", "remaining").endswith("76/100")
        assert cell(app, "anonymous", "recovers") == "≤ 1h00m"  # one reading: the window
        bound_holds()

        clock.advance(600)
        app._tick()
        assert cell(app, "anonymous", "recovers") == "≤ 50m"  # counting down

        model.consume("anonymous", 10)
        clock.advance(60)
        await refresh(app, pilot)
        assert cell(app, "anonymous", "remaining").endswith("66/100")
        assert cell(app, "anonymous", "recovers") == "≤ 1h00m"  # the new pulls' bound
        bound_holds()
        recovery = app._recent.recovery(
            (app.runtime.registry, app.runtime.repository, "203.0.113.7")
        )
        assert recovery is not None and recovery.next_at == t0 + WINDOW  # the first 24 first

        clock.set(t0 + WINDOW + 1)  # the 24 pulls from before start are back
        await refresh(app, pilot)
        assert cell(app, "anonymous", "remaining").endswith("90/100")
        bound_holds()
        recovery = app._recent.recovery(
            (app.runtime.registry, app.runtime.repository, "203.0.113.7")
        )
        assert recovery is not None and recovery.deficit == 10
        # every drop of these 10 was watched: within one refresh interval of the truth
        assert recovery.full_at is not None
        assert recovery.full_at - (max(model.pull_times("anonymous")) + WINDOW) <= 60

        clock.set(t0 + 660 + WINDOW + 1)
        await refresh(app, pilot)
        assert cell(app, "anonymous", "remaining").endswith("100/100")
        assert cell(app, "anonymous", "recovers") == "full"  # reset: nothing to recover
        detail = str(app.dashboard.detail.query_one("#detail-clock").render())
        assert "full quota" in detail

    assert app._writer is not None
    with History(demo.runtime.paths.history_db) as history:
        anonymous = history.for_label("anonymous")
    assert [r.remaining for r in anonymous] == [76, 66, 90, 100]


async def test_exhausted_shows_the_next_pull_back(demo: Demo, clock: ManualClock) -> None:
    app = make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        demo.model.consume("anonymous", 76)
        clock.advance(120)
        await refresh(app, pilot)
        assert cell(app, "anonymous", "state").startswith("exhausted")
        assert cell(app, "anonymous", "recovers") == "+1 ≤ 58m"  # the oldest 24 were due by t0+1h


async def test_comparison_mode_sorts_and_marks_the_best(demo: Demo) -> None:
    app = make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("down")  # ci-bot
        await pilot.press("c")
        await pilot.pause()
        table = app.dashboard.table
        assert table.labels == [
            "release",
            "ci-bot",
            "anonymous",
            "dev-laptop",
            "scanner",
            "old-bot",
        ]
        assert cell(app, "release", "label") == "release ★"
        assert table.selected_label == "ci-bot"  # the cursor stays on the same identity
        assert "best first" in app.dashboard.status.render_text().plain
        await pilot.press("c")
        await pilot.pause()
        assert table.labels[0] == "anonymous" and cell(app, "release", "label") == "release"


async def test_crossing_into_exhausted_alerts_once_and_rings_once(
    demo: Demo, clock: ManualClock
) -> None:
    app = make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)
    alerts: list[str] = []
    bells: list[None] = []
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        original = app.notify

        def record(message: str, **kwargs: object) -> None:
            if kwargs.get("title") == "pullwatch alert":
                alerts.append(message)
            original(message, **kwargs)  # type: ignore[arg-type]

        app.notify = record  # type: ignore[method-assign]
        app.bell = lambda: bells.append(None)  # type: ignore[method-assign]
        demo.model.consume("devjane", 29)  # dev-laptop: low -> exhausted
        clock.advance(60)
        await refresh(app, pilot)
        clock.advance(60)
        await refresh(app, pilot)  # still exhausted: no repeat
    assert alerts == ["dev-laptop is exhausted: pulls now fail with 429"]
    assert len(bells) == 1


async def test_runs_out_column_detail_and_one_notice_per_crossing(
    demo: Demo, clock: ManualClock
) -> None:
    """A client pulling 5 a minute from the anonymous bucket (76 left): after three readings
    that saw pulls the dashboard says when it runs out, the detail pane says on what, and
    crossing into the warn_within (30 min) raises one notice, not one per round."""
    app = make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)
    notices: list[str] = []
    async with app.run_test(size=(140, 36)) as pilot:
        app.notify = lambda message, **_: notices.append(str(message))  # type: ignore[method-assign]
        await app.wait_for_round()
        await pilot.pause()
        assert cell(app, "anonymous", "runsout") == "…"  # one reading: not enough yet
        for _ in range(5):
            demo.model.consume("anonymous", 5)
            clock.advance(60)
            await refresh(app, pilot)
        runs_out = cell(app, "anonymous", "runsout")
        assert runs_out.startswith("~") and runs_out.endswith("m"), runs_out
        detail = app.dashboard.detail.assessment
        assert detail is not None and detail.forecast is not None
        clock_line = str(app.dashboard.detail.query_one("#detail-clock").render())
        assert "forecast: runs out in ~" in clock_line and "pulls in the last" in clock_line
        soon = [n for n in notices if "anonymous runs out in" in n]
        assert len(soon) == 1, notices  # one notice for the crossing, not one per round
        assert cell(app, "release", "runsout") == "-"  # not metered: nothing to run out
