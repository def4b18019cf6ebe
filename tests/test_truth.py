"""The numbers never lie: the invariants every output keeps, under faults, hostile registries and
repeated runs.

1. `ok` and `low` only for a valid quota; anything else is `unknown` with the raw values and the
   reason, and `check` exits 3.
2. A 429 without rate-limit headers is not "exhausted, 0 left": `remaining` stays unknown, and
   for an identity known to be unmetered it is the abuse limit (`throttled`).
3. The last good reading survives a failed probe, marked stale with its time.
4. A refused login is not retried behind the user's back, in any process.
7. Nothing from the network reaches a terminal or a file raw (tests/test_hostile.py).
8. Redaction comes before truncation and covers earlier runs' tokens (tests/test_hostile.py).

Each is checked on every output it concerns: `check` text, JSON and OpenMetrics, `head`,
`history`, `report` and the dashboard.
"""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from fixtures_registry import PullwatchCli
from fixtures_simhub import ALICE
from hostile import Script, hostile_registry
from pullwatch.cli import main
from pullwatch.clock import ManualClock
from pullwatch.demo import Demo
from pullwatch.identities.secrets import MemoryKeyring
from pullwatch.paths import Paths
from pullwatch.simhub import SimHubServer
from pullwatch.tui.app import make_app

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(paths: Paths, capsys: pytest.CaptureFixture[str], cli_keyring: MemoryKeyring) -> Run:
    """`pullwatch --config-dir ... --data-dir ... --registry URL ARGS` in this process."""

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


def head_answer(limit: str | None, remaining: str | None, status: int = 200) -> Script:
    headers = [("docker-ratelimit-source", "203.0.113.7")]
    if limit is not None:
        headers.append(("ratelimit-limit", limit))
    if remaining is not None:
        headers.append(("ratelimit-remaining", remaining))
    return Script(head=(status, headers, b""))


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in parse_om(text)
        for s in family.samples
    }


def sample(found: dict, name: str, **labels: str) -> float | None:  # type: ignore[type-arg]
    for (found_name, found_labels), value in found.items():
        if found_name == name and set(labels.items()) <= set(found_labels):
            return value
    return None


# -- 1. ok and low only for a valid quota -------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "remaining", "why"),
    [
        ("100;w=21600", ";;;", "ratelimit-remaining ';;;'"),
        ("100;w=21600", "", "ratelimit-remaining 'empty'"),
        ("100;w=21600", "-5;w=21600", "ratelimit-remaining '-5;w=21600'"),
        ("100;w=21600", "99999999999999999999999;w=21600", "not a plausible count"),
        ("100;w=21600", "150;w=21600", "remaining 150 is more than the limit 100"),
        (";w=21600", "0;w=21600", "ratelimit-limit ';w=21600'"),
        (None, "0;w=21600", "ratelimit-limit is missing"),
    ],
)
def test_an_unreadable_quota_is_unknown_in_every_output(
    run: Run, limit: str | None, remaining: str | None, why: str
) -> None:
    with hostile_registry(head_answer(limit, remaining)) as hub:
        code, out, _ = run(hub.url, "check", "--json")
        assert code == 3  # unknown: not ok, not exhausted
        (row,) = json.loads(out)["identities"]
        assert row["state"] == "unknown" and row["error_kind"] == "malformed"
        assert (row["limit"], row["remaining"]) == (None, None)  # no number it did not read
        assert why in row["error"]
        assert row["raw"]["remaining"] == (remaining if remaining else "") or remaining is None
        code, out, _ = run(hub.url, "check")
        assert code == 3
        line = out.splitlines()[1]
        assert line.split()[1] == "unknown" and "quota unknown" in line and " ok " not in line
        code, out, _ = run(hub.url, "check", "--openmetrics")
        found = samples(out)
        assert sample(found, "pullwatch_probe_success", identity="anonymous") == 0
        assert sample(found, "pullwatch_state", identity="anonymous", state="unknown") == 1
        assert sample(found, "pullwatch_state", identity="anonymous", state="ok") == 0
        assert sample(found, "pullwatch_remaining_pulls", identity="anonymous") is None
        code, out, _ = run(hub.url, "head", "anonymous")
        assert code == 3 and "quota: unreadable" in out and "state: unknown" in out
        code, out, _ = run(hub.url, "report", "--json")
        assert json.loads(out)["identities"][0]["state"] == "unknown"
        code, out, _ = run(hub.url, "history", "anonymous", "--json")
        assert {r["state"] for r in json.loads(out)["readings"]} == {"unknown"}
        assert hub.count("manifest_get") == 0


