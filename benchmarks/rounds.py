"""Rounds: N identities against the simulated hub on loopback, 50 ms added to every answer.

For N = 1, 10, 100, 1000 (`--quick`: up to 100) it measures, against `pullwatch simhub` in its
own process:

- a cold round (a new client: every identity needs a token; the registry's challenge comes
  from the on-disk cache, as in every run after the first) and a warm round (tokens cached),
  through the same `Monitor.round()` the dashboard and `check` use, in this process (secrets
  from an in-memory keyring); requests per identity per round by kind from the simulator's
  counters, manifest GETs included (there must be none);
- `pullwatch check --json` as a fresh process (benchmark keyring), after a first run that
  cached the challenge on disk: wall time and requests per identity;
- the manual procedure of docs/protocol.md for the same identities, one after another, as a shell
  script runs it (curl for the token, jq, curl --head, grep), and the ratio.

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
    PYTHON,
    SIM_LATENCY,
    SimHub,
    Table,
    label_for,
    median,
    mib,
    progress,
    run_measured,
    secret_for,
    secs,
    username_for,
    workdir,
    write_config,
)

from pullwatch.hub.client import DEFAULT_CONCURRENCY
from pullwatch.identities.secrets import MemoryKeyring, SecretStore
from pullwatch.paths import Paths
from pullwatch.reading import State
from pullwatch.runtime import build_runtime

KINDS = ("ping", "token", "head", "manifest_get", "other")
REPOSITORY = "ratelimitpreview/test"
WARM_TARGET = 0.5  # s, a warm round of 100 identities
SPEEDUP_TARGET = 20.0  # x the manual procedure at N = 100
MANUAL_MEASURED_MAX = 100  # larger N: extrapolated from the N = 100 measurement

MANUAL_SCRIPT = r"""#!/bin/bash
# The manual routine (docs/protocol.md), per identity: a token (curl + jq), then the HEAD
# (curl --head + grep).
set -u
while IFS=: read -r user pass; do
  TOKEN=$(curl -s --user "$user:$pass" \
    "$REALM?service=registry.docker.io&scope=repository:ratelimitpreview/test:pull" | jq -r .token)
  curl -s --head -H "Authorization: Bearer $TOKEN" \
    "$REGISTRY/v2/ratelimitpreview/test/manifests/latest" | grep -i '^ratelimit-'
