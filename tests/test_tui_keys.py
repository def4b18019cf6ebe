"""Keys on every screen: each screen's footer shows its own keys, typing goes where the focus
went (even in a burst, as a password manager types), and the README, the help screen and the
bindings name the same keys."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual._xterm_parser import XTermParser
from textual.app import App
from textual.binding import Binding
from textual.events import Key
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input

from pullwatch.demo import Demo
from pullwatch.identities.cryptfile import Unlocker
from pullwatch.identities.secrets import MemoryKeyring
from pullwatch.tui.app import IdentityCommands, PullwatchApp, make_app
from pullwatch.tui.screens.checks import CheckScreen
from pullwatch.tui.screens.dashboard import DashboardScreen
from pullwatch.tui.screens.help import HelpScreen
from pullwatch.tui.screens.identity_form import IdentityForm
from pullwatch.tui.screens.passphrase import PassphraseScreen
from pullwatch.tui.screens.report import ReportScreen
from screenkit import find, line_text, screen_cells

SIZE = (120, 40)


def app_for(demo: Demo) -> PullwatchApp:
    return make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def burst(pilot: Pilot[None], typed: str) -> None:
    """`typed` as a terminal hands it over in one read: the driver parses it and queues every
    key at once, before the app has handled the first (`pilot.press` waits for the app to be
    idle after each key, which is no test of a burst)."""
    app = pilot.app
    for event in XTermParser().feed(typed):
        assert isinstance(event, Key)
        event.set_sender(app)
        app.post_message(event)


def field(screen: IdentityForm, name: str) -> str:
    return screen.query_one(f"#{name}", Input).value


async def open_form(pilot: Pilot[None], *keys: str) -> IdentityForm:
    """Press `keys` (`a`, or `down`, `e`), then wait until the form has the focus: keys sent
    before then would still go to the dashboard."""
    app = pilot.app
    await pilot.press(*keys)

    def ready() -> bool:
        screen = app.screen
        return isinstance(screen, IdentityForm) and app.focused is screen.query_one("#label")

    await until(ready, "the form, its first field focused")
    assert isinstance(app.screen, IdentityForm)
    return app.screen


async def test_a_burst_with_tab_puts_the_token_in_the_token_field(demo: Demo) -> None:
    """`user`, Tab, `dckr_pat_secret` typed at once, three times over: the token never lands in
    the (visible) Docker ID field."""
    app = app_for(demo)
    typed = "user\tdckr_pat_secret"
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        for attempt in range(3):
            form = await open_form(pilot, "a")
            await pilot.press("tab")  # to the Docker ID field
            await until(lambda: app.focused is form.query_one("#username"), "the Docker ID field")  # noqa: B023
            await burst(pilot, typed)

            def landed() -> bool:
                return sum(len(field(form, f)) for f in ("label", "username", "secret")) == 19  # noqa: B023

            await until(landed, "every typed character")
            assert field(form, "label") == "", attempt
            assert field(form, "username") == "user", attempt
            assert field(form, "secret") == "dckr_pat_secret", attempt
            assert form.query_one("#secret", Input).password  # shown as dots
            await pilot.press("escape")
            assert app.screen is app.dashboard


async def test_shift_tab_in_a_burst_goes_back_a_field(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        form = await open_form(pilot, "a")
        await pilot.press("tab", "tab")
        await until(lambda: app.focused is form.query_one("#secret"), "the token field")
        await burst(pilot, "\x1b[Zbob")  # shift+tab, then the Docker ID
        await until(lambda: field(form, "username") == "bob", "the Docker ID")
        assert field(form, "secret") == ""


async def test_a_token_in_the_docker_id_field_is_hidden_and_refused(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        form = await open_form(pilot, "a")
        await pilot.press(*"mirror", "tab", *"dckr_pat_")
        username = form.query_one("#username", Input)
        assert username.password  # dots from the moment it looks like a token
        error = str(form.query_one("#username-error").render())
        assert "looks like a token" in error
        for _ in range(len("dckr_pat_")):
            await pilot.press("backspace")
        await pilot.press(*"cibot")
        assert not username.password and username.value == "cibot"
        assert str(form.query_one("#username-error").render()) == ""


async def test_the_form_applies_docker_hubs_docker_id_rule(demo: Demo) -> None:
    """On Docker Hub the form refuses what `identity add` refuses: one validator."""
    demo.runtime.store.docker_hub = True
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        before = demo.runtime.paths.config_file.read_bytes()
        for username, expected in (
            ("Ci.Bot", "invalid Docker ID: 4 to 30 lower-case letters and digits"),
            ("abc", "invalid Docker ID"),
            ("me@example.com", "not the e-mail address"),
        ):
            form = await open_form(pilot, "a")
            await pilot.press(*"mirror", "tab", *username, "tab", *"dckr_pat_x", "ctrl+s")
            assert expected in str(form.query_one("#username-error").render())
            await pilot.press("escape")
            await until(lambda: app.screen is app.dashboard, "the dashboard")
        assert demo.runtime.paths.config_file.read_bytes() == before


# -- every screen shows its own keys ---------------------------------------------------------


def footer(app: PullwatchApp) -> str:
    """The bottom line as drawn."""
    return " ".join(line_text(screen_cells(app)[-1]).split())


async def settle(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, PullwatchApp)
    await app.wait_for_round()
    await app.workers.wait_for_complete()
    await pilot.pause()


SCREEN_KEYS = [
    # (keys that open it, what its footer must show)
    ((), ("r Refresh", "t Token", "h HEAD", "c Compare", "a Add", "p Plan", "? more", "q Quit")),
    (("a",), ("^s Save", "esc Cancel")),
    (("down", "e"), ("^s Save", "esc Cancel")),
    (("question_mark",), ("esc Close",)),
    (("down", "d"), ("y Yes", "n/esc No")),
    (("t",), ("esc Back", "r Run again", "c Copy as text")),
    (("h",), ("esc Back", "r Run again", "c Copy as text")),
    (("p",), ("esc Back",)),
    (("x",), ("esc Back", "^l Clear")),
    (("i",), ("esc Cancel",)),
    (("w",), ("esc Back", "c Copy as Markdown", "s Save to a file")),
]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_every_screen_shows_its_own_keys(demo: Demo, size: tuple[int, int]) -> None:
    app = app_for(demo)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for keys, shown in SCREEN_KEYS:
            await pilot.press(*keys)
            if keys:
                await until(lambda: app.screen is not app.dashboard, f"a screen after {keys}")
            try:
                await until(lambda: all(w in footer(app) for w in shown), f"{shown}")  # noqa: B023
            except AssertionError:
                raise AssertionError(f"{keys}: {footer(app)!r} lacks one of {shown}") from None
            if keys:  # none of the dashboard's own keys lingers under another screen
                line = footer(app)
                assert "Refresh" not in line and "Compare" not in line, (keys, line)
                await pilot.press("escape")
                await until(lambda: app.screen is app.dashboard, f"back from {keys}")


async def test_the_passphrase_screen_shows_its_keys(demo: Demo, tmp_path: Path) -> None:
    unlocker = Unlocker(tmp_path / "keyring.cfg", MemoryKeyring(), installed=True)
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await app.push_screen(PassphraseScreen(unlocker))
        await pilot.pause()
        assert footer(app).startswith("esc Skip")


async def test_typing_r_in_the_form_is_text_not_refresh(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        rounds, heads = app.rounds_completed, demo.model.counters["head"]
        form = await open_form(pilot, "a")
        await pilot.press(*"rrq?")
        assert field(form, "label") == "rrq?"
        await pilot.pause()
        assert (app.rounds_completed, demo.model.counters["head"]) == (rounds, heads)
        assert app.screen is form  # q did not quit, ? opened no help


async def test_ctrl_s_saves_the_form_at_80x24(demo: Demo) -> None:
    """At 80x24 the Save button is below the fold; the footer's ctrl+s saves."""
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_form(pilot, "a")
        await pilot.press(*"office", "ctrl+s")
        await until(lambda: app.screen is app.dashboard, "the form to close")
        await settle(pilot)
        assert "office" in app.dashboard.table.labels


