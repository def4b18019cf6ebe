"""Keys on every screen: each screen's footer shows its own keys, typing goes where the focus
went (even in a burst, as a password manager types), and the README, the help screen and the
bindings name the same keys."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual._xterm_parser import XTermParser
from textual.events import Key
from textual.pilot import Pilot
from textual.widgets import Input

from pullwatch.demo import Demo
from pullwatch.tui.app import PullwatchApp, make_app
from pullwatch.tui.screens.identity_form import IdentityForm

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


async def test_a_burst_with_tab_puts_the_token_in_the_token_field(demo: Demo) -> None:
    """`user`, Tab, `dckr_pat_secret` typed at once, three times over: the token never lands in
    the (visible) Docker ID field."""
    app = app_for(demo)
    typed = "user\tdckr_pat_secret"
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        for attempt in range(3):
            await pilot.press("a")
            form = app.screen
            assert isinstance(form, IdentityForm)
            await pilot.press("tab")  # to the Docker ID field
            assert app.focused is form.query_one("#username", Input)
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
        await pilot.press("a", "tab", "tab")  # the token field
        form = app.screen
        assert isinstance(form, IdentityForm)
        await burst(pilot, "\x1b[Zbob")  # shift+tab, then the Docker ID
        await until(lambda: field(form, "username") == "bob", "the Docker ID")
        assert field(form, "secret") == ""


async def test_a_token_in_the_docker_id_field_is_hidden_and_refused(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("a", *"mirror", "tab", *"dckr_pat_")
        form = app.screen
        assert isinstance(form, IdentityForm)
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
            await pilot.press("a", *"mirror", "tab", *username, "tab", *"dckr_pat_x", "ctrl+s")
            form = app.screen
            assert isinstance(form, IdentityForm)
            assert expected in str(form.query_one("#username-error").render())
            await pilot.press("escape")
        assert demo.runtime.paths.config_file.read_bytes() == before
