"""The simulated Docker Hub, over real HTTP: protocol, buckets, faults, admin, loader."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures_simhub import (
    ALICE,
    ANONYMOUS_LIMIT,
    BOB,
    EGRESS_IP,
    ERIN,
    MANIFEST_PATH,
    PERSONAL_LIMIT,
    REPOSITORY,
    SCOPE,
    SERVICE,
    WINDOW,
    Credentials,
)
from pullwatch.clock import ManualClock
from pullwatch.simhub import Faults, HubModel, SimHubServer, load_accounts, serve_main
from pullwatch.simhub.jwt import decode_unverified
from pullwatch.simhub.server import HAP429_BODY, HUGE_BODY_SIZE

RFC3339_NANOS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


@pytest.fixture
def http(simhub: SimHubServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simhub.url, timeout=5) as client:
        yield client


def get_token(http: httpx.Client, creds: Credentials | None = None, service: str = SERVICE) -> str:
    response = http.get(
        "/token", params={"service": service, "scope": SCOPE}, auth=tuple(creds) if creds else None
    )
    assert response.status_code == 200, response.text
    return response.json()["token"]


def head(http: httpx.Client, token: str | None, path: str = MANIFEST_PATH) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.head(path, headers=headers)


def claims(token: str) -> dict[str, Any]:
    return decode_unverified(token)[1]


def read_http_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of one response read off a raw socket (Content-Length framing)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "connection closed mid-response"
        data += chunk
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head_bytes, re.IGNORECASE)[1])
    while len(body) < length:
        body += sock.recv(4096)
    return head_bytes, body


# -- ping and token -------------------------------------------------------------------------


def test_ping_answers_a_bearer_challenge_pointing_back(
    simhub: SimHubServer, http: httpx.Client
) -> None:
    response = http.get("/v2/")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="{simhub.url}/token",service="{SERVICE}"'
    )
    assert simhub.url.startswith("http://127.0.0.1:")
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert response.headers["date"] == "Mon, 30 Nov 2026 12:00:00 GMT"  # the model's clock
    assert simhub.model.counters["ping"] == 1


def test_ping_with_a_valid_token_answers_200(simhub: SimHubServer, http: httpx.Client) -> None:
    token = get_token(http)
    response = http.get("/v2/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {}


def test_anonymous_token_has_docker_shape_and_claims(
    simhub: SimHubServer, http: httpx.Client, clock: ManualClock
) -> None:
    response = http.get("/token", params={"service": SERVICE, "scope": SCOPE})
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    assert RFC3339_NANOS.match(body["issued_at"])
    assert body["issued_at"] == "2026-11-30T12:00:00.000000000Z"
    segments = body["token"].split(".")
    assert len(segments) == 3 and not any("=" in s for s in segments)
    payload = claims(body["token"])
    assert payload["sub"] == ""
    assert payload["aud"] == SERVICE
    assert payload["iss"] == "auth.docker.io"
    assert payload["iat"] == payload["nbf"] == int(clock.time())
    assert payload["exp"] == payload["iat"] + 300
    assert payload["jti"].startswith("dckr_jti_")
    assert payload["access"] == [
        {
            "type": "repository",
            "name": REPOSITORY,
            "actions": ["pull"],
            "parameters": {"pull_limit": "100", "pull_limit_interval": "21600"},
        }
    ]
    assert simhub.model.token_requests_by_user[""] == 1


def test_basic_tokens_carry_account_claims(simhub: SimHubServer, http: httpx.Client) -> None:
    alice = claims(get_token(http, ALICE))
    assert alice["sub"] == simhub.model.account("alice").uuid
    assert alice["access"][0]["parameters"] == {
        "pull_limit": "200",
        "pull_limit_interval": "21600",
    }
    bob = claims(get_token(http, BOB))
    assert bob["sub"] == simhub.model.account("bob").uuid
    assert "parameters" not in bob["access"][0]  # unmetered: no pull_limit claim
    assert claims(get_token(http, ERIN))["jti"] != alice["jti"]
    assert simhub.model.token_requests_by_user == {"alice": 1, "bob": 1, "erin": 1}


@pytest.mark.parametrize(
    "auth",
    [
        ("alice", "wrong"),
        ("mallory", "alice-pat"),
        ("alice@example.com", "alice-pat"),
        ("alice", ""),
    ],
)
def test_bad_credentials_answer_401_with_details(
    simhub: SimHubServer, http: httpx.Client, auth: tuple[str, str]
) -> None:
    response = http.get("/token", params={"service": SERVICE, "scope": SCOPE}, auth=auth)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"details": "incorrect username or password"}
    assert simhub.model.token_requests_by_user[auth[0]] == 1


def test_undecodable_basic_header_is_bad_credentials(http: httpx.Client) -> None:
    response = http.get("/token", headers={"Authorization": "Basic !!!not-base64"})
    assert response.status_code == 401
    assert response.json()["details"] == "incorrect username or password"


def test_wrong_service_token_is_issued_but_rejected(
    simhub: SimHubServer, http: httpx.Client
) -> None:
    token = get_token(http, ALICE, service="registry-1.docker.io")
    assert claims(token)["aud"] == "registry-1.docker.io"
    response = head(http, token)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert f'scope="{SCOPE}"' in challenge
    assert simhub.model.head_requests_by_user["alice"] == 1


# -- HEAD probes ----------------------------------------------------------------------------


def test_head_without_token_is_challenged_with_scope(http: httpx.Client) -> None:
    response = head(http, None)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.endswith(f',service="{SERVICE}",scope="{SCOPE}"')
    assert "error=" not in challenge
    assert response.headers["docker-ratelimit-source"] == EGRESS_IP


def test_head_anonymous_reports_ip_bucket_and_spends_nothing(
    simhub: SimHubServer, http: httpx.Client
) -> None:
    response = head(http, get_token(http))
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"] == (
        "application/vnd.docker.distribution.manifest.v1+prettyjws"
    )
    assert response.headers["docker-content-digest"].startswith("sha256:")
    assert int(response.headers["content-length"]) > 0
    assert response.headers["ratelimit-limit"] == "100;w=21600"
    assert response.headers["ratelimit-remaining"] == "100;w=21600"
    assert response.headers["docker-ratelimit-source"] == EGRESS_IP
    assert simhub.model.remaining("anonymous") == ANONYMOUS_LIMIT
    assert simhub.model.pull_times("anonymous") == []
    assert simhub.model.counters["head"] == 1
    assert simhub.model.head_requests_by_user[""] == 1


def test_head_personal_and_unlimited(simhub: SimHubServer, http: httpx.Client) -> None:
    simhub.model.consume("alice", 24)
    alice = head(http, get_token(http, ALICE))
    assert alice.status_code == 200
    assert alice.headers["ratelimit-limit"] == "200;w=21600"
    assert alice.headers["ratelimit-remaining"] == "176;w=21600"
    assert alice.headers["docker-ratelimit-source"] == simhub.model.account("alice").uuid

    bob = head(http, get_token(http, BOB))
    assert bob.status_code == 200
    assert not [name for name in bob.headers if "ratelimit-" in name and "source" not in name]
    assert bob.headers["docker-ratelimit-source"] == simhub.model.account("bob").uuid


def test_head_exhausted_answers_429_or_200_with_zero(
    simhub: SimHubServer, http: httpx.Client
) -> None:
    token = get_token(http, ERIN)
    response = head(http, token)
    assert response.status_code == 429
    assert response.content == b""
    assert response.headers["ratelimit-remaining"] == "0;w=21600"
    assert response.headers["ratelimit-limit"] == "200;w=21600"
    assert response.headers["docker-ratelimit-source"] == simhub.model.account("erin").uuid

    simhub.model.faults.head_429_when_exhausted = False
    older = head(http, token)
    assert older.status_code == 200
    assert older.headers["ratelimit-remaining"] == "0;w=21600"
    assert simhub.model.remaining("erin") == 0


def test_a_repository_the_token_does_not_grant_is_insufficient_scope(
    simhub: SimHubServer, http: httpx.Client
) -> None:
    """As distribution: the access controller runs before the repository is looked up, and
    Hub's token service grants pull only on repositories that exist."""
    token = get_token(http, ALICE)  # grants ratelimitpreview/test only
    simhub.model.add_repository("library/alpine")
    for name in ("nope/nothing", "library/alpine"):  # missing; present but not in the token
        refused = head(http, token, f"/v2/{name}/manifests/latest")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == (
            f'Bearer realm="{simhub.url}/token",service="{SERVICE}",'
            f'scope="repository:{name}:pull",error="insufficient_scope"'
        )


