"""The monitor: rounds, backoff, halts on bad credentials, unavailable secrets, sinks."""

from __future__ import annotations

import random

from fixtures_simhub import ALICE, ERIN
from pullwatch.clock import ManualClock
from pullwatch.hub.client import HubClient, Timeouts
from pullwatch.identities.secrets import KeyringStatus, SecretLookup
from pullwatch.identities.store import Identity
from pullwatch.monitor import BackoffPolicy, Monitor
from pullwatch.reading import ErrorKind, Reading, State
from pullwatch.simhub import SimHubServer

SECRETS = {"alice": ALICE.secret, "erin": ERIN.secret, "typo": "wrong-secret"}
FAST = Timeouts(connect=1.0, read=1.0, total=1.5)


def secret_for(identity: Identity) -> SecretLookup:
    return SecretLookup(KeyringStatus.OK, SECRETS.get(identity.label), "")


def make_monitor(server: SimHubServer, clock: ManualClock, identities: list[Identity]) -> Monitor:
    client = HubClient(server.url, clock=clock, timeouts=FAST)
    monitor = Monitor(client, secret_for, clock=clock, rng=random.Random(7))
    monitor.set_identities(identities)
    return monitor


ANON = Identity("anonymous")
ALICE_I = Identity("alice", "alice")
ERIN_I = Identity("erin", "erin")
TYPO = Identity("typo", "alice")


async def test_round_probes_everyone_concurrently_with_one_ping(
    simhub: SimHubServer, clock: ManualClock
) -> None:
    people = [Identity(f"anon-{i}") for i in range(30)] + [ALICE_I, ERIN_I]
    monitor = make_monitor(simhub, clock, people)
    readings = await monitor.round()
    await monitor.client.aclose()
    assert len(readings) == 32
    assert {r.state for r in readings} == {State.OK, State.EXHAUSTED}
    counters = simhub.model.counters
    # the 30 anonymous identities share one token (same cache key), yet each gets its own HEAD
    assert (counters["ping"], counters["token"], counters["head"]) == (1, 3, 32)


async def test_unknown_before_first_probe(simhub: SimHubServer, clock: ManualClock) -> None:
    monitor = make_monitor(simhub, clock, [ANON])
    latest = monitor.latest("anonymous")
    assert latest is not None and latest.state is State.UNKNOWN
    await monitor.client.aclose()


async def test_5xx_backs_off_exponentially_over_a_simulated_hour(
    simhub: SimHubServer, clock: ManualClock
) -> None:
    simhub.model.faults.status = {"head": 503}
    monitor = make_monitor(simhub, clock, [ANON])
    for _ in range(60):  # one scheduled round a minute for an hour
        await monitor.round()
        clock.advance(60)
    await monitor.client.aclose()
    heads = simhub.model.counters["head"]
    # 15 s, 30 s, 1, 2, 4, 8 min, then capped at 15 min (+-20% jitter): about 9 attempts
    assert 6 <= heads <= 11, heads
    reading = monitor.latest("anonymous")
    assert reading is not None and reading.state is State.ERROR
    assert reading.error_kind is ErrorKind.HTTP


async def test_retry_after_is_honoured(simhub: SimHubServer, clock: ManualClock) -> None:
    simhub.model.faults.update({"status": {"token": 429}, "retry_after": {"token": 600}})
    monitor = make_monitor(simhub, clock, [ALICE_I])
    first = await monitor.round()
    assert first[0].state is State.THROTTLED
    assert first[0].retry_after == 600
    next_at = monitor.next_attempt_at("alice")
    assert next_at is not None and next_at >= clock.time() + 600
    for _ in range(9):  # nine minutes of rounds: none may reach the token endpoint
        clock.advance(60)
        await monitor.round()
    assert simhub.model.counters["token"] == 1
    simhub.model.faults.clear()
    clock.advance(60)
    after = await monitor.round()
    await monitor.client.aclose()
    assert after[0].state is State.OK
    assert monitor.next_attempt_at("alice") is None


async def test_bad_credentials_are_never_retried_by_themselves(
    simhub: SimHubServer, clock: ManualClock
) -> None:
    monitor = make_monitor(simhub, clock, [TYPO, ANON])
    for _ in range(60):
        await monitor.round()
        clock.advance(60)
    assert simhub.model.token_requests_by_user["alice"] == 1
    assert monitor.is_halted("typo")
    assert simhub.model.head_requests_by_user[""] == 60  # the other identity kept updating
    # the user asks: exactly one more attempt
    forced = await monitor.check(TYPO)
    assert forced.reading.state is State.AUTH_FAILED
    assert simhub.model.token_requests_by_user["alice"] == 2
    # the user fixes the identity: the halt is lifted
    fixed = Identity("typo", "alice", warn_below=5)
    monitor.set_identities([fixed, ANON])
    SECRETS["typo"] = ALICE.secret
    try:
        readings = await monitor.round()
    finally:
        SECRETS["typo"] = "wrong-secret"
        await monitor.client.aclose()
    assert readings[0].state is State.OK