done < "$CREDENTIALS"
"""


@dataclass
class Sample:
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    first_ever: dict[str, int] = field(default_factory=dict)
    cold_counts: dict[str, int] = field(default_factory=dict)
    warm_counts: dict[str, int] = field(default_factory=dict)
    not_ok: int = 0
    peak_in_flight: int = 0
    check_wall: list[float] = field(default_factory=list)
    check_counts: dict[str, int] = field(default_factory=dict)
    check_rss: int = 0
    check_code: int = 0
    manual: float | None = None
    manual_measured_n: int = 0


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in KINDS}


def per_identity(counts: dict[str, int], n: int) -> str:
    shown = [f"{k} {counts[k] / n:.2f}" for k in ("ping", "token", "head") if counts.get(k)]
    shown.append(f"GET {counts.get('manifest_get', 0)}")
    return ", ".join(shown)


async def _in_process(
    sim: SimHub, root: Path, n: int, runs: int, warm_runs: int, s: Sample
) -> None:
    paths = Paths(config_dir=root / "config", data_dir=root / "data", cache_dir=root / "cache")
    backend = MemoryKeyring()
    for i in range(1, n + 1):
        backend.set_password(SecretStore.SERVICE, label_for(i), secret_for(label_for(i)))
    runtime = build_runtime(paths, registry=sim.url, secrets=SecretStore(backend), env={})
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
                s.first_ever = _delta(after, before)  # no challenge on disk yet: one ping
            else:
                s.cold_counts = _delta(after, before)
            for _ in range(warm_runs):
                before = sim.counters()
                started = time.perf_counter()
                readings = await monitor.round()
                s.warm.append(time.perf_counter() - started)
                s.warm_counts = _delta(sim.counters(), before)
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


def _check_process(sim: SimHub, work: object, n: int, runs: int, s: Sample) -> None:
    env = work.env(sim.url)  # type: ignore[attr-defined]
    argv = [PYTHON, "-m", "pullwatch", "check", "--json"]
    first = run_measured(argv, env)  # caches the challenge on disk (and starts the history)
    if first.returncode not in (0, 1, 2):
        raise RuntimeError(f"check failed: {first.stderr[-400:]!r}")
    for _ in range(runs):
        before = sim.counters()
        done = run_measured(argv, env)
        s.check_counts = _delta(sim.counters(), before)
        s.check_wall.append(done.wall)
        s.check_rss = max(s.check_rss, done.max_rss)
        s.check_code = done.returncode


def _manual(sim: SimHub, root: Path, n: int, runs: int, s: Sample) -> None:
    measured = min(n, MANUAL_MEASURED_MAX)
    script = root / "seed-routine.sh"
    script.write_text(MANUAL_SCRIPT)
    creds = root / "credentials.txt"
    creds.write_text(
        "".join(f"{username_for(i)}:{secret_for(label_for(i))}\n" for i in range(1, measured + 1))
    )
    creds.chmod(0o600)
    env = {"REALM": f"{sim.url}/token", "REGISTRY": sim.url, "CREDENTIALS": str(creds)}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    walls = []
    for _ in range(runs):
        before = sim.counters()
        done = run_measured(["/bin/bash", str(script)], env)
        counts = _delta(sim.counters(), before)
        if done.returncode != 0 or counts["head"] != measured:
            raise RuntimeError(f"manual routine failed: {done.stderr[-300:]!r} {counts}")
        walls.append(done.wall)
    s.manual = median(walls) * n / measured
    s.manual_measured_n = measured


def measure(n: int, quick: bool) -> Sample:
    s = Sample()
    runs = 3 if n >= 1000 or quick else 5
    with workdir() as work, SimHub(n, SIM_LATENCY, work.root) as sim:
        write_config(work.config_dir, n)
        progress(f"rounds N={n}: in-process cold and warm rounds")
        asyncio.run(_in_process(sim, work.root, n, runs + 1, 3, s))
        progress(f"rounds N={n}: `pullwatch check` processes")
        with workdir() as check_work:
            write_config(check_work.config_dir, n)
            _check_process(sim, check_work, n, 1 if n >= 1000 else 3, s)
        if n <= MANUAL_MEASURED_MAX or not quick:
            progress(f"rounds N={n}: the manual curl/jq routine")
            _manual(sim, work.root, n, 1 if n >= 100 and quick else 3 if n <= 10 else 2, s)
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
        grid.add(f"N={n:<4} `check` process (after first run): wall", secs(median(s.check_wall)))
        grid.add(f"N={n:<4} `check` process: requests/identity", per_identity(s.check_counts, n))
        if s.manual is not None:
            how = (
                "measured"
                if s.manual_measured_n == n
                else f"extrapolated from {s.manual_measured_n} measured"
            )
            grid.add(f"N={n:<4} manual curl/jq routine ({how})", secs(s.manual))
            grid.add(
                f"N={n:<4} speed-up vs manual: cold / warm / check",
                f"{s.manual / median(s.cold):.0f}x / {s.manual / median(s.warm):.0f}x / "
                f"{s.manual / median(s.check_wall):.0f}x",
            )
    grid.note("medians; in-process rounds: secrets from an in-memory keyring (MemoryKeyring);")
    grid.note("`check` processes: the benchmark keyring (in memory, derived secrets)")
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
    cold_max = max(sum(samples[n].check_counts.values()) / n for n in sizes)
    targets.add(
        "cold `check` after the first run: requests per identity (max over N)",
        f"{cold_max:.2f}",
        "<= 2",
        cold_max <= 2,
    )
    gets = sum(
        s.cold_counts.get("manifest_get", 0)
        + s.warm_counts.get("manifest_get", 0)
        + s.check_counts.get("manifest_get", 0)
        + s.first_ever.get("manifest_get", 0)
        for s in samples.values()
    )
    targets.add("manifest GETs counted by the simulator (all runs)", str(gets), "0", gets == 0)
    if 100 in samples:
        s = samples[100]
        warm = median(s.warm)
        targets.add("warm round, N=100", secs(warm), f"< {WARM_TARGET} s", warm < WARM_TARGET)
        if s.manual is not None:
            speedup = s.manual / median(s.cold)
            targets.add(
                "N=100: manual routine / pullwatch cold round",
                f"{speedup:.1f}x",
                f">= {SPEEDUP_TARGET:.0f}x",
                speedup >= SPEEDUP_TARGET,
            )
            check_speedup = s.manual / median(s.check_wall)
            targets.add(
                "N=100: manual routine / `pullwatch check` process (info)",
                f"{check_speedup:.1f}x",
            )
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
        ca, cb = median(samples[a].check_wall), median(samples[b].check_wall)
        growth.add(f"`check` process, N={a} -> {b}", f"exponent {slope(a, ca, b, cb):.2f}")
        ra, rb = samples[a].check_rss, samples[b].check_rss
        growth.add(
            f"`check` peak RSS, N={a} -> {b}",
            f"{mib(ra)} -> {mib(rb)} (+{(rb - ra) / (b - a) / 1024:.1f} KiB/identity)",
        )
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