# -- discoverability: README, help and bindings agree ----------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"
KEY_NAMES = {"question_mark": "?", "up": "↑", "down": "↓"}
TABLE_KEYS = {"↑", "↓", "enter"}  # the identity table's own: tested by pilot in test_tui.py


def readme_keys() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| key | does |") :].splitlines()[2:]
    keys: dict[str, str] = {}
    for line in table:
        if not line.startswith("|"):
            break
        _, key_cell, does, _ = line.split("|")
        for key in re.findall(r"`([^`]+)`", key_cell):
            keys[key] = does.strip()
    return keys


def help_keys() -> dict[str, str]:
    return {key: what for keys, what in HelpScreen.KEYS for key in keys}


def bindings(*screens: type[Screen[Any]] | type[App[Any]]) -> dict[str, Binding]:
    bound: dict[str, Binding] = {}
    for screen in screens:
        for binding in screen.BINDINGS:
            assert isinstance(binding, Binding)
            for key in binding.key.split(","):
                bound.setdefault(KEY_NAMES.get(key, key), binding)
    return bound


def test_readme_help_and_bindings_name_the_same_keys() -> None:
    readme, helped = readme_keys(), help_keys()
    bound = bindings(DashboardScreen, PullwatchApp)
    every = set(bound) | TABLE_KEYS | {App.COMMAND_PALETTE_BINDING}
    assert set(readme) == every
    assert set(helped) == every
    for key, binding in bound.items():  # the footer's word is the README's and the help's
        word = "help" if key == "?" else binding.description.lower()
        assert word in readme[key].lower(), (key, word, readme[key])
        assert word in helped[key].lower(), (key, word, helped[key])
    # `c` is Compare on the dashboard and copy in a check screen or the report: both say both
    assert bound["c"].description == "Compare"
    assert bindings(CheckScreen)["c"].action == "copy"
    assert bindings(ReportScreen)["c"].action == "copy"
    for said in (readme["c"], helped["c"]):
        assert "compare" in said and "copy" in said


