"""The fault matrix: every failure of issue 6, at the monitor, beside healthy identities.

Three identities share one `Monitor` and one `HubClient`, as in the dashboard: `victim` (alice),
whose requests meet the fault (see `faultkit.Router`), and two healthy ones - anonymous, and bob
on a paid plan - served by a healthy simulated hub over loopback. Each case runs scheduled rounds
every 10 s (the shortest interval) on a ManualClock and asserts:

- the victim's state, error kind and one-line reason are the documented ones, nothing raises
  (not even into the event loop's exception handler), and no reason leaks a token or jti;
- the healthy identities get a fresh reading every round, one HEAD each;
- the victim's requests are counted: none while backing off or halted, exactly one attempt when
  due (backoff 15 s +-20% doubling, or Retry-After), and after the fault heals it recovers.

Timeouts are short (0.4 s connect/read, 0.8 s per request), so every case ends within seconds.
"""

from __future__ import annotations

import asyncio
import gc
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from faultkit import Blackhole, Fault, Refused, Router, SimFault, Unresolvable, UntrustedTls
from fixtures_simhub import ALICE, BOB
from pullwatch.clock import ManualClock
from pullwatch.hub.client import HubClient, Target, Timeouts
from pullwatch.identities.secrets import KeyringStatus, SecretLookup
from pullwatch.identities.store import Identity
from pullwatch.monitor import BackoffPolicy, Monitor
from pullwatch.reading import ErrorKind, Reading, State
from pullwatch.simhub import SimHubServer, standard_model

TIMEOUTS = Timeouts(connect=0.4, read=0.4, total=0.8)
INTERVAL = 10.0  # the dashboard's shortest round interval
POLICY = BackoffPolicy()  # the production policy: 15 s, doubling, cap 15 min, +-20 %

VICTIM = Identity("victim", ALICE.username)
ANON = Identity("anonymous")
PAID = Identity("paid", BOB.username)
SECRETS = {"victim": ALICE.secret, "paid": BOB.secret}

BACKOFF, HALT, EVERY_ROUND = "backoff", "halt", "every round"


@dataclass(frozen=True)
class Case:
    """One fault: what breaks, what the victim's reading must say, how the next rounds behave."""

    id: str
    fault: Callable[[ManualClock], Fault]
    state: State
    kind: ErrorKind | None
    reason: str | None  # the exact one-line detail
    first: dict[str, int]  # the victim's requests in the first round, by step
    then: str  # BACKOFF, HALT or EVERY_ROUND
    again: dict[str, int] = field(default_factory=dict)  # requests per later attempt
    retry_after: float | None = None  # what the reading carries, and the backoff honours


def sim(**switches: object) -> Callable[[ManualClock], Fault]:
    def make(clock: ManualClock) -> Fault:
        return SimFault(SimHubServer(standard_model(clock)).start(), **switches)

    return make


def tls(clock: ManualClock) -> Fault:
    return UntrustedTls(standard_model(clock))


TOKEN = {"token": 1}
TOKEN_HEAD = {"token": 1, "head": 1}
HEAD = {"head": 1}


def http_cases() -> list[Case]:
    cases = []
    for status, phrase in ((500, "Internal Server Error"), (502, "Bad Gateway"),
                           (503, "Service Unavailable"), (504, "Gateway Timeout")):  # fmt: skip
        for retry_after in (None, 120):
            switches: dict[str, Any] = {"status": {"head": status}}
            wait = ""
            if retry_after is not None:
                switches["retry_after"] = {"head": retry_after}
                wait = f"; retry after {retry_after} s"
            cases.append(
                Case(
                    f"HEAD {status}" + (" Retry-After" if retry_after else ""),
                    sim(**switches),
                    State.ERROR,
                    ErrorKind.HTTP,
                    f"HEAD answered {status} {phrase}{wait}",
                    TOKEN_HEAD,
                    BACKOFF,
                    HEAD,
                    retry_after,
                )
            )
    return cases


UNREADABLE = "quota unknown, rate-limit headers unreadable: "
ECHO = "You have reached your pull rate limit as '[redacted]': dckr_jti_[redacted]."

