"""`pullwatch fleet`: every node's buckets, read back from Prometheus (the headless half).

`pullwatch serve` on each node exports its assessments (metrics.py) and Prometheus collects
them. This module reads them back through Prometheus's HTTP API - a few instant queries per
refresh, evaluated at one moment - and turns each (node, identity) into a `Reading`, which
`assess` turns into an `Assessment`, the record every front end renders. It is read-only: no
keyring, no probe of its own, no history written.

What a row shows, and when it is stale:

- A **current** row is what the node's latest round said: its state (the node's own verdict,
  `low` included, so the fleet and the node's alerts agree), remaining/limit/window, source,
  last probe, latency, Retry-After.
- A row is **stale** when its numbers cannot be vouched for now: Prometheus cannot scrape the
  node's `pullwatch serve` (`up == 0`), no longer scrapes it at all (no `up`, no series: the
  target was removed or Prometheus restarted without it), or the node has not finished a probe
  round (`pullwatch_last_round_timestamp_seconds`, or a later probe) for `stale_after`
  seconds (default 15 minutes: three rounds of the DaemonSet's 300 s, fifteen of serve's 60 s).
  A stale row's state is `unknown`, its reason starts with `stale:` and says why, and its last
  numbers are kept as a stale quota (dimmed, "as of 4m ago"), never as current ones. Rows of a
  gone target are read with `last_over_time` over `lookback` (at least an hour), so they stay
  visible, marked, for that long.
- When Prometheus itself does not answer, or a query fails, the whole snapshot carries the
  `FleetError` (classified: connect, timeout, tls, http, query, malformed, url) and the previous
  rows are all turned stale the same way (`FleetSnapshot.failed`).

What metrics do not carry is not invented: the login of an identity is not exported, so a row
charged to an account is shown as logged in (no username), any other as anonymous; and a failed
probe's reason stays on the node (`pullwatch head IDENTITY` there says it).
"""

from __future__ import annotations

import asyncio
import errno
import json
import math
import re
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from functools import cached_property, lru_cache, partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from pullwatch import __version__
from pullwatch.advice import Advice
from pullwatch.assess import Assessment, Policy, assess
from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.comparison import best_to_use
from pullwatch.durations import format_coarse, iso_time
from pullwatch.hub.urls import DOCKER_HUB_HOSTS
from pullwatch.output import ExitCode, assessment_json, exit_code
from pullwatch.reading import METERED_STATES, Reading, SourceKind, State, parse_source
from pullwatch.recent import RecentHistory
from pullwatch.redact import one_line

DEFAULT_INTERVAL = 30.0  # seconds between refreshes (scrape.yml scrapes every 30 s)
MIN_INTERVAL = 2.0
DEFAULT_TIMEOUT = 10.0  # seconds for one refresh's queries
DEFAULT_STALE_AFTER = 900.0  # a node without a probe round for this long is stale
MIN_LOOKBACK = 3600.0  # how long a gone target's last values stay visible (marked stale)

Result = list[dict[str, Any]]
# (job, instance): a scrape target, as Prometheus names it
TargetKey = tuple[str, str]
# (job, instance, node, registry, identity): one row's series
RowKey = tuple[str, str, str, str, str]

# The instant queries of a refresh. `state` keeps only the current state's series.
LIVE_QUERIES: dict[str, str] = {
    "state": "pullwatch_state == 1",
    "remaining": "pullwatch_remaining_pulls",
    "limit": "pullwatch_limit_pulls",
    "window": "pullwatch_window_seconds",
    "probed": "pullwatch_last_probe_timestamp_seconds",
    "succeeded": "pullwatch_last_success_timestamp_seconds",
    "latency": "pullwatch_probe_latency_seconds",
    "retry_after": "pullwatch_retry_after_seconds",
    "round": "pullwatch_last_round_timestamp_seconds",
    "info": "pullwatch_build_info",
}
# The same, over the lookback, for targets that have no current series (down or gone).
STALE_METRICS: dict[str, str] = {
    "state": "pullwatch_state",
    "remaining": "pullwatch_remaining_pulls",
    "limit": "pullwatch_limit_pulls",
    "window": "pullwatch_window_seconds",
    "probed": "pullwatch_last_probe_timestamp_seconds",
    "succeeded": "pullwatch_last_success_timestamp_seconds",
    "round": "pullwatch_last_round_timestamp_seconds",
}


