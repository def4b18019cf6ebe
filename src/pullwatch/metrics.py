"""Metrics for fleets: readings as Prometheus / OpenMetrics, and `pullwatch serve`.

Many egress IPs mean many buckets, so the answer is to run pullwatch headless on every host and
let Prometheus aggregate: `check --openmetrics` writes one snapshot (for node_exporter's textfile
collector), `serve` probes on the configured interval with the same monitor, token cache and
backoff as the dashboard, and answers `/metrics` from the latest round - a scrape never probes.

Exposition is prometheus_client's (the `metrics` extra); this module imports it at the top, so
importing this module is the check that the extra is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest as prometheus_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from pullwatch import __version__
from pullwatch.history import BackgroundWriter, History
from pullwatch.hub.redact import one_line
from pullwatch.reading import METERED_STATES, Reading, State

DEFAULT_LISTEN = "127.0.0.1:9723"
MIN_INTERVAL = 10.0  # seconds between rounds, as for the dashboard
SUCCESS_STATES = METERED_STATES | {State.UNMETERED}
INSTALL_HINT = "pip install 'pullwatch[metrics]'"


class MetricsError(Exception):
    """`serve` cannot start: one line."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a scrape sees: the latest readings and, for `serve`, the round bookkeeping."""

    readings: tuple[Reading, ...]
    registry: str
    repository: str
    rounds: int | None = None  # None: a one-shot check (no round counter)
    last_round_at: float | None = None


def _label(value: str | None, limit: int = 100) -> str:
    return one_line(value or "", limit)


class ReadingsCollector:
    """A prometheus_client collector over `snapshot()`: it never probes, it only reads."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: the families depend on the readings

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        yield from _families(snap)


def _families(snap: Snapshot) -> Iterable[Metric]:
    info = GaugeMetricFamily(
        "pullwatch_build_info",
        "pullwatch version and the registry and repository it probes (always 1)",
        labels=["version", "registry", "repository"],
    )
    info.add_metric([__version__, _label(snap.registry, 200), _label(snap.repository, 200)], 1)
    yield info

    bucket = ["identity", "source"]
    remaining = GaugeMetricFamily(
        "pullwatch_remaining_pulls",
        "Pulls left in the bucket, from ratelimit-remaining (absent when unknown or not metered)",
        labels=bucket,
    )
    limit = GaugeMetricFamily(
        "pullwatch_limit_pulls",
        "The bucket's pull limit per window, from ratelimit-limit (absent when not metered)",
        labels=bucket,
    )
    window = GaugeMetricFamily(
        "pullwatch_window_seconds",
        "Length of the rolling window (w=) in seconds; not a time to reset",
        labels=bucket,
        unit="seconds",
    )
    success = GaugeMetricFamily(
        "pullwatch_probe_success",
        "1 if the last probe measured the quota (metered or not), 0 if it failed or never ran",
        labels=["identity"],
    )
    state = GaugeMetricFamily(
        "pullwatch_state",
        "1 for the identity's current state, 0 for the others",
        labels=["identity", "state"],
    )
    latency = GaugeMetricFamily(
        "pullwatch_probe_latency_seconds",
        "Latency of the last HEAD probe",
        labels=["identity"],
        unit="seconds",
    )
    probed = GaugeMetricFamily(
        "pullwatch_last_probe_timestamp_seconds",
        "When the identity was last probed (Unix time)",
        labels=["identity"],
        unit="seconds",
    )
    retry = GaugeMetricFamily(
        "pullwatch_retry_after_seconds",
        "Retry-After of the last answer, when it sent one",
        labels=["identity"],
        unit="seconds",
    )
    for r in snap.readings:
        who = _label(r.label, 64)
        labels = [who, _label(r.source)]
        if r.remaining is not None and r.state in METERED_STATES:
            remaining.add_metric(labels, r.remaining)
        if r.limit is not None and r.state in METERED_STATES:
            limit.add_metric(labels, r.limit)
        if r.window_seconds is not None and r.state in METERED_STATES:
            window.add_metric(labels, r.window_seconds)
        success.add_metric([who], 1 if r.state in SUCCESS_STATES else 0)
        for candidate in State:
            state.add_metric([who, candidate.value], 1 if r.state is candidate else 0)
        if r.latency_ms is not None:
            latency.add_metric([who], round(r.latency_ms / 1000, 6))
        if r.state is not State.UNKNOWN:
            probed.add_metric([who], r.checked_at)
        if r.retry_after is not None:
            retry.add_metric([who], r.retry_after)
    yield from (remaining, limit, window, success, state, latency, probed, retry)

    if snap.rounds is not None:
        rounds = CounterMetricFamily(
            "pullwatch_rounds", "Probe rounds completed since pullwatch serve started"
        )
        rounds.add_metric([], snap.rounds)
        yield rounds
        if snap.last_round_at is not None:
            yield GaugeMetricFamily(
                "pullwatch_last_round_timestamp_seconds",
                "When the last probe round finished (Unix time)",
                value=snap.last_round_at,
                unit="seconds",
            )


def _registry(snapshot: Callable[[], Snapshot]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReadingsCollector(snapshot))  # type: ignore[arg-type]
    return registry


def openmetrics_text(readings: Sequence[Reading], *, registry: str, repository: str) -> str:
    """One snapshot in the OpenMetrics text format (ends with `# EOF`)."""
    snap = Snapshot(tuple(readings), registry, repository)
    return openmetrics_latest(_registry(lambda: snap)).decode()


def prometheus_text(readings: Sequence[Reading], *, registry: str, repository: str) -> str:
    """One snapshot in the classic Prometheus text format (0.0.4)."""
    snap = Snapshot(tuple(readings), registry, repository)
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
    def log_message(self, format: str, *args: Any) -> None:
        """No request log: a scrape every 15 s would flood the journal."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


