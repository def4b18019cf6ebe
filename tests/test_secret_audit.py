"""The secret audit: every command and screen that touches a secret, then a search of everything
written and shown for the secrets, every token the simulator issued, and every jti id.

Three tests drive, against the simulated hub (with a phase where its error bodies echo
`as '<user>': dckr_jti_<id>` like Docker's authenticated 429):

- the CLI, one line per command (`CLI_STEPS`, `ECHO_STEPS`): identity add/list/remove/
  import-docker, check (table, JSON, OpenMetrics), token, head, history, report (text, Markdown,
  JSON, --output file), plan --identity, explain (of a pasted line holding a real jti);
- `pullwatch serve`'s /metrics, scraped once over HTTP;
- the dashboard by pilot (`TUI_STEPS`): add and edit an identity (typing the tokens), token
  check, HEAD check, copy-as-text, help, the detail pane under the echoing faults, and the
  report/explain screens - with an SVG screenshot saved after each.

After each command or screen, every file under the config and data directories, the report
files, the screenshots, all captured stdout/stderr and clipboard text are searched, so a leak
names the step that made it; then the log records. Zero hits. Config file 0600, its directory
0700. Adding a command is one line in a list.
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
import json
import logging
import re
import sys
import threading
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual import events

from fixtures_simhub import ALICE, BOB, ERIN
from pullwatch.cli import build_parser, main
from pullwatch.clock import ManualClock
from pullwatch.identities.secrets import MemoryKeyring, SecretStore
from pullwatch.paths import Paths
from pullwatch.runtime import build_runtime
from pullwatch.simhub import SimHubServer
from pullwatch.tui.app import PullwatchApp, make_app
from pullwatch.tui.screens.checks import CheckScreen
from pullwatch.tui.screens.identity_form import IdentityForm

TYPO_SECRET = "dckr_pat_TypoSecret-0123456789"
TUI_SECRET = "dckr_pat_TuiAddedSecret-abcdef"
TUI_EDITED_SECRET = "dckr_pat_TuiEditedSecret-987654"
IMPORTED_USER = ALICE.username  # Docker's own login, imported from its config.json

# -- the CLI: one line per command ----------------------------------------------------------------

STDIN = "<stdin>"  # the next argument is what the command reads on stdin


def add(label: str, user: str, secret: str) -> tuple[str, ...]:
    return ("identity", "add", label, "--username", user, "--password-stdin", STDIN, secret)


CLI_STEPS: list[tuple[str, ...]] = [
    add("ci", ALICE.username, ALICE.secret),
    add("typo", ALICE.username, TYPO_SECRET),
    add("spent", ERIN.username, ERIN.secret),
    add("paid", BOB.username, BOB.secret),
    ("identity", "list"),
    ("identity", "list", "--json"),
    ("check",),
    ("check", "--json"),
    ("check", "--openmetrics"),
    ("token", "ci"),
    ("token", "ci", "--json"),
    ("token", "typo"),
    ("token", "typo", "--json"),
    ("head", "ci"),
    ("head", "ci", "--json"),
    ("head", "spent", "--json"),
    ("head", "typo"),
    ("history", "ci"),
    ("history", "typo", "--json"),
    ("report",),
    ("report", "--markdown"),
    ("report", "--json"),
    ("report", "--output", "{outputs}/report.txt"),
    ("plan", "--repositories", "10", "--identity", "ci"),
    ("plan", "--repositories", "10", "--identity", "ci", "--json"),
    ("explain", "{pasted}"),
    ("explain", "--json", "{pasted}"),
    ("identity", "import-docker", "--docker-config", "{docker}", "--label", "imported"),
    ("token", "imported", "--json"),
    ("identity", "remove", "imported"),
]
# Run while the simulator's error bodies echo the user and a real dckr_jti id.
ECHO_STEPS: list[tuple[str, ...]] = [
    ("check",),
    ("check", "--json"),
    ("check", "--openmetrics"),
    ("token", "ci"),
    ("token", "ci", "--json"),
    ("head", "ci", "--json"),
    ("history", "ci", "--json"),
    ("report", "--json"),
    ("report", "--markdown", "--output", "{outputs}/report-echo.md"),
]


@dataclass
class Audit:
    """Where everything goes, and everything shown, for the search at the end."""

    paths: Paths
    server: SimHubServer
    root: Path
    capsys: pytest.CaptureFixture[str]
    shown: dict[str, str] = field(default_factory=dict)  # where -> text
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # screens this build does not have yet
    pasted: str = ""  # an error line holding a real jti, as a user pastes it into explain

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def screenshots(self) -> Path:
        return self.root / "screenshots"

    def fill(self, arg: str, pasted: str) -> str:
        return arg.format(outputs=self.outputs, docker=self.root / "docker", pasted=pasted)

    def cli(self, step: tuple[str, ...], pasted: str) -> int:
        args = [self.fill(a, pasted) for a in step]
        stdin = None
        if STDIN in args:
            at = args.index(STDIN)
            stdin, args = args[at + 1], args[:at] + args[at + 2 :]
        argv = ["--config-dir", str(self.paths.config_dir), "--data-dir", str(self.paths.data_dir),
                "--registry", self.server.url, *args]  # fmt: skip
        old_stdin = sys.stdin
        sys.stdin = io.StringIO(stdin or "")
        try:
            code = main(argv)
        finally:
            sys.stdin = old_stdin
        out, err = self.capsys.readouterr()
        name = f"#{len(self.ran)} " + " ".join(args)[:80]  # unique: steps repeat
        self.shown[f"stdout of {name}"] = out
        self.shown[f"stderr of {name}"] = err
        self.ran.append(name)
        assert "Traceback" not in out + err, (name, err)
        return code

    def screen(self, app: PullwatchApp, name: str) -> None:
        """An SVG screenshot, kept as a file (searched raw and as its visible text)."""
        svg = app.export_screenshot()
        self.screenshots.mkdir(parents=True, exist_ok=True)
        (self.screenshots / f"{len(self.ran):02d}-{name}.svg").write_text(svg, encoding="utf-8")
        self.ran.append(f"screen {name}")


def svg_text(svg: str) -> str:
    """The text an SVG screenshot shows, runs joined (a token split across runs is found)."""
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


# -- the dashboard: one line per screen ------------------------------------------------------------


async def wait_for(condition: Callable[[], Any], within: float = 10.0) -> Any:
    for _ in range(int(within / 0.02)):
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("the screen never got there")


async def check_screen(app: PullwatchApp, audit: Audit, pilot: Any, key: str, name: str) -> None:
    await pilot.press(key)
    screen = app.screen
    assert isinstance(screen, CheckScreen)
    text = await wait_for(lambda: screen.plain_text)
    audit.shown[f"{name} text"] = text
    audit.screen(app, name)
    await pilot.press("c")  # copy as text
    await pilot.press("escape")


async def paste(app: PullwatchApp, pilot: Any, text: str) -> None:
    """Paste into the focused field, as a user pastes a token from the clipboard."""
    focused = app.screen.focused
    assert focused is not None
    focused.post_message(events.Paste(text))
    await pilot.pause()


async def form(app: PullwatchApp, pilot: Any, keys: list[str]) -> None:
    assert isinstance(app.screen, IdentityForm)
    await pilot.press(*keys)
    await wait_for(lambda: app.screen is app.dashboard)
    await app.workers.wait_for_complete()


async def select(app: PullwatchApp, pilot: Any, label: str) -> None:
    app.dashboard.focus_identity(label)
    await pilot.pause()


def tui_steps(audit: Audit) -> list[tuple[str, Callable[[PullwatchApp, Any], Awaitable[None]]]]:
    async def dashboard(app: PullwatchApp, pilot: Any) -> None:
        audit.screen(app, "dashboard")

    async def add_identity(app: PullwatchApp, pilot: Any) -> None:
        await pilot.press("a", *"tui", "tab", *ALICE.username, "tab")
        await paste(app, pilot, TUI_SECRET)
        audit.screen(app, "add-form-filled")
        await form(app, pilot, ["enter"])
        audit.screen(app, "after-add")

    async def edit_identity(app: PullwatchApp, pilot: Any) -> None:
        await select(app, pilot, "tui")
        await pilot.press("e")
        await pilot.press("tab", "tab")  # to the token field
        await paste(app, pilot, TUI_EDITED_SECRET)
        audit.screen(app, "edit-form-typed")
        await form(app, pilot, ["enter"])

    async def token_check(app: PullwatchApp, pilot: Any) -> None:
        await select(app, pilot, "ci")
        await check_screen(app, audit, pilot, "t", "token-check")

    async def head_check(app: PullwatchApp, pilot: Any) -> None:
        await select(app, pilot, "ci")
        await check_screen(app, audit, pilot, "h", "head-check")

    async def failing_token_check(app: PullwatchApp, pilot: Any) -> None:
        await select(app, pilot, "typo")
        await check_screen(app, audit, pilot, "t", "token-check-refused")

    async def help_screen(app: PullwatchApp, pilot: Any) -> None:
        await pilot.press("question_mark")
        audit.screen(app, "help")
        await pilot.press("escape")

    async def optional_screen(
        app: PullwatchApp, pilot: Any, key: str, name: str, text: str | None = None
    ) -> None:
        """A screen the app may not have yet (the triage screens): included once it has."""
        if not hasattr(app, f"action_{name}"):
            audit.skipped.append(f"screen {name}")
            return
        await select(app, pilot, "ci")
        await pilot.press(key)
        await wait_for(lambda: app.screen is not app.dashboard)
        if text is not None:
            await paste(app, pilot, text)
        await app.workers.wait_for_complete()
        await pilot.pause()
        audit.screen(app, name)
        await pilot.press("escape")
        await wait_for(lambda: app.screen is app.dashboard)

    async def report_screen(app: PullwatchApp, pilot: Any) -> None:
        await optional_screen(app, pilot, "w", "report")

    async def explain_screen(app: PullwatchApp, pilot: Any) -> None:
        await optional_screen(app, pilot, "x", "explain", audit.pasted)

    async def plan_screen(app: PullwatchApp, pilot: Any) -> None:
        await optional_screen(app, pilot, "p", "plan")

    async def import_screen(app: PullwatchApp, pilot: Any) -> None:
        await optional_screen(app, pilot, "i", "import_docker")

    async def echoing_faults(app: PullwatchApp, pilot: Any) -> None:
        audit.server.model.faults.update({"status": {"token": 503}, "echo_jti": {"token"}})
        for identity in app.monitor.identities:
            app.monitor.client.forget_token(_target(app, identity.label))
        await pilot.press("r")
        await app.wait_for_round()
        await select(app, pilot, "ci")
        detail = app.monitor.latest("ci")
        assert detail is not None and "dckr_jti_" in (detail.detail or "")
        audit.screen(app, "dashboard-echoing-jti")
        await check_screen(app, audit, pilot, "t", "token-check-echoing-jti")
        audit.server.model.faults.clear()

    return [
        ("dashboard", dashboard),
        ("add identity", add_identity),
        ("edit identity (new token)", edit_identity),
        ("token check", token_check),
        ("HEAD check", head_check),
        ("token check, refused", failing_token_check),
        ("help", help_screen),
        ("report screen", report_screen),
        ("explain screen", explain_screen),
        ("plan screen", plan_screen),
        ("import-docker screen", import_screen),
        ("errors echoing dckr_jti ids", echoing_faults),
    ]


def _target(app: PullwatchApp, label: str) -> Any:
    from pullwatch.hub.client import Credentials, Target

    identity = next(i for i in app.monitor.identities if i.label == label)
    if identity.username is None:
        return Target(label)
    secret = app.runtime.secrets.get(label).secret or ""
    return Target(label, Credentials(identity.username, secret))


# -- the audit ----------------------------------------------------------------------------------


def scrape_metrics(audit: Audit, clock: ManualClock) -> None:
    """`pullwatch serve`: one round, then /metrics over HTTP, as Prometheus would."""
    metrics = pytest.importorskip("pullwatch.metrics")
    runtime = build_runtime(audit.paths, registry=audit.server.url, clock=clock, env={})
    stop = _ThreadStop()
    urls: list[str] = []
    thread = threading.Thread(
        target=metrics.run_exporter,
        kwargs={
            "runtime": runtime,
            "host": "127.0.0.1",
            "port": 0,
            "interval": 3600.0,
            "announce": lambda line: urls.extend(re.findall(r"http://\S+/metrics", line)),
            "stop": stop,
        },
        daemon=True,
    )
    thread.start()
    try:
        for _ in range(500):
            if urls:
                body = urllib.request.urlopen(urls[0], timeout=5).read().decode()
                if re.search(r'pullwatch_probe_success\{identity="ci",[^}]*\} 1\.0', body):
                    break
            threading.Event().wait(0.02)
        else:
            raise AssertionError("serve never published a round")
        audit.shown["/metrics"] = body
        audit.ran.append("serve /metrics")
    finally:
        stop.set_from_thread()
        thread.join(10)
    assert not thread.is_alive()


class _ThreadStop(asyncio.Event):
    """An asyncio.Event another thread can set (the serve loop runs in its own thread)."""

    loop: asyncio.AbstractEventLoop | None = None

    async def wait(self) -> bool:  # type: ignore[override]
        self.loop = asyncio.get_running_loop()
        return await super().wait()

    def set_from_thread(self) -> None:
        for _ in range(500):
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self.set)
                return
            threading.Event().wait(0.01)


ADD_STEPS = [step for step in CLI_STEPS if step[:2] == ("identity", "add")]
LOGINS = {ALICE.secret, TYPO_SECRET, ERIN.secret, BOB.secret, TUI_SECRET, TUI_EDITED_SECRET}


@pytest.fixture
def audit(
    paths: Paths,
    simhub: SimHubServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cli_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
) -> Audit:
    """A config dir, the simulator, Docker's own config.json (it holds a secret by design: it is
    not searched) and the error line a user would paste, holding a real jti."""
    audit = Audit(paths, simhub, tmp_path / "audit", capsys)
    audit.outputs.mkdir(parents=True)
    docker = audit.root / "docker"
    docker.mkdir()
    login = base64.b64encode(f"{IMPORTED_USER}:{ALICE.secret}".encode()).decode()
    (docker / "config.json").write_text(
        json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": login}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))  # for the dashboard's import screen
    jti = simhub.model.jti_for(ALICE.username)
    audit.pasted = (f"toomanyrequests: You have reached your pull rate limit as "
                    f"'{ALICE.username}': {jti}. You may increase the limit by authenticating "
                    f"and upgrading")  # fmt: skip
    return audit


def needles(audit: Audit) -> set[str]:
    """Every secret, and every token and jti id the simulator issued so far."""
    found = set(LOGINS)
    for grant in audit.server.model.issued_tokens():
        found |= {grant.token, grant.jti}
    return found


def written_files(audit: Audit) -> list[Path]:
    roots = (audit.paths.config_dir, audit.paths.data_dir, audit.outputs, audit.screenshots)
    return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


def leaks(audit: Audit, extra: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(where, needle prefix) for every needle found in a written file (raw, and an SVG's
    visible text), in what was shown, or in `extra`."""
    haystacks: dict[str, str] = {}
    for path in written_files(audit):
        haystacks[str(path)] = path.read_bytes().decode("utf-8", "replace")
        if path.suffix == ".svg":
            haystacks[f"{path} (visible text)"] = svg_text(haystacks[str(path)])
    haystacks |= audit.shown | (extra or {})
    return sorted({(where, needle[:14] + "…") for where, text in haystacks.items()
                   for needle in needles(audit) if needle in text})  # fmt: skip


