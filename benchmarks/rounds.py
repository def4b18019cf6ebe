"""Rounds: N identities against the simulated hub on loopback, 50 ms added to every answer.

For N = 1, 10, 100, 1000 (`--quick`: up to 100) it measures, against `pullwatch simhub` in its
own process:

- a cold round (a new client: every identity needs a token; the registry's challenge comes
  from the on-disk cache, as in every run after the first) and a warm round (tokens cached),
  through the same `Monitor.round()` the dashboard and `check` use, in this process (secrets
  from an in-memory keyring); requests per identity per round by kind from the simulator's
  counters, manifest GETs included (there must be none);

These are the engine's figures, in-process with an in-memory keyring and the request pace
lifted (`_common.LIFTED_PACE`; the pace is the pacing benchmark's). What the user runs - the
`pullwatch check` process with the real Secret Service against the seed's curl/jq routine - is
check.py; the dashboard's warm round on screen is startup.py.

    python benchmarks/rounds.py [--quick] [--sizes 1,10,100]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import (
    LIFTED_PACE,
    SIM_LATENCY,
    SimHub,
    Table,
    counts_delta,
    label_for,
    median,
    per_identity,
    progress,
    secs,
    workdir,
    write_config,
)
from benchkeyring import secret_for

from pullwatch.hub.client import DEFAULT_CONCURRENCY
from pullwatch.identities.secrets import MemoryKeyring, SecretStore
from pullwatch.paths import Paths
from pullwatch.reading import State
from pullwatch.runtime import build_runtime

REPOSITORY = "ratelimitpreview/test"


@dataclass
class Sample:
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    first_ever: dict[str, int] = field(default_factory=dict)
    cold_counts: dict[str, int] = field(default_factory=dict)
    warm_counts: dict[str, int] = field(default_factory=dict)
    not_ok: int = 0
    peak_in_flight: int = 0


async def _in_process(
    sim: SimHub, root: Path, n: int, runs: int, warm_runs: int, s: Sample
) -> None:
    paths = Paths(config_dir=root / "config", data_dir=root / "data", cache_dir=root / "cache")
    backend = MemoryKeyring()
    for i in range(1, n + 1):
        backend.set_password(SecretStore.SERVICE, label_for(i), secret_for(label_for(i)))
    runtime = build_runtime(
        paths, registry=sim.url, secrets=SecretStore(backend), env=dict(LIFTED_PACE)
    )
    for run in range(runs):
        before = sim.counters()
        async with runtime.client() as client:
            monitor = runtime.monitor(client)
            started = time.perf_counter()
            readings = await monitor.round()
            s.cold.append(time.perf_counter() - started)
            s.not_ok += sum(r.state is not State.OK for r in readings)
            after = sim.counters()
            if run == 0:
                s.first_ever = counts_delta(after, before)  # no challenge on disk yet: one ping
            else:
                s.cold_counts = counts_delta(after, before)
            for _ in range(warm_runs):
                before = sim.counters()
                started = time.perf_counter()
                readings = await monitor.round()
                s.warm.append(time.perf_counter() - started)
                s.warm_counts = counts_delta(sim.counters(), before)
                s.not_ok += sum(r.state is not State.OK for r in readings)
            # one more warm round, untimed, watching how many requests are in flight at once
            transport = client._http._transport
            peak = 0
            done = asyncio.Event()

            async def watch(done: asyncio.Event, transport: object) -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, getattr(transport, "in_flight", 0))
                    await asyncio.sleep(0.0005)

            watcher = asyncio.create_task(watch(done, transport))
            await monitor.round()
            done.set()
            await watcher
            s.peak_in_flight = max(s.peak_in_flight, peak)


def measure(n: int, quick: bool) -> Sample:
    s = Sample()
    runs = 3 if n >= 1000 or quick else 5
    with workdir() as work, SimHub(n, SIM_LATENCY, work.root) as sim:
        write_config(work.config_dir, n)
        progress(f"rounds N={n}: in-process cold and warm rounds")
        asyncio.run(_in_process(sim, work.root, n, runs + 1, 3, s))
    return s


def slope(x1: float, y1: float, x2: float, y2: float) -> float:
    """Growth exponent between two points (1.0: linear)."""
    return math.log(y2 / y1) / math.log(x2 / x1)


def report(samples: dict[int, Sample]) -> list[Table]:
    sizes = sorted(samples)
    grid = Table(
        f"Rounds against the simulated hub (+{SIM_LATENCY * 1000:.0f} ms per answer), "
        f"concurrency {DEFAULT_CONCURRENCY}"
    )
    for n in sizes:
        s = samples[n]
        grid.add(f"N={n:<4} cold round (tokens needed)", secs(median(s.cold)))
        grid.add(f"N={n:<4} warm round (tokens cached)", secs(median(s.warm)))
        grid.add(f"N={n:<4} cold round: requests/identity", per_identity(s.cold_counts, n))
        grid.add(f"N={n:<4} warm round: requests/identity", per_identity(s.warm_counts, n))
    grid.note("medians; in-process rounds (Monitor.round), secrets from an in-memory keyring;")
    grid.note("the request pace lifted (PULLWATCH_MAX_RATE/BURST): the engine, not the pacer")
    first = next(iter(samples.values())).first_ever
    grid.note(f"very first round with no challenge on disk: {first} (one ping, then cached)")

    targets = Table("Rounds: targets")
    warm_ok = all(
        samples[n].warm_counts.get("head") == n and sum(samples[n].warm_counts.values()) == n
        for n in sizes
    )
    targets.add(
        "warm round: requests per identity, every N",
        "exactly 1 HEAD, nothing else" if warm_ok else "see table above",
        "1 HEAD only",
        warm_ok,
    )
    cold_max = max(sum(samples[n].cold_counts.values()) / n for n in sizes)
    targets.add(
        "cold round after the first: requests per identity (max over N)",
        f"{cold_max:.2f}",
        "<= 2",
        cold_max <= 2,
    )
    gets = sum(
        s.cold_counts.get("manifest_get", 0)
        + s.warm_counts.get("manifest_get", 0)
        + s.first_ever.get("manifest_get", 0)
        for s in samples.values()
    )
    targets.add("manifest GETs counted by the simulator (all runs)", str(gets), "0", gets == 0)
    if 100 in samples:
        warm = median(samples[100].warm)
        targets.add("warm round, N=100, in-process (on screen: startup.py)", secs(warm))
    peak = max(s.peak_in_flight for s in samples.values())
    targets.add(
        "requests in flight at once (peak, all N)",
        str(peak),
        f"<= concurrency ({DEFAULT_CONCURRENCY})",
        peak <= DEFAULT_CONCURRENCY,
    )
    biggest = max(sizes)
    per_min = 2 * biggest
    targets.add(
        f"requests per minute, N={biggest}, one round a minute (cold, worst case)",
        f"{per_min}",
    )
    not_ok = sum(s.not_ok for s in samples.values())
    targets.add(
        "readings not `ok` (all rounds; the simulator has room)", str(not_ok), "0", not_ok == 0
    )
    targets.note(
        f"concurrency (setting `concurrency`, default {DEFAULT_CONCURRENCY}) bounds requests in "
        "flight; at Docker Hub's ~100 ms it caps a burst at ~320 requests/s, and a round is N "
        "requests (2N with tokens), so a round a minute stays at N-2N requests per minute"
    )

    growth = Table("Growth of round time with N (exponent 1.0 = linear)")
    have = [n for n in (10, 100, 1000) if n in samples]
    for a, b in itertools.pairwise(have):
        for name, pick in (("cold", lambda s: median(s.cold)), ("warm", lambda s: median(s.warm))):
            e = slope(a, pick(samples[a]), b, pick(samples[b]))
            growth.add(f"{name} round, N={a} -> {b}", f"exponent {e:.2f}", "<= 1.1", e <= 1.1)
    growth.note("round time is waves of `concurrency` requests: sub-linear until N passes it")
    return [grid, targets, growth]


def run(quick: bool = False, sizes: tuple[int, ...] | None = None) -> tuple[list[Table], dict]:
    chosen = sizes or ((1, 10, 100) if quick else (1, 10, 100, 1000))
    samples = {n: measure(n, quick) for n in chosen}
    return report(samples), samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", help="comma-separated N values (default 1,10,100,1000)")
    args = parser.parse_args(argv)
    sizes = tuple(int(x) for x in args.sizes.split(",")) if args.sizes else None
    tables, _ = run(args.quick, sizes)
    for t in tables:
        t.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
