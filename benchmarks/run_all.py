"""Every performance figure of issue 7, with its target and the side-by-side comparisons.

    python benchmarks/run_all.py            # the full set (~8 minutes on 2 cores)
    python benchmarks/run_all.py --quick    # smaller N and shorter windows (~3 minutes)
    python benchmarks/run_all.py --only rounds,idle

Areas: rounds (N = 1..1000 against the simulated hub, and the manual curl/jq routine),
startup (first painted dashboard against a minimal Textual app; `check`'s import time),
idle (CPU and terminal bytes of the dashboard on a pty), scale (peak RSS with 1000 identities,
applying a round of 1000 readings), growth (history queries, `check` as history grows,
estimates). Each prints its tables as it finishes; a summary of every target closes the run.
Benchmarks are not tests: nothing here runs in the test suite. Before/after comparisons of
two source trees: `benchmarks/compare.py`.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import growth
import idle
import rounds
import scale
import startup
from _common import SIM_LATENCY, Table

AREAS = ("rounds", "startup", "idle", "scale", "growth")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller N, shorter windows")
    parser.add_argument("--only", help=f"comma-separated areas: {', '.join(AREAS)}")
    args = parser.parse_args(argv)
    chosen = [a.strip() for a in (args.only or ",".join(AREAS)).split(",") if a.strip()]
    unknown = set(chosen) - set(AREAS)
    if unknown:
        parser.error(f"unknown area(s): {', '.join(sorted(unknown))}")

    load = os.getloadavg()
    print(
        f"pullwatch benchmarks{' (quick)' if args.quick else ''}: python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, load {load[0]:.2f} "
        f"{load[1]:.2f} {load[2]:.2f}; simulated hub +{SIM_LATENCY * 1000:.0f} ms per answer\n",
        flush=True,
    )
    started = time.perf_counter()
    tables: list[Table] = []
    for area in chosen:
        area_started = time.perf_counter()
        if area == "rounds":
            found, _ = rounds.run(args.quick)
        elif area == "startup":
            found = startup.run(args.quick)
        elif area == "idle":
            found = idle.run(args.quick)
        elif area == "scale":
            found = scale.run(args.quick)
        else:
            found = growth.run(args.quick)
        for table in found:
            table.print()
        print(f"  ({area}: {time.perf_counter() - area_started:.0f} s)\n", flush=True)
        tables += found

    summary = Table("Summary: every figure with a target")
    for table in tables:
        for row in table.rows:
            if row.verdict:
                summary.add(row.figure.strip(), row.measured, row.target, row.verdict == "PASS")
    misses = [r for r in summary.rows if r.verdict == "MISS"]
    summary.note(
        f"{len(summary.rows) - len(misses)} of {len(summary.rows)} targets met; "
        f"run took {time.perf_counter() - started:.0f} s"
    )
    summary.print()
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
