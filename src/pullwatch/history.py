"""The history of readings: a SQLite file under the data dir.

Every reading from `check`, `head` and the dashboard lands here, so recovery can be estimated
from what was watched (Docker sends no reset time). The database is in WAL mode with a busy
timeout, and every write is one short `BEGIN IMMEDIATE` transaction retried on contention, so a
dashboard and a cron'd `check` can write at once without "database is locked". The schema is
versioned (`PRAGMA user_version`) with forward-only migrations. No secret or token is ever
stored: a `Reading` holds none, and `detail` is already redacted.

The dashboard never writes on its event loop: `BackgroundWriter` owns a connection in its own
thread, takes readings from a queue, and prunes old rows there.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.forecast import ForecastTracker
from pullwatch.paths import ensure_private_dir
from pullwatch.reading import ErrorKind, Reading, Source, State, Step, source_from_store
from pullwatch.recent import BucketKey, RecentHistory
from pullwatch.recovery import RecoveryTracker
from pullwatch.redact import one_line

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 10_000
WRITE_ATTEMPTS = 5
DAY = DAY_SECONDS = 86_400.0
CATCH_UP_SECONDS = 2 * DAY_SECONDS  # a bucket seen for the first time: read this far back

_COLUMNS = (
    "label",
    "username",
    "checked_at",
    "state",
    "limit_pulls",
    "remaining",
    "window_seconds",
    "source",
    "http_status",
    "latency_ms",
    "error_kind",
    "detail",
    "retry_after",
    "raw_limit",
    "raw_remaining",
    "source_kind",
    "step",
    "registry",
    "repository",
    "docker_hub",
)
# States whose readings measured the quota: the last of them is an identity's "last known".
_MEASURED = ("ok", "low", "exhausted", "unmetered")

# Each entry migrates from version N-1 to N (index N-1). Never edit a shipped step: append.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE IF NOT EXISTS readings (
            id INTEGER PRIMARY KEY,
            label TEXT NOT NULL,
            username TEXT,
            checked_at REAL NOT NULL,
            state TEXT NOT NULL,
            limit_pulls INTEGER,
            remaining INTEGER,
            window_seconds INTEGER,
            source TEXT,
            http_status INTEGER,
            latency_ms REAL,
            error_kind TEXT,
            detail TEXT,
            retry_after REAL,
            raw_limit TEXT,
            raw_remaining TEXT
        )
        """,
        "CREATE INDEX IF NOT EXISTS readings_by_label ON readings (label, checked_at)",
        "CREATE INDEX IF NOT EXISTS readings_by_source ON readings (source, checked_at)",
        "CREATE INDEX IF NOT EXISTS readings_by_time ON readings (checked_at)",
    ),
    # 2: what estimates and insights need, kept up to date on every write, so that no command
    # replays a day of readings: each bucket's recovery tracker (advanced by row id) and the
    # sources each identity was charged to.
    (
        """
        CREATE TABLE IF NOT EXISTS bucket_state (
            source TEXT PRIMARY KEY,
            last_id INTEGER NOT NULL,
            state TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS label_sources (
            label TEXT NOT NULL,
            source TEXT NOT NULL,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            PRIMARY KEY (label, source)
        )
        """,
        "CREATE INDEX IF NOT EXISTS readings_by_source_id ON readings (source, id)",
        "CREATE INDEX IF NOT EXISTS label_sources_by_time ON label_sources (last_seen)",
    ),
    # 3: readings say which registry and manifest they measured (history and estimates never
    # mix two registries), which step decided them and the source's parsed kind. Bucket state
    # is keyed by (registry, repository, source) and keeps the forecast's tracker beside the
    # recovery's; earlier rows belong to the key ("", "", ...) and their trackers are rebuilt
    # from the readings on first use.
    (
        "ALTER TABLE readings ADD COLUMN source_kind TEXT",
        "ALTER TABLE readings ADD COLUMN step TEXT",
        "ALTER TABLE readings ADD COLUMN registry TEXT",
        "ALTER TABLE readings ADD COLUMN repository TEXT",
        "ALTER TABLE readings ADD COLUMN docker_hub INTEGER",
        "DROP TABLE IF EXISTS bucket_state",
        """
        CREATE TABLE bucket_state (
            registry TEXT NOT NULL,
            repository TEXT NOT NULL,
            source TEXT NOT NULL,
            last_id INTEGER NOT NULL,
            state TEXT NOT NULL,
            forecast TEXT,
            PRIMARY KEY (registry, repository, source)
        )
        """,
        "DROP INDEX IF EXISTS readings_by_source_id",
        "CREATE INDEX IF NOT EXISTS readings_by_bucket_id ON readings (source, registry, "
        "repository, id)",
        "CREATE INDEX IF NOT EXISTS readings_by_label_state ON readings (label, state, checked_at)",
    ),
)