def run_steps(audit: Audit, steps: list[tuple[str, ...]]) -> list[tuple[str, str, str]]:
    """Each command, then the search: a leak is reported with the command that made it."""
    found: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for step in steps:
        audit.cli(step, audit.pasted)
        for leak in leaks(audit):
            if leak not in seen:
                seen.add(leak)
                found.append((audit.ran[-1], *leak))
    return found


def test_the_commands_leak_no_secret_token_or_jti(
    audit: Audit, caplog: pytest.LogCaptureFixture
) -> None:
    """Every CLI command, searched after each: its stdout and stderr, and every file so far;
    then the same commands while the simulator's error bodies echo the user and a jti."""
    caplog.set_level(logging.DEBUG)
    known = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    missing = sorted({step[0] for step in CLI_STEPS + ECHO_STEPS} - known)
    assert missing == [], f"commands gone from the CLI: {missing}"

    assert run_steps(audit, CLI_STEPS) == []
    audit.server.model.faults.update({"status": {"token": 503}, "echo_jti": {"token"}})
    assert run_steps(audit, ECHO_STEPS) == []
    echoed = [text for text in audit.shown.values() if "dckr_jti_" in text]
    assert echoed, "the simulator's echoed jti never reached the output: the audit is vacuous"
    assert leaks(audit, {"log records": caplog.text}) == []

    # Private files; and the audit was not vacuous.
    written = written_files(audit)
    assert (audit.paths.config_file.stat().st_mode & 0o777) == 0o600
    assert (audit.paths.config_dir.stat().st_mode & 0o777) == 0o700
    assert ((audit.outputs / "report.txt").stat().st_mode & 0o777) == 0o600
    assert any(p.name == "history.sqlite3" for p in written)
    assert len(audit.server.model.issued_tokens()) >= 10
    print(f"\nsecret audit, CLI: {len(audit.ran)} commands, {len(written)} files, "
          f"{len(needles(audit))} needles")  # fmt: skip


