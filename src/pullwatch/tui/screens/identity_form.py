"""Add or edit an identity in a modal form.

The token field is a password input: its value goes straight to the keyring (in a thread, under
the keyring's timeout) and is cleared as soon as it is saved; it is never shown or logged.
Validation errors appear under the field they concern; a keyring that cannot be used is
explained at the top of the form, with the way out.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from pullwatch.identities.model import (
    ConfigError,
    Identity,
    IdentityError,
    check_change,
    check_username,
    looks_like_token,
)
from pullwatch.identities.secrets import KeyringHealth, SecretStoreError
from pullwatch.identities.store import IdentityStore
from pullwatch.tui.screens.keys import FIELD_NAVIGATION
from pullwatch.tui.widgets.footer import KeyFooter

FIELDS = ("label", "username", "secret", "warn")


class IdentityForm(ModalScreen[str | None]):
    """Dismisses with the saved identity's label, or None when cancelled."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
        *FIELD_NAVIGATION,
    ]
    DEFAULT_CSS = """
    IdentityForm { align: center middle; }
    IdentityForm > VerticalScroll {
        width: 72; max-width: 98%; height: auto; max-height: 98%;
        padding: 0 2; border: thick $primary; background: $surface;
        scrollbar-gutter: stable;
    }
    IdentityForm #form-title { text-style: bold; margin-bottom: 1; }
    IdentityForm #keyring-note { color: $text-warning; margin-bottom: 1; display: none; }
    IdentityForm #keyring-note.shown { display: block; }
    IdentityForm Label { margin-top: 1; text-style: bold; }
    IdentityForm Input { margin: 0 0; background: $boost; }
    IdentityForm .hint { color: $text-muted; width: 1fr; }
    IdentityForm .error { color: $text-error; text-style: bold; height: auto; width: 1fr; }
    IdentityForm #username-note { color: $text-warning; height: auto; width: 1fr; display: none; }
    IdentityForm #username-note.shown { display: block; }
    IdentityForm #form-error { margin-top: 1; }
    IdentityForm #form-buttons { height: auto; margin-top: 1; align-horizontal: right; }
    IdentityForm Button { margin-left: 2; }
    """

    def __init__(self, *, store: IdentityStore, existing: Identity | None) -> None:
        super().__init__()
        self._store = store
        self._existing = existing
        self._saving = False
        self._token_shown = False  # the Docker ID field holds something token-shaped
        self._logins: dict[str, str | None] = {}  # label -> username, of the saved identities

    def compose(self) -> ComposeResult:
        editing = self._existing
        title = f"Edit identity {editing.label}" if editing else "Add an identity"
        with VerticalScroll():
            yield Static(Text(title), id="form-title")
            yield Static(id="keyring-note")
            yield Label("Label")
            yield Input(
                value=editing.label if editing else "",
                placeholder="e.g. ci-bot",
                id="label",
                max_length=64,
                compact=True,
            )
            yield Static(classes="error", id="label-error")
            yield Label("Docker ID")
            yield Static(
                "Leave empty for an anonymous identity. Not the e-mail address.", classes="hint"
            )
            yield Input(
                value=(editing.username or "") if editing else "",
                placeholder="anonymous",
                id="username",
                compact=True,
            )
            yield Static(classes="error", id="username-error")
            yield Static(id="username-note")
            yield Label("Personal access token")
            yield Static(
                "Stored in the OS keyring only, never in a file."
                + (" Leave empty to keep the stored one." if editing and editing.username else ""),
                classes="hint",
            )
            yield Input(password=True, placeholder="dckr_pat_…", id="secret", compact=True)
            yield Static(classes="error", id="secret-error")
            yield Label("Low warning at (remaining pulls)")
            yield Input(
                value=str(editing.warn_below) if editing and editing.warn_below is not None else "",
                placeholder="default: 20% of the limit",
                id="warn",
                type="integer",
                compact=True,
            )
            yield Static(classes="error", id="warn-error")
            yield Static(classes="error", id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Save", variant="primary", id="save", compact=True)
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one("#label", Input).focus()
        self._check_keyring()
        try:
            self._logins = {i.label: i.username for i in self._store.load().identities}
        except ConfigError:
            self._logins = {}  # said when saving
        self._note_shared_login(self.query_one("#username", Input).value)

    def _shared_login(self, username: str) -> list[str]:
        """The other identities that log in as `username`: one account, one bucket."""
        mine = self._existing.label if self._existing is not None else None
        folded = username.strip().casefold()
        return [
            label
            for label, other in self._logins.items()
            if folded and label != mine and other is not None and other.casefold() == folded
        ]

    def _note_shared_login(self, username: str) -> None:
        others = self._shared_login(username)
        note = self.query_one("#username-note", Static)
        note.set_class(bool(others), "shown")
        if not others:
            return
        names = ", ".join(others)
        note.update(
            Content(
                f"{names} also log{'' if len(others) > 1 else 's'} in as {username.strip()}: "
                "one account, one bucket - their pulls are counted together."
            )
        )

    @work(thread=True, exit_on_error=False, group="form-keyring")
    def _check_keyring(self) -> None:
        health = self._store.secrets.health()
        self.app.call_from_thread(self._keyring_checked, health)

    def _keyring_checked(self, health: KeyringHealth) -> None:
        if health.ok:
            return
        note = self.query_one("#keyring-note", Static)
        note.update(
            Text.assemble(
                ("The keyring cannot be used: ", "bold"),
                health.message,
                "\nAnonymous identities still work; identities with a token need the keyring "
                "(pullwatch never falls back to a plaintext file).",
            )
        )
        note.add_class("shown")

    # -- validation ----------------------------------------------------------------------------

    def _set_error(self, field: str, message: str | None) -> None:
        self.query_one(f"#{field}-error", Static).update(Content(message or ""))

    def _values(self) -> tuple[Identity, str | None] | None:
        """The identity and secret the form describes, or None after showing errors inline.

        The checks are the store's own (`identities.model.check_change`), so the form and
        `pullwatch identity add` accept and refuse exactly the same values.
        """
        for field in (*FIELDS, "form"):
            self._set_error(field, None)
        label = self.query_one("#label", Input).value.strip()
        username = self.query_one("#username", Input).value.strip() or None
        secret = self.query_one("#secret", Input).value or None
        warn_text = self.query_one("#warn", Input).value.strip()
        errors: dict[str, str] = {}
        warn: int | None = None
        if warn_text:
            try:
                warn = int(warn_text)
            except ValueError:
                errors["warn"] = "a whole number of pulls, 0 or more (or empty for the default)"
        try:
            taken = [i.label for i in self._store.load().identities]
        except ConfigError as exc:  # the file went bad on disk: say so, change nothing
            errors["form"] = f"not saved: {exc}"
            taken = []
        identity = Identity(label=label, username=username, warn_below=warn)
        for field, message in check_change(
            identity,
            secret,
            existing=self._existing,
            taken=taken,
            docker_hub=self._store.docker_hub,
        ).items():
            errors.setdefault(field, message)
        for field, message in errors.items():
            self._set_error(field, message)
        if errors:
            return None
        return identity, secret

    # -- saving ----------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_save()

    def on_input_changed(self, event: Input.Changed) -> None:
        """A token typed or pasted into the Docker ID field is hidden at once, and said so."""
        if event.input.id != "username":
            return
        token = looks_like_token(event.value)
        self._note_shared_login("" if token else event.value)
        if event.input.password != token:
            event.input.password = token
        if token:
            self._set_error("username", check_username(event.value))
        elif self._token_shown:
            self._set_error("username", None)
        self._token_shown = token

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self) -> None:
        if self._saving:
            return
        values = self._values()
        if values is None:
            return
        identity, secret = values
        self._saving = True
        self.query_one("#save", Button).disabled = True
        self._save(identity, secret)

    @work(thread=True, exit_on_error=False, group="form-save", exclusive=True)
    def _save(self, identity: Identity, secret: str | None) -> None:
        try:
            if self._existing is None:
                config = self._store.add(identity, secret)
            else:
                config = self._store.update(self._existing.label, identity, secret)
        except (IdentityError, ConfigError, SecretStoreError) as exc:
            self.app.call_from_thread(self._failed, exc)
            return
        except Exception as exc:  # nothing escapes as a traceback
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self._saved, identity.label, config.warning)

    def _failed(self, exc: Exception) -> None:
        self._saving = False
        self.query_one("#save", Button).disabled = False
        field = "secret" if isinstance(exc, SecretStoreError) else "form"
        if isinstance(exc, SecretStoreError):
            message = f"not saved: the keyring refused the token ({exc})"
        elif isinstance(exc, IdentityError | ConfigError):
            message = f"not saved: {exc}"
        else:
            message = f"not saved: unexpected {type(exc).__name__}"
        self._set_error(field, message)

    def _saved(self, label: str, warning: str | None) -> None:
        self.query_one("#secret", Input).value = ""
        if warning:
            self.notify(warning, severity="warning", timeout=10)
        username = self.query_one("#username", Input).value.strip()
        others = self._shared_login(username)
        if others:
            self.notify(
                f"{label} and {', '.join(others)} log in as {username}: one account, one "
                "bucket - their pulls are counted together",
                severity="warning",
                timeout=10,
            )
        self.dismiss(label)
