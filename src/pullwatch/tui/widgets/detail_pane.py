"""The detail pane: everything known about the selected identity.

The body changes only when a reading arrives or the selection moves; the one-line clock above it
(probe age, token countdown, backoff) is the only part that changes every second.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from pullwatch.advice import STATE_MEANINGS, Advice
from pullwatch.hub.headers import format_window, parse_source
from pullwatch.reading import Reading, State
from pullwatch.tui import format as fmt


class DetailPane(VerticalScroll):
    DEFAULT_CSS = """
    DetailPane { height: 1fr; border-top: solid $primary-darken-2; padding: 0 1; }
    DetailPane > #detail-title { text-style: bold; }
    DetailPane > #detail-clock { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._reading: Reading | None = None
        self._next_attempt: float | None = None
        self._halted = False
        self._last_body: object = None
        self._last_clock: Text | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        yield Static(id="detail-clock")
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
        extra: list[Text] | None = None,
    ) -> None:
        self._reading = reading
        self._next_attempt = next_attempt
        self._halted = halted
        title = self.query_one("#detail-title", Static)
        body = self.query_one("#detail-body", Static)
        if reading is None:
            title.update(Text("No identity selected"))
            body.update(Text("Press a to add one.", style="dim"))
            self._last_body = None
        else:
            title.update(_title(reading))
            rendered = _body(reading, advice or Advice(STATE_MEANINGS[reading.state]), extra or [])
            body.update(rendered)
        self.tick(now)

    def tick(self, now: float) -> None:
        clock = self.query_one("#detail-clock", Static)
        text = _clock_line(self._reading, now, self._next_attempt, self._halted)
        if text != self._last_clock:
            self._last_clock = text
            clock.update(text)


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
    reading: Reading | None, now: float, next_attempt: float | None, halted: bool
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
    return text


def _body(reading: Reading, advice: Advice, extra: list[Text]) -> Table:
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
    for line in extra:
        grid.add_row("", line)
    for number, step in enumerate(advice.steps, start=1):
        grid.add_row("Next" if number == 1 else "", Text(f"{number}. {step}"))
    return grid
