"""Pacing: the pace the registry sees, read from the simulated hub's own arrival times.

For N = 100 and 1000 identities (`--sizes`), against `pullwatch simhub` in its own process with
50 ms added to every answer and pullwatch's default pace (burst 250, 25 requests/s):

- `pullwatch check --json` as a fresh process, twice (the first run also pings the registry and
  caches its challenge; both need a token and a HEAD per identity): wall time, requests, the
  most requests in any one second and in any one minute, beside the limits the pacer promises
  (`burst + max_rate` a second, `burst + 60 * max_rate` a minute), and the least time the pace
  allows for that many requests;
- for the largest N (unless `--no-rounds`), the dashboard's and `serve`'s round in this process
  (in-memory keyring): a warm round (tokens cached) spread over half the 60 s interval, and the
  same round unspread, as `check` would fire it.

    python benchmarks/pacing.py [--sizes 100,1000] [--no-rounds]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from _common import (
    PULLWATCH,
    SIM_LATENCY,
    SimHub,
    Table,
    label_for,
    progress,
    run_measured,
    secret_for,
    secs,
    workdir,
    write_config,
)

from pullwatch.hub.pacing import DEFAULT_BURST, DEFAULT_MAX_RATE, Pacer
from pullwatch.identities.secrets import MemoryKeyring, SecretStore
from pullwatch.paths import Paths
from pullwatch.reading import State
from pullwatch.runtime import build_runtime
from pullwatch.simhub.model import busiest

INTERVAL = 60  # s, the default interval between rounds
PER_SECOND = DEFAULT_BURST + DEFAULT_MAX_RATE
PER_MINUTE = DEFAULT_BURST + 60 * DEFAULT_MAX_RATE


@dataclass
class Seen:
    """What the simulated hub saw of one run."""

    requests: int
    peak_second: int
    peak_minute: int
    span: float  # first to last arrival
    wall: float  # the process (or the round), start to end
    not_ok: int

    def line(self) -> str:
        return (
            f"{self.requests} requests in {secs(self.wall)} (wire {secs(self.span)}); "
            f"peak {self.peak_second}/s, {self.peak_minute}/min; not ok {self.not_ok}"
        )


def arrivals(sim: SimHub) -> list[float]:
    with urllib.request.urlopen(f"{sim.url}/_sim/arrivals", timeout=30) as answer:
        return [float(t) for t in json.load(answer)["arrivals"]]


def seen(sim: SimHub, wall: float, not_ok: int) -> Seen:
    times = arrivals(sim)
    return Seen(
        requests=len(times),
        peak_second=busiest(times, 1.0),
        peak_minute=busiest(times, 60.0),
        span=(times[-1] - times[0]) if times else 0.0,
        wall=wall,
        not_ok=not_ok,
    )


def check_runs(sim: SimHub, n: int) -> list[Seen]:
    runs = []
    with workdir() as work:
        write_config(work.config_dir, n)
        env = work.env(sim.url)
        for _ in range(2):
            sim.reset_counters()
            done = run_measured([*PULLWATCH, "check", "--json"], env)
            if done.returncode not in (0, 1, 2):
                raise RuntimeError(f"check failed ({done.returncode}): {done.stderr[-400:]!r}")
            rows = json.loads(done.stdout)["identities"]
            runs.append(seen(sim, done.wall, sum(r["state"] != "ok" for r in rows)))
    return runs


async def spread_rounds(sim: SimHub, root: Path, n: int) -> tuple[Seen, Seen]:
    """A cold round to get the tokens, then a warm round spread (dashboard, serve) and one not."""
    paths = Paths(config_dir=root / "config", data_dir=root / "data", cache_dir=root / "cache")
    write_config(paths.config_dir, n)
    backend = MemoryKeyring()
    for i in range(1, n + 1):
        backend.set_password(SecretStore.SERVICE, label_for(i), secret_for(label_for(i)))
    runtime = build_runtime(paths, registry=sim.url, secrets=SecretStore(backend), env={})
    runtime.round_interval = INTERVAL
    results = []
    async with runtime.client() as client:
        monitor = runtime.monitor(client)
        progress(f"pacing N={n}: a cold round for the tokens (about {cold_least(n):.0f} s)")
        await monitor.round()
        for spread in (float(INTERVAL), 0.0):
            await asyncio.sleep(DEFAULT_BURST / DEFAULT_MAX_RATE)  # the bucket refills
            monitor.spread = spread
            sim.reset_counters()
            progress(f"pacing N={n}: a warm round, spread over {spread * 0.5:g} s")
            started = time.perf_counter()
            readings = await monitor.round()
            wall = time.perf_counter() - started
            results.append(seen(sim, wall, sum(r.state is not State.OK for r in readings)))
    return results[0], results[1]


def cold_least(n: int) -> float:
    return Pacer(DEFAULT_MAX_RATE, DEFAULT_BURST).least_time(2 * n + 1)


def measure(sizes: list[int], rounds: bool) -> Table:
    """The table: `check` processes at each N, and the warm rounds at the largest N."""
    table = Table(
        f"Pacing: what the simulated hub saw (+{SIM_LATENCY * 1000:.0f} ms per answer), "
        f"defaults burst {DEFAULT_BURST}, max-rate {DEFAULT_MAX_RATE:g}/s"
    )
    for n in sizes:
        with workdir() as work, SimHub(n, SIM_LATENCY, work.root) as sim:
            progress(f"pacing N={n}: `pullwatch check` processes (least {cold_least(n):.1f} s)")
            for number, run in enumerate(check_runs(sim, n), 1):
                what = "first run, with the ping" if number == 1 else "second run"
                table.add(
                    f"N={n:<4} check ({what}): peak requests in any 1 s",
                    str(run.peak_second),
                    f"<= {PER_SECOND:g}",
                    run.peak_second <= PER_SECOND,
                )
                table.add(
                    f"N={n:<4} check ({what}): peak requests in any 60 s",
                    str(run.peak_minute),
                    f"<= {PER_MINUTE:g}",
                    run.peak_minute <= PER_MINUTE,
                )
                table.add(
                    f"N={n:<4} check ({what}): process wall time",
                    secs(run.wall),
                    f"pace allows {secs(cold_least(n))} + the answers",
                )
                table.add(f"N={n:<4} check ({what}): the run", run.line())
            if n == sizes[-1] and rounds:
                spread, unspread = asyncio.run(spread_rounds(sim, work.root, n))
                for name, run in (("spread (dashboard, serve)", spread), ("unspread", unspread)):
                    table.add(
                        f"N={n:<4} warm round, {name}: peak requests in any 1 s",
                        str(run.peak_second),
                        f"<= {PER_SECOND:g}",
                        run.peak_second <= PER_SECOND,
                    )
                    table.add(f"N={n:<4} warm round, {name}: the round", run.line())
    table.note(
        "limits: the pacer's promise, burst + max-rate in any second and burst + 60 x max-rate "
        "in any minute; Docker Hub's abuse limit is 'thousands of requests per minute' per "
        "address (docs/protocol.md, Pacing)"
    )
    return table


def run(quick: bool) -> list[Table]:
    """run_all's entry point: N = 100 and 1000 (quick: 100 only, no rounds); printed as made."""
    table = measure([100] if quick else [100, 1000], rounds=not quick)
    table.print()
    return [table]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="comma-separated N (default 100,1000)")
    parser.add_argument("--no-rounds", action="store_true", help="only the `check` processes")
    args = parser.parse_args(argv)
    table = measure(sorted(int(x) for x in args.sizes.split(",")), rounds=not args.no_rounds)
    table.print()
    return 1 if table.misses else 0


if __name__ == "__main__":
    sys.exit(main())
