"""`i`: import the Docker Hub login Docker itself uses (`~/.docker/config.json`).

First the screen reads Docker's config (in a thread) and says what it would run. On "Look up",
a credential helper (`docker-credential-<name> get`) runs with a timeout. Helpers can prompt -
`pass` asks gpg for a passphrase on the terminal - so the app hands the terminal back first
(`App.suspend()`) and the helper runs in the foreground, exactly as in a shell; the event loop
waits meanwhile, which is what suspending means (nothing can be drawn). Where the app cannot
suspend (headless, or a driver without suspend) the helper runs in a thread without a controlling
terminal, so one that needs to prompt fails quickly with a message instead of fighting the
screen. The secret found goes straight to the keyring (a thread, under its timeout).
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from pullwatch.identities.docker_config import (
    DEFAULT_HELPER_TIMEOUT,
    DockerConfig,
    DockerConfigError,
    DockerLogin,
    LookupResult,
    docker_config_path,
    find_hub_login,
    import_login,
    load_docker_config,
    lookup_steps,
    plan_import,
)
from pullwatch.identities.secrets import SecretStoreError
from pullwatch.identities.store import ConfigError, IdentityError, IdentityStore
from pullwatch.redact import one_line
from pullwatch.tui.screens.keys import FIELD_NAVIGATION
from pullwatch.tui.widgets.footer import KeyFooter


class ImportDockerScreen(ModalScreen[str | None]):
    """Dismisses with the imported identity's label, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), *FIELD_NAVIGATION]
    DEFAULT_CSS = """
    ImportDockerScreen { align: center middle; }
    ImportDockerScreen > VerticalScroll {
        width: 80; max-width: 98%; height: auto; max-height: 98%;
        padding: 0 2; border: thick $primary; background: $surface;
    }
    ImportDockerScreen #import-title { text-style: bold; margin-bottom: 1; }
    ImportDockerScreen #import-label-row { height: auto; display: none; margin-top: 1; }
    ImportDockerScreen #import-label-row.shown { display: block; }
    ImportDockerScreen Label { text-style: bold; }
    ImportDockerScreen Input { background: $boost; }
    ImportDockerScreen #import-error {
        color: $text-error; text-style: bold; margin-top: 1; height: auto;
    }
    ImportDockerScreen #import-buttons { height: auto; margin-top: 1; align-horizontal: right; }
    ImportDockerScreen Button { margin-left: 2; }
    """

    def __init__(
        self,
        *,
        store: IdentityStore,
        config_path: Path | None = None,
        timeout: float = DEFAULT_HELPER_TIMEOUT,
    ) -> None:
        super().__init__()
        self._store = store
        self._path = config_path or docker_config_path()
        self._timeout = timeout
        self._config: DockerConfig | None = None
        self._login: DockerLogin | None = None
        self._busy = False
        self.status = "reading"  # reading, ready, nothing, found, not_found, saving, failed

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("Import Docker's login"), id="import-title")
            yield Static(Text(f"Reading {self._path} …", style="italic"), id="import-body")
            with Horizontal(id="import-label-row"):
                yield Label("Label ")
                yield Input(id="import-label", compact=True, max_length=64)
            yield Static(id="import-error")
            with Horizontal(id="import-buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Look up", variant="primary", id="run", compact=True, disabled=True)
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self._read_config()

    # -- step 1: what would run ------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="docker-config")
    def _read_config(self) -> None:
        try:
            config: DockerConfig | str = load_docker_config(self._path)
        except DockerConfigError as exc:
            config = str(exc)
        self.app.call_from_thread(self._config_read, config)

    def _nothing_to_do(self) -> None:
        """Nothing can be imported: no Look up (or Import) button, Cancel becomes Close."""
        self.query_one("#run", Button).display = False
        cancel = self.query_one("#cancel", Button)
        cancel.label = "Close"
        cancel.focus()

    def _config_read(self, config: DockerConfig | str) -> None:
        body = self.query_one("#import-body", Static)
        if isinstance(config, str):
            self.status = "nothing"
            body.update(Text(config, style="red"))
            self._nothing_to_do()
            return
        self._config = config
        steps = lookup_steps(config) if config.exists else []
        if not steps:
            self.status = "nothing"
            reason = "does not exist" if not config.exists else "has no Docker Hub login"
            body.update(
                Text.assemble(
                    (f"{config.path} {reason}: nothing to import.", "yellow"),
                    "\nLog in with `docker login` first, or add the identity with `a`.",
                )
            )
            self._nothing_to_do()
            return
        text = Text(f"Docker's config: {config.path}\nDocker Hub's login is looked up in:\n")
        for step in steps:
            text.append(f"  • {step.where}")
            if step.program:
                text.append(f"  (runs {step.program} get)", style="dim")
            text.append("\n")
        if any(step.helper for step in steps):
            text.append(
                "A helper may ask for a passphrase: the screen is handed back to the terminal "
                f"while it runs (at most {self._timeout:g} s).",
                style="italic",
            )
        body.update(text)
        self.status = "ready"
        run = self.query_one("#run", Button)
        run.disabled = False
        run.focus()

    # -- step 2: look the login up ---------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            self.action_run()
        else:
            self.action_cancel()

    def on_input_submitted(self, _: Input.Submitted) -> None:
        self.action_run()

    def action_cancel(self) -> None:
        self._login = None
        self.dismiss(None)

    def action_run(self) -> None:
        if self._busy or self._config is None:
            return
        if self._login is not None:
            self._save_login()
            return
        config = self._config
        if not any(step.helper for step in lookup_steps(config)):
            self._busy = True
            self._lookup_detached(config)  # inline auths only: nothing can prompt
            return
        try:
            with self.app.suspend():
                print(
                    f"pullwatch: reading your Docker Hub login with a credential helper "
                    f"(it may ask for a passphrase; at most {self._timeout:g} s)…",
                    flush=True,
                )
                result = find_hub_login(config, timeout=self._timeout)
        except SuspendNotSupported:
            self._busy = True
            self._lookup_detached(config)
            return
        self._found(result)

    @work(thread=True, exit_on_error=False, group="docker-lookup")
    def _lookup_detached(self, config: DockerConfig) -> None:
        result = find_hub_login(config, timeout=self._timeout, detach_terminal=True)
        self.app.call_from_thread(self._found, result)

    def _found(self, result: LookupResult) -> None:
        self._busy = False
        body = self.query_one("#import-body", Static)
        notes = Text("\n".join(one_line(note, 300) for note in result.notes), style="dim")
        if result.login is None:
            self.status = "not_found"
            body.update(Text.assemble(("No importable Docker Hub login.\n", "bold yellow"), notes))
            self._nothing_to_do()
            return
        self._login = result.login
        self.status = "found"
        message = Text.assemble(
            ("Found Docker ID ", "bold"),
            (result.login.username, "bold green"),
            f" ({result.login.where}).\n",
            "The token goes to the OS keyring; the config file gets the label and Docker ID.",
        )
        if not result.login.looks_like_pat:
            message.append(
                "\nNot a personal access token (dckr_pat_…): if it is a password, Docker Hub "
                "refuses it when two-factor authentication is on.",
                style="yellow",
            )
        label = self.query_one("#import-label", Input)
        label.value = result.login.username
        try:  # a label that is taken: the free one the CLI's --dry-run offers, said why
            config = self._store.load()
        except ConfigError:
            config = None  # said when saving
        plan = plan_import(config, result.login) if config is not None else None
        if config is not None and plan is not None and plan.problem and plan.instead:
            login = result.login
            label.value = plan.instead
            same = [i.label for i in config.identities if i.username == login.username]
            why = (
                f"Docker ID {login.username} is already identity {same[0]!r} (a second identity "
                "on the account shares its bucket)"
                if same
                else f"An identity called {plan.label!r} exists"
            )
            message.append(f"\n{why}: proposed label {plan.instead}.", style="yellow")
        body.update(message)
        self.query_one("#import-label-row").add_class("shown")
        run = self.query_one("#run", Button)
        run.label = "Import"
        label.focus()

    # -- step 3: store it ------------------------------------------------------------------

    def _save_login(self) -> None:
        assert self._login is not None
        self._busy = True
        self.status = "saving"
        self.query_one("#run", Button).disabled = True
        self.query_one("#import-error", Static).update(Content(""))
        label = self.query_one("#import-label", Input).value.strip() or None
        self._save(self._login, label)

    @work(thread=True, exit_on_error=False, group="docker-import", exclusive=True)
    def _save(self, login: DockerLogin, label: str | None) -> None:
        try:
            outcome = import_login(self._store, login, label)
        except (IdentityError, ConfigError, SecretStoreError) as exc:
            self.app.call_from_thread(self._failed, one_line(str(exc), 300))
            return
        except Exception as exc:  # nothing escapes as a traceback
            self.app.call_from_thread(self._failed, f"unexpected {type(exc).__name__}")
            return
        self.app.call_from_thread(self._saved, outcome.label)

    def _failed(self, message: str) -> None:
        self._busy = False
        self.status = "failed"
        self.query_one("#run", Button).disabled = False
        self.query_one("#import-error", Static).update(Content(f"not imported: {message}"))

    def _saved(self, label: str) -> None:
        self._login = None
        self.notify(f"Imported {label}: its token is in the keyring")
        self.dismiss(label)