def test_a_valid_exhausted_quota_is_exhausted(run: Run) -> None:
    with hostile_registry(head_answer("100;w=21600", "0;w=21600")) as hub:
        code, out, _ = run(hub.url, "check", "--json")
    (row,) = json.loads(out)["identities"]
    assert code == 2 and (row["state"], row["limit"], row["remaining"]) == ("exhausted", 100, 0)


# -- 2. a 429 without rate-limit headers --------------------------------------------------------


def test_a_header_less_429_invents_no_zero_and_is_the_abuse_limit_when_unmetered(
    run: Run,
) -> None:
    with hostile_registry(Script(head=(200, [], b""))) as hub:
        code, out, _ = run(hub.url, "check", "--json")
        assert json.loads(out)["identities"][0]["state"] == "unmetered"
        hub.script.head = (429, [("Retry-After", "60")], b"")
        code, out, _ = run(hub.url, "check", "--json")
        (row,) = json.loads(out)["identities"]
        assert code == 1  # a warning (throttled), not critical (exhausted)
        assert row["state"] == "throttled" and row["remaining"] is None
        assert "abuse limit" in row["error"]
        code, out, _ = run(hub.url, "check", "--openmetrics")
        found = samples(out)
        assert sample(found, "pullwatch_state", identity="anonymous", state="throttled") == 1
        assert sample(found, "pullwatch_remaining_pulls", identity="anonymous") is None


def test_a_header_less_429_never_seen_unmetered_is_exhausted_without_a_number(run: Run) -> None:
    with hostile_registry(Script(head=(429, [], b""))) as hub:
        code, out, _ = run(hub.url, "check", "--json")
    (row,) = json.loads(out)["identities"]
    assert code == 2 and row["state"] == "exhausted"
    assert row["remaining"] is None and row["limit"] is None  # never an invented 0
    assert "abuse limit" in row["detail"]  # it says it cannot tell the two 429s apart


# -- 3. the last good reading survives a failed probe ---------------------------------------------


def test_the_last_good_reading_survives_a_failed_probe(run: Run, simhub: SimHubServer) -> None:
    code, out, _ = run(simhub.url, "check", "--json")
    assert json.loads(out)["identities"][0]["state"] == "ok"
    simhub.model.faults.status = {"head": 503}
    code, out, _ = run(simhub.url, "check", "--json")
    (row,) = json.loads(out)["identities"]
    assert code == 3 and row["state"] == "error"
    assert (row["limit"], row["remaining"]) == (None, None)  # this probe read nothing
    last = row["last_known"]
    assert (last["limit"], last["remaining"], last["window_seconds"]) == (100, 100, 21600)
    assert last["source"] == "203.0.113.7" and last["checked_at"].endswith("Z")
    code, out, _ = run(simhub.url, "check")
    assert "100/100 (as of" in out.splitlines()[1] and "ago)" in out.splitlines()[1]
    code, out, _ = run(simhub.url, "check", "--openmetrics")
    found = samples(out)
    assert sample(found, "pullwatch_remaining_pulls", identity="anonymous") is None
    assert sample(found, "pullwatch_last_success_timestamp_seconds", identity="anonymous")


