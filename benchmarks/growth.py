"""Growth: what grows with the history, and whether the estimates stay bounded.

Round time and memory against N are measured by `rounds.py` and `scale.py`; this module adds:

- History queries as the database grows (100 identities read once a minute for 1 h, 24 h and
  7 days: 6 k, 144 k and 1 M rows): the query plan of every query the app makes (an index must
  be used: no full scan) and its time, median of several calls.
- `pullwatch check` (a process, 100 identities, simulated hub) as the history grows: `check`
  adds its readings and reads back the kept estimates and sources (it should stay flat).
- The recovery estimates and sparkline series (`RecentHistory`): time per added reading and
  the state kept, after 10 k and 100 k readings of one bucket (incremental and bounded).

    python benchmarks/growth.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _common import (
    PULLWATCH,
    SIM_LATENCY,
    SimHub,
    Table,
    label_for,
    mib,
    progress,
    run_measured,
    username_for,
    workdir,
    write_config,
)

from pullwatch.history import History
from pullwatch.reading import Reading, State
from pullwatch.recent import RecentHistory
from pullwatch.simhub.accounts import stable_uuid

IDENTITIES = 100
MINUTE = 60.0


def _reading(i: int, at: float, k: int) -> Reading:
    remaining = 150 - (k * 7 + i) % 60
    return Reading(
        label=label_for(i),
        username=username_for(i),
        checked_at=at,
        state=State.OK,
        limit=200,
        remaining=remaining,
        window_seconds=21600,
        source=stable_uuid(username_for(i)),
        http_status=200,
        latency_ms=51.0,
        raw_limit="200;w=21600",
        raw_remaining=f"{remaining};w=21600",
    )


def fill(db: Path, hours: float, now: float, n: int = IDENTITIES) -> int:
    """`n` identities read once a minute for `hours`, ending a minute ago."""
    minutes = int(hours * 60)
    with History(db, retention_days=30) as history:
        batch: list[Reading] = []
        for k in range(minutes):
            at = now - (minutes - k) * MINUTE
            batch += [_reading(i, at, k) for i in range(1, n + 1)]
            if len(batch) >= 50_000:
                history.record(batch)
                batch = []
        history.record(batch)
        return history.count()


QUERIES = {
    "one identity, last 24 h (history LABEL)": (
        "label = ? AND checked_at >= ?",
        lambda now: (label_for(7), now - 86400),
    ),
    "one bucket, last 48 h (history LABEL)": (
        "source = ? AND checked_at >= ?",
        lambda now: (stable_uuid(username_for(7)), now - 2 * 86400),
    ),
    "every identity, last minute (since)": ("checked_at >= ?", lambda now: (now - MINUTE,)),
}


def _timed(fn, repeat: int = 7) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def history_queries(table: Table, hours_list: tuple[float, ...]) -> None:
    now = time.time()
    with workdir() as work:
        for hours in hours_list:
            db = work.root / f"history-{hours:g}h.sqlite3"
            progress(f"growth: filling a history of {hours:g} h x {IDENTITIES} identities")
            rows = fill(db, hours, now)
            with History(db, retention_days=30) as history:
                conn = history._db
                for name, (where, params) in QUERIES.items():
                    sql = f"SELECT * FROM readings WHERE {where} ORDER BY checked_at, id"
                    plan = " / ".join(
                        str(r[3]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params(now))
                    )
                    indexed = "USING INDEX" in plan and "SCAN readings" not in plan
                    took = _timed(
                        lambda w=where, p=params, c=conn: c.execute(
                            f"SELECT * FROM readings WHERE {w} ORDER BY checked_at, id", p(now)
                        ).fetchall()
                    )
                    table.add(
                        f"{rows:>9,} rows: {name}",
                        f"{took * 1000:.2f} ms",
                        "index, no scan",
                        indexed,
                    )
                    if hours == hours_list[-1]:
                        table.note(f"plan, {name}: {plan}")
                new = [_reading(i, now, 0) for i in range(1, IDENTITIES + 1)]
                took = _timed(lambda h=history, r=new: h.record(r), repeat=5)
                table.add(
                    f"{rows:>9,} rows: record a round ({IDENTITIES} readings)",
                    f"{took * 1000:.2f} ms",
                )
                prune_plan = " / ".join(
                    str(r[3])
                    for r in conn.execute(
                        "EXPLAIN QUERY PLAN DELETE FROM readings WHERE checked_at < ?", (now,)
                    )
                )
                table.add(
                    f"{rows:>9,} rows: prune (nothing expired)",
                    f"{_timed(history.prune, repeat=3) * 1000:.2f} ms",
                    "index, no scan",
                    "SCAN readings" not in prune_plan,
                )


def check_vs_history(table: Table, hours_list: tuple[float, ...]) -> None:
    with workdir() as work, SimHub(IDENTITIES, SIM_LATENCY, work.root) as sim:
        write_config(work.config_dir, IDENTITIES)
        env = work.env(sim.url)
        argv = [*PULLWATCH, "check", "--json"]
        run_measured(argv, env)  # the challenge on disk, and a history
        db = work.data_dir / "history.sqlite3"
        for hours in hours_list:
            db.unlink(missing_ok=True)
            for extra in ("-wal", "-shm"):
                Path(f"{db}{extra}").unlink(missing_ok=True)
            rows = fill(db, hours, time.time()) if hours else 0
            progress(f"growth: `check` with {rows:,} rows of history")
            runs = [run_measured(argv, env) for _ in range(3)]
            wall = statistics.median(r.wall for r in runs)
            rss = max(r.max_rss for r in runs)
            table.add(
                f"`check`, {IDENTITIES} identities, {hours:g} h of history ({rows:,} rows)",
                f"{wall:.2f} s, peak RSS {mib(rss)}",
            )


def estimates(table: Table, counts: tuple[int, ...]) -> None:
    recent = RecentHistory()
    now = time.time() - max(counts) * MINUTE
    done = 0
    for count in counts:
        block = [_reading(1, now + (done + k) * MINUTE, done + k) for k in range(count - done)]
        started = time.perf_counter()
        for reading in block:
            recent.add(reading)
        per = (time.perf_counter() - started) / max(len(block), 1)
        done = count
        key = block[-1].bucket_key
        assert key is not None
        tracker = recent._trackers[key]
        series = len(recent._series[label_for(1)])
        table.add(
            f"after {count:,} readings of one bucket: time per added reading",
            f"{per * 1e6:.1f} us",
        )
        table.add(
            f"after {count:,} readings: state kept (batches, sparkline points)",
            f"{len(tracker._batches)} batches, {series} points",
            "bounded",
            len(tracker._batches) <= 21600 / MINUTE + 1 and series <= 120,
        )
        started = time.perf_counter()
        for _ in range(1000):
            recent.recovery(key)
        table.add(
            f"after {count:,} readings: one recovery estimate",
            f"{(time.perf_counter() - started):.3f} ms",
        )


def run(quick: bool = False) -> list[Table]:
    queries = Table(f"Growth: history queries ({IDENTITIES} identities, one reading a minute)")
    history_queries(queries, (1, 24) if quick else (1, 24, 168))
    check = Table("Growth: `check` as the history grows")
    check_vs_history(check, (0, 6) if quick else (0, 6, 24))
    check.note(
        "check stores its readings and reads back each bucket's estimate and each identity's "
        "sources, which the database keeps up to date on every write: flat in the history's size"
    )
    recent = Table("Growth: recovery estimates and series (RecentHistory), one bucket")
    estimates(recent, (10_000, 100_000))
    return [queries, check, recent]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    for t in run(args.quick):
        t.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
