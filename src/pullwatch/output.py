"""Renderings of readings for the headless commands: a text table, JSON, and the exit code."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Any

from pullwatch.advice import Advice, advise
from pullwatch.hub.client import Exchange, ProbeResult, TokenResult
from pullwatch.hub.headers import RateValue, format_window, parse_source
from pullwatch.hub.redact import one_line
from pullwatch.reading import Reading, State
from pullwatch.recovery import Recovery


class ExitCode(IntEnum):
    """`pullwatch check` exit codes, as monitoring plugins (Nagios, Icinga...) expect."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


STATE_LABELS = {
    State.OK: "ok",
    State.LOW: "low",
    State.EXHAUSTED: "exhausted",
    State.UNMETERED: "unmetered",
    State.AUTH_FAILED: "auth failed",
    State.THROTTLED: "throttled",
    State.ERROR: "error",
    State.UNKNOWN: "unknown",
}

_STATE_COLOURS = {  # ANSI SGR
    State.OK: "32",
    State.LOW: "33",
    State.EXHAUSTED: "31;1",
    State.UNMETERED: "36",
    State.AUTH_FAILED: "31",
    State.THROTTLED: "35",
    State.ERROR: "31",
    State.UNKNOWN: "2",
}


def iso_time(epoch: float) -> str:
    return (
        dt.datetime.fromtimestamp(epoch, dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def source_display(source: str | None) -> str:
    parsed = parse_source(source)
    return parsed.display if parsed else "-"


def reading_code(reading: Reading, crit: int | None = 0) -> ExitCode:
    """One reading's verdict. LOW already reflects the warning threshold in force."""
    if reading.state in (State.EXHAUSTED, State.AUTH_FAILED):
        return ExitCode.CRITICAL
    if reading.remaining is not None and crit is not None and reading.remaining <= crit:
        return ExitCode.CRITICAL
    if reading.state in (State.LOW, State.THROTTLED):
        return ExitCode.WARNING
    if reading.state in (State.ERROR, State.UNKNOWN):
        return ExitCode.UNKNOWN
    return ExitCode.OK


def exit_code(readings: Sequence[Reading], crit: int | None = 0) -> ExitCode:
    """The worst verdict: critical, then warning, then unknown, then ok."""
    codes = {reading_code(r, crit) for r in readings}
    for code in (ExitCode.CRITICAL, ExitCode.WARNING, ExitCode.UNKNOWN):
        if code in codes:
            return code
    return ExitCode.OK if readings else ExitCode.UNKNOWN


def remaining_text(reading: Reading) -> str:
    if reading.state is State.UNMETERED:
        return "unlimited"
    if reading.remaining is None and reading.limit is None:
        return "-"
    left = "?" if reading.remaining is None else str(reading.remaining)
    right = "?" if reading.limit is None else str(reading.limit)
    return f"{left}/{right}"


def render_table(
    readings: Sequence[Reading],
    *,
    color: bool = False,
    notes: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """A plain table, one identity per line, columns sized to their content; then `notes`
    (per identity label: warnings and next steps), one indented line each."""
    headers = ("IDENTITY", "STATE", "REMAINING", "WINDOW", "SOURCE", "LATENCY", "DETAIL")
    rows: list[tuple[str, ...]] = []
    for r in readings:
        latency = f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "-"
        rows.append(
            (
                r.label,
                STATE_LABELS[r.state],
                remaining_text(r),
                format_window(r.window_seconds),
                source_display(r.source),
                latency,
                one_line(r.detail or "", 160),
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for reading, row in zip(readings, rows, strict=True):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        if color:
            cells[1] = f"\x1b[{_STATE_COLOURS[reading.state]}m{cells[1]}\x1b[0m"
        lines.append("  ".join(cells).rstrip())
    for reading in readings:
        for note in (notes or {}).get(reading.label, ()):
            lines.append(f"{reading.label}: {one_line(note, 300)}")
    return "\n".join(lines)


def render_json(
    readings: Sequence[Reading],
    *,
    checked_at: float,
    registry: str,
    repository: str,
    extra: dict[str, Any] | None = None,
    per_identity: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The `check --json` document (design.md §3); `per_identity` adds keys by label."""
    document: dict[str, Any] = {
        "checked_at": iso_time(checked_at),
        "registry": registry,
        "repository": repository,
        "identities": [{**r.to_json(), **(per_identity or {}).get(r.label, {})} for r in readings],
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
    if result.ok:
        lines.append(
            f"  result: token issued, HTTP {result.http_status}"
            + (f" in {result.latency_ms:.0f} ms" if result.latency_ms is not None else "")
        )
        if result.expires_in is not None and result.expires_at is not None:
            lines.append(f"  expires in: {result.expires_in} s (at {iso_time(result.expires_at)})")
        if result.issued_at is not None:
            lines.append(f"  issued at: {iso_time(result.issued_at)}")
    else:
        lines.append(f"  result: {STATE_LABELS[result.state]}: {result.detail}")
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
                f"  pull_limit: {limit} per {pull.interval or '?'} s "
                f"({format_window(pull.interval)})"
            )
    return "\n".join(lines)


def token_check_json(result: TokenResult) -> dict[str, Any]:
    claims = result.claims
    return {
        "label": result.label,
        "username": result.username,
        "ok": result.ok,
        "state": result.state.value,
        "error": result.detail,
        "error_kind": None if result.error_kind is None else result.error_kind.value,
        "http_status": result.http_status,
        "latency_ms": result.latency_ms,
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
            "iat": claims.issued_at,
            "exp": claims.expires_at,
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
        "step": ex.step,
        "method": ex.method,
        "url": ex.url,
        "auth": ex.auth,
        "status": ex.status,
        "latency_ms": ex.latency_ms,
        "error": ex.error,
        "headers": [[k, v] for k, v in ex.headers],
    }


def describe_head_check(result: ProbeResult) -> str:
    """A HEAD check as plain text: the requests, the headers, the parse, the verdict."""
    r = result.reading
    who = f"{r.label} ({r.username})" if r.username else f"{r.label} (anonymous)"
    lines = [f"HEAD check: {who}", f"  {HEAD_DOES_NOT_COUNT}"]
    verdict = STATE_LABELS[r.state] + (f": {r.detail}" if r.detail else "")
    lines.append(f"  state: {verdict}")
    lines.extend(advice_lines(advise(r)))
    lines.append("Requests (secrets and tokens are never shown):")
    lines.extend(_exchange_lines(result.exchanges, with_headers=True))
    lines.append("Parsed:")
    rl = result.ratelimit
    if rl is None:
        lines.append("  (no answer to parse)")
    else:
        lines.append(f"  limit: {_rate(rl.limit)}")
        lines.append(f"  remaining: {_rate(rl.remaining)}")
        lines.append(
            f"  window: {format_window(rl.window)}"
            + (" (w=, rolling; no reset time is sent)" if rl.window else "")
        )
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


def head_check_json(result: ProbeResult) -> dict[str, Any]:
    rl = result.ratelimit
    return {
        "reading": result.reading.to_json(),
        "head_counts_as_pull": False,
        "parsed": None
        if rl is None
        else {
            "metered": rl.metered,
            "limit": None if rl.limit is None else rl.limit.count,
            "remaining": None if rl.remaining is None else rl.remaining.count,
            "window_seconds": rl.window,
            "source": None if rl.source is None else rl.source.value,
            "source_kind": None if rl.source is None else rl.source.kind.value,
        },
        "requests": [exchange_json(ex) for ex in result.exchanges],
        "advice": advice_json(advise(result.reading)),
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


def recovery_line(recovery: Recovery | None, now: float) -> str | None:
    """`recovery (estimate): next pull back <= 12m, full <= 5h13m` or None when nothing to say."""
    if recovery is None or not recovery.recovering:
        return None
    next_in, full_in = recovery.next_in(now) or 0.0, recovery.full_in(now) or 0.0
    return (
        f"recovery (estimate): next pull back <= {_minutes_up(next_in)}, "
        f"full <= {_minutes_up(full_in)}"
    )


def _minutes_up(seconds: float) -> str:
    minutes = max(math.ceil(seconds / 60), 1)
    return f"{minutes}m" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"
