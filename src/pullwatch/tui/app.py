"""The dashboard app: a thin shell that schedules probes and routes readings to widgets.

Data flows one way: the `Monitor` produces readings, `_show()` hands each to the table (which
writes only changed cells) and, for the selected identity, to the detail pane. Each identity's
probe runs as its own async worker in its own group, so a refresh of one identity cancels only
that identity's probe; the next round is scheduled when the last probe of a round finishes.

Paint first (docs/design.md, "Start-up"): the first frame shows the identities from the config
and imports nothing heavy. Then a worker thread reads the history database and the rows show
the last values (stale, with their age); then it imports the engine (httpx, the monitor, the
keyring), and the first round starts. Everything else is imported when first used.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen
from textual.timer import Timer

from pullwatch.durations import at_most, format_coarse
from pullwatch.reading import Reading, State
from pullwatch.tui.no_color import keep_contrast
from pullwatch.tui.screens.dashboard import DashboardScreen, key_of, with_key
from pullwatch.tui.widgets.identity_table import Column, IdentityTable

if TYPE_CHECKING:  # imported where used, after the first frame (see the module's docstring)
    from pullwatch.alerts import AlertTracker
    from pullwatch.assess import Assessment, Policy
    from pullwatch.history import BackgroundWriter, History
    from pullwatch.hub.client import HubClient, ProbeResult
    from pullwatch.identities.model import Identity
    from pullwatch.identities.secrets import KeyringHealth
    from pullwatch.monitor import Monitor
    from pullwatch.recent import RecentHistory
    from pullwatch.runtime import Runtime
    from pullwatch.tui.triage import TriageActions

MIN_INTERVAL = 10.0
RECENT_SECONDS = 24 * 3600.0  # source changes and estimates loaded at start
SPARKLINE_SECONDS = 6 * 3600.0  # the longest window in use: a sparkline shows one window
TERMINAL_CHECK_SECONDS = 2.0
PAINT_WAIT_SECONDS = 1.0  # at most this long for the last values' frame before the engine


class IdentityCommands(Provider):
    """Command palette: every action, for every identity, by name."""

    def _commands(self, only: str | None = None) -> list[tuple[str, str, Callable[[], Any]]]:
        app = self.app
        assert isinstance(app, PullwatchApp)
        commands: list[tuple[str, str, Callable[[], Any]]] = []
        row = "on the selected row"
        for identity in app.monitor.identities:
            if only is not None and identity.label != only:
                continue
            label = identity.label
            commands += [
                (
                    f"Token check: {label}",
                    with_key(f"{key_of('app.token_check')} {row}", "a fresh token request"),
                    partial(app.open_token_check, label),
                ),
                (
                    f"HEAD check: {label}",
                    with_key(f"{key_of('app.head_check')} {row}", "one HEAD, every header"),
                    partial(app.open_head_check, label),
                ),
                (
                    f"Refresh: {label}",
                    with_key(f"enter {row}", "probe this identity now"),
                    partial(app.refresh_identity, label),
                ),
                (
                    f"Edit identity: {label}",
                    with_key(f"{key_of('app.edit_identity')} {row}", "label, username, token"),
                    partial(app.edit_identity, label),
                ),
                (
                    f"Delete identity: {label}",
                    with_key(f"{key_of('app.delete_identity')} {row}", "and its keyring entry"),
                    partial(app.delete_identity, label),
                ),
            ]
        return commands

    async def discover(self) -> Hits:
        """Before anything is typed: the selected identity's commands (a search finds all)."""
        app = self.app
        assert isinstance(app, PullwatchApp)
        selected = app.dashboard.selected_label if app._has_dashboard else None
        for name, help_text, callback in self._commands(only=selected or ""):
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


