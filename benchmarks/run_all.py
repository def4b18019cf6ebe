"""Every performance figure of issues 7 and 12, each beside its target, and a summary.

    python benchmarks/run_all.py                 # the full set (~15 minutes on 2 cores)
    python benchmarks/run_all.py --quick         # smaller N, fewer runs (~4 minutes)
    python benchmarks/run_all.py --only check,startup
    python benchmarks/run_all.py --markdown README.md   # regenerate README's ## Performance

Areas:
  check    the `pullwatch check` process with the real Secret Service (gnome-keyring in
           dbus-run-session) against the seed's curl/jq routine, N = 10, 100, 1000; `identity
           add`; the simulated hub's listen backlog (a burst of 32 connects)
  keyring  SecretStore reads from the real Secret Service, N = 10, 100, 1000
  startup  the dashboard on a pty, read through a terminal emulator: first frame and first data
           rows against a one-label Textual app, the warm round until the new numbers are on
           screen, N = 10, 100, 1000; `check`'s import time
  rounds   the engine's rounds in-process (requests per identity, concurrency, growth with N)
  idle     CPU and terminal bytes of the dashboard left running on a pty
  scale    peak RSS with 1000 identities; applying a round of 1000 readings, repaint included
  growth   history queries, `check` as history grows, estimates
  pacing   request pacing (benchmarks/pacing.py: run when it exists and has run(quick))

Everything runs on loopback against `pullwatch simhub` in its own process, 50 ms added to every
answer, in throwaway directories. Benchmarks are not tests: nothing here runs in the test suite.
Before/after comparisons of two source trees: `benchmarks/compare.py`.

`--markdown FILE` writes the Performance section made from this run: into FILE's
`## Performance` section when FILE has one (the rest of the file is kept), else FILE is the
section alone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _common import BENCH_DIR, SIM_LATENCY, Table

AREAS = ("check", "keyring", "startup", "rounds", "idle", "scale", "growth", "pacing")


def _area(name: str) -> Callable[[bool], list[Table]] | None:
    """The area's `run(quick) -> list[Table]`; None for an optional area that is absent."""
    if name == "pacing" and not (BENCH_DIR / "pacing.py").exists():
        return None
    module = importlib.import_module({"keyring": "keyring_reads"}.get(name, name))
    run = getattr(module, "run", None)
    if run is None:
        if name == "pacing":  # optional, and its own until it has the others' entry point
            return None
        raise RuntimeError(f"benchmarks/{name}.py has no run(quick)")

    def call(quick: bool) -> list[Table]:
        found = run(quick)
        if isinstance(found, tuple):  # rounds.run: (tables, samples)
            found = found[0]
        return list(found)

    return call


# -- the README section ---------------------------------------------------------------------------

SECTION = "## Performance"

INTRO = """\
pullwatch runs for hours over SSH on busy hosts, so it is measured as the user runs it: the
`pullwatch check` process and the dashboard as processes (the dashboard on a pseudo-terminal,
read through a terminal emulator: a clock stops when the thing measured is on screen), secrets
in a real Secret Service (gnome-keyring in `dbus-run-session`, started by the benchmark in a
throwaway home), and the simulated hub (`pullwatch simhub`) in its own process on loopback with
50 ms added to every answer. Comparisons are made side by side in the same run (the machine is
shared, absolute times drift). One command prints every figure beside its target, medians of
several runs, and writes this section:

```sh
pip install -r benchmarks/requirements.txt     # pyte: the terminal emulator
python benchmarks/run_all.py --markdown README.md   # ~15 minutes on 2 cores; --quick: ~4
python benchmarks/compare.py --before OTHER_CHECKOUT/src   # two source trees, same harness
```
"""


# figures without a target that the README shows beside the targets (what the ratios divide)
INFO = re.compile(
    r"`check` process, (real Secret Service|in-memory keyring)|seed's curl/jq routine"
    r"|one-label Textual app: its label|warm round, `r`"
)


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _wrap(text: str, width: int = 100) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)


def markdown(tables: list[Table], header: str, quick: bool, seconds: float) -> str:
    """The README's Performance section: every figure with a target, met or not."""
    lines = [SECTION, "", INTRO]
    lines += _wrap(
        f"Latest run ({header}; {seconds / 60:.0f} minutes{', --quick' if quick else ''}):"
    )
    lines += ["", "| figure | measured | target | |", "|---|---|---|---|"]
    # the history queries (growth.py): one line for all of them
    history = [r for t in tables for r in t.rows if r.target == "index, no scan"]
    for table in tables:
        for row in table.rows:
            if not row.verdict and INFO.search(row.figure):
                lines.append(f"| {_cell(row.figure)} | {_cell(row.measured)} | | (figure) |")
                continue
            if not row.verdict or any(row is h for h in history[1:]):
                continue
            figure, measured, ok = row.figure, row.measured, row.verdict == "PASS"
            if history and row is history[0]:
                slowest = max(history, key=lambda r: float(r.measured.split()[0]))
                figure = f"history queries ({len(history)}, 6 k to 1 M rows)"
                measured = f"slowest {slowest.measured}"
                ok = all(r.verdict == "PASS" for r in history)
            mark = "met" if ok else "**not met**"
            lines.append(f"| {_cell(figure)} | {_cell(measured)} | {_cell(row.target)} | {mark} |")
    misses = [r for t in tables for r in t.rows if r.verdict == "MISS"]
    lines.append("")
    if misses:
        lines.append(f"Not met in this run ({len(misses)}):")
        lines.append("")
        for r in misses:
            wrapped = _wrap(f"{_cell(r.figure)}: {_cell(r.measured)} against {_cell(r.target)}", 98)
            lines.append("- " + wrapped[0])
            lines += ["  " + more for more in wrapped[1:]]
    else:
        lines.append("Every target was met in this run.")
    lines.append("")
    lines += _wrap(
        "The full output of `run_all.py` has every figure, with or without a target, and the "
        "notes on how each was measured; each script's docstring says what its clock includes. "
        "The in-memory keyring appears only on lines that say so."
    )
    lines.append("")
    return "\n".join(lines)


