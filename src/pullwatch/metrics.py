"""Metrics for fleets: assessments as Prometheus / OpenMetrics, and `pullwatch serve`.

Many egress IPs mean many buckets, so the answer is to run pullwatch headless on every host and
let Prometheus aggregate: `check --openmetrics` writes one snapshot (for node_exporter's textfile
collector), `serve` probes on the configured interval with the same monitor, token cache and
backoff as the dashboard, and answers `/metrics` from the latest round - a scrape never probes.

Every per-identity series says which identity, registry and node it belongs to (`identity`,
`registry`, `node`: the host pullwatch runs on, from `--instance-label` or the host name, since
Prometheus's own `instance` names the scrape target, which can differ behind NAT); bucket series
add `source`. Numbers are exported only when the latest probe read a valid quota: a failed probe
leaves `pullwatch_remaining_pulls` absent rather than stale (and
`pullwatch_last_success_timestamp_seconds` says how old the last good reading is).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from socketserver import BaseServer
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.exposition import generate_latest as prometheus_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from pullwatch import __version__
from pullwatch.assess import Assessment
from pullwatch.history import BackgroundWriter, History
from pullwatch.hub.urls import registry_host
from pullwatch.reading import Reading, State
from pullwatch.recent import RecentHistory
from pullwatch.redact import one_line

if TYPE_CHECKING:
    from pullwatch.runtime import Runtime

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:9723"
MIN_INTERVAL = 10.0  # seconds between rounds, as for the dashboard
MAX_CONNECTIONS = 16  # scrapes served at once; more are refused at once
CONNECTION_TIMEOUT = 10.0  # seconds a connection may idle before it is closed


class MetricsError(Exception):
    """`serve` cannot start: one line."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a scrape sees: the latest assessments and, for `serve`, the round bookkeeping."""

    assessments: tuple[Assessment, ...]
    registry: str
    repository: str
    node: str
    rounds: int | None = None  # None: a one-shot check (no round counter)
    last_round_at: float | None = None
    history_failures: int | None = None


def default_node() -> str:
    """The host name, for the `node` label."""
    return socket.gethostname() or "localhost"


def _label(value: str | None, limit: int = 100) -> str:
    return one_line(value or "", limit)


