"""Metrics for fleets: the exposition parses, /metrics never probes, serve stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from pullwatch.assess import assess_all
from pullwatch.metrics import (
    MetricsError,
    MetricsServer,
    Snapshot,
    openmetrics_text,
    parse_listen,
    prometheus_text,
)
from pullwatch.paths import Paths
from pullwatch.reading import ErrorKind, Reading, State
from pullwatch.simhub import SimHubServer

NOW = 1_764_504_000.0
ACCOUNT = "186e63fa-1b6a-4c51-9f12-61a26f0a9c01"
READINGS = (
    Reading("anonymous", None, NOW, State.OK, limit=100, remaining=76, window_seconds=21600,
            source="203.0.113.7", http_status=200, latency_ms=41.0),
    Reading("ci-bot", "cibot", NOW, State.EXHAUSTED, limit=200, remaining=0, window_seconds=21600,
            source=ACCOUNT, http_status=429, retry_after=60.0),
    Reading("release", "rel", NOW, State.UNMETERED, source="9f2c01aa-5e3b-4d7c-a1f0-2b8e6c4d9a10"),
    Reading("old-bot", "oldbot", NOW, State.AUTH_FAILED, detail="incorrect username or password"),
    Reading("odd", None, NOW, State.ERROR, error_kind=ErrorKind.MALFORMED,
            source='evil"\nsource\\x'),
    Reading("new", None, NOW, State.UNKNOWN),
)  # fmt: skip
ASSESSED = tuple(assess_all(READINGS))
HOST = "registry-1.docker.io"
NODE = "node-7"


def samples(
    text: str, parser: object = parse_om
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in parser(text):  # type: ignore[operator]
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: dict, name: str, **labels: str) -> float | None:  # type: ignore[type-arg]
    """A sample by name and labels; `registry` and `node` are this module's unless given."""
    if not name.startswith(("pullwatch_rounds", "pullwatch_last_round", "pullwatch_history")):
        labels = {"registry": HOST, **labels}
    labels = {"node": NODE, **labels}
    return found.get((name, tuple(sorted(labels.items()))))


@pytest.mark.parametrize("render", [openmetrics_text, prometheus_text])
def test_exposition_parses_with_prometheus_clients_parsers(render: object) -> None:
    text = render(ASSESSED, registry="https://registry-1.docker.io", repository="r/t", node=NODE)  # type: ignore[operator]
    found = samples(text, parse_om if render is openmetrics_text else parse_text)
    both = samples(text, parse_text) if render is openmetrics_text else found
    assert both  # the classic parser (node_exporter's textfile collector) takes OpenMetrics too
    bucket = {"identity": "anonymous", "source": "203.0.113.7"}
    assert value(found, "pullwatch_remaining_pulls", **bucket) == 76
    assert value(found, "pullwatch_limit_pulls", **bucket) == 100
    assert value(found, "pullwatch_window_seconds", **bucket) == 21600
    assert value(found, "pullwatch_remaining_pulls", identity="ci-bot", source=ACCOUNT) == 0
    assert value(found, "pullwatch_probe_success", identity="anonymous") == 1
    assert value(found, "pullwatch_probe_success", identity="release") == 1  # measured: unmetered
    assert value(found, "pullwatch_probe_success", identity="old-bot") == 0
    assert value(found, "pullwatch_probe_success", identity="new") == 0
    assert value(found, "pullwatch_state", identity="ci-bot", state="exhausted") == 1
    assert value(found, "pullwatch_state", identity="ci-bot", state="ok") == 0
    assert value(found, "pullwatch_retry_after_seconds", identity="ci-bot") == 60
    assert value(found, "pullwatch_probe_latency_seconds", identity="anonymous") == 0.041
    assert value(found, "pullwatch_last_success_timestamp_seconds", identity="anonymous") == NOW
    assert value(found, "pullwatch_last_success_timestamp_seconds", identity="old-bot") is None
    info = [k for k in found if k[0] == "pullwatch_build_info"]
    assert len(info) == 1 and ("registry", HOST) in info[0][1] and ("node", NODE) in info[0][1]
    # Not metered: no numbers, never a 0 that reads as "exhausted".
    assert not [k for k in found if k[0] == "pullwatch_remaining_pulls" and "release" in str(k)]
    # A hostile source header cannot break the format (quote, newline, backslash).
    odd = [dict(k[1]) for k in found if k[0] == "pullwatch_state" and "odd" in str(k)]
    assert len(odd) == len(State)


def test_openmetrics_ends_with_eof_and_the_classic_format_does_not() -> None:
    assert openmetrics_text(ASSESSED, registry="r", repository="x").endswith("# EOF\n")
    assert "# EOF" not in prometheus_text(ASSESSED, registry="r", repository="x")


def test_a_failed_probe_exports_no_stale_numbers() -> None:
    """The last good numbers stay on the dashboard (marked stale), but a series stays a
    promise: after a failed probe remaining/limit are absent, and the age of the last good
    reading is exported instead."""
    from pullwatch.recent import RecentHistory

    good = READINGS[0]
    failed = Reading("anonymous", None, NOW + 60, State.ERROR, error_kind=ErrorKind.TIMEOUT,
                     detail="HEAD probe: timed out")  # fmt: skip
    recent = RecentHistory()
    recent.load([good, failed])
    (assessment,) = assess_all([failed], recent=recent)
    assert assessment.quota is not None and assessment.quota.stale  # the dashboard shows it
    found = samples(openmetrics_text([assessment], registry="r", repository="x", node=NODE))
    names = {name for name, _ in found}
    assert "pullwatch_remaining_pulls" not in names and "pullwatch_limit_pulls" not in names
    labels = {"identity": "anonymous", "registry": "r"}
    assert value(found, "pullwatch_last_success_timestamp_seconds", **labels) == NOW
    assert value(found, "pullwatch_probe_success", **labels) == 0


