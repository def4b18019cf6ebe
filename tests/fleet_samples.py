"""Hand-made answers of Prometheus's query API, as `pullwatch serve` on some nodes would make
them: for the fleet's unit tests, its dashboard's snapshots and the README's screenshot.

`target(node, rows, ...)` is every query's answer for one healthy target; `gone(results)`
splits one into what the live queries still see (`seen`, `up`) and what `last_over_time` finds;
`merge` adds targets together. `SAMPLE_FLEET` is a small fleet with one of each state and a
node Prometheus cannot scrape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pullwatch.clock import ManualClock
from pullwatch.fleet import LIVE_QUERIES, STALE_METRICS, FleetSnapshot, assemble

NOW = ManualClock.DEFAULT_START
ACCOUNT = "186e63fa-1b6a-4c51-9f12-61a26f0a9c01"
HUB = "registry-1.docker.io"

Results = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Row:
    """One identity as `pullwatch serve` on a node exports it."""

    identity: str
    state: str
    source: str = ""
    remaining: int | float | None = None
    limit: int | None = None
    window: int | None = 21600
    probed: float = NOW - 30
    succeeded: float | None = NOW - 30
    latency: float | None = 0.042
    retry_after: float | None = None


def item(value: float | str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [NOW, str(value)]}


def target(
    node: str,
    rows: tuple[Row, ...],
    *,
    instance: str | None = None,
    job: str = "pullwatch",
    registry: str = HUB,
    round_at: float | None = NOW - 30,
    up: int | None = 1,
) -> Results:
    """Every query's answer for one target (as the live queries see a healthy one)."""
    base = {"job": job, "instance": instance or f"{node}.example:9723", "node": node}
    out: Results = {name: [] for name in (*LIVE_QUERIES, "seen", "up")}
    info = {**base, "registry": registry, "repository": "ratelimitpreview/test:latest"}
    out["info"].append(item(1, **info, version="0.1.0"))
    out["seen"].append(item(1, **info, version="0.1.0"))
    if up is not None:
        out["up"].append(item(up, job=job, instance=base["instance"]))
    if round_at is not None:
        out["round"].append(item(round_at, **base))
    for row in rows:
        who = {**base, "registry": registry, "identity": row.identity}
        out["state"].append(item(1, **who, state=row.state))
        if row.remaining is not None and row.limit is not None:
            bucket = {**who, "source": row.source}
            out["remaining"].append(item(row.remaining, **bucket))
            out["limit"].append(item(row.limit, **bucket))
            if row.window is not None:
                out["window"].append(item(row.window, **bucket))
        out["probed"].append(item(row.probed, **who))
        for name, value in (
            ("succeeded", row.succeeded),
            ("latency", row.latency),
            ("retry_after", row.retry_after),
        ):
            if value is not None:
                out[name].append(item(value, **who))
    return out


def merge(*results: Results) -> Results:
    out: Results = {}
    for result in results:
        for name, items in result.items():
            out.setdefault(name, []).extend(items)
    return out


def gone(results: Results) -> tuple[Results, Results]:
    """A target without current series: live queries see only `seen` (and `up`); the rest is
    what `last_over_time` finds."""
    live = {"seen": results["seen"], "up": results["up"]}
    stale = {name: results[name] for name in STALE_METRICS}
    return live, stale


NODE_A = (
    Row("anonymous", "ok", "203.0.113.7", 76, 100),
    Row("ci-bot", "exhausted", ACCOUNT, 0, 200, retry_after=60.0),
    Row("release", "unmetered", "9f2c01aa-5e3b-4d7c-a1f0-2b8e6c4d9a10", latency=0.03),
)
NODE_B = (
    Row("anonymous", "low", "198.51.100.9", 12, 100),
    Row("ci-bot", "exhausted", ACCOUNT, 0, 200),
    Row("old-bot", "auth_failed", succeeded=None, latency=None),
)


ACCOUNT_CI = "5e4f2a10-7b3c-4d1e-9a8b-3c2d1e0f9a87"
SAMPLE_PROMETHEUS = "http://prometheus.example:9090"


def sample_fleet(now: float = NOW) -> FleetSnapshot:
    """Four nodes: one of each state worth showing, and build-03 that Prometheus cannot scrape
    (its last values, dimmed)."""
    ago = now - 42
    live = merge(
        target("build-01", (
            Row("anonymous", "ok", "203.0.113.7", 71, 100, probed=ago, succeeded=ago),
            Row("ci-bot", "ok", ACCOUNT_CI, 143, 200, probed=ago, succeeded=ago, latency=0.051),
        ), round_at=ago),
        target("build-02", (
            Row("anonymous", "exhausted", "203.0.113.8", 0, 100, probed=ago, succeeded=ago),
            Row("ci-bot", "ok", ACCOUNT_CI, 143, 200, probed=ago, succeeded=ago, latency=0.047),
        ), round_at=ago),
        target("scanner", (
            Row("anonymous", "low", "198.51.100.20", 9, 100, probed=ago, succeeded=ago),
            Row("scanbot", "throttled", probed=ago, succeeded=now - 3600, retry_after=60.0,
                latency=0.12),
            Row("release", "unmetered", "9f2c01aa-5e3b-4d7c-a1f0-2b8e6c4d9a10", probed=ago,
                succeeded=ago),
        ), round_at=ago),
    )  # fmt: skip
    build_03 = (
        Row("anonymous", "ok", "192.0.2.44", 88, 100, probed=now - 420, succeeded=now - 420),
    )
    down_live, down_stale = gone(target("build-03", build_03, round_at=now - 420, up=0))
    return assemble(merge(live, down_live), down_stale, now=now, prometheus=SAMPLE_PROMETHEUS)
