"""advice.advise(): a meaning and next steps for every state; explain(): pasted error lines."""

from __future__ import annotations

import pytest

from pullwatch.advice import STATE_MEANINGS, advise
from pullwatch.explain import explain
from pullwatch.reading import ErrorKind, Reading, State

ACCOUNT = "186e63fa-1b6a-4c51-9f12-61a26f0a9c01"
OTHER_ACCOUNT = "5d0c2b8e-77a4-4f0e-8e2d-3c1f9b6a4e21"
IP = "203.0.113.7"

# The scanner error of the article pullwatch started from (docs/protocol.md), verbatim.
SEED_LINE = (
    "failed to retrieve repository TESTORG* tags, error failed to query "
    "https://registry-1.docker.io/v2/TESTORG*/tags/list, error failed to query "
    "https://registry-1.docker.io/v2/TESTORG*/tags/list, Too Many Requests Too Many Requests "
    "(HAP429)"
)


def reading(label: str = "r", username: str | None = None, **fields: object) -> Reading:
    values: dict[str, object] = {"checked_at": 1_000.0, "state": State.OK}
    values.update(fields)
    return Reading(label=label, username=username, **values)  # type: ignore[arg-type]


def joined(steps: tuple[str, ...]) -> str:
    return "\n".join(steps)


def test_exhausted_anonymous_says_authenticate_who_has_room_and_when() -> None:
    spent = reading(
        "anonymous", state=State.EXHAUSTED, limit=100, remaining=0, window_seconds=21600, source=IP
    )
    others = [
        spent,
        reading("ci-bot", "cibot", limit=200, remaining=180, window_seconds=21600, source=ACCOUNT),
        reading("release", "rel", state=State.UNMETERED, source=OTHER_ACCOUNT),
        reading("scanner", "scan", state=State.EXHAUSTED, remaining=0, source="e8a1f4c2" * 4),
    ]
    advice = advise(spent, others)
    text = joined(advice.steps)
    assert "anonymous pulls" in advice.meaning
    assert advice.steps[0].startswith("Authenticate")
    assert "100 pulls per 6 h" in text and "200 per 6 h" in text
    assert "the live limit here is 100 per 6 h" in text
    assert "Room now: release (not metered), ci-bot (180/200 left)" in text
    assert "scanner (" not in text  # no room there
    assert "within 6 h at the latest" in text
    assert "pullwatch plan" in text


def test_recovers_in_is_shown_as_an_upper_bound() -> None:
    spent = reading("anonymous", state=State.EXHAUSTED, limit=100, remaining=0, source=IP)
    text = joined(advise(spent, recovers_in=11 * 60 + 5).steps)
    assert "next pull comes back ≤ 12m" in text
    assert "estimate" in text
    text = joined(advise(spent, recovers_in=5 * 3600 + 12 * 60).steps)
    assert "≤ 5h12m" in text


def test_exhausted_personal_says_another_account_paid_plan_or_a_mirror() -> None:
    spent = reading(
        "scanner", "scanbot", state=State.EXHAUSTED, limit=200, remaining=0, source=ACCOUNT
    )
    text = joined(advise(spent).steps)
    assert "another account" in text and "paid plan" in text
    assert "pull-through cache or mirror" in text
    assert "Authenticate" not in text  # already authenticated
    assert "Room now" not in text  # no other identities were given


def test_room_elsewhere_skips_identities_in_the_same_bucket() -> None:
    spent = reading("a", "u1", state=State.EXHAUSTED, limit=200, remaining=0, source=ACCOUNT)
    twin = reading("b", "u1", state=State.OK, limit=200, remaining=50, source=ACCOUNT)
    assert "No other identity has room" in joined(advise(spent, [spent, twin]).steps)


def test_abuse_limit_is_not_the_pull_quota_and_honours_retry_after() -> None:
    throttled = reading(
        state=State.THROTTLED,
        detail="HEAD answered 429 while 40 pulls remain: the abuse limit (HAP429)",
        retry_after=60.0,
    )
    advice = advise(throttled)
    text = joined(advice.steps)
    assert "HAP429" in advice.meaning and "Not the pull quota" in advice.meaning
    assert "Slow the client down" in text
    assert "wait 60 s" in text
    assert "does not lift it" in text


def test_token_endpoint_429_says_reuse_tokens() -> None:
    throttled = reading(state=State.THROTTLED, detail="token endpoint: rate-limited (429)")
    advice = advise(throttled)
    assert "token endpoint" in advice.meaning
    assert "Reuse tokens" in advice.steps[0]


def test_auth_failed_lists_the_usual_causes() -> None:
    failed = reading(
        "old", "oldbot", state=State.AUTH_FAILED, detail="incorrect username or password"
    )
    text = joined(advise(failed).steps)
    assert "Docker ID" in text and "not the e-mail address" in text
    assert "expired or was revoked" in text
    assert "two-factor" in text and "personal access token" in text
    assert "about 10 minutes" in text
    invalid = reading(
        "old",
        "oldbot",
        state=State.AUTH_FAILED,
        detail="registry rejected the token (invalid_token)",
    )
    assert "invalid_token" in advise(invalid).steps[0]