def test_serve_metrics_leak_no_secret_token_or_jti(
    audit: Audit, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """`pullwatch serve`: one round, /metrics over HTTP, and everything it wrote."""
    caplog.set_level(logging.DEBUG)
    assert run_steps(audit, ADD_STEPS) == []
    scrape_metrics(audit, clock)
    assert audit.server.model.issued_tokens(), "serve asked for no token: the audit is vacuous"
    assert leaks(audit, {"log records": caplog.text}) == []


async def test_the_dashboard_leaks_no_secret_token_or_jti(
    audit: Audit,
    paths: Paths,
    clock: ManualClock,
    cli_keyring: MemoryKeyring,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every screen that touches a secret, a screenshot after each, searched after each step
    (with the clipboard), and the log."""
    caplog.set_level(logging.DEBUG)
    await asyncio.to_thread(run_steps, audit, [*ADD_STEPS, ("check",)])
    runtime = build_runtime(paths, registry=audit.server.url, clock=clock, env={},
                            secrets=SecretStore(cli_keyring, timeout=2.0))  # fmt: skip
    app = make_app(runtime, interval=60, watch_terminal=False)
    copied: list[str] = []
    app.copy_to_clipboard = copied.append  # type: ignore[method-assign]
    found: list[tuple[str, str, str]] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await app.wait_for_round()
        await pilot.pause()
        for name, step in tui_steps(audit):
            await step(app, pilot)
            clipboard = {f"clipboard {i}": text for i, text in enumerate(copied)}
            found += [(name, *leak) for leak in leaks(audit, clipboard) if
                      leak not in {tuple(f[1:]) for f in found}]  # fmt: skip
        await app.workers.wait_for_complete()
    assert found == []
    assert leaks(audit, {"log records": caplog.text}) == []
    assert cli_keyring.get_password("pullwatch", "tui") == TUI_EDITED_SECRET
    assert len(copied) >= 3
    screenshots = [p for p in written_files(audit) if p.suffix == ".svg"]
    assert len(screenshots) >= 8 and any(p.name.endswith("jti.svg") for p in screenshots)
    print(
        f"\nsecret audit, dashboard: {len(screenshots)} screenshots, {len(copied)} copies"
        + (f"; not in this build: {', '.join(audit.skipped)}" if audit.skipped else "")
    )
