"""`p`: the scan-budget planner against the selected identity's live limit and window.

The verdict is recomputed on every keystroke (exact arithmetic, no network): the identity's
numbers come from its latest assessment, so the planner never probes.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import Screen
from textual.widgets import Input, Label, Static

from pullwatch.assess import Assessment
from pullwatch.durations import format_span
from pullwatch.planner import (
    DEFAULT_CAP,
    DEFAULT_INTERVAL_HOURS,
    PlanError,
    PlanResult,
    Quota,
    ScanPlan,
    describe,
    documented_quota,
    evaluate,
    parse_duration,
    quota_from_assessment,
)
from pullwatch.tui.screens.keys import FIELD_NAVIGATION
from pullwatch.tui.widgets.footer import KeyFooter

# (input id, label, default, placeholder)
FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("repositories", "Repositories", "10", "how many repositories are scanned"),
    ("cap", "Cap (0 = every tag)", str(DEFAULT_CAP), "images per repository"),
    ("tags", "Tags per repository", "", "needed with Cap 0"),
    ("architectures", "Architectures", "1", "pulled per image"),
    ("interval", "Interval (hours)", str(DEFAULT_INTERVAL_HOURS), "24, 1.5, 90m, 3d"),
    ("hosts", "Hosts on this bucket", "1", "hosts scanning as this identity"),
)


def plan_quota(assessment: Assessment | None) -> Quota:
    """The selected identity's live quota, or Docker's documented one when it has none."""
    quota = quota_from_assessment(assessment) if assessment is not None else None
    if quota is not None:
        return quota
    anonymous = assessment is None or assessment.username is None
    fallback = documented_quota(anonymous)
    who = f"{assessment.label} has no live numbers yet: " if assessment is not None else ""
    return replace(fallback, origin=f"{who}{fallback.origin}")


class PlanScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), *FIELD_NAVIGATION]
    DEFAULT_CSS = """
    PlanScreen > #plan-title { height: auto; padding: 0 1; background: $panel; text-style: bold; }
    PlanScreen > VerticalScroll { padding: 0 1; }
    PlanScreen Grid { grid-size: 2; grid-columns: 24 1fr; grid-rows: 1; height: auto;
                      margin-top: 1; }
    PlanScreen Grid > Label { text-style: bold; }
    PlanScreen Grid > Input { background: $boost; }
    PlanScreen #plan-result { margin-top: 1; }
    """

    def __init__(self, assessment: Assessment | None) -> None:
        super().__init__()
        self._assessment = assessment
        self.quota = plan_quota(assessment)
        self.result: PlanResult | None = None
        self.problem: str | None = None

    def compose(self) -> ComposeResult:
        who = self._assessment.label if self._assessment is not None else "no identity"
        limit = (
            "not metered"
            if self.quota.limit is None
            else f"{self.quota.limit} per {format_span(self.quota.window)}"
        )
        yield Static(
            Text(f"Scan-budget planner · {who} · {limit} ({self.quota.origin})"), id="plan-title"
        )
        with VerticalScroll():
            with Grid():
                for key, label, default, placeholder in FIELDS:
                    yield Label(label)
                    yield Input(value=default, placeholder=placeholder, id=key, compact=True)
            yield Static(id="plan-result")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one("#repositories", Input).focus()
        self._recompute()

    def on_input_changed(self, _: Input.Changed) -> None:
        self._recompute()

    def _value(self, key: str) -> str:
        return self.query_one(f"#{key}", Input).value.strip()

    def _int(self, key: str, label: str, *, optional: bool = False) -> int | None:
        text = self._value(key)
        if not text and optional:
            return None
        if not text.isdigit():
            raise PlanError(f"{label}: a whole number, please")
        return int(text)

    def _plan(self) -> ScanPlan:
        interval_text = self._value("interval") or str(DEFAULT_INTERVAL_HOURS)
        interval: Fraction = parse_duration(interval_text, "h")
        return ScanPlan(
            repositories=self._int("repositories", "Repositories") or 0,
            cap=self._int("cap", "Cap") or 0,
            tags=self._int("tags", "Tags per repository", optional=True),
            architectures=self._int("architectures", "Architectures") or 0,
            interval=interval,
            hosts=self._int("hosts", "Hosts") or 0,
        )

    def _recompute(self) -> None:
        out = self.query_one("#plan-result", Static)
        try:
            result = evaluate(self._plan(), self.quota)
        except PlanError as exc:
            self.result, self.problem = None, str(exc)
            out.update(Text(str(exc), style="red"))
            return
        self.result, self.problem = result, None
        text = Text()
        for line in describe(result):
            style = ""
            if line.startswith("Fits: yes"):
                style = "bold green"
            elif line.startswith("Fits: NO"):
                style = "bold red"
            text.append(line + "\n", style=style)
        text.append(
            "Worst case: every scan's pulls land inside one rolling window. Each scanned image "
            "is one pull per architecture; HEAD checks cost none.",
            style="dim italic",
        )
        out.update(text)