class AssessmentCollector:
    """A prometheus_client collector over `snapshot()`: it never probes, it only reads."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: the families depend on the readings

    def collect(self) -> Iterator[Metric]:
        yield from _families(self._snapshot())


def _families(snap: Snapshot) -> Iterable[Metric]:
    host = _label(registry_host(snap.registry), 200)
    node = _label(snap.node, 100)
    info = GaugeMetricFamily(
        "pullwatch_build_info",
        "pullwatch version and the registry and repository it probes (always 1)",
        labels=["version", "registry", "repository", "node"],
    )
    info.add_metric([__version__, host, _label(snap.repository, 200), node], 1)
    yield info

    who = ["identity", "registry", "node"]
    bucket = ["identity", "registry", "source", "node"]

    def gauge(name: str, text: str, labels: list[str], unit: str = "") -> GaugeMetricFamily:
        return GaugeMetricFamily(name, text, labels=labels, unit=unit)

    remaining = gauge(
        "pullwatch_remaining_pulls",
        "Pulls left in the bucket (ratelimit-remaining), when the last probe read a valid quota",
        bucket,
    )
    limit = gauge(
        "pullwatch_limit_pulls",
        "The bucket's pull limit per window (ratelimit-limit), when the last probe read it",
        bucket,
    )
    window = gauge(
        "pullwatch_window_seconds",
        "Length of the rolling window (w=) in seconds; not a time to reset",
        bucket,
        unit="seconds",
    )
    success = gauge(
        "pullwatch_probe_success",
        "1 if the last probe measured the quota (metered or not), 0 if it failed or never ran",
        who,
    )
    state = gauge(
        "pullwatch_state",
        "1 for the identity's current state, 0 for the others",
        [*who, "state"],
    )
    latency = gauge(
        "pullwatch_probe_latency_seconds",
        "Latency of the last request of the last probe",
        who,
        unit="seconds",
    )
    probed = gauge(
        "pullwatch_last_probe_timestamp_seconds",
        "When the identity was last probed (Unix time)",
        who,
        unit="seconds",
    )
    succeeded = gauge(
        "pullwatch_last_success_timestamp_seconds",
        "When a probe last measured the identity's quota (Unix time)",
        who,
        unit="seconds",
    )
    retry = gauge(
        "pullwatch_retry_after_seconds",
        "Retry-After of the last answer, when it sent one",
        who,
        unit="seconds",
    )
    runs_out = gauge(
        "pullwatch_forecast_exhaustion_timestamp_seconds",
        "When the bucket runs out at the recent pace, at the earliest plausible (Unix time); "
        "absent when it is not draining or there is no pace yet",
        bucket,
        unit="seconds",
    )
    pace = gauge(
        "pullwatch_forecast_pulls_per_hour",
        "Pulls made per hour from the bucket lately, as its readings show them",
        bucket,
    )
    for a in snap.assessments:
        r = a.reading
        ids = [_label(a.label, 64), host, node]
        quota = a.quota
        if quota is not None and not quota.stale and a.state is not State.UNKNOWN:
            source = quota.source.value if quota.source is not None else ""
            labels = [ids[0], host, _label(source), node]
            remaining.add_metric(labels, quota.remaining)
            limit.add_metric(labels, quota.limit)
            if quota.window_seconds is not None:
                window.add_metric(labels, quota.window_seconds)
        success.add_metric(ids, 1 if a.measured else 0)
        for candidate in State:
            state.add_metric([*ids, candidate.value], 1 if a.state is candidate else 0)
        if r.latency_ms is not None:
            latency.add_metric(ids, round(r.latency_ms / 1000, 6))
        if r.probed:
            probed.add_metric(ids, r.checked_at)
        if a.last_known is not None:
            succeeded.add_metric(ids, a.last_known.checked_at)
        if r.retry_after is not None:
            retry.add_metric(ids, r.retry_after)
        forecast = a.forecast
        if forecast is not None and quota is not None and not quota.stale:
            source = quota.source.value if quota.source is not None else ""
            labels = [ids[0], host, _label(source), node]
            if forecast.per_hour is not None:
                pace.add_metric(labels, round(forecast.per_hour, 3))
            if forecast.status.value == "draining" and forecast.runs_out_at is not None:
                runs_out.add_metric(labels, forecast.runs_out_at)
    yield from (remaining, limit, window, success, state, latency, probed, succeeded, retry)
    yield from (runs_out, pace)

    if snap.rounds is not None:
        rounds = CounterMetricFamily(
            "pullwatch_rounds",
            "Probe rounds completed since pullwatch serve started",
            labels=["node"],
        )
        rounds.add_metric([node], snap.rounds)
        yield rounds
        if snap.last_round_at is not None:
            last = gauge(
                "pullwatch_last_round_timestamp_seconds",
                "When the last probe round finished (Unix time)",
                ["node"],
                unit="seconds",
            )
            last.add_metric([node], snap.last_round_at)
            yield last
    if snap.history_failures is not None:
        failures = CounterMetricFamily(
            "pullwatch_history_write_failures",
            "Readings the history database could not store since pullwatch serve started",
            labels=["node"],
        )
        failures.add_metric([node], snap.history_failures)
        yield failures


def _registry(snapshot: Callable[[], Snapshot]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AssessmentCollector(snapshot))
    return registry


def openmetrics_text(
    assessments: Sequence[Assessment], *, registry: str, repository: str, node: str | None = None
) -> str:
    """One snapshot in the OpenMetrics text format (ends with `# EOF`)."""
    snap = Snapshot(tuple(assessments), registry, repository, node or default_node())
    text: bytes = openmetrics_latest(_registry(lambda: snap))
    return text.decode()


def prometheus_text(
    assessments: Sequence[Assessment], *, registry: str, repository: str, node: str | None = None
) -> str:
    """One snapshot in the classic Prometheus text format (0.0.4)."""
    snap = Snapshot(tuple(assessments), registry, repository, node or default_node())
    return prometheus_latest(_registry(lambda: snap)).decode()


# -- the HTTP side ----------------------------------------------------------------------------


def parse_listen(text: str) -> tuple[str, int]:
    """`127.0.0.1:9723`, `[::1]:9723`, `:9723` (every interface) or `9723` (loopback)."""
    raw = text.strip()
    if raw.isdigit():
        host, port_text = "127.0.0.1", raw
    elif raw.startswith("["):
        host, sep, port_text = raw[1:].partition("]:")
        if not sep:
            raise MetricsError(f"--listen {text!r}: write an IPv6 address as [ADDR]:PORT")
    else:
        host, sep, port_text = raw.rpartition(":")
        if not sep:
            raise MetricsError(f"--listen {text!r}: expected HOST:PORT (like {DEFAULT_LISTEN})")
        if ":" in host:
            raise MetricsError(f"--listen {text!r}: write an IPv6 address as [ADDR]:PORT")
        host = host or "0.0.0.0"
    if not port_text.isdigit() or int(port_text) > 65535:
        raise MetricsError(f"--listen {text!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


class _QuietHandler(WSGIRequestHandler):
    timeout = CONNECTION_TIMEOUT  # an idle or dripping client is dropped, not waited for

    def log_message(self, format: str, *args: Any) -> None:
        """No request log: a scrape every 15 s would flood the journal."""


class _BoundedServer(ThreadingWSGIServer):
    """prometheus_client's threaded WSGI server, with a cap on connections served at once."""

    allow_reuse_address = True
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # over the cap: refused at once, nothing waits
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class MetricsServer:
    """`/metrics` (any path) on a small bounded WSGI server; `snapshot` is read per scrape."""

    def __init__(
        self,
        host: str,
        port: int,
        snapshot: Callable[[], Snapshot],
        *,
        max_connections: int = MAX_CONNECTIONS,
        timeout: float = CONNECTION_TIMEOUT,
    ) -> None:
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        except (OSError, UnicodeError) as exc:
            raise MetricsError(f"cannot listen on {host}:{port}: {exc}") from None
        server_class = type(
            "_Server",
            (_BoundedServer,),
            {"address_family": family, "slots": threading.BoundedSemaphore(max_connections)},
        )
        handler_class = type("_Handler", (_QuietHandler,), {"timeout": timeout})
        try:
            self._httpd: BaseServer = make_server(
                host,
                port,
                make_wsgi_app(_registry(snapshot)),
                server_class=server_class,
                handler_class=handler_class,
            )
        except OSError as exc:
            raise MetricsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="pullwatch-metrics", daemon=True
        )

    @property
    def url(self) -> str:
        address = self._httpd.server_address
        host, port = str(address[0]), int(address[1])  # type: ignore[index]  # typeshed: str | tuple
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/metrics"

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()


