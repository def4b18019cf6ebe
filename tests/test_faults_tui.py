"""The dashboard under faults: every probe hanging, it still answers keys, quits on `q` at once,
and leaves no task, thread or socket behind. A hung keyring does not hold it up either.

Time bounds are generous correctness bounds ("promptly" = within 5 s), not benchmarks.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from fixtures_keyring import HangingKeyring
from pullwatch.demo import Demo
from pullwatch.identities.secrets import KeyringStatus, SecretStore
from pullwatch.runtime import build_runtime
from pullwatch.tui.app import PullwatchApp, make_app
from pullwatch.tui.screens.help import HelpScreen

SIZE = (120, 32)
PROMPTLY = 5.0


def established_to(port: int) -> int:
    """Open client-side TCP connections to 127.0.0.1:`port` (from /proc/net/tcp)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state = fields[2], fields[3]
        if state == "01" and int(remote.split(":")[1], 16) == port:  # ESTABLISHED
            count += 1
    return count


async def until(condition: object, within: float = PROMPTLY) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        await asyncio.sleep(0.02)
    return bool(callable(condition) and condition())


def other_tasks() -> set[asyncio.Task[object]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs /proc/net/tcp")
async def test_quit_with_every_probe_hanging_leaves_nothing_behind(demo: Demo) -> None:
    demo.model.faults.hang = {"any"}
    tasks_before = other_tasks()
    threads_before = set(threading.enumerate())
    app = make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)
    async with app.run_test(size=SIZE) as pilot:
        assert await until(lambda: app.dashboard.status.probing == 6)
        assert await until(lambda: established_to(demo.server.port) >= 1)  # hung requests hold them
        await pilot.press("question_mark")  # keys still work
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "down")
        assert app.dashboard.table.cursor_row == 1
        started = time.monotonic()
        await pilot.press("q")
        assert await until(lambda: app._exit), "q did not quit"
    took = time.monotonic() - started
    assert took < PROMPTLY, took
    assert app.return_code in (0, None)
    assert other_tasks() <= tasks_before  # no probe, timer or worker task left running
    assert await until(lambda: established_to(demo.server.port) == 0), "sockets left open"
    assert app._client._http.is_closed
    # Threads that could hold up the process's exit: none (the event loop's idle executor
    # workers, "asyncio_N", are shut down with the loop).
    leftover = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert [t for t in leftover if not t.daemon and not t.name.startswith("asyncio_")] == []


async def test_a_hung_keyring_does_not_hold_up_the_dashboard_or_its_exit(
    demo: Demo, hanging_keyring: HangingKeyring
) -> None:
    stuck = SecretStore(hanging_keyring, timeout=0.3)
    runtime = build_runtime(demo.runtime.paths, registry=demo.server.url, secrets=stuck,
                            clock=demo.runtime.clock, env={})  # fmt: skip
    app: PullwatchApp = make_app(runtime, interval=60, watch_terminal=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.keyring_health is not None
        assert app.keyring_health.status is KeyringStatus.TIMED_OUT
        status = app.dashboard.status.render_text().plain
        assert "keyring: keyring did not answer" in status or "has not answered" in status
        table = app.dashboard.table
        assert table.get_cell("anonymous", "state").plain == "ok"  # anonymous keeps working
        assert "secret unavailable" in table.get_cell("ci-bot", "state").plain
        started = time.monotonic()
        await pilot.press("q")
    assert time.monotonic() - started < PROMPTLY
