"""The header line: identity count, registry, next-round countdown; then, when they need
attention, the failure every identity shares (said once), the keyring and the history."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from pullwatch.durations import format_clock
from pullwatch.tui.widgets._steady import same_shape


class StatusLine(Static):
    """One line (more when the keyring or the history needs attention); repainted only when its
    text changes."""

    DEFAULT_CSS = """
    StatusLine { height: auto; padding: 0 1; background: $panel; }
    """

    def __init__(
        self, *, registry: str, repository: str, demo: bool, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self._host = "simulated Docker Hub" if demo else registry.split("://", 1)[-1]
        self._repository = repository
        self._demo = demo
        self.identity_count = 0
        self.probing = 0
        self.paused = False
        self.comparing = False
        self.next_round_in: float | None = None
        self.keyring_problem: str | None = None
        self.history_problem: str | None = None
        self.registry_problem: str | None = None  # every identity failed the same way
        self._last: Text | None = None

    def render_text(self) -> Text:
        text = Text()
        text.append("pullwatch", style="bold")
        if self._demo:
            text.append(" demo", style="bold magenta")
        count = self.identity_count
        where = f"{self._host} · {self._repository}"
        room = self.size.width - 2 if self.size.width else 200
        fixed = 9 + (5 if self._demo else 0) + 40  # name, counts and the countdown
        if fixed + len(where) > room:
            where = self._host
        text.append(f" · {count} identit{'y' if count == 1 else 'ies'} · {where} · ")
        if self.probing:
            text.append(f"probing {self.probing}…", style="yellow")
        elif self.paused:
            text.append("paused", style="bold yellow")
        elif self.next_round_in is not None:
            text.append(f"next round {format_clock(self.next_round_in)}")
        if self.comparing:
            text.append(" · best first", style="bold green")
        if self.registry_problem:
            text.append("\n")
            text.append("every identity:", style="bold reverse")
            text.append(" ")
            text.append(self.registry_problem)
        if self.keyring_problem:
            text.append("\n")
            text.append("keyring: ", style="bold red")
            text.append(self.keyring_problem)
        if self.history_problem:
            text.append("\n")
            text.append("history: ", style="bold red")
            text.append(self.history_problem)
        return text

    def redraw(self) -> None:
        text = self.render_text()
        if text != self._last:
            steady = same_shape(self, self._last, text)
            self._last = text
            self.update(text, layout=not steady)  # the countdown: no layout pass

    def on_resize(self) -> None:
        self._last = None
        self.redraw()
