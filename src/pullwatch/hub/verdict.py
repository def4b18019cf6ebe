"""One HEAD answer -> a `Reading`: the measured state, the quota, the reason (pure).

The verdict states what the registry answered, and only that (docs/protocol.md, "The headers"
and "429 answers"):

- `ok` / `exhausted` only with a valid quota: two whole numbers, 0 <= remaining <= limit.
  Malformed, missing, negative, absurd or contradictory values give `unknown`, with the raw
  values kept and the reason said; pullwatch never guesses a number.
- no rate-limit headers at all: `unmetered` (on Docker Hub a paid plan or an exempt image; on
  another registry, simply no Docker Hub limit to report).
- a HEAD 429 with headers that show pulls left is the abuse limit (`throttled`); with 0 left,
  `exhausted`; without headers a HEAD 429 cannot say which, so it is `exhausted` with nothing
  remaining invented (`assess` reads it as `throttled` for an identity known to be unmetered).
- whether a valid quota is `low` is the user's threshold, decided by `assess`, not here.
"""

from __future__ import annotations

from collections.abc import Sequence

from pullwatch.hub.errors import status_phrase
from pullwatch.hub.headers import (
    RateLimitHeaders,
    header_lookup,
    parse_challenge,
    parse_ratelimit_headers,
    parse_retry_after,
)
from pullwatch.hub.urls import ManifestRef
from pullwatch.reading import AMBIGUOUS_429, ErrorKind, Reading, State, Step
from pullwatch.redact import one_line


def head_verdict(
    status: int,
    parsed: RateLimitHeaders,
    *,
    anonymous: bool,
    manifest: ManifestRef,
    docker_hub: bool,
    retry_after: float | None,
    challenge_header: str | None,
) -> tuple[State, str | None, ErrorKind | None]:
    """State, reason and error kind of one HEAD answer."""
    problem = parsed.quota_problem()
    limit = parsed.limit.count if parsed.limit else None
    remaining = parsed.remaining.count if parsed.remaining else None
    wait = f"; retry after {retry_after:.0f} s" if retry_after else ""
    if status == 429:
        if problem is None and remaining is not None and remaining > 0:
            return (
                State.THROTTLED,
                f"HEAD answered 429 while {remaining} pulls remain: the abuse limit (HAP429), "
                f"not the pull quota{wait}",
                None,
            )
        if problem is None and remaining == 0:
            return State.EXHAUSTED, f"HEAD answered 429: 0 of {limit} pulls left{wait}", None
        if parsed.metered:
            return (
                State.EXHAUSTED,
                f"HEAD answered 429; rate-limit headers unreadable ({problem}){wait}",
                ErrorKind.MALFORMED,
            )
        return State.EXHAUSTED, f"{AMBIGUOUS_429} (a HEAD has no body to tell){wait}", None
    if 200 <= status < 300:
        if not parsed.metered:
            if docker_hub:
                return State.UNMETERED, "no rate-limit headers (paid plan or exempt)", None
            return (
                State.UNMETERED,
                "no rate-limit headers: this registry does not report Docker Hub's pull limit",
                None,
            )
        if problem is not None:
            return (
                State.UNKNOWN,
                f"quota unknown, rate-limit headers unreadable: {problem}",
                ErrorKind.MALFORMED,
            )
        if remaining == 0:
            return State.EXHAUSTED, f"0 of {limit} pulls left", None
        return State.OK, None, None
    if status == 401:
        challenge = parse_challenge(challenge_header)
        error = challenge.error if challenge else None
        if error == "insufficient_scope":
            who = "anonymous pulls are" if anonymous else "this login is"
            return (
                State.AUTH_FAILED,
                f"not allowed to pull {manifest.name} (insufficient_scope): {who} not granted "
                "this repository (private, or it does not exist)",
                None,
            )
        said = one_line(error or "401 Unauthorized", 60)
        return State.AUTH_FAILED, f"registry rejected the token ({said})", None
    if status == 404:
        return (
            State.ERROR,
            f"no manifest {manifest.display} (repository or tag not found): check --repository",
            ErrorKind.NOT_FOUND,
        )
    return State.ERROR, f"HEAD answered {status_phrase(status)}{wait}", ErrorKind.HTTP


def reading_from_head(
    label: str,
    username: str | None,
    *,
    checked_at: float,
    status: int,
    headers: Sequence[tuple[str, str]],
    latency_ms: float | None,
    manifest: ManifestRef,
    registry: str,
    docker_hub: bool,
    token_expires_at: float | None = None,
) -> tuple[Reading, RateLimitHeaders]:
    """Classify one HEAD answer into a Reading (pure)."""
    parsed = parse_ratelimit_headers(headers)
    found = header_lookup(headers)
    retry_after = parse_retry_after(found.get("retry-after"), checked_at)
    state, detail, kind = head_verdict(
        status,
        parsed,
        anonymous=username is None,
        manifest=manifest,
        docker_hub=docker_hub,
        retry_after=retry_after,
        challenge_header=found.get("www-authenticate"),
    )
    valid = parsed.metered and parsed.quota_problem() is None
    detail = None if detail is None else one_line(detail, 200)
    reading = Reading(
        label=label,
        username=username,
        checked_at=checked_at,
        state=state,
        limit=parsed.limit.count if valid and parsed.limit else None,
        remaining=parsed.remaining.count if valid and parsed.remaining else None,
        window_seconds=parsed.window,
        source=parsed.source,
        http_status=status,
        latency_ms=latency_ms,
        error_kind=kind,
        detail=detail,
        retry_after=retry_after,
        raw_limit=parsed.limit.raw if parsed.limit else None,
        raw_remaining=parsed.remaining.raw if parsed.remaining else None,
        token_expires_at=token_expires_at,
        step=Step.HEAD,
        registry=registry,
        repository=manifest.display,
        docker_hub=docker_hub,
    )
    return reading, parsed
