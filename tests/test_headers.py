"""Header, challenge and Retry-After parsing: known answers and properties (never raises)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pullwatch.durations import format_span
from pullwatch.hub.headers import (
    Challenge,
    RateLimitHeaders,
    parse_challenge,
    parse_rate_value,
    parse_ratelimit_headers,
    parse_retry_after,
)
from pullwatch.reading import SourceKind, parse_source

NOW = 1_796_040_000.0


def test_rate_value_plain() -> None:
    value = parse_rate_value("100;w=21600")
    assert (value.count, value.window, value.raw) == (100, 21600, "100;w=21600")


def test_rate_value_policy_list_takes_first_and_keeps_raw() -> None:
    value = parse_rate_value("100;w=21600, 10;w=60")
    assert (value.count, value.window) == (100, 21600)
    assert value.raw == "100;w=21600, 10;w=60"


def test_rate_value_empty_number_is_unknown_not_zero() -> None:
    value = parse_rate_value(";w=21600")
    assert value.count is None
    assert value.window == 21600


def test_rate_value_junk_and_enormous() -> None:
    assert parse_rate_value("lots;w=abc") == parse_rate_value("lots;w=abc")
    junk = parse_rate_value("lots;w=abc")
    assert (junk.count, junk.window) == (None, None)
    huge = parse_rate_value("99999999999999999999999;w=21600")
    assert huge.count is None and huge.window == 21600


def test_rate_value_whitespace_quotes_and_other_params() -> None:
    value = parse_rate_value(' "76" ; comment=x ; W = 3600 ')
    assert (value.count, value.window) == (76, 3600)


def test_rate_value_window_zero_is_unknown() -> None:
    assert parse_rate_value("5;w=0").window is None


def test_headers_case_insensitive_and_ratelimit_before_x_prefix() -> None:
    parsed = parse_ratelimit_headers(
        [
            ("X-RateLimit-Limit", "50;w=60"),
            ("RateLimit-Limit", "100;w=21600"),
            ("RATELIMIT-REMAINING", "76;w=21600"),
            ("Docker-RateLimit-Source", "192.0.2.1"),
        ]
    )
    assert parsed.limit is not None and parsed.limit.count == 100
    assert parsed.limit_header == "ratelimit-limit"
    assert parsed.remaining is not None and parsed.remaining.count == 76
    assert parsed.window == 21600
    assert parsed.metered
    assert parsed.source is not None and parsed.source.kind is SourceKind.IPV4


def test_headers_x_prefixed_only() -> None:
    parsed = parse_ratelimit_headers(
        {"x-ratelimit-limit": "100;w=3600", "x-ratelimit-remaining": "3;w=3600"}
    )
    assert parsed.limit is not None and parsed.limit.count == 100
    assert parsed.remaining is not None and parsed.remaining.count == 3
    assert parsed.window == 3600


def test_headers_absent_means_unmetered() -> None:
    parsed = parse_ratelimit_headers(
        {"content-type": "application/json", "docker-ratelimit-source": "a"}
    )
    assert not parsed.metered
    assert parsed.window is None


def test_duplicated_header_keeps_first() -> None:
    parsed = parse_ratelimit_headers(
        [("ratelimit-remaining", "7;w=21600"), ("ratelimit-remaining", "9;w=21600")]
    )
    assert parsed.remaining is not None and parsed.remaining.count == 7


def test_sources() -> None:
    account = parse_source("186E63FA-1B6A-4C51-9F12-61A26F0A9C01")
    assert account is not None and account.kind is SourceKind.ACCOUNT
    assert account.display == "account 186e63fa"
    v6 = parse_source("2001:db8:1:2::/64")
    assert v6 is not None and v6.kind is SourceKind.IPV6 and v6.value == "2001:db8:1:2::/64"
    v6_address = parse_source("2001:0db8:0001:0002:0000:0000:0000:0007")
    assert v6_address is not None and v6_address.value == "2001:db8:1:2::7"
    assert parse_source("") is None
    assert parse_source(None) is None
    other = parse_source("something else")
    assert other is not None and other.kind is SourceKind.OTHER and not other.is_ip


def test_docker_hub_challenge() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'
    )
    assert challenge == Challenge(
        "bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io"}
    )


def test_challenge_with_scope_error_and_escapes() -> None:
    challenge = parse_challenge(
        'bearer realm="https://a/t", service="s", scope="repository:x/y:pull",'
        ' error="invalid_token", note="say \\"hi\\""'
    )
    assert challenge is not None
    assert challenge.scope == "repository:x/y:pull"
    assert challenge.error == "invalid_token"
    assert challenge.params["note"] == 'say "hi"'


def test_challenge_stops_at_second_scheme_and_unquoted_values() -> None:
    challenge = parse_challenge("Basic realm=registry, Bearer realm=other")
    assert challenge == Challenge("basic", {"realm": "registry"})


def test_challenge_garbage() -> None:
    assert parse_challenge("") is None
    assert parse_challenge(None) is None
    assert parse_challenge("   ") is None
    assert parse_challenge('"quoted"') is None
    unterminated = parse_challenge('Bearer realm="https://x')
    assert unterminated is not None and unterminated.realm == "https://x"


def test_retry_after() -> None:
    assert parse_retry_after("60", NOW) == 60.0
    assert parse_retry_after(" 0 ", NOW) == 0.0
    assert parse_retry_after("Mon, 30 Nov 2026 12:02:00 GMT", NOW) == 120.0
    assert parse_retry_after("Mon, 30 Nov 2026 11:00:00 GMT", NOW) == 0.0  # in the past
    assert parse_retry_after("999999999", NOW) == 24 * 3600.0  # capped
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_format_span() -> None:
    assert format_span(21600) == "6 h"
    assert format_span(3600) == "1 h"
    assert format_span(5400) == "1 h 30 min"
    assert format_span(1080) == "18 min"
    assert format_span(45) == "45 s"
    assert format_span(None) == "-"


@given(st.text(max_size=300))
def test_any_rate_value_parses(text: str) -> None:
    value = parse_rate_value(text)
    assert value.count is None or 0 <= value.count <= 1_000_000_000
    assert value.window is None or value.window > 0
    assert len(value.raw) <= 200


@given(st.lists(st.tuples(st.text(max_size=40), st.text(max_size=200)), max_size=8))
def test_any_headers_parse(headers: list[tuple[str, str]]) -> None:
    parsed = parse_ratelimit_headers(headers)
    assert isinstance(parsed, RateLimitHeaders)
    assert parsed.metered == (parsed.limit is not None or parsed.remaining is not None)


_challenge_text = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda scheme, pairs: scheme + " " + ",".join(f'{k}="{v}"' for k, v in pairs),
        st.sampled_from(["Bearer", "Basic", "bearer", ""]),
        st.lists(st.tuples(st.text(min_size=1, max_size=10), st.text(max_size=30)), max_size=5),
    ),
)


@given(_challenge_text)
def test_any_challenge_parses(text: str) -> None:
    challenge = parse_challenge(text)
    assert challenge is None or (challenge.scheme and challenge.scheme == challenge.scheme.lower())


@given(st.text(max_size=60))
def test_any_retry_after_parses(text: str) -> None:
    seconds = parse_retry_after(text, NOW)
    assert seconds is None or 0.0 <= seconds <= 24 * 3600.0


@given(st.text(max_size=120))
def test_any_source_parses(text: str) -> None:
    source = parse_source(text)
    assert source is None or isinstance(source.display, str)


def test_manual_clock_with_real_monotonic() -> None:
    import time

    from pullwatch.clock import ManualClock

    clock = ManualClock(real_monotonic=True)
    before = time.monotonic()
    assert before <= clock.monotonic() <= time.monotonic()
    assert clock.time() == ManualClock.DEFAULT_START
