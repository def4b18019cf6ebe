"""Before/after: the same measurements against two pullwatch source trees, in one run.

    git worktree add /tmp/pullwatch-before <commit>        # a tree before the change
    python benchmarks/compare.py --before /tmp/pullwatch-before/src [--after src]

Each figure is measured for the "before" tree and right after for the "after" tree (the
default: this checkout's `src`), by this harness, so only pullwatch's code differs. Each
measurement runs in its own process with that tree first on `PYTHONPATH` (subprocesses too).
`--before-without-sniffio` makes the before runs behave as if `sniffio` were not installed
(importing it fails after the same search of `sys.path`), as before pullwatch depended on it.

    python benchmarks/compare.py --before DIR [--probes rounds,startup,idle,apply,check]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    PULLWATCH,
    PYTHON,
    REPO,
    SIM_LATENCY,
    PtyApp,
    SimHub,
    Table,
    cpu_seconds,
    label_for,
    median,
    progress,
    run_measured,
    workdir,
    write_config,
)

NO_SNIFFIO = '''
import importlib.machinery, sys

class _NoSniffio:
    """`import sniffio` fails, after the search of sys.path a missing module costs."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "sniffio" or name.startswith("sniffio."):
            importlib.machinery.PathFinder.find_spec("sniffio_not_installed_for_benchmark")
            raise ModuleNotFoundError("No module named 'sniffio'", name="sniffio")
        return None

