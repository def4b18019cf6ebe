"""Backoff policy: exponential with jitter for 429/5xx, Retry-After honoured and capped, halts.

Each "simulated hour" runs a scheduled round every 10 s (the dashboard's shortest interval) on a
ManualClock against the simulated hub and counts what reached it. The expected number of
attempts is replayed from the policy with the same random seed, so the count is exact; a
generous hand-written ceiling states the "no retry storm" promise in plain numbers too.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures_simhub import ALICE
from pullwatch.clock import ManualClock
from pullwatch.hub.client import HubClient, Timeouts
from pullwatch.identities.secrets import KeyringStatus, SecretLookup
from pullwatch.identities.store import Identity
from pullwatch.monitor import BackoffPolicy, Monitor
from pullwatch.reading import Reading, State
from pullwatch.simhub import SimHubServer

FAST = Timeouts(connect=1.0, read=1.0, total=1.5)
POLICY = BackoffPolicy()
HOUR = 3600.0
INTERVAL = 10.0
SEED = 11

ANON = Identity("anonymous")
ALICE_I = Identity("alice", ALICE.username)
TYPO = Identity("typo", ALICE.username)
SECRETS = {"alice": ALICE.secret, "typo": "not-the-token"}


def secret_for(identity: Identity) -> SecretLookup:
    return SecretLookup(KeyringStatus.OK, SECRETS.get(identity.label), "")


def monitor_for(server: SimHubServer, clock: ManualClock, *identities: Identity) -> Monitor:
    client = HubClient(server.url, clock=clock, timeouts=FAST)
    monitor = Monitor(client, secret_for, clock=clock, policy=POLICY, rng=random.Random(SEED))
    monitor.set_identities(identities)
    return monitor


def replay(retry_after: float | None, *, failing: bool = True) -> list[float]:
    """When the policy allows attempts during an hour of 10 s rounds (offsets from the start)."""
    rng = random.Random(SEED)
    attempts: list[float] = []
    not_before = 0.0
    failures = 0
    for step in range(int(HOUR / INTERVAL)):
        now = step * INTERVAL
        if now < not_before:
            continue
        attempts.append(now)
        if failing:
            failures += 1
            not_before = now + POLICY.delay(failures, retry_after, rng)
        else:
            not_before = now + POLICY.honoured(retry_after)
    return attempts


async def an_hour(monitor: Monitor, clock: ManualClock) -> list[Reading]:
    """An hour of scheduled rounds; the readings actually measured (skipped probes add none)."""
    measured: list[Reading] = []
    monitor.sinks.append(measured.append)
    start = clock.time()
    for step in range(int(HOUR / INTERVAL)):
        clock.set(start + step * INTERVAL)
        await monitor.round()
    return measured


CLASSES = [
    # id, switches, identity, counter, retry-after, failing, hand ceiling over the hour
    ("HEAD 503", {"status": {"head": 503}}, ANON, "head", None, True, 12),
    ("HEAD 502 Retry-After 300", {"status": {"head": 502}, "retry_after": {"head": 300}},
     ANON, "head", 300, True, 12),
    ("token 429", {"status": {"token": 429}}, ALICE_I, "token", None, True, 12),
    ("token 429 Retry-After 600", {"status": {"token": 429}, "retry_after": {"token": 600}},
     ALICE_I, "token", 600, True, 6),
    ("HAP429 token (Retry-After 60)", {"hap429": {"token"}}, ANON, "token", 60, True, 12),
    ("HEAD HAP429 (Retry-After 60)", {"hap429": {"head"}}, ANON, "head", 60, False, 60),
    ("Retry-After of a day, honoured for an hour",
     {"status": {"token": 503}, "retry_after": {"token": 86400}}, ALICE_I, "token", 86400, True,
     2),
]  # fmt: skip


@pytest.mark.parametrize(
    ("switches", "identity", "counter", "retry_after", "failing", "ceiling"),
    [pytest.param(*c[1:], id=c[0]) for c in CLASSES],
)
async def test_an_hour_of_failures_is_a_bounded_number_of_requests(
    simhub: SimHubServer,
    clock: ManualClock,
    switches: dict[str, object],
    identity: Identity,
    counter: str,
    retry_after: float | None,
    failing: bool,
    ceiling: int,
) -> None:
    simhub.model.faults.update(switches)
    monitor = monitor_for(simhub, clock, identity)
    start = clock.time()
    measured = await an_hour(monitor, clock)
    await monitor.client.aclose()
    expected = replay(retry_after, failing=failing)
    assert [r.checked_at - start for r in measured] == expected
    assert simhub.model.counters[counter] == len(expected) <= ceiling
    gaps = [b - a for a, b in itertools.pairwise(expected)]
    honoured = POLICY.honoured(retry_after)
    assert all(gap >= honoured for gap in gaps)  # never earlier than Retry-After (capped)
    if failing:
        assert all(gap <= POLICY.cap * (1 + POLICY.jitter) + INTERVAL for gap in gaps)  # capped
        assert all(r.failed for r in measured)
    else:
        assert all(r.state is State.EXHAUSTED for r in measured)


async def test_bad_credentials_make_one_request_in_an_hour_then_wait_for_the_user(
    simhub: SimHubServer, clock: ManualClock
) -> None:
    monitor = monitor_for(simhub, clock, TYPO, ANON)
    measured = await an_hour(monitor, clock)
    assert simhub.model.token_requests_by_user[ALICE.username] == 1
    assert [r.label for r in measured].count("typo") == 1
    assert [r.label for r in measured].count("anonymous") == HOUR / INTERVAL  # kept updating
    assert monitor.is_halted("typo") and monitor.next_attempt_at("typo") is None
    await monitor.probe(TYPO, ignore_backoff=True)  # "refresh all" leaves it alone
    assert simhub.model.token_requests_by_user[ALICE.username] == 1
    await monitor.check(TYPO)  # the user asks for it by name: exactly one more attempt
    assert simhub.model.token_requests_by_user[ALICE.username] == 2
    monitor.set_identities([Identity("typo", ALICE.username, warn_below=3), ANON])  # edited
    assert not monitor.is_halted("typo") and monitor.due("typo")
    await monitor.client.aclose()


async def test_recovery_resets_the_backoff(simhub: SimHubServer, clock: ManualClock) -> None:
    simhub.model.faults.status = {"head": 500}
    monitor = monitor_for(simhub, clock, ANON)
    for _ in range(4):  # four failures: the next wait is 8 x 15 s (+-20 %)
        reading = await monitor.probe(ANON, ignore_backoff=True)
        assert reading.failed
    next_at = monitor.next_attempt_at("anonymous")
    assert next_at is not None and 96 <= next_at - clock.time() <= 144
    simhub.model.faults.clear()
    clock.set(next_at)
    (recovered,) = await monitor.round()
    assert recovered.state is State.OK
    simhub.model.faults.status = {"head": 500}
    clock.advance(INTERVAL)
    await monitor.round()  # failing again starts over at 15 s, not at 16 x
    next_at = monitor.next_attempt_at("anonymous")
    assert next_at is not None and 12 <= next_at - clock.time() <= 18
    await monitor.client.aclose()


async def test_jitter_spreads_identities_that_fail_together(
    simhub: SimHubServer, clock: ManualClock
) -> None:
    simhub.model.faults.status = {"head": 503}
    identities = [Identity(f"anon-{i}") for i in range(12)]
    monitor = monitor_for(simhub, clock, *identities)
    await monitor.round()
    await monitor.client.aclose()
    waits = [monitor.next_attempt_at(i.label) for i in identities]
    assert all(w is not None for w in waits)
    offsets = sorted(w - clock.time() for w in waits if w is not None)
    assert len(set(offsets)) == len(offsets)  # no two retry at the same instant
    assert offsets[0] >= 12 and offsets[-1] <= 18 and offsets[-1] - offsets[0] > 1


@settings(max_examples=300, deadline=None)
@given(
    failures=st.integers(min_value=1, max_value=60),
    retry_after=st.one_of(
        st.none(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=0, max_value=10 * 86400),
    ),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_is_exponential_jittered_capped_and_honours_retry_after(
    failures: int, retry_after: float | None, seed: int
) -> None:
    delay = POLICY.delay(failures, retry_after, random.Random(seed))
    exponential = min(POLICY.cap, POLICY.base * POLICY.factor ** (failures - 1))
    honoured = POLICY.honoured(retry_after)
    assert math.isfinite(delay)
    assert 0.0 <= honoured <= POLICY.max_retry_after
    assert exponential * (1 - POLICY.jitter) <= delay or delay == honoured
    assert delay <= max(exponential * (1 + POLICY.jitter), honoured)
    assert delay >= honoured
    assert delay <= max(POLICY.cap * (1 + POLICY.jitter), POLICY.max_retry_after)
