"""`pullwatch fleet URL`: the dashboard in fleet mode, one row per (node, identity).

The rows come from a `FleetSource` (`pullwatch.fleet.FleetReader`: Prometheus's HTTP API) on
the refresh interval; the screen is the dashboard's own widgets - the identity table (rows keyed
`node/identity`), the detail pane (state, quota, meaning, next steps), the status line - and
comparison mode (`c`: best first, ★ on the node or identity with the most room now). Read-only:
nothing here probes a registry, reads a keyring or writes a history.

Stale rows (a node Prometheus cannot scrape, or that stopped probing) are `unknown` with a
`stale:` reason and their last numbers dimmed with their age; when Prometheus itself does not
answer, a red banner across the screen says so and every row turns stale the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterable
from typing import Any, Protocol

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.events import Resize
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static

from pullwatch.advice import STATE_MEANINGS
from pullwatch.assess import Assessment
from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.comparison import ranked
from pullwatch.durations import format_clock, format_coarse
from pullwatch.fleet import (
    DEFAULT_INTERVAL,
    MIN_INTERVAL,
    FleetAssessment,
    FleetError,
    FleetErrorKind,
    FleetSnapshot,
    mark_failed,
)
from pullwatch.reading import State
from pullwatch.tui.format import STATE_STYLES
from pullwatch.tui.screens.help import HelpScreen
from pullwatch.tui.widgets.detail_pane import DetailPane
from pullwatch.tui.widgets.footer import KeyFooter
from pullwatch.tui.widgets.identity_table import IdentityTable
from pullwatch.tui.widgets.status_line import StatusLine

TERMINAL_CHECK_SECONDS = 2.0
WAIT_SECONDS = 30.0  # wait_for_reads' bound
MAX_LABEL = 32  # `node/identity` (the table's default is 16: an identity label alone)
READ_ONLY = "Fleet mode is read-only: nothing to probe from here."


class FleetSource(Protocol):
    """Where the rows come from: `pullwatch.fleet.FleetReader`, or a test's fixed snapshots."""

    @property
    def url(self) -> str: ...

    async def read(self) -> FleetSnapshot: ...

    async def aclose(self) -> None: ...


# -- widgets ----------------------------------------------------------------------------------


