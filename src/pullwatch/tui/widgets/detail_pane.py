"""The detail pane: everything known about the selected identity.

The body changes only when a reading arrives or the selection moves; the one-line clock above it
(probe age, token countdown, backoff) is the only part that changes every second.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Sparkline, Static

from pullwatch.advice import STATE_MEANINGS, Advice
from pullwatch.hub.headers import format_window, parse_source
from pullwatch.reading import Reading, State
from pullwatch.recovery import Recovery
from pullwatch.tui import format as fmt
from pullwatch.tui.widgets._steady import same_shape


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
        self._reading: Reading | None = None
        self._next_attempt: float | None = None
        self._halted = False
        self._last_body: object = None
        self._last_clock: Text | None = None
        self._recovery: Recovery | None = None
        self._series: list[float] = []

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        yield Static(id="detail-clock")
        with Horizontal(id="detail-spark-row"):
            yield Sparkline([], id="detail-spark")
            yield Static(id="detail-spark-caption")
        yield Static(id="detail-body")

    @property
    def reading(self) -> Reading | None:
        return self._reading

    def show(
        self,
        reading: Reading | None,
        *,
        now: float,
        next_attempt: float | None = None,
        halted: bool = False,
        advice: Advice | None = None,
        recovery: Recovery | None = None,
        series: list[float] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self._reading = reading
        self._next_attempt = next_attempt
        self._halted = halted
        self._recovery = recovery
        self._show_series(series or [], reading)
        title = self.query_one("#detail-title", Static)
        body = self.query_one("#detail-body", Static)
        if reading is None:
            title.update(Text("No identity selected"))
            body.update(Text("Press a to add one.", style="dim"))
            self._last_body = None
        else:
            title.update(_title(reading))
            rendered = _body(
                reading, advice or Advice(STATE_MEANINGS[reading.state]), warnings or []
            )
            body.update(rendered)
        self.tick(now)

    def _show_series(self, series: list[float], reading: Reading | None) -> None:
        row = self.query_one("#detail-spark-row")
        if len(series) < 2 or reading is None:
            row.remove_class("shown")
            self._series = []
            return
        row.add_class("shown")
        if series != self._series:
            self._series = list(series)
            spark = self.query_one("#detail-spark", Sparkline)
            spark.styles.width = max(8, min(len(series), 60))  # one column per sample
            spark.data = list(series)  # a new list: Sparkline compares by identity
        window = format_window(reading.window_seconds)
        caption = Text(f"remaining, last {window}: ", style="dim")
        caption.append(f"{series[0]:.0f} → {series[-1]:.0f}")
        caption.append(f"  (low {min(series):.0f}, high {max(series):.0f})", style="dim")
        self.query_one("#detail-spark-caption", Static).update(caption)

    def tick(self, now: float) -> None:
        clock = self.query_one("#detail-clock", Static)
        text = _clock_line(self._reading, now, self._next_attempt, self._halted, self._recovery)
        if text != self._last_clock:
            steady = same_shape(clock, self._last_clock, text)
            self._last_clock = text
            clock.update(text, layout=not steady)  # once a second: no layout pass


def _title(reading: Reading) -> Text:
    text = Text(reading.label, style="bold")
    if reading.username:
        text.append(f"  Docker ID {reading.username}", style="")
    else:
        text.append("  no login (anonymous)", style="")
    source = parse_source(reading.source)
    if source is not None:
        text.append(f"  ·  {source.display}", style="dim")
    return text


def _clock_line(
    reading: Reading | None,
    now: float,
    next_attempt: float | None,
    halted: bool,
    recovery: Recovery | None,
) -> Text:
    text = Text()
    if reading is None:
        return text
    parts: list[str] = []
    if reading.state is not State.UNKNOWN:
        parts.append(f"probed {fmt.duration(now - reading.checked_at)} ago")
    if reading.token_expires_at is not None:
        left = reading.token_expires_at - now
        parts.append(f"token expires in {fmt.duration(left)}" if left > 0 else "token expired")
    if halted:
        parts.append("not retried automatically: press enter to retry, or edit the identity")
    elif next_attempt is not None and next_attempt > now:
        parts.append(f"backing off: next try in {fmt.duration(next_attempt - now)}")
    text.append(" · ".join(parts))
    if recovery is not None and reading.state is not State.UNMETERED:
        text.append("\n")
        text.append_text(recovery_text(recovery, now))
    return text


def recovery_text(recovery: Recovery, now: float) -> Text:
    """`next pull back ≤ 12m · full ≤ 5h13m`, marked as estimates from watching."""
    if not recovery.recovering:
        return Text("full quota: nothing to recover", style="green")
    text = Text("recovery (estimate, rolling window): ", style="dim")
    next_in, full_in = recovery.next_in(now), recovery.full_in(now)
    if recovery.readings_used <= 1:
        text.append(f"all back {fmt.at_most(full_in or 0)} (one reading so far: the window length)")
        return text
    text.append(f"next pull back {fmt.at_most(next_in or 0)}")
    text.append(f" · full {fmt.at_most(full_in or 0)}")
    text.append(f"  ({recovery.readings_used} readings)", style="dim")
    return text


def _body(reading: Reading, advice: Advice, warnings: list[str]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    state = fmt.state_text(reading)
    if reading.detail:
        state.append(f"  {reading.detail}")
    grid.add_row("State", state)
    grid.add_row("Meaning", Text(advice.meaning, style="italic"))
    if reading.limit is not None or reading.remaining is not None:
        limit = "?" if reading.limit is None else str(reading.limit)
        window = format_window(reading.window_seconds)
        grid.add_row(
            "Quota",
            Text(
                f"{'?' if reading.remaining is None else reading.remaining} of {limit} "
                f"per {window} (rolling window; Docker sends no reset time)"
            ),
        )
    if reading.raw_limit or reading.raw_remaining:
        raw = Text()
        if reading.raw_limit is not None:
            raw.append(f"ratelimit-limit: {reading.raw_limit}")
        if reading.raw_remaining is not None:
            raw.append(("   " if raw else "") + f"ratelimit-remaining: {reading.raw_remaining}")
        grid.add_row("Headers", raw)
    source = parse_source(reading.source)
    if source is not None:
        meaning = {
            "account": "an account UUID: the pulls are charged to this account",
            "ipv4": "an IPv4 address: the pulls are charged to this address",
            "ipv6": "an IPv6 prefix: the pulls are charged to this network",
            "other": "an unrecognised source",
        }[source.kind.value]
        grid.add_row("Source", Text(f"{source.value}  ({meaning})"))
    if reading.http_status is not None or reading.latency_ms is not None:
        http = Text()
        if reading.http_status is not None:
            http.append(f"HTTP {reading.http_status}")
        if reading.latency_ms is not None:
            http.append(f"{' · ' if http else ''}{reading.latency_ms:.0f} ms")
        grid.add_row("Last HEAD", http)
    if reading.error_kind is not None:
        grid.add_row("Error kind", Text(reading.error_kind.value))
    if reading.retry_after:
        grid.add_row("Retry-After", Text(f"{reading.retry_after:.0f} s"))
    for number, warning in enumerate(warnings):
        grid.add_row("Warning" if number == 0 else "", Text(warning, style="yellow"))
    for number, step in enumerate(advice.steps, start=1):
        grid.add_row("Next" if number == 1 else "", Text(f"{number}. {step}"))
    return grid