def test_a_missing_tag_or_digest_is_404_manifest_unknown(
    simhub: SimHubServer, http: httpx.Client
) -> None:
    simhub.model.add_repository(REPOSITORY, ("v1",))
    token = get_token(http, ALICE)
    tagged = head(http, token, f"/v2/{REPOSITORY}/manifests/v1")
    assert tagged.status_code == 200
    digest = tagged.headers["docker-content-digest"]
    assert head(http, token, f"/v2/{REPOSITORY}/manifests/{digest}").status_code == 200
    missing = http.get(
        f"/v2/{REPOSITORY}/manifests/v2", headers={"Authorization": f"Bearer {token}"}
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json; charset=utf-8"
    assert missing.json() == {
        "errors": [
            {"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": {"Tag": "v2"}}
        ]
    }
    assert head(http, token, f"/v2/{REPOSITORY}/manifests/sha256:{'0' * 64}").status_code == 404
    assert simhub.model.counters["manifest_get"] == 1  # the GET above: reset for teardown
    simhub.model.reset_counters()


def test_expired_token_is_invalid(
    simhub: SimHubServer, http: httpx.Client, clock: ManualClock
) -> None:
    token = get_token(http, ALICE)
    clock.advance(299)
    assert head(http, token).status_code == 200
    clock.advance(1)
    response = head(http, token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


# -- buckets --------------------------------------------------------------------------------


def test_rolling_window_recovers_as_the_clock_advances(
    simhub: SimHubServer, http: httpx.Client, clock: ManualClock
) -> None:
    model = simhub.model
    start = clock.time()
    assert model.consume("alice", 5) == 5
    clock.advance(100)
    model.consume("alice", 3)
    assert model.remaining("alice") == 192
    assert model.pull_times("alice") == [start] * 5 + [start + 100] * 3

    clock.set(start + WINDOW)  # the first five leave the window
    assert model.remaining("alice") == 197
    clock.advance(100)
    assert model.remaining("alice") == PERSONAL_LIMIT
    assert model.pull_times("alice") == []

    erin_token = get_token(http, ERIN)
    assert head(http, erin_token).headers["ratelimit-remaining"] == "200;w=21600"


def test_consume_caps_at_the_limit_and_knows_who(simhub: SimHubServer) -> None:
    model = simhub.model
    assert model.consume("anonymous", 30) == 30
    assert model.remaining("anonymous") == 70
    assert model.consume("anonymous", 500) == 70  # a refused pull is not a pull
    assert model.remaining("anonymous") == 0
    assert model.consume("bob", 1000) == 1000  # unmetered: recorded, never limited
    assert model.remaining("bob") is None
    assert len(model.pull_times("bob")) == 1000
    with pytest.raises(KeyError, match="mallory"):
        model.consume("mallory")


def test_window_and_limit_change_at_runtime(
    simhub: SimHubServer, http: httpx.Client, clock: ManualClock
) -> None:
    model = simhub.model
    model.anonymous_claim_window = WINDOW  # the token keeps claiming 6 h (seen live in 2026)
    model.consume("anonymous", 10)
    clock.advance(3600)
    model.consume("anonymous", 4)
    model.set_policy("anonymous", window=3600)
    token = get_token(http)
    response = head(http, token)
    assert response.headers["ratelimit-limit"] == "100;w=3600"
    assert response.headers["ratelimit-remaining"] == "96;w=3600"  # the first 10 are too old
    assert claims(token)["access"][0]["parameters"]["pull_limit_interval"] == "21600"

    model.set_policy("anonymous", window=WINDOW)  # the old pulls count again
    assert model.remaining("anonymous") == 86
    model.set_policy("alice", limit=10, window=60)
    model.consume("alice", 3)
    alice = head(http, get_token(http, ALICE))
    assert alice.headers["ratelimit-limit"] == "10;w=60"
    assert alice.headers["ratelimit-remaining"] == "7;w=60"
    model.set_policy("alice", limit=None)
    assert model.remaining("alice") is None


def test_ipv6_egress_is_charged_per_64(simhub: SimHubServer, http: httpx.Client) -> None:
    model = simhub.model
    token = get_token(http)  # issued while egress was IPv4: charged where it comes from now
    model.egress_ip = "2001:db8:1:2::7"
    model.consume("anonymous", 5)
    model.egress_ip = "2001:db8:1:2:ffff::1"  # same /64: same bucket
    response = head(http, token)
    assert response.headers["docker-ratelimit-source"] == "2001:db8:1:2::/64"
    assert response.headers["ratelimit-remaining"] == "95;w=21600"
    model.egress_ip = "2001:db8:1:3::7"  # another /64: another bucket
    assert head(http, token).headers["ratelimit-remaining"] == "100;w=21600"
    model.egress_ip = EGRESS_IP
    assert model.remaining("anonymous") == ANONYMOUS_LIMIT
    with pytest.raises(ValueError):
        model.egress_ip = "not-an-ip"


def test_concurrent_consume_is_exact(simhub: SimHubServer) -> None:
    def pull_many() -> None:
        for _ in range(25):
            simhub.model.consume("alice")

    threads = [threading.Thread(target=pull_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert simhub.model.remaining("alice") == 0
    assert len(simhub.model.pull_times("alice")) == PERSONAL_LIMIT


# -- manifest GET: a real pull --------------------------------------------------------------


def test_manifest_get_is_counted_and_spends_a_pull(
    simhub: SimHubServer, http: httpx.Client
) -> None:
    model = simhub.model
    token = get_token(http, ALICE)
    got = http.get(MANIFEST_PATH, headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200
    assert (
        got.headers["docker-content-digest"] == head(http, token).headers["docker-content-digest"]
    )
    assert json.loads(got.content)["schemaVersion"] == 1
    assert got.headers["ratelimit-remaining"] == "199;w=21600"
    assert model.remaining("alice") == 199

    erin = get_token(http, ERIN)
    refused = http.get(MANIFEST_PATH, headers={"Authorization": f"Bearer {erin}"})
    assert refused.status_code == 429
    error = refused.json()["errors"][0]
    assert error["code"] == "TOOMANYREQUESTS"
    assert f"as 'erin': {claims(erin)['jti']}." in error["message"]
    assert error["message"].endswith("https://www.docker.com/increase-rate-limit")

    model.consume("anonymous", ANONYMOUS_LIMIT)
    anon = http.get(MANIFEST_PATH, headers={"Authorization": f"Bearer {get_token(http)}"})
    assert "unauthenticated pull rate limit" in anon.json()["errors"][0]["message"]

    assert model.counters["manifest_get"] == 3
    assert model.counters["head"] == 1
    model.counters["manifest_get"] = 0  # deliberate GETs: tell the fixture


# -- faults ---------------------------------------------------------------------------------


def test_latency_is_added_before_answers(simhub: SimHubServer, http: httpx.Client) -> None:
    simhub.model.faults.latency = 0.2
    started = time.monotonic()
    assert http.get("/v2/").status_code == 401
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(
    ("endpoint", "path", "status", "content_type"),
    [
        ("ping", "/v2/", 503, "application/json; charset=utf-8"),
        ("token", "/token", 500, "application/json"),
        ("token", "/token", 429, "application/json"),
        ("ping", "/v2/", 502, "text/html"),
        ("any", "/v2/", 504, "text/html"),
    ],
)
def test_forced_status(
    simhub: SimHubServer,
    http: httpx.Client,
    endpoint: str,
    path: str,
    status: int,
    content_type: str,
) -> None:
    simhub.model.faults.status[endpoint] = status
    simhub.model.faults.retry_after[endpoint] = 7
    response = http.get(path)
    assert response.status_code == status
    assert response.headers["retry-after"] == "7"
    assert response.headers["content-type"] == content_type
    if content_type.startswith("application/json"):
        body = response.json()
        assert ("details" in body) if endpoint == "token" else ("errors" in body)


def test_forced_status_on_head_has_no_body(simhub: SimHubServer, http: httpx.Client) -> None:
    token = get_token(http)
    simhub.model.faults.status["head"] = 503
    response = head(http, token)
    assert response.status_code == 503
    assert response.content == b""
    assert "retry-after" not in response.headers
    assert http.get("/v2/").status_code == 401  # other endpoints untouched


def test_hap429_abuse_limit(simhub: SimHubServer, http: httpx.Client) -> None:
    token = get_token(http)
    simhub.model.faults.hap429 = {"token", "head"}
    response = http.get("/token")
    assert response.status_code == 429
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["retry-after"] == "60"
    assert response.content == HAP429_BODY == b"Too Many Requests (HAP429)."
    probe = head(http, token)
    assert probe.status_code == 429
    assert probe.headers["retry-after"] == "60"
    assert probe.content == b""
    assert "ratelimit-remaining" not in probe.headers


def test_reset_sends_part_then_rst(simhub: SimHubServer, http: httpx.Client) -> None:
    simhub.model.faults.reset.add("ping")
    with pytest.raises(httpx.TransportError):
        http.get("/v2/")
    with socket.create_connection(("127.0.0.1", simhub.port), timeout=2) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        with pytest.raises(ConnectionResetError):  # an RST, not a clean FIN
            while chunk := sock.recv(4096):
                received += chunk
        assert not received.endswith(b"}")  # never the whole answer


def test_drip_sends_a_byte_at_a_time(simhub: SimHubServer) -> None:
    simhub.model.faults.drip["ping"] = 0.05
    with socket.create_connection(("127.0.0.1", simhub.port), timeout=2) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        received = b""
        while len(received) < 5:
            received += sock.recv(4096)
        assert received.startswith(b"HTTP/")
        assert len(received) <= 6
        assert time.monotonic() - started >= 0.15
    simhub.model.faults.drip = {"any": 0.5}
    with (
        httpx.Client(base_url=simhub.url, timeout=httpx.Timeout(5, read=0.2)) as slow,
        pytest.raises(httpx.ReadTimeout),
    ):
        slow.get("/token")


def test_hang_never_answers(simhub: SimHubServer) -> None:
    simhub.model.faults.hang.add("head")
    started = time.monotonic()
    with (
        httpx.Client(base_url=simhub.url, timeout=0.5) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.head(MANIFEST_PATH)
    assert time.monotonic() - started < 2
    assert simhub.model.counters["head"] == 1


def test_stop_is_prompt_with_a_hanging_handler(clock: ManualClock) -> None:
    model = HubModel(clock)
    model.faults.hang.add("any")
    server = SimHubServer(model).start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.get(server.url + "/v2/", timeout=10)
        except httpx.HTTPError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 2
    while model.counters["ping"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert model.counters["ping"] == 1
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1
    caller.join(timeout=2)
    assert not caller.is_alive()
    assert errors and isinstance(errors[0], httpx.TransportError)
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/v2/", timeout=1)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("missing", {}),
        ("empty", {"ratelimit-limit": [";w=21600"], "ratelimit-remaining": [";w=21600"]}),
        ("malformed", {"ratelimit-limit": ["lots;w=abc"]}),
        (
            "duplicated",
            {"ratelimit-limit": ["200;w=21600"] * 2, "ratelimit-remaining": ["200;w=21600"] * 2},
        ),
        ("enormous", {"ratelimit-limit": ["99999999999999999999999;w=21600"]}),
        ("x_prefixed", {"x-ratelimit-limit": ["200;w=21600"], "ratelimit-limit": []}),
        ("policy_list", {"ratelimit-limit": ["200;w=21600, 10;w=60"]}),
    ],
)
def test_ratelimit_header_modes(
    simhub: SimHubServer, http: httpx.Client, mode: str, expected: dict[str, list[str]]
) -> None:
    token = get_token(http, ALICE)
    simhub.model.faults.ratelimit_headers = mode
    response = head(http, token)
    assert response.status_code == 200
    for name, values in expected.items():
        assert response.headers.get_list(name) == values
    if mode == "missing":
        assert "ratelimit-limit" not in response.headers
        assert "ratelimit-remaining" not in response.headers
    assert response.headers["docker-ratelimit-source"] == simhub.model.account("alice").uuid


def test_ratelimit_mixed_case_and_no_source(simhub: SimHubServer, http: httpx.Client) -> None:
    token = get_token(http)
    simhub.model.faults.ratelimit_headers = "mixed_case"
    names = [name for name, _ in head(http, token).headers.raw]
    assert b"RateLimit-Limit" in names and b"RateLimit-Remaining" in names
    simhub.model.faults.ratelimit_headers = "no_source"
    response = head(http, token)
    assert "docker-ratelimit-source" not in response.headers
    assert response.headers["ratelimit-limit"] == "100;w=21600"


@pytest.mark.parametrize(
    ("mode", "check"),
    [
        ("missing_token", lambda b: "token" not in b and "access_token" not in b),
        ("token_only", lambda b: "token" in b and "access_token" not in b),
        ("access_token_only", lambda b: "access_token" in b and "token" not in b),
        ("no_expires", lambda b: "expires_in" not in b and "token" in b),
        ("expires_zero", lambda b: b["expires_in"] == 0),
        ("expires_huge", lambda b: b["expires_in"] == 10**12),
        ("not_object", lambda b: isinstance(b, list)),
    ],
)
def test_token_body_modes(simhub: SimHubServer, http: httpx.Client, mode: str, check: Any) -> None:
    simhub.model.faults.token_body = mode
    response = http.get("/token", params={"service": SERVICE, "scope": SCOPE})
    assert response.status_code == 200
    assert check(response.json())


def test_token_body_malformed_and_html(simhub: SimHubServer, http: httpx.Client) -> None:
    simhub.model.faults.token_body = "malformed"
    broken = http.get("/token")
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    simhub.model.faults.token_body = "html"
    portal = http.get("/token")
    assert portal.status_code == 200
    assert portal.headers["content-type"].startswith("text/html")
    assert portal.text.startswith("<html>")


@pytest.mark.parametrize(
    ("mode", "status", "header"),
    [
        ("missing", 401, None),
        ("garbage", 401, '=?garbage?= realm"/token'),
        ("basic", 401, 'Basic realm="Docker Registry"'),
        ("no_auth", 200, None),
    ],
)
def test_challenge_modes(
    simhub: SimHubServer, http: httpx.Client, mode: str, status: int, header: str | None
) -> None:
    simhub.model.faults.challenge = mode
    response = http.get("/v2/")
    assert response.status_code == status
    assert response.headers.get("www-authenticate") == header


def test_invalid_token_on_head(simhub: SimHubServer, http: httpx.Client) -> None:
    token = get_token(http, ALICE)
    simhub.model.faults.invalid_token_on_head = True
    response = head(http, token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_redirect_loop(simhub: SimHubServer, http: httpx.Client) -> None:
    simhub.model.faults.redirect_loop.add("token")
    first = http.get("/token?service=x")
    assert first.status_code == 302
    assert first.headers["location"] == f"{simhub.url}/token?service=x"
    with pytest.raises(httpx.TooManyRedirects):
        http.get("/token?service=x", follow_redirects=True)
    assert simhub.model.counters["token"] >= 3


def test_huge_body_is_streamed(simhub: SimHubServer, http: httpx.Client) -> None:
    token = get_token(http)
    simhub.model.faults.huge_body = {"token", "head"}
    with http.stream("GET", "/token") as response:
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == HUGE_BODY_SIZE
        received = b""
        for chunk in response.iter_raw():
            received += chunk
            if len(received) >= 256 * 1024:
                break
    assert received.startswith(b'{"token":"AAAA')
    probe = head(http, token)  # a HEAD only announces the length
    assert probe.status_code == 200
    assert probe.headers["content-length"] == str(HUGE_BODY_SIZE)
    assert probe.content == b""


def test_faults_reset_and_validate(simhub: SimHubServer, http: httpx.Client) -> None:
    faults = simhub.model.faults
    faults.hap429.add("any")
    faults.ratelimit_headers = "enormous"
    faults.latency = 0.01
    assert http.get("/v2/").status_code == 429
    simhub.model.reset_faults()
    assert faults == Faults()
    assert http.get("/v2/").status_code == 401
    with pytest.raises(ValueError, match="ratelimit_headers"):
        faults.ratelimit_headers = "nonsense"
    with pytest.raises(ValueError, match="unknown fault switch"):
        faults.update({"latncy": 1})


def test_a_handler_crash_is_recorded_not_printed(
    simhub: SimHubServer, http: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    simhub.model.faults.update({"status": {"ping": "boom"}})  # not a status: the handler fails
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/v2/")
    assert len(simhub.model.server_errors) == 1
    assert "ValueError" in simhub.model.server_errors[0]
    assert capsys.readouterr().err == ""
    simhub.model.server_errors.clear()


# -- admin and plumbing ---------------------------------------------------------------------


def test_admin_endpoints_are_not_counted(simhub: SimHubServer, http: httpx.Client) -> None:
    http.get("/v2/")
    pulled = http.post("/_sim/pull", params={"who": "alice", "n": 5})
    assert pulled.json() == {"who": "alice", "recorded": 5, "remaining": 195}
    assert http.post("/_sim/pull").json()["remaining"] == 99  # anonymous, one pull
    state = http.get("/_sim/state").json()
    assert state["counters"]["ping"] == 1
    assert state["counters"]["manifest_get"] == 0
    buckets = {b["who"]: b for b in state["buckets"]}
    assert buckets["alice"]["remaining"] == 195
    assert buckets["erin"]["used"] == 200
    assert buckets["bob"]["limit"] is None
    assert buckets["anonymous"]["source"] == EGRESS_IP

    assert http.post("/_sim/pull", params={"who": "mallory"}).status_code == 404
    assert http.post("/_sim/pull", params={"n": "lots"}).status_code == 400
    assert http.get("/_sim/nothing").status_code == 404
    faults = http.post("/_sim/faults", json={"hap429": ["ping"], "latency": 0.0})
    assert faults.json()["hap429"] == ["ping"]
    assert http.get("/v2/").status_code == 429
    assert http.post("/_sim/faults", json={"bogus": 1}).status_code == 400
    assert http.post("/_sim/reset-faults").status_code == 200
    assert http.post("/_sim/reset-counters").json() == {"ok": True}
    assert simhub.model.counters["ping"] == 0
    assert simhub.model.counters["other"] == 0


def test_keep_alive_serves_several_requests_on_one_connection(simhub: SimHubServer) -> None:
    with socket.create_connection(("127.0.0.1", simhub.port), timeout=2) as sock:
        for _ in range(3):
            sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            head_bytes, body = read_http_response(sock)
            assert head_bytes.startswith(b"HTTP/1.1 401 ")
            assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"
    assert simhub.model.counters["ping"] == 3


def test_many_concurrent_pooled_clients(simhub: SimHubServer) -> None:
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with httpx.Client(base_url=simhub.url, timeout=5, limits=limits) as client:
        token = get_token(client, ALICE)
        statuses: list[int] = []

        def probe() -> None:
            for _ in range(20):
                statuses.append(head(client, token).status_code)

        threads = [threading.Thread(target=probe) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [200] * 320
    assert simhub.model.head_requests_by_user["alice"] == 320
    assert simhub.model.remaining("alice") == PERSONAL_LIMIT


def test_unknown_paths_count_as_other(simhub: SimHubServer, http: httpx.Client) -> None:
    unroutable = http.get("/nothing/here")
    assert unroutable.status_code == 404
    assert unroutable.headers["content-type"] == "text/plain; charset=utf-8"
    assert unroutable.text == "404 page not found\n"
    assert unroutable.headers["docker-distribution-api-version"] == "registry/2.0"
    assert http.post("/token").status_code == 404
    assert http.get(f"/v2/{REPOSITORY}/manifests/bad!tag").status_code == 404
    assert simhub.model.counters["manifest_get"] == 1  # a GET on /manifests/ always counts
    simhub.model.reset_counters()
    assert http.get("/v2", follow_redirects=False).headers["location"] == "/v2/"
    assert simhub.model.counters["other"] == 1
    assert simhub.model.counters["token"] == 0


def test_tags_list_and_blobs_answer_as_distribution(
    simhub: SimHubServer, http: httpx.Client
) -> None:
    assert http.get(f"/v2/{REPOSITORY}/tags/list").status_code == 401
    simhub.model.add_repository(REPOSITORY, ("v1",))
    bearer = {"Authorization": f"Bearer {get_token(http, ALICE)}"}
    listing = http.get(f"/v2/{REPOSITORY}/tags/list", headers=bearer)
    assert listing.json() == {"name": REPOSITORY, "tags": ["latest", "v1"]}
    blob = http.get(f"/v2/{REPOSITORY}/blobs/sha256:{'0' * 64}", headers=bearer)
    assert (blob.status_code, blob.json()["errors"][0]["code"]) == (404, "BLOB_UNKNOWN")
    put = http.put(f"/v2/{REPOSITORY}/manifests/latest", headers=bearer)
    assert (put.status_code, put.json()["errors"][0]["code"]) == (405, "UNSUPPORTED")
    assert simhub.model.counters["manifest_get"] == 0


# -- accounts file and the CLI entry point --------------------------------------------------


def test_load_accounts_good_file(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(
        "[anonymous]\nlimit = 10\nwindow = 3600\n\n"
        '[[account]]\nusername = "ci"\nsecret = "ci-pat"\nlimit = 200\nused = 150\n\n'
        '[[account]]\nusername = "corp"\nsecret = "corp-pat"\n'
        'uuid = "11111111-2222-3333-4444-555555555555"\n',
        encoding="utf-8",
    )
    model = load_accounts(path, clock)
    assert model.quota("anonymous").limit == 10
    assert model.quota("anonymous").window == 3600
    assert model.remaining("ci") == 50
    assert model.account("ci").window == 21600
    assert model.remaining("corp") is None
    assert model.account("corp").uuid == "11111111-2222-3333-4444-555555555555"
    assert model.authenticate("ci", "ci-pat") is model.account("ci")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[account]\n", "invalid TOML"),
        ('[[account]]\nusername = "a"\nsecret = "b"\nlimt = 5\n', "unknown key 'limt'"),
        ('[[account]]\nusername = "a@b.io"\nsecret = "b"\n', "e-mail"),
        ('[[account]]\nusername = "a"\nsecret = "b"\nlimit = "many"\n', "integer"),
        ('[[account]]\nusername = "a"\nsecret = "b"\nwindow = 0\n', "at least 1"),
        ('[[account]]\nusername = "a"\n', "required"),
        (
            '[[account]]\nusername = "a"\nsecret = "b"\n'
            '[[account]]\nusername = "a"\nsecret = "c"\n',
            "duplicate",
        ),
        ("anonymous = 5\n", "must be a table"),
    ],
)
def test_load_accounts_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        load_accounts(path)
    assert "\n" not in str(caught.value)


def test_load_accounts_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        load_accounts(tmp_path / "absent.toml")


def test_serve_main_rejects_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[account]\n", encoding="utf-8")
    assert serve_main(path, "127.0.0.1", 0, 0.0) == 2
    err = capsys.readouterr().err
    assert err.startswith("pullwatch simhub: ") and err.count("\n") == 1


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_main_runs_until_interrupted(stop_signal: signal.Signals) -> None:
    code = (
        "from pullwatch.simhub import serve_main\n"
        "raise SystemExit(serve_main(None, '127.0.0.1', 0, 0.0))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"simhub listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        response = httpx.get(match[1] + "/token", auth=("alice", "alice-pat"), timeout=5)
        assert response.status_code == 200
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "Traceback" not in stderr


def test_two_named_hubs_share_a_name_and_each_answers_its_own_client(tmp_path: Path) -> None:
    """What lets snapshot runs share a machine: each hub takes a free port, both say they are
    http://simhub.localhost (the URL a snapshot shows), and each runtime reaches its own."""
    from pullwatch.demo import start_demo
    from pullwatch.simhub.named import SIMHUB_NAME

    first, second = (
        start_demo(clock=ManualClock(), traffic=False, workdir=tmp_path / d, name=SIMHUB_NAME)
        for d in "ab"
    )
    try:
        assert first.server.url == second.server.url == "http://simhub.localhost"
        assert first.server.port != second.server.port
        second.model.consume("anonymous", 10)  # only the second hub's anonymous bucket
        readings = [demo.runtime.probe_round(["anonymous"])[0] for demo in (first, second)]
        assert [r.remaining for r in readings] == [76, 66]
        assert [demo.model.counters["head"] for demo in (first, second)] == [1, 1]
    finally:
        first.close()
        second.close()