def lookback_for(stale_after: float) -> float:
    return max(MIN_LOOKBACK, 4 * stale_after)


def _duration(seconds: float) -> str:
    """A PromQL duration: whole seconds."""
    return f"{max(int(seconds), 1)}s"


def seen_query(lookback: float) -> str:
    """Every pullwatch target seen within the lookback, with its node, registry and version."""
    return (
        "max by (job, instance, node, registry, repository, version) "
        f"(last_over_time(pullwatch_build_info[{_duration(lookback)}]))"
    )


def up_query(lookback: float) -> str:
    """`up` of those targets only (a Prometheus may scrape thousands of others)."""
    return f"up and on (job, instance) last_over_time(pullwatch_build_info[{_duration(lookback)}])"


# -- errors ---------------------------------------------------------------------------------


class FleetErrorKind(StrEnum):
    URL = "url"  # not an http(s) URL
    CONNECT = "connect"  # refused, unreachable, DNS
    TIMEOUT = "timeout"
    TLS = "tls"
    HTTP = "http"  # a status Prometheus's API does not answer with (404, 401, 502...)
    QUERY = "query"  # Prometheus answered with an error (bad query, timeout, not ready)
    MALFORMED = "malformed"  # an answer that is not Prometheus's API JSON


class FleetError(Exception):
    """Prometheus could not be read: one line (`Prometheus at URL: reason`), with its kind."""

    def __init__(self, kind: FleetErrorKind, reason: str, url: str | None = None) -> None:
        self.kind = kind
        self.reason = one_line(reason, 300)
        self.url = url
        super().__init__(f"Prometheus at {url}: {self.reason}" if url else self.reason)

    @property
    def message(self) -> str:
        return str(self)


# -- the Prometheus URL ---------------------------------------------------------------------


def _shown(url: str) -> str:
    """A URL as given, for an error message: credentials blanked."""
    return re.sub(r"//[^/@]*@", "//***@", url)


