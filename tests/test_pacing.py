"""Pacing: the token bucket every request passes (`hub/pacing.py`), the client that takes a
token for each request, the monitor that spreads large rounds, and the options that set it.

The pacer's own tests run in virtual time (a clock that jumps to the next sleeper's due time
when everything else waits), so nothing here asserts on the wall clock. The integration test
reads the simulated hub's own arrival times: no one-second window holds more than
`burst + max_rate` requests.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import math
import random
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import pytest

from fixtures_cli import Cli
from pullwatch import monitor as monitor_module
from pullwatch import runtime as runtime_module
from pullwatch.cli import main
from pullwatch.hub.client import Credentials, HubClient, Target
from pullwatch.hub.pacing import DEFAULT_BURST, DEFAULT_MAX_RATE, Pacer
from pullwatch.identities.model import Identity
from pullwatch.identities.secrets import MemoryKeyring, SecretLookup
from pullwatch.monitor import Monitor
from pullwatch.paths import Paths
from pullwatch.reading import Reading, State
from pullwatch.runtime import ENV_BURST, ENV_MAX_RATE, build_runtime
from pullwatch.simhub.model import busiest

T = TypeVar("T")
REGISTRY = "http://127.0.0.1:5999"  # never dialled: the mock transport answers


class VirtualTime:
    """A clock and a sleep for the pacer: sleepers wake in order of their due time, and time
    jumps to the next one only once everything else is waiting."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), next(self._order), future))
        await future

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(work)
        while True:
            for _ in range(200):  # let everything that can run now run
                await asyncio.sleep(0)
                if task.done():
                    return task.result()
            while self._sleepers and self._sleepers[0][2].cancelled():
                heapq.heappop(self._sleepers)
            assert self._sleepers, "nothing can run and nothing sleeps: stuck"
            when, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            future.set_result(None)


def paced(vt: VirtualTime, max_rate: float, burst: int, margin: float = 0.0) -> Pacer:
    """A pacer in virtual time; without the jitter margin unless asked: the plain bucket."""
    return Pacer(max_rate, burst, margin=margin, clock=vt, sleep=vt.sleep)


# -- the bucket ----------------------------------------------------------------------------------


def test_a_burst_goes_at_once_then_one_token_every_1_over_rate() -> None:
    vt = VirtualTime()
    pacer = paced(vt, 10, 5)
    due = [pacer.reserve() - vt.now for _ in range(8)]
    assert due == pytest.approx([0, 0, 0, 0, 0, 0.1, 0.2, 0.3])
    assert pacer.available() == pytest.approx(-3)  # three tokens promised to waiters


def test_the_bucket_refills_at_the_rate_and_holds_no_more_than_the_burst() -> None:
    vt = VirtualTime()
    pacer = paced(vt, 4, 6)
    for _ in range(6):
        pacer.reserve()
    vt.now += 0.5
    assert pacer.available() == pytest.approx(2)
    vt.now += 3600  # an idle hour saves up one burst, not 14,400 requests
    assert pacer.available() == pytest.approx(6)
    due = [pacer.reserve() - vt.now for _ in range(7)]
    assert due == pytest.approx([0] * 6 + [0.25])


async def test_waiters_are_served_in_the_order_they_came() -> None:
    vt = VirtualTime()
    pacer = paced(vt, 2, 1)
    served: list[tuple[int, float]] = []

    async def one(n: int) -> None:
        waited = await pacer.acquire()
        served.append((n, waited))

    async def all_of_them() -> None:
        await asyncio.gather(*(one(n) for n in range(5)))

    await vt.run(all_of_them())
    assert [n for n, _ in served] == [0, 1, 2, 3, 4]
    assert [w for _, w in served] == pytest.approx([0, 0.5, 1.0, 1.5, 2.0])
    assert pacer.acquired == 5 and pacer.waited == pytest.approx(5.0)


