"""The dashboard screen: header line, identity table, detail pane, footer.

It renders what the app hands it and turns keys and clicks into app actions; the monitor and
the round scheduling live in the app, so they keep running while another screen is on top.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer

from pullwatch.reading import Reading
from pullwatch.tui.widgets.detail_pane import DetailPane
from pullwatch.tui.widgets.identity_table import IdentityTable
from pullwatch.tui.widgets.status_line import StatusLine


class DashboardScreen(Screen[None]):
    BINDINGS = [
        Binding("r", "app.refresh_all", "Refresh"),
        Binding("space", "app.toggle_pause", "Pause", key_display="␣"),
        Binding("t", "app.token_check", "Token"),
        Binding("h", "app.head_check", "HEAD"),
        Binding("a", "app.add_identity", "Add"),
        Binding("e", "app.edit_identity", "Edit"),
        Binding("d", "app.delete_identity", "Delete"),
    ]

    def __init__(self, *, registry: str, repository: str, demo: bool) -> None:
        super().__init__(id="dashboard")
        self._registry = registry
        self._repository = repository
        self._demo = demo

    def compose(self) -> ComposeResult:
        yield StatusLine(
            registry=self._registry, repository=self._repository, demo=self._demo, id="status"
        )
        yield IdentityTable(id="identities")
        yield DetailPane(id="detail")
        yield Footer(compact=True)

    @property
    def table(self) -> IdentityTable:
        return self.query_one(IdentityTable)

    @property
    def detail(self) -> DetailPane:
        return self.query_one(DetailPane)

    @property
    def status(self) -> StatusLine:
        return self.query_one(StatusLine)

    class Ready(Message):
        """The dashboard's widgets exist: the app can start showing and probing."""

    def on_mount(self) -> None:
        self.table.set_layout(self.size.width - 2)
        self.table.focus()
        self.post_message(self.Ready())

    def on_resize(self, event: Resize) -> None:
        self.table.set_layout(event.size.width - 2)  # keeps the cursor on the same identity

    def show_identities(self, labels: Sequence[str], readings: dict[str, Reading]) -> None:
        self.table.set_rows(labels, readings)
        self.table.set_layout(self.size.width - 2)

    def focus_identity(self, label: str) -> None:
        if label in self.table.labels:
            self.table.move_cursor(row=self.table.labels.index(label), animate=False)

    @property
    def selected_label(self) -> str | None:
        return self.table.selected_label