@dataclass(frozen=True, slots=True)
class _Bucket:
    """One bucket's trackers as of `last_id`, the newest reading they have seen."""

    recovery: RecoveryTracker
    forecast: ForecastTracker
    last_id: int


def _json(text: object) -> object:
    try:
        return json.loads(str(text)) if text is not None else None
    except ValueError:
        return None


class HistoryError(Exception):
    """The history database cannot be used. str() is one line naming the file."""


def _describe(path: Path, exc: BaseException) -> HistoryError:
    """A one-line HistoryError for what SQLite or the OS said, with the way out."""
    text = str(exc)
    lowered = text.lower()
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return HistoryError(
            f"history database {path} is damaged ({text}): move it aside and pullwatch starts "
            "a new one (the readings in it are lost; the config is not affected)"
        )
    if "readonly" in lowered or "read-only" in lowered or _read_only_fs(path):
        return HistoryError(
            f"history database {path} is on a read-only file system or read-only: readings "
            "are not recorded (`pullwatch history` can still read it)"
        )
    if "unable to open" in lowered or "permission" in lowered or isinstance(exc, PermissionError):
        return HistoryError(
            f"history database {path} cannot be opened ({text}): check the data directory's "
            "permissions (--data-dir, PULLWATCH_DATA_DIR)"
        )
    return HistoryError(f"history database {path}: {text}")


def _read_only_fs(path: Path) -> bool:
    for candidate in (path, path.parent):
        try:
            return bool(os.statvfs(candidate).f_flag & os.ST_RDONLY)
        except OSError:
            continue
    return False


def _row(reading: Reading) -> tuple[object, ...]:
    source = reading.source
    return (
        reading.label,
        reading.username,
        reading.checked_at,
        reading.state.value,
        reading.limit,
        reading.remaining,
        reading.window_seconds,
        None if source is None else source.value,
        reading.http_status,
        reading.latency_ms,
        None if reading.error_kind is None else reading.error_kind.value,
        reading.detail,
        reading.retry_after,
        reading.raw_limit,
        reading.raw_remaining,
        None if source is None else source.kind.value,
        None if reading.step is None else reading.step.value,
        reading.registry or "",
        reading.repository or "",
        1 if reading.docker_hub else 0,
    )


E = TypeVar("E", State, ErrorKind, Step)


def _enum(kind: type[E], value: object) -> E | None:
    try:
        return None if value is None else kind(str(value))
    except ValueError:  # written by a newer pullwatch
        return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: object, limit: int = 400) -> str | None:
    """Stored text, cleaned again on the way out: an older pullwatch may have kept it raw."""
    return None if value is None else one_line(str(value), limit)