# -- pullwatch serve ---------------------------------------------------------------------------


@dataclass
class Exporter:
    """The serve loop's state: the latest snapshot, swapped whole after each round."""

    registry: str
    repository: str
    node: str
    snapshot: Snapshot = field(init=False)

    def __post_init__(self) -> None:
        self.snapshot = Snapshot((), self.registry, self.repository, self.node, rounds=0)

    def current(self) -> Snapshot:
        return self.snapshot

    def publish(
        self, assessments: Sequence[Assessment], at: float, history_failures: int | None = None
    ) -> None:
        rounds = (self.snapshot.rounds or 0) + 1
        self.snapshot = Snapshot(
            tuple(assessments),
            self.registry,
            self.repository,
            self.node,
            rounds,
            at,
            history_failures,
        )


def run_exporter(
    runtime: Runtime,
    *,
    host: str,
    port: int,
    interval: float,
    announce: Callable[[str], None],
    node: str | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Serve `/metrics` and probe every `interval` s until SIGTERM / SIGINT (or `stop`)."""
    exporter = Exporter(runtime.registry, runtime.repository, node or default_node())
    exporter.snapshot = Snapshot(
        tuple(runtime.assess(_unknown(runtime), RecentHistory())),
        runtime.registry,
        runtime.repository,
        exporter.node,
        rounds=0,
    )
    server = MetricsServer(host, port, exporter.current).start()
    try:
        announce(
            f"serving {server.url} (probing {len(runtime.config.identities)} identities every "
            f"{interval:g} s; stop with Ctrl-C or SIGTERM)"
        )
        asyncio.run(_serve_loop(runtime, exporter, interval, announce, stop))
    finally:
        server.stop()
    announce("stopped")
    return 0


def _unknown(runtime: Runtime) -> list[Reading]:
    now = runtime.clock.time()
    return [Reading.unknown(i.label, i.username, now) for i in runtime.config.identities]


async def _serve_loop(
    runtime: Runtime,
    exporter: Exporter,
    interval: float,
    announce: Callable[[str], None],
    stop: asyncio.Event | None,
) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    last_problem: list[str | None] = [None]
    settings = runtime.config.settings

    def open_history() -> History:
        return History(
            runtime.paths.history_db, clock=runtime.clock, retention_days=settings.retention_days
        )

    recent = await asyncio.to_thread(_load_recent, open_history, runtime)
    writer = BackgroundWriter(open_history)  # feeds `pullwatch history` and the estimates
    reported_failures = [0]
    try:
        async with runtime.client() as client:
            monitor = runtime.monitor(client)
            monitor.sinks.append(writer.submit)
            monitor.sinks.append(recent.add)

            def on_round(_: list[Any]) -> None:
                status = writer.status
                if status.failed > reported_failures[0]:
                    announce(f"warning: history not written: {status.last_error}")
                    reported_failures[0] = status.failed
                runtime.ledger.flush()
                exporter.publish(
                    runtime.assess(monitor.readings(), recent),
                    runtime.clock.time(),
                    history_failures=status.failed,
                )
                _reload(runtime, monitor, announce, last_problem)

            task = asyncio.create_task(monitor.run(interval, stop, on_round))
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            for pending in (task, waiter):
                pending.cancel()
            for pending in (task, waiter):
                with contextlib.suppress(asyncio.CancelledError):
                    await pending
    finally:
        writer.close()
        for signum in handled:
            loop.remove_signal_handler(signum)


def _load_recent(open_history: Callable[[], History], runtime: Runtime) -> RecentHistory:
    from pullwatch.history import HistoryError

    try:
        with open_history() as history:
            return history.recent(
                runtime.clock.time(), labels=[i.label for i in runtime.config.identities]
            )
    except HistoryError as exc:
        log.warning("%s", exc)
        return RecentHistory()


def _reload(
    runtime: Runtime, monitor: Any, announce: Callable[[str], None], last: list[str | None]
) -> None:
    """Pick up identity changes between rounds; a broken config keeps the old identities."""
    try:
        config = runtime.reload()
    except Exception as exc:  # ConfigError: report once, keep serving what we have
        message = one_line(str(exc))
        if message != last[0]:
            announce(f"warning: config not reloaded: {message}")
        last[0] = message
        return
    last[0] = None
    monitor.set_identities(config.identities)
