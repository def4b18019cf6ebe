"""Quitting never crashes (issue 12, part 4): at 1000 identities, with a round in flight against
the simulated hub and the once-a-second tick running, the dashboard ends without an exception.

Textual takes the dashboard's widgets down while the app's timers and probe workers may still
run (a pilot's app is shut down without `exit()`, so its timers keep firing; a real quit cancels
the probes, whose `finally` blocks run while the screens go). The tick is shortened here so that
ticks surely land while the widgets are being removed; before the fix one of them raised
`NoMatches` (the detail pane's `#detail-clock`, later the header's `StatusLine`).
"""

from __future__ import annotations

import asyncio

import pytest

from pullwatch.clock import ManualClock
from pullwatch.identities.secrets import MemoryKeyring, SecretStore
from pullwatch.paths import Paths
from pullwatch.runtime import build_runtime
from pullwatch.simhub import SimHubServer
from pullwatch.tui.app import PullwatchApp, make_app

IDENTITIES = 1000
TICK = 0.002  # seconds: many ticks while Textual removes the widgets


def write_config(paths: Paths, n: int) -> None:
    lines = ["version = 1", "", "[settings]", "interval = 60"]
    for i in range(n):
        lines += ["", "[[identity]]", f'label = "id{i:04d}"']
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("how", ["pilot", "q"])
async def test_quitting_mid_round_with_ticks_running_raises_nothing(
    how: str,
    simhub: SimHubServer,
    paths: Paths,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(paths, IDENTITIES)
    simhub.model.faults.latency = 0.05  # answers take a while: the round is still in flight
    runtime = build_runtime(
        paths, registry=simhub.url, secrets=SecretStore(MemoryKeyring()), clock=clock
    )
    monkeypatch.setattr(PullwatchApp, "TICK_SECONDS", TICK)
    app = make_app(runtime, interval=60, watch_terminal=False)
    ticks = 0
    tick = app._tick

    def counted() -> None:
        nonlocal ticks
        ticks += 1
        tick()

    monkeypatch.setattr(app, "_tick", counted)
    async with app.run_test(size=(120, 32)) as pilot:
        for _ in range(1000):  # until probes are in flight and the tick has run
            if app._in_flight and ticks >= 3:
                break
            await asyncio.sleep(0.01)
        assert app._in_flight, "the first round never started"
        assert len(app.dashboard.table.labels) == IDENTITIES
        if how == "q":
            await pilot.press("q")
        # leaving the block shuts the app down as Textual does; run_test re-raises what
        # the app raised meanwhile (a tick's NoMatches, for one)
    assert app.return_code in (0, None)
