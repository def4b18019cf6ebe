"""`pullwatch fleet`'s headless half: Prometheus's answers turned into rows, stale rows, errors.

Every case here feeds `pullwatch.fleet` what Prometheus's HTTP API answers (hand-made vectors,
an httpx mock transport, or a stand-in API on loopback for what a real Prometheus will not do on
demand). The real Prometheus scraping real `pullwatch serve` processes is in
test_prometheus_contrib.py.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest

from fixtures_prometheus import StubPrometheus, free_port, vector_answer
from fleet_samples import ACCOUNT, HUB, NODE_A, NODE_B, NOW, Results, Row, gone, item, merge, target
from pullwatch.cli import main
from pullwatch.clock import ManualClock
from pullwatch.fleet import (
    LIVE_QUERIES,
    STALE_METRICS,
    FleetError,
    FleetErrorKind,
    FleetReader,
    FleetSnapshot,
    api_base,
    assemble,
    display_url,
    mark_failed,
    snapshot_json,
)
from pullwatch.output import ExitCode
from pullwatch.reading import State

PROMETHEUS = "http://prometheus.example:9090"


def snapshot(live: Results, stale: Results | None = None, **options: Any) -> FleetSnapshot:
    return assemble(live, stale, now=NOW, prometheus=PROMETHEUS, **options)


def rows(snap: FleetSnapshot) -> dict[str, Any]:
    return {row.key: row for row in snap.rows}


# -- current rows -------------------------------------------------------------------------------


def test_each_row_is_what_its_node_read() -> None:
    snap = snapshot(merge(target("node-a", NODE_A), target("node-b", NODE_B)))
    by_key = rows(snap)
    assert list(by_key) == [
        "node-a/anonymous", "node-a/ci-bot", "node-a/release",
        "node-b/anonymous", "node-b/ci-bot", "node-b/old-bot",
    ]  # fmt: skip
    states = {key: row.state.value for key, row in by_key.items()}
    assert states == {
        "node-a/anonymous": "ok", "node-a/ci-bot": "exhausted", "node-a/release": "unmetered",
        "node-b/anonymous": "low", "node-b/ci-bot": "exhausted", "node-b/old-bot": "auth_failed",
    }  # fmt: skip
    anonymous = by_key["node-a/anonymous"]
    assert (anonymous.node, anonymous.identity, anonymous.instance, anonymous.job) == (
        "node-a", "anonymous", "node-a.example:9723", "pullwatch"
    )  # fmt: skip
    quota = anonymous.quota
    assert quota is not None and (quota.remaining, quota.limit, quota.window_seconds) == (
        76, 100, 21600
    )  # fmt: skip
    assert not quota.stale and quota.source is not None and quota.source.value == "203.0.113.7"
    assert anonymous.reading.checked_at == NOW - 30 and anonymous.reading.latency_ms == 42.0
    assert anonymous.reading.username is None  # an IP's bucket: anonymous
    ci_bot = by_key["node-a/ci-bot"]
    assert ci_bot.reading.username == ""  # charged to an account: logged in (login not exported)
    assert ci_bot.reading.retry_after == 60.0
    assert ci_bot.shared_with == ["node-b/ci-bot"]  # one account, seen from two nodes
    assert ci_bot.advice.steps  # the dashboard's advice, for an account
    assert "this account's pulls" in ci_bot.advice.meaning
    refused = by_key["node-b/old-bot"]
    assert refused.reason == "as probed on node-b; `pullwatch head old-bot` there says why"
    assert refused.quota is None and refused.last_success_at is None
    assert not any(row.stale for row in snap.rows)
    assert snap.exit_code is ExitCode.CRITICAL  # the worst row: exhausted
    assert snap.best is not None and snap.best.key == "node-a/release"  # not metered
    assert snap.nodes == ["node-a", "node-b"] and snap.stale_nodes == []


def test_the_node_decides_what_is_low() -> None:
    """`low` is the node's threshold (its warn_below), not the fleet's 20%: they must agree."""
    snap = snapshot(
        merge(
            target("node-a", (Row("anonymous", "ok", "203.0.113.7", 12, 100),)),
            target("node-b", (Row("anonymous", "low", "198.51.100.9", 50, 100),)),
        )
    )
    by_key = rows(snap)
    assert by_key["node-a/anonymous"].state is State.OK
    assert by_key["node-b/anonymous"].state is State.LOW
    assert snap.exit_code is ExitCode.WARNING


def test_best_is_the_row_with_the_most_room_now() -> None:
    snap = snapshot(
        merge(
            target("node-a", (Row("anonymous", "ok", "203.0.113.7", 30, 100),)),
            target("node-b", (Row("anonymous", "ok", "198.51.100.9", 90, 100),)),
        )
    )
    assert snap.best is not None and snap.best.key == "node-b/anonymous"


# -- stale rows -----------------------------------------------------------------------------------


def test_a_target_prometheus_cannot_scrape_shows_its_last_values_marked_stale() -> None:
    live_b, stale_b = gone(target("node-b", NODE_B, up=0))
    snap = snapshot(merge(target("node-a", NODE_A), live_b), stale_b)
    by_key = rows(snap)
    low = by_key["node-b/anonymous"]
    assert low.stale and low.state is State.UNKNOWN
    assert low.reason == "stale: scrape failing; was low"
    assert low.last_state is State.LOW
    assert low.quota is not None and low.quota.stale  # kept, dimmed, never as current
    assert (low.quota.remaining, low.quota.limit, low.quota.as_of) == (12, 100, NOW - 30)
    assert "cannot scrape pullwatch on node-b" in low.advice.meaning
    assert any("systemctl status pullwatch-serve" in step for step in low.advice.steps)
    assert by_key["node-b/old-bot"].reason == "stale: scrape failing; was auth failed"
    assert not by_key["node-a/anonymous"].stale
    assert snap.stale_nodes == ["node-b"]
    (b,) = [t for t in snap.targets if t.node == "node-b"]
    assert (b.up, b.live, b.staleness is not None) == (False, False, True)
    # A stale number is not room now: node-b's 12 never makes it the best.
    assert snap.best is not None and snap.best.node == "node-a"
    assert snap.exit_code is ExitCode.CRITICAL  # node-a's exhausted ci-bot still decides


def test_a_stale_row_alone_is_unknown_for_scripts() -> None:
    live, stale = gone(target("node-b", (Row("anonymous", "ok", "198.51.100.9", 80, 100),), up=0))
    assert snapshot(live, stale).exit_code is ExitCode.UNKNOWN


def test_a_target_no_longer_scraped_is_stale_too() -> None:
    live, stale = gone(target("node-b", NODE_B, up=None))
    (row, *_) = snapshot(live, stale).rows
    assert row.reason == "stale: no longer scraped; was low"
    assert "no longer has current pullwatch metrics from node-b" in row.advice.meaning


def test_a_node_that_stopped_probing_is_stale_after_stale_after() -> None:
    old = NOW - 1000
    rows_ = (Row("anonymous", "ok", "203.0.113.7", 76, 100, probed=old, succeeded=old),)
    live = target("node-a", rows_, round_at=old)
    (row,) = snapshot(live, stale_after=900).rows
    assert row.stale and row.reason == "stale: no probe for 16m; was ok"
    assert row.quota is not None and row.quota.stale and row.quota.remaining == 76
    assert "journalctl -u pullwatch-serve" in row.advice.steps[0]
    (row,) = snapshot(live, stale_after=1800).rows
    assert not row.stale and row.state is State.OK


def test_a_stale_row_keeps_the_last_good_numbers_when_its_last_probe_failed() -> None:
    """Down after a failed probe: the lookback still holds the numbers of the last success."""
    row = Row("anonymous", "error", "203.0.113.7", 40, 100, probed=NOW - 60, succeeded=NOW - 600)
    live, stale = gone(target("node-a", (row,), up=0))
    (shown,) = snapshot(live, stale).rows
    assert shown.reason == "stale: scrape failing; was error"
    assert shown.quota is not None and shown.quota.stale
    assert (shown.quota.remaining, shown.quota.as_of) == (40, NOW - 600)
    assert shown.reading.checked_at == NOW - 60


def test_an_unmetered_row_stays_unmetered_when_stale() -> None:
    live, stale = gone(target("node-a", (Row("release", "unmetered", ACCOUNT),), up=0))
    (row,) = snapshot(live, stale).rows
    assert row.stale and row.quota is None and row.unmetered


# -- odd answers ----------------------------------------------------------------------------------


def test_two_jobs_scraping_one_node_give_one_row_the_newest() -> None:
    older = target("node-a", (Row("anonymous", "ok", "203.0.113.7", 90, 100, probed=NOW - 300),),
                   instance="node-a:9100", job="pullwatch-textfile")  # fmt: skip
    newer = target("node-a", (Row("anonymous", "ok", "203.0.113.7", 70, 100),))
    (row,) = snapshot(merge(older, newer)).rows
    assert row.quota is not None and row.quota.remaining == 70 and row.job == "pullwatch"


def test_one_identity_on_two_registries_is_two_rows() -> None:
    snap = snapshot(
        merge(
            target("node-a", (Row("anonymous", "ok", "203.0.113.7", 70, 100),)),
            target("node-a", (Row("anonymous", "unmetered"),), instance="node-a:9724",
                   registry="mirror.example:5000"),
        )
    )  # fmt: skip
    assert sorted(rows(snap)) == [
        "node-a/anonymous@mirror.example:5000",
        "node-a/anonymous@registry-1.docker.io",
    ]


def test_labels_and_values_from_elsewhere_are_cleaned() -> None:
    evil = "evil\x1b[31m\nname"
    results = target("node\x07-a", (Row(evil, "ok", "203.0.113.7", "NaN", 100),))
    results["state"].append({"metric": {"identity": "x"}, "value": "not a pair"})
    results["state"].append(item(1, identity="x", state="no-such-state", node="n"))
    (row,) = snapshot(results).rows
    assert "\x1b" not in row.key and "\n" not in row.key and "\x07" not in row.key
    assert row.state is State.UNKNOWN  # metered, without a number it can vouch for
    assert row.quota is None


def test_no_metrics_is_no_rows_and_unknown() -> None:
    snap = snapshot({})
    assert snap.rows == () and snap.exit_code is ExitCode.UNKNOWN and snap.best is None


# -- Prometheus does not answer -------------------------------------------------------------------


def test_when_prometheus_does_not_answer_every_row_turns_stale() -> None:
    before = snapshot(merge(target("node-a", NODE_A), target("node-b", NODE_B)))
    error = FleetError(FleetErrorKind.CONNECT, "connection refused", PROMETHEUS)
    after = mark_failed(before, error, NOW + 120, prometheus=PROMETHEUS)
    assert after.failed and after.error is error and after.answered_at == NOW
    assert [r.key for r in after.rows] == [r.key for r in before.rows]
    assert all(r.stale and r.state is State.UNKNOWN for r in after.rows)
    row = rows(after)["node-b/anonymous"]
    assert row.reason == "stale: Prometheus down; was low"
    assert row.quota is not None and row.quota.stale and row.quota.remaining == 12
    assert "values of its last answer, 2m ago" in row.advice.meaning
    assert after.best is None and after.exit_code is ExitCode.UNKNOWN  # nothing is known now
    again = mark_failed(after, error, NOW + 180, prometheus=PROMETHEUS)
    assert [r.reason for r in again.rows] == [r.reason for r in after.rows]
    assert rows(again)["node-b/anonymous"].quota == row.quota
    first = mark_failed(None, error, NOW, prometheus=PROMETHEUS)
    assert first.rows == () and first.exit_code is ExitCode.UNKNOWN


# -- JSON -----------------------------------------------------------------------------------------


def test_json_rows_carry_node_instance_and_iso_times_and_nothing_unexported() -> None:
    live_b, stale_b = gone(target("node-b", NODE_B, up=0))
    document = snapshot_json(snapshot(merge(target("node-a", NODE_A), live_b), stale_b))
    json.dumps(document)  # serialisable
    assert document["prometheus"] == PROMETHEUS and document["exit_code"] == 2
    assert document["fetched_at"] == "2026-11-30T12:00:00Z"
    assert document["best"] == "node-a/release"
    by_key = {row["key"]: row for row in document["rows"]}
    fresh = by_key["node-a/anonymous"]
    assert {k: fresh[k] for k in ("node", "identity", "instance", "job", "registry")} == {
        "node": "node-a", "identity": "anonymous", "instance": "node-a.example:9723",
        "job": "pullwatch", "registry": HUB,
    }  # fmt: skip
    assert (fresh["state"], fresh["remaining"], fresh["limit"], fresh["stale"]) == (
        "ok", 76, 100, False
    )  # fmt: skip
    assert fresh["checked_at"] == "2026-11-30T11:59:30Z"
    assert fresh["last_success_at"] == "2026-11-30T11:59:30Z"
    for absent in ("username", "raw", "http_status", "step", "error_kind"):
        assert absent not in fresh
    stale = by_key["node-b/anonymous"]
    assert (stale["state"], stale["stale"], stale["remaining"]) == ("unknown", True, None)
    assert stale["stale_reason"] == "stale: scrape failing; was low"
    assert stale["last_known"]["remaining"] == 12
    nodes = {n["node"]: n for n in document["nodes"]}
    assert nodes["node-b"]["up"] is False and nodes["node-b"]["stale"] is True
    assert nodes["node-a"]["last_round_at"] == "2026-11-30T11:59:30Z"


# -- the URL -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("localhost:9090", "http://localhost:9090"),
        ("http://prometheus:9090/", "http://prometheus:9090"),
        ("https://ops.example/prometheus/graph", "https://ops.example/prometheus"),
        ("http://127.0.0.1:9090/api/v1/query", "http://127.0.0.1:9090"),
        ("https://u:secret@ops.example/prom", "https://u:secret@ops.example/prom"),
    ],
)
def test_api_base(given: str, base: str) -> None:
    assert api_base(given) == base


def test_the_url_is_shown_without_credentials() -> None:
    assert display_url(api_base("https://u:secret@ops.example:8443/prom")) == (
        "https://ops.example:8443/prom"
    )


async def test_basic_auth_from_the_url_is_sent_and_never_shown() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return httpx.Response(401, content=b"Unauthorized")

    url = "https://ops:s3cret-pw@ops.example/prom"
    async with FleetReader(url, transport=httpx.MockTransport(handle)) as reader:
        assert reader.url == "https://ops.example/prom"
        with pytest.raises(FleetError) as caught:
            await reader.read()
    assert seen and all(value.startswith("Basic ") for value in seen)
    assert "s3cret-pw" not in str(caught.value)
    with pytest.raises(FleetError) as caught:
        api_base("https://ops:s3cret-pw@ops.example:99999")
    assert "s3cret-pw" not in str(caught.value) and "//***@ops.example" in str(caught.value)


@pytest.mark.parametrize("given", ["", "ftp://prometheus:9090", "http://:9090", "http://h:99999"])
def test_api_base_rejects(given: str) -> None:
    with pytest.raises(FleetError) as caught:
        api_base(given)
    assert caught.value.kind is FleetErrorKind.URL


# -- reading Prometheus: what is asked, and every failure classified ------------------------------


def answering(results: Mapping[str, list[dict[str, Any]]], log: list[dict[str, str]]) -> Any:
    """An httpx handler answering each query with the result of the LIVE/STALE query it is."""
    by_expr = {expr: name for name, expr in LIVE_QUERIES.items()}

    def handle(request: httpx.Request) -> httpx.Response:
        form = dict(urllib.parse.parse_qsl(request.content.decode()))
        log.append(form)
        expr = form["query"]
        name = by_expr.get(expr)
        if name is None:
            if expr.startswith("max by"):
                name = "seen"
            elif expr.startswith("up and"):
                name = "up"
            else:
                name = next(n for n, metric in STALE_METRICS.items() if f"({metric}{{" in expr)
        status, _, body = vector_answer(results.get(name, []))
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    return handle


async def test_a_refresh_asks_at_one_moment_and_looks_back_only_for_targets_without_series() -> (
    None
):
    log: list[dict[str, str]] = []
    clock = ManualClock()
    healthy = target("node-a", NODE_A, instance="127.0.0.1:9723")
    transport = httpx.MockTransport(answering(healthy, log))
    async with FleetReader(PROMETHEUS, clock=clock, transport=transport) as reader:
        snap = await reader.read()
    assert len(snap.rows) == 3 and not any(r.stale for r in snap.rows)
    assert len(log) == len(LIVE_QUERIES) + 2
    assert {entry["time"] for entry in log} == {f"{NOW:.3f}"}
    assert reader.answered_at == NOW

    log.clear()
    live_b, stale_b = gone(target("node-b", NODE_B, instance="127.0.0.1:9724", up=0))
    transport = httpx.MockTransport(answering(merge(healthy, live_b, stale_b), log))
    async with FleetReader(PROMETHEUS, clock=clock, transport=transport) as reader:
        snap = await reader.read()
    assert len(log) == len(LIVE_QUERIES) + 2 + len(STALE_METRICS)
    lookback = [entry["query"] for entry in log[len(LIVE_QUERIES) + 2 :]]
    assert all('instance=~"127\\\\.0\\\\.0\\\\.1:9724"' in q for q in lookback), lookback
    assert all("[3600s]" in q for q in lookback)
    assert snap.stale_nodes == ["node-b"]


def raising(exc: BaseException) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        raise exc

    return handle


def chained(outer: httpx.HTTPError, cause: BaseException) -> httpx.HTTPError:
    outer.__cause__ = cause
    return outer


def body(status: int, kind: str, text: str | dict[str, Any]) -> Any:
    content = json.dumps(text).encode() if isinstance(text, dict) else text.encode()
    return lambda request: httpx.Response(status, content=content, headers={"content-type": kind})


FAILURES = [
    pytest.param(
        raising(chained(httpx.ConnectError("All connection attempts failed"),
                        ConnectionRefusedError(111, "Connect call failed"))),
        FleetErrorKind.CONNECT, "connection refused (is Prometheus running there?)",
        id="refused",
    ),
    pytest.param(
        raising(chained(httpx.ConnectError("[Errno -2] Name or service not known"),
                        socket.gaierror(-2, "Name or service not known"))),
        FleetErrorKind.CONNECT, "its host name does not resolve", id="dns",
    ),
    pytest.param(
        raising(chained(httpx.ConnectError("tls"),
                        ssl.SSLCertVerificationError(1, "certificate verify failed"))),
        FleetErrorKind.TLS, "TLS failed", id="tls",
    ),
    pytest.param(raising(httpx.ReadTimeout("timed out")), FleetErrorKind.TIMEOUT,
                 "no answer within 10 s", id="read-timeout"),
    pytest.param(body(200, "text/html", "<html>Grafana login</html>"), FleetErrorKind.MALFORMED,
                 "not Prometheus's API (got text/html; is this the Prometheus URL?)", id="html"),
    pytest.param(body(404, "text/plain", "404 page not found"), FleetErrorKind.HTTP,
                 "HTTP 404 (no Prometheus API here: is this the Prometheus URL?)", id="404"),
    pytest.param(body(401, "text/plain", "Unauthorized"), FleetErrorKind.HTTP,
                 "HTTP 401 (authentication", id="401"),
    pytest.param(body(502, "text/html", "<h1>Bad Gateway</h1>"), FleetErrorKind.HTTP, "HTTP 502",
                 id="502"),
    pytest.param(
        body(400, "application/json",
             {"status": "error", "errorType": "bad_data", "error": "1:1: parse error"}),
        FleetErrorKind.QUERY, "the query failed: bad_data: 1:1: parse error", id="bad-query",
    ),
    pytest.param(
        body(503, "application/json",
             {"status": "error", "errorType": "unavailable", "error": "not ready"}),
        FleetErrorKind.QUERY, "the query failed: unavailable: not ready", id="not-ready",
    ),
    pytest.param(
        body(200, "application/json",
             {"status": "success", "data": {"resultType": "matrix", "result": []}}),
        FleetErrorKind.MALFORMED, "an answer that is not a query result", id="matrix",
    ),
    pytest.param(body(200, "application/json", {"status": "success"}), FleetErrorKind.MALFORMED,
                 "an answer that is not a query result", id="no-data"),
]  # fmt: skip


@pytest.mark.parametrize(("handler", "kind", "words"), FAILURES)
async def test_every_failure_is_one_classified_line(
    handler: Callable[[httpx.Request], httpx.Response], kind: FleetErrorKind, words: str
) -> None:
    transport = httpx.MockTransport(handler)
    async with FleetReader(PROMETHEUS, transport=transport) as reader:
        with pytest.raises(FleetError) as caught:
            await reader.read()
    error = caught.value
    assert error.kind is kind
    assert str(error).startswith(f"Prometheus at {PROMETHEUS}: {words}"), str(error)
    assert "\n" not in str(error)


async def test_a_hanging_prometheus_is_a_timeout_within_the_bound(
    stub_prometheus: StubPrometheus,
) -> None:
    stub_prometheus.hang.set()
    started = time.monotonic()
    async with FleetReader(stub_prometheus.url, timeout=0.3) as reader:
        with pytest.raises(FleetError) as caught:
            await reader.read()
    assert caught.value.kind is FleetErrorKind.TIMEOUT
    assert str(caught.value) == f"Prometheus at {stub_prometheus.url}: no answer within 0.3 s"
    assert time.monotonic() - started < 3


async def test_a_whole_refresh_is_bounded_whatever_the_transport_does() -> None:
    """A mock transport has no timeouts of its own: the refresh's own bound (2 x timeout) ends
    it."""

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.5)
        status, _, content = vector_answer([])
        return httpx.Response(status, content=content)

    started = time.monotonic()
    async with FleetReader(PROMETHEUS, timeout=0.1, transport=httpx.MockTransport(slow)) as reader:
        with pytest.raises(FleetError) as caught:
            await reader.read()
    assert caught.value.kind is FleetErrorKind.TIMEOUT and time.monotonic() - started < 2


# -- the command line ----------------------------------------------------------------------------


def test_fleet_json_against_a_stand_in_api(
    stub_prometheus: StubPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    results = merge(target("node-a", NODE_A), target("node-b", NODE_B))
    by_expr = {expr: name for name, expr in LIVE_QUERIES.items()}

    def answer(expr: str) -> tuple[int, str, bytes]:
        name = by_expr.get(expr) or ("seen" if expr.startswith("max by") else "up")
        return vector_answer(results.get(name, []))

    stub_prometheus.answer = answer
    code = main(["fleet", stub_prometheus.url, "--json", "--stale-after", "7d"])  # NOW: days ago
    out, err = capsys.readouterr()
    assert (code, err) == (2, "")
    document = json.loads(out)
    assert [row["key"] for row in document["rows"]][:2] == ["node-a/anonymous", "node-a/ci-bot"]
    assert document["prometheus"] == stub_prometheus.url
    assert all(math.isfinite(r["latency_ms"]) for r in document["rows"] if r["latency_ms"])


def test_fleet_errors_are_one_line_with_check_like_codes(
    stub_prometheus: StubPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nothing listens there
    assert main(["fleet", f"http://127.0.0.1:{port}", "--json"]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"pullwatch: error: Prometheus at http://127.0.0.1:{port}: connection refused "
        "(is Prometheus running there?)\n"
    )
    stub_prometheus.answer = lambda expr: (200, "text/html", b"<html>login</html>")
    assert main(["fleet", stub_prometheus.url, "--json"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not Prometheus's API (got text/html" in err
    assert main(["fleet", "ftp://prometheus", "--json"]) == 64
    assert "is not an http(s) URL" in capsys.readouterr().err


def test_the_fleet_dashboard_needs_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "http://127.0.0.1:9"]) == 64  # pytest's stdin is not a terminal
    assert capsys.readouterr().err == (
        "pullwatch: error: the fleet dashboard needs a terminal; for scripts use "
        "`pullwatch fleet PROMETHEUS_URL --json`\n"
    )


def test_fleet_reads_no_config_keyring_or_history(
    stub_prometheus: StubPrometheus, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config, data = tmp_path / "config", tmp_path / "data"
    code = main(["--config-dir", str(config), "--data-dir", str(data), "fleet",
                 stub_prometheus.url, "--json"])  # fmt: skip
    assert code == 3  # no rows: unknown
    assert json.loads(capsys.readouterr().out)["rows"] == []
    assert not config.exists() and not data.exists()
