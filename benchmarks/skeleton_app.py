"""A second yardstick for start-up: the dashboard's widgets in plain Textual, no pullwatch.

A status line, a DataTable of 10 rows and 8 columns, a detail pane with a sparkline, a footer
with the dashboard's bindings: what Textual alone costs to paint this screen. The gap between
it and the dashboard is pullwatch's own start-up (imports, config, client).
"""

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Sparkline, Static

COLUMNS = ("Identity", "Bucket", "Remaining", "Window", "Recovers", "Token", "Probed", "State")


class Skeleton(App[None]):
    BINDINGS = [  # noqa: RUF012 - Textual declares bindings as a class list
        Binding("r", "noop", "Refresh"),
        Binding("t", "noop", "Token"),
        Binding("h", "noop", "HEAD"),
        Binding("c", "noop", "Compare"),
        Binding("a", "noop", "Add"),
        Binding("p", "noop", "Plan"),
        Binding("question_mark", "noop", "Help", key_display="?"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(Text("skeleton · 10 identities · 127.0.0.1 · next round 59s"))
        yield DataTable(cursor_type="row")
        with VerticalScroll():
            yield Static(Text("id0001  Docker ID bench0001", style="bold"))
            yield Static(Text("probed 1s ago · token expires in 4m59s"))
            yield Sparkline([1.0, 2.0, 3.0, 2.0])
            yield Static(Text("State  ok\nMeaning  pulls left"))
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for title in COLUMNS:
            table.add_column(title, width=10)
        for i in range(1, 11):
            table.add_row(
                Text(f"id{i:04d}", style="bold"),
                Text("account 186e63fa"),
                Text("█████████░░ 150/200", style="green"),
                Text("6 h"),
                Text("≤ 5h12m"),
                Text("4m"),
                Text("<1m"),
                Text("ok", style="green"),
                key=str(i),
            )

    def action_noop(self) -> None:
        pass


if __name__ == "__main__":
    Skeleton().run()
