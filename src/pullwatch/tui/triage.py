"""The dashboard's triage actions: plan (`p`), explain (`x`), import Docker logins (`i`), report
(`w`), and their command-palette entries.

`TriageActions` works through `TriageHost`, a small typed protocol the app implements, so this
module never imports the app (no cycle) and never reaches into its private parts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from textual.app import SystemCommand
from textual.screen import Screen

from pullwatch.assess import Assessment
from pullwatch.history import History, HistoryError
from pullwatch.report import HistorySummary, build_report, history_summaries
from pullwatch.runtime import Runtime
from pullwatch.tui.screens.dashboard import key_of, with_key
from pullwatch.tui.screens.explain import ExplainScreen
from pullwatch.tui.screens.import_docker import ImportDockerScreen
from pullwatch.tui.screens.plan import PlanScreen
from pullwatch.tui.screens.report import ReportScreen


class TriageHost(Protocol):
    """What the triage actions need from the app."""

    @property
    def runtime(self) -> Runtime: ...

    def assessments(self) -> list[Assessment]: ...

    def selected_assessment(self) -> Assessment | None: ...

    def keyring_problem(self) -> str | None: ...

    def open_history(self) -> History: ...

    def report_target(self) -> tuple[Path, bool]:
        """Where `s` saves a report, and whether that directory is pullwatch's own."""
        ...

    def identities_changed(self, focus: str | None) -> None: ...

    def show_screen(
        self, screen: Screen[Any], callback: Callable[[Any], None] | None = None
    ) -> None: ...

    def in_thread(self, work: Callable[[], None], group: str) -> None: ...

    def from_thread(self, callback: Callable[..., None], *args: Any) -> None: ...


class TriageActions:
    def __init__(self, host: TriageHost) -> None:
        self._host = host

    def plan(self) -> None:
        self._host.show_screen(PlanScreen(self._host.selected_assessment()))

    def explain(self) -> None:
        self._host.show_screen(ExplainScreen())

    def import_docker(self) -> None:
        host = self._host

        def closed(label: str | None) -> None:
            if label is not None:
                host.identities_changed(label)

        host.show_screen(ImportDockerScreen(store=host.runtime.store), closed)

    def report(self) -> None:
        """Summaries from the history database (in a thread), then the report."""
        host = self._host
        assessments = host.assessments()
        now = host.runtime.clock.time()

        def summarise() -> None:
            summaries: dict[str, HistorySummary] = {}
            try:
                with host.open_history() as history:
                    readings = [a.reading for a in assessments]
                    summaries = history_summaries(history, readings, now)
            except HistoryError:
                pass  # the report is still worth having without it
            host.from_thread(self.open_report, assessments, summaries)

        host.in_thread(summarise, "report-history")

    def open_report(
        self,
        assessments: list[Assessment],
        history: Mapping[str, str | HistorySummary] | None = None,
    ) -> None:
        """The triage report from the latest assessments; `history` adds a summary per label."""
        host = self._host
        runtime = host.runtime
        report = build_report(
            assessments,
            generated_at=runtime.clock.time(),
            registry=runtime.registry,
            repository=runtime.repository,
            keyring=host.keyring_problem(),
            history=history,
        )
        directory, own = host.report_target()
        host.show_screen(ReportScreen(report, save_dir=directory, own_dir=own))

    def commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "Triage report",
            with_key(key_of("app.report"), "a redacted snapshot of every identity, for a ticket"),
            self.report,
        )
        yield SystemCommand(
            "Scan-budget planner",
            with_key(key_of("app.plan"), "will a scanner fit the selected identity's limit?"),
            self.plan,
        )
        yield SystemCommand(
            "Explain an error line",
            with_key(key_of("app.explain"), "which limit a pasted 429 or login error is"),
            self.explain,
        )
        yield SystemCommand(
            "Import Docker logins",
            with_key(key_of("app.import_docker"), "Docker's Docker Hub login, into the keyring"),
            self.import_docker,
        )