def api_base(url: str) -> str:
    """The base URL the API lives under: `localhost:9090` -> `http://localhost:9090`; a path
    prefix (a reverse proxy's `/prometheus`) is kept, a pasted `/graph` or `/api/v1/...` cut."""
    text = url.strip()
    if not text:
        raise FleetError(FleetErrorKind.URL, "the Prometheus URL is empty")
    if "://" not in text:
        text = "http://" + text  # Prometheus's own default
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise FleetError(FleetErrorKind.URL, f"{_shown(url)!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FleetError(FleetErrorKind.URL, f"{_shown(url)!r} is not an http(s) URL of Prometheus")
    path = parts.path.rstrip("/")
    for suffix in ("/api/v1/query", "/api/v1", "/graph", "/targets", "/alerts"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def display_url(base: str) -> str:
    """The URL without credentials (`https://user:pass@host` works, and is never shown)."""
    parts = urlsplit(base)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# -- what a refresh makes -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Staleness:
    """Why a row's values are not current, and what to do about it."""

    why: str  # one line, the row's reason: starts with "stale:"
    meaning: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class FleetAssessment(Assessment):
    """One (node, identity) of the fleet: an `Assessment`, plus where it comes from.

    `label` (the reading's) is the row key `node/identity`."""

    node: str = ""
    identity: str = ""
    registry_host: str = ""
    instance: str = ""  # Prometheus's scrape target
    job: str = ""
    staleness: Staleness | None = None
    last_success_at: float | None = None
    last_state: State | None = None  # what the node last said (a stale row's state is unknown)

    @property
    def key(self) -> str:
        return self.reading.label

    @property
    def stale(self) -> bool:
        return self.staleness is not None

    @cached_property
    def advice(self) -> Advice:
        if self.staleness is not None:
            return Advice(meaning=self.staleness.meaning, steps=self.staleness.steps)
        # the base class's cached_property, computed for this instance (typeshed hides .func)
        return Assessment.advice.func(self)  # type: ignore[attr-defined,no-any-return]


@dataclass(frozen=True, slots=True)
class FleetTarget:
    """A scrape target that exported pullwatch metrics within the lookback."""

    job: str
    instance: str
    node: str
    registry: str
    repository: str
    version: str
    up: bool | None  # None: Prometheus has no `up` for it now (no longer scraped)
    live: bool  # it has current series
    last_activity: float | None  # its newest probe round (or probe), Unix time
    staleness: Staleness | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "instance": self.instance,
            "job": self.job,
            "registry": self.registry,
            "repository": self.repository,
            "version": self.version,
            "up": self.up,
            "last_round_at": None if self.last_activity is None else iso_time(self.last_activity),
            "stale": self.staleness is not None,
            "stale_reason": None if self.staleness is None else self.staleness.why,
        }


@dataclass(frozen=True)
class FleetSnapshot:
    """One refresh: the rows, the targets, or why Prometheus could not be read."""

    prometheus: str  # the URL, without credentials
    fetched_at: float
    rows: tuple[FleetAssessment, ...] = ()
    targets: tuple[FleetTarget, ...] = ()
    error: FleetError | None = None  # this refresh failed: the rows are the last ones, stale
    answered_at: float | None = None  # when Prometheus last answered
    stale_after: float = DEFAULT_STALE_AFTER

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def nodes(self) -> list[str]:
        return sorted({row.node for row in self.rows})

    @property
    def stale_nodes(self) -> list[str]:
        return sorted({row.node for row in self.rows if row.stale})

    @property
    def best(self) -> FleetAssessment | None:
        best = best_to_use(self.rows)
        return best if isinstance(best, FleetAssessment) else None

    def row(self, key: str) -> FleetAssessment | None:
        return next((r for r in self.rows if r.key == key), None)

    @property
    def exit_code(self) -> ExitCode:
        """`check`'s contract, from the worst row; unknown (3) with no row or no answer."""
        if self.error is not None and not self.rows:
            return ExitCode.UNKNOWN
        return exit_code(self.rows)


# -- reading Prometheus ---------------------------------------------------------------------


class FleetReader:
    """Reads the fleet from one Prometheus: `await reader.read()` per refresh.

    Each refresh sends the instant queries at once (one moment, `time=` now), and for targets
    without current series a few `last_over_time` queries more. A failure raises `FleetError`.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        stale_after: float = DEFAULT_STALE_AFTER,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base = api_base(url)
        self.url = display_url(self.base)
        self.timeout = timeout
        self.stale_after = stale_after
        self.lookback = lookback_for(stale_after)
        self.clock = clock
        self.answered_at: float | None = None
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            max_redirects=3,
            trust_env=True,
            transport=transport,
            headers={"User-Agent": f"pullwatch/{__version__} (fleet)"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> FleetReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def read(self) -> FleetSnapshot:
        """One refresh. Raises FleetError (one line, classified) when Prometheus cannot be read."""
        now = self.clock.time()
        try:
            async with asyncio.timeout(self.timeout * 2):  # both rounds of queries, bounded
                return await self._read(now)
        except TimeoutError:
            raise FleetError(
                FleetErrorKind.TIMEOUT, f"no answer within {self.timeout:g} s", self.url
            ) from None

    async def _read(self, now: float) -> FleetSnapshot:
        queries = {
            **LIVE_QUERIES,
            "seen": seen_query(self.lookback),
            "up": up_query(self.lookback),
        }
        names = list(queries)
        answers = await asyncio.gather(*(self.query(queries[n], now) for n in names))
        live = dict(zip(names, answers, strict=True))
        gone = _targets_without_series(live)
        stale: dict[str, Result] = {}
        if gone:
            selector = _selector(gone)
            lookback = _duration(self.lookback)
            exprs = {
                name: f"last_over_time({metric}{{{selector}}}[{lookback}])"
                for name, metric in STALE_METRICS.items()
            }
            exprs["state"] += " == 1"
            stale_names = list(exprs)
            stale_answers = await asyncio.gather(*(self.query(exprs[n], now) for n in stale_names))
            stale = dict(zip(stale_names, stale_answers, strict=True))
        self.answered_at = now
        # Off the event loop: a thousand nodes take most of a second, and a dashboard waits.
        return await asyncio.to_thread(
            partial(assemble, now=now, prometheus=self.url, stale_after=self.stale_after),
            live,
            stale,
        )

    async def query(self, expr: str, at: float) -> Result:
        """One instant query (POST, so long selectors fit): the vector's items."""
        try:
            answer = await self._http.post(
                self.base + "/api/v1/query", data={"query": expr, "time": f"{at:.3f}"}
            )
        except httpx.TimeoutException:
            raise FleetError(
                FleetErrorKind.TIMEOUT, f"no answer within {self.timeout:g} s", self.url
            ) from None
        except httpx.HTTPError as exc:
            raise _transport_error(self.url, exc) from None
        return _parse_answer(self.url, answer)


def _transport_error(url: str, exc: httpx.HTTPError) -> FleetError:
    """A failed request, said the way an operator reads it."""
    if isinstance(exc, httpx.TooManyRedirects):
        return FleetError(FleetErrorKind.HTTP, "too many redirects", url)
    cause: BaseException | None = exc
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLError):
            reason = getattr(cause, "reason", None) or cause.__class__.__name__
            return FleetError(FleetErrorKind.TLS, f"TLS failed: {reason}", url)
        if isinstance(cause, socket.gaierror):
            return FleetError(FleetErrorKind.CONNECT, "its host name does not resolve", url)
        if isinstance(cause, ConnectionRefusedError):
            return FleetError(
                FleetErrorKind.CONNECT, "connection refused (is Prometheus running there?)", url
            )
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return FleetError(FleetErrorKind.CONNECT, "host unreachable", url)
        cause = cause.__cause__ or cause.__context__
    return FleetError(FleetErrorKind.CONNECT, str(exc) or exc.__class__.__name__, url)


