"""The dashboard as the user sees it: start-up and a warm round, on a terminal, and check's imports.

What "on screen" means here: the program runs as a fresh process on a pseudo-terminal (120x40,
its controlling terminal, as over SSH) and everything it writes goes through a VT emulator
(pyte, `_common.Screen`) chunk by chunk; a clock stops at the chunk after which the emulated
screen shows the thing measured. That is what reaches a user's terminal - unlike Textual's
`run_test` pilot, whose headless driver throws the output away, or a search of the byte
stream, which can match text that is drawn and overwritten in the same frame. (The time a
real terminal takes to draw those bytes is not included; it is the same for both programs.)

For N = 10, 100, 1000 identities (`--quick`: 10, 100), each with a secret in a real Secret
Service (gnome-keyring in `dbus-run-session`, `_secretservice.py`), against `pullwatch simhub`
in another process with 50 ms added to every answer, `interval = 600` (no scheduled round
during the measurements):

- a first run (not timed) probes once and quits: the history then holds a reading per
  identity, as for any user after their first day (N = 1000: a `pullwatch check`);
- start-up, alternating with a one-label Textual app (`minimal_app.py`) run the same way:
  - first frame: process start to the first screen showing the dashboard's status line
    ("pullwatch · N identities"); the minimal app's: its label;
  - first data rows: process start to the first screen on which every identity row shown has
    its numbers (`remaining/limit`), at least min(N, 10) rows - from the history or from the
    first round, whichever the dashboard paints first;
- the warm round, repaint included: with the dashboard up and its first round over, every
  account pulls once (other clients, through the simulator), `r` is pressed, and the clock
  stops at the first screen on which the status line no longer says "probing" and every
  identity row shown has the simulator's new remaining count. Tokens are cached (warm). Each
  round starts with the request pace's bucket refilled for it (N / 25 s after the last one, as
  between rounds a minute apart). N = 1000 is not timed: its round is more than one burst of
  the pace, and the dashboard spreads it over half the interval by design.

`pullwatch check --json` (N = 10, real Secret Service) runs under `python -X importtime`: its
import time (top-level imports, summed), its heaviest imports, and whether it imported
textual (it must not).

    python benchmarks/startup.py [--quick] [--sizes 10,100]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from _common import (
    BENCH_DIR,
    LIFTED_PACE,
    PULLWATCH,
    PYTHON,
    SIM_LATENCY,
    PtyApp,
    Screen,
    SimHub,
    Table,
    label_for,
    median,
    ms,
    progress,
    run_measured,
    secs,
    username_for,
    workdir,
    write_config,
)
from _secretservice import SecretService
from benchkeyring import secret_for

COLS, ROWS = 120, 40
MINIMAL_MARKER = b"minimal textual app: painted"
QUIT = b"\x11"  # ctrl+q quits both apps
FRAME_TARGET = 1.3  # first frame, x the one-label app
ROWS_TARGET = 2.0  # first data rows, x the one-label app
IMPORT_TARGET = 0.150  # s, `check`'s imports
WARM_TARGET = 0.5  # s, a warm round of 100 identities, repaint included
ROW = re.compile(r"^\s*(id\d{4})\s")
DATA = re.compile(r"\b(\d+)/(\d+)\b")


def first_paint(argv: list[str], env: dict[str, str], marker: bytes) -> float:
    """Seconds from start until `marker` reached the terminal (kept for compare.py)."""
    app = PtyApp(argv, env)
    try:
        when = app.wait_for(marker, timeout=60)
    finally:
        app.stop(QUIT)
    if when is None:
        raise RuntimeError(f"{argv} never painted {marker!r}")
    return when


# -- what the screen shows --------------------------------------------------------------------


def status_line(lines: list[str]) -> str:
    return next((line for line in lines if "pullwatch ·" in line), "")


def identity_rows(lines: list[str]) -> list[tuple[str, int | None]]:
    """(label, remaining or None) for every identity row on screen: the lines under the
    table's column headings, up to the first line that is not an identity row."""
    rows: list[tuple[str, int | None]] = []
    heading = next(
        (k for k, line in enumerate(lines) if "Identity" in line and "Remaining" in line), None
    )
    if heading is None:
        return rows
    for line in lines[heading + 1 :]:
        match = ROW.match(line)
        if not match:
            break
        data = DATA.search(line, match.end())
        rows.append((match.group(1), int(data.group(1)) if data else None))
    return rows


def shows_frame(lines: list[str]) -> bool:
    return bool(status_line(lines))


def shows_data(n: int) -> Callable[[list[str]], bool]:
    def shown(lines: list[str]) -> bool:
        rows = identity_rows(lines)
        return len(rows) >= min(n, 10) and all(value is not None for _, value in rows)

    return shown


