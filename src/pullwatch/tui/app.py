"""The dashboard app: a thin shell that schedules probes and routes readings to widgets.

Data flows one way: the `Monitor` produces readings, `_show()` hands each to the table (which
writes only changed cells) and, for the selected identity, to the detail pane. Each identity's
probe runs as its own async worker in its own group, so a refresh of one identity cancels only
that identity's probe; the next round is scheduled when the last probe of a round finishes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterable
from functools import partial

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable

from pullwatch.advice import advise
from pullwatch.alerts import AlertTracker, Level
from pullwatch.comparison import best_to_use, ranked
from pullwatch.history import BackgroundWriter, History, HistoryError
from pullwatch.identities.secrets import KeyringHealth
from pullwatch.identities.store import Identity
from pullwatch.insights import by_label, find_insights
from pullwatch.reading import METERED_STATES, Reading, State
from pullwatch.recent import RecentHistory
from pullwatch.runtime import Runtime
from pullwatch.tui import format as fmt
from pullwatch.tui.screens.checks import CheckScreen, render_head_check, render_token_check
from pullwatch.tui.screens.confirm import ConfirmScreen
from pullwatch.tui.screens.dashboard import DashboardScreen
from pullwatch.tui.screens.help import HelpScreen
from pullwatch.tui.screens.identity_form import IdentityForm
from pullwatch.tui.screens.passphrase import PassphraseScreen
from pullwatch.tui.triage import TriageActions
from pullwatch.tui.widgets.identity_table import Column

MIN_INTERVAL = 10.0
RECENT_SECONDS = 24 * 3600.0  # source changes and estimates loaded at start
SPARKLINE_SECONDS = 6 * 3600.0  # the longest window in use: a sparkline shows one window
TERMINAL_CHECK_SECONDS = 2.0


class IdentityCommands(Provider):
    """Command palette: every action, for every identity, by name."""

    def _commands(self) -> list[tuple[str, str, object]]:
        app = self.app
        assert isinstance(app, PullwatchApp)
        commands: list[tuple[str, str, object]] = []
        for identity in app.monitor.identities:
            label = identity.label
            commands += [
                (
                    f"Token check: {label}",
                    "a fresh token request: claims and expiry",
                    partial(app.open_token_check, label),
                ),
                (
                    f"HEAD check: {label}",
                    "one HEAD now with every header (costs no pull)",
                    partial(app.open_head_check, label),
                ),
                (
                    f"Refresh: {label}",
                    "probe this identity now",
                    partial(app.refresh_identity, label),
                ),
                (
                    f"Edit identity: {label}",
                    "change label, username, token or threshold",
                    partial(app.edit_identity, label),
                ),
                (
                    f"Delete identity: {label}",
                    "remove it and its keyring entry",
                    partial(app.delete_identity, label),
                ),
            ]
        return commands

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)  # type: ignore[arg-type]


class PullwatchApp(TriageActions, App[None]):
    """The live dashboard."""

    CSS_PATH = "app.tcss"
    TITLE = "pullwatch"
    COMMANDS = App.COMMANDS | {IdentityCommands}
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        runtime: Runtime,
        *,
        demo: bool = False,
        interval: float | None = None,
        auto_rounds: bool = True,
        watch_terminal: bool = True,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.clock = runtime.clock
        self.demo = demo
        self.interval = max(MIN_INTERVAL, float(interval or runtime.config.settings.interval))
        self.auto_rounds = auto_rounds
        self.watch_terminal = watch_terminal
        self._client = runtime.client()
        self.monitor = runtime.monitor(self._client)
        self.paused = False
        self.rounds_completed = 0
        self.round_finished = asyncio.Event()
        self._in_flight: dict[str, object] = {}
        self._round_pending: set[str] = set()
        self._round_active = False
        self._round_timer: Timer | None = None
        self._next_round_at: float | None = None
        self.keyring_health: KeyringHealth | None = None
        self._quitting = False
        self.compare = False
        self._recent = RecentHistory()
        self._alerts = AlertTracker()
        self._writer: BackgroundWriter | None = None
        self.history_loaded = asyncio.Event()
        self._dashboard_filled = False

    # -- parts -------------------------------------------------------------------------------

    def get_default_screen(self) -> DashboardScreen:
        return DashboardScreen(
            registry=self.runtime.registry,
            repository=self.runtime.repository,
            demo=self.demo,
            on_ready=self.on_dashboard_screen_ready,  # filled before the first frame
        )

    @property
    def _has_dashboard(self) -> bool:
        """False once the app is closing and its screens are gone."""
        return bool(self.screen_stack) and isinstance(self.screen_stack[0], DashboardScreen)

    @property
    def dashboard(self) -> DashboardScreen:
        """The dashboard, wherever it is in the stack (queries go to it, not to the top)."""
        screen = self.screen_stack[0]
        assert isinstance(screen, DashboardScreen)
        return screen

    def on_dashboard_screen_ready(self, _: DashboardScreen.Ready | None = None) -> None:
        if self._dashboard_filled:
            return
        self._dashboard_filled = True
        table = self.dashboard.table
        table.now = self.clock.time()
        table.add_feature_column(
            Column("recovers", "Recovers", 10, 4), self._recovers_cell, ticking=True
        )
        self._show_identities()
        self.set_interval(1.0, self._tick)
        # The rest waits for the first frame: worker threads started now would hold the GIL
        # while the dashboard paints (benchmarks/startup.py: ~30 ms later to the first paint).
        self.call_after_refresh(self._start_watching)
        if self.watch_terminal and not self.is_headless:
            self._watch_terminal()

    def _start_watching(self) -> None:
        self._check_keyring()
        self._ask_passphrase()
        self._load_history()  # the first round starts when the history is in

    async def on_unmount(self) -> None:
        self._quitting = True  # cancelled probes must not schedule another round
        self._cancel_timer()
        self.workers.cancel_all()
        await self._client.aclose()
        if self._writer is not None:
            self._writer.close()

    # -- history ----------------------------------------------------------------------------

    def _open_history(self) -> History:
        settings = self.runtime.config.settings
        return History(
            self.runtime.paths.history_db, clock=self.clock, retention_days=settings.retention_days
        )

    @work(thread=True, exit_on_error=False, group="history-load")
    def _load_history(self) -> None:
        """Recent readings from the database (in a thread), then start watching.

        The database keeps each bucket's estimate and each identity's sources up to date, so
        this reads O(identities) rows plus the sparklines' last hours - never a day's replay.
        """
        problem: str | None = None
        try:
            with self._open_history() as history:
                recent = history.recent(self.clock.time(), RECENT_SECONDS, series=SPARKLINE_SECONDS)
        except HistoryError as exc:
            recent, problem = RecentHistory(), str(exc)
        self.call_from_thread(self._history_loaded, recent, problem)

    def _history_loaded(self, recent: RecentHistory, problem: str | None) -> None:
        self._recent = recent
        if problem is None:
            self._writer = BackgroundWriter(self._open_history)
            self.monitor.sinks.append(self._writer.submit)
        else:
            self.notify(f"history off: {problem}", severity="warning", timeout=10)
        self.monitor.sinks.append(self._recent.add)
        self.history_loaded.set()
        for reading in self.monitor.readings():
            self.dashboard.table.show_reading(reading)
        if self.auto_rounds:
            self.start_round()

    def _recovers_cell(self, reading: Reading, now: float) -> Text:
        if reading.state not in METERED_STATES:
            return Text("-", style="dim")
        recovery = self._recent.recovery(reading.source)
        if recovery is None:
            return Text("-", style="dim")
        if not recovery.recovering:
            return Text("full", style="dim")
        if reading.state is State.EXHAUSTED:
            return Text(f"+1 {fmt.at_most(recovery.next_in(now) or 0)}", style="yellow")
        return Text(fmt.at_most(recovery.full_in(now) or 0))

    # -- rounds and probes ------------------------------------------------------------------

    def start_round(self, *, ignore_backoff: bool = False) -> None:
        """Probe every due identity now; the next round is scheduled when they all finish."""
        self._cancel_timer()
        chosen = [
            identity
            for identity in self.monitor.identities
            if identity.label not in self._in_flight
            and (
                not self.monitor.is_halted(identity.label)
                if ignore_backoff
                else self.monitor.due(identity.label)
            )
        ]
        self._round_pending = {identity.label for identity in chosen}
        self._round_active = True
        for identity in chosen:
            self._launch(identity, force=False, ignore_backoff=ignore_backoff)
        if not chosen:
            self._round_done()
        self._refresh_status()

    def _launch(self, identity: Identity, *, force: bool, ignore_backoff: bool = False) -> None:
        ticket = object()
        self._in_flight[identity.label] = ticket
        self.run_worker(
            self._probe(identity, ticket, force=force, ignore_backoff=ignore_backoff),
            name=f"probe {identity.label}",
            group=f"probe:{identity.label}",
            exclusive=True,
            exit_on_error=False,
        )

    async def _probe(
        self, identity: Identity, ticket: object, *, force: bool, ignore_backoff: bool
    ) -> None:
        try:
            if force:
                reading = (await self.monitor.check(identity)).reading
            else:
                reading = await self.monitor.probe(identity, ignore_backoff=ignore_backoff)
            if self._has_dashboard:
                self._show(reading)
        finally:
            if self._in_flight.get(identity.label) is ticket:
                del self._in_flight[identity.label]
                self._round_pending.discard(identity.label)
                if self._round_active and not self._round_pending:
                    self._round_done()
                if self._has_dashboard:  # a probe may end while the app shuts down
                    self._refresh_status()

    def _round_done(self) -> None:
        self._round_active = False
        if self.compare and self._has_dashboard:
            self._show_identities()  # re-rank once a round, not on every reading
        self.rounds_completed += 1
        self.round_finished.set()
        self._schedule_next()

    def _schedule_next(self) -> None:
        self._cancel_timer()
        if self.paused or not self.auto_rounds or self._quitting:
            return
        self._next_round_at = self.clock.time() + self.interval
        self._round_timer = self.set_timer(self.interval, self.start_round)

    def _cancel_timer(self) -> None:
        if self._round_timer is not None:
            self._round_timer.stop()
            self._round_timer = None
        self._next_round_at = None

    async def wait_for_round(self) -> None:
        """Until the round in progress - or the first one, if it has not started - is done.
        For tests and scripts."""
        pending = (
            self._round_active
            or bool(self._in_flight)
            or (self.auto_rounds and not self.history_loaded.is_set())
        )
        if not pending:
            return
        target = self.rounds_completed + 1
        while self.rounds_completed < target:
            self.round_finished.clear()
            await self.round_finished.wait()

    def refresh_identity(self, label: str) -> None:
        identity = self._identity(label)
        if identity is not None:
            self._launch(identity, force=True)
            self._refresh_status()

    # -- showing -----------------------------------------------------------------------------

    def _show_identities(self) -> None:
        """Rows in config order, or best first in comparison mode (★ marks the best)."""
        readings = self.monitor.readings()
        if self.compare:
            labels = [r.label for r in ranked(readings)]
            best = best_to_use(readings)
            marks = {best.label: "★"} if best else {}
        else:
            labels = [identity.label for identity in self.monitor.identities]
            marks = {}
        self.dashboard.show_identities(labels, {r.label: r for r in readings})
        self.dashboard.table.set_marks(marks)
        self._select(self.dashboard.selected_label)
        self._refresh_status()

    def _show(self, reading: Reading) -> None:
        table = self.dashboard.table
        table.show_reading(reading)
        if reading.label == table.selected_label:
            self._select(reading.label)
        alert = self._alerts.observe(reading)
        if alert is not None:
            severity = "error" if alert.level is Level.EXHAUSTED else "warning"
            self.notify(alert.message, title="pullwatch alert", severity=severity, timeout=10)
            if self.runtime.config.settings.bell:
                self.bell()

    def _select(self, label: str | None) -> None:
        reading = self.monitor.latest(label) if label else None
        now = self.clock.time()
        recovery = series = warnings = None
        if reading is not None:
            recovery = self._recent.recovery(reading.source)
            series = self._recent.series(reading.label, now - (reading.window_seconds or 21600))
            seen = {reading.label: self._recent.sources(reading.label, now - RECENT_SECONDS)}
            # Its insights need only the readings of its own bucket (over every identity they
            # cost ~5 ms at 1000, on every reading of the selected identity).
            mine = [
                r
                for r in self.monitor.readings()
                if r.label == reading.label or (r.source is not None and r.source == reading.source)
            ]
            warnings = by_label(find_insights(mine, seen)).get(reading.label)
        self.dashboard.detail.show(
            reading,
            now=now,
            next_attempt=self.monitor.next_attempt_at(label) if label else None,
            halted=self.monitor.is_halted(label) if label else False,
            advice=advise(
                reading,
                self.monitor.readings(),
                recovers_in=recovery.next_in(now) if recovery and recovery.recovering else None,
            )
            if reading
            else None,
            recovery=recovery,
            series=series,
            warnings=warnings,
        )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._select(event.row_key.value if event.row_key else None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key is not None and event.row_key.value:
            self.refresh_identity(event.row_key.value)

    def _refresh_status(self) -> None:
        status = self.dashboard.status
        status.identity_count = len(self.monitor.identities)
        status.probing = len(self._in_flight)
        status.paused = self.paused
        status.comparing = self.compare
        status.next_round_in = (
            None if self._next_round_at is None else self._next_round_at - self.clock.time()
        )
        status.keyring_problem = (
            self.keyring_health.message
            if self.keyring_health is not None and not self.keyring_health.ok
            else None
        )
        status.redraw()

    def _tick(self) -> None:
        now = self.clock.time()
        self.dashboard.table.tick(now)
        self.dashboard.detail.tick(now)
        self._refresh_status()

    # -- keyring and terminal ---------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="keyring", exclusive=True)
    def _check_keyring(self) -> None:
        health = self.runtime.secrets.health()
        self.call_from_thread(self._keyring_checked, health)

    def _keyring_checked(self, health: KeyringHealth) -> None:
        self.keyring_health = health
        self._refresh_status()

    def _ask_passphrase(self) -> None:
        """The opt-in encrypted keyring is locked: ask for its passphrase in a modal screen."""
        unlocker = self.runtime.unlocker
        if unlocker is not None and unlocker.locked:
            self.push_screen(PassphraseScreen(unlocker), self._passphrase_done)

    def _passphrase_done(self, unlocked: bool | None) -> None:
        self.runtime.secrets.recheck()
        self._check_keyring()
        if not unlocked:
            return
        for identity in self.monitor.identities:  # probe again what the locked keyring stopped
            if identity.username is not None and identity.label not in self._in_flight:
                self.monitor.forget_secret(identity.label)
                self._launch(identity, force=True)

    def _watch_terminal(self) -> None:
        """Exit, rather than spin, when the terminal goes away (an SSH drop)."""
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._terminal_lost)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
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

    # -- actions -----------------------------------------------------------------------------

    def _identity(self, label: str | None) -> Identity | None:
        if label is None:
            return None
        return next((i for i in self.monitor.identities if i.label == label), None)

    def _selected_identity(self) -> Identity | None:
        identity = self._identity(self.dashboard.selected_label)
        if identity is None:
            self.notify("No identity selected: press a to add one", severity="warning")
        return identity

    def action_toggle_compare(self) -> None:
        self.compare = not self.compare
        self._show_identities()
        if self.compare:
            self.notify("Sorted by pulls remaining; ★ marks the best identity to pull with now")

    def action_refresh_all(self) -> None:
        self.start_round(ignore_backoff=True)

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.paused:
            self._cancel_timer()
        elif not self._round_active:
            self.start_round()
        self._refresh_status()

    def action_token_check(self) -> None:
        identity = self._selected_identity()
        if identity is not None:
            self.open_token_check(identity.label)

    def action_head_check(self) -> None:
        identity = self._selected_identity()
        if identity is not None:
            self.open_head_check(identity.label)

    def open_token_check(self, label: str) -> None:
        identity = self._identity(label)
        if identity is None:
            return
        who = identity.username or "anonymous"
        self.push_screen(
            CheckScreen(
                f"Token check · {identity.label} ({who})",
                partial(self.monitor.check_token, identity),
                render_token_check,
            )
        )

    def open_head_check(self, label: str) -> None:
        identity = self._identity(label)
        if identity is None:
            return

        async def run() -> object:
            result = await self.monitor.check(identity)
            self._show(result.reading)
            return result

        who = identity.username or "anonymous"
        self.push_screen(
            CheckScreen(f"HEAD check · {identity.label} ({who})", run, render_head_check)
        )

    def action_add_identity(self) -> None:
        self.push_screen(IdentityForm(store=self.runtime.store, existing=None), self._form_closed)

    def action_edit_identity(self) -> None:
        identity = self._selected_identity()
        if identity is not None:
            self.edit_identity(identity.label)

    def edit_identity(self, label: str) -> None:
        identity = self._identity(label)
        if identity is not None:
            self.push_screen(
                IdentityForm(store=self.runtime.store, existing=identity), self._form_closed
            )

    def action_delete_identity(self) -> None:
        identity = self._selected_identity()
        if identity is not None:
            self.delete_identity(identity.label)

    def delete_identity(self, label: str) -> None:
        identity = self._identity(label)
        if identity is None:
            return
        question = Text.assemble(
            "Delete identity ",
            (identity.label, "bold"),
            "?\n",
            ("Its token is removed from the keyring too. " if identity.username else ""),
            "Nothing on Docker Hub changes.",
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._remove_identity(identity.label)

        self.push_screen(ConfirmScreen(question), answered)

    @work(thread=True, exit_on_error=False, group="store")
    def _remove_identity(self, label: str) -> None:
        try:
            result = self.runtime.store.remove(label)
        except Exception as exc:  # ConfigError, SecretStoreError: show, lose nothing
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=10)
            return
        warning = getattr(result, "warning", None)
        if warning:
            self.call_from_thread(self.notify, warning, severity="warning", timeout=10)
        self.call_from_thread(self._identities_changed, None)

    def _form_closed(self, saved_label: str | None) -> None:
        if saved_label is not None:  # None: the form was cancelled
            self._identities_changed(saved_label)

    def _identities_changed(self, focus: str | None) -> None:
        """After an add, edit or delete: reload, re-key the table, probe what changed."""
        try:
            config = self.runtime.reload()
        except Exception as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        before = {i.label: i for i in self.monitor.identities}
        self.monitor.set_identities(config.identities)
        self._show_identities()
        if focus is not None:
            self.dashboard.focus_identity(focus)
            self._select(focus)
        for identity in config.identities:
            if before.get(identity.label) != identity:
                self.monitor.forget_secret(identity.label)
                self._launch(identity, force=True)
        self._refresh_status()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Add identity", "anonymous, or Docker ID + access token", self.action_add_identity
        )
        yield SystemCommand("Refresh all", "probe every identity now", self.action_refresh_all)
        yield SystemCommand(
            "Pause / resume", "stop or restart the automatic rounds", self.action_toggle_pause
        )
        yield from self.triage_commands()
        yield SystemCommand("Help", "keys, and what each state means", self.action_help)


def make_app(runtime: Runtime, **options: object) -> PullwatchApp:
    """The app for the CLI and the tests alike (options: demo, interval, auto_rounds, ...)."""
    return PullwatchApp(runtime, **options)  # type: ignore[arg-type]
