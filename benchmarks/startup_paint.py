"""Paint first: process start to the dashboard's first frame, its first data rows, and the end
of its first live round, against a one-label Textual app (`minimal_app.py`).

The same pseudo-terminal as `startup.py` (120x40, its controlling terminal). Three clocks stop
on what the terminal has received:

- first frame: the frame with every identity's row (the last label, from the config);
- first data rows: the last identity's numbers (`190/200`), from the history database (the last
  values, stale) or from the live round, whichever the terminal shows first;
- live: the header's `next round` countdown, shown once the first round has finished.

The history database is filled by the warm-up run, as it would be by any earlier run, so the
timed runs start with last values to show. Runs alternate between the two programs.

    python benchmarks/startup_paint.py [--quick] [--identities N]
"""

from __future__ import annotations

import argparse
import sys

from _common import (
    BENCH_DIR,
    PYTHON,
    SIM_LATENCY,
    PtyApp,
    SimHub,
    Table,
    label_for,
    median,
    ms,
    progress,
    workdir,
    write_config,
)

MINIMAL_MARKER = b"minimal textual app: painted"
LIVE_MARKER = b"next round"
QUIT = b"\x11"  # ctrl+q quits both apps
FRAME_TARGET = 1.3
DATA_TARGET = 2.0


def remaining_marker(n: int) -> bytes:
    """The last identity's `remaining/limit` as the table shows it (see _common.write_accounts:
    200 per 6 h, `i % 150` used)."""
    return f"{200 - n % 150}/200".encode()


def timed(argv: list[str], env: dict[str, str], markers: list[bytes]) -> list[float]:
    """Seconds from spawn until each marker first reached the terminal."""
    app = PtyApp(argv, env)
    try:
        found = []
        for marker in markers:
            when = app.wait_for(marker, timeout=60)
            if when is None:
                raise RuntimeError(f"{argv} never showed {marker!r}")
            found.append(when)
        return found
    finally:
        app.stop(QUIT)


def run(quick: bool = False, identities: int = 10) -> list[Table]:
    runs = 5 if quick else 9
    table = Table(f"Paint first: dashboard start-up, {identities} identities (pty 120x40)")
    with workdir() as work, SimHub(identities, SIM_LATENCY, work.root) as sim:
        write_config(work.config_dir, identities)
        env = work.env(sim.url)
        minimal = [PYTHON, str(BENCH_DIR / "minimal_app.py")]
        dashboard = [PYTHON, "-m", "pullwatch"]
        markers = [label_for(identities).encode(), remaining_marker(identities), LIVE_MARKER]
        timed(minimal, env, [MINIMAL_MARKER])  # warm the page cache and the byte code
        timed(dashboard, env, markers)  # ... and leave a history behind
        mins: list[float] = []
        frames: list[float] = []
        datas: list[float] = []
        lives: list[float] = []
        for n in range(runs):
            progress(f"paint-first run {n + 1}/{runs}")
            mins.append(timed(minimal, env, [MINIMAL_MARKER])[0])
            frame, data, live = timed(dashboard, env, markers)
            frames.append(frame)
            datas.append(data)
            lives.append(live)
        base = median(mins)
        table.add("minimal Textual app, one label", ms(base))
        table.add("dashboard: first frame (every label)", ms(median(frames)))
        table.add("dashboard: first data rows (last values)", ms(median(datas)))
        table.add("dashboard: first live round done", ms(median(lives)))
        ratio = median(frames) / base
        table.add(
            "ratio first frame / minimal app",
            f"{ratio:.2f}",
            f"<= {FRAME_TARGET}",
            ratio <= FRAME_TARGET,
        )
        ratio = median(datas) / base
        table.add(
            "ratio first data rows / minimal app",
            f"{ratio:.2f}",
            f"<= {DATA_TARGET}",
            ratio <= DATA_TARGET,
        )
        table.note(f"{runs} alternating runs each; keyring: benchmark keyring (in memory)")
        table.note(
            "per run (ms), minimal: "
            + " ".join(f"{v * 1000:.0f}" for v in mins)
            + "; frame: "
            + " ".join(f"{v * 1000:.0f}" for v in frames)
            + "; data: "
            + " ".join(f"{v * 1000:.0f}" for v in datas)
        )
    return [table]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--identities", type=int, default=10)
    args = parser.parse_args(argv)
    for t in run(args.quick, args.identities):
        t.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