@pytest.mark.parametrize(
    ("text", "address"),
    [("127.0.0.1:9723", ("127.0.0.1", 9723)), ("[::1]:9100", ("::1", 9100)),
     (":9723", ("0.0.0.0", 9723)), ("9723", ("127.0.0.1", 9723)),
     ("localhost:0", ("localhost", 0))],
)  # fmt: skip
def test_parse_listen(text: str, address: tuple[str, int]) -> None:
    assert parse_listen(text) == address


@pytest.mark.parametrize("text", ["", "host", "::1:80", "h:99999", "h:port"])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(MetricsError):
        parse_listen(text)


@pytest.fixture
def server() -> Iterator[tuple[MetricsServer, list[int]]]:
    reads: list[int] = []

    def snapshot() -> Snapshot:
        reads.append(1)
        return Snapshot(ASSESSED, "r", "x", NODE, rounds=3, last_round_at=NOW)

    running = MetricsServer("127.0.0.1", 0, snapshot).start()
    try:
        yield running, reads
    finally:
        running.stop()


def get(url: str, accept: str | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_metrics_server_serves_the_snapshot(server: tuple[MetricsServer, list[int]]) -> None:
    running, reads = server
    status, kind, body = get(running.url)
    assert status == 200 and kind.startswith("text/plain")
    found = samples(body, parse_text)
    assert value(found, "pullwatch_rounds_total") == 3
    assert value(found, "pullwatch_last_round_timestamp_seconds") == NOW
    status, kind, body = get(running.url, accept="application/openmetrics-text; version=1.0.0")
    assert status == 200 and kind.startswith("application/openmetrics-text")
    assert value(samples(body), "pullwatch_remaining_pulls", identity="anonymous",
                 source="203.0.113.7", registry="r") == 76  # fmt: skip
    assert len(reads) == 2  # one snapshot read per scrape, nothing else


def test_idle_connections_cannot_starve_the_exporter() -> None:
    """A cap on connections served at once, and a timeout for idle ones: clients that connect
    and send nothing are dropped, and a scrape after them is answered."""
    import socket
    import time

    snap = Snapshot(ASSESSED, "r", "x", NODE)
    running = MetricsServer("127.0.0.1", 0, lambda: snap, max_connections=4, timeout=0.5).start()
    idle: list[socket.socket] = []
    try:
        port = int(running.url.rsplit(":", 1)[1].split("/")[0])
        for _ in range(12):  # three times the cap, each sending nothing
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        deadline = time.monotonic() + 10
        status = 0
        while time.monotonic() < deadline:  # bounded: the idle ones time out after 0.5 s
            try:
                status = get(running.url)[0]
                break
            except OSError:
                time.sleep(0.1)
        assert status == 200
        for conn in idle:  # every idle connection was closed by the server
            conn.settimeout(5)
            assert conn.recv(1) == b""
    finally:
        for conn in idle:
            conn.close()
        running.stop()


def test_listening_on_a_taken_port_is_one_line(server: tuple[MetricsServer, list[int]]) -> None:
    port = int(server[0].url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(MetricsError, match=f"cannot listen on 127.0.0.1:{port}"):
        MetricsServer("127.0.0.1", port, lambda: Snapshot((), "r", "x", NODE))


# -- pullwatch serve as a real process ----------------------------------------------------------


def metric(body: str, name: str, **labels: str) -> float | None:
    return value(samples(body, parse_text), name, **labels)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_probes_on_schedule_not_per_scrape_and_stops_cleanly(
    simhub: SimHubServer, paths: Paths, stop_signal: signal.Signals
) -> None:
    env = {**os.environ, "PULLWATCH_CONFIG_DIR": str(paths.config_dir),
           "PULLWATCH_DATA_DIR": str(paths.data_dir), "PULLWATCH_REGISTRY": simhub.url}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "pullwatch", "serve", "--listen", "127.0.0.1:0",
         "--interval", "3600", "--instance-label", NODE],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        match = re.search(r"serving (http://127\.0\.0\.1:\d+/metrics)", first)
        assert match, first
        url = match.group(1)
        body = ""
        for _ in range(500):  # until the first round is in (bounded)
            body = get(url)[2]
            if metric(body, "pullwatch_rounds_total") == 1:
                break
        assert metric(body, "pullwatch_rounds_total") == 1
        heads = simhub.model.counters["head"]
        for _ in range(5):
            body = get(url)[2]
        assert simhub.model.counters["head"] == heads  # scrapes never probe
        registry = simhub.url.split("://", 1)[1]
        assert metric(body, "pullwatch_remaining_pulls", identity="anonymous",
                      source="203.0.113.7", registry=registry) == 100  # fmt: skip
        assert metric(body, "pullwatch_probe_success", identity="anonymous",
                      registry=registry) == 1  # fmt: skip
        process.send_signal(stop_signal)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert err.strip().endswith("pullwatch: stopped")


def test_the_readme_mentions_every_metric() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    text = openmetrics_text(ASSESSED, registry="r", repository="x")
    names = set(re.findall(r"^# TYPE (\S+)", text, re.MULTILINE))
    assert names and all(name in readme for name in names)
