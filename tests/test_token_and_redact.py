"""Token response parsing, JWT claims, and redaction."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pullwatch.hub.token import (
    TokenParseError,
    decode_claims,
    parse_issued_at,
    parse_token_response,
)
from pullwatch.redact import one_line, redact, redact_headers, register_secret


def _jwt(payload: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


PAYLOAD = {
    "access": [
        {
            "type": "repository",
            "name": "ratelimitpreview/test",
            "actions": ["pull"],
            "parameters": {"pull_limit": "100", "pull_limit_interval": "21600"},
        }
    ],
    "aud": "registry.docker.io",
    "exp": 1_796_040_300,
    "iat": 1_796_040_000,
    "iss": "auth.docker.io",
    "jti": "dckr_jti_abcdef",
    "sub": "",
}


def test_docker_token_response() -> None:
    token = _jwt(PAYLOAD)
    body = json.dumps(
        {
            "token": token,
            "access_token": token,
            "expires_in": 300,
            "issued_at": "2026-11-30T12:00:00.689989417Z",
        }
    ).encode()
    grant = parse_token_response(body)
    assert grant.token == token
    assert grant.expires_in == 300
    assert grant.issued_at == pytest.approx(1_796_040_000.689989)
    assert grant.claims is not None
    assert grant.claims.subject == ""
    assert grant.claims.pull_limit is not None
    assert (grant.claims.pull_limit.limit, grant.claims.pull_limit.interval) == (100, 21600)
    assert grant.claims.scopes == ("repository:ratelimitpreview/test:pull",)
    assert grant.cache_lifetime() == 290.0  # renewed ~10 s early


def test_token_defaults_and_alternatives() -> None:
    only_access = parse_token_response(b'{"access_token": "opaque-token"}')
    assert only_access.token == "opaque-token"
    assert only_access.expires_in == 60  # the spec's default
    assert only_access.claims is None
    assert only_access.cache_lifetime() == 50.0


def test_token_lifetime_edge_cases() -> None:
    assert parse_token_response(b'{"token": "t", "expires_in": 0}').cache_lifetime() == 0.0
    assert parse_token_response(b'{"token": "t", "expires_in": 10}').cache_lifetime() == 5.0
    huge = parse_token_response(b'{"token": "t", "expires_in": 1000000000000}')
    assert huge.cache_lifetime() == 3600 - 10  # never trusted for more than an hour


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"<!DOCTYPE html><html>login</html>", "HTML page"),
        (b"[1, 2]", "not an object"),
        (b'{"expires_in": 300}', "without a token"),
        (b'{"token": "", "access_token": null}', "without a token"),
        (b'{"token": "a b"}', "not usable"),
        (b'{"token": "t", "expires_in": "soon"}', "expires_in"),
    ],
)
def test_token_parse_errors(body: bytes, message: str) -> None:
    with pytest.raises(TokenParseError, match=message):
        parse_token_response(body)


def test_issued_at_variants() -> None:
    assert parse_issued_at("2026-11-30T12:00:00Z") == 1_796_040_000.0
    assert parse_issued_at("2026-11-30T12:00:00.5+00:00") == 1_796_040_000.5
    assert parse_issued_at("yesterday") is None
    assert parse_issued_at(12) is None


def test_decode_claims_rejects_non_jwt() -> None:
    assert decode_claims("opaque") is None
    assert decode_claims("a.!!!.c") is None
    assert decode_claims("a." + base64.urlsafe_b64encode(b"[1]").decode() + ".c") is None


@given(st.binary(max_size=400))
def test_any_token_body_parses_or_raises_cleanly(body: bytes) -> None:
    try:
        grant = parse_token_response(body)
    except TokenParseError as exc:
        assert "\n" not in str(exc)
    else:
        assert grant.token and grant.cache_lifetime() >= 0


@given(st.text(max_size=300))
def test_any_token_string_decodes_or_none(token: str) -> None:
    claims = decode_claims(token)
    assert claims is None or isinstance(claims.access, tuple)


def test_redact_shapes() -> None:
    token = _jwt(PAYLOAD)
    assert token not in redact(f"Authorization: Bearer {token}")
    assert token not in redact(f"got {token} back")
    assert "dckr_jti_" in redact("limit as 'alice': dckr_jti_AbC-123. upgrade")
    assert "AbC-123" not in redact("limit as 'alice': dckr_jti_AbC-123. upgrade")
    assert "alice" not in redact("limit as 'alice': dckr_jti_AbC-123. upgrade")
    assert "hunter2" not in redact('{"password": "hunter2"}')
    assert "abc" not in redact("https://x/token?access_token=abc&y=1")
    assert "dckr_pat_" in redact("dckr_pat_2b3e1f9c-secret")
    assert "2b3e1f9c" not in redact("dckr_pat_2b3e1f9c-secret")
    assert redact("token endpoint answered 503") == "token endpoint answered 503"


def test_registered_literals_are_redacted_and_replaced() -> None:
    register_secret("test:literal", "s3cret-value-1")
    assert redact("oops s3cret-value-1 leaked") == "oops [redacted] leaked"
    register_secret("test:literal", "s3cret-value-2")
    assert "s3cret-value-2" not in redact("s3cret-value-2")
    register_secret("test:literal", None)
    assert redact("s3cret-value-2") == "s3cret-value-2"


def test_one_line_strips_terminal_escapes() -> None:
    text = one_line("bad\x1b[2J\x1b]0;title\x07 thing\r\nnext\ttab", 200)
    assert "\x1b" not in text and "\n" not in text and "\x07" not in text
    assert text == "bad thing next tab"
    assert len(one_line("x" * 500, 50)) == 50


def test_redact_headers() -> None:
    shown = redact_headers(
        [("Authorization", "Bearer abc.def.ghi"), ("Set-Cookie", "id=1"), ("X-Evil", "a\x1b[31mb")]
    )
    assert shown[0] == ("Authorization", "Bearer [redacted]")
    assert shown[1] == ("Set-Cookie", "[redacted]")
    assert shown[2] == ("X-Evil", "a b")
