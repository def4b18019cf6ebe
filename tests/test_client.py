"""HubClient against the simulated hub over real loopback sockets.

Every test here runs on the `simhub` fixture, which asserts at teardown that no manifest was
fetched with GET: no pull was spent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures_simhub import ALICE, BOB, EGRESS_IP, ERIN
from pullwatch.assess import Policy, assess
from pullwatch.clock import ManualClock
from pullwatch.hub.challenges import ChallengeCache
from pullwatch.hub.client import (
    Credentials,
    HubClient,
    Target,
    Timeouts,
)
from pullwatch.hub.urls import (
    ConfigurationError,
    normalize_registry,
    parse_manifest_ref,
)
from pullwatch.reading import ErrorKind, State, Step
from pullwatch.simhub import SimHubServer
from pullwatch.simhub.accounts import stable_uuid

ANON = Target("anonymous")
ALICE_T = Target("alice", Credentials(*ALICE))
BOB_T = Target("bob", Credentials(*BOB))
ERIN_T = Target("erin", Credentials(*ERIN))

FAST = Timeouts(connect=1.0, read=1.0, total=1.5)


def client_for(server: SimHubServer, clock: ManualClock, **kwargs: object) -> HubClient:
    return HubClient(server.url, clock=clock, timeouts=kwargs.pop("timeouts", FAST), **kwargs)  # type: ignore[arg-type]


async def test_anonymous(simhub: SimHubServer, clock: ManualClock) -> None:
    async with client_for(simhub, clock) as client:
        result = await client.probe(ANON)
    r = result.reading
    assert r.state is State.OK
    assert (r.limit, r.remaining, r.window_seconds) == (100, 100, 21600)
    assert r.source is not None and r.source.value == EGRESS_IP
    assert r.http_status == 200
    assert r.username is None
    assert r.raw_limit == "100;w=21600"
    assert [ex.step for ex in result.exchanges] == ["ping", "token", "head"]
    assert result.exchanges[-1].method == "HEAD"


async def test_personal_account_is_charged_to_its_uuid(
    simhub: SimHubServer, clock: ManualClock
) -> None:
    simhub.model.consume("alice", 20)
    async with client_for(simhub, clock) as client:
        r = (await client.probe(ALICE_T)).reading
    assert r.state is State.OK
    assert (r.limit, r.remaining) == (200, 180)
    assert r.source is not None and r.source.value == stable_uuid("alice")
    assert r.username == "alice"
    assert r.token_expires_at == clock.time() + 300


async def test_unlimited_account(simhub: SimHubServer, clock: ManualClock) -> None:
    async with client_for(simhub, clock) as client:
        r = (await client.probe(BOB_T)).reading
    assert r.state is State.UNMETERED
    assert r.limit is None and r.remaining is None
    assert r.source is not None and r.source.value == stable_uuid("bob")


async def test_bad_credentials(simhub: SimHubServer, clock: ManualClock) -> None:
    async with client_for(simhub, clock) as client:
        r = (await client.probe(Target("typo", Credentials("alice", "not-alices-pat")))).reading
    assert r.state is State.AUTH_FAILED
    assert r.detail == "incorrect username or password (login refused)"
    assert (r.http_status, r.step) == (401, Step.TOKEN)  # the token endpoint said 401, no HEAD
    assert simhub.model.counters["head"] == 0


@pytest.mark.parametrize("head_429", [True, False])
async def test_exhausted_both_ways(
    simhub: SimHubServer, clock: ManualClock, head_429: bool
) -> None:
    simhub.model.faults.head_429_when_exhausted = head_429
    async with client_for(simhub, clock) as client:
        r = (await client.probe(ERIN_T)).reading
    assert r.state is State.EXHAUSTED
    assert (r.limit, r.remaining) == (200, 0)
    assert r.http_status == (429 if head_429 else 200)


async def test_low_uses_threshold(simhub: SimHubServer, clock: ManualClock) -> None:
    simhub.model.consume("alice", 165)
    async with client_for(simhub, clock) as client:
        reading = (await client.probe(ALICE_T)).reading
    # The client measures; the threshold is the user's and `assess` applies it.
    assert (reading.state, reading.remaining, reading.limit) == (State.OK, 35, 200)
    default = assess(reading)
    assert default.state is State.LOW  # 35 <= 20% of 200
    assert default.reason == "35 of 200 left"
    assert assess(reading, policy=Policy(warn_below=10)).state is State.OK
    own = Policy(warn_below=50, identity_warn={"alice": 10})
    assert assess(reading, policy=own).state is State.OK  # the identity's own wins


async def test_token_cached_until_shortly_before_expiry(
    simhub: SimHubServer, clock: ManualClock
) -> None:
    counters = simhub.model.counters
    async with client_for(simhub, clock) as client:
        for _ in range(2):
            await client.probe(ANON)
            await client.probe(ALICE_T)
        assert counters["ping"] == 1
        assert counters["token"] == 2  # one per identity
        assert counters["head"] == 4
        clock.advance(289)
        await client.probe(ALICE_T)
        assert counters["token"] == 2
        clock.advance(2)  # 291 s: within 10 s of the 300 s expiry
        await client.probe(ALICE_T)
        assert counters["token"] == 3
    assert simhub.model.token_requests_by_user["alice"] == 2


async def test_expired_cached_token_is_renewed_once(
    simhub: SimHubServer, clock: ManualClock
) -> None:
    async with client_for(simhub, clock) as client:
        await client.probe(ALICE_T)
        simhub.model.revoke_tokens()
        r = (await client.probe(ALICE_T)).reading
    assert r.state is State.OK
    assert simhub.model.counters["token"] == 2
    assert simhub.model.counters["head"] == 3  # the rejected one, then the retry


async def test_challenge_cached_on_disk(
    simhub: SimHubServer, clock: ManualClock, tmp_path: Path
) -> None:
    cache = ChallengeCache(tmp_path / "challenges.json", clock)
    async with client_for(simhub, clock, challenge_cache=cache) as client:
        await client.probe(ANON)
    async with client_for(simhub, clock, challenge_cache=cache) as client:
        r = (await client.probe(ANON)).reading
    assert r.state is State.OK
    assert simhub.model.counters["ping"] == 1  # the second client read it from disk
    assert simhub.model.counters["token"] == 2


async def test_stale_disk_challenge_is_rediscovered(
    simhub: SimHubServer, clock: ManualClock, tmp_path: Path
) -> None:
    cache = ChallengeCache(tmp_path / "challenges.json", clock)
    from pullwatch.hub.headers import Challenge

    cache.save(
        normalize_registry(simhub.url),
        Challenge("bearer", {"realm": f"{simhub.url}/moved-away", "service": "registry.docker.io"}),
    )
    async with client_for(simhub, clock, challenge_cache=cache) as client:
        r = (await client.probe(ANON)).reading
    assert r.state is State.OK
    assert simhub.model.counters["ping"] == 1


async def test_ipv6_egress_reports_prefix(simhub: SimHubServer, clock: ManualClock) -> None:
    simhub.model.egress_ip = "2001:db8:1:2::7"
    async with client_for(simhub, clock) as client:
        r = (await client.probe(ANON)).reading
    assert r.source is not None and r.source.value == "2001:db8:1:2::/64"


async def test_connection_refused(clock: ManualClock) -> None:
    server = SimHubServer().start()
    url = server.url
    server.stop()
    async with HubClient(url, clock=clock, timeouts=FAST) as client:
        r = (await client.probe(ANON)).reading
    assert r.state is State.ERROR
    assert r.error_kind is ErrorKind.CONNECT
    assert r.detail == "registry ping: connection refused"


async def test_check_token_fresh_with_claims(simhub: SimHubServer, clock: ManualClock) -> None:
    async with client_for(simhub, clock) as client:
        await client.probe(ALICE_T)
        result = await client.check_token(ALICE_T)
    assert result.ok and result.state is State.OK
    assert simhub.model.counters["token"] == 2  # the check bypassed the cache
    assert result.expires_in == 300
    assert result.claims is not None
    assert result.claims.subject == stable_uuid("alice")
    assert result.claims.pull_limit is not None
    assert (result.claims.pull_limit.limit, result.claims.pull_limit.interval) == (200, 21600)
    token_exchange = result.exchanges[-1]
    assert token_exchange.auth == "basic (alice)"
    assert "alice-pat" not in repr(result)


async def test_check_token_bad_credentials(simhub: SimHubServer, clock: ManualClock) -> None:
    async with client_for(simhub, clock) as client:
        result = await client.check_token(
            Target("x", Credentials("alice", "wrong-secret-for-alice"))
        )
    assert not result.ok
    assert result.state is State.AUTH_FAILED
    assert "incorrect username or password" in (result.detail or "")


async def test_no_auth_ping_learns_challenge_from_head(
    simhub: SimHubServer, clock: ManualClock
) -> None:
    simhub.model.faults.challenge = "no_auth"
    async with client_for(simhub, clock) as client:
        r = (await client.probe(ANON)).reading
    assert r.state is State.OK
    assert simhub.model.counters["head"] == 2


def _fault(simhub: SimHubServer, **changes: object) -> None:
    simhub.model.faults.update(changes)


FAULTS: list[tuple[str, dict[str, object], Target, State, ErrorKind | None, str]] = [
    ("latency", {"latency": 0.05}, ANON, State.OK, None, ""),
    ("head 500", {"status": {"head": 500}}, ANON, State.ERROR, ErrorKind.HTTP, "HEAD answered 500"),
    (
        "token 503",
        {"status": {"token": 503}, "retry_after": {"token": 30}},
        ANON,
        State.ERROR,
        ErrorKind.HTTP,
        "token request answered 503 Service Unavailable",
    ),
    (
        "token 429",
        {"status": {"token": 429}, "retry_after": {"token": 30}},
        ALICE_T,
        State.THROTTLED,
        None,
        "token request: rate-limited (429); retry after 30 s",
    ),
    ("hap429 token", {"hap429": {"token"}}, ANON, State.THROTTLED, None, "HAP429"),
    ("hap429 ping", {"hap429": {"ping"}}, ANON, State.THROTTLED, None, "registry ping"),
    ("hap429 head", {"hap429": {"head"}}, ANON, State.EXHAUSTED, None, "abuse limit"),
    ("reset head", {"reset": {"head"}}, ANON, State.ERROR, ErrorKind.RESET, "HEAD probe"),
    (
        "drip token",
        {"drip": {"token": 0.5}},
        ANON,
        State.ERROR,
        ErrorKind.TIMEOUT,
        "token request: timed out",
    ),
    (
        "hang head",
        {"hang": {"head"}},
        ANON,
        State.ERROR,
        ErrorKind.TIMEOUT,
        "HEAD probe: timed out",
    ),
    (
        "headers missing",
        {"ratelimit_headers": "missing"},
        ALICE_T,
        State.UNMETERED,
        None,
        "no rate-limit headers",
    ),
    (
        "headers empty",
        {"ratelimit_headers": "empty"},
        ANON,
        State.UNKNOWN,
        ErrorKind.MALFORMED,
        "not a plausible count",
    ),
    (
        "headers malformed",
        {"ratelimit_headers": "malformed"},
        ANON,
        State.UNKNOWN,
        ErrorKind.MALFORMED,
        "quota unknown, rate-limit headers unreadable",
    ),
    ("headers duplicated", {"ratelimit_headers": "duplicated"}, ANON, State.OK, None, ""),
    (
        "headers enormous",
        {"ratelimit_headers": "enormous"},
        ANON,
        State.UNKNOWN,
        ErrorKind.MALFORMED,
        "quota unknown, rate-limit headers unreadable",
    ),
    ("headers x-prefixed", {"ratelimit_headers": "x_prefixed"}, ANON, State.OK, None, ""),
    ("headers mixed case", {"ratelimit_headers": "mixed_case"}, ANON, State.OK, None, ""),
    ("policy list", {"ratelimit_headers": "policy_list"}, ANON, State.OK, None, ""),
    ("no source", {"ratelimit_headers": "no_source"}, ANON, State.OK, None, ""),
    (
        "token malformed",
        {"token_body": "malformed"},
        ANON,
        State.ERROR,
        ErrorKind.MALFORMED,
        "not JSON",
    ),
    (
        "token missing",
        {"token_body": "missing_token"},
        ANON,
        State.ERROR,
        ErrorKind.MALFORMED,
        "without a token",
    ),
    ("token_only", {"token_body": "token_only"}, ANON, State.OK, None, ""),
    ("access_token_only", {"token_body": "access_token_only"}, ANON, State.OK, None, ""),
    ("no expires_in", {"token_body": "no_expires"}, ANON, State.OK, None, ""),
    ("expires_in 0", {"token_body": "expires_zero"}, ANON, State.OK, None, ""),
    ("expires_in huge", {"token_body": "expires_huge"}, ANON, State.OK, None, ""),
    (
        "token not object",
        {"token_body": "not_object"},
        ANON,
        State.ERROR,
        ErrorKind.MALFORMED,
        "not an object",
    ),
    ("captive portal", {"token_body": "html"}, ANON, State.ERROR, ErrorKind.MALFORMED, "HTML page"),
    (
        "challenge missing",
        {"challenge": "missing"},
        ANON,
        State.ERROR,
        ErrorKind.MALFORMED,
        "without a WWW-Authenticate",
    ),
    ("challenge garbage", {"challenge": "garbage"}, ANON, State.ERROR, ErrorKind.MALFORMED, ""),
    (
        "challenge basic",
        {"challenge": "basic"},
        ANON,
        State.ERROR,
        ErrorKind.MALFORMED,
        "pullwatch supports token auth only",
    ),
    (
        "invalid_token on HEAD",
        {"invalid_token_on_head": True},
        ALICE_T,
        State.AUTH_FAILED,
        None,
        "invalid_token",
    ),
    (
        "redirect loop",
        {"redirect_loop": {"head"}},
        ANON,
        State.ERROR,
        ErrorKind.MALFORMED,
        "redirect loop",
    ),
    (
        "huge token body",
        {"huge_body": {"token"}},
        ANON,
        State.ERROR,
        ErrorKind.MALFORMED,
        "larger than",
    ),
]


@pytest.mark.parametrize(
    ("changes", "target", "state", "kind", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in FAULTS],
)
async def test_fault_switches(
    simhub: SimHubServer,
    clock: ManualClock,
    changes: dict[str, object],
    target: Target,
    state: State,
    kind: ErrorKind | None,
    fragment: str,
) -> None:
    _fault(simhub, **changes)
    async with client_for(simhub, clock) as client:
        r = (await client.probe(target)).reading
    assert r.state is state, r.detail
    assert r.error_kind is kind
    assert fragment in (r.detail or "")
    assert "\n" not in (r.detail or "")


async def test_parsed_numbers_under_odd_headers(simhub: SimHubServer, clock: ManualClock) -> None:
    async with client_for(simhub, clock) as client:
        _fault(simhub, ratelimit_headers="enormous")
        enormous = (await client.probe(ANON)).reading
        _fault(simhub, ratelimit_headers="x_prefixed")
        prefixed = (await client.probe(ANON)).reading
        _fault(simhub, ratelimit_headers="empty")
        empty = (await client.probe(ANON)).reading
    assert enormous.limit is None  # implausible numbers are unknown, never a huge gauge
    assert (prefixed.limit, prefixed.remaining) == (100, 100)
    assert empty.remaining is None and empty.window_seconds == 21600


async def test_expires_zero_is_never_reused(simhub: SimHubServer, clock: ManualClock) -> None:
    _fault(simhub, token_body="expires_zero")
    async with client_for(simhub, clock) as client:
        await client.probe(ANON)
        await client.probe(ANON)
    assert simhub.model.counters["token"] == 2


def test_normalize_registry() -> None:
    assert normalize_registry("registry-1.docker.io") == "https://registry-1.docker.io"
    assert normalize_registry("docker.io") == "https://registry-1.docker.io"
    assert normalize_registry("http://127.0.0.1:5000/") == "http://127.0.0.1:5000"
    assert normalize_registry("http://simhub.localhost") == "http://simhub.localhost"  # RFC 6761
    bad_urls = ("http://registry.example.com", "http://localhost.example.com", "ftp://x")
    for bad in (*bad_urls, "https://u:p@host", "https://h/path", ""):
        with pytest.raises(ConfigurationError):
            normalize_registry(bad)


def test_manifest_references() -> None:
    hub, other = "https://registry-1.docker.io", "http://127.0.0.1:5000"
    assert parse_manifest_ref("alpine", hub).display == "library/alpine:latest"
    assert parse_manifest_ref("solo", other).display == "solo:latest"  # library/ is Hub's only
    assert parse_manifest_ref("ratelimitpreview/test", hub).path == (
        "/v2/ratelimitpreview/test/manifests/latest"
    )
    tagged = parse_manifest_ref("ratelimitpreview/notag:v1", other)
    assert (tagged.name, tagged.reference) == ("ratelimitpreview/notag", "v1")
    digest = "sha256:" + "a" * 64
    pinned = parse_manifest_ref(f"team/app@{digest}", other)
    assert pinned.path == f"/v2/team/app/manifests/{digest}" and pinned.is_digest
    assert pinned.scope == "repository:team/app:pull"
    for bad in ("Bad Name", "x:bad tag", "x@sha256:short", "", "a//b"):
        with pytest.raises(ConfigurationError):
            parse_manifest_ref(bad, hub)


# -- the trust store (hub/tls.py): no probe of the simulator needed -----------------------------


@pytest.fixture
def private_ca(tmp_path: Path) -> Path:
    import trustme

    path = tmp_path / "private-ca.pem"
    trustme.CA(organization_name="pullwatch test CA").cert_pem.write_to_path(str(path))
    return path


def test_load_ca_cert_reads_a_pem_file_and_refuses_anything_else(
    private_ca: Path, tmp_path: Path
) -> None:
    from pullwatch.hub.tls import CaCertError, load_ca_cert

    assert load_ca_cert(private_ca).startswith("-----BEGIN CERTIFICATE-----")
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    text = tmp_path / "text.pem"
    text.write_text("hello\n")
    cases = {
        tmp_path / "missing.pem": "no such file",
        tmp_path: "is a directory",
        text: "no PEM certificate in it",
        broken: "not a readable PEM certificate",
    }
    for path, reason in cases.items():
        with pytest.raises(CaCertError) as caught:
            load_ca_cert(path, what="config ca_cert")
        message = str(caught.value)
        assert message.startswith(f"config ca_cert {path}: {reason}"), message
        assert "\n" not in message
        assert isinstance(caught.value, ConfigurationError)  # a one-line error for the CLI


def test_the_trust_follows_the_environment_and_adds_the_ca_cert(private_ca: Path) -> None:
    import ssl

    import truststore

    from pullwatch.hub.tls import TrustConfig, build_context, load_ca_cert

    system = TrustConfig.from_environment({})
    assert system.describe() == "the system trust store"
    assert isinstance(build_context(system), truststore.SSLContext)  # the OS store, as pip

    env = TrustConfig.from_environment({"SSL_CERT_FILE": str(private_ca)})
    assert env.describe() == f"SSL_CERT_FILE={private_ca}"
    context = build_context(env)  # exactly SSL_CERT_FILE, as OpenSSL reads it
    assert not isinstance(context, truststore.SSLContext)
    assert context.cert_store_stats()["x509_ca"] == 1
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname

    extra = TrustConfig.from_environment(
        {"SSL_CERT_FILE": str(private_ca)}, ca_pem=load_ca_cert(private_ca), ca_file="x.pem"
    )
    assert extra.describe() == f"SSL_CERT_FILE={private_ca} and --ca-cert x.pem"
    assert build_context(extra).cert_store_stats()["x509_ca"] == 1  # the same CA, once


async def test_a_trust_store_is_never_loaded_for_plain_http(
    simhub: SimHubServer, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pullwatch.hub import pool
    from pullwatch.hub.tls import TrustConfig

    def refuse(*args: object) -> None:
        raise AssertionError("a TLS context was built for a plain-http registry")

    monkeypatch.setattr(pool, "build_context", refuse)
    trust = TrustConfig(cert_file="/nonexistent/ca.pem")
    async with client_for(simhub, clock, trust=trust) as client:
        result = await client.probe(ANON)
    assert result.reading.state is State.OK


async def test_an_unloadable_trust_store_is_a_tls_error_not_a_crash(clock: ManualClock) -> None:
    from pullwatch.hub.tls import TrustConfig

    trust = TrustConfig(cert_file="/nonexistent/ca.pem")
    async with HubClient("https://127.0.0.1:9", clock=clock, timeouts=FAST, trust=trust) as client:
        result = await client.probe(ANON)
    reading = result.reading
    assert (reading.state, reading.error_kind) == (State.ERROR, ErrorKind.TLS)
    assert reading.detail == (
        "registry ping: SSL_CERT_FILE=/nonexistent/ca.pem: cannot load it: No such file or "
        "directory"
    )
