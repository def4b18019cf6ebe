"""Renderings of assessments for the headless commands: a text table, JSON, the exit code, and
the token and HEAD checks.

Everything here renders an `Assessment` (or a check result); nothing re-derives what a reading
means. Imports stay light (no httpx): `pullwatch check` loads this module on every run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from pullwatch.advice import Advice, advise
from pullwatch.assess import Assessment
from pullwatch.durations import format_coarse, format_span, iso_time, minutes_up
from pullwatch.forecast import Forecast
from pullwatch.reading import ErrorKind, Reading, State, Step
from pullwatch.recovery import Recovery
from pullwatch.redact import one_line

if TYPE_CHECKING:
    from pullwatch.hub.client import Exchange, ProbeResult, TokenResult
    from pullwatch.hub.headers import RateValue


class ExitCode(IntEnum):
    """`pullwatch check` exit codes, as monitoring plugins (Nagios, Icinga...) expect."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


_STATE_COLOURS = {  # ANSI SGR: bad states bold, so they stand out without colour too
    State.OK: "32",
    State.LOW: "33;1",
    State.EXHAUSTED: "31;1",
    State.UNMETERED: "36",
    State.AUTH_FAILED: "31;1",
    State.THROTTLED: "35;1",
    State.ERROR: "31;1",
    State.UNKNOWN: "1",
}

# Failures that are the registry's or the network's, not one identity's: when every identity
# fails with the same one, the advice is said once for the registry.
_REGISTRY_WIDE = frozenset(
    {
        ErrorKind.DNS,
        ErrorKind.CONNECT,
        ErrorKind.TLS,
        ErrorKind.PLAIN_HTTP,
        ErrorKind.TIMEOUT,
        ErrorKind.NOT_FOUND,
    }
)


def assessment_code(
    assessment: Assessment, crit: int | None = 0, now: float | None = None
) -> ExitCode:
    """One identity's verdict. `low` already reflects the warning threshold in force; a bucket
    forecast to run out within `warn_within` is a warning too."""
    state = assessment.state
    if state in (State.EXHAUSTED, State.AUTH_FAILED):
        return ExitCode.CRITICAL
    quota = assessment.quota
    if quota is not None and not quota.stale and crit is not None and quota.remaining <= crit:
        return ExitCode.CRITICAL
    if state in (State.LOW, State.THROTTLED):
        return ExitCode.WARNING
    if state in (State.ERROR, State.UNKNOWN):
        return ExitCode.UNKNOWN
    when = assessment.reading.checked_at if now is None else now
    if state is State.OK and assessment.runs_out_soon(when):
        return ExitCode.WARNING
    return ExitCode.OK


def exit_code(
    assessments: Sequence[Assessment], crit: int | None = 0, now: float | None = None
) -> ExitCode:
    """The worst verdict: critical, then warning, then unknown, then ok."""
    codes = {assessment_code(a, crit, now) for a in assessments}
    for code in (ExitCode.CRITICAL, ExitCode.WARNING, ExitCode.UNKNOWN):
        if code in codes:
            return code
    return ExitCode.OK if assessments else ExitCode.UNKNOWN


def remaining_text(assessment: Assessment, now: float | None = None) -> str:
    """`76/100`, `unlimited`, `-`, or a stale value with its age: `76/100 (as of 3m ago)`.

    Another registry that sends no rate-limit headers is `not reported`, not `unlimited`: it
    does not report Docker Hub's limit (a mirror's upstream pulls still count on the Hub).
    """
    quota = assessment.quota
    unlimited = "unlimited" if assessment.reading.docker_hub else "not reported"
    if assessment.state is State.UNMETERED:
        return unlimited
    if quota is None:
        if assessment.unmetered:
            return f"{unlimited} (when last measured)"
        return "-"
    text = f"{quota.remaining}/{quota.limit}"
    if quota.stale:
        when = now if now is not None else assessment.reading.checked_at
        text += f" (as of {format_coarse(when - quota.as_of)} ago)"
    return text


