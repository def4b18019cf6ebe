"""Fuzzing with hypothesis: anything a registry, a proxy or a user's file can say yields a typed
result or a clean, one-line error - never an unhandled exception, never a leaked secret.

The pure parsers already have single-value properties (tests/test_headers.py,
tests/test_token_and_redact.py, tests/test_store.py); these go further:

- whole registry conversations (ping, token, HEAD answers with any status, headers and body)
  through the real `HubClient`, over an in-process transport: every probe and token check ends
  in a classified state with a one-line reason, and never in the "unexpected" catch-all;
- HEAD answers classified and then rendered everywhere a reading goes (table, JSON, advice);
- token JSON as structured documents with any field types, and JWT claims of any shape, rendered
  as the token check shows them;
- config files as TOML documents of any shape: a Config or a ConfigError, and an edit of a good
  one keeps everything it had; a bad one is never rewritten;
- Docker config files and credential-helper answers (identity import-docker);
- redaction: a registered secret or a dckr_jti id never survives `one_line`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pullwatch.assess import Policy, assess_all
from pullwatch.hub.client import Credentials, HubClient, Target, Timeouts
from pullwatch.hub.token import TokenParseError, decode_claims, parse_token_response
from pullwatch.hub.urls import parse_manifest_ref
from pullwatch.hub.verdict import reading_from_head
from pullwatch.identities.secrets import MemoryKeyring, SecretStore
from pullwatch.identities.store import Config, ConfigError, Identity, IdentityStore
from pullwatch.output import describe_token_check, render_json, render_table, token_check_json
from pullwatch.reading import ErrorKind, Reading, State
from pullwatch.redact import one_line, register_secret

REGISTRY = "http://127.0.0.1:5999"
EXAMPLES = {"client": 150, "head": 300, "token": 300, "claims": 200, "config": 150,
            "docker": 150, "redact": 200}  # fmt: skip

# -- strategies -------------------------------------------------------------------------------

# What can travel in an HTTP header value on the wire (latin-1, no CR/LF/NUL).
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=120,
)
rate_value = st.one_of(
    header_text,
    st.builds(
        lambda n, w, tail: f"{n};w={w}{tail}",
        st.one_of(st.integers(-5, 10**25).map(str), st.sampled_from(["", " ", "x", "1e3"])),
        st.one_of(st.integers(-5, 10**12).map(str), st.sampled_from(["", "abc", "0"])),
        st.sampled_from(["", ", 10;w=60", ";policy=x", ",", ";w=1;w=2"]),
    ),
)
challenge = st.one_of(
    header_text,
    st.builds(
        lambda scheme, realm, extra: f'{scheme} realm="{realm}"{extra}',
        st.sampled_from(["Bearer", "bearer", "Basic", "Digest", ""]),
        st.sampled_from([f"{REGISTRY}/token", "http://example.com/token", "ftp://x", "", "/t"]),
        st.sampled_from(
            [
                "",
                ',service="registry.docker.io"',
                ',error="invalid_token"',
                ",,",
                ',scope="repository:ratelimitpreview/test:pull"',
            ]
        ),
    ),
)
header_names = st.sampled_from(
    [
        "ratelimit-limit",
        "RateLimit-Remaining",
        "ratelimit-remaining",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "docker-ratelimit-source",
        "retry-after",
        "www-authenticate",
        "content-type",
        "location",
        "x-other",
    ]
)


def header_value(name: str) -> st.SearchStrategy[str]:
    if "ratelimit-" in name.lower() and "source" not in name:
        return rate_value
    if name == "www-authenticate":
        return challenge
    if name == "retry-after":
        return st.one_of(header_text, st.integers(-10, 10**12).map(str))
    return header_text


headers = st.lists(header_names.flatmap(lambda n: st.tuples(st.just(n), header_value(n))),
                   max_size=8)  # fmt: skip
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**15), 10**15),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)  # fmt: skip


def jwt_of(payload: Any) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{body}.c2ln"


claims_payload = st.fixed_dictionaries(
    {},
    optional={
        "access": st.one_of(json_values, st.lists(st.fixed_dictionaries({}, optional={
            "type": json_values, "name": json_values,
            "actions": st.one_of(json_values, st.lists(st.text(max_size=8), max_size=3)),
            "parameters": st.one_of(json_values, st.fixed_dictionaries({}, optional={
                "pull_limit": json_values, "pull_limit_interval": json_values}))}), max_size=3)),
        "exp": json_values, "iat": json_values, "sub": json_values, "iss": json_values,
        "aud": json_values, "jti": json_values,
    },
)  # fmt: skip
token_document = st.fixed_dictionaries(
    {},
    optional={
        "token": st.one_of(json_values, claims_payload.map(jwt_of), st.just("")),
        "access_token": st.one_of(json_values, claims_payload.map(jwt_of)),
        "expires_in": st.one_of(json_values, st.integers(-(10**20), 10**20),
                                st.floats(), st.sampled_from(["300", " 60 ", "1e3"])),
        "issued_at": st.one_of(json_values, st.sampled_from(
            ["2026-11-30T12:00:00.123456789Z", "2026-13-40T99:00:00Z", "yesterday"])),
    },
).map(lambda d: {**d, "extra": 1} if len(d) % 2 else d)  # fmt: skip
token_body = st.one_of(
    token_document.map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.sampled_from([b"<!DOCTYPE html><p>sign in</p>", b'{"token": "abc', b"", b"null"]),
)


@st.composite
def answers(draw: st.DrawFn) -> dict[str, tuple[int, list[tuple[str, str]], bytes]]:
    """One status, header list and body for each of ping, token and HEAD.

    Weighted so most conversations get past the ping and the token to the HEAD (a usable
    challenge and a usable token are likely), while any status and any bytes stay possible.
    """
    status = st.one_of(st.sampled_from([200, 401, 404, 429, 500, 502, 503, 302]),
                       st.integers(100, 599))  # fmt: skip
    ping_headers = draw(headers)
    if draw(st.integers(0, 3)):
        usable = f'Bearer realm="{REGISTRY}/token",service="registry.docker.io"'
        ping_headers.insert(0, ("www-authenticate", usable))
    usable_token = st.builds(
        lambda claims, expires: json.dumps({"token": jwt_of(claims), "expires_in": expires}),
        claims_payload, st.one_of(st.integers(-10, 10**6), st.none()),
    ).map(str.encode)  # fmt: skip

    def weighted(*usual: int) -> int:  # the usual statuses 3 times in 4, else any
        return draw(st.sampled_from(usual)) if draw(st.integers(0, 3)) else draw(status)

    return {
        "ping": (weighted(401, 401, 200), ping_headers, draw(st.binary(max_size=60))),
        "token": (weighted(200), draw(headers), draw(usable_token | usable_token | token_body)),
        "head": (weighted(200, 200, 429), draw(headers), b""),
    }


def wire(items: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in items]


# -- the whole client -------------------------------------------------------------------------


def assert_clean(detail: str | None) -> None:
    if detail is not None:
        assert "\n" not in detail and len(detail) <= 200
        assert not detail.startswith("probe failed: unexpected"), detail  # no unplanned path


@settings(max_examples=EXAMPLES["client"], deadline=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(script=answers(), secret=st.booleans())
def test_any_registry_conversation_ends_in_a_classified_state(
    script: dict[str, tuple[int, list[tuple[str, str]], bytes]], secret: bool
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        step = "head" if "/manifests/" in path else "token" if path == "/token" else "ping"
        seen.append(step)
        status, items, body = script[step]
        return httpx.Response(status, headers=wire(items), content=body)

    target = Target("fuzz", Credentials("fuzzer", "fuzz-secret-123") if secret else None)

    async def run() -> tuple[Any, Any]:
        async with HubClient(REGISTRY, timeouts=Timeouts(1, 1, 2),
                             transport=httpx.MockTransport(handler)) as client:  # fmt: skip
            return await client.probe(target), await client.check_token(target)

    probe, token = asyncio.run(run())
    reading = probe.reading
    assert isinstance(reading, Reading) and reading.state in State
    assert_invariants(reading)
    assert_clean(reading.detail)
    assert token.state in State and (token.ok == (token.state is State.OK))
    assert_clean(token.detail)
    assert "fuzz-secret-123" not in repr(probe) + repr(token) + (reading.detail or "")
    assert len(seen) <= 16  # a bounded number of requests, whatever the answers
    json.dumps(reading.to_json())
    json.dumps(token_check_json(token))
    describe_token_check(token)


# -- one HEAD answer, rendered everywhere ---------------------------------------------------------


@settings(max_examples=EXAMPLES["head"], deadline=None)
@given(
    status=st.integers(100, 599),
    items=headers,
    warn=st.one_of(st.none(), st.integers(0, 10**6)),
    anonymous=st.booleans(),
)
def test_any_head_answer_is_a_reading_that_renders(
    status: int, items: list[tuple[str, str]], warn: int | None, anonymous: bool
) -> None:
    reading, parsed = reading_from_head(
        "x", None if anonymous else "user", checked_at=1_796_040_000.0, status=status,
        headers=items, latency_ms=1.0, manifest=parse_manifest_ref("ratelimitpreview/test"),
        registry=REGISTRY, docker_hub=True,
    )  # fmt: skip
    assert reading.state in State
    assert_invariants(reading)
    assert_clean(reading.detail)
    for number in (reading.limit, reading.remaining, reading.window_seconds):
        assert number is None or 0 <= number <= 10**10
    assert reading.retry_after is None or 0 <= reading.retry_after <= 86400
    assert parsed.metered == (parsed.limit is not None or parsed.remaining is not None)
    assessed = assess_all([reading], policy=Policy(warn_below=warn))
    render_table(assessed)
    render_json(assessed, checked_at=0.0, registry=REGISTRY, repository="r/r")
    assert assessed[0].advice.meaning


def assert_invariants(reading: Reading) -> None:
    """The numbers never lie: `ok` (and `low`) only with a valid quota; `exhausted` with 0 left
    or from a HEAD 429, never with a number invented; `unknown` only with its reason."""
    if reading.state in (State.OK, State.LOW):
        assert reading.quota_valid and (reading.remaining or 0) > 0, reading
    if reading.state is State.EXHAUSTED:
        assert reading.remaining == 0 or (reading.http_status == 429 and reading.remaining is None)
    if reading.state is State.UNKNOWN:
        assert reading.detail and reading.error_kind is ErrorKind.MALFORMED, reading
    if reading.limit is not None or reading.remaining is not None:
        assert reading.quota_valid, reading


# -- token JSON and claims ----------------------------------------------------------------------


@settings(max_examples=EXAMPLES["token"], deadline=None)
@given(body=token_body)
def test_any_token_document_is_a_grant_or_a_clean_error(body: bytes) -> None:
    try:
        grant = parse_token_response(body)
    except TokenParseError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    assert grant.token and grant.token.isascii() and grant.token.isprintable()  # a header value
    assert " " not in grant.token
    lifetime = grant.cache_lifetime()
    assert math.isfinite(lifetime) and 0.0 <= lifetime <= 3600.0


@settings(max_examples=EXAMPLES["claims"], deadline=None)
@given(payload=st.one_of(claims_payload, json_values))
def test_any_claims_decode_and_render_like_a_token_check(payload: Any) -> None:
    from pullwatch.hub.client import TokenResult

    claims = decode_claims(jwt_of(payload))
    if not isinstance(payload, dict):
        assert claims is None
        return
    assert claims is not None
    claims.pull_limit  # noqa: B018 - properties must not raise
    assert all(isinstance(s, str) for s in claims.scopes)
    result = TokenResult(label="x", username="u", ok=True, state=State.OK, detail=None,
                         error_kind=None, exchanges=(), http_status=200, latency_ms=1.0,
                         expires_in=300, issued_at=None, expires_at=1_796_040_300.0,
                         claims=claims)  # fmt: skip
    describe_token_check(result)
    json.dumps(token_check_json(result), default=str)


# -- config files -------------------------------------------------------------------------------

setting_values = st.one_of(json_values, st.integers(-5, 1000), st.sampled_from(
    ["system", "cryptfile", "registry-1.docker.io", "", " "]))  # fmt: skip
identity_tables = st.fixed_dictionaries({}, optional={
    "label": st.one_of(st.sampled_from(["ci", "CI", "a b", "x" * 70, "ok-1"]), json_values),
    "username": st.one_of(st.sampled_from(["cibot", "a@b.c", "", "Ünï"]), json_values),
    "warn_below": st.one_of(st.integers(-3, 10**6), json_values),
    "password": st.text(max_size=5),
})  # fmt: skip
config_documents = st.fixed_dictionaries({}, optional={
    "version": st.one_of(st.integers(-1, 3), json_values),
    "settings": st.one_of(json_values, st.dictionaries(st.sampled_from(
        ["interval", "registry", "repository", "warn_below", "concurrency", "bell",
         "retention_days", "keyring", "colour"]), setting_values, max_size=4)),
    "identity": st.one_of(json_values, st.lists(identity_tables, max_size=4)),
    "other": json_values,
})  # fmt: skip


def toml_text(document: dict[str, Any]) -> bytes | None:
    def clean(value: Any) -> Any:  # TOML has no null: drop them, as a hand-written file would
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [clean(v) for v in value if v is not None]
        return value

    try:
        return tomli_w.dumps(clean(document)).encode()
    except (TypeError, ValueError):
        return None


@settings(max_examples=EXAMPLES["config"], deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(document=config_documents)
def test_any_config_document_loads_or_is_refused_and_kept(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    raw = toml_text(document)
    if raw is None:
        return
    path = tmp_path / "fuzz" / "config.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(raw)
    store = IdentityStore(path, SecretStore(MemoryKeyring(), timeout=0.5))
    try:
        config = store.load()
    except ConfigError as exc:
        assert str(exc).startswith(f"{path} line ") and "\n" not in str(exc)
        with pytest.raises(ConfigError):
            store.add(Identity("zz-new"))
        assert path.read_bytes() == raw  # a file it cannot read is never rewritten
        return
    assert isinstance(config, Config)
    label = "zz-new" if config.get("zz-new") is None else "zz-newer"
    edited = store.add(Identity(label))
    assert edited.identities == (*config.identities, Identity(label))
    assert edited.settings == config.settings  # nothing else changed or was lost
    assert tomllib.loads(path.read_text()).get("version", 1) == 1  # absent means format 1


# -- Docker config files (identity import-docker) -----------------------------------------------

docker_keys = st.one_of(
    st.sampled_from(["https://index.docker.io/v1/", "index.docker.io", "docker.io",
                     "https://index.docker.io/v1/access-token", "registry-1.docker.io",
                     "https://[::1", "http://[bad", "ghcr.io", ""]),
    st.text(max_size=30),
)  # fmt: skip
docker_auth = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={
        "auth": st.one_of(json_values, st.builds(
            lambda u, p: base64.b64encode(f"{u}:{p}".encode()).decode(),
            st.text(max_size=12), st.text(max_size=12))),
        "identitytoken": json_values, "username": json_values, "password": json_values,
    }),
)  # fmt: skip
docker_document = st.fixed_dictionaries({}, optional={
    "auths": st.one_of(json_values, st.dictionaries(docker_keys, docker_auth, max_size=3)),
    "credHelpers": st.one_of(json_values, st.dictionaries(
        docker_keys, st.one_of(st.text(max_size=12), json_values), max_size=3)),
    "credsStore": st.one_of(st.sampled_from(["desktop", "pass", "../evil", ""]), json_values),
})  # fmt: skip
helper_answers = st.one_of(  # what run_helper answers: a one-line problem, or a login
    st.builds(lambda p: ("problem", one_line(p) or "?"), st.text(min_size=1, max_size=40)),
    st.builds(lambda u: ("login", u), st.one_of(
        st.sampled_from(["cibot", "<token>", "a@b.c", "ok.user"]), st.text(max_size=12))),
)  # fmt: skip


@settings(max_examples=EXAMPLES["docker"], deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    body=st.one_of(docker_document.map(lambda d: json.dumps(d).encode()), st.binary(max_size=80)),
    answer=helper_answers,
)
def test_any_docker_config_is_a_lookup_or_a_clean_error(
    tmp_path: Path, body: bytes, answer: tuple[str, str]
) -> None:
    docker = pytest.importorskip("pullwatch.identities.docker_config")
    secret = "helper-secret-9f8e7d"
    path = tmp_path / "docker" / "config.json"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(body)

    def runner(name: str, server: str, **_: object) -> Any:
        kind, value = answer
        if kind == "problem":
            return docker.HelperAnswer(problem=value)
        return docker.HelperAnswer(username=value, secret=secret)

    try:
        config = docker.load_docker_config(path)
    except docker.DockerConfigError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    steps = docker.lookup_steps(config)
    assert all(isinstance(step.where, str) for step in steps)
    result = docker.find_hub_login(config, runner=runner)
    assert all("\n" not in note for note in result.notes)
    assert secret not in " ".join(result.notes)
    if result.login is not None:
        assert result.login.username and result.login.secret


# -- redaction ------------------------------------------------------------------------------------

secrets_text = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=6, max_size=40
)


@settings(max_examples=EXAMPLES["redact"], deadline=None)
@given(secret=secrets_text, jti=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-",
                                        min_size=4, max_size=30),
       user=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=20),
       around=st.text(max_size=40))  # fmt: skip
def test_registered_secrets_and_jti_ids_never_survive_one_line(
    secret: str, jti: str, user: str, around: str
) -> None:
    text = (f"{around} token={secret} as '{user}': dckr_jti_{jti}. {around}"
            f' {{"token": "{secret}"}} Bearer {secret}')  # fmt: skip
    # A "secret" that the rest of the text (or "[redacted]" itself) spells anyway proves nothing.
    assume(secret not in one_line(text.replace(secret, "\x00"), 10_000))
    register_secret("fuzz:secret", secret)
    try:
        shown = one_line(text, 10_000)
        assert secret not in shown
        assert f"dckr_jti_{jti}" not in shown
        assert f"'{user}'" not in shown
    finally:
        register_secret("fuzz:secret", None)