class PullwatchApp(App[None]):
    """The live dashboard."""

    CSS_PATH = "app.tcss"
    TITLE = "pullwatch"
    TICK_SECONDS = 1.0  # the countdowns' clock (tests shorten it)
    ALERT_SECONDS = 10.0  # how long an alert's toast stays (snapshots keep it: wall-clock time)
    COMMANDS = App.COMMANDS | {IdentityCommands}
    BINDINGS = [
        Binding("question_mark", "help", "more", key_display="?"),
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
        keep_contrast(self)  # NO_COLOR: bad states bold or reversed, text never grey on grey
        self._runtime = runtime
        self.clock = runtime.clock
        self.demo = demo
        self.interval = max(MIN_INTERVAL, float(interval or runtime.config.settings.interval))
        self.auto_rounds = auto_rounds
        self.watch_terminal = watch_terminal
        # The engine - client, monitor, policy - is built after the first frame (`_engine`).
        self._client: HubClient | None = None
        self._monitor: Monitor | None = None
        self._policy_now: Policy | None = None
        self._placeholders: dict[str, Reading] = {}  # rows before the monitor has readings
        self.paused = False
        self.rounds_completed = 0
        self.round_finished = asyncio.Event()
        self._in_flight: dict[str, object] = {}
        self._round_pending: set[str] = set()
        self._round_active = False
        self._round_timer: Timer | None = None
        self._next_round_at: float | None = None
        self.keyring_health: KeyringHealth | None = None
        self._registry_problem: str | None = None
        self._quitting = False
        self.compare = False
        self._recent_history: RecentHistory | None = None
        self._alert_tracker: AlertTracker | None = None
        self._writer: BackgroundWriter | None = None
        self._unrecorded: list[Reading] = []  # readings taken before the history was loaded
        self.history_loaded = asyncio.Event()
        self._watching = False  # the engine is built and the first round started
        self._dashboard_filled = False
        self._first_frame_shown = False  # Textual's Ready: the first frame is on the terminal
        self._started_watching = False
        self._config_stamp = self._stamp()
        self._triage: TriageActions | None = None

    @property
    def runtime(self) -> Runtime:
        return self._runtime

    # -- the engine, built after the first frame (or when something needs it sooner) ---------

    @property
    def monitor(self) -> Monitor:
        if self._monitor is None:
            self._engine()
        assert self._monitor is not None
        return self._monitor

    def _engine(self) -> None:
        """The client and the monitor (imports httpx and the keyring's wrapper); idempotent."""
        if self._monitor is not None:
            return
        self._client = self.runtime.client()
        monitor = self.runtime.monitor(self._client)
        monitor.sinks.append(self._record)
        self._monitor = monitor

    def _record(self, reading: Reading) -> None:
        """The monitor's sink: the history database and the recent past. A reading taken
        before they are loaded (a key pressed at once) waits for them, then is recorded."""
        if not self.history_loaded.is_set():
            self._unrecorded.append(reading)
            return
        if self._writer is not None:
            self._writer.submit(reading)
        self._recent.add(reading)

    @property
    def _policy(self) -> Policy:
        if self._policy_now is None:
            self._policy_now = self.runtime.policy()
        return self._policy_now

    @_policy.setter
    def _policy(self, policy: Policy) -> None:
        self._policy_now = policy

    @property
    def _recent(self) -> RecentHistory:
        if self._recent_history is None:
            from pullwatch.recent import RecentHistory

            self._recent_history = RecentHistory()
        return self._recent_history

    @_recent.setter
    def _recent(self, recent: RecentHistory) -> None:
        self._recent_history = recent

    @property
    def _alerts(self) -> AlertTracker:
        if self._alert_tracker is None:
            from pullwatch.alerts import AlertTracker

            self._alert_tracker = AlertTracker()
        return self._alert_tracker

    @property
    def triage(self) -> TriageActions:
        if self._triage is None:
            from pullwatch.tui.triage import TriageActions

            self._triage = TriageActions(self)
        return self._triage

    def _identities(self) -> list[Identity]:
        """The identities: the monitor's, or before it exists the config's."""
        if self._monitor is not None:
            return self._monitor.identities
        return list(self.runtime.config.identities)

    def _readings(self) -> list[Reading]:
        """The latest reading of each identity; before the monitor exists, `unknown` ones
        (assessed with the history, they show the last values, stale)."""
        if self._monitor is not None:
            return self._monitor.readings()
        now = self.clock.time()
        readings = []
        for identity in self.runtime.config.identities:
            reading = self._placeholders.get(identity.label)
            if reading is None or reading.username != identity.username:
                reading = Reading.unknown(identity.label, identity.username, now)
                self._placeholders[identity.label] = reading
            readings.append(reading)
        return readings

    def _latest(self, label: str) -> Reading | None:
        if self._monitor is not None:
            return self._monitor.latest(label)
        return next((r for r in self._readings() if r.label == label), None)

    # -- parts -------------------------------------------------------------------------------

    def get_default_screen(self) -> DashboardScreen:
        return DashboardScreen(
            registry=self.runtime.registry,
            repository=self.runtime.repository,
            demo=self.demo,
            on_ready=self.on_dashboard_screen_ready,  # filled before the first frame
        )

    @property
    def _shutting_down(self) -> bool:
        """The app is shutting down: its widgets are going, or gone.

        Textual stops running the app (`is_running`) before it takes any screen down; our own
        `on_unmount` comes only after the screens are gone. Until then the tick timer and probe
        workers still run (a pilot's app is shut down without `exit()`, so its timers keep
        firing; a quit cancels the probes, whose `finally` blocks run while the screens go) -
        so everything that touches a widget asks this first.
        """
        return self._quitting or not self.is_running

    @property
    def _has_dashboard(self) -> bool:
        """False once the app is closing (see `_shutting_down`)."""
        return (
            not self._shutting_down
            and bool(self.screen_stack)
            and isinstance(self.screen_stack[0], DashboardScreen)
        )

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
        table.add_feature_column(  # drops out before the gauge at 80 columns
            Column("runsout", "Runs out", 9, 5), self._runs_out_cell, ticking=True
        )
        self._show_identities()  # the labels from the config: nothing else is known yet
        self.set_interval(self.TICK_SECONDS, self._tick)
        if self.watch_terminal and not self.is_headless:
            self._watch_terminal()
        if self._first_frame_shown:  # (the dashboard came after the first frame)
            self._start_watching()

    def on_ready(self) -> None:
        """The first frame is on the terminal (Textual's Ready event, sent right after it).

        Only now does the rest start: worker threads started before would hold the GIL while
        the dashboard paints (benchmarks/startup.py: ~30 ms later to the first paint), and
        waiting for a refresh after it (`call_after_refresh`) costs up to a frame more.
        """
        self._first_frame_shown = True
        if self._dashboard_filled:
            self._start_watching()

    def _start_watching(self) -> None:
        if self._shutting_down or self._started_watching:
            return
        self._started_watching = True
        self._ask_passphrase()
        self._load_history()  # then the last values, the engine and the first round

    async def on_unmount(self) -> None:
        self._quitting = True  # cancelled probes must not schedule another round
        self._cancel_timer()
        self.workers.cancel_all()
        if self._client is not None:
            await self._client.aclose()
        if self._writer is not None:
            self._writer.close()

    # -- history ----------------------------------------------------------------------------

    def open_history(self) -> History:
        from pullwatch.history import History

        settings = self.runtime.config.settings
        return History(
            self.runtime.paths.history_db, clock=self.clock, retention_days=settings.retention_days
        )

    @work(thread=True, exit_on_error=False, group="history-load")
    def _load_history(self) -> None:
        """In a thread: recent readings from the database, shown as the last values; then the
        engine's imports; then, on the event loop, the engine and the first round.

        The database keeps each bucket's estimate and each identity's sources up to date, so
        this reads O(identities) rows plus the sparklines' last hours - never a day's replay.
        """
        try:
            from pullwatch.history import HistoryError

            problem: str | None = None
            labels = [i.label for i in self._identities()]
            try:
                with self.open_history() as history:
                    recent = history.recent(
                        self.clock.time(), RECENT_SECONDS, series=SPARKLINE_SECONDS, labels=labels
                    )
            except HistoryError as exc:
                from pullwatch.recent import RecentHistory

                recent, problem = RecentHistory(), str(exc)
            import pullwatch.assess  # here, not on the event loop

            self.call_from_thread(self._history_loaded, recent, problem)
            # The engine (httpx, the monitor, the keyring's wrapper) is imported here too, once
            # the last values are on the screen (a refresh is not held up by it).
            painted = threading.Event()
            self.call_from_thread(self.call_after_refresh, painted.set)
            painted.wait(PAINT_WAIT_SECONDS)
            import pullwatch.hub.client
            import pullwatch.monitor  # noqa: F401
        finally:  # whatever happened above, the dashboard goes on to watch
            if not self._shutting_down:
                self.call_from_thread(self._start_engine)

    def _history_loaded(self, recent: RecentHistory, problem: str | None) -> None:
        self._recent = recent
        if problem is None:
            from pullwatch.history import BackgroundWriter

            self._writer = BackgroundWriter(self.open_history)
        else:
            self.notify(f"history off: {problem}", severity="warning", timeout=10)
        self.history_loaded.set()
        early, self._unrecorded = self._unrecorded, []
        for reading in early:
            self._record(reading)
        if self._has_dashboard:  # the last known values, until the first round answers
            for reading in self._readings():
                self.dashboard.table.show(self._assess_row(reading))
            self._select(self.dashboard.selected_label)

    def _start_engine(self) -> None:
        """The client and monitor, the keyring's health, and the first round."""
        if self._shutting_down:
            return
        self._engine()
        self._watching = True
        self._check_keyring()
        if self.auto_rounds:
            self.start_round()

    def _recovers_cell(self, assessment: Assessment, now: float) -> Text:
        recovery = assessment.recovery
        if assessment.quota is None or recovery is None:
            return Text("-", style="dim")
        if not recovery.recovering:
            return Text("full", style="dim")
        if assessment.state is State.EXHAUSTED:
            return Text(f"+1 {at_most(recovery.next_in(now) or 0)}", style="bold")
        return Text(at_most(recovery.full_in(now) or 0))

    def _runs_out_cell(self, assessment: Assessment, now: float) -> Text:
        """`~25m` while the bucket drains (bold when within warn_within), else a word."""
        forecast = assessment.forecast
        quota = assessment.quota
        if forecast is None or quota is None:
            return Text("-", style="dim")
        stale = quota.stale
        status = forecast.status.value
        if status == "exhausted" or assessment.state is State.EXHAUSTED:
            return Text("now", style="dim" if stale else "bold")
        if status == "not_enough":
            return Text("…", style="dim")
        if status in ("not_draining", "levels_off"):
            return Text("no", style="dim")  # the detail pane says which
        left = assessment.runs_out_in(now)
        if left is None:
            return Text("-", style="dim")
        text = "any min" if left < 60 else f"~{format_coarse(left)}"
        if stale:
            return Text(text, style="dim")
        return Text(text, style="bold yellow" if assessment.runs_out_soon(now) else "")

    # -- assessing ----------------------------------------------------------------------------

    def _assess_row(self, reading: Reading) -> Assessment:
        """What a table row shows: state and quota (no advice or insights: the pane has them)."""
        from pullwatch.assess import assess

        return assess(reading, recent=self._recent, policy=self._policy, shared_with=())

    def _assess_full(self, reading: Reading) -> Assessment:
        """Everything, for the detail pane, the checks and the report."""
        from pullwatch.assess import assess

        return assess(reading, others=self._readings(), recent=self._recent, policy=self._policy)

    def assessments(self) -> list[Assessment]:
        return [self._assess_full(r) for r in self.monitor.readings()]

    def selected_assessment(self) -> Assessment | None:
        label = self.dashboard.selected_label
        reading = self.monitor.latest(label) if label else None
        return self._assess_full(reading) if reading is not None else None

    # -- rounds and probes ------------------------------------------------------------------

    def start_round(self, *, ignore_backoff: bool = False) -> None:
        """Probe every due identity now; the next round is scheduled when they all finish.

        Identities added, removed or edited by another process (`pullwatch identity add` in
        another shell) are picked up first.
        """
        self._cancel_timer()
        if self._shutting_down:  # a round timer that fired as the app began to close
            return
        self._follow_config()
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

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.runtime.paths.config_file.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def _follow_config(self) -> None:
        """Reload the config when its file changed since we last read it."""
        stamp = self._stamp()
        if stamp == self._config_stamp:
            return
        self._config_stamp = stamp
        self.identities_changed(None, reprobe=False)

    def _launch(
        self,
        identity: Identity,
        *,
        force: bool,
        ignore_backoff: bool = False,
        retry_auth: bool = False,
    ) -> None:
        ticket = object()
        self._in_flight[identity.label] = ticket
        self.run_worker(
            self._probe(
                identity,
                ticket,
                force=force,
                ignore_backoff=ignore_backoff,
                retry_auth=retry_auth,
            ),
            name=f"probe {identity.label}",
            group=f"probe:{identity.label}",
            exclusive=True,
            exit_on_error=False,
        )

    async def _probe(
        self,
        identity: Identity,
        ticket: object,
        *,
        force: bool,
        ignore_backoff: bool,
        retry_auth: bool,
    ) -> None:
        try:
            if force:
                result = await self.monitor.check(identity, retry_auth=retry_auth)
                reading = result.reading
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
        self.runtime.ledger.flush()  # small; once a round
        self._registry_problem = self._shared_failure()
        if self.compare and self._has_dashboard:
            self._show_identities()  # re-rank once a round, not on every reading
        self.rounds_completed += 1
        self.round_finished.set()
        self._schedule_next()

    def _schedule_next(self) -> None:
        self._cancel_timer()
        if self.paused or not self.auto_rounds or self._shutting_down:
            return
        # A large round spreads its probes over part of the interval (monitor.py): that time
        # is taken out of the pause, so each identity still comes round about once an interval.
        spread = 0.0 if self._monitor is None else self._monitor.spread_time()
        pause = max(self.interval - spread, 1.0)
        self._next_round_at = self.clock.time() + pause
        self._round_timer = self.set_timer(pause, self.start_round)

    def _cancel_timer(self) -> None:
        if self._round_timer is not None:
            self._round_timer.stop()
            self._round_timer = None
        self._next_round_at = None

    async def wait_for_round(self) -> None:
        """Until the round in progress - or the first one, if it has not started - is done.
        For tests and scripts."""
        pending = (
            self._round_active or bool(self._in_flight) or (self.auto_rounds and not self._watching)
        )
        if not pending:
            return
        target = self.rounds_completed + 1
        while self.rounds_completed < target:
            self.round_finished.clear()
            await self.round_finished.wait()

    def refresh_identity(self, label: str, *, retry_auth: bool = True) -> None:
        """Probe one identity now, as the user asked (a refused login is tried again)."""
        identity = self._identity(label)
        if identity is not None:
            self._launch(identity, force=True, retry_auth=retry_auth)
            self._refresh_status()

    # -- showing -----------------------------------------------------------------------------

    def _show_identities(self) -> None:
        """Rows in config order, or best first in comparison mode (★ marks the best); before
        anything is read (the first frame), the labels only."""
        if self._monitor is None and not self.history_loaded.is_set():
            self.dashboard.show_identities([i.label for i in self._identities()], {})
            self._refresh_status()
            return
        rows = {r.label: self._assess_row(r) for r in self._readings()}
        if self.compare:
            from pullwatch.comparison import best_to_use, ranked

            now = self.clock.time()
            order = ranked(list(rows.values()), now)
            labels = [a.label for a in order]
            best = best_to_use(order, now)
            marks = {best.label: "★"} if best else {}
        else:
            labels = [identity.label for identity in self._identities()]
            marks = {}
        self.dashboard.show_identities(labels, rows)
        self.dashboard.table.set_marks(marks)
        self._select(self.dashboard.selected_label)
        self._refresh_status()

    def _show(self, reading: Reading) -> None:
        if reading.state is not State.ERROR:
            self._registry_problem = None  # one identity got through: not registry-wide
        table = self.dashboard.table
        row = self._assess_row(reading)
        table.show(row)
        if reading.label == table.selected_label:
            self._select(reading.label)
        alert = self._alerts.observe(row, self.clock.time())
        if alert is not None:
            from pullwatch.alerts import Level

            severity: Literal["error", "warning"] = (
                "error" if alert.level is Level.EXHAUSTED else "warning"
            )
            self.notify(
                alert.message,
                title="pullwatch alert",
                severity=severity,
                timeout=self.ALERT_SECONDS,
            )
            if self.runtime.config.settings.bell:
                self.bell()

    def _select(self, label: str | None) -> None:
        if self._monitor is None and not self.history_loaded.is_set():
            return  # nothing read yet: the pane fills in with the last values
        monitor = self._monitor
        reading = self._latest(label) if label else None
        now = self.clock.time()
        assessment = series = None
        ahead: str | None = None
        if reading is not None:
            assessment = self._assess_full(reading)
            window = assessment.quota.window_seconds if assessment.quota else None
            series = self._recent.series(reading.label, now - (window or 21600))
            if assessment.runs_out_in(now) is not None:
                from pullwatch.advice import has_room
                from pullwatch.comparison import outlook

                roomy = [r for r in self._readings() if has_room(r)]
                ahead = outlook(assessment, [self._assess_row(r) for r in roomy], now)
        self.dashboard.detail.show(
            assessment,
            now=now,
            next_attempt=monitor.next_attempt_at(label) if label and monitor else None,
            halted=monitor.is_halted(label) if label and monitor else False,
            series=series,
            outlook=ahead,
        )

    def on_identity_table_row_highlighted(self, event: IdentityTable.RowHighlighted) -> None:
        self._select(event.label)

    def on_identity_table_row_selected(self, event: IdentityTable.RowSelected) -> None:
        self.refresh_identity(event.label, retry_auth=True)

    def _refresh_status(self) -> None:
        if not self._has_dashboard:
            return
        status = self.dashboard.status
        status.identity_count = len(self._identities())
        status.probing = len(self._in_flight)
        status.paused = self.paused
        status.comparing = self.compare
        status.next_round_in = (
            None if self._next_round_at is None else self._next_round_at - self.clock.time()
        )
        status.keyring_problem = self.keyring_problem()
        status.history_problem = self._history_problem()
        status.registry_problem = self._registry_problem
        status.redraw()

    def _shared_failure(self) -> str | None:
        """When every identity failed for one registry-wide reason (registry down, DNS, TLS, a
        missing probe manifest): that reason, said once in the header. The rows keep their own
        states and the detail pane the steps. Checked once a round."""
        readings = self.monitor.readings()
        if not readings or any(r.state is not State.ERROR for r in readings):
            return None
        from pullwatch.output import registry_wide_failure

        shared = registry_wide_failure([self._assess_row(r) for r in readings])
        return None if shared is None else (shared.reason or shared.state.label)

    def keyring_problem(self) -> str | None:
        health = self.keyring_health
        return health.message if health is not None and not health.ok else None

    def _history_problem(self) -> str | None:
        """The history writer's failures after start-up, said where the user looks."""
        if self._writer is None:
            return None
        status = self._writer.status
        if not status.failed:
            return None
        return f"{status.failed} readings not recorded: {status.last_error}"

    def _tick(self) -> None:
        if not self._has_dashboard:  # quitting: the dashboard's widgets may be gone
            return
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
            from pullwatch.tui.screens.passphrase import PassphraseScreen

            self.push_screen(PassphraseScreen(unlocker), self._passphrase_done)

    def _passphrase_done(self, unlocked: bool | None) -> None:
        if self._shutting_down:
            return
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

    # -- the triage host (see tui/triage.py) -------------------------------------------------

    def show_screen(
        self, screen: Screen[Any], callback: Callable[[Any], None] | None = None
    ) -> None:
        self.push_screen(screen, callback)

    def report_target(self) -> tuple[Path, bool]:
        """The data dir's `reports/`; in the demo, whose data dir is removed when it quits,
        the current directory (used as it is, never tightened)."""
        if self.demo:
            return Path.cwd(), False
        return self.runtime.paths.data_dir / "reports", True

    def in_thread(self, work: Callable[[], None], group: str) -> None:
        self.run_worker(work, thread=True, group=group, exit_on_error=False)

    def from_thread(self, callback: Callable[..., None], *args: Any) -> None:
        self.call_from_thread(callback, *args)

    # -- actions -----------------------------------------------------------------------------

    def _identity(self, label: str | None) -> Identity | None:
        if label is None:
            return None
        return next((i for i in self._identities() if i.label == label), None)

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

    def action_plan(self) -> None:
        self.triage.plan()

    def action_explain(self) -> None:
        self.triage.explain()

    def action_import_docker(self) -> None:
        self.triage.import_docker()

    def action_report(self) -> None:
        self.triage.report()

    def open_token_check(self, label: str) -> None:
        identity = self._identity(label)
        if identity is None:
            return
        from pullwatch.tui.screens.checks import CheckScreen, render_token_check

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

        async def run() -> tuple[ProbeResult, Assessment]:
            result = await self.monitor.check(identity, retry_auth=True)
            if self._has_dashboard:
                self._show(result.reading)
            return result, self._assess_full(result.reading)

        from pullwatch.tui.screens.checks import CheckScreen, render_head_check

        who = identity.username or "anonymous"
        self.push_screen(
            CheckScreen(f"HEAD check · {identity.label} ({who})", run, render_head_check)
        )

    def action_add_identity(self) -> None:
        from pullwatch.tui.screens.identity_form import IdentityForm

        self.push_screen(IdentityForm(store=self.runtime.store, existing=None), self._form_closed)

    def action_edit_identity(self) -> None:
        identity = self._selected_identity()
        if identity is not None:
            self.edit_identity(identity.label)

    def edit_identity(self, label: str) -> None:
        identity = self._identity(label)
        if identity is not None:
            from pullwatch.tui.screens.identity_form import IdentityForm

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

        from pullwatch.tui.screens.confirm import ConfirmScreen

        self.push_screen(ConfirmScreen(question), answered)

    @work(thread=True, exit_on_error=False, group="store")
    def _remove_identity(self, label: str) -> None:
        try:
            result = self.runtime.store.remove(label)
        except Exception as exc:  # ConfigError, SecretStoreError: show, lose nothing
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=10)
            return
        if result.warning:
            self.call_from_thread(self.notify, result.warning, severity="warning", timeout=10)
        self.call_from_thread(self.identities_changed, None)

    def _form_closed(self, saved_label: str | None) -> None:
        if saved_label is not None:  # None: the form was cancelled
            self.notify(f"Saved {saved_label}: probing it now")
            self.identities_changed(saved_label)

    def identities_changed(self, focus: str | None, *, reprobe: bool = True) -> None:
        """After an add, edit or delete (here or by another process): reload, re-key the table,
        probe what changed. `focus` was just saved here: it is probed at once, even when only
        its token changed (a saved token is the user asking to try the login again)."""
        if not self._has_dashboard:  # a store worker that finished as the app closed
            return
        try:
            config = self.runtime.reload()
        except Exception as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        self._config_stamp = self._stamp()
        self._policy = self.runtime.policy()
        before = {i.label: i for i in self.monitor.identities}
        self.monitor.set_identities(config.identities)
        for label, identity in before.items():
            if config.get(label) != identity:
                self._recent.forget(label)
        self._show_identities()
        if focus is not None:
            self.dashboard.focus_identity(focus)
            self._select(focus)
        for identity in config.identities:
            changed = before.get(identity.label) != identity
            if changed or identity.label == focus:
                self.monitor.forget_secret(identity.label)
                if reprobe or changed:
                    self._launch(identity, force=True, retry_auth=identity.label == focus)
        self._refresh_status()

    def action_help(self) -> None:
        from pullwatch.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's, then the dashboard's: each help line starts with the command's key."""
        for command in super().get_system_commands(screen):
            if command.title != "Quit":  # said again below, with its key
                yield command
        yield SystemCommand(
            "Add identity",
            with_key(key_of("app.add_identity"), "anonymous, or a login + access token"),
            self.action_add_identity,
        )
        yield SystemCommand(
            "Refresh all",
            with_key(key_of("app.refresh_all"), "probe every identity now"),
            self.action_refresh_all,
        )
        yield SystemCommand(
            "Pause / resume",
            with_key(key_of("app.toggle_pause"), "stop or restart the automatic rounds"),
            self.action_toggle_pause,
        )
        yield SystemCommand(
            "Compare identities",
            with_key(key_of("app.toggle_compare"), "best first; ★ marks the one to pull with"),
            self.action_toggle_compare,
        )
        yield from self.triage.commands()
        yield SystemCommand(
            "Help", with_key("?", "every key, and what each state means"), self.action_help
        )
        yield SystemCommand("Quit", with_key("q", "quit pullwatch"), self.action_quit)


def make_app(
    runtime: Runtime,
    *,
    demo: bool = False,
    interval: float | None = None,
    auto_rounds: bool = True,
    watch_terminal: bool = True,
) -> PullwatchApp:
    """The app for the CLI and the tests alike."""
    return PullwatchApp(
        runtime,
        demo=demo,
        interval=interval,
        auto_rounds=auto_rounds,
        watch_terminal=watch_terminal,
    )
