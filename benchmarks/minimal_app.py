"""The yardstick for start-up: the smallest Textual app, painting one label."""

from textual.app import App, ComposeResult
from textual.widgets import Label


class Minimal(App[None]):
    def compose(self) -> ComposeResult:
        yield Label("minimal textual app: painted")


if __name__ == "__main__":
    Minimal().run()