@pytest.mark.parametrize("seed", range(40))
def test_no_span_holds_more_than_burst_plus_rate_times_span(seed: int) -> None:
    """Whatever the arrivals (steady, bursty, idle then flooding), the times the pacer lets
    requests go keep `burst + max_rate * T` in every window of T seconds."""
    rng = random.Random(seed)
    vt = VirtualTime()
    max_rate = rng.choice([1.0, 3.0, 20.0, 25.0, 50.5])
    burst = rng.choice([1, 2, 10, 32, 250])
    pacer = paced(vt, max_rate, burst)
    sent = []
    for _ in range(1500):
        vt.now += rng.expovariate(max_rate * rng.choice([0.2, 1.0, 3.0, 20.0]))
        sent.append(pacer.reserve())
    for span in (0.25, 1.0, 10.0):
        assert busiest(sent, span) <= burst + max_rate * span + 1e-9


def test_a_flood_gets_exactly_burst_plus_rate_in_its_first_second() -> None:
    vt = VirtualTime()
    pacer = paced(vt, 4, 6)
    sent = [pacer.reserve() for _ in range(100)]
    assert busiest(sent, 1.0) == 6 + 4  # the bound is met, not just respected


async def test_a_sleep_that_wakes_early_does_not_let_a_request_go_early() -> None:
    vt = VirtualTime()
    woke: list[float] = []

    async def early(seconds: float) -> None:
        vt.now += seconds * 0.5  # wakes half way
        woke.append(vt.now)

    pacer = Pacer(1, 1, margin=0, clock=vt, sleep=early)
    await pacer.acquire()
    start = vt.now
    await pacer.acquire()
    assert vt.now >= start + 1.0 - 1e-9
    assert len(woke) > 1  # it slept again until the token was due