def _parse_answer(url: str, answer: httpx.Response) -> Result:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        kind = answer.headers.get("content-type", "no content type").split(";")[0]
        if answer.status_code != 200:
            hint = _status_hint(answer.status_code)
            return _raise(FleetErrorKind.HTTP, f"HTTP {answer.status_code}{hint}", url)
        return _raise(
            FleetErrorKind.MALFORMED,
            f"not Prometheus's API (got {kind}; is this the Prometheus URL?)",
            url,
        )
    if body.get("status") == "error":
        error = one_line(str(body.get("error", "")), 200)
        error_type = one_line(str(body.get("errorType", "error")), 40)
        return _raise(FleetErrorKind.QUERY, f"the query failed: {error_type}: {error}", url)
    if answer.status_code != 200:
        return _raise(
            FleetErrorKind.HTTP,
            f"HTTP {answer.status_code}{_status_hint(answer.status_code)}",
            url,
        )
    data = body.get("data")
    if (
        body.get("status") != "success"
        or not isinstance(data, dict)
        or data.get("resultType") != "vector"
        or not isinstance(data.get("result"), list)
    ):
        return _raise(FleetErrorKind.MALFORMED, "an answer that is not a query result", url)
    return [item for item in data["result"] if _valid_item(item)]


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return " (authentication: put user:password@ in the URL, or use a read-only proxy)"
    if status == 404:
        return " (no Prometheus API here: is this the Prometheus URL?)"
    if status == 503:
        return " (Prometheus is not ready)"
    return ""


def _raise(kind: FleetErrorKind, reason: str, url: str) -> Result:
    raise FleetError(kind, reason, url)


def _valid_item(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("metric"), dict)
        and isinstance(item.get("value"), list)
        and len(item["value"]) == 2
    )


# -- from series to rows (pure) -------------------------------------------------------------


def _text(labels: Mapping[str, Any], name: str, limit: int = 100) -> str:
    value = labels.get(name)
    return _clean(value, limit) if isinstance(value, str) else ""


@lru_cache(maxsize=8192)
def _clean(value: str, limit: int) -> str:
    """A label value made one safe line (cached: a fleet repeats its few values everywhere)."""
    return one_line(value, limit)


def _number(item: Mapping[str, Any]) -> float | None:
    try:
        value = float(item["value"][1])
    except (TypeError, ValueError, IndexError):
        return None
    return value if math.isfinite(value) else None


def _target(labels: Mapping[str, Any]) -> TargetKey:
    return (_text(labels, "job"), _text(labels, "instance", 200))


