"""Idle cost over SSH: the dashboard left running, as it is for hours.

The real dashboard (`python -m pullwatch`, 20 identities, `interval = 60`) runs on a
pseudo-terminal (120x40, its controlling terminal) against the simulated hub in another process;
everything it writes is read and timed. After the first paint and the first round, a 60 s
window is measured: CPU seconds (utime + stime of the process, from /proc) and bytes written to
the terminal - what an SSH connection would carry. The window includes one scheduled round.

Which regions were written is read from the cursor positioning in the byte stream: status line,
table, detail pane, footer, with the widest run per region (a cell update is a short run; a
repainted table row is a run across the whole width). During the once-a-second ticks the table
must get no full-width row.

    python benchmarks/idle.py [--quick] [--seconds 60]
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import (
    PULLWATCH,
    SIM_LATENCY,
    PtyApp,
    SimHub,
    Table,
    cpu_seconds,
    label_for,
    progress,
    workdir,
    write_config,
)
from termwrites import by_region, runs

IDENTITIES = 20
COLS, ROWS = 120, 40
CPU_TARGET = 0.01  # of one core
BYTES_TARGET = 1024  # per second


def run(quick: bool = False, seconds: float | None = None) -> list[Table]:
    window = seconds or (20.0 if quick else 60.0)
    table = Table(
        f"Idle cost: dashboard, {IDENTITIES} identities, refresh 60 s, pty {COLS}x{ROWS}, "
        f"{window:.0f} s window"
    )
    with workdir() as work, SimHub(IDENTITIES, SIM_LATENCY, work.root) as sim:
        write_config(work.config_dir, IDENTITIES, interval=60)
        app = PtyApp(PULLWATCH, work.env(sim.url), cols=COLS, rows=ROWS)
        try:
            painted = app.wait_for(label_for(IDENTITIES).encode(), 60)
            if painted is None:
                raise RuntimeError("the dashboard never painted")
            # the first round is over when the header says when the next one is
            done = app.wait_for(b"next round", 60, start=0)
            if done is None:
                raise RuntimeError("the first round never finished")
            time.sleep(1.0)
            t0 = time.perf_counter() - app.started
            cpu0, bytes0 = cpu_seconds(app.pid), app.size
            progress(f"idle: measuring {window:.0f} s")
            time.sleep(window)
            t1 = time.perf_counter() - app.started
            cpu1, bytes1 = cpu_seconds(app.pid), app.size
            output = app.output()
            chunks = list(app.chunks)
        finally:
            code = app.stop()
    startup_bytes = bytes0
    cpu = (cpu1 - cpu0) / (t1 - t0)
    rate = (bytes1 - bytes0) / (t1 - t0)
    table.add("first paint (s after start)", f"{painted:.2f} s")
    table.add("first paint + first round: bytes to the terminal", f"{startup_bytes:,} B")
    table.add("first paint + first round: CPU", f"{cpu0:.2f} s")
    table.add("idle CPU (share of one core)", f"{cpu * 100:.2f} %", "< 1 %", cpu < CPU_TARGET)
    table.add(
        "idle terminal output", f"{rate:.0f} B/s", f"< {BYTES_TARGET} B/s", rate < BYTES_TARGET
    )

    # Which regions were written, outside and inside the scheduled round.
    layout = runs(output[:bytes0])
    table_rows = sorted({r.row for r in layout if r.text.strip().startswith("id0")})
    first, last = (table_rows[0] - 1, table_rows[-1]) if table_rows else (2, 2 + IDENTITIES)
    regions = [
        ("status line", 1, first - 1),
        ("table", first, last),
        ("detail pane", last + 1, ROWS - 1),
        ("footer", ROWS, ROWS),
    ]
    steady = [(w, d) for w, d in chunks if t0 <= w < t1]
    seconds_with_round: set[int] = set()
    for when, data in steady:
        if b"probing" in data:
            seconds_with_round.update({int(when), int(when) + 1})
    ticks = b"".join(d for w, d in steady if int(w) not in seconds_with_round)
    rounds = b"".join(d for w, d in steady if int(w) in seconds_with_round)
    for label, data in (("ticks", ticks), ("round", rounds)):
        for region in by_region(runs(data), regions, COLS):
            if region.writes:
                table.add(
                    f"{label}: {region.name} written",
                    f"{region.writes} runs, {region.cells} cells, widest {region.widest}, "
                    f"{region.full_rows} full rows",
                )
    tick_table = by_region(runs(ticks), regions, COLS)[1]
    table.add(
        "ticks: full-width table rows repainted",
        str(tick_table.full_rows),
        "0",
        tick_table.full_rows == 0,
    )
    table.add(
        "ticks: bytes", f"{len(ticks):,} B over {window - 2 * len(seconds_with_round) / 2:.0f} s"
    )
    table.add("the scheduled round: bytes", f"{len(rounds):,} B")
    table.note(
        f"window {t0:.1f}-{t1:.1f} s after start; exit code {code}; keyring: benchmark keyring"
    )
    return [table]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float)
    args = parser.parse_args(argv)
    for t in run(args.quick, args.seconds):
        t.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
