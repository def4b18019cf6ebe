"""A hostile registry (tests/hostile.py) against every output: nothing from the network reaches a
terminal or a file raw, and no token it echoes is shown or stored.

The registry puts escape sequences (a screen clear, an OSC 0 title, an OSC 52 clipboard write,
an 8-bit CSI, a BEL, a bidi override, an OSC 8 link) into every header and body field pullwatch
shows: the bucket source, the rate-limit values, any header `head` lists, Retry-After, the 401
challenge's error, the token endpoint's error body and the token's claims. Then `check` (text,
JSON, OpenMetrics), `head`, `token`, `history`, `report` (text, Markdown, JSON), the history
database and the dashboard are searched for any control character: none may be there.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures_registry import PullwatchCli
from hostile import POISON, HostileRegistry, Script, forbidden_in, hostile_registry
from pullwatch.cli import main
from pullwatch.demo import Demo
from pullwatch.identities.secrets import MemoryKeyring
from pullwatch.paths import Paths
from pullwatch.runtime import build_runtime
from pullwatch.tui.app import make_app

Run = Callable[..., tuple[int, str, str]]
SECRET = "hostile-test-secret-0123456789"


@pytest.fixture
def run(paths: Paths, capsys: pytest.CaptureFixture[str], cli_keyring: MemoryKeyring) -> Run:
    def call(url: str, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        argv = ["--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir),
                "--registry", url, *args]  # fmt: skip
        old = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            code = main(argv)
        finally:
            sys.stdin = old
        out, err = capsys.readouterr()
        return code, out, err

    return call


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON document (JSON escapes control characters: look inside)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def assert_clean(name: str, text: str) -> None:
    found = forbidden_in(text)
    try:
        found += [f"(json) {c}" for s in strings(json.loads(text)) for c in forbidden_in(s)]
    except ValueError:
        pass
    assert not found, f"{name}: {found} in {text[:400]!r}"


def jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.c2lnbmF0dXJl"


def poisoned_scripts(hub: HostileRegistry) -> dict[str, Script]:
    token = jwt({"sub": POISON, "iss": POISON, "aud": [POISON], "exp": 4_000_000_000,
                 "iat": 1_700_000_000,
                 "access": [{"type": POISON, "name": POISON, "actions": [POISON],
                             "parameters": {POISON: POISON}}]})  # fmt: skip
    token_body = json.dumps({"token": token, "expires_in": 300}).encode()
    return {
        "headers": Script(
            ping=(401, [("WWW-Authenticate", hub.bearer_challenge())], b""),
            token=(200, [("Content-Type", "application/json")], token_body),
            head=(
                200,
                [
                    ("docker-ratelimit-source", POISON),
                    ("ratelimit-limit", "100;w=21600"),
                    ("ratelimit-remaining", f"76;w=21600{POISON}"),
                    ("X-Evil", POISON),
                    ("Retry-After", POISON),
                ],
                b"",
            ),
        ),
        "challenge error": Script(
            ping=(401, [("WWW-Authenticate", hub.bearer_challenge())], b""),
            token=(200, [("Content-Type", "application/json")], token_body),
            head=(401, [("WWW-Authenticate", hub.bearer_challenge(f',error="{POISON}"'))], b""),
        ),
        "error bodies": Script(
            ping=(401, [("WWW-Authenticate", hub.bearer_challenge())], b""),
            token=(
                503,
                [("Content-Type", "application/json"), ("Retry-After", POISON)],
                json.dumps({"errors": [{"code": POISON, "message": POISON}]}).encode(),
            ),
        ),
        "refused login": Script(
            ping=(401, [("WWW-Authenticate", hub.bearer_challenge())], b""),
            token=(401, [], json.dumps({"details": POISON}).encode()),
        ),
    }


COMMANDS: tuple[tuple[str, ...], ...] = (
    ("check",),
    ("check", "--json"),
    ("check", "--openmetrics"),
    ("head", "ci"),
    ("head", "ci", "--json"),
    ("head", "anonymous"),
    ("token", "ci"),
    ("token", "ci", "--json"),
    ("token", "anonymous", "--json"),
    ("history", "ci"),
    ("history", "ci", "--json"),
    ("report",),
    ("report", "--markdown"),
    ("report", "--json"),
)


@pytest.mark.parametrize("case", ["headers", "challenge error", "error bodies", "refused login"])
def test_nothing_from_the_network_reaches_a_terminal_or_a_file(
    run: Run, paths: Paths, case: str
) -> None:
    with hostile_registry() as hub:
        hub.script = poisoned_scripts(hub)[case]
        code, _, err = run(hub.url, "identity", "add", "ci", "--username", "ci-user",
                           "--password-stdin", stdin=SECRET)  # fmt: skip
        assert code == 0, err
        for command in COMMANDS:
            extra = ("--retry-auth",) if command[0] in ("check", "report", "head") else ()
            code, out, err = run(hub.url, *command, *extra)
            assert "Traceback" not in err and "internal error" not in err, (command, err)
            assert_clean(" ".join(command) + " (stdout)", out)
            assert_clean(" ".join(command) + " (stderr)", err)
            assert SECRET not in out + err
        assert hub.count("manifest_get") == 0
    with sqlite3.connect(paths.history_db) as db:
        for row in db.execute("SELECT * FROM readings"):
            for value in row:
                if isinstance(value, str):
                    assert_clean("history database", value)


async def test_the_dashboard_shows_no_escape_sequence(demo: Demo, tmp_path: Path) -> None:
    with hostile_registry() as hub:
        hub.script = poisoned_scripts(hub)["headers"]
        runtime = build_runtime(
            demo.runtime.paths, registry=hub.url, secrets=demo.runtime.secrets,
            clock=demo.runtime.clock, env={},
        )  # fmt: skip
        app = make_app(runtime, interval=3600, watch_terminal=False)
        async with app.run_test(size=(140, 40)) as pilot:
            await app.wait_for_round()
            await pilot.pause()
            screen = app.export_screenshot()
            for label in app.dashboard.table.labels:
                app.dashboard.focus_identity(label)
                await pilot.pause()
                screen += app.export_screenshot()
    # Textual writes what it was given into the SVG's text: a control character would be there.
    assert not forbidden_in(screen)
    assert "[2J" not in screen  # whole escape sequences are gone, not just their ESC


def test_a_token_echoed_back_is_never_shown_or_stored(pullwatch_cli: PullwatchCli) -> None:
    """The registry echoes bearer tokens - this run's, inside a header long enough that
    shortening it first would cut the token into pieces that no longer look like one, and an
    opaque token issued in an earlier run (another process), which this one never saw."""
    issued: list[str] = []

    with hostile_registry() as hub:

        def token(_: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
            value = f"opaque-{len(issued)}-{secrets.token_hex(24)}"
            issued.append(value)
            return 200, [], json.dumps({"token": value, "expires_in": 300}).encode()

        def head(entry: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
            bearer = entry["headers"].get("Authorization", "").partition(" ")[2]
            earlier = " ".join(issued[:-1])
            echo = f"{'x' * 300} you sent {bearer}; earlier: {earlier}"
            return 200, [
                ("ratelimit-limit", "100;w=21600"),
                ("ratelimit-remaining", "76;w=21600"),
                ("docker-ratelimit-source", earlier or bearer),
                ("X-Echo", echo),
                ("Warning", f'199 - "token {bearer}"'),
            ], b""  # fmt: skip

        hub.script = Script(
            ping=(401, [("WWW-Authenticate", hub.bearer_challenge())], b""),
            token=token,
            head=head,
        )
        pullwatch_cli.add_identity(hub.url, "ci", "ci-user", SECRET)
        outputs = []
        for _ in range(2):  # two processes: the second is echoed the first one's token too
            for command in (("check", "--json"), ("head", "ci", "--json"), ("report",)):
                done = pullwatch_cli.run(hub.url, *command, repository=None)
                outputs += [done.stdout, done.stderr]
        done = pullwatch_cli.run(hub.url, "history", "ci", "--json", repository=None)
        outputs += [done.stdout, done.stderr]
    assert len(issued) >= 4  # each process got its own tokens (one per identity)
    base = pullwatch_cli.base
    written = [p for p in base.rglob("*") if p.is_file()]
    assert any(p.name == "history.sqlite3" for p in written)
    for value in issued:
        for output in outputs:
            assert value not in output
        for path in written:
            assert value.encode() not in path.read_bytes(), path
