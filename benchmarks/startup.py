"""Start-up: process start to the first painted dashboard, against a minimal Textual app.

Both programs run the same way: a fresh process on a pseudo-terminal (120x40, its controlling
terminal, as over SSH) and the clock stops when the terminal has received the frame that shows
them - the minimal app's one label, the dashboard's last identity row (10 identities, against
the simulated hub in another process). Runs alternate between the two so drift hits both.

`pullwatch check` is timed as a process too, with `python -X importtime`: its import time, the
heaviest imports, and whether textual was imported (it must not be).

    python benchmarks/startup.py [--quick]
"""

from __future__ import annotations

import argparse
import re
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
    run_measured,
    workdir,
    write_config,
)

IDENTITIES = 10
MINIMAL_MARKER = b"minimal textual app: painted"
QUIT = b"\x11"  # ctrl+q quits both apps
RATIO_TARGET = 1.3


def first_paint(argv: list[str], env: dict[str, str], marker: bytes) -> float:
    app = PtyApp(argv, env)
    try:
        when = app.wait_for(marker, timeout=60)
    finally:
        app.stop(QUIT)
    if when is None:
        raise RuntimeError(f"{argv} never painted {marker!r}")
    return when


def import_profile(env: dict[str, str]) -> tuple[float, list[tuple[str, float]], bool, float]:
    """`check --json` under -X importtime: total import s, heaviest top-level, textual?, wall."""
    done = run_measured([PYTHON, "-X", "importtime", "-m", "pullwatch", "check", "--json"], env)
    if done.returncode not in (0, 1, 2):
        raise RuntimeError(f"check failed ({done.returncode}): {done.stderr[-500:]!r}")
    top: list[tuple[str, float]] = []
    textual = False
    pattern = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    for line in done.stderr.decode("utf-8", "replace").splitlines():
        match = pattern.match(line)
        if not match:
            continue
        name = match.group(4)
        if name == "textual" or name.startswith("textual."):
            textual = True
        if len(match.group(3)) == 1:  # top level: one space of indentation
            top.append((name, int(match.group(2)) / 1e6))
    total = sum(seconds for _, seconds in top)
    top.sort(key=lambda item: item[1], reverse=True)
    return total, top, textual, done.wall


def run(quick: bool = False) -> list[Table]:
    runs = 5 if quick else 9
    table = Table("Start-up: process start to first painted dashboard (pty 120x40)")
    with workdir() as work, SimHub(IDENTITIES, SIM_LATENCY, work.root) as sim:
        write_config(work.config_dir, IDENTITIES)
        env = work.env(sim.url)
        minimal = [PYTHON, str(BENCH_DIR / "minimal_app.py")]
        skeleton = [PYTHON, str(BENCH_DIR / "skeleton_app.py")]
        dashboard = [PYTHON, "-m", "pullwatch"]
        marker = label_for(IDENTITIES).encode()
        first_paint(minimal, env, MINIMAL_MARKER)  # warm the page cache and .pyc files
        first_paint(dashboard, env, marker)
        first_paint(skeleton, env, marker)
        mins: list[float] = []
        dashes: list[float] = []
        skels: list[float] = []
        for n in range(runs):
            progress(f"start-up run {n + 1}/{runs}")
            mins.append(first_paint(minimal, env, MINIMAL_MARKER))
            dashes.append(first_paint(dashboard, env, marker))
            skels.append(first_paint(skeleton, env, marker))
        base = run_measured([PYTHON, "-c", "pass"], env).wall
        table.add("python -c pass (interpreter start)", ms(base))
        table.add("minimal Textual app, one label", ms(median(mins)))
        table.add("the dashboard's widgets in plain Textual (skeleton_app.py)", ms(median(skels)))
        table.add(f"pullwatch dashboard, {IDENTITIES} identities", ms(median(dashes)))
        ratio = median(dashes) / median(mins)
        table.add(
            "ratio dashboard / minimal app", f"{ratio:.2f}", f"<= {RATIO_TARGET}", ratio <= 1.3
        )
        table.add(
            "ratio dashboard / Textual skeleton of it (info)",
            f"{median(dashes) / median(skels):.2f}",
        )
        table.note(
            f"{runs} alternating runs each; the dashboard's marker is its last row "
            f"({label_for(IDENTITIES)}); keyring: benchmark keyring (in memory)"
        )
        table.note(
            "per run, minimal: "
            + " ".join(f"{v * 1000:.0f}" for v in mins)
            + " ms; dashboard: "
            + " ".join(f"{v * 1000:.0f}" for v in dashes)
            + " ms"
        )

        check_runs = [import_profile(env) for _ in range(3 if quick else 5)]
        imports = median([c[0] for c in check_runs])
        walls = median([c[3] for c in check_runs])
        textual = any(c[2] for c in check_runs)
        table.add(f"`pullwatch check --json`, {IDENTITIES} identities: wall", ms(walls))
        table.add("`pullwatch check`: import time (-X importtime, top level)", ms(imports))
        table.add(
            "`pullwatch check` imports textual", "yes" if textual else "no", "no", not textual
        )
        heaviest = ", ".join(f"{name} {sec * 1000:.0f} ms" for name, sec in check_runs[0][1][:6])
        table.note(f"check's heaviest top-level imports: {heaviest}")
    return [table]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    tables = run(args.quick)
    for t in tables:
        t.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
