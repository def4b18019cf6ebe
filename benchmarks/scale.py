"""Scale: 1000 identities - memory of the dashboard and of `check`, and applying a round.

- Peak RSS (VmHWM) of the real dashboard (`python -m pullwatch` on a pseudo-terminal, 120x40,
  `interval = 10`) after its first two rounds, and of `pullwatch check --json` (wait4's
  ru_maxrss), for N = 10, 100, 1000 (`--quick`: 10, 100, 1000 with one run each), against the
  simulated hub in another process; secrets from the benchmark keyring.
- The time to apply one round of 1000 readings to the dashboard: a headless app
  (`App.run_test`, 120x40) with 1000 identities; the readings come from a real round against the
  simulated hub; each goes through the app's reading path (`PullwatchApp._show`, as each probe
  worker does), then the repaint. The table must be
  updated in place: `IdentityTable.rebuilds` must not change. The figure with the target is
  the readings applied plus the repaint: the clock stops when `pilot.pause()` returns, which
  waits until the screen has processed every pending message and then renders its pending
  updates (`Screen._on_timer_update`, the compositor's update) - the frame is made, only the
  headless driver's write of it is skipped. The pty measurements of whole rounds, on screen,
  are in startup.py.

    python benchmarks/scale.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from _common import (
    LIFTED_PACE,
    PULLWATCH,
    SIM_LATENCY,
    PtyApp,
    SimHub,
    Table,
    label_for,
    median,
    mib,
    ms,
    peak_rss,
    progress,
    run_measured,
    username_for,
    workdir,
    write_config,
)
from benchkeyring import secret_for

from pullwatch.identities.secrets import MemoryKeyring, SecretStore
from pullwatch.paths import Paths
from pullwatch.runtime import build_runtime

DASHBOARD_RSS_TARGET = 150 * 2**20
CHECK_RSS_TARGET = 100 * 2**20
APPLY_TARGET = 0.050
BIG = 1000


def dashboard_rss(n: int, sim: SimHub, work: object, rounds: int = 2) -> tuple[int, float]:
    """Peak RSS after `rounds` rounds, and how long the first round took to show."""
    env = work.env(sim.url, **LIFTED_PACE)  # type: ignore[attr-defined]
    app = PtyApp(PULLWATCH, env, cols=120, rows=40)
    try:
        first = app.wait_for(b"next round", 120)
        if first is None:
            raise RuntimeError(f"dashboard with {n} identities: no first round")
        seen = app.size
        for _ in range(rounds - 1):  # next rounds: `interval` (10 s) after the last one ended
            if app.wait_for(b"probing", 60, start=seen) is None:
                raise RuntimeError("no second round")
            seen = app.size
            if app.wait_for(b"next round", 120, start=seen) is None:
                raise RuntimeError("second round never finished")
            seen = app.size
        time.sleep(0.5)
        return peak_rss(app.pid), first
    finally:
        app.stop()


def check_rss(sim: SimHub, work: object) -> tuple[int, float]:
    env = work.env(sim.url, **LIFTED_PACE)  # type: ignore[attr-defined]
    argv = [*PULLWATCH, "check", "--json"]
    run_measured(argv, env)  # the first run caches the challenge
    done = run_measured(argv, env)
    if done.returncode not in (0, 1, 2):
        raise RuntimeError(f"check failed: {done.stderr[-300:]!r}")
    return done.max_rss, done.wall


async def apply_round(sim: SimHub, root: Path, n: int) -> dict[str, float]:
    from pullwatch.tui.app import make_app

    paths = Paths(config_dir=root / "config", data_dir=root / "data", cache_dir=root / "cache")
    backend = MemoryKeyring()
    for i in range(1, n + 1):
        backend.set_password(SecretStore.SERVICE, label_for(i), secret_for(label_for(i)))
    runtime = build_runtime(
        paths, registry=sim.url, secrets=SecretStore(backend), env=dict(LIFTED_PACE)
    )
    app = make_app(runtime, auto_rounds=False, watch_terminal=False)
    out: dict[str, float] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        await app.history_loaded.wait()
        await pilot.pause()
        table = app.dashboard.table
        rebuilds = table.rebuilds
        for name in ("first round (every cell new)", "next round (remaining changed)", "same"):
            if name.startswith("next"):
                for i in range(1, n + 1):  # other clients pulled: every bucket moves
                    sim.pull(username_for(i), 1 + i % 3)
            if name != "same":
                readings = await app.monitor.round()
            started = time.perf_counter()
            for reading in readings:
                app._show(reading)
            out[name] = time.perf_counter() - started
            started = time.perf_counter()
            await pilot.pause()
            out[f"{name}: repaint"] = time.perf_counter() - started
        ticks = []
        for _ in range(5):  # the once-a-second tick, nothing due to change
            started = time.perf_counter()
            app._tick()
            ticks.append(time.perf_counter() - started)
        out["tick"] = median(ticks)
        started = time.perf_counter()  # a tick where every countdown's minute flips
        table.tick(time.time() + 61)
        out["tick, every minute flips"] = time.perf_counter() - started
        table.tick(time.time())
        await pilot.pause()
        out["rebuilds during the rounds"] = table.rebuilds - rebuilds
        out["rows"] = len(table.labels)
        out["not ok"] = sum(r.state.value != "ok" for r in readings)
    return out


def run(quick: bool = False) -> list[Table]:
    sizes = (10, 100, BIG)
    table = Table("Scale: memory with N identities, and applying a round of 1000 readings")
    dash: dict[int, int] = {}
    check: dict[int, int] = {}
    for n in sizes:
        with workdir() as work, SimHub(n, SIM_LATENCY, work.root) as sim:
            write_config(work.config_dir, n, interval=10)
            progress(f"scale N={n}: check")
            check[n], wall = check_rss(sim, work)
            progress(f"scale N={n}: dashboard")
            dash[n], first = dashboard_rss(n, sim, work, rounds=1 if quick else 2)
            if n == BIG:
                table.add(
                    f"dashboard, N={n}: peak RSS after {1 if quick else 2} rounds",
                    mib(dash[n]),
                    f"< {mib(DASHBOARD_RSS_TARGET)}",
                    dash[n] < DASHBOARD_RSS_TARGET,
                )
                table.add(
                    f"`check`, N={n}: peak RSS",
                    mib(check[n]),
                    f"< {mib(CHECK_RSS_TARGET)}",
                    check[n] < CHECK_RSS_TARGET,
                )
                table.add(f"`check`, N={n}: wall", f"{wall:.2f} s")
                table.add(f"dashboard, N={n}: first round shown after", f"{first:.2f} s")
    for a, b in ((10, 100), (100, BIG)):
        table.add(
            f"growth N={a} -> {b}: dashboard / check, per added identity",
            f"{(dash[b] - dash[a]) / (b - a) / 1024:.1f} KiB / "
            f"{(check[b] - check[a]) / (b - a) / 1024:.1f} KiB",
        )
    table.add(
        "peak RSS N=10 / 100 / 1000: dashboard",
        " / ".join(mib(dash[n]) for n in sizes),
    )
    table.add("peak RSS N=10 / 100 / 1000: `check`", " / ".join(mib(check[n]) for n in sizes))

    progress(f"scale: applying rounds of {BIG} readings in a headless app")
    results = []
    with workdir() as work, SimHub(BIG, SIM_LATENCY, work.root) as sim:
        write_config(work.config_dir, BIG)
        for _ in range(1 if quick else 3):
            results.append(asyncio.run(apply_round(sim, work.root, BIG)))
    for name, short in (
        ("first round (every cell new)", "first round (every cell new)"),
        ("next round (remaining changed)", "next round (remaining changed)"),
    ):
        total = median([r[name] + r[f"{name}: repaint"] for r in results])
        table.add(
            f"apply a round of {BIG} readings, repaint included: {short}",
            ms(total),
            f"< {ms(APPLY_TARGET)}",
            total < APPLY_TARGET,
        )
        table.add(
            "  of which the repaint (info)", ms(median([r[f"{name}: repaint"] for r in results]))
        )
    table.add(
        f"apply {BIG} unchanged readings (no repaint due)", ms(median([r["same"] for r in results]))
    )
    table.add(
        f"once-a-second tick, {BIG} identities (idle)", ms(median([r["tick"] for r in results]))
    )
    table.add(
        f"tick where all {BIG} countdowns change (once a minute)",
        ms(median([r["tick, every minute flips"] for r in results])),
    )
    rebuilt = max(r["rebuilds during the rounds"] for r in results)
    table.add("table rebuilds while applying", str(int(rebuilt)), "0", rebuilt == 0)
    table.note(
        f"rows {int(results[0]['rows'])}; readings not ok: {int(results[0]['not ok'])}; "
        "in-process app: MemoryKeyring; processes: benchmark keyring; fresh data dirs; "
        "the request pace lifted throughout (memory and UI figures, not the pacer's)"
    )
    return [table]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    for t in run(args.quick):
        t.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