CASES: list[Case] = [
    # -- the network --------------------------------------------------------------------------
    Case("connection refused", lambda c: Refused(), State.ERROR, ErrorKind.CONNECT,
         "token request: connection refused", TOKEN, BACKOFF, TOKEN),
    Case("DNS failure", lambda c: Unresolvable(), State.ERROR, ErrorKind.DNS,
         "token request: cannot resolve the host name (DNS)", TOKEN, BACKOFF, TOKEN),
    Case("connect timeout", lambda c: Blackhole(), State.ERROR, ErrorKind.TIMEOUT,
         "token request: timed out connecting", TOKEN, BACKOFF, TOKEN),
    Case("read timeout", sim(hang={"head"}), State.ERROR, ErrorKind.TIMEOUT,
         "HEAD probe: timed out waiting for the answer", TOKEN_HEAD, BACKOFF, HEAD),
    Case("server drips bytes", sim(drip={"token": 0.1}), State.ERROR, ErrorKind.TIMEOUT,
         "token request: timed out waiting for the answer", TOKEN, BACKOFF, TOKEN),
    Case("reset mid-response", sim(reset={"token"}), State.ERROR, ErrorKind.RESET,
         "token request: connection reset by the server mid-answer", TOKEN, BACKOFF, TOKEN),
    Case("TLS failure", tls, State.ERROR, ErrorKind.TLS,
         "token request: TLS certificate not trusted: unable to get local issuer certificate",
         TOKEN, BACKOFF, TOKEN),
    # -- 5xx, with and without Retry-After ---------------------------------------------------------
    *http_cases(),
    Case("token 503 echoing a dckr_jti id", sim(status={"token": 503}, echo_jti={"token"}),
         State.ERROR, ErrorKind.HTTP,
         f"token request answered 503 Service Unavailable: {ECHO} You may increase the limit by "
         "authenticating and upgrading: https://www.doc…", TOKEN, BACKOFF, TOKEN),
    # -- credentials ------------------------------------------------------------------------------
    Case("401 bad credentials", sim(status={"token": 401}), State.AUTH_FAILED, None,
         "incorrect username or password (login refused)", TOKEN, HALT),
    Case("401 invalid_token on the HEAD", sim(invalid_token_on_head=True), State.AUTH_FAILED,
         None, "registry rejected the token (invalid_token)", TOKEN_HEAD, HALT),
    # -- the token's JSON -------------------------------------------------------------------------
    Case("token JSON malformed", sim(token_body="malformed"), State.ERROR, ErrorKind.MALFORMED,
         "token endpoint answered with something that is not JSON", TOKEN, BACKOFF, TOKEN),
    Case("token JSON without a token", sim(token_body="missing_token"), State.ERROR,
         ErrorKind.MALFORMED, "token endpoint answered without a token or access_token",
         TOKEN, BACKOFF, TOKEN),
    Case("token JSON not an object", sim(token_body="not_object"), State.ERROR,
         ErrorKind.MALFORMED, "token endpoint answered JSON that is not an object",
         TOKEN, BACKOFF, TOKEN),
    Case("token answer is a captive portal", sim(token_body="html"), State.ERROR,
         ErrorKind.MALFORMED,
         "token endpoint answered with an HTML page, not JSON (a proxy or captive portal?)",
         TOKEN, BACKOFF, TOKEN),
    Case("expires_in 0", sim(token_body="expires_zero"), State.OK, None, None, TOKEN_HEAD,
         EVERY_ROUND, TOKEN_HEAD),
    Case("expires_in huge", sim(token_body="expires_huge"), State.OK, None, None, TOKEN_HEAD,
         EVERY_ROUND, HEAD),
    Case("expires_in missing", sim(token_body="no_expires"), State.OK, None, None, TOKEN_HEAD,
         EVERY_ROUND, HEAD),
    # -- 429s ------------------------------------------------------------------------
    Case("429 on the token endpoint", sim(status={"token": 429}, retry_after={"token": 120}),
         State.THROTTLED, None, "token request: rate-limited (429); retry after 120 s",
         TOKEN, BACKOFF, TOKEN, 120),
    Case("429 on the token endpoint, no Retry-After", sim(status={"token": 429}),
         State.THROTTLED, None, "token request: rate-limited (429)", TOKEN, BACKOFF, TOKEN),
    Case("429 plain-text HAP429", sim(hap429={"token"}), State.THROTTLED, None,
         "token request: the abuse limit (HAP429), not the pull quota; retry after 60 s",
         TOKEN, BACKOFF, TOKEN, 60),
    Case("HEAD 429", sim(status={"head": 429}), State.EXHAUSTED, None,
         "HEAD answered 429 without rate-limit headers: the pull quota or the abuse limit "
         "(a HEAD has no body to tell)", TOKEN_HEAD, EVERY_ROUND, HEAD),
    Case("HEAD 429 HAP429 with Retry-After", sim(hap429={"head"}), State.EXHAUSTED, None,
         "HEAD answered 429 without rate-limit headers: the pull quota or the abuse limit "
         "(a HEAD has no body to tell); retry after 60 s",
         TOKEN_HEAD, EVERY_ROUND, HEAD, 60),
    # -- odd rate-limit headers --------------------------------------------------------
    Case("ratelimit headers malformed", sim(ratelimit_headers="malformed"), State.UNKNOWN,
         ErrorKind.MALFORMED, UNREADABLE + "ratelimit-limit 'lots;w=abc' is not a plausible "
         "count; ratelimit-remaining 'lots;w=abc' is not a plausible count",
         TOKEN_HEAD, EVERY_ROUND, HEAD),
    Case("ratelimit headers empty", sim(ratelimit_headers="empty"), State.UNKNOWN,
         ErrorKind.MALFORMED, UNREADABLE + "ratelimit-limit ';w=21600' is not a plausible "
         "count; ratelimit-remaining ';w=21600' is not a plausible count",
         TOKEN_HEAD, EVERY_ROUND, HEAD),
    Case("ratelimit headers duplicated", sim(ratelimit_headers="duplicated"), State.OK, None,
         None, TOKEN_HEAD, EVERY_ROUND, HEAD),
    Case("ratelimit headers enormous", sim(ratelimit_headers="enormous"), State.UNKNOWN,
         ErrorKind.MALFORMED, UNREADABLE + "ratelimit-limit '99999999999999999999999;w=21600' "
         "is not a plausible count; ratelimit-remaining '99999999999999999999999;w=21600' is "
         "not a plausible count", TOKEN_HEAD, EVERY_ROUND, HEAD),
    # -- hostile answers ------------------------------------------------------------------------
    Case("redirect loop", sim(redirect_loop={"head"}), State.ERROR, ErrorKind.MALFORMED,
         "HEAD probe: redirect loop (too many redirects)", {"token": 1, "head": 6}, BACKOFF,
         {"head": 6}),
    Case("response larger than any sane one", sim(huge_body={"token"}), State.ERROR,
         ErrorKind.MALFORMED,
         "token request: answer of 52,428,800 bytes is larger than any sane one",
         TOKEN, BACKOFF, TOKEN),
]  # fmt: skip


