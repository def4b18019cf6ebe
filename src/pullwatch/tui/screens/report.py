"""`w`: the triage report of every identity, redacted, to copy or save for a ticket.

Built from the latest readings (no probe). `c` copies it as Markdown (OSC 52), `s` saves it as
a Markdown file readable by the owner only, under the data directory's `reports/` (the demo,
whose data directory goes away when it quits: in the current directory).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from pullwatch.paths import ensure_private_dir
from pullwatch.report import Report, render_markdown, render_text
from pullwatch.tui.widgets.footer import KeyFooter


def save_report(directory: Path, markdown: str, at: float, *, own_dir: bool = True) -> Path:
    """Write the report atomically as `pullwatch-report-<UTC time>.md` (mode 0600). `own_dir`:
    the directory is pullwatch's, created (or tightened) to 0700; else it is used as it is."""
    if own_dir:
        ensure_private_dir(directory)
    stamp = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = directory / f"pullwatch-report-{stamp}.md"
    fd, temp = tempfile.mkstemp(prefix=".report.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(markdown)
        Path(temp).replace(target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


class ReportScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("c", "copy", "Copy as Markdown"),
        Binding("s", "save", "Save to a file"),
    ]
    DEFAULT_CSS = """
    ReportScreen > #report-title { height: 1; padding: 0 1; background: $panel;
                                   text-style: bold; }
    ReportScreen > VerticalScroll { padding: 0 1; }
    """

    def __init__(self, report: Report, *, save_dir: Path, own_dir: bool = True) -> None:
        super().__init__()
        self.report = report
        self.markdown = render_markdown(report)
        self._save_dir = save_dir
        self._own_dir = own_dir
        self.saved_to: Path | None = None

    def compose(self) -> ComposeResult:
        count = len(self.report.identities)
        yield Static(
            Text(f"Triage report · {count} identities · redacted: no secrets or tokens"),
            id="report-title",
        )
        with VerticalScroll():
            yield Static(Text(render_text(self.report)), id="report-body")
        yield KeyFooter(compact=True)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.markdown)
        lines = self.markdown.count("\n")
        self.notify(f"Copied the report ({lines} lines of Markdown) via the terminal (OSC 52)")

    def action_save(self) -> None:
        self._save()

    @work(thread=True, exit_on_error=False, group="report-save", exclusive=True)
    def _save(self) -> None:
        try:
            path = save_report(
                self._save_dir, self.markdown, self.report.generated_at, own_dir=self._own_dir
            )
        except OSError as exc:
            self.app.call_from_thread(
                self.notify, f"not saved: {exc.strerror or exc}", severity="error"
            )
            return
        self.saved_to = path
        self.app.call_from_thread(self.notify, f"Saved {path}")