async def test_the_dashboard_keeps_the_last_good_numbers_visibly_stale(
    demo: Demo, clock: ManualClock
) -> None:
    app = make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)
    async with app.run_test(size=(120, 32)) as pilot:
        await app.wait_for_round()
        table = app.dashboard.table
        assert table.get_cell("anonymous", "remaining").plain.endswith("76/100")
        demo.model.faults.status = {"head": 503}
        clock.advance(180)
        await pilot.press("r")
        await app.wait_for_round()
        app._tick()
        await pilot.pause()
        cell = table.get_cell("anonymous", "remaining")
        assert cell.plain.split() == ["76/100", "3m"]  # the number, and its age (no room for a bar)
        assert all(span.style and "dim" in str(span.style) for span in cell.spans if span.end)
        assert table.get_cell("anonymous", "state").plain.startswith("error")
        detail = app.dashboard.detail.assessment
        assert detail is not None and detail.quota is not None and detail.quota.stale


# -- 4. a refused login is not retried behind the user's back -----------------------------------


def test_a_refused_login_is_not_retried_by_a_cron_job(
    simhub: SimHubServer, pullwatch_cli: PullwatchCli
) -> None:
    pullwatch_cli.add_identity(simhub.url, "ci", ALICE.username, "not-alices-token")
    tokens = simhub.model.token_requests_by_user  # the anonymous identity's are not counted
    refused = []
    for _ in range(3):  # cron: every 5 minutes, a new process each time
        done, document = pullwatch_cli.check_json(simhub.url, "--identity", "ci")
        (row,) = document["identities"]
        assert done.returncode == 2 and row["state"] == "auth_failed"
        refused.append(row["error"])
    assert tokens[ALICE.username] == 1  # sent once, then remembered
    assert "not retried" in refused[-1] and "--retry-auth" in refused[-1]
    for command in (("report", "--json"), ("head", "ci")):
        pullwatch_cli.run(simhub.url, *command)
    assert tokens[ALICE.username] == 1  # report and head do not retry it either
    done, _ = pullwatch_cli.check_json(simhub.url, "--identity", "ci", "--retry-auth")
    assert tokens[ALICE.username] == 2  # the user asked
    done = pullwatch_cli.run(simhub.url, "identity", "remove", "ci")
    pullwatch_cli.add_identity(simhub.url, "ci", ALICE.username, ALICE.secret)
    done, document = pullwatch_cli.check_json(simhub.url, "--identity", "ci")
    assert document["identities"][0]["state"] == "ok"  # a new token: tried at once
    remembered = (pullwatch_cli.data_dir / "refusals.json").read_text()
    assert ALICE.secret not in remembered and "not-alices-token" not in remembered


# -- 5 and 6: the dashboard after an edit, and after another process changed the config ---------


