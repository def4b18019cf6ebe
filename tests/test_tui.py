"""The dashboard driven by a pilot, against the demo's simulated hub on loopback."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from keyring.backends import fail

from pullwatch.demo import Demo
from pullwatch.identities.secrets import KeyringStatus, MemoryKeyring, SecretStore
from pullwatch.identities.store import IdentityStore
from pullwatch.monitor import Monitor
from pullwatch.reading import State
from pullwatch.runtime import build_runtime
from pullwatch.tui.app import PullwatchApp, make_app
from pullwatch.tui.screens.checks import CheckScreen
from pullwatch.tui.screens.confirm import ConfirmScreen
from pullwatch.tui.screens.help import HelpScreen
from pullwatch.tui.screens.identity_form import IdentityForm
from pullwatch.tui.widgets.identity_table import Column, plan_columns
from screenkit import cell_contrast, find, line_text, screen_cells

SIZE = (120, 32)


def app_for(demo: Demo, **options: object) -> PullwatchApp:
    return make_app(demo.runtime, demo=True, interval=60, watch_terminal=False, **options)


def cell(app: PullwatchApp, label: str, column: str) -> str:
    return app.dashboard.table.get_cell(label, column).plain  # a cell is always Text


async def wait_for_check(screen: CheckScreen) -> str:
    for _ in range(500):
        if screen.plain_text:
            return screen.plain_text
        await asyncio.sleep(0.01)
    raise AssertionError("the check never finished")


async def test_dashboard_shows_every_demo_identity(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.pause()
        table = app.dashboard.table
        assert table.labels == [
            "anonymous",
            "ci-bot",
            "dev-laptop",
            "release",
            "old-bot",
            "scanner",
        ]
        assert cell(app, "anonymous", "bucket") == "203.0.113.7"
        assert cell(app, "anonymous", "remaining").endswith("76/100")
        assert cell(app, "anonymous", "window") == "1 h"
        assert cell(app, "ci-bot", "bucket") == "account 186e63fa"
        assert cell(app, "ci-bot", "token") == "5m"
        assert cell(app, "release", "remaining") == "unlimited"
        assert cell(app, "scanner", "state").startswith("exhausted")
        assert cell(app, "old-bot", "state").startswith("auth failed")
        assert "incorrect" in cell(app, "old-bot", "state")  # the reason, as far as it fits
        assert cell(app, "dev-laptop", "state").startswith("low")
        status = app.dashboard.status.render_text().plain
        assert "6 identities · simulated Docker Hub" in status
        assert "next round 1m00s" in status


async def test_detail_pane_follows_the_cursor(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("down", "down", "down", "down")
        await pilot.pause()
        detail = app.dashboard.detail
        assert detail.assessment is not None and detail.assessment.label == "old-bot"
        assert detail.assessment.state is State.AUTH_FAILED


async def test_refresh_updates_rows_in_place(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        table = app.dashboard.table
        await pilot.press("down", "down")
        rebuilds = table.rebuilds
        demo.model.consume("devjane", 9)
        demo.model.consume("anonymous", 6)
        await pilot.press("r")
        await app.wait_for_round()
        await pilot.pause()
        assert cell(app, "dev-laptop", "remaining").endswith("20/200")
        assert cell(app, "anonymous", "remaining").endswith("70/100")
        assert table.cursor_row == 2  # the cursor never jumps
        assert table.rebuilds == rebuilds  # rows updated in place, never rebuilt
        for _ in range(3):  # ticks update countdown cells only
            app._tick()
        assert table.rebuilds == rebuilds


async def test_a_spread_round_is_taken_out_of_the_pause(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round spread over 30 s of a 60 s interval: the next starts 30 s after it ends, so each
    identity still comes round about once an interval (not every 90 s)."""
    app = app_for(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.wait_for_round()
        await pilot.pause()
        assert app.dashboard.status.next_round_in == pytest.approx(60, abs=2)
        monkeypatch.setattr(Monitor, "spread_time", lambda self: 30.0)
        app.start_round()
        await app.wait_for_round()
        await pilot.pause()
        assert app.dashboard.status.next_round_in == pytest.approx(30, abs=2)


async def test_a_refresh_before_the_history_is_loaded_is_still_recorded(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paint first: the history loads in a thread after the first frame. A reading taken before
    it is in (enter pressed at once) is recorded when it arrives, not dropped."""
    from pullwatch.history import History

    release = threading.Event()
    opened = PullwatchApp.open_history

    def slow_open(self: PullwatchApp) -> History:
        release.wait(10)
        return opened(self)

    monkeypatch.setattr(PullwatchApp, "open_history", slow_open)
    app = make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")  # the first identity, before the history is in
        for _ in range(500):
            if app.monitor.latest("anonymous") is not None:
                break
            await asyncio.sleep(0.01)
        assert not app.history_loaded.is_set()
        release.set()
        await app.wait_for_round()
        await app.workers.wait_for_complete()
    with History(demo.runtime.paths.history_db) as history:
        assert len(history.for_label("anonymous")) == 2  # the early refresh and the round


async def test_enter_refreshes_the_selected_identity(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        heads = demo.model.counters["head"]
        tokens = demo.model.token_requests_by_user["oldbot"]
        await pilot.press("down", "down", "down", "down", "enter")  # old-bot: a retry on request
        await pilot.pause(0.2)
        await app.workers.wait_for_complete()
        assert demo.model.token_requests_by_user["oldbot"] == tokens + 1
        assert demo.model.counters["head"] == heads
        await pilot.press("r")  # refresh-all leaves the failed login alone
        await app.wait_for_round()
        assert demo.model.token_requests_by_user["oldbot"] == tokens + 1


async def test_token_check_screen_shows_the_simulators_claims(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("down", "t")
        screen = app.screen
        assert isinstance(screen, CheckScreen)
        text = await wait_for_check(screen)
        assert "Token check: ci-bot (cibot)" in text
        assert "expires in: 300 s" in text
        assert "sub: 186e63fa-1b6a-4c51-9f12-61a26f0a9c01" in text
        assert "pull_limit: 200 per 21600 s (6 h)" in text
        assert "auth: basic (cibot)" in text
        assert "dckr_pat_demo-ci-bot" not in text
        await pilot.press("escape")
        assert app.screen is app.dashboard


async def test_head_check_screen_and_copy(demo: Demo) -> None:
    app = app_for(demo)
    copied: list[str] = []
    app.copy_to_clipboard = copied.append  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("h")
        screen = app.screen
        assert isinstance(screen, CheckScreen)
        text = await wait_for_check(screen)
        assert "HEAD requests do not count as pulls" in text
        assert "ratelimit-remaining: 76;w=3600" in text
        assert "source: 203.0.113.7 (ipv4)" in text
        await pilot.press("c")
        assert copied == [text]


async def test_add_identity_puts_the_secret_in_the_keyring_only(demo: Demo) -> None:
    app = app_for(demo)
    keyring = demo.runtime.secrets
    secret = "dckr_pat_demo-ci-bot"
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("a")
        assert isinstance(app.screen, IdentityForm)
        await pilot.press(*"mirror", "tab", *"cibot", "tab", *secret, "enter")
        for _ in range(200):
            if app.screen is app.dashboard:
                break
            await asyncio.sleep(0.01)
        assert app.screen is app.dashboard
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "mirror" in app.dashboard.table.labels
        assert cell(app, "mirror", "bucket") == "account 186e63fa"  # the same account as ci-bot
    assert keyring.get("mirror").secret == secret
    config = demo.runtime.paths.config_file.read_text()
    assert 'label = "mirror"' in config and 'username = "cibot"' in config
    assert secret not in config


async def test_form_validates_inline_and_keeps_nothing(demo: Demo) -> None:
    app = app_for(demo)
    before = demo.runtime.paths.config_file.read_bytes()
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("a", *"ci-bot", "tab", *"me@example.com", "enter")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, IdentityForm)
        errors = {
            f: str(form.query_one(f"#{f}-error").render()) for f in ("label", "username", "secret")
        }
        assert "already exists" in errors["label"]
        assert "e-mail" in errors["username"]
        assert "needs a secret" in errors["secret"]
        await pilot.press("escape")
        assert app.screen is app.dashboard
    assert demo.runtime.paths.config_file.read_bytes() == before


async def test_delete_asks_first_then_removes_identity_and_secret(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("down", "d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")  # cancel: nothing happens
        assert "ci-bot" in app.dashboard.table.labels
        await pilot.press("d")
        for _ in range(500):  # a key sent before the dialog is up would go to the dashboard
            if isinstance(app.screen, ConfirmScreen):
                break
            await asyncio.sleep(0.01)
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "ci-bot" not in app.dashboard.table.labels
        assert app.dashboard.table.cursor_row == 1  # stays where it was
    assert demo.runtime.secrets.get("ci-bot").secret is None


async def test_help_and_pause(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "space")
        await pilot.pause()
        assert app.paused
        assert "paused" in app.dashboard.status.render_text().plain
        await pilot.press("space")
        await app.wait_for_round()
        assert not app.paused


async def test_stays_responsive_while_every_probe_hangs(demo: Demo) -> None:
    demo.model.faults.hang = {"any"}
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.history_loaded.wait()  # the round starts once the history is in
        for _ in range(200):  # until every probe is in flight (event-driven, bounded)
            if app.dashboard.status.probing == 6:
                break
            await pilot.pause(0.05)
        assert app.dashboard.status.probing == 6
        started = time.monotonic()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "down", "down")
        assert app.dashboard.table.cursor_row == 2
        assert time.monotonic() - started < 5  # a generous correctness bound, not a benchmark
        await app.action_quit()
    assert app.return_code in (0, None)


async def test_keyring_problem_is_shown_with_the_way_out(demo: Demo) -> None:
    broken = SecretStore(fail.Keyring(), timeout=0.5)
    assert broken.health().status is KeyringStatus.NO_BACKEND
    runtime = build_runtime(demo.runtime.paths, registry=demo.server.url, secrets=broken,
                            clock=demo.runtime.clock, env={})  # fmt: skip
    app = make_app(runtime, interval=60, watch_terminal=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = app.dashboard.status.render_text().plain
        assert "keyring: no keyring backend" in status and "dbus-run-session" in status
        assert cell(app, "anonymous", "state") == "ok"  # anonymous keeps working
        assert cell(app, "ci-bot", "state").startswith("error  secret unavailable")
        await pilot.press("a")
        await app.workers.wait_for_complete()
        await pilot.pause()
        note = str(app.screen.query_one("#keyring-note").render())
        assert "The keyring cannot be used" in note


def test_memory_keyring_demo_writes_nothing_outside_its_workdir(demo: Demo) -> None:
    store = IdentityStore(demo.runtime.paths.config_file, SecretStore(MemoryKeyring()))
    assert [i.label for i in store.load().identities][:2] == ["anonymous", "ci-bot"]
    assert demo.workdir in demo.runtime.paths.config_file.parents


def test_columns_degrade_at_80_and_grow_when_wide() -> None:
    narrow = plan_columns(78, 12)
    assert [c.key for c in narrow] == ["label", "bucket", "remaining", "window", "token", "state"]
    assert sum(c.width + 2 for c in narrow) <= 78
    recovers = [Column("recovers", "Recovers", 9, 4)]
    middling = plan_columns(118, 12, extra=recovers)
    assert "age" not in [c.key for c in middling]  # dropped before the state's reason
    assert "recovers" in [c.key for c in middling]
    assert next(c.width for c in middling if c.key == "state") >= 40
    wide = plan_columns(198, 12)
    assert [c.key for c in wide][-2:] == ["age", "state"]
    assert next(c.width for c in wide if c.key == "remaining") == 7 + 1 + 15
    tiny = plan_columns(40, 12)
    assert [c.key for c in tiny] == ["label", "remaining", "state"]


async def test_mouse_selects_a_row(demo: Demo) -> None:
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        table = app.dashboard.table
        row_y = table.region.y + 1 + 3  # below the header: the fourth identity
        await pilot.click(offset=(table.region.x + 4, row_y))
        await pilot.pause()
        assert table.selected_label == "release"
        assert app.dashboard.detail.assessment is not None
        assert app.dashboard.detail.assessment.label == "release"


async def test_no_color_is_respected(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.pause()
        assert app.no_color
        svg = app.export_screenshot()
    # the state colours (green ok, red exhausted) are gone from the rendered screen
    assert "#98e024" not in svg.lower() and "#f4005f" not in svg.lower()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_a_failed_probe_keeps_the_last_numbers_aged(
    demo: Demo, size: tuple[int, int]
) -> None:
    """After a good reading, a failed probe keeps the numbers, dimmed, with their age - whole,
    in the table's narrowest Remaining column and in the detail pane."""
    app = app_for(demo)
    async with app.run_test(size=size) as pilot:
        await app.wait_for_round()
        await app.workers.wait_for_complete()
        demo.runtime.clock.advance(180)  # type: ignore[attr-defined]
        demo.model.faults.status = {"head": 503}
        app.refresh_identity("anonymous")
        await app.workers.wait_for_complete()
        demo.model.faults.clear()
        await pilot.press("down")  # the cursor off anonymous's row, onto ci-bot
        app._tick()
        await pilot.pause()
        rows = screen_cells(app)
        row, *_ = [r for r in rows if line_text(r).strip().startswith("anonymous ")]  # the table
        line = line_text(row)
        assert "76/100 3m" in line, line
        rest_of_cell = line.split("76/100 3m", 1)[1].split("  ")[0]
        assert rest_of_cell in ("", " ago"), line  # whole: never cut to "3m ag"
        assert "error" in line
        numbers = row[line.index("76/100")]
        bucket = row[line.index("203.0.113.7")]
        # dimmed, not shown as if fresh - and still readable
        assert 3 <= cell_contrast(numbers) < cell_contrast(bucket)
        await pilot.press("up")
        await pilot.pause()
        assert find(screen_cells(app), "76 of 100 per 1 h as of 3m ago")  # the detail pane


async def test_a_failure_every_identity_shares_is_said_once(demo: Demo) -> None:
    """Every identity's HEAD answers 404 (a missing probe manifest: the registry's problem, not
    an identity's): the header says it once with the way out; the rows keep their states."""
    demo.runtime.store.remove("old-bot")  # a refused login is not retried: not in the round
    demo.runtime.reload()
    app = app_for(demo)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        assert app.dashboard.status.registry_problem is None
        demo.model.faults.status = {"head": 404}
        await pilot.press("r")
        await app.wait_for_round()
        await pilot.pause()
        status = app.dashboard.status.render_text().plain
        assert status.count("every identity:") == 1
        assert "--repository" in status  # the step, once
        for label in app.dashboard.table.labels:
            reading = app.monitor.latest(label)
            assert reading is not None and reading.state is State.ERROR, label
        shown = " ".join(line_text(row) for row in screen_cells(app))
        assert shown.count("every identity:") == 1
        demo.model.faults.clear()
        await pilot.press("r")
        await app.wait_for_round()
        await pilot.pause()
        assert "every identity" not in app.dashboard.status.render_text().plain


async def test_saving_an_edit_says_so(demo: Demo) -> None:
    """The demo's form saves an edit (the in-memory keyring keeps the token) and confirms it."""
    app = app_for(demo)
    said: list[str] = []
    notify = app.notify

    def noting(message: str, **options: object) -> None:
        said.append(message)
        notify(message, **options)  # type: ignore[arg-type]

    app.notify = noting  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("down", "e")
        for _ in range(500):
            if isinstance(app.screen, IdentityForm) and app.focused is not None:
                break
            await asyncio.sleep(0.01)
        form = app.screen
        assert isinstance(form, IdentityForm)
        await pilot.press("tab", "tab", "tab", *"15", "ctrl+s")  # the low warning threshold
        for _ in range(500):
            if app.screen is app.dashboard:
                break
            await asyncio.sleep(0.01)
        assert app.screen is app.dashboard
        assert said == ["Saved ci-bot: probing it now"]
        await app.workers.wait_for_complete()
    config = demo.runtime.store.load()
    assert config.get("ci-bot") is not None and config.get("ci-bot").warn_below == 15  # type: ignore[union-attr]


async def test_the_form_warns_when_another_identity_has_the_same_login(demo: Demo) -> None:
    app = app_for(demo)
    said: list[tuple[str, str]] = []
    notify = app.notify

    def noting(message: str, **options: object) -> None:
        said.append((message, str(options.get("severity", "information"))))
        notify(message, **options)  # type: ignore[arg-type]

    app.notify = noting  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_round()
        await pilot.press("a")
        for _ in range(500):
            if isinstance(app.screen, IdentityForm) and app.focused is not None:
                break
            await asyncio.sleep(0.01)
        form = app.screen
        assert isinstance(form, IdentityForm)
        await pilot.press(*"mirror", "tab", *"cibot")
        note = str(form.query_one("#username-note").render())
        assert "ci-bot also logs in as cibot: one account, one bucket" in note
        await pilot.press("tab", *"dckr_pat_demo-ci-bot", "ctrl+s")  # a warning, not an error
        for _ in range(500):
            if app.screen is app.dashboard:
                break
            await asyncio.sleep(0.01)
        assert app.screen is app.dashboard
        assert ("mirror and ci-bot log in as cibot: one account, one bucket - their pulls are "
                "counted together", "warning") in said  # fmt: skip
        await app.workers.wait_for_complete()
