"""The history database: schema, queries, retention, a background writer, two writers at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest

from pullwatch.clock import ManualClock
from pullwatch.durations import parse_duration
from pullwatch.history import (
    SCHEMA_VERSION,
    BackgroundWriter,
    History,
    HistoryError,
    record_and_recall,
)
from pullwatch.reading import ErrorKind, Reading, State


def reading(label: str, t: float, remaining: int = 90, source: str = "203.0.113.7") -> Reading:
    return Reading(label, None, t, State.OK, 100, remaining, 21600, source, 200, 41.0,
                   raw_limit="100;w=21600", raw_remaining=f"{remaining};w=21600")  # fmt: skip


def test_round_trip_wal_and_private_file(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "data" / "history.sqlite3"
    failed = Reading("ci", "alice", clock.time(), State.ERROR, error_kind=ErrorKind.TIMEOUT,
                     detail="HEAD probe: timed out waiting for the answer")  # fmt: skip
    with History(path, clock=clock) as history:
        written = history.record(
            [reading("anon", clock.time()), failed, Reading.unknown("x", None, 0)]
        )
        assert written == 2  # never-probed readings are not history
        assert history.schema_version == SCHEMA_VERSION
        assert history.for_label("anon") == [reading("anon", clock.time())]
        assert history.for_label("ci")[0] == failed
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_queries_by_label_source_time_and_limit(tmp_path: Path, clock: ManualClock) -> None:
    with History(tmp_path / "h.db", clock=clock) as history:
        history.record([reading("a", t, 100 - t // 60) for t in range(0, 600, 60)])
        history.record([reading("b", 30, source="uuid-b")])
        assert [r.checked_at for r in history.for_label("a", since=300)] == [
            300,
            360,
            420,
            480,
            540,
        ]
        assert [r.checked_at for r in history.for_label("a", limit=2)] == [480, 540]
        assert [r.label for r in history.for_bucket(("", "", "uuid-b"))] == ["b"]
        assert len(history.since(500)) == 1
        assert history.count() == 11


def test_retention_prunes_old_readings(tmp_path: Path, clock: ManualClock) -> None:
    now = clock.time()
    with History(tmp_path / "h.db", clock=clock, retention_days=7) as history:
        history.record(
            [reading("a", now - 8 * 86400), reading("a", now - 86400), reading("a", now)]
        )
        assert history.prune() == 1
        assert history.count() == 2


def test_migrates_an_empty_file_and_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    sqlite3.connect(path).close()  # version 0: no tables
    with History(path) as history:
        assert history.schema_version == SCHEMA_VERSION
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match="newer pullwatch") as info:
        History(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_corrupt_database_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError) as info:
        History(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unknown_state_from_a_newer_version_reads_as_unknown(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with History(path) as history:
        history.record([reading("a", 1)])
    db = sqlite3.connect(path)
    db.execute("UPDATE readings SET state = 'quantum', error_kind = 'cosmic'")
    db.commit()
    db.close()
    with History(path) as history:
        (back,) = history.for_label("a")
    assert back.state is State.UNKNOWN and back.error_kind is None


def test_background_writer_batches_and_survives_a_broken_database(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    writer = BackgroundWriter(lambda: History(path))
    start = time.time()  # the writer prunes by its retention (7 days from now)
    for t in range(50):
        writer.submit(reading("a", start + t))
    writer.flush()
    assert writer.status.written == 50 and writer.status.failed == 0
    writer.close()
    with History(path) as history:
        assert history.count() == 50

    broken = tmp_path / "broken.db"
    broken.write_bytes(b"garbage" * 100)
    writer = BackgroundWriter(lambda: History(broken))
    writer.submit(reading("a", 1))  # never raises: the monitoring goes on
    writer.flush()
    assert writer.status.written == 0 and writer.status.failed == 1
    assert writer.status.last_error is not None and str(broken) in writer.status.last_error
    writer.close()


def test_record_and_recall_feeds_estimates_and_reports_problems(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "h.db"
    first = record_and_recall(path, [reading("a", clock.time(), 100)], clock=clock)
    clock.advance(60)
    second = record_and_recall(path, [reading("a", clock.time(), 90)], clock=clock)
    assert first.problem is None and second.problem is None
    recovery = second.recent.recovery(("", "", "203.0.113.7"))
    assert recovery is not None and recovery.deficit == 10
    assert recovery.full_at == clock.time() + 21600
    path.unlink()
    path.mkdir()  # a directory where the file should be
    broken = record_and_recall(path, [reading("a", clock.time(), 90)], clock=clock)
    assert broken.problem is not None and str(path) in broken.problem
    assert (
        broken.recent.recovery(("", "", "203.0.113.7")) is not None
    )  # still estimates from this run


def _write_many(path: str, label: str, count: int) -> None:
    start = time.time()
    with History(Path(path)) as history:
        for i in range(count):
            history.record([reading(label, start + i)])


def test_two_processes_write_at_once_without_loss(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    History(path).close()
    count = 150
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(str(path), name, count)) for name in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    with History(path) as history:
        assert len(history.for_label("a")) == count
        assert len(history.for_label("b")) == count


def test_parse_duration() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("90s") == 90
    assert parse_duration("45m") == 2700
    assert parse_duration("6h") == 21600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("7d") == 604800
    assert parse_duration("1.5h") == 5400
    assert parse_duration("24", default_unit="h") == 86400
    for bad in ("", "six hours", "5x", "h", "10m5", "5 weeks", "-3"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_a_version_1_database_is_migrated_and_its_readings_counted(
    tmp_path: Path, clock: ManualClock
) -> None:
    """Schema 1 had only the readings: later schemas derive bucket state and sources from them
    (rows written before pullwatch recorded the registry belong to the bucket key ("", "", ...))."""
    from pullwatch.history import _COLUMNS, _MIGRATIONS, SCHEMA_VERSION, _row

    path = tmp_path / "h.db"
    db = sqlite3.connect(path)
    for statement in _MIGRATIONS[0]:
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    now = clock.time()
    old = [reading("a", now - 120, 100), reading("a", now - 60, 90)]
    v1 = _COLUMNS[:15]  # the columns schema 1 had
    placeholders = ", ".join("?" for _ in v1)
    db.executemany(
        f"INSERT INTO readings ({', '.join(v1)}) VALUES ({placeholders})",
        [_row(r)[:15] for r in old],
    )
    db.commit()
    db.close()
    with History(path, clock=clock) as history:
        assert history.schema_version == SCHEMA_VERSION
        history.record([reading("a", now, 85)])
        recent = history.recent(now)
    recovery = recent.recovery(("", "", "203.0.113.7"))
    assert recovery is not None and recovery.deficit == 15 and recovery.readings_used == 3
    assert recovery.next_at == now - 60 + 21600  # the first 10 were seen at the older reading
    assert [s.value for s in recent.sources("a")] == ["203.0.113.7"]


def test_two_registries_never_share_a_history(tmp_path: Path, clock: ManualClock) -> None:
    hub = "https://registry-1.docker.io"
    mirror = "http://127.0.0.1:5000"
    now = clock.time()
    on_hub = [
        replace(reading("a", now - 60, 90), registry=hub),
        replace(reading("a", now, 80), registry=hub),
    ]
    on_mirror = [replace(reading("a", now - 30, 10), registry=mirror, docker_hub=False)]
    with History(tmp_path / "h.db", clock=clock) as history:
        history.record([*on_hub, *on_mirror])
        assert [r.remaining for r in history.for_label("a", registry=hub)] == [90, 80]
        assert [r.remaining for r in history.for_label("a", registry=mirror)] == [10]
        recent = history.recent(now)
    hub_bucket = recent.recovery((hub, "", "203.0.113.7"))
    mirror_bucket = recent.recovery((mirror, "", "203.0.113.7"))
    assert hub_bucket is not None and hub_bucket.deficit == 20 and hub_bucket.readings_used == 2
    assert mirror_bucket is not None and mirror_bucket.deficit == 90
    assert recent.last_good("a") == on_hub[-1]


def test_sources_seen_and_pruned(tmp_path: Path, clock: ManualClock) -> None:
    now = clock.time()
    with History(path := tmp_path / "h.db", clock=clock, retention_days=1) as history:
        history.record([reading("a", now - 3 * 86400, source="198.51.100.1")])
        history.record([reading("a", now - 60), reading("a", now, source="2001:db8::/64")])
        seen = history.sources_seen(now - 86400)
        assert [source.value for _, source in seen["a"]] == ["203.0.113.7", "2001:db8::/64"]
        history.prune()
        rows = sqlite3.connect(path).execute("SELECT source FROM label_sources").fetchall()
        assert sorted(r[0] for r in rows) == ["2001:db8::/64", "203.0.113.7"]