def _reading(row: Sequence[object]) -> Reading:
    (label, username, checked_at, state, limit, remaining, window, source, status, latency,
     kind, detail, retry_after, raw_limit, raw_remaining, source_kind, step, registry,
     repository, docker_hub) = row  # fmt: skip
    return Reading(
        label=str(label),
        username=None if username is None else str(username),
        checked_at=_float(checked_at) or 0.0,
        state=_enum(State, state) or State.UNKNOWN,
        limit=_int(limit),
        remaining=_int(remaining),
        window_seconds=_int(window),
        source=source_from_store(
            _text(source, 100), None if source_kind is None else str(source_kind)
        ),
        http_status=_int(status),
        latency_ms=_float(latency),
        error_kind=_enum(ErrorKind, kind),
        detail=_text(detail),
        retry_after=_float(retry_after),
        raw_limit=_text(raw_limit, 200),
        raw_remaining=_text(raw_remaining, 200),
        step=_enum(Step, step),
        registry=str(registry) if registry else None,
        repository=str(repository) if repository else None,
        docker_hub=docker_hub != 0,  # NULL (older rows): Docker Hub, the only one then
    )


class History:
    """One connection to the history database. Not for concurrent use from several threads.

    `readonly=True` (for `pullwatch history`) never creates, migrates or writes anything, and
    works on a read-only file system.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Clock = SYSTEM_CLOCK,
        retention_days: float = 7,
        readonly: bool = False,
    ) -> None:
        self.path = path
        self.clock = clock
        self.retention_days = retention_days
        self.readonly = readonly
        try:
            self._db = self._open_readonly() if readonly else self._open_writable()
            self._check_version()
            if not readonly:
                self._migrate()
                path.chmod(0o600)
        except HistoryError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise _describe(path, exc) from None

    def _open_writable(self) -> sqlite3.Connection:
        ensure_private_dir(self.path.parent)
        db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("history %s: journal mode is %s, not WAL", self.path, mode)
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise HistoryError(f"history database {self.path} does not exist yet: nothing recorded")
        uri = self.path.resolve().as_uri()
        try:
            db = sqlite3.connect(
                f"{uri}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # A WAL database on a read-only file system cannot make its shared-memory file:
            # read it as an immutable file instead (no other writer can exist there anyway).
            db = sqlite3.connect(
                f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False
            )
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _check_version(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"history database {self.path} was written by a newer pullwatch (schema "
                f"{version}; this one knows {SCHEMA_VERSION}): upgrade pullwatch"
            )
        if self.readonly and version < SCHEMA_VERSION:
            raise HistoryError(
                f"history database {self.path} has an older schema ({version}): run "
                "`pullwatch check` once to upgrade it"
            )

    def _migrate(self) -> None:
        def step() -> None:
            version = self.schema_version
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"history database {self.path} was written by a newer pullwatch (schema "
                    f"{version}; this one knows {SCHEMA_VERSION}): upgrade pullwatch"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target - 1]:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {target}")

        self._write(step)

    def _write(self, work: Callable[[], None]) -> None:
        """`work` inside one IMMEDIATE transaction, retried while another process holds the lock."""
        if self.readonly:
            raise HistoryError(f"history database {self.path} was opened read-only")
        delay = 0.05
        for attempt in range(WRITE_ATTEMPTS):
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
                time.sleep(delay)
                delay *= 2
                continue
            try:
                work()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return

    def record(self, readings: Iterable[Reading]) -> int:
        """Store readings (placeholders of never-probed identities are skipped). How many."""
        kept = [r for r in readings if r.probed]
        rows = [_row(r) for r in kept]
        if not rows:
            return 0
        placeholders = ", ".join("?" for _ in _COLUMNS)
        sql = f"INSERT INTO readings ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
        keys = sorted({r.bucket_key for r in kept if r.bucket_key is not None})

        def work() -> None:
            self._db.executemany(sql, rows)
            self._db.executemany(
                "INSERT INTO label_sources (label, source, first_seen, last_seen) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (label, source) DO UPDATE SET "
                "first_seen = min(first_seen, excluded.first_seen), "
                "last_seen = max(last_seen, excluded.last_seen)",
                [
                    (r.label, r.source.value, r.checked_at, r.checked_at)
                    for r in kept
                    if r.source is not None
                ],
            )
            for bucket in self._advance(keys).values():
                registry, repository, source = bucket.recovery.key
                self._db.execute(
                    "INSERT INTO bucket_state (registry, repository, source, last_id, state, "
                    "forecast) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (registry, repository, "
                    "source) DO UPDATE SET last_id = excluded.last_id, state = excluded.state, "
                    "forecast = excluded.forecast",
                    (
                        registry,
                        repository,
                        source,
                        bucket.last_id,
                        json.dumps(bucket.recovery.to_state()),
                        json.dumps(bucket.forecast.to_state()),
                    ),
                )

        try:
            self._write(work)
        except sqlite3.Error as exc:
            raise _describe(self.path, exc) from None
        return len(rows)

    def _advance(self, keys: Iterable[BucketKey]) -> dict[BucketKey, _Bucket]:
        """Each bucket's trackers as stored, fed the readings written since (by row id)."""
        out: dict[BucketKey, _Bucket] = {}
        for key in keys:
            registry, repository, source = key
            bucket = "source = ? AND coalesce(registry, '') = ? AND coalesce(repository, '') = ?"
            row = self._db.execute(
                "SELECT last_id, state, forecast FROM bucket_state "
                "WHERE registry = ? AND repository = ? AND source = ?",
                (registry, repository, source),
            ).fetchone()
            params: tuple[object, ...]
            if row is None:  # first sight: start from the recent past, not from all of it
                recovery, forecast, last_id = RecoveryTracker(key), ForecastTracker(key), 0
                newest = self._db.execute(
                    f"SELECT max(checked_at) FROM readings WHERE {bucket}",
                    (source, registry, repository),
                ).fetchone()[0]
                where = f"{bucket} AND checked_at >= ?"
                params = (source, registry, repository, (newest or 0.0) - CATCH_UP_SECONDS)
            else:
                last_id = int(row[0])
                recovery = RecoveryTracker.from_state(key, _json(row[1]))
                forecast = ForecastTracker.from_state(key, _json(row[2]))
                where = f"{bucket} AND id > ?"
                params = (source, registry, repository, last_id)
            cursor = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)}, id FROM readings WHERE {where} "
                "ORDER BY checked_at, id",
                params,
            )
            for found in cursor:
                reading = _reading(found[: len(_COLUMNS)])
                recovery.observe(reading)
                forecast.observe(reading)
                last_id = max(last_id, int(found[-1]))
            out[key] = _Bucket(recovery, forecast, last_id)
        return out

    def trackers(self, keys: Iterable[BucketKey]) -> list[RecoveryTracker]:
        """The recovery trackers of these buckets, current (read-only: nothing is written)."""
        return [bucket.recovery for bucket in self._buckets(keys)]

    def _buckets(self, keys: Iterable[BucketKey]) -> list[_Bucket]:
        try:
            return list(self._advance(keys).values())
        except sqlite3.Error as exc:
            raise _describe(self.path, exc) from None

    def sources_seen(self, since: float) -> dict[str, list[tuple[float, Source]]]:
        """Per identity, the sources it was charged to since `since`: (first seen, source)."""
        try:
            rows = self._db.execute(
                "SELECT label, source, first_seen FROM label_sources WHERE last_seen >= ? "
                "ORDER BY label, first_seen",
                (since,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise _describe(self.path, exc) from None
        seen: dict[str, list[tuple[float, Source]]] = {}
        for label, source, first in rows:
            parsed = source_from_store(_text(source, 100), None)
            if parsed is not None:
                seen.setdefault(str(label), []).append((float(first), parsed))
        return seen

    def last_good(self, labels: Iterable[str], since: float = 0.0) -> list[Reading]:
        """Each identity's last reading that measured the quota (one indexed lookup each)."""
        placeholders = ", ".join("?" for _ in _MEASURED)
        sql = (
            f"SELECT {', '.join(_COLUMNS)} FROM readings WHERE label = ? AND state IN "
            f"({placeholders}) AND (state = 'unmetered' OR (limit_pulls IS NOT NULL AND "
            "remaining IS NOT NULL AND remaining BETWEEN 0 AND limit_pulls)) AND checked_at >= ? "
            "ORDER BY checked_at DESC, id DESC LIMIT 1"
        )
        out = []
        try:
            for label in labels:
                row = self._db.execute(sql, (label, *_MEASURED, since)).fetchone()
                if row is not None:
                    reading = _reading(row)
                    if reading.measured:
                        out.append(reading)
        except sqlite3.Error as exc:
            raise _describe(self.path, exc) from None
        return out

    def keys_for(self, labels: Iterable[str], since: float) -> set[BucketKey]:
        """The buckets these identities were charged to since `since`."""
        wanted = set(labels)
        try:
            rows = self._db.execute(
                "SELECT DISTINCT label, source, coalesce(registry, ''), coalesce(repository, '') "
                "FROM readings WHERE checked_at >= ? AND source IS NOT NULL",
                (since,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise _describe(self.path, exc) from None
        return {(str(r[2]), str(r[3]), str(r[1])) for r in rows if str(r[0]) in wanted}

    def recent(
        self,
        now: float,
        lookback: float = DAY,
        series: float = 0.0,
        labels: Iterable[str] | None = None,
    ) -> RecentHistory:
        """What `assess` needs, from the kept state: O(identities), not a replay.

        `series` seconds of readings per identity feed the sparklines (0: none); `labels`
        limits the last-good lookups (default: every identity seen lately).
        """
        recent = RecentHistory()
        seen = self.sources_seen(now - lookback)
        chosen = list(seen) if labels is None else list(labels)
        buckets = self._buckets(self._bucket_keys(now - lookback))
        recent.adopt(
            [b.recovery for b in buckets],
            seen,
            self.last_good(chosen),
            forecasts=[b.forecast for b in buckets],
        )
        if series > 0:
            for label in chosen:
                for reading in self.for_label(label, now - series):
                    recent.add_point(reading)
        return recent

    def _bucket_keys(self, since: float) -> list[BucketKey]:
        try:
            rows = self._db.execute(
                "SELECT registry, repository, source FROM bucket_state"
            ).fetchall()
            recent = self._db.execute(
                "SELECT DISTINCT coalesce(registry, ''), coalesce(repository, ''), source "
                "FROM readings WHERE checked_at >= ? AND source IS NOT NULL",
                (since,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise _describe(self.path, exc) from None
        return sorted({(str(a), str(b), str(c)) for a, b, c in [*rows, *recent]})

    def _select(self, where: str, params: Sequence[object], limit: int | None) -> list[Reading]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM readings WHERE {where} ORDER BY checked_at, id"
        if limit is not None:
            sql = (
                f"SELECT * FROM (SELECT {', '.join(_COLUMNS)}, id FROM readings WHERE {where} "
                f"ORDER BY checked_at DESC, id DESC LIMIT {int(limit)}) ORDER BY checked_at, id"
            )
        try:
            rows = self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _describe(self.path, exc) from None
        return [_reading(row[: len(_COLUMNS)]) for row in rows]

    def for_label(
        self,
        label: str,
        since: float | None = None,
        limit: int | None = None,
        *,
        registry: str | None = None,
        repository: str | None = None,
    ) -> list[Reading]:
        """One identity's readings, oldest first; of one registry (and manifest) when given.

        Rows written before pullwatch recorded the registry match any registry.
        """
        where, params = "label = ? AND checked_at >= ?", [label, since or 0.0]
        if registry is not None:
            where += " AND coalesce(registry, '') IN (?, '')"
            params.append(registry)
        if repository is not None:
            where += " AND coalesce(repository, '') IN (?, '')"
            params.append(repository)
        return self._select(where, params, limit)

    def for_bucket(self, key: BucketKey, since: float | None = None) -> list[Reading]:
        """Every reading charged to one bucket (whatever identity made it), oldest first."""
        registry, repository, source = key
        return self._select(
            "source = ? AND coalesce(registry, '') = ? AND coalesce(repository, '') = ? "
            "AND checked_at >= ?",
            (source, registry, repository, since or 0.0),
            None,
        )

    def since(self, since: float) -> list[Reading]:
        return self._select("checked_at >= ?", (since,), None)

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM readings").fetchone()[0])

    def prune(self, now: float | None = None) -> int:
        """Delete readings older than the retention period. Returns how many."""
        cutoff = (self.clock.time() if now is None else now) - self.retention_days * DAY
        deleted = 0

        def work() -> None:
            nonlocal deleted
            deleted = self._db.execute(
                "DELETE FROM readings WHERE checked_at < ?", (cutoff,)
            ).rowcount
            self._db.execute("DELETE FROM label_sources WHERE last_seen < ?", (cutoff,))
            self._db.execute(
                "DELETE FROM bucket_state WHERE source NOT IN (SELECT source FROM label_sources)"
            )

        try:
            self._write(work)
        except sqlite3.Error as exc:
            raise _describe(self.path, exc) from None
        return deleted


@dataclass(frozen=True, slots=True)
class WriterStatus:
    written: int
    failed: int
    last_error: str | None


class BackgroundWriter:
    """Writes readings from a queue in its own thread; prunes at start and every hour.

    `submit()` never blocks and never raises: a history that cannot be written costs the
    estimates, not the monitoring. `close()` flushes what is queued (bounded by a timeout).
    """

    PRUNE_EVERY = 3600.0

    def __init__(self, open_history: Callable[[], History]) -> None:
        self._open = open_history
        self._queue: queue.Queue[Reading | _Marker | None] = queue.Queue()
        self._written = 0
        self._failed = 0
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="pullwatch-history", daemon=True)
        self._thread.start()

    @property
    def status(self) -> WriterStatus:
        return WriterStatus(self._written, self._failed, self._last_error)

    def submit(self, reading: Reading) -> None:
        self._queue.put(reading)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything submitted so far has been handled (for tests and shutdown)."""
        done = threading.Event()
        self._queue.put(_Marker(done))
        done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            history = self._open()
        except HistoryError as exc:
            self._last_error = str(exc)
            log.warning("%s", exc)
            history = None
        last_prune = 0.0
        while True:
            item = self._queue.get()
            if item is None:
                break
            if isinstance(item, _Marker):
                item.done.set()
                continue
            batch = [item]
            while True:  # write what is queued together: one transaction per burst
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None or isinstance(nxt, _Marker):
                    self._queue.put(nxt)  # handle it after this batch
                    break
                batch.append(nxt)
            if history is None:
                self._failed += len(batch)
                continue
            try:
                self._written += history.record(batch)
                if time.monotonic() - last_prune > self.PRUNE_EVERY or not last_prune:
                    history.prune()
                    last_prune = time.monotonic()
            except HistoryError as exc:
                self._failed += len(batch)
                self._last_error = str(exc)
                log.warning("%s", exc)
        if history is not None:
            history.close()


@dataclass(frozen=True, slots=True)
class _Marker:
    done: threading.Event


@dataclass(frozen=True, slots=True)
class Recall:
    """What a one-shot command learns from the history after adding its own readings."""

    recent: RecentHistory
    problem: str | None  # why the history could not be used (the command carries on)


def record_and_recall(
    path: Path,
    readings: Sequence[Reading],
    *,
    clock: Clock = SYSTEM_CLOCK,
    retention_days: float = 7,
    lookback: float = DAY,
) -> Recall:
    """Store `readings`, then load the last `lookback` seconds for estimates and insights.

    Never raises: a history that cannot be used is reported in `problem`.
    """
    try:
        with History(path, clock=clock, retention_days=retention_days) as history:
            history.record(readings)
            recent = history.recent(clock.time(), lookback, labels=[r.label for r in readings])
    except HistoryError as exc:
        recent = RecentHistory()
        recent.load(readings)
        return Recall(recent, str(exc))
    return Recall(recent, None)
