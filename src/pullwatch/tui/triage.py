"""The dashboard's triage actions: plan (`p`), explain (`x`), import Docker logins (`i`), report
(`w`), and their command-palette entries. A mixin of `PullwatchApp`, kept apart so the app stays
a thin shell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from textual import work
from textual.app import SystemCommand

from pullwatch.history import HistoryError
from pullwatch.insights import by_label, find_insights
from pullwatch.report import HistorySummary, build_report, history_context
from pullwatch.tui.screens.explain import ExplainScreen
from pullwatch.tui.screens.import_docker import ImportDockerScreen
from pullwatch.tui.screens.plan import PlanScreen
from pullwatch.tui.screens.report import ReportScreen

if TYPE_CHECKING:
    from pullwatch.tui.app import PullwatchApp


class TriageActions:
    """Actions for `PullwatchApp` (which provides monitor, runtime, dashboard, clock...)."""

    def action_plan(self) -> None:
        app: PullwatchApp = self  # type: ignore[assignment]
        label = app.dashboard.selected_label
        reading = app.monitor.latest(label) if label else None
        app.push_screen(PlanScreen(reading))

    def action_explain(self) -> None:
        app: PullwatchApp = self  # type: ignore[assignment]
        app.push_screen(ExplainScreen())

    def action_import_docker(self) -> None:
        app: PullwatchApp = self  # type: ignore[assignment]
        app.push_screen(ImportDockerScreen(store=app.runtime.store), app._form_closed)

    def action_report(self) -> None:
        self._report_with_history()

    @work(thread=True, exit_on_error=False, group="report-history")
    def _report_with_history(self) -> None:
        """Summaries from the history database (in a thread), then the report."""
        app: PullwatchApp = self  # type: ignore[assignment]
        readings = app.monitor.readings()
        summaries: dict[str, HistorySummary] = {}
        recovers: dict[str, float] = {}
        try:
            with app._open_history() as history:
                summaries, recovers = history_context(history, readings, app.clock.time())
        except HistoryError:
            pass  # the report is still worth having without it
        app.call_from_thread(self.open_report, summaries, recovers)

    def open_report(
        self,
        history: Mapping[str, str | HistorySummary] | None = None,
        recovers_in: Mapping[str, float] | None = None,
    ) -> None:
        """The triage report from the latest readings; `history` adds a summary per label."""
        app: PullwatchApp = self  # type: ignore[assignment]
        readings = app.monitor.readings()
        health = app.keyring_health
        report = build_report(
            readings,
            generated_at=app.clock.time(),
            registry=app.runtime.registry,
            repository=app.runtime.repository,
            keyring=None if health is None or health.ok else health.message,
            warnings=by_label(find_insights(readings)),
            history=history,
            recovers_in=recovers_in,
        )
        app.push_screen(ReportScreen(report, save_dir=app.runtime.paths.data_dir / "reports"))

    def triage_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "Triage report",
            "a redacted snapshot of every identity, for a ticket",
            self.action_report,
        )
        yield SystemCommand(
            "Scan-budget planner",
            "will a scanner's schedule fit the selected identity's limit?",
            self.action_plan,
        )
        yield SystemCommand(
            "Explain an error line",
            "which limit a pasted 429 or login error is",
            self.action_explain,
        )
        yield SystemCommand(
            "Import Docker logins",
            "the Docker Hub login from ~/.docker/config.json, into the keyring",
            self.action_import_docker,
        )