class FleetStatusLine(StatusLine):
    """The header: rows and nodes, the Prometheus it reads, the refresh countdown; a second
    line in red when nodes are stale or Prometheus does not answer."""

    def __init__(self, *, prometheus: str, id: str | None = None) -> None:
        super().__init__(registry=prometheus, repository="", demo=False, id=id)
        self.prometheus = prometheus
        self.snapshot: FleetSnapshot | None = None
        self.refreshing = False
        self.next_refresh_in: float | None = None
        self.now = 0.0

    def render_text(self) -> Text:
        snap = self.snapshot
        rows = len(snap.rows) if snap else 0
        nodes = len(snap.nodes) if snap else 0
        counts = (
            f" · {rows} identit{'y' if rows == 1 else 'ies'} on {nodes} node"
            f"{'' if nodes == 1 else 's'}"
        )
        where = f" · Prometheus {self.prometheus.split('://', 1)[-1]}"
        if self.refreshing:
            clock, clock_style = " · reading…", "yellow"
        elif self.next_refresh_in is not None:
            clock, clock_style = f" · next refresh {format_clock(self.next_refresh_in)}", ""
        else:
            clock, clock_style = "", ""
        compare = " · best first" if self.comparing else ""
        room = self.size.width - 2 if self.size.width else 200
        if len("pullwatch fleet" + counts + where + clock + compare) > room:
            where = ""  # narrow: the counts and the countdown matter more
        text = Text()
        text.append("pullwatch fleet", style="bold")
        text.append(counts + where)
        text.append(clock, style=clock_style)
        text.append(compare, style="bold green")
        if snap is not None and not snap.failed and snap.stale_nodes:
            stale = snap.stale_nodes
            text.append("\n")
            text.append("stale: ", style="bold red")
            shown = ", ".join(stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
            text.append(f"{shown} (last values, dimmed with their age)")
        return text


class FleetBanner(Static):
    """Across the screen: Prometheus does not answer, or has no pullwatch metrics."""

    DEFAULT_CSS = """
    FleetBanner { display: none; height: auto; padding: 0 1; text-style: bold; }
    FleetBanner.error { display: block; background: $error; color: $text; }
    FleetBanner.notice { display: block; background: $warning; color: $text; }
    """

    def set_problem(self, text: Text | None, level: str = "error") -> None:
        self.remove_class("error", "notice")
        if text is None:
            self.update("")
            return
        self.add_class(level)
        self.update(text)


class FleetDetailPane(DetailPane):
    """The dashboard's detail pane, titled with where the row comes from."""

    def show(self, assessment: Assessment | None, *, now: float, **options: Any) -> None:
        super().show(assessment, now=now, **options)
        if isinstance(assessment, FleetAssessment):
            self._set("#detail-title", fleet_title(assessment))

    def show_empty(self, title: str, body: Text) -> None:
        super().show(None, now=0.0)
        self._set("#detail-title", Text(title, style="bold"))
        self._set("#detail-body", body)

    def _set(self, selector: str, text: Text) -> None:
        with contextlib.suppress(NoMatches):
            self.query_one(selector, Static).update(text)


def fleet_title(row: FleetAssessment) -> Text:
    """`node-a/ci-bot  logged in · account 186e63fa`, and where the row comes from, dimmed."""
    text = Text(row.key, style="bold")
    reading = row.reading
    source = reading.source or (row.quota.source if row.quota else None)
    if reading.username is not None:
        text.append("  logged in")
    elif source is not None:
        text.append("  anonymous")
    if source is not None:
        text.append(f" · {source.display}", style="dim")
    where = f"node {row.node} · scraped from {row.instance} (job {row.job})"
    if row.registry_host:
        where += f" · registry {row.registry_host}"
    text.append("\n")
    text.append(where, style="dim")
    return text


class FleetScreen(Screen[None]):
    BINDINGS = [
        Binding("r", "app.refresh_fleet", "Refresh"),
        Binding("c", "app.toggle_compare", "Compare"),
        Binding("enter", "app.probe_selected", "Probe", show=False),
    ]
    DEFAULT_CSS = """
    FleetScreen { layout: vertical; }
    FleetScreen > IdentityTable { height: auto; max-height: 60%; }
    """

    def __init__(self, *, prometheus: str) -> None:
        super().__init__(id="fleet")
        self._prometheus = prometheus
        self.ready = False  # its widgets are up: rows can be shown

    def compose(self) -> ComposeResult:
        yield FleetStatusLine(prometheus=self._prometheus, id="status")
        yield FleetBanner(id="banner")
        yield IdentityTable(id="identities")
        yield FleetDetailPane(id="detail")
        yield KeyFooter(compact=True)

    @property
    def table(self) -> IdentityTable:
        return self.query_one(IdentityTable)

    @property
    def detail(self) -> FleetDetailPane:
        return self.query_one(FleetDetailPane)

    @property
    def status(self) -> FleetStatusLine:
        return self.query_one(FleetStatusLine)

    @property
    def banner(self) -> FleetBanner:
        return self.query_one(FleetBanner)

    def on_mount(self) -> None:
        self.table.max_label_width = MAX_LABEL
        self.table.set_layout(self.size.width - 2)
        self.table.focus()
        self.detail.show_empty(
            "Reading Prometheus…", Text(f"{self._prometheus}: the first answer is on its way.")
        )
        self.ready = True
        app = self.app
        if isinstance(app, FleetApp):
            app.action_refresh_fleet()  # the first read: its rows have somewhere to go

    def on_resize(self, event: Resize) -> None:
        self.table.set_layout(event.size.width - 2)


FLEET_KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓ / mouse", "select a row: one identity on one node"),
    ("r", "read Prometheus again now"),
    ("c", "compare: best first by pulls remaining, ★ marks where there is room now"),
    ("enter", "nothing to probe: fleet mode only reads Prometheus (`pullwatch head` on the node)"),
    ("ctrl+p", "command palette: themes"),
    ("?", "this help"),
    ("q", "quit"),
)


class FleetHelpScreen(HelpScreen):
    """`?` in fleet mode: the keys, stale rows, and what every state means."""

    def compose(self) -> ComposeResult:
        keys = Table(box=None, padding=(0, 2), show_header=False)
        keys.add_column(style="bold cyan", no_wrap=True)
        keys.add_column()
        for key, what in FLEET_KEYS:
            keys.add_row(key, what)
        states = Table(box=None, padding=(0, 2), show_header=False)
        states.add_column(no_wrap=True)
        states.add_column()
        for state in State:
            states.add_row(Text(state.label, style=STATE_STYLES[state]), STATE_MEANINGS[state])
        notes = Text(
            "Rows come from Prometheus, which scrapes `pullwatch serve` on every node: each is "
            "what that node's last probe round read. A row is stale - state unknown, reason "
            "`stale: ...`, its last numbers dimmed with their age - when Prometheus cannot "
            "scrape the node, no longer scrapes it, or the node has not finished a probe round "
            "for a while. When Prometheus does not answer, a red banner says so and every row "
            "is stale.",
            style="italic",
        )
        with VerticalScroll():
            yield Static(
                Group(
                    Text("Fleet mode keys", style="bold underline"),
                    keys,
                    Text("\nStale rows", style="bold underline"),
                    notes,
                    Text("\nStates", style="bold underline"),
                    states,
                )
            )