def round_over(expected: dict[str, int]) -> Callable[[list[str]], bool]:
    def shown(lines: list[str]) -> bool:
        status = status_line(lines)
        if not status or "probing" in status:
            return False
        rows = identity_rows(lines)
        return bool(rows) and all(expected.get(label) == value for label, value in rows)

    return shown


def shows_label(lines: list[str]) -> bool:
    return any("minimal textual app: painted" in line for line in lines)


# -- runs ---------------------------------------------------------------------------------------


@dataclass
class Sample:
    n: int
    minimal: list[float] = field(default_factory=list)
    frame: list[float] = field(default_factory=list)
    data: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    skeleton: list[float] = field(default_factory=list)
    collection: str = ""
    restarts: int = 0


def one_start(
    argv: list[str], env: dict[str, str], marks: dict[str, Callable[..., bool]]
) -> dict[str, float]:
    app = PtyApp(argv, env, cols=COLS, rows=ROWS)
    screen = Screen(app, COLS, ROWS)
    out: dict[str, float] = {}
    try:
        for name, shown in marks.items():
            when = screen.wait_until(shown, timeout=60)
            if when is None:
                lines = "\n".join(screen.lines())
                raise RuntimeError(f"{argv[-1]}: the screen never showed {name}:\n{lines}")
            out[name] = when
    finally:
        app.stop(QUIT)
    return out


def warm_rounds(env: dict[str, str], sim: SimHub, n: int, rounds: int) -> list[float]:
    app = PtyApp(PULLWATCH, env, cols=COLS, rows=ROWS)
    screen = Screen(app, COLS, ROWS)
    times = []
    try:
        first = round_over({label_for(i): v for i, v in _remaining(sim, n).items()})
        if screen.wait_until(first, timeout=180) is None:
            shown = "\n".join(screen.lines())
            raise RuntimeError(f"N={n}: the first round never showed:\n{shown}")
        for _ in range(rounds):
            sim.pull_many([(username_for(i), 1) for i in range(1, n + 1)])
            expected = {label_for(i): v for i, v in _remaining(sim, n).items()}
            # the request pace's bucket refilled for this round (25/s), as between rounds a
            # minute apart; also lets the once-a-second tick's writes settle
            time.sleep(0.5 + n / 25)
            pressed = time.perf_counter() - app.started
            app.send(b"r")
            when = screen.wait_until(round_over(expected), timeout=30, after=pressed)
            if when is None:
                shown = "\n".join(screen.lines())
                raise RuntimeError(f"N={n}: the warm round never showed {expected}:\n{shown}")
            times.append(when - pressed)
    finally:
        app.stop(QUIT)
    return times


def _remaining(sim: SimHub, n: int) -> dict[int, int]:
    left = sim.remaining()
    return {i: left[username_for(i)] for i in range(1, n + 1)}


def measure(n: int, quick: bool) -> Sample:
    s = Sample(n)
    runs = 4 if quick else 5
    with (
        workdir() as work,
        SimHub(n, SIM_LATENCY, work.root) as sim,
        SecretService(work.root) as service,
    ):
        s.collection = service.collection
        write_config(work.config_dir, n, interval=600)
        env = work.env(sim.url, keyring=service)
        progress(f"start-up N={n}: storing {n} secrets")
        service.store([(label_for(i), secret_for(label_for(i))) for i in range(1, n + 1)], env)
        minimal = [PYTHON, str(BENCH_DIR / "minimal_app.py")]
        dashboard = PULLWATCH
        marks = {"first frame": shows_frame, "first data rows": shows_data(n)}
        progress(f"start-up N={n}: first run (history, byte code)")
        one_start(minimal, env, {"label": shows_label})
        if n >= 1000:
            # the history from a `check` with the pace lifted; the dashboard's own round of
            # 1000 is more than one burst of the pace, spread over half the interval by design
            done = run_measured([*PULLWATCH, "check"], {**env, **LIFTED_PACE})
            if done.returncode not in (0, 1, 2):
                raise RuntimeError(f"N={n}: check exited {done.returncode}: {done.stderr[-300:]!r}")
        else:  # also the untimed first run
            s.warm = warm_rounds(env, sim, n, 3 if quick else 5)
        for k in range(runs):
            progress(f"start-up N={n}: run {k + 1}/{runs}")
            s.minimal.append(one_start(minimal, env, {"label": shows_label})["label"])
            got = one_start(dashboard, env, marks)
            s.frame.append(got["first frame"])
            s.data.append(got["first data rows"])
            if n == 10:
                skeleton = [PYTHON, str(BENCH_DIR / "skeleton_app.py")]
                s.skeleton.append(
                    one_start(skeleton, env, {"rows": lambda lines: "id0010" in "".join(lines)})[
                        "rows"
                    ]
                )
        if not service.alive():
            raise RuntimeError(f"the Secret Service died during the run: {service.log_tail()!r}")
        s.restarts = service.restarts()
    return s


