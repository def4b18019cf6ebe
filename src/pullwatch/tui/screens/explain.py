"""`x`: paste a scanner, docker or kubelet error line; see which limit it is and what to do.

Classification is local pattern matching (nothing is sent anywhere); what is shown of the
pasted text is redacted first.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static, TextArea

from pullwatch.explain import Explanation, explain
from pullwatch.redact import redact
from pullwatch.tui.widgets.footer import KeyFooter

HINT = (
    "Paste an error line above, e.g. '... Too Many Requests (HAP429)' or "
    "'toomanyrequests: You have reached your pull rate limit ...'."
)


def explanation_text(found: Explanation) -> Text:
    text = Text()
    text.append("Which limit: ", style="bold")
    text.append(found.limit + "\n", style="bold yellow" if found.recognised else "bold")
    text.append("Meaning: ", style="bold")
    text.append(found.meaning + "\n")
    if found.excerpt:
        text.append("Matched: ", style="bold")
        text.append(found.excerpt + "\n", style="dim")
    if found.steps:
        text.append("What to do\n", style="bold underline")
        for number, step in enumerate(found.steps, start=1):
            text.append(f"{number}. {step}\n")
    text.append(found.proof, style="italic dim")
    return text


class ExplainScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+l", "clear", "Clear"),
    ]
    DEFAULT_CSS = """
    ExplainScreen > #explain-title { height: 1; padding: 0 1; background: $panel;
                                     text-style: bold; }
    ExplainScreen > #paste { height: 7; }
    ExplainScreen > VerticalScroll { padding: 0 1; }
    """

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self._initial = redact(text)
        self.explanation: Explanation | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Explain an error line"), id="explain-title")
        yield TextArea(self._initial, id="paste", soft_wrap=True, show_line_numbers=False)
        with VerticalScroll():
            yield Static(Text(HINT, style="dim"), id="explain-result")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one("#paste", TextArea).focus()
        self._explain(self._initial)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        area = event.text_area
        shown = redact(area.text)
        if shown != area.text:  # a pasted dckr_jti id, user or token never stays on screen
            area.load_text(shown)
            area.move_cursor(area.document.end)
            return  # the change this makes explains the redacted text
        self._explain(area.text)

    def action_clear(self) -> None:
        self.query_one("#paste", TextArea).clear()

    def _explain(self, text: str) -> None:
        out = self.query_one("#explain-result", Static)
        if not text.strip():
            self.explanation = None
            out.update(Text(HINT, style="dim"))
            return
        self.explanation = explain(text)
        out.update(explanation_text(self.explanation))
