"""Render the README's screenshots from the demo, with a frozen wall clock.

    python scripts/screenshots.py            # writes screenshots/*.svg

The simulated hub adds 40 ms to every answer so latencies look like a real registry's; every
other number comes from the demo's fixed accounts and a clock frozen at 2026-11-30 12:00 UTC.
Fleet mode's screenshots feed the fleet dashboard a fixed set of rows (tests/fleet_samples.py:
what Prometheus would answer for four nodes, one of them down) on the same frozen clock.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from pullwatch.clock import ManualClock
from pullwatch.demo import Demo, start_demo
from pullwatch.simhub.named import SIMHUB_NAME
from pullwatch.tui.app import PullwatchApp, make_app
from pullwatch.tui.screens.checks import CheckScreen

OUT = Path(__file__).resolve().parents[1] / "screenshots"
SIZE = (120, 32)
LATENCY = 0.04


async def wait_for_check(app: PullwatchApp) -> None:
    screen = app.screen
    assert isinstance(screen, CheckScreen)
    for _ in range(1000):
        if screen.plain_text:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("the check did not finish")


Steps = Callable[[Pilot[None], PullwatchApp, Demo], Awaitable[None]]


async def shoot(name: str, steps: Steps) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        demo = start_demo(
            clock=ManualClock(real_monotonic=True),
            traffic=False,
            workdir=Path(tmp) / "demo",
            name=SIMHUB_NAME,
        )
        demo.model.faults.latency = LATENCY
        try:
            app = make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)
            async with app.run_test(size=SIZE) as pilot:
                await app.wait_for_round()
                await app.workers.wait_for_complete()
                await steps(pilot, app, demo)
                await pilot.pause()
                path = OUT / f"{name}.svg"
                path.write_text(app.export_screenshot(title="pullwatch"), encoding="utf-8")
        finally:
            demo.close()
    return path


async def dashboard(pilot: Pilot[None], app: PullwatchApp, demo: Demo) -> None:
    await pilot.press("down", "down")


async def token_check(pilot: Pilot[None], app: PullwatchApp, demo: Demo) -> None:
    await pilot.press("down", "t")
    await wait_for_check(app)


async def head_check(pilot: Pilot[None], app: PullwatchApp, demo: Demo) -> None:
    await pilot.press("down", "h")
    await wait_for_check(app)


async def add_identity(pilot: Pilot[None], app: PullwatchApp, demo: Demo) -> None:
    await pilot.press("a", *"scanner-2", "tab", *"scanbot2", "tab", *"dckr_pat_example")


async def forecast(pilot: Pilot[None], app: PullwatchApp, demo: Demo) -> None:
    """Eight one-minute rounds while ci-bot's account pulls: the Runs out column fills in."""
    clock = app.runtime.clock
    assert isinstance(clock, ManualClock)
    for pulls in (6, 0, 12, 3, 9, 0, 15, 4):
        demo.model.consume("cibot", pulls)
        clock.advance(60)
        await pilot.press("r")
        await app.wait_for_round()
    app.clear_notifications()  # the alerts are toasts of a moment; the table and pane stay
    await pilot.press("down")
    app._tick()


SHOTS = {
    "dashboard": dashboard,
    "forecast": forecast,
    "token-check": token_check,
    "head-check": head_check,
    "add-identity": add_identity,
}


class FixedFleet:
    """The fleet dashboard's source, answering with fixed rows, then as if Prometheus stopped."""

    def __init__(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from fleet_samples import SAMPLE_PROMETHEUS, sample_fleet

        self.url = SAMPLE_PROMETHEUS
        self.snapshot = sample_fleet()
        self.down = False

    async def read(self) -> Any:
        from pullwatch.fleet import FleetError, FleetErrorKind

        if self.down:
            refused = "connection refused (is Prometheus running there?)"
            raise FleetError(FleetErrorKind.CONNECT, refused, self.url)
        return self.snapshot

    async def aclose(self) -> None:
        pass


async def fleet() -> list[Path]:
    """screenshots/fleet.svg (a node selected), fleet-compare.svg, fleet-down.svg."""
    from pullwatch.tui.fleet import FleetApp

    paths = []
    for name, keys, down in (
        ("fleet", ("down", "down"), False),
        ("fleet-compare", ("c",), False),
        ("fleet-down", ("r",), True),
    ):
        source = FixedFleet()
        clock = ManualClock(ManualClock.DEFAULT_START)
        app = FleetApp(source, interval=30, clock=clock, watch_terminal=False)
        async with app.run_test(size=SIZE) as pilot:
            await app.wait_for_reads(1)
            source.down = down
            if down:
                clock.advance(120)
            await pilot.press(*keys)
            await app.wait_for_reads(2 if down else 1)
            await pilot.pause()
            path = OUT / f"{name}.svg"
            path.write_text(app.export_screenshot(title="pullwatch fleet"), encoding="utf-8")
            paths.append(path)
    return paths


async def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, steps in SHOTS.items():
        print(await shoot(name, steps))
    for path in await fleet():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
