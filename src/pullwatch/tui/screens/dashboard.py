"""The dashboard screen: header line, identity table, detail pane, footer.

It renders what the app hands it and turns keys and clicks into app actions; the monitor and
the round scheduling live in the app, so they keep running while another screen is on top.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen

from pullwatch.tui.widgets.detail_pane import DetailPane
from pullwatch.tui.widgets.footer import KeyFooter
from pullwatch.tui.widgets.identity_table import IdentityTable
from pullwatch.tui.widgets.status_line import StatusLine

if TYPE_CHECKING:
    from pullwatch.assess import Assessment


class DashboardScreen(Screen[None]):
    # The footer at 80 columns shows the main keys, then the app's `? more` and `q Quit`; the
    # hidden ones are in the help screen (`?`) and the command palette, each with its key.
    BINDINGS = [
        Binding("r", "app.refresh_all", "Refresh"),
        Binding("space", "app.toggle_pause", "Pause", show=False),
        Binding("t", "app.token_check", "Token"),
        Binding("h", "app.head_check", "HEAD"),
        Binding("c", "app.toggle_compare", "Compare"),
        Binding("a", "app.add_identity", "Add"),
        Binding("e", "app.edit_identity", "Edit", show=False),
        Binding("d", "app.delete_identity", "Delete", show=False),
        Binding("p", "app.plan", "Plan"),
        Binding("x", "app.explain", "Explain", show=False),
        Binding("i", "app.import_docker", "Import", show=False),
        Binding("w", "app.report", "Report", show=False),
    ]

    def __init__(
        self,
        *,
        registry: str,
        repository: str,
        demo: bool,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(id="dashboard")
        self._on_ready = on_ready
        self._table: IdentityTable | None = None
        self._registry = registry
        self._repository = repository
        self._demo = demo

    def compose(self) -> ComposeResult:
        yield StatusLine(
            registry=self._registry, repository=self._repository, demo=self._demo, id="status"
        )
        yield IdentityTable(id="identities")
        yield DetailPane(id="detail")
        yield KeyFooter(compact=True)

    @property
    def table(self) -> IdentityTable:
        if self._table is None:  # asked for on every reading: one query
            self._table = self.query_one(IdentityTable)
        return self._table

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
        if self._on_ready is not None:
            # Called, not queued: what it fills in is in the first frame painted (a Ready
            # message is handled after that frame, and costs one more full paint).
            self._on_ready()
        else:
            self.post_message(self.Ready())

    def on_resize(self, event: Resize) -> None:
        self.table.set_layout(event.size.width - 2)  # keeps the cursor on the same identity

    def show_identities(self, labels: Sequence[str], rows: dict[str, Assessment]) -> None:
        self.table.set_rows(labels, rows)
        self.table.set_layout(self.size.width - 2)

    def focus_identity(self, label: str) -> None:
        self.table.highlight(label)

    @property
    def selected_label(self) -> str | None:
        return self.table.selected_label


def key_of(action: str) -> str:
    """The key the dashboard binds to `action` (`"app.plan"` -> `"p"`)."""
    for binding in DashboardScreen.BINDINGS:
        if isinstance(binding, Binding) and binding.action == action:
            return binding.key_display or binding.key
    raise KeyError(action)


def with_key(key: str, text: str) -> str:
    """A command palette entry's help line, led by its key (as lazygit and posting show it)."""
    return f"key {key} · {text}"