def write_markdown(path: Path, section: str) -> None:
    if path.exists():
        text = path.read_text(encoding="utf-8")
        match = re.search(rf"^{re.escape(SECTION)}\s*$", text, flags=re.MULTILINE)
        if match:
            after = re.search(r"^## ", text[match.end() :], flags=re.MULTILINE)
            end = match.end() + after.start() if after else len(text)
            path.write_text(text[: match.start()] + section + "\n" + text[end:], encoding="utf-8")
            return
    path.write_text(section, encoding="utf-8")


def from_saved(saved: Path, target: Path | None) -> int:
    if target is None:
        print("--from-saved needs --markdown FILE", file=sys.stderr)
        return 64
    first, *rest = saved.read_text("utf-8").splitlines()
    meta = json.loads(first)
    tables = [Table.from_json(line) for line in rest if line.strip()]
    write_markdown(target, markdown(tables, meta["header"], meta["quick"], meta["seconds"]))
    print(f"Performance section written to {target} (from {saved})", flush=True)
    return 0


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller N, fewer runs")
    parser.add_argument("--only", help=f"comma-separated areas: {', '.join(AREAS)}")
    parser.add_argument(
        "--markdown", type=Path, metavar="FILE", help="write the Performance section to FILE"
    )
    parser.add_argument(
        "--save", type=Path, metavar="FILE", help="also keep this run's tables (JSON lines)"
    )
    parser.add_argument(
        "--from-saved",
        type=Path,
        metavar="FILE",
        help="measure nothing: make the --markdown section from a run kept with --save",
    )
    args = parser.parse_args(argv)
    if args.from_saved is not None:
        return from_saved(args.from_saved, args.markdown)
    chosen = [a.strip() for a in (args.only or ",".join(AREAS)).split(",") if a.strip()]
    unknown = set(chosen) - set(AREAS)
    if unknown:
        parser.error(f"unknown area(s): {', '.join(sorted(unknown))}")

    load = os.getloadavg()
    header = (
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load {load[0]:.2f} "
        f"{load[1]:.2f} {load[2]:.2f} at the start; simulated hub +{SIM_LATENCY * 1000:.0f} ms "
        "per answer"
    )
    print(f"pullwatch benchmarks{' (quick)' if args.quick else ''}: {header}\n", flush=True)
    started = time.perf_counter()
    tables: list[Table] = []
    failed: list[str] = []
    for area in chosen:
        run = _area(area)
        if run is None:
            print(
                f"  ({area}: benchmarks/{area}.py not present or without run(quick), skipped)\n",
                flush=True,
            )
            continue
        area_started = time.perf_counter()
        found = None
        for attempt in (1, 2):
            try:
                found = run(args.quick)
                break
            except Exception as exc:  # one broken area must not lose the others' figures
                # gnome-keyring-daemon 46 aborts now and then on a GLib assertion (see
                # _secretservice.serve): a run it spoilt is made once more, and says so
                again = " - once more" if attempt == 1 else ""
                print(f"  ({area} FAILED: {type(exc).__name__}: {exc}{again})\n", flush=True)
        if found is None:
            failed.append(area)
            continue
        for table in found:
            table.print()
        print(f"  ({area}: {time.perf_counter() - area_started:.0f} s)\n", flush=True)
        tables += found

    seconds = time.perf_counter() - started
    summary = Table("Summary: every figure with a target")
    for table in tables:
        for row in table.rows:
            if row.verdict:
                summary.add(row.figure.strip(), row.measured, row.target, row.verdict == "PASS")
    misses = summary.misses
    summary.note(
        f"{len(summary.rows) - len(misses)} of {len(summary.rows)} targets met; "
        f"run took {seconds:.0f} s"
        + (f"; areas that failed: {', '.join(failed)}" if failed else "")
    )
    summary.print()
    if args.save is not None:
        meta = {"header": header, "quick": args.quick, "seconds": seconds}
        args.save.write_text(
            "\n".join([json.dumps(meta), *(t.to_json() for t in tables)]) + "\n", "utf-8"
        )
    if args.markdown is not None:
        if failed:
            print(f"--markdown: not written, areas failed: {', '.join(failed)}", file=sys.stderr)
            return 2
        write_markdown(args.markdown, markdown(tables, header, args.quick, seconds))
        print(f"Performance section written to {args.markdown}", flush=True)
    return 1 if misses or failed else 0


if __name__ == "__main__":
    sys.exit(main())