sys.meta_path.insert(0, _NoSniffio)
'''


# -- probes: each runs in its own process, with the tree under test first on sys.path --------


def probe_rounds() -> dict[str, float]:
    from benchkeyring import secret_for
    from rounds import KINDS

    from pullwatch.identities.secrets import MemoryKeyring, SecretStore
    from pullwatch.paths import Paths
    from pullwatch.runtime import build_runtime

    out: dict[str, float] = {}
    sizes = [int(x) for x in os.environ.get("PULLWATCH_COMPARE_SIZES", "100").split(",")]
    for n in sizes:
        with workdir() as work, SimHub(n, SIM_LATENCY, work.root) as sim:
            write_config(work.config_dir, n)
            root = work.root
            paths = Paths(root / "config", root / "data", root / "cache")
            backend = MemoryKeyring()
            for i in range(1, n + 1):
                backend.set_password(SecretStore.SERVICE, label_for(i), secret_for(label_for(i)))
            runtime = build_runtime(paths, registry=sim.url, secrets=SecretStore(backend), env={})

            async def go(n: int, runtime: Any) -> tuple[list[float], list[float], float, float]:
                colds, warms, cold_cpu, warm_cpu = [], [], [], []
                for _ in range(2 if n >= 1000 else 4):
                    async with runtime.client() as client:
                        monitor = runtime.monitor(client)
                        before = sim.counters()
                        c0, t0 = time.process_time(), time.perf_counter()
                        await monitor.round()
                        colds.append(time.perf_counter() - t0)
                        requests = sum(sim.counters()[k] - before[k] for k in KINDS)
                        cold_cpu.append((time.process_time() - c0) / requests)
                        for _ in range(3):
                            c0, t0 = time.process_time(), time.perf_counter()
                            await monitor.round()
                            warms.append(time.perf_counter() - t0)
                            warm_cpu.append((time.process_time() - c0) / n)
                return colds[1:], warms, median(cold_cpu[1:]), median(warm_cpu)

            colds, warms, cold_cpu, warm_cpu = asyncio.run(go(n, runtime))
            out[f"N={n}: cold round (s)"] = median(colds)
            out[f"N={n}: warm round (s)"] = median(warms)
            out[f"N={n}: CPU per request, cold (ms)"] = cold_cpu * 1000
            out[f"N={n}: CPU per request, warm (ms)"] = warm_cpu * 1000
    return out


def probe_startup() -> dict[str, float]:
    from startup import MINIMAL_MARKER, first_paint

    with workdir() as work, SimHub(10, SIM_LATENCY, work.root) as sim:
        write_config(work.config_dir, 10)
        env = work.env(sim.url)
        minimal = [PYTHON, str(BENCH_DIR / "minimal_app.py")]
        dashboard = PULLWATCH
        marker = label_for(10).encode()
        first_paint(minimal, env, MINIMAL_MARKER)
        first_paint(dashboard, env, marker)
        mins, dashes = [], []
        for _ in range(7):
            mins.append(first_paint(minimal, env, MINIMAL_MARKER))
            dashes.append(first_paint(dashboard, env, marker))
        return {
            "first paint, dashboard 10 identities (ms)": median(dashes) * 1000,
            "first paint, minimal Textual app (ms)": median(mins) * 1000,
            "ratio dashboard / minimal": median(dashes) / median(mins),
        }


def probe_idle() -> dict[str, float]:
    window = 30.0
    with workdir() as work, SimHub(20, SIM_LATENCY, work.root) as sim:
        write_config(work.config_dir, 20, interval=60)
        app = PtyApp(PULLWATCH, work.env(sim.url), cols=120, rows=40)
        try:
            if app.wait_for(b"next round", 60) is None:
                raise RuntimeError("no first round")
            time.sleep(1)
            c0, b0, t0 = cpu_seconds(app.pid), app.size, time.perf_counter()
            time.sleep(window)
            c1, b1, t1 = cpu_seconds(app.pid), app.size, time.perf_counter()
        finally:
            app.stop()
    return {
        f"idle CPU, 20 identities, {window:.0f} s without a round (% of a core)": (c1 - c0)
        / (t1 - t0)
        * 100,
        "idle terminal output (B/s)": (b1 - b0) / (t1 - t0),
    }


def probe_apply() -> dict[str, float]:
    """The table's reading path with 1000 identities. The readings are made here, the same for
    both trees (a tree whose cold round of 1000 took minutes could not make them in time)."""
    from benchkeyring import secret_for
    from growth import _reading

    from pullwatch.identities.secrets import MemoryKeyring, SecretStore
    from pullwatch.paths import Paths
    from pullwatch.runtime import build_runtime
    from pullwatch.tui.app import make_app

    n = 1000

    async def go(root: Path) -> dict[str, float]:
        paths = Paths(root / "config", root / "data", root / "cache")
        backend = MemoryKeyring()
        for i in range(1, n + 1):
            backend.set_password(SecretStore.SERVICE, label_for(i), secret_for(label_for(i)))
        runtime = build_runtime(
            paths, registry="http://127.0.0.1:9", secrets=SecretStore(backend), env={}
        )
        app = make_app(runtime, auto_rounds=False, watch_terminal=False)
        out: dict[str, float] = {}
        async with app.run_test(size=(120, 40)) as pilot:
            await app.history_loaded.wait()
            await pilot.pause()
            table = app.dashboard.table
            rebuilds = table.rebuilds
            now = time.time()
            for name, k in (("first round", 0), ("next round", 1)):
                readings = [_reading(i, now + k * 60, k) for i in range(1, n + 1)]
                started = time.perf_counter()
                for reading in readings:
                    app._show(reading)
                out[f"apply 1000 readings, {name} (ms)"] = (time.perf_counter() - started) * 1e3
                await pilot.pause()
            ticks = []
            for _ in range(5):
                started = time.perf_counter()
                app._tick()
                ticks.append(time.perf_counter() - started)
            out["once-a-second tick, 1000 identities (ms)"] = median(ticks) * 1000
            out["table rebuilds while applying"] = table.rebuilds - rebuilds
        return out

    runs = []
    for _ in range(3):
        with workdir() as work:
            write_config(work.config_dir, n)
            runs.append(asyncio.run(go(work.root)))
    return {key: median([r[key] for r in runs]) for key in runs[0]}


def probe_check() -> dict[str, float]:
    from growth import fill

    out: dict[str, float] = {}
    argv = [*PULLWATCH, "check", "--json"]
    big = int(os.environ.get("PULLWATCH_COMPARE_CHECK", "300"))
    with workdir() as work, SimHub(big, SIM_LATENCY, work.root) as sim:
        write_config(work.config_dir, big)
        env = work.env(sim.url)
        run_measured(argv, env)
        runs = [run_measured(argv, env) for _ in range(2)]
        out[f"`check` {big} identities: wall (s)"] = median([r.wall for r in runs])
        out[f"`check` {big} identities: peak RSS (MiB)"] = max(r.max_rss for r in runs) / 2**20
    with workdir() as work, SimHub(100, SIM_LATENCY, work.root) as sim:
        write_config(work.config_dir, 100)
        env = work.env(sim.url)
        run_measured(argv, env)
        fill(work.data_dir / "history.sqlite3", 24, time.time())
        runs = [run_measured(argv, env) for _ in range(2)]
        out["`check` 100 identities + 24 h history: wall (s)"] = median([r.wall for r in runs])
        out["`check` 100 identities + 24 h history: peak RSS (MiB)"] = (
            max(r.max_rss for r in runs) / 2**20
        )
    return out


PROBES = {
    "rounds": probe_rounds,
    "startup": probe_startup,
    "idle": probe_idle,
    "apply": probe_apply,
    "check": probe_check,
}


def _measure(probe: str, tree: Path, no_sniffio: bool) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    paths = [str(tree), str(BENCH_DIR)]
    with tempfile.TemporaryDirectory(prefix="pullwatch-compare-") as extra:
        if no_sniffio:
            Path(extra, "sitecustomize.py").write_text(NO_SNIFFIO)
            paths.insert(0, extra)
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PULLWATCH_BENCH_SRC"] = str(tree)
        done = subprocess.run(
            [PYTHON, str(Path(__file__).resolve()), "--probe", probe],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"probe {probe} on {tree} failed:\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(before: Path, after: Path, probes: list[str], no_sniffio: bool) -> list[Table]:
    tables = []
    for probe in probes:
        table = Table(f"Before / after: {probe}")
        table.headers = ("figure", "before -> after", "after / before", "")
        progress(f"compare {probe}: before ({before})")
        old = _measure(probe, before, no_sniffio)
        progress(f"compare {probe}: after ({after})")
        new = _measure(probe, after, False)
        for name, value in old.items():
            now = new.get(name)
            if now is None:
                continue
            change = f"{now / value:.2f}x" if value else "-"
            table.add(name, f"{value:.3g} -> {now:.3g}", change)
        table.note(f"before: {before}{' (sniffio made unimportable)' if no_sniffio else ''}")
        table.note(f"after: {after}")
        tables.append(table)
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="the `src` directory of the tree before")
    parser.add_argument("--after", type=Path, default=REPO / "src")
    parser.add_argument("--probes", default=",".join(PROBES))
    parser.add_argument("--before-without-sniffio", action="store_true")
    parser.add_argument(
        "--round-sizes",
        default="100",
        help="N for the rounds probe (default 100; 1000 takes minutes on a tree whose "
        "redaction recompiled a regex per token)",
    )
    parser.add_argument(
        "--check-size", default="300", help="identities for the `check` probe (default 300)"
    )
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(PROBES[args.probe]()))
        return 0
    if args.before is None:
        parser.error("--before DIR is required")
    chosen = [p.strip() for p in args.probes.split(",") if p.strip()]
    os.environ["PULLWATCH_COMPARE_SIZES"] = args.round_sizes
    os.environ["PULLWATCH_COMPARE_CHECK"] = args.check_size
    tables = run(args.before.resolve(), args.after.resolve(), chosen, args.before_without_sniffio)
    for t in tables:
        t.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
