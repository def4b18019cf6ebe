"""The detail pane: everything known about the selected identity.

The body changes only when a reading arrives or the selection moves; the one-line clock above it
(probe age, token countdown, backoff) is the only part that changes every second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Sparkline, Static

from pullwatch.durations import at_most, format_clock, format_coarse, format_span, iso_time
from pullwatch.reading import State
from pullwatch.tui import format as fmt
from pullwatch.tui.widgets._steady import same_shape

if TYPE_CHECKING:
    from pullwatch.assess import Assessment
    from pullwatch.recovery import Recovery


class DetailPane(VerticalScroll):
    DEFAULT_CSS = """
    DetailPane { height: 1fr; border-top: solid $primary-darken-2; padding: 0 1; }
    DetailPane > #detail-title { text-style: bold; }
    DetailPane > #detail-clock { color: $text-muted; }
    DetailPane > #detail-spark-row { height: auto; display: none; }
    DetailPane > #detail-spark-row.shown { display: block; }
    DetailPane #detail-spark { height: 2; width: 8; margin-right: 2; }
    DetailPane #detail-spark > .sparkline--max-color { color: $success; }
    DetailPane #detail-spark > .sparkline--min-color { color: $error; }
    DetailPane #detail-spark-caption { width: auto; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._assessment: Assessment | None = None
        self._outlook: str | None = None
        self._next_attempt: float | None = None
        self._halted = False
        self._last_clock: Text | None = None
        self._series: list[float] = []

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        yield Static(id="detail-clock")
        with Horizontal(id="detail-spark-row"):
            yield Sparkline([], id="detail-spark")
            yield Static(id="detail-spark-caption")
        yield Static(id="detail-body")

    @property
    def assessment(self) -> Assessment | None:
        return self._assessment

    def show(
        self,
        assessment: Assessment | None,
        *,
        now: float,
        next_attempt: float | None = None,
        halted: bool = False,
        series: list[float] | None = None,
        outlook: str | None = None,
    ) -> None:
        self._assessment = assessment
        self._outlook = outlook
        self._next_attempt = next_attempt
        self._halted = halted
        self._show_series(series or [], assessment)
        title = self.query_one("#detail-title", Static)
        body = self.query_one("#detail-body", Static)
        if assessment is None:
            title.update(Text("No identity selected"))
            body.update(Text("Press a to add one."))
        else:
            title.update(_title(assessment))
            body.update(_body(assessment, now))
        self.tick(now)

    def _show_series(self, series: list[float], assessment: Assessment | None) -> None:
        row = self.query_one("#detail-spark-row")
        if len(series) < 2 or assessment is None:
            row.remove_class("shown")
            self._series = []
            return
        row.add_class("shown")
        if series != self._series:
            self._series = list(series)
            spark = self.query_one("#detail-spark", Sparkline)
            spark.styles.width = max(8, min(len(series), 60))  # one column per sample
            spark.data = list(series)  # a new list: Sparkline compares by identity
        quota = assessment.quota
        window = format_span(quota.window_seconds if quota else assessment.reading.window_seconds)
        caption = Text(f"remaining, last {window}: ", style="dim")
        caption.append(f"{series[0]:.0f} → {series[-1]:.0f}")
        caption.append(f"  (low {min(series):.0f}, high {max(series):.0f})", style="dim")
        self.query_one("#detail-spark-caption", Static).update(caption)

    def tick(self, now: float) -> None:
        if not self.is_mounted:
            return
        clock = self.query_one("#detail-clock", Static)
        text = _clock_line(self._assessment, now, self._next_attempt, self._halted, self._outlook)
        if text != self._last_clock:
            steady = same_shape(clock, self._last_clock, text)
            self._last_clock = text
            clock.update(text, layout=not steady)  # once a second: no layout pass


def _title(assessment: Assessment) -> Text:
    reading = assessment.reading
    text = Text(reading.label, style="bold")
    if reading.username:
        login = "Docker ID" if reading.docker_hub else "username"
        text.append(f"  {login} {reading.username}")
    else:
        text.append("  no login (anonymous)")
    source = reading.source or (assessment.quota.source if assessment.quota else None)
    if source is not None:
        text.append(f"  ·  {source.display}", style="dim")
    return text


