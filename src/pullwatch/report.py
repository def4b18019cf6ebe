"""The triage report: a redacted snapshot of every identity, to paste into a ticket.

Per identity: state and reason, the numbers and the raw header values, the bucket (source), the
last probe, what it means and the next steps, bucket warnings, and an optional history summary;
plus pullwatch's version, the registry and repository, and the keyring's status. Every string
passes `redact.py` on the way out (and the JSON document is scrubbed once more as a whole),
so no secret, token, `dckr_jti_` id or password can reach a ticket.

The history summary is optional and comes from outside: a short text, or a `HistorySummary`
(which `summarize_history()` builds from a list of readings), per identity label.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pullwatch import __version__
from pullwatch.assess import Assessment
from pullwatch.durations import iso_time
from pullwatch.history import History
from pullwatch.output import recovery_line, remaining_text, source_text, window_text
from pullwatch.reading import METERED_STATES, Reading, Source
from pullwatch.redact import one_line, redact


@dataclass(frozen=True, slots=True)
class HistorySummary:
    """What the history says about one identity, in a few numbers."""

    readings: int
    since: float | None = None  # the oldest reading summarised (epoch seconds)
    lowest_remaining: int | None = None
    highest_remaining: int | None = None
    sources: tuple[Source, ...] = ()  # distinct sources seen, oldest first
    states: Mapping[str, int] = field(default_factory=dict)  # state -> count
    recovery: str | None = None  # e.g. "next pull back ≤ 12m, full ≤ 5h13m (estimate)"

    def text(self) -> str:
        if self.readings == 0:
            return "no readings recorded"
        parts = [f"{self.readings} readings"]
        if self.since is not None:
            parts[0] += f" since {iso_time(self.since)}"
        if self.lowest_remaining is not None and self.highest_remaining is not None:
            parts.append(f"remaining {self.lowest_remaining}-{self.highest_remaining}")
        if self.states:
            parts.append(", ".join(f"{state} x{n}" for state, n in self.states.items()))
        if len(self.sources) > 1:
            shown = [s.display for s in self.sources]
            parts.append(f"{len(self.sources)} sources ({', '.join(shown[-3:])})")
        if self.recovery:
            parts.append(self.recovery)
        return "; ".join(parts)


def summarize_history(readings: Sequence[Reading], recovery: str | None = None) -> HistorySummary:
    """A summary of one identity's recorded readings (any order)."""
    ordered = sorted(readings, key=lambda r: r.checked_at)
    remaining = [
        r.remaining for r in ordered if r.state in METERED_STATES and r.remaining is not None
    ]
    sources: list[Source] = []
    states: dict[str, int] = {}
    for r in ordered:
        if r.source and r.source not in sources:
            sources.append(r.source)
        states[r.state.value] = states.get(r.state.value, 0) + 1
    return HistorySummary(
        readings=len(ordered),
        since=ordered[0].checked_at if ordered else None,
        lowest_remaining=min(remaining) if remaining else None,
        highest_remaining=max(remaining) if remaining else None,
        sources=tuple(sources),
        states=states,
        recovery=recovery,
    )


@dataclass(frozen=True, slots=True)
class IdentityReport:
    assessment: Assessment
    history: str | None = None

    @property
    def reading(self) -> Reading:
        return self.assessment.reading


@dataclass(frozen=True, slots=True)
class Report:
    generated_at: float
    registry: str
    repository: str
    identities: tuple[IdentityReport, ...]
    keyring: str | None = None  # the keyring's status when it is not ok
    version: str = __version__
    platform: str = field(
        default_factory=lambda: (
            f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
        )
    )


def build_report(
    assessments: Sequence[Assessment],
    *,
    generated_at: float,
    registry: str,
    repository: str,
    keyring: str | None = None,
    history: Mapping[str, str | HistorySummary] | None = None,
) -> Report:
    """Everything the report shows, computed once; rendering only formats it."""
    entries = []
    for assessment in assessments:
        summary = (history or {}).get(assessment.label)
        text = summary.text() if isinstance(summary, HistorySummary) else summary
        entries.append(IdentityReport(assessment=assessment, history=text))
    return Report(
        generated_at=generated_at,
        registry=registry,
        repository=repository,
        identities=tuple(entries),
        keyring=keyring,
    )


def _s(text: str | None, limit: int = 400) -> str:
    """Every string on its way out: redacted, one line, control characters gone."""
    return one_line(text or "", limit)