def secret_for(identity: Identity) -> SecretLookup:
    return SecretLookup(KeyringStatus.OK, SECRETS.get(identity.label), "")


@pytest.fixture
def healthy(clock: ManualClock) -> Iterator[SimHubServer]:
    server = SimHubServer(standard_model(clock)).start()
    try:
        yield server
    finally:
        server.stop()
    assert server.model.counters["manifest_get"] == 0
    assert not server.model.server_errors, server.model.server_errors[0]


class Harness:
    """The monitor, the router and the rounds; checks the healthy identities every round."""

    def __init__(self, case: Case, server: SimHubServer, clock: ManualClock) -> None:
        self.case = case
        self.server = server
        self.clock = clock
        self.fault = case.fault(clock)
        self.router = Router(self.fault, ALICE.username)
        client = HubClient(server.url, clock=clock, timeouts=TIMEOUTS, transport=self.router)
        self.monitor = Monitor(client, secret_for, clock=clock, policy=POLICY,
                               rng=random.Random(6))  # fmt: skip
        self.monitor.set_identities([ANON, VICTIM, PAID])
        self.recorded: list[Reading] = []
        self.monitor.sinks.append(self.recorded.append)
        self.healthy_rounds = 0

    async def round(self) -> Reading:
        """One scheduled round; the healthy identities must have been probed afresh."""
        by_user = self.server.model.head_requests_by_user
        heads = (by_user[""], by_user[BOB.username])
        readings = {r.label: r for r in await self.monitor.round()}
        assert (by_user[""], by_user[BOB.username]) == (heads[0] + 1, heads[1] + 1)
        anon, paid = readings["anonymous"], readings["paid"]
        now = self.clock.time()
        assert (anon.state, anon.remaining, anon.checked_at) == (State.OK, 100, now)
        assert (paid.state, paid.checked_at) == (State.UNMETERED, now)
        self.healthy_rounds += 1
        return readings["victim"]

    def victim_requests(self) -> Counter[str]:
        return Counter(self.router.victim)

    async def close(self) -> None:
        await self.monitor.client.aclose()
        self.fault.close()