def _clock_line(
    assessment: Assessment | None,
    now: float,
    next_attempt: float | None,
    halted: bool,
    outlook: str | None = None,
) -> Text:
    text = Text()
    if assessment is None:
        return text
    reading = assessment.reading
    parts: list[str] = []
    if reading.probed:
        parts.append(f"probed {format_clock(now - reading.checked_at)} ago")
    if reading.token_expires_at is not None:
        left = reading.token_expires_at - now
        parts.append(f"token expires in {format_clock(left)}" if left > 0 else "token expired")
    if halted:
        parts.append("not retried automatically: press enter to retry, or edit the identity")
    elif next_attempt is not None and next_attempt > now:
        parts.append(f"backing off: next try in {format_clock(next_attempt - now)}")
    text.append(" · ".join(parts))
    recovery = assessment.recovery
    if recovery is not None and not assessment.unmetered:
        text.append("\n")
        text.append_text(recovery_text(recovery, now))
    forecast = assessment.forecast
    if forecast is not None and assessment.quota is not None and not assessment.unmetered:
        text.append("\nforecast: ")
        soon = assessment.runs_out_soon(now)
        text.append(forecast.text(now), style="bold" if soon else "")
    if outlook:
        text.append("\n")
        text.append(outlook)
    return text


def recovery_text(recovery: Recovery, now: float) -> Text:
    """`next pull back ≤ 12m · full ≤ 5h13m`, marked as estimates from watching."""
    if not recovery.recovering:
        return Text("full quota: nothing to recover", style="green")
    text = Text("recovery (estimate, rolling window): ")
    next_in, full_in = recovery.next_in(now), recovery.full_in(now)
    if recovery.readings_used <= 1:
        text.append(f"all back {at_most(full_in or 0)} (one reading so far: the window length)")
        return text
    text.append(f"next pull back {at_most(next_in or 0)}")
    text.append(f" · full {at_most(full_in or 0)}")
    text.append(f"  ({recovery.readings_used} readings)")
    return text


def _body(assessment: Assessment, now: float) -> Table:
    reading = assessment.reading
    advice = assessment.advice
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    state = fmt.state_text(assessment)
    if assessment.reason:
        state.append(f"  {assessment.reason}")
    grid.add_row("State", state)
    grid.add_row("Meaning", Text(advice.meaning, style="italic"))
    quota = assessment.quota
    if quota is not None:
        text = Text(
            f"{quota.remaining} of {quota.limit} per {format_span(quota.window_seconds)} "
            "(rolling window; Docker sends no reset time)"
        )
        if quota.stale:
            text = Text(
                f"{quota.remaining} of {quota.limit} per {format_span(quota.window_seconds)} "
                f"as of {format_coarse(now - quota.as_of)} ago ({iso_time(quota.as_of)}): the "
                "last good reading - the latest probe did not read the quota",
                style="dim",
            )
        grid.add_row("Quota", text)
    elif assessment.unmetered and assessment.state is not State.UNMETERED:
        grid.add_row("Quota", Text("not metered when last measured", style="dim"))
    if reading.raw_limit or reading.raw_remaining:
        raw = Text()
        if reading.raw_limit is not None:
            raw.append(f"ratelimit-limit: {reading.raw_limit}")
        if reading.raw_remaining is not None:
            raw.append(("   " if raw else "") + f"ratelimit-remaining: {reading.raw_remaining}")
        grid.add_row("Headers", raw)
    source = reading.source
    if source is not None:
        grid.add_row("Source", Text(f"{source.value}  ({source.meaning})"))
    if reading.http_status is not None or reading.latency_ms is not None:
        http = Text()
        if reading.http_status is not None:
            http.append(f"HTTP {reading.http_status}")
        if reading.latency_ms is not None:
            http.append(f"{' · ' if http else ''}{reading.latency_ms:.0f} ms")
        step = reading.step.phrase if reading.step is not None else "Last request"
        grid.add_row(step[0].upper() + step[1:], http)
    if reading.error_kind is not None:
        grid.add_row("Error kind", Text(reading.error_kind.value))
    if reading.retry_after:
        grid.add_row("Retry-After", Text(f"{reading.retry_after:.0f} s"))
    for number, warning in enumerate(assessment.warnings):
        grid.add_row("Warning" if number == 0 else "", Text(warning, style="bold"))
    for number, step_text in enumerate(advice.steps, start=1):
        grid.add_row("Next" if number == 1 else "", Text(f"{number}. {step_text}"))
    return grid