def _row_key(labels: Mapping[str, Any]) -> RowKey:
    return (
        *_target(labels),
        _text(labels, "node"),
        _text(labels, "registry", 200),
        _text(labels, "identity", 64),
    )


def _by_row(result: Result) -> dict[RowKey, float]:
    out: dict[RowKey, float] = {}
    for item in result:
        value = _number(item)
        if value is not None and _text(item["metric"], "identity"):
            out[_row_key(item["metric"])] = value
    return out


@dataclass
class _Series:
    """One refresh's values per row (from the live queries, or the lookback ones)."""

    state: dict[RowKey, State] = field(default_factory=dict)
    source: dict[RowKey, str] = field(default_factory=dict)
    numbers: dict[str, dict[RowKey, float]] = field(default_factory=dict)

    @classmethod
    def of(cls, results: Mapping[str, Result]) -> _Series:
        series = cls()
        for item in results.get("state", []):
            labels = item["metric"]
            try:
                state = State(_text(labels, "state"))
            except ValueError:
                continue
            if _text(labels, "identity"):
                series.state[_row_key(labels)] = state
        for name in ("remaining", "limit", "window"):
            for item in results.get(name, []):
                if _text(item["metric"], "identity"):
                    series.source[_row_key(item["metric"])] = _text(item["metric"], "source", 200)
        for name in ("remaining", "limit", "window", "probed", "succeeded", "latency"):
            series.numbers[name] = _by_row(results.get(name, []))
        series.numbers["retry_after"] = _by_row(results.get("retry_after", []))
        return series

    def get(self, name: str, key: RowKey) -> float | None:
        return self.numbers.get(name, {}).get(key)

    def whole(self, name: str, key: RowKey) -> int | None:
        value = self.get(name, key)
        return None if value is None or value < 0 else int(value)

    def rows(self) -> set[RowKey]:
        return set(self.state) | set(self.numbers.get("probed", {}))


def _targets_without_series(live: Mapping[str, Result]) -> list[TargetKey]:
    """Targets seen within the lookback that have no current series (down, or gone)."""
    current = {_target(item["metric"]) for item in live.get("info", [])}
    seen = {_target(item["metric"]) for item in live.get("seen", [])}
    return sorted(seen - current)


def _regex_literal(text: str) -> str:
    return "".join("\\" + c if c in r"\.^$|?*+()[]{}" else c for c in text)


def _selector(targets: Sequence[TargetKey]) -> str:
    jobs = "|".join(sorted({_regex_literal(job) for job, _ in targets}))
    instances = "|".join(sorted({_regex_literal(instance) for _, instance in targets}))
    return f"job=~{json.dumps(jobs)}, instance=~{json.dumps(instances)}"


def _login(source: str | None) -> str | None:
    """The row's username: "" (logged in, the login is not exported) for an account bucket."""
    parsed = parse_source(source)
    return "" if parsed is not None and parsed.kind is SourceKind.ACCOUNT else None


def _failure_detail(state: State, node: str, identity: str) -> str | None:
    if state in (State.AUTH_FAILED, State.THROTTLED, State.ERROR):
        return f"as probed on {node}; `pullwatch head {identity}` there says why"
    return None