def import_profile(env: dict[str, str]) -> tuple[float, list[tuple[str, float]], bool, float]:
    """`check --json` under -X importtime: total import s, heaviest top-level, textual?, wall."""
    done = run_measured([PYTHON, "-X", "importtime", *PULLWATCH[1:], "check", "--json"], env)
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


def check_imports(quick: bool) -> Table:
    table = Table("`pullwatch check` imports (N=10, real Secret Service, -X importtime)")
    with (
        workdir() as work,
        SimHub(10, SIM_LATENCY, work.root) as sim,
        SecretService(work.root) as service,
    ):
        write_config(work.config_dir, 10)
        env = work.env(sim.url, keyring=service)
        service.store([(label_for(i), secret_for(label_for(i))) for i in range(1, 11)], env)
        import_profile(env)  # byte code, challenge cache
        runs = [import_profile(env) for _ in range(3 if quick else 5)]
        base = median([run_measured([PYTHON, "-c", "pass"], env).wall for _ in range(3)])
    imports = median([r[0] for r in runs])
    textual = any(r[2] for r in runs)
    table.add("python -c pass (interpreter start, info)", ms(base))
    table.add(
        "`check`: import time (top-level imports, summed)",
        ms(imports),
        f"< {ms(IMPORT_TARGET)}",
        imports < IMPORT_TARGET,
    )
    table.add("`check` imports textual", "yes" if textual else "no", "no", not textual)
    heaviest = ", ".join(f"{name} {sec * 1000:.0f} ms" for name, sec in runs[0][1][:6])
    table.note(f"heaviest top-level imports: {heaviest}")
    return table


def report(samples: dict[int, Sample]) -> list[Table]:
    collection = next(iter(samples.values())).collection
    restarts = sum(s.restarts for s in samples.values())
    table = Table(
        f"The dashboard on a pty {COLS}x{ROWS}, on screen (real Secret Service, collection "
        f"{collection}; simulated hub +{SIM_LATENCY * 1000:.0f} ms)"
    )
    for n, s in sorted(samples.items()):
        base = median(s.minimal)
        frame, data = median(s.frame), median(s.data)
        table.add(f"N={n:<4} one-label Textual app: its label on screen", ms(base))
        table.add(
            f"N={n:<4} dashboard: first frame (status line), x the one-label app",
            f"{frame / base:.2f}x ({ms(frame)})",
            f"<= {FRAME_TARGET}x",
            frame / base <= FRAME_TARGET,
        )
        table.add(
            f"N={n:<4} dashboard: first data rows, x the one-label app",
            f"{data / base:.2f}x ({ms(data)})",
            f"<= {ROWS_TARGET:.0f}x",
            data / base <= ROWS_TARGET,
        )
        if s.skeleton:
            table.add(
                f"N={n:<4} the dashboard's widgets in plain Textual (skeleton_app.py, info)",
                f"{median(s.skeleton) / base:.2f}x ({ms(median(s.skeleton))})",
            )
        if s.warm:
            warm = median(s.warm)
            table.add(
                f"N={n:<4} warm round, `r` to the new numbers on screen",
                secs(warm),
                f"< {WARM_TARGET} s" if n == 100 else "",
                warm < WARM_TARGET if n == 100 else None,
            )
        else:
            table.add(
                f"N={n:<4} warm round",
                "not timed: more than one burst, spread over half the interval by design",
            )
        table.note(
            f"N={n}: per run, one-label app "
            + " ".join(f"{v * 1000:.0f}" for v in s.minimal)
            + " ms; first data rows "
            + " ".join(f"{v * 1000:.0f}" for v in s.data)
            + " ms"
        )
    table.note("data rows: every identity row shown has remaining/limit (>= min(N, 10) rows)")
    if restarts:
        table.note(f"gnome-keyring-daemon aborted and was restarted {restarts} time(s)")
    return [table]


def run(quick: bool = False, sizes: tuple[int, ...] | None = None) -> list[Table]:
    chosen = sizes or ((10, 100) if quick else (10, 100, 1000))
    samples = {n: measure(n, quick) for n in chosen}
    progress("start-up: `check` imports")
    return [*report(samples), check_imports(quick)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", help="comma-separated N (default 10,100,1000)")
    args = parser.parse_args(argv)
    sizes = tuple(int(x) for x in args.sizes.split(",")) if args.sizes else None
    for t in run(args.quick, sizes):
        t.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