def test_hidden_keys_are_in_the_help() -> None:
    hidden = {key for key, b in bindings(DashboardScreen).items() if not b.show}
    assert hidden == {"space", "e", "d", "x", "i", "w"}
    assert hidden | {"enter"} <= set(help_keys())


async def test_the_palette_lists_every_command_with_its_key(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        system = {c.title: c.help for c in app.get_system_commands(app.screen)}
        expected = {
            "Refresh all": "r",
            "Pause / resume": "space",
            "Compare identities": "c",
            "Add identity": "a",
            "Scan-budget planner": "p",
            "Explain an error line": "x",
            "Import Docker logins": "i",
            "Triage report": "w",
            "Help": "?",
            "Quit": "q",
        }
        for title, key in expected.items():
            assert system[title].startswith(f"key {key} · "), (title, system[title])
        provider = IdentityCommands(app.screen)
        per_identity = {name: help_text for name, help_text, _ in provider._commands()}
        for title, key in {
            "Token check: ci-bot": "t",
            "HEAD check: ci-bot": "h",
            "Refresh: ci-bot": "enter",
            "Edit identity: ci-bot": "e",
            "Delete identity: ci-bot": "d",
        }.items():
            assert per_identity[title].startswith(f"key {key} on the selected row · ")
        # and on screen: the palette shows the key under each command
        await pilot.press("ctrl+p", *"refresh all")
        await until(lambda: bool(find(screen_cells(app), "key r · probe every")), "the palette")