def assemble(
    live: Mapping[str, Result],
    stale: Mapping[str, Result] | None = None,
    *,
    now: float,
    prometheus: str,
    stale_after: float = DEFAULT_STALE_AFTER,
) -> FleetSnapshot:
    """The rows of one refresh, from the API's results: `live` holds the instant queries
    (LIVE_QUERIES, `seen`, `up`), `stale` the lookback ones for targets without series."""
    current, old = _Series.of(live), _Series.of(stale or {})
    up: dict[TargetKey, bool] = {}
    for item in live.get("up", []):
        value = _number(item)
        if value is not None:
            up[_target(item["metric"])] = value == 1
    info: dict[TargetKey, dict[str, str]] = {}
    for result in (live.get("seen", []), live.get("info", [])):  # current labels win
        for item in result:
            labels = item["metric"]
            info[_target(labels)] = {
                name: _text(labels, name, 200)
                for name in ("node", "registry", "repository", "version")
            }
    live_targets = {_target(item["metric"]) for item in live.get("info", [])}
    rounds: dict[TargetKey, float] = {}
    for result in (live.get("round", []), (stale or {}).get("round", [])):
        for item in result:
            value = _number(item)
            key = _target(item["metric"])
            if value is not None and value > rounds.get(key, -math.inf):
                rounds[key] = value

    newest_probe: dict[tuple[bool, TargetKey], float] = {}  # (live, target): newest probe
    for is_live, series in ((True, current), (False, old)):
        for row, probed in series.numbers.get("probed", {}).items():
            slot = (is_live, (row[0], row[1]))
            newest_probe[slot] = max(probed, newest_probe.get(slot, -math.inf))
    targets: dict[TargetKey, FleetTarget] = {}
    for key, labels in sorted(info.items()):
        is_live = key in live_targets
        times = [t for t in (newest_probe.get((is_live, key)), rounds.get(key)) if t is not None]
        newest = max(times, default=None)
        node = labels["node"] or key[1]
        targets[key] = FleetTarget(
            job=key[0],
            instance=key[1],
            node=node,
            registry=labels["registry"],
            repository=labels["repository"],
            version=labels["version"],
            up=up.get(key),
            live=is_live,
            last_activity=newest,
            staleness=_target_staleness(key, node, up.get(key), is_live, newest, now, stale_after),
        )

    candidates: dict[tuple[str, str, str], tuple[RowKey, _Series, FleetTarget]] = {}
    for series, want_live in ((current, True), (old, False)):
        for row in sorted(series.rows()):  # a set: sorted, so every refresh reads the same
            target = targets.get((row[0], row[1]))
            if target is None or target.live is not want_live:
                continue
            ident = (row[2], row[3], row[4])
            chosen = candidates.get(ident)
            if chosen is None or _better(series, row, target, chosen):
                candidates[ident] = (row, series, target)

    registries: dict[tuple[str, str], int] = {}
    for node, _, identity in candidates:
        registries[(node, identity)] = registries.get((node, identity), 0) + 1
    readings: dict[tuple[str, str, str], Reading] = {}
    for ident, (row, series, target) in candidates.items():
        node, registry, identity = ident
        label = f"{node}/{identity}"
        if registries[(node, identity)] > 1:
            label += f"@{registry}"
        readings[ident] = _reading(label, row, series, target, now)

    order = sorted(candidates, key=lambda i: (i[0], i[2], i[1]))  # node, identity, registry
    fresh = [readings[i] for i in order if candidates[i][2].staleness is None]
    by_bucket: dict[tuple[str, str, str], list[str]] = {}
    for reading in fresh:
        if reading.bucket_key is not None:
            by_bucket.setdefault(reading.bucket_key, []).append(reading.label)
    rows: list[FleetAssessment] = []
    for ident in order:
        row, series, target = candidates[ident]
        reading = readings[ident]
        meta = {
            "node": ident[0],
            "identity": ident[2],
            "registry_host": ident[1],
            "instance": target.instance,
            "job": target.job,
            "last_success_at": series.get("succeeded", row),
            "last_state": series.state.get(row),
        }
        if target.staleness is None:
            shared = [
                label
                for label in by_bucket.get(reading.bucket_key or ("", "", ""), ())
                if label != reading.label
            ]
            rows.append(_fresh(reading, series.state.get(row), fresh, shared, meta))
        else:
            good = _last_good(row, series, reading)
            rows.append(_stale(reading, good, target.staleness, meta))
    return FleetSnapshot(
        prometheus=prometheus,
        fetched_at=now,
        rows=tuple(rows),
        targets=tuple(targets.values()),
        answered_at=now,
        stale_after=stale_after,
    )


def _better(
    series: _Series,
    row: RowKey,
    target: FleetTarget,
    chosen: tuple[RowKey, _Series, FleetTarget],
) -> bool:
    """Two targets export the same (node, registry, identity): the current, newest one wins."""
    other_row, other_series, other_target = chosen
    mine = (target.staleness is None, series.get("probed", row) or 0.0)
    theirs = (other_target.staleness is None, other_series.get("probed", other_row) or 0.0)
    return mine > theirs