def _index(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path in ("/", ""):
        body = b"pullwatch: Docker Hub pull rate limits. Metrics at /metrics\n"
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return [body]
    start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"not found: try /metrics\n"]


class MetricsServer:
    """`/metrics` on a small threaded WSGI server; `snapshot` is read on every scrape."""

    def __init__(self, host: str, port: int, snapshot: Callable[[], Snapshot]) -> None:
        metrics_app = make_wsgi_app(_registry(snapshot))

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if environ.get("PATH_INFO") == "/metrics":
                return metrics_app(environ, start_response)
            return _index(environ, start_response)

        server_class: type[_Server] = _Server
        try:
            if ":" in host and ipaddress.ip_address(host).version == 6:
                server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        except ValueError:
            pass
        try:
            self._httpd = make_server(
                host, port, app, server_class=server_class, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise MetricsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="pullwatch-metrics", daemon=True
        )

    @property
    def url(self) -> str:
        address = self._httpd.server_address
        host, port = str(address[0]), int(address[1])
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
    snapshot: Snapshot = field(init=False)

    def __post_init__(self) -> None:
        self.snapshot = Snapshot((), self.registry, self.repository, rounds=0)

    def current(self) -> Snapshot:
        return self.snapshot

    def publish(self, readings: Sequence[Reading], at: float) -> None:
        rounds = (self.snapshot.rounds or 0) + 1
        self.snapshot = Snapshot(tuple(readings), self.registry, self.repository, rounds, at)


def run_exporter(
    runtime: Any,
    *,
    host: str,
    port: int,
    interval: float,
    announce: Callable[[str], None],
    stop: asyncio.Event | None = None,
) -> int:
    """Serve `/metrics` and probe every `interval` s until SIGTERM / SIGINT (or `stop`)."""
    exporter = Exporter(runtime.registry, runtime.repository)
    exporter.snapshot = Snapshot(
        tuple(_unknown(runtime)), runtime.registry, runtime.repository, rounds=0
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


def _unknown(runtime: Any) -> list[Reading]:
    now = runtime.clock.time()
    return [Reading.unknown(i.label, i.username, now) for i in runtime.config.identities]


async def _serve_loop(
    runtime: Any,
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
    writer = BackgroundWriter(  # the history feeds `pullwatch history` and the estimates
        lambda: History(
            runtime.paths.history_db, clock=runtime.clock, retention_days=settings.retention_days
        )
    )
    try:
        async with runtime.client() as client:
            monitor = runtime.monitor(client)
            monitor.sinks.append(writer.submit)

            def on_round(_: list[Reading]) -> None:
                exporter.publish(monitor.readings(), runtime.clock.time())
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


def _reload(
    runtime: Any, monitor: Any, announce: Callable[[str], None], last: list[str | None]
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