# -- the app ----------------------------------------------------------------------------------


class FleetApp(App[None]):
    """Every node's buckets, read from Prometheus on an interval."""

    TITLE = "pullwatch fleet"
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        source: FleetSource,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Clock = SYSTEM_CLOCK,
        auto_read: bool = True,
        watch_terminal: bool = True,
    ) -> None:
        super().__init__()
        self.source = source
        self.interval = max(float(interval), MIN_INTERVAL)
        self.clock = clock
        self.auto_read = auto_read
        self.watch_terminal = watch_terminal
        self.snapshot: FleetSnapshot | None = None
        self.compare = False
        self.refreshing = False
        self.refreshes = 0
        self.refreshed = asyncio.Event()
        self._timer: Timer | None = None
        self._next_at: float | None = None
        self._shown_label: str | None = None
        self._quitting = False

    def get_default_screen(self) -> FleetScreen:
        return FleetScreen(prometheus=self.source.url)

    @property
    def fleet_screen(self) -> FleetScreen | None:
        if self._quitting or not self.screen_stack:
            return None
        screen = self.screen_stack[0]
        return screen if isinstance(screen, FleetScreen) and screen.ready else None

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)
        if self.watch_terminal and not self.is_headless:
            self._watch_terminal()

    async def on_unmount(self) -> None:
        self._quitting = True
        self._cancel_timer()
        self.workers.cancel_all()
        await self.source.aclose()

    # -- reading ----------------------------------------------------------------------------

    def action_refresh_fleet(self) -> None:
        """Read Prometheus now (the next automatic refresh counts from when this one ends)."""
        self._cancel_timer()
        self.refreshing = True
        self.run_worker(self._read(), group="fleet-read", exclusive=True, exit_on_error=False)
        self._refresh_status()

    async def _read(self) -> None:
        try:
            snapshot = await self.source.read()
        except FleetError as exc:
            snapshot = mark_failed(self.snapshot, exc, self.clock.time(), prometheus=self.url)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not take the screen: say it, keep the last rows
            error = FleetError(
                FleetErrorKind.MALFORMED,
                f"internal error: {type(exc).__name__}: {exc} (please report it)",
                self.url,
            )
            snapshot = mark_failed(self.snapshot, error, self.clock.time(), prometheus=self.url)
        self.refreshing = False
        if self._quitting:
            return
        self._schedule_next()
        self.show_snapshot(snapshot)
        self.refreshes += 1
        self.refreshed.set()

    @property
    def url(self) -> str:
        return self.source.url

    async def wait_for_reads(self, count: int = 1) -> None:
        """Until `count` refreshes have finished (tests and scripts); TimeoutError after
        WAIT_SECONDS."""
        async with asyncio.timeout(WAIT_SECONDS):
            while self.refreshes < count:
                self.refreshed.clear()
                await self.refreshed.wait()

    def _schedule_next(self) -> None:
        self._cancel_timer()
        if not self.auto_read or self._quitting:
            return
        self._next_at = self.clock.time() + self.interval
        self._timer = self.set_timer(self.interval, self.action_refresh_fleet)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._next_at = None

    # -- showing -----------------------------------------------------------------------------

    def show_snapshot(self, snapshot: FleetSnapshot) -> None:
        """Put a snapshot on screen: rows, marks, banner, status, detail."""
        self.snapshot = snapshot
        screen = self.fleet_screen
        if screen is None:
            return
        rows: dict[str, Assessment] = {row.key: row for row in snapshot.rows}
        marks: dict[str, str] = {}
        if self.compare:
            order = [a.label for a in ranked(list(snapshot.rows))]
            best = snapshot.best
            if best is not None:
                marks = {best.key: "★"}
        else:
            order = [row.key for row in snapshot.rows]
        table = screen.table
        table.now = self.clock.time()
        table.set_rows(order, rows)
        table.set_layout(screen.size.width - 2)
        table.set_marks(marks)
        screen.banner.set_problem(*self._banner(snapshot))
        self._refresh_status()
        self._show_detail(force=True)

    def _banner(self, snapshot: FleetSnapshot) -> tuple[Text | None, str]:
        now = self.clock.time()
        error = snapshot.error
        if error is not None:
            text = Text(f"{error.message}")
            if snapshot.rows and snapshot.answered_at is not None:
                ago = format_coarse(now - snapshot.answered_at)
                text.append(f"\nEvery row is its last answer, {ago} ago, marked stale.")
            else:
                text.append("\nNo rows: nothing has been read yet.")
            text.append(f" Trying again every {self.interval:g} s; r tries now.")
            return text, "error"
        if not snapshot.rows:
            return (
                Text(
                    f"Prometheus at {self.url} answers, but has no pullwatch metrics: is a job "
                    "scraping `pullwatch serve` (README: Fleets)?"
                ),
                "notice",
            )
        return None, ""

    def _show_detail(self, *, force: bool = False) -> None:
        screen = self.fleet_screen
        if screen is None:
            return
        label = screen.table.selected_label
        if label == self._shown_label and not force:
            return
        self._shown_label = label
        snapshot = self.snapshot
        row = snapshot.row(label) if snapshot is not None and label else None
        now = self.clock.time()
        if row is not None:
            screen.detail.show(row, now=now)
            return
        if snapshot is None:
            return
        if snapshot.error is not None:
            screen.detail.show_empty(
                "Prometheus does not answer",
                Text(
                    f"{snapshot.error.message}\n\nCheck that Prometheus runs and that this host "
                    f"reaches it (`curl {self.url}/-/ready`). On each node, `pullwatch check` "
                    "reads its buckets directly."
                ),
            )
        else:
            screen.detail.show_empty(
                "No pullwatch metrics",
                Text(
                    "Run `pullwatch serve` on every node and add it to Prometheus's scrape "
                    "configuration (contrib/prometheus/scrape.yml); rows appear once it is "
                    "scraped."
                ),
            )

    def _refresh_status(self) -> None:
        screen = self.fleet_screen
        if screen is None:
            return
        status = screen.status
        status.snapshot = self.snapshot
        status.refreshing = self.refreshing
        status.comparing = self.compare
        status.next_refresh_in = (
            None if self._next_at is None else max(self._next_at - self.clock.time(), 0.0)
        )
        status.redraw()

    def _tick(self) -> None:
        screen = self.fleet_screen
        if screen is None:
            return
        now = self.clock.time()
        with contextlib.suppress(NoMatches):  # quitting: the screen's widgets may be going
            screen.table.tick(now)
            screen.detail.tick(now)
            self._refresh_status()

    def on_identity_table_row_highlighted(self, event: IdentityTable.RowHighlighted) -> None:
        self._show_detail()

    def on_identity_table_row_selected(self, event: IdentityTable.RowSelected) -> None:
        self.action_probe_selected()

    # -- actions -----------------------------------------------------------------------------

    def action_probe_selected(self) -> None:
        screen = self.fleet_screen
        label = screen.table.selected_label if screen is not None else None
        row = self.snapshot.row(label) if self.snapshot is not None and label else None
        where = (
            f" To probe it, run `pullwatch head {row.identity}` on {row.node}."
            if row is not None
            else ""
        )
        self.notify(READ_ONLY + where, timeout=6)

    def action_toggle_compare(self) -> None:
        self.compare = not self.compare
        if self.snapshot is not None:
            self.show_snapshot(self.snapshot)
        if self.compare:
            best = self.snapshot.best if self.snapshot is not None else None
            if best is None:
                self.notify("Sorted by pulls remaining: no node or identity has room now")
            else:
                self.notify(f"Sorted by pulls remaining; ★ {best.key} has the most room now")
        else:
            self._refresh_status()

    def action_help(self) -> None:
        self.push_screen(FleetHelpScreen())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Refresh", "read Prometheus again now", self.action_refresh_fleet)
        yield SystemCommand(
            "Compare", "best first, ★ where there is room now", self.action_toggle_compare
        )
        yield SystemCommand("Help", "keys, stale rows and states", self.action_help)

    # -- the terminal ------------------------------------------------------------------------

    def _watch_terminal(self) -> None:
        """Exit, rather than spin, when the terminal goes away (an SSH drop)."""
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._terminal_lost)
        self.set_interval(TERMINAL_CHECK_SECONDS, self._check_terminal)

    def _check_terminal(self) -> None:
        try:
            fd = sys.__stdin__.fileno() if sys.__stdin__ else 0
            if not os.isatty(fd):
                raise OSError("stdin is no longer a terminal")
            os.tcgetpgrp(fd)
        except (OSError, ValueError):
            self._terminal_lost()

    def _terminal_lost(self) -> None:
        self.exit(return_code=129)