def _target_staleness(
    key: TargetKey,
    node: str,
    up: bool | None,
    live: bool,
    newest: float | None,
    now: float,
    stale_after: float,
) -> Staleness | None:
    instance = key[1]
    check = (
        f"Check pullwatch serve on {node} (`systemctl status pullwatch-serve`, or the "
        "DaemonSet's pod on that node) and the network between Prometheus and it."
    )
    direct = f"On {node}, `pullwatch check` reads the buckets directly (a HEAD: it spends no pull)."
    since = "" if newest is None else f" Its last probe was {format_coarse(now - newest)} ago."
    if up is False:
        return Staleness(
            why="stale: scrape failing",
            meaning=(
                f"Prometheus cannot scrape pullwatch on {node} ({instance}, job {key[0]}): "
                f"these are the last values it had, not what the bucket holds now.{since}"
            ),
            steps=(check, direct),
        )
    if not live:
        return Staleness(
            why="stale: no longer scraped",
            meaning=(
                f"Prometheus no longer has current pullwatch metrics from {node} ({instance}, "
                f"job {key[0]}): the target was removed, or its metrics stopped. These are the "
                f"last values it had.{since}"
            ),
            steps=(check, direct),
        )
    if newest is not None and now - newest > stale_after:
        age = format_coarse(now - newest)
        return Staleness(
            why=f"stale: no probe for {age}",
            meaning=(
                f"pullwatch on {node} still answers, but has not finished a probe round for "
                f"{age} (more than {format_coarse(stale_after)}): its numbers are old."
            ),
            steps=(
                f"Look at the log of pullwatch serve on {node} (`journalctl -u "
                "pullwatch-serve`) and restart it; check that the node's clock is right.",
                direct,
            ),
        )
    return None


def _reading(label: str, row: RowKey, series: _Series, target: FleetTarget, now: float) -> Reading:
    """The row as a measurement: what the node's last round said."""
    state = series.state.get(row, State.UNKNOWN)
    source = series.source.get(row) or None
    probed = series.get("probed", row)
    latency = series.get("latency", row)
    registry = row[3]
    limit = series.whole("limit", row)
    numbers = state in METERED_STATES
    return Reading(
        label=label,
        username=_login(source),
        checked_at=probed if probed is not None else now,
        state=state,
        limit=limit if numbers else None,
        remaining=series.whole("remaining", row) if numbers else None,
        window_seconds=series.whole("window", row) if numbers else None,
        source=parse_source(source),
        latency_ms=None if latency is None else latency * 1000,
        retry_after=series.get("retry_after", row),
        detail=_failure_detail(state, row[2], row[4]),
        registry=registry,
        repository=target.repository or None,
        docker_hub=registry in DOCKER_HUB_HOSTS or limit is not None,
    )


def _fresh(
    reading: Reading,
    node_state: State | None,
    others: Sequence[Reading],
    shared_with: Sequence[str],
    meta: Mapping[str, Any],
) -> FleetAssessment:
    """A current row: the node's verdict stands (`low` is its threshold, not ours)."""
    threshold = -1
    if node_state is State.LOW and reading.remaining is not None:
        threshold = reading.remaining
    policy = Policy(identity_warn={reading.label: threshold})
    assessment = assess(reading, others=others, policy=policy, shared_with=shared_with)
    return _fleet(assessment, meta, None)


def _last_good(row: RowKey, series: _Series, reading: Reading) -> Reading | None:
    """The last reading that measured the quota, from what the series still hold.

    Numbers are exported only while the latest probe measured them, so the last ones seen are
    the last good reading's, from when it succeeded."""
    succeeded = series.get("succeeded", row)
    if succeeded is None:
        return None
    limit, remaining = series.whole("limit", row), series.whole("remaining", row)
    if limit is not None and remaining is not None and remaining <= limit:
        return replace(
            reading,
            checked_at=succeeded,
            state=State.EXHAUSTED if remaining == 0 else State.OK,
            limit=limit,
            remaining=remaining,
            window_seconds=series.whole("window", row),
        )
    if reading.state is State.UNMETERED:
        return replace(reading, checked_at=succeeded)
    return None