async def test_saving_the_right_token_probes_at_once(demo: Demo) -> None:
    app = make_app(demo.runtime, demo=True, interval=3600, watch_terminal=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.wait_for_round()
        assert app.monitor.latest("old-bot").state.value == "auth_failed"  # type: ignore[union-attr]
        app.dashboard.focus_identity("old-bot")
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#secret").value = "dckr_pat_demo-current"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        for _ in range(100):  # bounded: the save runs in a thread, the probe after it
            latest = app.monitor.latest("old-bot")
            if latest is not None and latest.state.value == "ok":
                break
            await pilot.pause(0.05)
        assert app.monitor.latest("old-bot").state.value == "ok"  # type: ignore[union-attr]
        assert app.rounds_completed == 1  # not the next round: the save itself


async def test_the_dashboard_follows_identities_another_process_added(demo: Demo) -> None:
    from pullwatch.identities.model import Identity

    app = make_app(demo.runtime, demo=True, interval=3600, watch_terminal=False)
    async with app.run_test(size=(120, 32)) as pilot:
        await app.wait_for_round()
        demo.runtime.store.add(Identity("from-another-shell"))  # `identity add` elsewhere
        demo.runtime.store.remove("release")
        await pilot.press("r")
        await app.wait_for_round()
        await pilot.pause()
        labels = app.dashboard.table.labels
        assert "from-another-shell" in labels and "release" not in labels
        latest = app.monitor.latest("from-another-shell")
        assert latest is not None and latest.state.value == "ok"


# -- the rest of the issue: deadlines, files, JSON -----------------------------------------------


def test_check_has_an_overall_deadline(run: Run, simhub: SimHubServer) -> None:
    simhub.model.faults.hang = {"head"}
    code, out, _ = run(simhub.url, "check", "--json", "--timeout", "1")
    (row,) = json.loads(out)["identities"]
    assert code == 3 and row["state"] == "unknown" and row["error_kind"] == "deadline"
    assert "deadline" in row["error"] and "--timeout" in row["error"]


def test_json_times_are_iso_and_numbers_tidy(run: Run, simhub: SimHubServer) -> None:
    run(simhub.url, "identity", "add", "ci", "--username", ALICE.username, "--password-stdin",
        stdin=ALICE.secret)  # fmt: skip
    _, out, _ = run(simhub.url, "check", "--json")
    document = json.loads(out)
    for row in document["identities"]:
        assert row["checked_at"].endswith("Z") and "T" in row["checked_at"]
        assert row["latency_ms"] == round(row["latency_ms"], 1)
    _, out, _ = run(simhub.url, "token", "ci", "--json")
    claims = json.loads(out)["claims"]
    assert isinstance(claims["iat"], int) and isinstance(claims["exp"], int)


def test_challenge_cache_is_private(run: Run, simhub: SimHubServer, paths: Paths) -> None:
    run(simhub.url, "check")
    cache = paths.cache_dir / "challenges.json"
    assert cache.exists() and cache.stat().st_mode & 0o777 == 0o600
    assert not list(paths.cache_dir.glob("*.tmp")) and not list(paths.cache_dir.glob(".chall*"))


def test_a_symlinked_config_is_edited_through_the_link(
    run: Run, simhub: SimHubServer, paths: Paths, tmp_path: Path
) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "pullwatch.toml"
    target.write_text('# mine\nversion = 1\n\n[[identity]]\nlabel = "anonymous"  # the host\n')
    paths.config_dir.mkdir(parents=True)
    paths.config_file.symlink_to(target)
    code, _, err = run(simhub.url, "identity", "add", "second")
    assert code == 0, err
    assert paths.config_file.is_symlink()  # still a link, not replaced by a regular file
    text = target.read_text()
    assert "# mine" in text and "# the host" in text and 'label = "second"' in text


@pytest.fixture
def history_db(run: Run, simhub: SimHubServer, paths: Paths) -> Iterator[Path]:
    run(simhub.url, "check")
    yield paths.history_db


def test_history_on_a_damaged_database_is_one_line(
    run: Run, simhub: SimHubServer, history_db: Path
) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{history_db}{suffix}").unlink(missing_ok=True)
    history_db.write_bytes(b"this is not a database at all" * 100)
    code, _, err = run(simhub.url, "history", "anonymous")
    assert code == 1 and err.count("\n") == 1 and "internal error" not in err
    assert "damaged" in err and "move it aside" in err


def test_history_written_by_a_newer_pullwatch_is_one_line(
    run: Run, simhub: SimHubServer, history_db: Path
) -> None:
    with sqlite3.connect(history_db) as db:
        db.execute("PRAGMA user_version = 99")
    code, _, err = run(simhub.url, "history", "anonymous")
    assert code == 1 and err.count("\n") == 1 and "newer pullwatch" in err


def test_history_reads_on_a_read_only_file_system(
    simhub: SimHubServer, pullwatch_cli: PullwatchCli
) -> None:
    """`pullwatch history` on a data directory mounted read-only (a container's read-only
    root, a snapshot): reading works, nothing is written. Root only: a private mount namespace
    makes the directory read-only for this one process."""
    import os
    import shutil

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private read-only mount")
    done, _ = pullwatch_cli.check_json(simhub.url)
    assert done.returncode == 0, done.stderr
    data = str(pullwatch_cli.data_dir)
    read_only = (
        "unshare", "-m", "sh", "-c",
        'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"',
        "sh", data,
    )  # fmt: skip
    done = pullwatch_cli.run(simhub.url, "history", "anonymous", "--json", prefix=read_only)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["readings"][0]["state"] == "ok"
    done = pullwatch_cli.run(simhub.url, "check", prefix=read_only)  # writing: one clear line
    assert "read-only" in done.stderr and "Traceback" not in done.stderr