async def test_a_cancelled_waiter_does_not_speed_the_pace_up() -> None:
    vt = VirtualTime()
    pacer = paced(vt, 1, 1)

    async def scenario() -> float:
        await pacer.acquire()
        waiter = asyncio.ensure_future(pacer.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        started = vt.now
        await pacer.acquire()
        return vt.now - started

    assert await vt.run(scenario()) == pytest.approx(2.0)  # the cancelled one's token is spent


@pytest.mark.parametrize(
    ("max_rate", "burst"), [(0, 1), (-1, 1), (math.nan, 1), (math.inf, 1), (1, 0)]
)
def test_nonsense_is_refused(max_rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        Pacer(max_rate, burst)


def test_least_time_is_what_the_requests_beyond_the_bucket_take() -> None:
    pacer = Pacer(25, 250)
    assert pacer.least_time(201) == 0.0
    assert pacer.least_time(2001) == pytest.approx((2001 - 243) / 25)


@pytest.mark.parametrize(
    ("max_rate", "burst", "capacity", "rate"),
    [(25, 250, 243, 25), (20, 10, 5, 20), (20, 1, 1, 16), (0.5, 1, 1, 0.4), (4, 2, 1, 4)],
)
def test_the_jitter_margin_comes_off_the_bucket_then_the_rate(
    max_rate: float, burst: int, capacity: int, rate: float
) -> None:
    pacer = Pacer(max_rate, burst)  # the default margin: a quarter of a second
    assert (pacer.capacity, pacer.rate) == (capacity, pytest.approx(rate))
    assert pacer.capacity + pacer.rate * 1.25 <= burst + max_rate + 1e-9


@pytest.mark.parametrize("seed", range(20))
def test_requests_up_to_a_margin_late_still_keep_the_promise_on_the_wire(seed: int) -> None:
    """Each request reaches the registry 0 to 0.25 s after it left, at random: no second on
    the registry's side holds more than burst + max_rate."""
    rng = random.Random(seed)
    vt = VirtualTime()
    max_rate = rng.choice([1.0, 4.0, 20.0, 25.0])
    burst = rng.choice([1, 3, 10, 250])
    pacer = paced(vt, max_rate, burst, margin=0.25)
    arrived = []
    for _ in range(1500):
        vt.now += rng.expovariate(max_rate * rng.choice([0.5, 3.0, 50.0]))
        arrived.append(pacer.reserve() + rng.uniform(0, 0.25))
    assert busiest(arrived, 1.0) <= burst + max_rate


def test_the_defaults_let_one_ordinary_check_of_100_identities_go_at_once() -> None:
    # A token and a HEAD per identity, plus the ping: all in one bucket, no wait.
    assert Pacer().capacity >= 100 * 2 + 1
    # ... and any minute stays under 2,000 requests: "thousands per minute" read at its least.
    assert DEFAULT_BURST + 60 * DEFAULT_MAX_RATE < 2000


# -- the client: every request takes a token --------------------------------------------------


class Recorder:
    """A mock registry: ping 401 with a challenge, tokens, HEADs with quota headers; records
    when (virtual time) each request arrived."""

    def __init__(self, vt: VirtualTime, redirect_heads: bool = False) -> None:
        self.vt = vt
        self.redirect_heads = redirect_heads
        self.arrivals: list[tuple[float, str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.arrivals.append((self.vt.now, request.method, path))
        if path == "/v2/":
            challenge = f'Bearer realm="{REGISTRY}/token",service="registry.docker.io"'
            return httpx.Response(401, headers={"www-authenticate": challenge})
        if path == "/token":
            return httpx.Response(200, json={"token": "t0k3n-" + request.url.query.decode()[-8:]})
        if self.redirect_heads and not path.startswith("/moved"):
            return httpx.Response(307, headers={"location": f"{REGISTRY}/moved{path}"})
        if request.method != "HEAD":
            return httpx.Response(405)
        headers = {"ratelimit-limit": "200;w=21600", "ratelimit-remaining": "150;w=21600"}
        return httpx.Response(200, headers=headers)

    def times(self) -> list[float]:
        return [at for at, _, _ in self.arrivals]


def client_for(vt: VirtualTime, recorder: Recorder, pacer: Pacer) -> HubClient:
    return HubClient(REGISTRY, clock=vt, transport=httpx.MockTransport(recorder), pacer=pacer)


def targets(n: int) -> list[Target]:
    return [Target(f"id{i}", Credentials(f"user{i:03d}", f"secret-{i}")) for i in range(n)]


async def test_every_request_takes_a_token_and_the_registry_sees_the_pace() -> None:
    vt = VirtualTime()
    recorder = Recorder(vt)
    pacer = paced(vt, 5, 4)

    async def round_of(n: int) -> list[State]:
        async with client_for(vt, recorder, pacer) as client:
            results = await asyncio.gather(*(client.probe(t) for t in targets(n)))
            return [r.reading.state for r in results]

    states = await vt.run(round_of(30))
    assert states == [State.OK] * 30
    kinds = [(method, path) for _, method, path in recorder.arrivals]
    assert kinds.count(("GET", "/v2/")) == 1 and kinds.count(("GET", "/token")) == 30
    assert pacer.acquired == len(recorder.arrivals) == 61
    assert busiest(recorder.times(), 1.0) <= 4 + 5
    assert recorder.times()[-1] - recorder.times()[0] == pytest.approx((61 - 4) / 5)


async def test_a_redirect_the_client_follows_takes_its_own_token() -> None:
    vt = VirtualTime()
    recorder = Recorder(vt, redirect_heads=True)
    pacer = paced(vt, 1, 1)

    async def one() -> State:
        async with client_for(vt, recorder, pacer) as client:
            return (await client.probe(targets(1)[0])).reading.state

    assert await vt.run(one()) is State.OK
    assert [m for _, m, _ in recorder.arrivals] == ["GET", "GET", "HEAD", "HEAD"]
    assert pacer.acquired == 4
    assert recorder.times() == pytest.approx([vt.now - 3, vt.now - 2, vt.now - 1, vt.now])


async def test_a_wait_for_the_pace_is_not_counted_as_latency() -> None:
    vt = VirtualTime()
    recorder = Recorder(vt)
    pacer = paced(vt, 0.5, 1)  # every request after the first waits 2 s

    async def one() -> float | None:
        async with client_for(vt, recorder, pacer) as client:
            return (await client.probe(targets(1)[0])).reading.latency_ms

    assert await vt.run(one()) == 0.0  # the answer itself took no (virtual) time
    assert pacer.waited == pytest.approx(4.0)


# -- the monitor: large scheduled rounds spread over the interval ------------------------------


def monitor_for(
    vt: VirtualTime, recorder: Recorder, pacer: Pacer, n: int, spread: float
) -> Monitor:
    """Anonymous identities: no keyring read (a thread) to race the virtual clock."""

    def no_secret(identity: Identity) -> SecretLookup:
        raise AssertionError(f"{identity.label} is anonymous")

    client = client_for(vt, recorder, pacer)
    monitor = Monitor(client=client, secret_for=no_secret, clock=vt, spread=spread)
    monitor.set_identities([Identity(f"id{i}") for i in range(n)])
    return monitor


def head_times(recorder: Recorder) -> list[float]:
    return [at for at, method, _ in recorder.arrivals if method == "HEAD"]


async def _rounds(monitor: Monitor, *, count: int = 1, ignore_backoff: bool = False) -> None:
    async with monitor.client:
        for _ in range(count):
            if ignore_backoff:
                identities = monitor.identities
                await asyncio.gather(*(monitor.probe(i, ignore_backoff=True) for i in identities))
            else:
                await monitor.round()


async def test_a_round_too_big_for_one_burst_starts_evenly_over_half_the_interval() -> None:
    vt = VirtualTime()
    recorder = Recorder(vt)
    pacer = paced(vt, 1000, 20)  # a generous pace: what spaces the probes is the spread
    monitor = monitor_for(vt, recorder, pacer, 50, spread=60)
    started = vt.now
    await vt.run(_rounds(monitor))
    heads = head_times(recorder)
    assert len(heads) == 50
    gaps = [b - a for a, b in itertools.pairwise(heads)]
    assert gaps == pytest.approx([30 / 50] * 49)  # 50 starts over 30 s, one every 0.6 s
    assert heads[-1] - started == pytest.approx(49 * 0.6)


async def test_a_round_that_fits_in_one_burst_is_not_spread() -> None:
    vt = VirtualTime()
    recorder = Recorder(vt)
    monitor = monitor_for(vt, recorder, paced(vt, 10, 100), 50, spread=60)  # 50 x 2 <= 100
    assert monitor.start_pacer() is None
    started = vt.now
    await vt.run(_rounds(monitor))
    assert len(head_times(recorder)) == 50 and set(head_times(recorder)) == {started}


async def test_one_shot_and_asked_for_rounds_are_not_spread() -> None:
    for spread, ignore_backoff in ((0.0, False), (60.0, True)):
        vt = VirtualTime()
        recorder = Recorder(vt)
        pacer = paced(vt, 1000, 20)
        monitor = monitor_for(vt, recorder, pacer, 50, spread=spread)
        started = vt.now
        await vt.run(_rounds(monitor, ignore_backoff=ignore_backoff))
        # only the request pacer: the first 20 requests at once, then 1,000 a second
        assert head_times(recorder)[-1] - started == pytest.approx((52 - 20) / 1000)


async def test_a_spread_round_is_taken_out_of_the_pause_before_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Spreading must not stretch the cycle: a large set at a 60 s interval comes round about
    once a minute, not once every 90 s (30 s of starts, then a 60 s pause)."""
    vt = VirtualTime()
    pauses: list[float] = []
    stop = asyncio.Event()

    async def pause(waiting: Coroutine[Any, Any, Any], timeout: float) -> None:  # noqa: ASYNC109
        waiting.close()  # stop.wait(), never awaited here
        pauses.append(timeout)
        stop.set()

    async def no_round(self: Monitor, labels: Any = None) -> list[Reading]:
        return []

    monkeypatch.setattr(monitor_module.asyncio, "wait_for", pause)
    monkeypatch.setattr(Monitor, "round", no_round)
    fits = monitor_for(vt, Recorder(vt), paced(vt, 10, 100), 50, spread=60)  # 50 x 2 <= 100
    spread = monitor_for(vt, Recorder(vt), paced(vt, 1000, 20), 50, spread=60)
    for monitor in (fits, spread):
        stop.clear()
        await monitor.run(60, stop)
    assert (fits.spread_time(), spread.spread_time()) == (0.0, 30.0)
    assert pauses == [60.0, 30.0]


async def test_the_request_pace_still_holds_in_a_spread_round() -> None:
    vt = VirtualTime()
    recorder = Recorder(vt)
    pacer = paced(vt, 3, 10)  # slower than the spread (50 identities over 30 s)
    monitor = monitor_for(vt, recorder, pacer, 50, spread=60)
    await vt.run(_rounds(monitor, count=2))
    assert busiest(recorder.times(), 1.0) <= 10 + 3
    assert len(head_times(recorder)) == 100


# -- options: flag > environment > config > default ------------------------------------------


def write_settings(paths: Paths, text: str) -> None:
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(f"version = 1\n\n[settings]\n{text}\n", encoding="utf-8")


def test_precedence_flag_then_environment_then_config_then_default(paths: Paths) -> None:
    runtime = build_runtime(paths, env={})
    assert (runtime.max_rate, runtime.burst) == (DEFAULT_MAX_RATE, DEFAULT_BURST)
    write_settings(paths, "max_rate = 7.5\nburst = 40")
    runtime = build_runtime(paths, env={})
    assert (runtime.max_rate, runtime.burst) == (7.5, 40)
    env = {ENV_MAX_RATE: "12", ENV_BURST: "64"}
    runtime = build_runtime(paths, env=env)
    assert (runtime.max_rate, runtime.burst) == (12.0, 64)
    runtime = build_runtime(paths, env=env, max_rate=3.0, burst=5)
    assert (runtime.max_rate, runtime.burst) == (3.0, 5)
    pacer = runtime.client().pacer
    assert (pacer.max_rate, pacer.burst) == (3.0, 5)


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        (ENV_MAX_RATE, "fast", "PULLWATCH_MAX_RATE='fast' is not a number"),
        (ENV_MAX_RATE, "0", "PULLWATCH_MAX_RATE must be >= 0.1 (got 0.0)"),
        (ENV_MAX_RATE, "nan", "PULLWATCH_MAX_RATE must be a finite number (got nan)"),
        (ENV_BURST, "2.5", "PULLWATCH_BURST='2.5' is not a whole number"),
        (ENV_BURST, "0", "PULLWATCH_BURST must be >= 1 and <= 10000 (got 0)"),
    ],
)
def test_a_bad_environment_value_is_a_usage_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, name: str, value: str, said: str
) -> None:
    monkeypatch.setenv(name, value)
    code, out, err = cli("check")
    assert (code, out, err) == (64, "", f"pullwatch: error: {said}\n")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--max-rate", "0"], "argument --max-rate: must be >= 0.1 (got 0.0)"),
        (["--max-rate", "lots"], "argument --max-rate: 'lots' is not a number"),
        (["--max-rate", "inf"], "argument --max-rate: must be a finite number (got inf)"),
        (["--burst", "0"], "argument --burst: must be >= 1 and <= 10000 (got 0)"),
        (["--burst", "1e3"], "argument --burst: '1e3' is not a whole number"),
    ],
)
def test_a_bad_flag_is_a_usage_error(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in ([*args, "check"], ["check", *args]):  # before and after the command
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 64
        err = capsys.readouterr().err
        assert err.splitlines()[-1].endswith(f"error: {said}"), err


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("max_rate = 0", "max_rate must be >= 0.1 (got 0)"),
        ("max_rate = inf", "max_rate must be a finite number (got inf)"),
        ("max_rate = nan", "max_rate must be a finite number (got nan)"),
        ('max_rate = "fast"', "max_rate must be a number"),
        ("burst = 0", "burst must be >= 1 and <= 10000 (got 0)"),
        ("burst = 2.5", "burst must be a whole number"),
    ],
)
def test_a_bad_config_value_is_one_line_naming_the_file(
    cli: Cli, paths: Paths, line: str, said: str
) -> None:
    write_settings(paths, line)
    code, out, err = cli("check")
    assert code == 3 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"pullwatch: error: {paths.config_file} line ") and said in err, err


def test_help_explains_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--max-rate N" in text and "--burst N" in text
    assert "PULLWATCH_MAX_RATE" in text and "PULLWATCH_BURST" in text
    assert "burst + max-rate requests in any second" in text


# -- against the simulated hub: the hub's own clock says so -----------------------------------


def test_check_with_a_small_pace_never_exceeds_it_on_the_wire(
    cli: Cli, paths: Paths, cli_keyring: MemoryKeyring
) -> None:
    """60 identities (20 logins, each its own token; 40 anonymous, sharing one) at 20 requests
    a second and a burst of 10 (5 in the bucket, 5 kept for jitter): 82 requests, about 3.9 s;
    the simulator's arrival times never hold more than 30 in a second."""
    model = cli.server.model
    lines = ["version = 1"]
    for i in range(60):
        lines += ["", "[[identity]]", f'label = "id{i:02d}"']
        if i < 20:
            username = f"pacer{i:02d}"
            model.add_account(username, f"secret-{i}")
            cli_keyring.set_password("pullwatch", f"id{i:02d}", f"secret-{i}")
            lines.append(f'username = "{username}"')
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model.reset_counters()

    code, out, err = cli("--max-rate", "20", "--burst", "10", "check", "--json")
    assert code == 0, err
    assert [r["state"] for r in json.loads(out)["identities"]] == ["ok"] * 60
    counters = model.counters
    assert (counters["ping"], counters["token"], counters["head"]) == (1, 21, 60)
    assert counters["manifest_get"] == 0
    arrivals = model.arrival_times()
    assert len(arrivals) == 82
    assert busiest(arrivals, 1.0) <= 10 + 20
    assert arrivals[-1] - arrivals[0] >= (82 - 10) / 20  # it was paced, not just fast


def test_checks_default_deadline_leaves_room_for_the_pace(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --timeout, the deadline is 60 s plus the least time the pace needs (here
    0.5 s + (2 x 2 + 1 - 1) / 1.6 s; 4 requests take 3 / 1.6 s): identities are not cut off by
    pullwatch's own pacing; --timeout is the user's overall deadline and stays so."""
    monkeypatch.setattr(runtime_module, "DEFAULT_DEADLINE", 0.5)
    cli.add("second")
    code, out, err = cli("--max-rate", "2", "--burst", "1", "check", "--json")
    assert code == 0, err
    assert [r["state"] for r in json.loads(out)["identities"]] == ["ok", "ok"]
    code, out, _ = cli("--max-rate", "2", "--burst", "1", "check", "--json", "--timeout", "0.5")
    assert code == 3
    assert "unknown" in [r["state"] for r in json.loads(out)["identities"]]


def test_the_simulator_serves_its_arrival_times(cli: Cli) -> None:
    assert cli("check")[0] == 0
    with httpx.Client(base_url=cli.server.url) as http:
        arrivals = http.get("/_sim/arrivals").json()["arrivals"]
        assert len(arrivals) == 3 and arrivals == sorted(arrivals)  # ping, token, HEAD
        http.post("/_sim/reset-counters")
        assert http.get("/_sim/arrivals").json() == {"arrivals": []}
