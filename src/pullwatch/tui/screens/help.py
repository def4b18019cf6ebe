"""`?`: the keys, and what every state means."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pullwatch.advice import STATE_MEANINGS
from pullwatch.reading import State
from pullwatch.tui.format import STATE_STYLES
from pullwatch.tui.widgets.footer import KeyFooter

# Every key of the dashboard, as the README's key table lists them (tests/test_tui_keys.py
# checks that the two and the bindings agree).
KEYS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("↑", "↓"), "select an identity (or click it)"),
    (("enter",), "refresh the selected identity now (also retries one whose login failed)"),
    (("r",), "refresh every identity now (logins that failed stay stopped)"),
    (("space",), "pause or resume the automatic rounds"),
    (("t",), "token check: a fresh token request, its claims and expiry"),
    (("h",), "HEAD check: one HEAD now, every header and the parse (costs no pull)"),
    (
        ("c",),
        "compare: best first by pulls remaining, ★ marks the identity to pull with now; "
        "in a check or the report: copy it as text",
    ),
    (("a", "e", "d"), "add, edit, delete an identity (secrets go to the OS keyring)"),
    (("p",), "scan-budget planner against the selected identity's limit"),
    (("x",), "explain a pasted error line: which limit it is and what to do"),
    (("i",), "import the Docker Hub login from Docker's config.json (into the keyring)"),
    (("w",), "triage report of every identity (redacted): c copies it, s saves it"),
    (("ctrl+p",), "command palette: every command with its key, per identity; themes"),
    (("?",), "help: this screen, every key and what each state means"),
    (("q",), "quit"),
)


class HelpScreen(ModalScreen[None]):
    KEYS = KEYS
    BINDINGS = [Binding("escape,q,question_mark", "dismiss_help", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 96; max-width: 98%; height: auto; max-height: 95%;
        padding: 0 2; border: thick $primary; background: $surface;
    }
    """

    def compose(self) -> ComposeResult:
        keys = Table(box=None, padding=(0, 2), show_header=False)
        keys.add_column(style="bold cyan", no_wrap=True)
        keys.add_column()
        for key, what in KEYS:
            keys.add_row(" ".join(key), what)
        states = Table(box=None, padding=(0, 2), show_header=False)
        states.add_column(no_wrap=True)
        states.add_column()
        for state in State:
            states.add_row(Text(state.label, style=STATE_STYLES[state]), STATE_MEANINGS[state])
        notes = Text(
            "HEAD requests do not count as pulls: pullwatch never GETs a manifest.\n"
            "Docker Hub sends the window length (w=), not a reset time: the window is rolling.",
            style="italic",
        )
        with VerticalScroll():
            yield Static(
                Group(
                    Text("Keys", style="bold underline"),
                    keys,
                    Text("\nStates", style="bold underline"),
                    states,
                    Text(""),
                    notes,
                )
            )
        yield KeyFooter(compact=True)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
