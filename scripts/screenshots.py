"""Render the README's screenshots from the demo, with a frozen wall clock.

    python scripts/screenshots.py            # writes screenshots/*.svg

The simulated hub adds 40 ms to every answer so latencies look like a real registry's; every
other number comes from the demo's fixed accounts and a clock frozen at 2026-11-30 12:00 UTC.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot

from pullwatch.clock import ManualClock
from pullwatch.demo import start_demo
from pullwatch.tui.app import PullwatchApp, make_app
from pullwatch.tui.screens.checks import CheckScreen

OUT = Path(__file__).resolve().parents[1] / "screenshots"
SIZE = (120, 32)
PORT = 47624
LATENCY = 0.04


async def wait_for_check(app: PullwatchApp) -> None:
    screen = app.screen
    assert isinstance(screen, CheckScreen)
    for _ in range(1000):
        if screen.plain_text:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("the check did not finish")


async def shoot(name: str, steps: Callable[[Pilot[None], PullwatchApp], Awaitable[None]]) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        demo = start_demo(
            clock=ManualClock(real_monotonic=True),
            traffic=False,
            workdir=Path(tmp) / "demo",
            port=PORT,
        )
        demo.model.faults.latency = LATENCY
        try:
            app = make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)
            async with app.run_test(size=SIZE) as pilot:
                await app.wait_for_round()
                await app.workers.wait_for_complete()
                await steps(pilot, app)
                await pilot.pause()
                path = OUT / f"{name}.svg"
                path.write_text(app.export_screenshot(title="pullwatch"), encoding="utf-8")
        finally:
            demo.close()
    return path


async def dashboard(pilot: Pilot[None], app: PullwatchApp) -> None:
    await pilot.press("down", "down")


async def token_check(pilot: Pilot[None], app: PullwatchApp) -> None:
    await pilot.press("down", "t")
    await wait_for_check(app)


async def head_check(pilot: Pilot[None], app: PullwatchApp) -> None:
    await pilot.press("down", "h")
    await wait_for_check(app)


async def add_identity(pilot: Pilot[None], app: PullwatchApp) -> None:
    await pilot.press("a", *"scanner-2", "tab", *"scanbot2", "tab", *"dckr_pat_example")


SHOTS = {
    "dashboard": dashboard,
    "token-check": token_check,
    "head-check": head_check,
    "add-identity": add_identity,
}


async def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, steps in SHOTS.items():
        print(await shoot(name, steps))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
