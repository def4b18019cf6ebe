"""The code paths issue 7 made fast keep their behaviour (benchmarks/ measures the speed).

- hub/pool.py: small connection pools behind one transport; connections are reused (a HEAD's
  answer is read to its end), every request is released, TLS verification stays on.
- redact.py: literal secrets found through an index, shape patterns gated by their
  trigger strings: exactly what the unindexed, ungated versions redact.
- history: readings streamed from the database give the same estimates as loading them all.
- the identity table: a reading repaints its changed cells in place (only their regions),
  never rebuilding the table.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.text import Text
from textual.geometry import Region

from pullwatch import redact as redaction
from pullwatch.clock import ManualClock
from pullwatch.demo import Demo
from pullwatch.history import History, record_and_recall
from pullwatch.hub.client import Credentials, HubClient, Target
from pullwatch.hub.pool import ShardedTransport, shard_count
from pullwatch.reading import Reading, State
from pullwatch.recent import RecentHistory
from pullwatch.simhub import SimHubServer
from pullwatch.tui.app import make_app

# -- the connection pools --------------------------------------------------------------------


def test_shard_count_covers_the_concurrency() -> None:
    assert shard_count(1) == 1
    assert shard_count(8) == 1
    assert shard_count(9) == 2
    assert shard_count(32) == 4
    assert shard_count(256) == 32


def _connections(client: HubClient) -> list[object]:
    transport = client._http._transport
    assert isinstance(transport, ShardedTransport)
    return [
        connection
        for shards in transport._shards.values()
        for shard in shards
        for connection in shard._pool.connections
    ]


async def test_head_probes_reuse_their_connection(simhub: SimHubServer) -> None:
    target = Target("alice", Credentials("alice", "alice-pat"))
    async with HubClient(simhub.url, max_concurrency=32) as client:
        first = await client.probe(target)
        assert first.reading.state is State.OK
        before = {id(c) for c in _connections(client)}
        for _ in range(5):
            result = await client.probe(target)
            assert result.reading.state is State.OK
        after = {id(c) for c in _connections(client)}
        transport = client._http._transport
        assert isinstance(transport, ShardedTransport)
        assert transport.in_flight == 0  # every answer released its shard
    # the five HEADs went over connections that were already open: none was closed and redone
    assert after <= before
    assert simhub.model.counters["head"] == 6


async def test_concurrent_probes_spread_over_small_pools(simhub: SimHubServer) -> None:
    simhub.model.faults.latency = 0.05
    targets = [Target(f"anon{i}") for i in range(24)]
    async with HubClient(simhub.url, max_concurrency=24) as client:
        transport = client._http._transport
        assert isinstance(transport, ShardedTransport)
        assert transport.shards == 3
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, transport.in_flight)
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(watch())
        results = await asyncio.gather(*(client.probe(t) for t in targets))
        watcher.cancel()
        assert all(r.reading.state is State.OK for r in results)
        assert 1 < peak <= 24
        assert transport.in_flight == 0
        assert all(len(shard._pool.connections) <= 8 for shard in transport._shards["http"])


def test_https_shards_verify_and_plain_http_ones_trust_nothing() -> None:
    transport = ShardedTransport(shards=2)
    verifying = transport._context_for("https")
    assert verifying.verify_mode is ssl.CERT_REQUIRED and verifying.check_hostname
    assert transport._context_for("https") is verifying  # built once, shared by every shard
    never_used = transport._context_for("http")
    assert never_used.verify_mode is ssl.CERT_REQUIRED and never_used.check_hostname
    assert never_used.cert_store_stats()["x509_ca"] == 0


def test_a_given_tls_context_is_the_one_used() -> None:
    mine = ssl.create_default_context()
    transport = ShardedTransport(shards=1, verify=mine)
    assert transport._context_for("https") is mine


async def test_a_failed_request_releases_its_shard() -> None:
    transport = ShardedTransport(shards=2)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:9/")  # discard port: nothing listens
    assert transport.in_flight == 0


# -- redaction ---------------------------------------------------------------------------------


def _reference_redact(text: str, literals: list[str]) -> str:
    """The unindexed, ungated redaction: one regex of every literal, then every pattern."""
    if literals:
        ordered = sorted(set(literals), key=len, reverse=True)
        text = re.compile("|".join(re.escape(v) for v in ordered)).sub(redaction.REDACTED, text)
    for pattern, replacement, _ in redaction._PATTERNS:
        text = pattern.sub(replacement, text)
    return text


PIECES = st.sampled_from(
    [
        "Bearer ",
        "basic ",
        "eyJhbGciOi.eyJzdWIi.sig",
        "dckr_pat_",
        "dckr_jti_x1",
        '"token": "',
        "'",
        "access_token=",
        "Secret=",
        '"password": ',
        " as '",
        "alice",
        "hunter22",
        "s3cr3t-value",
        "ſecret=",
        "basıc ",
        "K",
        " ",
        "\n",
        "&",
        "=",
        ":",
        "abc",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=12))
def test_redaction_matches_the_unindexed_ungated_version(pieces: list[str]) -> None:
    text = "".join(pieces)
    secrets = ["hunter22", "s3cr3t-value", "alice-pat-9"]
    for n, secret in enumerate(secrets):
        redaction.register_secret(f"test-perf:{n}", secret)
    try:
        assert redaction.redact(text) == _reference_redact(text, _live_literals())
    finally:
        for n in range(len(secrets)):
            redaction.register_secret(f"test-perf:{n}", None)


def _live_literals() -> list[str]:
    return list(redaction._literals._values.values())


def test_literals_are_counted_per_key_and_forgotten_when_no_key_holds_them() -> None:
    redaction.register_secret("test-perf:a", "shared-value-1")
    redaction.register_secret("test-perf:b", "shared-value-1")
    try:
        redaction.register_secret("test-perf:a", None)
        assert "shared-value-1" not in redaction.redact("x shared-value-1 y")  # b holds it
        redaction.register_secret("test-perf:b", "other-value-22")  # replaced
        assert redaction.redact("x shared-value-1 y") == "x shared-value-1 y"
        assert redaction.redact("other-value-22") == redaction.REDACTED
        redaction.register_secret("test-perf:c", "alue-22")  # same last characters
        assert redaction.redact("other-value-22 alue-22") == "[redacted] [redacted]"
    finally:
        for key in ("a", "b", "c"):
            redaction.register_secret(f"test-perf:{key}", None)
    assert redaction.redact("other-value-22") == "other-value-22"


def test_a_new_literal_between_redactions_costs_no_recompilation() -> None:
    # A round of new identities registers a secret and a token each between redactions; with
    # one regex of every literal that recompiled it each time: minutes for 2000.
    started = time.perf_counter()
    for n in range(2000):
        redaction.register_secret(f"test-perf-many:{n}", f"bench-secret-{n:05d}x")
        assert redaction.redact(f"header bench-secret-{n:05d}x") == "header [redacted]"
    try:
        assert time.perf_counter() - started < 10
        assert redaction.redact("a bench-secret-01999x b") == "a [redacted] b"
        assert redaction.redact("plain header value") == "plain header value"
    finally:
        for n in range(2000):
            redaction.register_secret(f"test-perf-many:{n}", None)


# -- history streaming -------------------------------------------------------------------------


def _readings(clock: ManualClock, n: int) -> list[Reading]:
    start = clock.time() - n * 60
    return [
        Reading(
            label=f"id{i % 3}",
            username=None,
            checked_at=start + i * 60,
            state=State.OK,
            limit=100,
            remaining=100 - (i * 7) % 40,
            window_seconds=21600,
            source=f"203.0.113.{i % 3}",
            http_status=200,
        )
        for i in range(n)
    ]


def test_kept_state_gives_the_same_estimates_as_a_replay(
    tmp_path: Path, clock: ManualClock
) -> None:
    """Trackers and sources kept in the database across many writes == replaying everything."""
    db = tmp_path / "history.sqlite3"
    readings = _readings(clock, 500)
    with History(db, clock=clock) as history:
        for start in range(0, len(readings), 7):  # many separate writes, as rounds make them
            history.record(readings[start : start + 7])
        now = readings[-1].checked_at
        kept = history.recent(now, lookback=86400, series=86400)
    replayed = RecentHistory()
    replayed.load(readings)
    keys = {r.bucket_key for r in readings}
    assert keys and None not in keys
    for key in keys:
        assert kept.recovery(key) is not None
        assert kept.recovery(key) == replayed.recovery(key)
    for label in {r.label for r in readings}:
        assert kept.series(label, 0) == replayed.series(label, 0)
        assert kept.sources(label) == replayed.sources(label)
    recall = record_and_recall(db, [], clock=clock)
    assert recall.problem is None
    key = ("", "", "203.0.113.1")
    assert recall.recent.recovery(key) is not None
    assert recall.recent.recovery(key) == replayed.recovery(key)


# -- the identity table ------------------------------------------------------------------------


async def test_a_reading_updates_its_cells_in_place(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)
    async with app.run_test(size=(120, 32)) as pilot:
        await app.wait_for_round()
        await pilot.pause()
        table = app.dashboard.table
        rebuilds = table.rebuilds
        reading = app.monitor.latest("ci-bot")
        assert reading is not None and reading.limit is not None
        changed = Reading(
            label=reading.label,
            username=reading.username,
            checked_at=reading.checked_at,
            state=State.LOW,
            limit=reading.limit,
            remaining=7,
            window_seconds=reading.window_seconds,
            source=reading.source,
            http_status=200,
            detail="7 of 200 left",
            token_expires_at=app.clock.time() + 240,
        )
        repainted: list[Region | None] = []
        refresh = table.refresh

        def spy(*regions: Region, **options: bool) -> object:
            repainted.extend(regions or [None])
            return refresh(*regions, **options)

        monkeypatch.setattr(table, "refresh", spy)
        app._show(changed)
        row = 1 + table.labels.index("ci-bot") - table.scroll_offset.y  # below the header
        assert repainted and all(r is not None and r.y == row for r in repainted)
        await pilot.pause()
        remaining = table.get_cell("ci-bot", "remaining")
        state = table.get_cell("ci-bot", "state")
        assert isinstance(remaining, Text) and remaining.plain.endswith("7/200")
        assert isinstance(state, Text) and state.plain.startswith("low")
        assert table.rebuilds == rebuilds
        repainted.clear()
        table.tick(app.clock.time() + 3600)  # every countdown moves: cells, not the table
        assert repainted and None not in repainted
        assert all(r is not None and r.height == 1 for r in repainted)  # cells or rows
        await pilot.pause()
        assert table.rebuilds == rebuilds
        token = table.get_cell("ci-bot", "token")
        assert isinstance(token, Text) and token.plain == "expired"


# -- the keyring: a one-shot round reads its secrets in one batch ---------------------------


def test_a_one_shot_round_reads_every_secret_in_one_batch(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check` (Runtime.probe_round) asks the keyring once for the whole round - on the Secret
    Service one batch instead of a D-Bus session per identity (1.7 s -> 0.6 s for 100)."""
    from pullwatch.identities.store import IdentityStore

    calls = {"one at a time": 0, "batch": 0}
    one, batch = IdentityStore.secret_for, IdentityStore.secrets_for

    def counted_one(self: IdentityStore, identity: object) -> object:
        calls["one at a time"] += 1
        return one(self, identity)  # type: ignore[arg-type]

    def counted_batch(self: IdentityStore, identities: object) -> object:
        calls["batch"] += 1
        return batch(self, identities)  # type: ignore[arg-type]

    monkeypatch.setattr(IdentityStore, "secret_for", counted_one)
    monkeypatch.setattr(IdentityStore, "secrets_for", counted_batch)
    labels = [identity.label for identity in demo.runtime.config.identities]
    readings = demo.runtime.probe_round(labels)
    assert [r.label for r in readings] == labels
    assert sum(1 for r in readings if r.username is not None) >= 2  # logins to read secrets for
    assert calls == {"one at a time": 0, "batch": 1}
