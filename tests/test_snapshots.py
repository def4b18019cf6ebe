"""Snapshots of every screen, at 80x24 and 120x40, from the demo on a frozen clock.

The simulator listens on a fixed port here (`snapshot_demo`) and the clock stands still, so
every number, countdown and URL on screen is the same on every run. Regenerate with
`pytest tests/test_snapshots.py --snapshot-update`, then look at each changed SVG.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import TextArea

from pullwatch.demo import Demo
from pullwatch.identities.cryptfile import Unlocker
from pullwatch.identities.secrets import MemoryKeyring
from pullwatch.tui.app import PullwatchApp, make_app
from pullwatch.tui.screens.checks import CheckScreen
from pullwatch.tui.screens.passphrase import PassphraseScreen
from test_advice import SEED_LINE

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


def app_for(demo: Demo) -> PullwatchApp:
    app = make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)
    # A toast expires in wall-clock time: on a loaded machine a slow run lost the alert.
    app.ALERT_SECONDS = 3600.0
    return app


async def first_round(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, PullwatchApp)
    await app.wait_for_round()
    await app.workers.wait_for_complete()
    await pilot.pause()


def after(*keys: str, check: bool = False):  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await first_round(pilot)
        await pilot.press(*keys)
        if check:
            screen = pilot.app.screen
            assert isinstance(screen, CheckScreen)
            for _ in range(500):
                if screen.plain_text:
                    break
                await asyncio.sleep(0.01)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_dashboard(snap_compare, snapshot_demo: Demo, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        app_for(snapshot_demo), terminal_size=size, run_before=after("down", "down")
    )


@pytest.mark.parametrize("size", SIZES)
def test_token_check(snap_compare, snapshot_demo: Demo, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        app_for(snapshot_demo), terminal_size=size, run_before=after("down", "t", check=True)
    )


@pytest.mark.parametrize("size", SIZES)
def test_head_check(snap_compare, snapshot_demo: Demo, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        app_for(snapshot_demo), terminal_size=size, run_before=after("down", "h", check=True)
    )


@pytest.mark.parametrize("size", SIZES)
def test_add_identity(snap_compare, snapshot_demo: Demo, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    keys = ("a", *"ci-bot", "tab", *"me@example.com", "tab", *"secret", "enter")
    assert snap_compare(app_for(snapshot_demo), terminal_size=size, run_before=after(*keys))


@pytest.mark.parametrize("size", SIZES)
def test_delete_confirmation(snap_compare, snapshot_demo: Demo, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(snapshot_demo), terminal_size=size, run_before=after("down", "d"))


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, snapshot_demo: Demo, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        app_for(snapshot_demo), terminal_size=size, run_before=after("question_mark")
    )


@pytest.mark.parametrize("size", SIZES)
def test_edit_identity(snap_compare, snapshot_demo: Demo, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(snapshot_demo), terminal_size=size, run_before=after("down", "e"))


@pytest.mark.parametrize("size", SIZES)
def test_plan(snap_compare, snapshot_demo: Demo, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(snapshot_demo), terminal_size=size, run_before=after("p"))


@pytest.mark.parametrize("size", SIZES)
def test_explain(snap_compare, snapshot_demo: Demo, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await first_round(pilot)
        await pilot.press("x")
        pilot.app.screen.query_one("#paste", TextArea).insert(SEED_LINE)
        await pilot.pause()

    assert snap_compare(app_for(snapshot_demo), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_import_without_a_docker_config(  # type: ignore[no-untyped-def]
    snap_compare, snapshot_demo: Demo, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", "/nonexistent/docker")  # the same path on every run
    app = app_for(snapshot_demo)

    async def run_before(pilot: Pilot[None]) -> None:
        await first_round(pilot)
        await pilot.press("i")
        screen = pilot.app.screen
        for _ in range(500):
            if getattr(screen, "status", "") == "nothing":
                break
            await asyncio.sleep(0.01)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_report(  # type: ignore[no-untyped-def]
    snap_compare, snapshot_demo: Demo, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("system", "Linux"), ("machine", "x86_64"), ("python_version", "3.11.7")):
        monkeypatch.setattr(f"platform.{name}", lambda value=value: value)  # any machine's run

    async def run_before(pilot: Pilot[None]) -> None:
        await first_round(pilot)
        await pilot.press("w")
        app = pilot.app
        for _ in range(500):  # the report opens once the history summaries are read
            if type(app.screen).__name__ == "ReportScreen":
                break
            await asyncio.sleep(0.01)
        await pilot.pause()

    assert snap_compare(app_for(snapshot_demo), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_passphrase(snap_compare, snapshot_demo: Demo, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    unlocker = Unlocker(
        Path("/home/me/.local/share/pullwatch/keyring.cryptfile.cfg"),
        MemoryKeyring(),
        installed=True,
    )

    async def run_before(pilot: Pilot[None]) -> None:
        await first_round(pilot)
        await pilot.app.push_screen(PassphraseScreen(unlocker))
        await pilot.press(*"secret")
        await pilot.pause()

    assert snap_compare(app_for(snapshot_demo), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_palette(snap_compare, snapshot_demo: Demo, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await first_round(pilot)
        # A search, not the empty palette: its hits are sorted by score, while the empty
        # palette lists the providers' suggestions in whichever order they arrive.
        await pilot.press("down", "ctrl+p", *"pause")
        await pilot.app.workers.wait_for_complete()  # the palette's gathering of commands
        await pilot.pause()

    assert snap_compare(app_for(snapshot_demo), terminal_size=size, run_before=run_before)


def with_history(demo: Demo) -> PullwatchApp:
    """The demo plus a `mirror` identity on ci-bot's account (a shared bucket)."""
    from pullwatch.identities.store import Identity

    demo.runtime.store.add(Identity("mirror", "cibot"), "dckr_pat_demo-ci-bot")
    demo.runtime.reload()
    return app_for(demo)