def delta(after: Counter[str], before: Counter[str]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def check_reading(case: Case, reading: Reading) -> None:
    assert reading.state is case.state, reading.detail
    assert reading.error_kind is case.kind
    assert reading.detail == case.reason
    assert reading.retry_after == case.retry_after
    if reading.detail:
        assert "\n" not in reading.detail and len(reading.detail) <= 200


async def wait_out(h: Harness, until: float, every: float = INTERVAL) -> None:
    """Scheduled rounds every `every` s before `until`: the victim must not be asked once."""
    before = h.victim_requests()
    while h.clock.time() + every < until:
        h.clock.advance(every)
        await h.round()
    assert delta(h.victim_requests(), before) == {}, "probed while backing off"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
async def test_fault(case: Case, healthy: SimHubServer, clock: ManualClock) -> None:
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
    h = Harness(case, healthy, clock)
    try:
        # Round 1: the documented state and reason; the others unaffected.
        first = await h.round()
        check_reading(case, first)
        assert dict(h.victim_requests()) == case.first
        assert "dckr_jti_" not in (first.detail or "").replace("dckr_jti_[redacted]", "")

        if case.then == HALT:
            assert h.monitor.is_halted("victim")
            await wait_out(h, clock.time() + 3600, 60)  # an hour of rounds: no login attempt
            assert h.monitor.latest("victim") == first
            h.fault.heal()
            before = h.victim_requests()
            skipped = await h.monitor.probe(VICTIM, ignore_backoff=True)  # "refresh all"
            assert skipped == first and delta(h.victim_requests(), before) == {}
            retried = await h.monitor.check(VICTIM)  # the user asks for this identity
            assert retried.reading.state is State.OK
            assert not h.monitor.is_halted("victim")
            return

        if case.then == EVERY_ROUND:
            wait = POLICY.honoured(case.retry_after)
            next_at = h.monitor.next_attempt_at("victim")
            assert next_at == (clock.time() + wait if wait else None)
            await wait_out(h, clock.time() + wait)
            for _ in range(2):  # due again: exactly one attempt per round, nothing more
                clock.advance(max(INTERVAL, wait + 1 - (clock.time() - first.checked_at)))
                before = h.victim_requests()
                again = await h.round()
                assert delta(h.victim_requests(), before) == case.again
                assert again.state is case.state and again.detail == case.reason
                first = again
            return

        # BACKOFF: 15 s +-20 %, doubling, never before Retry-After; the same failure when due.
        for failures in (1, 2):
            next_at = h.monitor.next_attempt_at("victim")
            assert next_at is not None
            wait = next_at - clock.time()
            expected = POLICY.base * POLICY.factor ** (failures - 1)
            low, high = expected * (1 - POLICY.jitter), expected * (1 + POLICY.jitter)
            if case.retry_after is not None:
                low, high = max(low, case.retry_after), max(high, case.retry_after)
            assert low <= wait <= high, (failures, wait)
            await wait_out(h, next_at)
            clock.set(next_at + 1)
            before = h.victim_requests()
            again = await h.round()
            assert delta(h.victim_requests(), before) == case.again
            check_reading(case, again)
        # The fault heals: the next due round measures again, and the backoff is over.
        h.fault.heal()
        next_at = h.monitor.next_attempt_at("victim")
        assert next_at is not None
        clock.set(next_at + 1)
        recovered = await h.round()
        assert recovered.state is State.OK, recovered.detail
        assert (recovered.limit, recovered.remaining) == (200, 200)
        assert h.monitor.next_attempt_at("victim") is None
    finally:
        await h.close()
        gc.collect()
        await asyncio.sleep(0)
        assert loop_errors == [], loop_errors
    fault_model = getattr(h.fault, "model", None)
    if fault_model is not None:
        assert fault_model.counters["manifest_get"] == 0
        assert not fault_model.server_errors, fault_model.server_errors[0]


def test_matrix_covers_the_issue() -> None:
    """The issue's list, item by item (a renamed or dropped case fails here)."""
    ids = {case.id for case in CASES}
    wanted = {
        "connection refused", "DNS failure", "connect timeout", "read timeout",
        "server drips bytes", "reset mid-response", "TLS failure", "401 bad credentials",
        "401 invalid_token on the HEAD", "token JSON malformed", "token JSON without a token",
        "expires_in 0", "expires_in huge", "429 on the token endpoint", "429 plain-text HAP429",
        "HEAD 429", "ratelimit headers malformed", "ratelimit headers empty",
        "ratelimit headers duplicated", "ratelimit headers enormous", "redirect loop",
        "response larger than any sane one",
    }  # fmt: skip
    wanted |= {f"HEAD {s}{r}" for s in (500, 502, 503, 504) for r in ("", " Retry-After")}
    assert wanted <= ids, wanted - ids
    assert len(ids) == len(CASES)


async def test_the_tls_hub_answers_when_its_certificate_is_trusted(clock: ManualClock) -> None:
    """The TLS case fails for the certificate alone: trusted, the same hub answers normally."""
    tls_hub = UntrustedTls(standard_model(clock))
    try:
        client = HubClient(tls_hub.server.url, clock=clock, timeouts=TIMEOUTS,
                           verify=tls_hub.trusting_context())  # fmt: skip
        async with client:
            reading = (await client.probe(Target("anonymous"))).reading
    finally:
        tls_hub.close()
    assert tls_hub.server.url.startswith("https://127.0.0.1:")
    assert (reading.state, reading.remaining) == (State.OK, 100)