def source_text(assessment: Assessment) -> str:
    source = assessment.reading.source
    if source is None and assessment.quota is not None:
        source = assessment.quota.source
    return source.display if source is not None else "-"


def window_text(assessment: Assessment) -> str:
    quota = assessment.quota
    window = quota.window_seconds if quota is not None else assessment.reading.window_seconds
    return format_span(window)


def render_table(
    assessments: Sequence[Assessment],
    *,
    color: bool = False,
    notes: Mapping[str, Sequence[str]] | None = None,
    footer: Sequence[str] = (),
    now: float | None = None,
) -> str:
    """A plain table, one identity per line, columns sized to their content; then `notes`
    (per identity label: warnings and next steps), one line each, then `footer` lines."""
    headers = ("IDENTITY", "STATE", "REMAINING", "WINDOW", "SOURCE", "LATENCY", "DETAIL")
    rows: list[tuple[str, ...]] = []
    for a in assessments:
        r = a.reading
        latency = f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "-"
        rows.append(
            (
                one_line(r.label, 64),
                a.state.label,
                remaining_text(a, now),
                window_text(a),
                one_line(source_text(a), 40),
                latency,
                one_line(a.reason or "", 160),
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for assessment, row in zip(assessments, rows, strict=True):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        if color:
            cells[1] = f"\x1b[{_STATE_COLOURS[assessment.state]}m{cells[1]}\x1b[0m"
        lines.append("  ".join(cells).rstrip())
    for assessment in assessments:
        for note in (notes or {}).get(assessment.label, ()):
            lines.append(f"{one_line(assessment.label, 64)}: {one_line(note, 300)}")
    lines.extend(one_line(line, 400) for line in footer)
    return "\n".join(lines)


def registry_wide_failure(assessments: Sequence[Assessment]) -> Assessment | None:
    """When every identity failed for the same registry-wide reason (registry down, DNS, TLS,
    a missing probe manifest), one of them stands for all; else None."""
    if len(assessments) < 2:
        return None
    kinds = {a.reading.error_kind for a in assessments if a.state is State.ERROR}
    if len(kinds) != 1 or any(a.state is not State.ERROR for a in assessments):
        return None
    kind = next(iter(kinds))
    return assessments[0] if kind in _REGISTRY_WIDE else None


def check_notes(
    assessments: Sequence[Assessment], now: float
) -> tuple[dict[str, list[str]], list[str]]:
    """What `check` prints under the table: per identity (bucket warnings, recovery, last known,
    next steps), and lines for the whole registry (said once, not once per identity)."""
    shared = registry_wide_failure(assessments)
    footer: list[str] = []
    if shared is not None:
        footer.append(f"every identity: {shared.reason or shared.state.label}")
        footer += [f"next: {step}" for step in shared.advice.steps]
    notes: dict[str, list[str]] = {}
    for a in assessments:
        lines = [f"warning: {message}" for message in a.warnings]
        recovery = recovery_line(a.recovery, now)
        if recovery and a.state in (State.LOW, State.EXHAUSTED):
            lines.append(recovery)
        outlook = forecast_line(a, now)
        if outlook:
            lines.append(outlook)
        if shared is None:
            lines += list(a.advice.steps)
        if lines:
            notes[a.label] = lines
    return notes, footer


def last_known_json(assessment: Assessment) -> dict[str, Any] | None:
    """The last reading that measured the quota, for `check --json` (null when none)."""
    last = assessment.last_known
    if last is None:
        return None
    return {
        "state": last.state.value,
        "limit": last.limit,
        "remaining": last.remaining,
        "window_seconds": last.window_seconds,
        "source": None if last.source is None else last.source.value,
        "checked_at": iso_time(last.checked_at),
    }


def assessment_json(assessment: Assessment) -> dict[str, Any]:
    """One identity in `check --json`: the measurement's keys, with the assessed state, plus
    what it means. `limit`/`remaining`/`window_seconds` are this probe's only (null when it
    failed); `last_known` holds the last good reading's, with its time."""
    document = assessment.reading.to_json()
    document["state"] = assessment.state.value
    document["detail"] = assessment.reason
    document["error"] = (
        assessment.reason
        if assessment.state in (State.AUTH_FAILED, State.THROTTLED, State.ERROR)
        or (assessment.state is State.UNKNOWN and assessment.reading.probed)
        else None
    )
    document.update(
        {
            "last_known": last_known_json(assessment),
            "insights": assessment.warnings,
            "recovery": recovery_json(assessment.recovery),
            "forecast": forecast_json(assessment.forecast, assessment.reading.checked_at),
            "advice": list(assessment.advice.steps),
        }
    )
    return document


def render_json(
    assessments: Sequence[Assessment],
    *,
    checked_at: float,
    registry: str,
    repository: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """The `check --json` document: every time ISO 8601 UTC, unknowns null."""
    document: dict[str, Any] = {
        "checked_at": iso_time(checked_at),
        "registry": registry,
        "repository": repository,
        "identities": [assessment_json(a) for a in assessments],
    }
    if extra:
        document.update(extra)
    return json.dumps(document, indent=2)


HEAD_DOES_NOT_COUNT = "HEAD requests do not count as pulls: this check spent none."


def _exchange_lines(exchanges: Sequence[Exchange], with_headers: bool) -> list[str]:
    lines: list[str] = []
    for ex in exchanges:
        if ex.status is not None:
            outcome = f"{ex.status}"
            if ex.latency_ms is not None:
                outcome += f" in {ex.latency_ms:.0f} ms"
        else:
            outcome = f"failed: {ex.error or 'no answer'}"
        lines.append(f"  {ex.method} {ex.url}")
        lines.append(f"    auth: {ex.auth}   -> {outcome}")
        if with_headers and ex.headers:
            lines.extend(f"    {name}: {value}" for name, value in ex.headers)
    return lines


def describe_token_check(result: TokenResult) -> str:
    """A token check as plain text (CLI output, and what the TUI copies)."""
    who = (
        f"{result.label} ({result.username})" if result.username else f"{result.label} (anonymous)"
    )
    lines = [f"Token check: {who}"]
    if result.ok and result.http_status is None:
        lines.append(f"  result: {result.detail}")
    elif result.ok:
        lines.append(
            f"  result: token issued, HTTP {result.http_status}"
            + (f" in {result.latency_ms:.0f} ms" if result.latency_ms is not None else "")
        )
        if result.expires_in is not None and result.expires_at is not None:
            lines.append(f"  expires in: {result.expires_in} s (at {iso_time(result.expires_at)})")
        if result.issued_at is not None:
            lines.append(f"  issued at: {iso_time(result.issued_at)}")
    else:
        lines.append(f"  result: {result.state.label}: {result.detail}")
        lines.extend(advice_lines(token_advice(result)))
    lines.append("Requests (secrets and tokens are never shown):")
    lines.extend(_exchange_lines(result.exchanges, with_headers=True))
    claims = result.claims
    if claims is not None:
        lines.append(
            "Token claims (decoded, unverified: hints; the registry's headers are the truth):"
        )
        lines.append(f"  sub: {claims.subject or '(empty: anonymous)'}")
        if claims.issuer:
            lines.append(f"  iss: {claims.issuer}")
        if claims.audience:
            lines.append(f"  aud: {claims.audience}")
        if claims.issued_at is not None:
            lines.append(f"  iat: {iso_time(claims.issued_at)}")
        if claims.expires_at is not None:
            lines.append(f"  exp: {iso_time(claims.expires_at)}")
        for scope in claims.scopes:
            lines.append(f"  access: {scope}")
        pull = claims.pull_limit
        if pull is not None:
            limit = "?" if pull.limit is None else str(pull.limit)
            lines.append(
                f"  pull_limit: {limit} per {pull.interval or '?'} s ({format_span(pull.interval)})"
            )
    return "\n".join(lines)


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def token_check_json(result: TokenResult) -> dict[str, Any]:
    claims = result.claims
    return {
        "label": result.label,
        "username": result.username,
        "ok": result.ok,
        "state": result.state.value,
        "detail": result.detail,
        "error": None if result.ok else result.detail,
        "error_kind": None if result.error_kind is None else result.error_kind.value,
        "http_status": result.http_status,
        "latency_ms": None if result.latency_ms is None else round(result.latency_ms, 1),
        "retry_after": result.retry_after,
        "expires_in": result.expires_in,
        "expires_at": None if result.expires_at is None else iso_time(result.expires_at),
        "issued_at": None if result.issued_at is None else iso_time(result.issued_at),
        "claims": None
        if claims is None
        else {
            "sub": claims.subject,
            "iss": claims.issuer,
            "aud": claims.audience,
            "iat": _whole(claims.issued_at),
            "exp": _whole(claims.expires_at),
            "access": [dict(a) for a in claims.access],
            "pull_limit": None
            if claims.pull_limit is None
            else {"limit": claims.pull_limit.limit, "interval": claims.pull_limit.interval},
        },
        "requests": [exchange_json(ex) for ex in result.exchanges],
        "advice": advice_json(token_advice(result)),
    }


def token_advice(result: TokenResult) -> Advice | None:
    """What a failed token request means and what to do; None when a token was issued."""
    if result.ok:
        return None
    reading = Reading(
        label=result.label,
        username=result.username,
        checked_at=0.0,
        state=result.state,
        http_status=result.http_status,
        error_kind=result.error_kind,
        detail=result.detail,
        retry_after=result.retry_after,
        step=Step.TOKEN,
        docker_hub=result.docker_hub,
    )
    return advise(reading)


def advice_lines(advice: Advice | None) -> list[str]:
    """`  meaning: ...` and `  next N. ...` lines (check output and copied check screens)."""
    if advice is None:
        return []
    lines = [f"  meaning: {one_line(advice.meaning, 400)}"]
    lines += [f"  next {n}. {one_line(step, 400)}" for n, step in enumerate(advice.steps, 1)]
    return lines


def advice_json(advice: Advice | None) -> dict[str, Any] | None:
    if advice is None:
        return None
    return {"meaning": advice.meaning, "steps": list(advice.steps)}


def exchange_json(ex: Exchange) -> dict[str, Any]:
    return {
        "step": ex.step.value,
        "method": ex.method,
        "url": ex.url,
        "auth": ex.auth,
        "status": ex.status,
        "latency_ms": None if ex.latency_ms is None else round(ex.latency_ms, 1),
        "error": ex.error,
        "headers": [[k, v] for k, v in ex.headers],
    }


def describe_head_check(result: ProbeResult, assessment: Assessment) -> str:
    """A HEAD check as plain text: the requests, the headers, the parse, the verdict."""
    r = result.reading
    who = f"{r.label} ({r.username})" if r.username else f"{r.label} (anonymous)"
    lines = [f"HEAD check: {who}", f"  {HEAD_DOES_NOT_COUNT}"]
    verdict = assessment.state.label + (f": {assessment.reason}" if assessment.reason else "")
    lines.append(f"  state: {verdict}")
    if r.step is not None and r.step is not Step.HEAD:
        lines.append(f"  decided by: the {r.step.phrase} (no HEAD answer to read)")
    lines.extend(advice_lines(assessment.advice))
    lines.append("Requests (secrets and tokens are never shown):")
    lines.extend(_exchange_lines(result.exchanges, with_headers=True))
    lines.append("Parsed:")
    rl = result.ratelimit
    if rl is None:
        lines.append("  (no HEAD answer to parse)")
    else:
        lines.append(f"  limit: {_rate(rl.limit)}")
        lines.append(f"  remaining: {_rate(rl.remaining)}")
        lines.append(
            f"  window: {format_span(rl.window)}"
            + (" (w=, rolling; no reset time is sent)" if rl.window else "")
        )
        problem = rl.quota_problem()
        if problem:
            lines.append(f"  quota: unreadable ({problem})")
        lines.append(f"  metered: {'yes' if rl.metered else 'no (no ratelimit headers)'}")
        source = rl.source
        lines.append(
            f"  source: {source.value} ({source.kind.value})" if source else "  source: (not sent)"
        )
    return "\n".join(lines)


def _rate(value: RateValue | None) -> str:
    if value is None:
        return "(header absent)"
    count = "unknown" if value.count is None else str(value.count)
    window = "" if value.window is None else f" per {value.window} s"
    return f"{count}{window}   raw: {value.raw!r}"


def head_check_json(result: ProbeResult, assessment: Assessment) -> dict[str, Any]:
    rl = result.ratelimit
    return {
        "reading": assessment_json(assessment),
        "head_counts_as_pull": False,
        "parsed": None
        if rl is None
        else {
            "metered": rl.metered,
            "limit": None if rl.limit is None else rl.limit.count,
            "remaining": None if rl.remaining is None else rl.remaining.count,
            "window_seconds": rl.window,
            "quota_problem": rl.quota_problem(),
            "source": None if rl.source is None else rl.source.value,
            "source_kind": None if rl.source is None else rl.source.kind.value,
        },
        "requests": [exchange_json(ex) for ex in result.exchanges],
        "advice": advice_json(assessment.advice),
    }


def recovery_json(recovery: Recovery | None) -> dict[str, Any] | None:
    """An estimate as JSON: upper bounds (ISO times), marked as estimates."""
    if recovery is None:
        return None
    return {
        "estimate": True,
        "deficit": recovery.deficit,
        "next_pull_back_by": None if recovery.next_at is None else iso_time(recovery.next_at),
        "full_by": None if recovery.full_at is None else iso_time(recovery.full_at),
        "window_seconds": recovery.window,
        "readings_used": recovery.readings_used,
    }


def forecast_json(forecast: Forecast | None, now: float) -> dict[str, Any] | None:
    """When the bucket runs out at the recent pace, as JSON; null when nothing is metered.

    `runs_out_at` is the earliest plausible time (alarm on it), `expected_at` the one at the
    pace seen; both ISO 8601 UTC or null (not draining, or no pace yet: `status` says which).
    """
    if forecast is None:
        return None
    return {
        "status": forecast.status.value,
        "per_hour": None if forecast.per_hour is None else round(forecast.per_hour, 1),
        "runs_out_at": None if forecast.runs_out_at is None else iso_time(forecast.runs_out_at),
        "expected_at": None if forecast.expected_at is None else iso_time(forecast.expected_at),
        "basis_seconds": round(forecast.basis_seconds),
        "pulls_seen": forecast.pulls_seen,
        "assumes_recent_pace": forecast.assumes_recent_pace,
        "text": forecast.text(now),
    }


def forecast_line(assessment: Assessment, now: float) -> str | None:
    """`forecast: runs out in ~25 min (12 pulls in the last 15 min; assumes the recent pace)`
    for a bucket that is being drained (or levels off); None when there is nothing to say."""
    forecast = assessment.forecast
    if forecast is None or not forecast.assumes_recent_pace:
        return None
    return f"forecast: {forecast.text(now)}"


def recovery_line(recovery: Recovery | None, now: float) -> str | None:
    """`recovery (estimate): next pull back <= 12m, full <= 5h13m` or None when nothing to say."""
    if recovery is None or not recovery.recovering:
        return None
    next_in, full_in = recovery.next_in(now) or 0.0, recovery.full_in(now) or 0.0
    return (
        f"recovery (estimate): next pull back <= {minutes_up(next_in)}, "
        f"full <= {minutes_up(full_in)}"
    )