def rounds_with_pulls(demo: Demo):  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, PullwatchApp)
        clock = demo.runtime.clock
        await first_round(pilot)
        for pulls in (6, 0, 12, 3, 9, 0, 15, 4):  # ci-bot's account, one round a minute
            demo.model.consume("cibot", pulls)
            clock.advance(60)  # type: ignore[attr-defined]
            await pilot.press("r")
            await app.wait_for_round()
        await pilot.press("down")  # ci-bot
        app._tick()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_with_history(snap_compare, snapshot_demo: Demo, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        with_history(snapshot_demo), terminal_size=size, run_before=rounds_with_pulls(snapshot_demo)
    )


def failed_after_a_good_reading(demo: Demo, *, select: int):  # type: ignore[no-untyped-def]
    """anonymous read 76/100, then 3 minutes later its probe failed (a 503): the table and the
    detail pane keep the last good numbers, dimmed and aged. release is throttled (an abuse
    429), so every bad state is on screen."""

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, PullwatchApp)
        app.monitor.rng = random.Random(0)  # the backoff's jitter: the same on every run
        await first_round(pilot)
        demo.runtime.clock.advance(180)  # type: ignore[attr-defined]
        for label, switch, value in (
            ("release", "hap429", {"any"}),
            ("anonymous", "status", {"head": 503}),
        ):
            setattr(demo.model.faults, switch, value)
            app.refresh_identity(label)
            await app.workers.wait_for_complete()
            demo.model.faults.clear()
        await pilot.press(*["down"] * select)
        app._tick()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_stale_after_a_failed_probe(  # type: ignore[no-untyped-def]
    snap_compare, snapshot_demo: Demo, size: tuple[int, int]
) -> None:
    assert snap_compare(
        app_for(snapshot_demo),
        terminal_size=size,
        run_before=failed_after_a_good_reading(snapshot_demo, select=0),
    )


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_without_colour(  # type: ignore[no-untyped-def]
    snap_compare, snapshot_demo: Demo, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_COLOR: bad states bold or reversed, text never grey on grey (scanner selected)."""
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(
        app_for(snapshot_demo),
        terminal_size=size,
        run_before=failed_after_a_good_reading(snapshot_demo, select=5),
    )