def _facts(entry: IdentityReport, now: float) -> list[tuple[str, str]]:
    """(name, value) rows for one identity, already redacted."""
    a = entry.assessment
    r = a.reading
    login = "Docker ID" if r.docker_hub else "username"
    rows = [
        ("Account", f"{login} {_s(r.username, 80)}" if r.username else "anonymous (no login)"),
        ("State", a.state.label + (f": {_s(a.reason)}" if a.reason else "")),
    ]
    if a.quota is not None or (a.unmetered and r.docker_hub):
        rows.append(("Remaining", f"{remaining_text(a, now)} per {window_text(a)} (rolling)"))
    if r.raw_limit is not None or r.raw_remaining is not None:
        raw = []
        if r.raw_limit is not None:
            raw.append(f"ratelimit-limit: {_s(r.raw_limit, 120)}")
        if r.raw_remaining is not None:
            raw.append(f"ratelimit-remaining: {_s(r.raw_remaining, 120)}")
        rows.append(("Headers", "; ".join(raw)))
    source = r.source or (a.quota.source if a.quota is not None else None)
    if source is not None:
        rows.append(("Source", f"{_s(source.value, 80)} ({source.kind.value})"))
    if r.probed:
        probe = [f"at {iso_time(r.checked_at)}"]
        if r.step is not None:
            probe.append(f"decided by the {r.step.phrase}")
        if r.http_status is not None:
            probe.append(f"HTTP {r.http_status}")
        if r.latency_ms is not None:
            probe.append(f"{r.latency_ms:.0f} ms")
        if r.error_kind is not None:
            probe.append(f"error kind {r.error_kind.value}")
        if r.retry_after is not None:
            probe.append(f"Retry-After {r.retry_after:.0f} s")
        rows.append(("Last probe", ", ".join(probe)))
    recovery = recovery_line(a.recovery, now)
    if recovery:  # `Recovery: next pull back <= 1h00m, full <= 1h00m (an estimate)`
        rows.append(("Recovery", f"{recovery.removeprefix('recovery (estimate): ')} (an estimate)"))
    if a.forecast is not None:
        rows.append(("Forecast", a.forecast.text(now)))
    rows.append(("Meaning", _s(a.advice.meaning)))
    rows += [("Warning", _s(w)) for w in a.warnings]
    if entry.history:
        rows.append(("History", _s(entry.history)))
    return rows


def _header_rows(report: Report) -> list[tuple[str, str]]:
    rows = [
        ("Generated", iso_time(report.generated_at)),
        ("pullwatch", _s(report.version, 40)),
        ("Registry", _s(report.registry, 200)),
        ("Probe repository", f"{_s(report.repository, 200)} (HEAD only: no pull was spent)"),
        ("Platform", _s(report.platform, 120)),
    ]
    if report.keyring:
        rows.append(("Keyring", _s(report.keyring)))
    return rows


def render_text(report: Report) -> str:
    lines = ["pullwatch triage report (redacted: no secrets, tokens or token ids)"]
    lines += [f"  {name}: {value}" for name, value in _header_rows(report)]
    for entry in report.identities:
        lines += ["", f"== {_s(entry.reading.label, 64)}"]
        lines += [f"  {name}: {value}" for name, value in _facts(entry, report.generated_at)]
        for number, step in enumerate(entry.assessment.advice.steps, start=1):
            lines.append(f"  Next {number}. {_s(step)}")
    return "\n".join(lines) + "\n"


_CODE_SPAN = re.compile(r"(`[^`\n]+`)")


def _md(text: str) -> str:
    """Markdown-safe text for GitHub and Jira: markup characters backslash-escaped outside code
    spans; code spans (`...`) kept verbatim, since escapes and entities show literally there.
    No HTML entities: a `<` reads as `<` in both renderers."""
    parts = _CODE_SPAN.split(text)
    out = []
    for index, part in enumerate(parts):
        if index % 2:  # a code span: only a pipe needs escaping (tables)
            out.append(part.replace("|", "\\|"))
            continue
        for char in "\\`|*_<>[]#":
            part = part.replace(char, "\\" + char)
        out.append(part)
    return "".join(out)


def render_markdown(report: Report) -> str:
    lines = ["## pullwatch triage report", ""]
    lines += [f"- **{name}:** {_md(value)}" for name, value in _header_rows(report)]
    lines += [
        "",
        "| Identity | State | Remaining | Window | Source |",
        "|---|---|---|---|---|",
    ]
    now = report.generated_at
    for entry in report.identities:
        a = entry.assessment
        lines.append(
            f"| {_md(_s(a.label, 64))} | {_md(a.state.label)} | "
            f"{_md(remaining_text(a, now))} | {_md(window_text(a))} | "
            f"{_md(_s(source_text(a), 80))} |"
        )
    for entry in report.identities:
        steps = entry.assessment.advice.steps
        lines += ["", f"### {_md(_s(entry.reading.label, 64))}", ""]
        lines += [f"- **{name}:** {_md(value)}" for name, value in _facts(entry, now)]
        if steps:
            lines += ["", "Next steps:", ""]
            lines += [f"{n}. {_md(_s(step))}" for n, step in enumerate(steps, start=1)]
    lines += ["", "_Secrets, tokens and token ids are redacted; HEAD probes spend no pulls._"]
    return "\n".join(lines) + "\n"


def report_json(report: Report) -> dict[str, Any]:
    from pullwatch.output import assessment_json

    identities = []
    for entry in report.identities:
        a = entry.assessment
        identities.append(
            {
                **assessment_json(a),
                "meaning": a.advice.meaning,
                "steps": list(a.advice.steps),
                "warnings": a.warnings,
                "history": entry.history,
            }
        )
    document = {
        "generated_at": iso_time(report.generated_at),
        "pullwatch": report.version,
        "registry": report.registry,
        "repository": report.repository,
        "platform": report.platform,
        "keyring": report.keyring,
        "identities": identities,
    }
    scrubbed: dict[str, Any] = _scrub(document)
    return scrubbed


def render_json(report: Report) -> str:
    return json.dumps(report_json(report), indent=2, ensure_ascii=False) + "\n"


def _scrub(value: Any) -> Any:
    """Redact every string in a JSON-like value (the last line of defence)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def history_summaries(
    history: History, readings: Sequence[Reading], now: float, lookback: float = 86_400.0
) -> dict[str, HistorySummary]:
    """Per identity: a summary of its recorded readings of this registry and manifest."""
    summaries: dict[str, HistorySummary] = {}
    for reading in readings:
        rows = history.for_label(
            reading.label,
            now - lookback,
            registry=reading.registry,
            repository=reading.repository,
        )
        summaries[reading.label] = summarize_history(rows)
    return summaries
