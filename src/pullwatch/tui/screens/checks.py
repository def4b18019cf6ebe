"""Token check and HEAD check result screens.

Each runs its check when opened (and again on `r`), shows the request made, the answer's
headers (redacted), the parse and the verdict, and copies the same content as plain text on `c`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from pullwatch.advice import Advice
from pullwatch.assess import Assessment, assess
from pullwatch.durations import format_span, iso_time
from pullwatch.hub.client import Exchange, ProbeResult, TokenResult
from pullwatch.hub.headers import RateValue
from pullwatch.output import (
    HEAD_DOES_NOT_COUNT,
    describe_head_check,
    describe_token_check,
    render_table,
    token_advice,
)
from pullwatch.reading import Reading, Step
from pullwatch.tui import format as fmt
from pullwatch.tui.widgets.footer import KeyFooter

Rendered = tuple[RenderableType, str]  # what to show, what to copy


class CheckScreen(Screen[None]):
    """Runs one check and shows its result."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("r", "rerun", "Run again"),
        Binding("c", "copy", "Copy as text"),
    ]
    DEFAULT_CSS = """
    CheckScreen > #check-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    CheckScreen > VerticalScroll { padding: 0 1; }
    """

    def __init__(
        self,
        title: str,
        run: Callable[[], Awaitable[Any]],
        render: Callable[[Any], Rendered],
    ) -> None:
        super().__init__()
        self._title = title
        self._run_check = run
        self._render_result = render
        self._text = ""

    def compose(self) -> ComposeResult:
        yield Static(Text(self._title), id="check-title")
        with VerticalScroll():
            yield Static(Text("Checking…", style="italic"), id="check-body")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.action_rerun()

    def action_rerun(self) -> None:
        self.query_one("#check-body", Static).update(Text("Checking…", style="italic"))
        self._text = ""
        self.run_worker(self._perform(), group="check", exclusive=True, exit_on_error=False)

    async def _perform(self) -> None:
        result = await self._run_check()
        renderable, text = self._render_result(result)
        self._text = text
        self.query_one("#check-body", Static).update(renderable)

    @property
    def plain_text(self) -> str:
        return self._text

    def action_copy(self) -> None:
        if not self._text:
            self.notify("Nothing to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(self._text)
        lines = self._text.count("\n") + 1
        self.notify(f"Copied {lines} lines as plain text (via the terminal's clipboard, OSC 52)")


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def _exchanges_table(exchanges: tuple[Exchange, ...]) -> Table:
    """One block per request: method, answer and auth on one line, the URL under it."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for ex in exchanges:
        block = Text(f"{ex.method} ")
        if ex.status is not None:
            block.append(f"-> {ex.status}", style="green" if ex.status < 400 else "red")
            if ex.latency_ms is not None:
                block.append(f" in {ex.latency_ms:.0f} ms", style="dim")
        else:
            block.append(f"-> {ex.error or 'no answer'}", style="red")
        block.append(f"   auth: {ex.auth}\n", style="dim")
        block.append(ex.url)
        table.add_row(ex.step.value, block)
    return table


def _headers_table(exchange: Exchange | None) -> RenderableType:
    if exchange is None or not exchange.headers:
        return Text("(no answer)", style="dim")
    table = Table(box=None, padding=(0, 1), show_header=False)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in exchange.headers:
        table.add_row(Text(name), Text(value))
    return table


def _last(exchanges: tuple[Exchange, ...], step: Step) -> Exchange | None:
    return next((ex for ex in reversed(exchanges) if ex.step is step), None)


def _verdict(assessment: Assessment) -> Text:
    text = Text("Result: ", style="bold")
    text.append_text(fmt.state_text(assessment))
    if assessment.reason:
        text.append(f"  {assessment.reason}")
    _append_advice(text, assessment.advice)
    return text


def _append_advice(text: Text, advice: Advice | None) -> None:
    """The meaning (dim) and the numbered next steps under a verdict."""
    if advice is None:
        return
    text.append(f"\n{advice.meaning}", style="italic dim")
    for number, step in enumerate(advice.steps, start=1):
        text.append(f"\nNext {number}. ", style="bold")
        text.append(step)


def render_head_check(check: tuple[ProbeResult, Assessment]) -> Rendered:
    result, assessment = check
    parts: list[RenderableType] = [
        Text(HEAD_DOES_NOT_COUNT, style="bold green"),
        _verdict(assessment),
        _section("Requests (secrets and tokens are never shown)"),
        _exchanges_table(result.exchanges),
        _section("HEAD answer headers (redacted)"),
        _headers_table(_last(result.exchanges, Step.HEAD)),
        _section("Parse"),
    ]
    rl = result.ratelimit
    if rl is None:
        parts.append(Text("(no HEAD answer to parse)", style="dim"))
    else:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()

        def rate(value: RateValue | None) -> Text:
            if value is None:
                return Text("header absent", style="dim")
            count = "unknown (no number)" if value.count is None else str(value.count)
            return Text(f"{count}   raw {value.raw!r}")

        grid.add_row("Limit", rate(rl.limit))
        grid.add_row("Remaining", rate(rl.remaining))
        grid.add_row(
            "Window",
            Text(
                f"{format_span(rl.window)} (rolling; no reset time is sent)" if rl.window else "-"
            ),
        )
        problem = rl.quota_problem()
        if problem:
            grid.add_row("Quota", Text(f"unreadable: {problem}", style="bold"))
        grid.add_row("Metered", Text("yes" if rl.metered else "no: no ratelimit headers"))
        grid.add_row(
            "Source",
            Text(f"{rl.source.value} ({rl.source.kind.value})" if rl.source else "not sent"),
        )
        parts.append(grid)
    return Group(*parts), describe_head_check(result, assessment)


def render_token_check(result: TokenResult | Reading) -> Rendered:
    if isinstance(result, Reading):  # the secret could not be read: no request was made
        assessment = assess(result)
        return _verdict(assessment), render_table([assessment])
    parts: list[RenderableType] = []
    head = Text("Result: ", style="bold")
    if result.ok and result.http_status is None:
        head.append(result.detail or "no token needed", style="green")
    elif result.ok:
        head.append("token issued", style="green")
        if result.latency_ms is not None:
            head.append(f" in {result.latency_ms:.0f} ms")
        if result.expires_in is not None and result.expires_at is not None:
            head.append(f"; expires in {result.expires_in} s (at {iso_time(result.expires_at)})")
    else:
        head.append_text(Text(result.state.label, style=fmt.STATE_STYLES[result.state]))
        head.append(f"  {result.detail}")
        _append_advice(head, token_advice(result))
    parts.append(head)
    parts += [
        _section("Requests (secrets and tokens are never shown)"),
        _exchanges_table(result.exchanges),
        _section("Token endpoint answer headers (redacted)"),
        _headers_table(_last(result.exchanges, Step.TOKEN)),
    ]
    claims = result.claims
    if claims is not None:
        parts.append(
            _section("Token claims (decoded, unverified: hints; the headers are the truth)")
        )
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column(overflow="fold")
        grid.add_row("sub", Text(claims.subject or "(empty: anonymous)"))
        if claims.issuer:
            grid.add_row("iss", Text(claims.issuer))
        if claims.audience:
            grid.add_row("aud", Text(claims.audience))
        if claims.issued_at is not None:
            grid.add_row("iat", Text(iso_time(claims.issued_at)))
        if claims.expires_at is not None:
            grid.add_row("exp", Text(iso_time(claims.expires_at)))
        for scope in claims.scopes:
            grid.add_row("access", Text(scope))
        pull = claims.pull_limit
        if pull is not None:
            limit = "?" if pull.limit is None else str(pull.limit)
            grid.add_row("pull_limit", Text(f"{limit} per {format_span(pull.interval)}"))
        parts.append(grid)
    return Group(*parts), describe_token_check(result)
