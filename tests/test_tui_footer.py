"""The key footer (`KeyFooter`): rebuilt when the keys it shows change, and only then."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from pullwatch.tui.widgets.footer import KeyFooter


class Pane(Static, can_focus=True):
    pass


class First(Pane):
    BINDINGS = [Binding("a", "app.bell", "Alpha")]


class Second(Pane):
    BINDINGS = [Binding("b", "app.bell", "Bravo")]


class Counted(KeyFooter):
    rebuilt = 0

    async def recompose(self) -> None:
        type(self).rebuilt += 1
        await super().recompose()


class Keys(App[None]):
    def compose(self) -> ComposeResult:
        yield First("first", id="first")
        yield Second("second", id="second")
        yield Counted(compact=True)


def shown(app: Keys) -> str:
    return " ".join(str(key.render()) for key in app.query("FooterKey"))


async def test_the_footer_is_rebuilt_only_when_its_keys_change() -> None:
    Counted.rebuilt = 0
    app = Keys()
    async with app.run_test(size=(80, 10)) as pilot:
        app.query_one("#first").focus()
        await pilot.pause()
        assert "Alpha" in shown(app) and "Bravo" not in shown(app)
        before = Counted.rebuilt
        for _ in range(5):  # the screen says its bindings were updated; nothing shown changed
            app.screen.refresh_bindings()
            await pilot.pause()
        assert Counted.rebuilt == before
        app.query_one("#second").focus()  # the keys shown change: rebuilt, the new key shown
        await pilot.pause()
        await pilot.pause()
        assert Counted.rebuilt == before + 1
        assert "Bravo" in shown(app) and "Alpha" not in shown(app)
