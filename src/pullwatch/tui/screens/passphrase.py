"""The encrypted keyring's passphrase, asked in a modal password screen at startup.

Shown when the opt-in `keyrings.cryptfile` keyring is locked (README 'Over SSH'): the passphrase
goes straight to the keyring backend (in a thread: Argon2 takes a moment) and is cleared from the
input at once. A wrong passphrase is said under the field; escape leaves the keyring locked
(anonymous identities keep working, the header says how to unlock later).
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from pullwatch.identities.cryptfile import Unlocker
from pullwatch.identities.secrets import KeyringHealth
from pullwatch.tui.screens.keys import FIELD_NAVIGATION
from pullwatch.tui.widgets.footer import KeyFooter


class PassphraseScreen(ModalScreen[bool]):
    """Dismisses with True once unlocked, False when skipped."""

    BINDINGS = [Binding("escape", "skip", "Skip"), *FIELD_NAVIGATION]
    DEFAULT_CSS = """
    PassphraseScreen { align: center middle; }
    PassphraseScreen > Vertical {
        width: 72; max-width: 98%; height: auto; max-height: 98%;
        padding: 0 2; border: thick $primary; background: $surface;
    }
    PassphraseScreen #passphrase-title { text-style: bold; margin-bottom: 1; }
    PassphraseScreen .hint { color: $text-muted; }
    PassphraseScreen Label { margin-top: 1; text-style: bold; }
    PassphraseScreen Input { background: $boost; }
    PassphraseScreen #passphrase-error {
        color: $text-error; text-style: bold; height: auto; margin-top: 1;
    }
    PassphraseScreen #passphrase-buttons { height: auto; margin-top: 1; align-horizontal: right; }
    PassphraseScreen Button { margin-left: 2; }
    """

    def __init__(self, unlocker: Unlocker) -> None:
        super().__init__()
        self._unlocker = unlocker
        self._new = unlocker.is_new
        self._busy = False

    def compose(self) -> ComposeResult:
        path = str(self._unlocker.path)
        if self._new:
            title = "Create the encrypted keyring"
            hint = (
                f"Choose a passphrase for a new encrypted keyring at {path}. Tokens you add are "
                "stored there, encrypted; you will be asked for it each time pullwatch starts."
            )
        else:
            title = "Unlock the encrypted keyring"
            hint = f"The tokens of your identities are in the encrypted keyring at {path}."
        with Vertical():
            yield Static(Text(title), id="passphrase-title")
            yield Static(Text(hint), classes="hint")
            yield Label("Passphrase")
            yield Input(password=True, id="passphrase", compact=True)
            if self._new:
                yield Label("Repeat it")
                yield Input(password=True, id="passphrase-repeat", compact=True)
            yield Static(id="passphrase-error")
            with Horizontal(id="passphrase-buttons"):
                yield Button("Skip", id="skip", compact=True)
                yield Button("Unlock", variant="primary", id="unlock", compact=True)
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one("#passphrase", Input).focus()

    def _error(self, message: str) -> None:
        self.query_one("#passphrase-error", Static).update(Content(message))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "unlock":
            self.action_unlock()
        else:
            self.action_skip()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self._new and event.input.id == "passphrase":
            self.query_one("#passphrase-repeat", Input).focus()
            return
        self.action_unlock()

    def action_skip(self) -> None:
        self.dismiss(False)

    def action_unlock(self) -> None:
        if self._busy:
            return
        field = self.query_one("#passphrase", Input)
        passphrase = field.value
        repeat = self.query_one("#passphrase-repeat", Input) if self._new else None
        if not passphrase.strip():
            self._error("enter the passphrase (or press escape to skip)")
            return
        if repeat is not None and repeat.value != passphrase:
            repeat.value = ""
            self._error("the two passphrases differ: type it again")
            repeat.focus()
            return
        field.value = ""
        if repeat is not None:
            repeat.value = ""
        self._busy = True
        self.query_one("#unlock", Button).disabled = True
        self._error("unlocking…")
        self._unlock(passphrase)

    @work(thread=True, exit_on_error=False, group="passphrase", exclusive=True)
    def _unlock(self, passphrase: str) -> None:
        try:
            health = self._unlocker.unlock(passphrase)
        except Exception as exc:  # never a traceback on the screen
            self.app.call_from_thread(self._failed, f"unexpected {type(exc).__name__}")
            return
        self.app.call_from_thread(self._done, health)

    def _failed(self, message: str) -> None:
        self._busy = False
        self.query_one("#unlock", Button).disabled = False
        self._error(message)
        self.query_one("#passphrase", Input).focus()

    def _done(self, health: KeyringHealth) -> None:
        if health.ok:
            self.dismiss(True)
            return
        problem = self._unlocker.problem or health.message
        self._failed(f"not unlocked: {problem}")