async def test_refresh_ignores_backoff_but_not_a_halt(
    simhub: SimHubServer, clock: ManualClock
) -> None:
    simhub.model.faults.status = {"head": 500}
    monitor = make_monitor(simhub, clock, [ANON, TYPO])
    await monitor.round()
    simhub.model.faults.clear()
    assert await monitor.probe(ANON) == monitor.latest("anonymous")  # backing off: skipped
    assert simhub.model.head_requests_by_user[""] == 1
    refreshed = await monitor.probe(ANON, ignore_backoff=True)
    assert refreshed.state is State.OK
    await monitor.probe(TYPO, ignore_backoff=True)
    await monitor.client.aclose()
    assert simhub.model.token_requests_by_user["alice"] == 1


async def test_secret_unavailable_makes_no_request(
    simhub: SimHubServer, clock: ManualClock
) -> None:
    def locked(identity: Identity) -> SecretLookup:
        return SecretLookup(KeyringStatus.LOCKED, None, "keyring is locked: unlock it")

    client = HubClient(simhub.url, clock=clock, timeouts=FAST)
    monitor = Monitor(client, locked, clock=clock)
    monitor.set_identities([ALICE_I, ANON])
    alice, anon = await monitor.round()
    await client.aclose()
    assert alice.state is State.ERROR
    assert alice.error_kind is ErrorKind.SECRET
    assert alice.detail == "secret unavailable: keyring is locked: unlock it"
    assert anon.state is State.OK  # anonymous identities keep working
    assert simhub.model.token_requests_by_user["alice"] == 0
    assert not monitor.is_halted("alice") and monitor.next_attempt_at("alice") is None


async def test_missing_secret_is_explained(simhub: SimHubServer, clock: ManualClock) -> None:
    client = HubClient(simhub.url, clock=clock, timeouts=FAST)
    monitor = Monitor(client, lambda i: SecretLookup(KeyringStatus.OK, None, ""), clock=clock)
    monitor.set_identities([ALICE_I])
    (reading,) = await monitor.round()
    await client.aclose()
    assert reading.error_kind is ErrorKind.SECRET
    assert "no secret stored" in (reading.detail or "")


async def test_secret_is_read_once_then_cached(simhub: SimHubServer, clock: ManualClock) -> None:
    calls: list[str] = []

    def counting(identity: Identity) -> SecretLookup:
        calls.append(identity.label)
        return secret_for(identity)

    client = HubClient(simhub.url, clock=clock, timeouts=FAST)
    monitor = Monitor(client, counting, clock=clock)
    monitor.set_identities([ALICE_I])
    for _ in range(5):
        await monitor.round()
        clock.advance(60)
    assert calls == ["alice"]
    clock.advance(600)  # the cache expires: a wiped keyring entry would be noticed now
    await monitor.round()
    await client.aclose()
    assert calls == ["alice", "alice"]


async def test_sinks_receive_readings_and_a_failing_sink_is_contained(
    simhub: SimHubServer, clock: ManualClock
) -> None:
    seen: list[Reading] = []

    def broken(reading: Reading) -> None:
        raise RuntimeError("disk full")

    monitor = make_monitor(simhub, clock, [ANON])
    monitor.sinks.extend([broken, seen.append])
    await monitor.round()
    await monitor.client.aclose()
    assert [r.label for r in seen] == ["anonymous"]


async def test_removed_identity_is_forgotten(simhub: SimHubServer, clock: ManualClock) -> None:
    monitor = make_monitor(simhub, clock, [ANON, ALICE_I])
    await monitor.round()
    monitor.set_identities([ALICE_I])
    assert monitor.latest("anonymous") is None
    assert [r.label for r in monitor.readings()] == ["alice"]
    await monitor.client.aclose()


def test_backoff_policy() -> None:
    policy = BackoffPolicy(base=10, factor=2, cap=100, jitter=0.0)
    rng = random.Random(0)
    assert [policy.delay(n, None, rng) for n in (1, 2, 3, 4, 5, 6)] == [10, 20, 40, 80, 100, 100]
    assert policy.delay(1, 300, rng) == 300
    jittered = BackoffPolicy(base=100, jitter=0.2)
    delays = {jittered.delay(1, None, random.Random(seed)) for seed in range(20)}
    assert len(delays) > 10 and all(80 <= d <= 120 for d in delays)


async def test_a_round_reads_its_secrets_in_one_batch(
    simhub: SimHubServer, clock: ManualClock
) -> None:
    batches: list[list[str]] = []
    singles: list[str] = []

    def one(identity: Identity) -> SecretLookup:
        singles.append(identity.label)
        return secret_for(identity)

    def many(identities: object) -> dict[str, SecretLookup]:
        chosen = list(identities)  # type: ignore[call-overload]
        batches.append([i.label for i in chosen])
        return {i.label: secret_for(i) for i in chosen if i.label != "erin"}  # erin left out

    client = HubClient(simhub.url, clock=clock, timeouts=FAST)
    monitor = Monitor(client, one, clock=clock, rng=random.Random(7), secrets_for=many)
    monitor.set_identities([ANON, ALICE_I, ERIN_I, TYPO])
    readings = await monitor.round()
    assert batches == [["alice", "erin", "typo"]]  # one batch, anonymous not in it
    assert singles == ["erin"]  # left out of the batch: read on its own
    assert {r.label: r.state for r in readings}["alice"] is State.OK
    clock.advance(60)
    await monitor.round()  # every token still live: no keyring read at all
    assert batches == [["alice", "erin", "typo"]] and singles == ["erin"]
    await client.aclose()