def _stale(
    reading: Reading,
    good: Reading | None,
    staleness: Staleness,
    meta: Mapping[str, Any],
) -> FleetAssessment:
    """A stale row: state unknown, the reason says why, the last numbers kept as stale."""
    recent = RecentHistory()
    if good is not None and good.measured:
        recent.adopt((), {}, last_good=[good])  # its numbers, no estimate from one reading
    last_state = meta.get("last_state")
    why = staleness.why + (f"; was {last_state.label}" if last_state is not None else "")
    placeholder = Reading(
        label=reading.label,
        username=reading.username,
        checked_at=max(reading.checked_at, good.checked_at if good is not None else 0.0),
        state=State.UNKNOWN,
        source=reading.source or (good.source if good is not None else None),
        detail=why,
        registry=reading.registry,
        repository=reading.repository,
        docker_hub=reading.docker_hub,
    )
    assessment = assess(placeholder, recent=recent)
    return _fleet(assessment, meta, replace(staleness, why=why))


def _fleet(
    assessment: Assessment, meta: Mapping[str, Any], staleness: Staleness | None
) -> FleetAssessment:
    own = {f.name: getattr(assessment, f.name) for f in fields(Assessment)}
    return FleetAssessment(**own, **meta, staleness=staleness)


def mark_failed(
    previous: FleetSnapshot | None, error: FleetError, now: float, *, prometheus: str
) -> FleetSnapshot:
    """Prometheus did not answer: the last rows, every one stale, and the error."""
    if previous is None:
        return FleetSnapshot(prometheus=prometheus, fetched_at=now, error=error)
    answered = previous.answered_at
    ago = "" if answered is None else f", {format_coarse(now - answered)} ago"
    staleness = Staleness(
        why="stale: Prometheus down",
        meaning=(
            f"Prometheus at {previous.prometheus} could not be read: {error.reason}. These are "
            f"the values of its last answer{ago}, not what the buckets hold now."
        ),
        steps=(
            "Check that Prometheus runs and that this host reaches it (`curl "
            f"{previous.prometheus}/-/ready`).",
            "On each node, `pullwatch check` reads the buckets directly (a HEAD: no pull spent).",
        ),
    )
    rows = []
    for row in previous.rows:
        meta = {
            "node": row.node,
            "identity": row.identity,
            "registry_host": row.registry_host,
            "instance": row.instance,
            "job": row.job,
            "last_success_at": row.last_success_at,
            "last_state": row.last_state,
        }
        rows.append(_stale(row.reading, row.last_known, staleness, meta))
    return replace(
        previous, rows=tuple(rows), error=error, fetched_at=now, answered_at=previous.answered_at
    )


# -- for scripts ------------------------------------------------------------------------------


def row_json(row: FleetAssessment) -> dict[str, Any]:
    """One row of `pullwatch fleet --json`: `check --json`'s keys for what metrics carry, plus
    where it comes from and whether it is stale."""
    document = assessment_json(row)
    for key in ("username", "http_status", "error_kind", "step", "raw"):
        document.pop(key, None)  # not in the metrics
    document.update(
        {
            "key": row.key,
            "node": row.node,
            "instance": row.instance,
            "job": row.job,
            "identity": row.identity,
            "registry": row.registry_host,
            "stale": row.stale,
            "stale_reason": None if row.staleness is None else row.staleness.why,
            "last_success_at": (
                None if row.last_success_at is None else iso_time(row.last_success_at)
            ),
            "meaning": row.advice.meaning,
        }
    )
    return document


def snapshot_json(snapshot: FleetSnapshot) -> dict[str, Any]:
    best = snapshot.best
    return {
        "prometheus": snapshot.prometheus,
        "fetched_at": iso_time(snapshot.fetched_at),
        "stale_after_seconds": snapshot.stale_after,
        "nodes": [t.to_json() for t in snapshot.targets],
        "rows": [row_json(row) for row in snapshot.rows],
        "best": None if best is None else best.key,
        "exit_code": int(snapshot.exit_code),
    }


def read_once(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    stale_after: float = DEFAULT_STALE_AFTER,
    clock: Clock = SYSTEM_CLOCK,
) -> FleetSnapshot:
    """One refresh, for `pullwatch fleet --json`. Raises FleetError."""

    async def once() -> FleetSnapshot:
        async with FleetReader(
            url, timeout=timeout, stale_after=stale_after, clock=clock
        ) as reader:
            return await reader.read()

    return asyncio.run(once())
