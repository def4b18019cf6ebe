"""The triage keys on the dashboard, driven by a pilot against the demo's simulated hub:
`p` plan, `x` explain, `i` import Docker logins, `w` report, and advice on the check screens."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Input, TextArea

from pullwatch.demo import DEMO_ACCOUNTS, Demo
from pullwatch.reading import State
from pullwatch.tui.app import PullwatchApp, make_app
from pullwatch.tui.screens.checks import CheckScreen
from pullwatch.tui.screens.explain import ExplainScreen
from pullwatch.tui.screens.import_docker import ImportDockerScreen
from pullwatch.tui.screens.plan import PlanScreen
from pullwatch.tui.screens.report import ReportScreen
from screenkit import find, screen_cells
from test_advice import SEED_LINE
from test_docker_config import answering, write_helper

SIZE = (120, 36)


def app_for(demo: Demo) -> PullwatchApp:
    return make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)


def notifications(app: PullwatchApp) -> list[str]:
    """Every notification's message, as the app raises them."""
    said: list[str] = []
    notify = app.notify

    def noting(message: str, **options: Any) -> None:
        said.append(message)
        notify(message, **options)

    app.notify = noting  # type: ignore[method-assign]
    return said


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_plan_screen_uses_the_selected_identitys_live_limit(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("p")
        screen = app.screen
        assert isinstance(screen, PlanScreen)
        # The demo's anonymous bucket: 100 per 1 h live (as seen in 2026).
        assert (screen.quota.limit, screen.quota.window) == (100, 3600)
        assert screen.quota.origin == "live: anonymous"
        assert screen.result is not None and screen.result.pulls_per_window == 50
        assert screen.result.fits
        repositories = screen.query_one("#repositories", Input)
        repositories.value = "40"
        await pilot.pause()
        assert screen.result is not None and not screen.result.fits
        assert screen.result.largest_cap == 2
        screen.query_one("#interval", Input).value = "soon"
        await pilot.pause()
        assert screen.result is None and screen.problem is not None
        assert "not a duration" in screen.problem
        await pilot.press("escape")
        assert app.screen is app.dashboard
        await pilot.press("down", "down", "down", "p")  # release: not metered
        assert isinstance(app.screen, PlanScreen)
        assert app.screen.quota.limit is None
        assert app.screen.result is not None and app.screen.result.fits


async def test_explain_screen_names_the_limit(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        screen = app.screen
        assert isinstance(screen, ExplainScreen)
        assert screen.explanation is None
        screen.query_one("#paste", TextArea).insert(SEED_LINE)
        await pilot.pause()
        assert screen.explanation is not None
        assert screen.explanation.kind == "abuse_limit"
        shown = str(screen.query_one("#explain-result").render())
        assert "abuse limit (HAP429)" in shown and "Slow the client down" in shown
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert screen.explanation is None


async def test_check_screens_show_the_advice(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press(*["down"] * 5, "h")  # scanner: exhausted
        screen = app.screen
        assert isinstance(screen, CheckScreen)
        await until(lambda: bool(screen.plain_text), "the HEAD check")
        assert "  next 1." in screen.plain_text
        assert "pull-through cache or mirror" in screen.plain_text
        await pilot.press("escape", "up", "t")  # old-bot: a revoked token
        screen = app.screen
        assert isinstance(screen, CheckScreen)
        await until(lambda: bool(screen.plain_text), "the token check")
        assert "expired or was revoked" in screen.plain_text
        assert "dckr_pat_demo-revoked" not in screen.plain_text


@pytest.fixture
def docker_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Docker's config with a credsStore whose helper holds scanbot's login."""
    home = tmp_path / "docker"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({"credsStore": "pwdemo"}))
    monkeypatch.setenv("DOCKER_CONFIG", str(home))
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    scanner = next(a for a in DEMO_ACCOUNTS if a.label == "scanner")
    assert scanner.username and scanner.secret
    write_helper(bin_dir, "pwdemo", answering(scanner.username, scanner.secret, tmp_path / "log"))
    yield tmp_path / "log"


async def test_import_docker_login_headless(demo: Demo, docker_login: Path) -> None:
    """Headless, the app cannot suspend: the helper runs in a thread without a terminal."""
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("i")
        screen = app.screen
        assert isinstance(screen, ImportDockerScreen)
        await until(lambda: screen.status == "ready", "config read")
        await pilot.press("enter")  # Look up
        await until(lambda: screen.status == "found", "the helper's answer")
        assert await asyncio.to_thread(docker_login.exists)  # the real helper executable ran
        label = screen.query_one("#import-label", Input)
        # the demo's scanner identity logs in as scanbot already: a free label is proposed
        assert label.value == "scanbot-2"
        said = str(screen.query_one("#import-body").render())
        assert "Docker ID scanbot is already identity 'scanner'" in said
        label.value = "imported"
        await pilot.press("enter")  # Import
        await until(lambda: app.screen is app.dashboard, "the import")

        def probed() -> bool:
            reading = app.monitor.latest("imported")
            return reading is not None and reading.state is State.EXHAUSTED

        await until(probed, "the imported identity's first probe")  # scanbot's bucket is spent
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "imported" in app.dashboard.table.labels
    assert demo.runtime.secrets.get("imported").secret == "dckr_pat_demo-scanner"
    config = demo.runtime.paths.config_file.read_text()
    assert 'label = "imported"' in config and "dckr_pat_demo-scanner" not in config


async def test_import_suspends_the_app_around_the_helper(demo: Demo, docker_login: Path) -> None:
    """Where the app can suspend, the helper runs in the foreground while it is suspended."""
    app = app_for(demo)
    suspended: list[bool] = []

    @contextlib.contextmanager
    def fake_suspend() -> Iterator[None]:
        suspended.append(True)
        yield
        suspended.append(False)

    app.suspend = fake_suspend  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i")
        screen = app.screen
        assert isinstance(screen, ImportDockerScreen)
        await until(lambda: screen.status == "ready", "config read")
        await pilot.press("enter")
        await until(lambda: screen.status == "found", "the helper's answer")
        assert suspended == [True, False]
        assert await asyncio.to_thread(docker_login.exists)
        await pilot.press("escape")
        assert app.screen is app.dashboard
    assert demo.runtime.secrets.get("scanbot").secret is None  # cancelled: nothing stored


async def test_import_with_nothing_to_import(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i")
        screen = app.screen
        assert isinstance(screen, ImportDockerScreen)
        await until(lambda: screen.status == "nothing", "config read")
        assert "does not exist" in str(screen.query_one("#import-body").render())
        await pilot.pause()
        assert not screen.query_one("#run", Button).display  # no Look up: nothing to look up
        assert str(screen.query_one("#cancel", Button).label) == "Close"
        assert app.focused is screen.query_one("#cancel")
        assert not find(screen_cells(app), "Look up")
        await pilot.press("enter")
        await until(lambda: app.screen is app.dashboard, "closed")


async def test_report_screen_copies_and_saves_redacted_markdown(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the demo `s` saves to the current directory: the demo's own data directory is
    removed when it quits, and the report must outlive it."""
    here = tmp_path / "here"
    here.mkdir(mode=0o755)
    monkeypatch.chdir(here)
    app = app_for(demo)
    copied: list[str] = []
    app.copy_to_clipboard = copied.append  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("w")
        screen = app.screen
        assert isinstance(screen, ReportScreen)
        markdown = screen.markdown
        for account in DEMO_ACCOUNTS:
            assert f"### {account.label}" in markdown
            if account.secret:
                assert account.secret not in markdown
        assert "| scanner | exhausted | 0/200 | 6 h | account e8a1f4c2 |" in markdown
        await pilot.press("c")
        assert copied == [markdown]
        await pilot.press("s")
        await until(lambda: screen.saved_to is not None, "the saved report")
        assert screen.saved_to is not None
        assert screen.saved_to.read_text() == markdown
        assert screen.saved_to.parent == here
        assert (screen.saved_to.stat().st_mode & 0o777) == 0o600
        assert (here.stat().st_mode & 0o777) == 0o755  # the user's directory left as it was
    demo.close()  # as quitting the demo does
    assert screen.saved_to.read_text() == markdown


async def test_report_saves_under_the_data_directory_outside_the_demo(demo: Demo) -> None:
    app = make_app(demo.runtime, demo=False, interval=60, watch_terminal=False)
    notes = notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("w")
        await until(lambda: isinstance(app.screen, ReportScreen), "the report")
        screen = app.screen
        assert isinstance(screen, ReportScreen)
        await pilot.press("s")
        await until(lambda: screen.saved_to is not None, "the saved report")
        assert screen.saved_to is not None
        reports = demo.runtime.paths.data_dir / "reports"
        assert screen.saved_to.parent == reports
        assert (reports.stat().st_mode & 0o777) == 0o700
        await until(lambda: any(str(screen.saved_to) in n for n in notes), "the notification")


async def test_palette_lists_the_triage_commands(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE):
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("Triage report", "Scan-budget planner", "Explain an error line",
                      "Import Docker logins"):  # fmt: skip
            assert title in titles


async def test_explain_screen_says_first_when_it_does_not_recognise(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        screen = app.screen
        assert isinstance(screen, ExplainScreen)
        screen.query_one("#paste", TextArea).insert("everything is fine, thanks")
        await pilot.pause()
        assert screen.explanation is not None and not screen.explanation.recognised
        shown = str(screen.query_one("#explain-result").render())
        assert shown.splitlines()[0] == "Which limit: not recognised"
        assert "Matched" not in shown