def test_unmetered_means_paid_or_exempt() -> None:
    paid = advise(reading("release", "rel", state=State.UNMETERED, source=ACCOUNT))
    assert "paid plan" in paid.meaning and "no quota" in paid.meaning.lower()
    assert paid.steps == ()
    anonymous = advise(reading("anonymous", state=State.UNMETERED, source=IP))
    assert "exempt" in anonymous.meaning


def test_credentials_not_applied_comes_first() -> None:
    charged_to_ip = reading("ci", "cibot", limit=100, remaining=60, window_seconds=21600, source=IP)
    steps = advise(charged_to_ip).steps
    assert steps and steps[0].startswith("Fix the identity")
    assert IP in steps[0]
    spent = reading("ci", "cibot", state=State.EXHAUSTED, limit=100, remaining=0, source=IP)
    steps = advise(spent).steps
    assert steps[0].startswith("Fix the identity")
    assert not any(s.startswith("Authenticate") for s in steps)
    assert "anonymous pulls" in advise(spent).meaning


@pytest.mark.parametrize(
    ("kind", "detail", "needle"),
    [
        (ErrorKind.SECRET, "secret unavailable: no keyring", "keyring"),
        (ErrorKind.TLS, "certificate verify failed", "TLS"),
        (ErrorKind.NOT_FOUND, "no manifest x/y:latest (not found)", "--repository"),
        (ErrorKind.HTTP, "HEAD answered 503 Service Unavailable", "dockerstatus"),
        (ErrorKind.CONNECT, "connection refused", "HTTPS_PROXY"),
    ],
)
def test_errors_point_at_the_cause(kind: ErrorKind, detail: str, needle: str) -> None:
    steps = advise(reading(state=State.ERROR, error_kind=kind, detail=detail)).steps
    assert len(steps) == 1 and needle in steps[0]


def test_every_state_has_a_meaning_and_ok_needs_nothing() -> None:
    for state in State:
        assert advise(reading(state=state)).meaning
    assert set(STATE_MEANINGS) == set(State)
    assert advise(reading(limit=100, remaining=90, source=IP)).steps == ()
    assert advise(reading(state=State.UNKNOWN)).steps == ()


# -- explain ---------------------------------------------------------------------------------------


def test_the_seeds_line_is_the_abuse_limit() -> None:
    found = explain(SEED_LINE)
    assert found.kind == "abuse_limit"
    assert "not the pull rate limit" in found.limit
    assert "tags listing" in found.meaning  # tags/list is not a pull
    assert any("Retry-After" in step for step in found.steps)
    assert "(HAP429)" in found.excerpt


def test_docker_pull_limit_lines() -> None:
    anonymous = explain(
        "Error response from daemon: toomanyrequests: You have reached your unauthenticated pull "
        "rate limit. https://www.docker.com/increase-rate-limit"
    )
    assert anonymous.kind == "pull_limit_anonymous"
    assert anonymous.steps[0].startswith("Authenticate")
    generic = explain(
        "toomanyrequests: You have reached your pull rate limit. You may increase the limit by "
        "authenticating and upgrading: https://www.docker.com/increase-rate-limit"
    )
    assert generic.kind == "pull_limit"
    assert "pull-through cache" in "\n".join(generic.steps)


def test_authenticated_pull_limit_is_redacted() -> None:
    line = (
        "429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate "
        "limit as 'alice': dckr_jti_Zm9vYmFyYmF6cXV4MTIz. You may increase the limit by upgrading."
    )
    found = explain(line)
    assert found.kind == "pull_limit_authenticated"
    shown = found.as_text() + str(found.to_json())
    assert "dckr_jti_Zm9vYmFyYmF6cXV4MTIz" not in shown
    assert "'alice'" not in shown
    assert "another account" in "\n".join(found.steps)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("Error: 429 Too Many Requests", "too_many_requests"),
        ("unauthorized: incorrect username or password", "auth_failed"),
        ('Bearer error="invalid_token"', "invalid_token"),
        ("pull access denied for acme/private, repository does not exist", "auth_required"),
        ("manifest unknown: manifest unknown", "not_found"),
        ("x509: certificate signed by unknown authority", "tls"),
        ("dial tcp: lookup registry-1.docker.io: no such host", "network"),
        ("received unexpected HTTP status: 503 Service Unavailable", "server_error"),
        ("the cat sat on the mat", "unknown"),
    ],
)
def test_other_lines(line: str, kind: str) -> None:
    found = explain(line)
    assert found.kind == kind
    assert found.recognised is (kind != "unknown")
    assert found.steps


def test_retry_after_is_read_from_the_paste() -> None:
    found = explain("HTTP/1.1 429 Too Many Requests (HAP429)\nRetry-After: 120")
    assert found.retry_after == 120
    assert any("wait 120 s" in step for step in found.steps)
