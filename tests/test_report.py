"""The triage report's content: history summaries, warnings, escaping, redaction of odd input."""

from __future__ import annotations

import json

from pullwatch.assess import assess_all
from pullwatch.reading import Reading, State
from pullwatch.recent import RecentHistory
from pullwatch.redact import register_secret
from pullwatch.report import (
    HistorySummary,
    build_report,
    render_json,
    render_markdown,
    render_text,
    summarize_history,
)

NOW = 1_764_504_000.0
IP, OTHER_IP = "203.0.113.7", "198.51.100.9"


def ok(at: float, remaining: int, source: str = IP) -> Reading:
    return Reading("anonymous", None, at, State.OK, limit=100, remaining=remaining,
                   window_seconds=21600, source=source)  # fmt: skip


def test_summarize_history() -> None:
    readings = [ok(NOW - 60, 80), ok(NOW - 3600, 95), ok(NOW - 30, 70, OTHER_IP),
                Reading("anonymous", None, NOW - 10, State.ERROR, detail="timeout")]  # fmt: skip
    summary = summarize_history(readings, recovery="next pull back ≤ 12m (estimate)")
    assert summary.readings == 4 and summary.since == NOW - 3600
    assert (summary.lowest_remaining, summary.highest_remaining) == (70, 95)
    assert tuple(source.value for source in summary.sources) == (IP, OTHER_IP)
    assert summary.states == {"ok": 3, "error": 1}
    assert summary.text() == (
        "4 readings since 2025-11-30T11:00:00Z; remaining 70-95; ok x3, error x1; "
        "2 sources (203.0.113.7, 198.51.100.9); next pull back ≤ 12m (estimate)"
    )
    assert summarize_history([]).text() == "no readings recorded"


def test_report_carries_history_warnings_and_advice() -> None:
    spent = Reading("scanner", "scanbot", NOW, State.EXHAUSTED, limit=200, remaining=0,
                    window_seconds=21600, source="e8a1f4c2-6b9d-4a07-b3e5-1c2d3e4f5a6b",
                    http_status=429, raw_limit="200;w=21600",
                    raw_remaining="0;w=21600")  # fmt: skip
    earlier = Reading("scanner", "scanbot", NOW - 21000, State.OK, limit=200, remaining=1,
                      window_seconds=21600, source=spent.source)  # fmt: skip
    hourly = Reading("anonymous", None, NOW, State.OK, limit=100, remaining=76,
                     window_seconds=3600, source=IP)  # fmt: skip
    recent = RecentHistory()
    recent.load([earlier, spent, hourly])  # the scanner's first pull is back by NOW + 600
    report = build_report(
        assess_all([hourly, spent], recent=recent),
        generated_at=NOW,
        registry="https://registry-1.docker.io",
        repository="ratelimitpreview/test",
        keyring="locked: the collection is locked",
        history={"anonymous": "12 readings; remaining 70-95", "scanner": HistorySummary(3)},
    )
    text = render_text(report)
    assert "  Keyring: locked: the collection is locked" in text
    assert "  History: 12 readings; remaining 70-95" in text
    assert "  History: 3 readings" in text
    assert "  Warning: live limit 100 per 1 h differs from Docker's documented" in text
    assert "  Account: Docker ID scanbot" in text
    assert "  Headers: ratelimit-limit: 200;w=21600; ratelimit-remaining: 0;w=21600" in text
    assert "Next 1. Room now: anonymous (76/100 left)" in text
    assert "comes back ≤ 10m" in text
    document = json.loads(render_json(report))
    assert document["identities"][1]["history"] == "3 readings"
    assert document["identities"][1]["steps"][0].startswith("Room now")


def test_hostile_values_are_escaped_and_redacted() -> None:
    register_secret("test-report", "s3cr3t-value-xyz")
    weird = Reading("odd", "bob", NOW, State.ERROR,
                    detail="boom | <b>x</b> *y* s3cr3t-value-xyz Bearer abc.def.ghi \x1b[31mred",
                    source="not|a<source>")  # fmt: skip
    report = build_report(assess_all([weird]), generated_at=NOW, registry="r", repository="x")
    markdown = render_markdown(report)
    for output in (markdown, render_text(report), render_json(report)):
        assert "s3cr3t-value-xyz" not in output
        assert "abc.def.ghi" not in output
        assert "\x1b" not in output
    assert "boom \\| \\<b\\>x\\</b\\> \\*y\\*" in markdown
    assert "| not\\|a\\<source\\> |" in markdown
    assert "&lt;" not in markdown  # no HTML entities: they show literally in code spans


def test_markdown_keeps_code_spans_verbatim() -> None:
    anonymous = Reading("anonymous", None, NOW, State.EXHAUSTED, limit=100, remaining=0,
                        window_seconds=21600, source=IP)  # fmt: skip
    markdown = render_markdown(
        build_report(assess_all([anonymous]), generated_at=NOW, registry="r", repository="x")
    )
    assert "`docker login -u <Docker ID>`" in markdown
    assert "&lt;" not in markdown and "&gt;" not in markdown
    register_secret("test-report", None)
