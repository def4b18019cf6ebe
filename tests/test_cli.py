"""The command line, in-process against the simulator with an in-memory keyring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures_cli import Cli
from fixtures_simhub import ALICE, BOB, EGRESS_IP, ERIN
from pullwatch import __version__
from pullwatch.cli import main
from pullwatch.identities.secrets import MemoryKeyring
from pullwatch.paths import Paths
from pullwatch.simhub.accounts import stable_uuid


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pullwatch {__version__}"


def test_fresh_install_checks_anonymous(cli: Cli) -> None:
    code, out, err = cli("check", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["registry"] == cli.server.url
    assert document["repository"] == "ratelimitpreview/test:latest"  # the tag probed
    (anon,) = document["identities"]
    expected = {
        "label": "anonymous",
        "username": None,
        "state": "ok",
        "limit": 100,
        "remaining": 100,
        "window_seconds": 21600,
        "source": EGRESS_IP,
        "http_status": 200,
        "error": None,
    }
    assert {k: anon[k] for k in expected} == expected
    assert isinstance(anon["latency_ms"], float)
    assert not cli.paths.config_file.exists()  # checking writes no config


def test_check_json_for_every_kind(cli: Cli) -> None:
    cli.add("ci", ALICE.username, ALICE.secret)
    cli.add("paid", BOB.username, BOB.secret)
    cli.add("spent", ERIN.username, ERIN.secret)
    cli.add("typo", ALICE.username, "not-the-token\n")
    cli.server.model.consume("alice", 24)
    code, out, _ = cli("check", "--json")
    rows = {r["label"]: r for r in json.loads(out)["identities"]}
    assert list(rows) == ["anonymous", "ci", "paid", "spent", "typo"]
    assert (rows["ci"]["state"], rows["ci"]["limit"], rows["ci"]["remaining"]) == ("ok", 200, 176)
    assert rows["ci"]["source"] == stable_uuid("alice")
    assert rows["ci"]["username"] == "alice"
    assert rows["paid"]["state"] == "unmetered"
    assert rows["paid"]["limit"] is None and rows["paid"]["remaining"] is None
    assert rows["paid"]["source"] == stable_uuid("bob")
    assert (rows["spent"]["state"], rows["spent"]["remaining"]) == ("exhausted", 0)
    assert rows["spent"]["http_status"] == 429
    assert rows["typo"]["state"] == "auth_failed"
    assert rows["typo"]["error"] == "incorrect username or password (login refused)"
    assert rows["typo"]["step"] == "token" and rows["typo"]["http_status"] == 401
    assert code == 2  # exhausted and auth_failed are critical


def test_check_table_and_exit_codes(cli: Cli) -> None:
    code, out, _ = cli("check")
    assert code == 0
    header, row = out.strip().splitlines()
    assert header.split()[:3] == ["IDENTITY", "STATE", "REMAINING"]
    assert row.split()[:3] == ["anonymous", "ok", "100/100"]
    cli.server.model.consume("anonymous", 85)
    assert cli("check")[0] == 1  # 15 left: under the default 20%
    assert cli("check", "--warn", "10")[0] == 0
    assert cli("check", "--warn", "10", "--crit", "15")[0] == 2
    cli.server.model.faults.status = {"head": 503}
    assert cli("check")[0] == 3  # could not measure: unknown


def test_check_selected_identities_and_unknown_label(cli: Cli) -> None:
    cli.add("ci", ALICE.username, ALICE.secret)
    code, out, _ = cli("check", "--json", "--identity", "ci")
    assert [r["label"] for r in json.loads(out)["identities"]] == ["ci"]
    code, out, err = cli("check", "--identity", "nope")
    assert code == 3
    assert err == "pullwatch: error: no identity 'nope' (known: anonymous, ci)\n"


def test_identity_add_list_remove(cli: Cli, cli_keyring: MemoryKeyring) -> None:
    cli.add("ci", ALICE.username, ALICE.secret + "\n")
    assert cli_keyring.get_password("pullwatch", "ci") == ALICE.secret  # newline stripped
    code, out, _ = cli("identity", "list", "--json")
    assert json.loads(out)["identities"] == [
        {"label": "anonymous", "username": None, "secret": "not needed", "warn_below": None},
        {"label": "ci", "username": "alice", "secret": "in keyring", "warn_below": None},
    ]
    code, _, err = cli("identity", "remove", "ci")
    assert code == 0 and "removed ci" in err
    assert cli_keyring.get_password("pullwatch", "ci") is None
    assert "ci" not in cli.paths.config_file.read_text()


def test_identity_add_errors(cli: Cli) -> None:
    code, _, err = cli(
        "identity", "add", "x", "--username", "a@b.example", "--password-stdin", stdin="s"
    )
    assert code == 1 and "e-mail" in err and err.count("\n") == 1
    code, _, err = cli("identity", "add", "x", "--password-stdin", stdin="s")
    assert code == 64 and "needs --username" in err
    code, _, err = cli("identity", "add", "bad label!")
    assert code == 1 and err.startswith("pullwatch: error:")
    code, _, err = cli("identity", "add", "y", "--username", "alice", stdin="")
    assert code == 64  # stdin is not a terminal: no prompt, a clear way out
    assert "--password-stdin" in err


def test_token_command(cli: Cli) -> None:
    cli.add("ci", ALICE.username, ALICE.secret)
    code, out, _ = cli("token", "ci")
    assert code == 0
    assert "Token check: ci (alice)" in out
    assert "expires in: 300 s" in out
    assert "auth: basic (alice)" in out
    assert "pull_limit: 200 per 21600 s (6 h)" in out
    code, out, _ = cli("token", "ci", "--json")
    document = json.loads(out)
    assert document["ok"] is True
    assert document["claims"]["sub"] == stable_uuid("alice")
    assert document["claims"]["pull_limit"] == {"limit": 200, "interval": 21600}


def test_head_command(cli: Cli) -> None:
    code, out, _ = cli("head", "anonymous")
    assert code == 0
    assert "HEAD requests do not count as pulls" in out
    assert "ratelimit-limit: 100;w=21600" in out
    assert f"source: {EGRESS_IP} (ipv4)" in out
    code, out, _ = cli("head", "anonymous", "--json")
    document = json.loads(out)
    assert document["head_counts_as_pull"] is False
    assert document["parsed"]["limit"] == 100
    assert [r["method"] for r in document["requests"]][-1] == "HEAD"


def test_corrupt_config_is_one_line_and_kept(cli: Cli) -> None:
    cli.paths.config_dir.mkdir(parents=True)
    broken = b'version = 1\n[[identity]]\nlabel = "ci\n'
    cli.paths.config_file.write_bytes(broken)
    code, out, err = cli("check")
    assert code == 3
    assert out == ""
    assert err.count("\n") == 1 and str(cli.paths.config_file) in err and "line 3" in err
    code, _, err = cli("identity", "add", "other")
    assert code == 1
    assert cli.paths.config_file.read_bytes() == broken


def test_usage_errors_exit_64(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("check", "--warn", "lots")
    assert exit_info.value.code == 64


def test_bad_registry_url_is_a_clean_error(cli: Cli) -> None:
    code, out, err = cli("check", "--registry", "http://registry.example.com")
    assert code == 3
    assert out == ""
    assert err == (
        "pullwatch: error: registry URL 'http://registry.example.com' is plain http: "
        "only loopback may use http\n"
    )


def test_secrets_never_reach_files_or_output(cli: Cli, paths: Paths) -> None:
    cli.add("ci", ALICE.username, ALICE.secret)
    cli.add("typo", ALICE.username, "dckr_pat_typo-secret-123")
    for args in (
        ("check", "--json"),
        ("check",),
        ("token", "ci"),
        ("token", "ci", "--json"),
        ("head", "ci"),
        ("head", "ci", "--json"),
        ("token", "typo"),
        ("identity", "list"),
    ):
        cli(*args)
    needles = {ALICE.secret, "dckr_pat_typo-secret-123"}
    for grant in cli.server.model.issued_tokens():
        needles |= {grant.token, grant.jti}
    assert len(needles) > 4
    written = [
        p for root in (paths.config_dir, paths.data_dir) for p in root.rglob("*") if p.is_file()
    ]
    assert written, "expected the config file at least"
    haystacks = {str(p): p.read_bytes().decode("utf-8", "replace") for p in written}
    haystacks |= {f"output {i}": text for i, text in enumerate(cli.outputs)}
    leaks = [(where, n[:12]) for where, text in haystacks.items() for n in needles if n in text]
    assert leaks == []


def test_simhub_command_rejects_a_bad_accounts_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "accounts.toml"
    bad.write_text("[[account]]\nusername = 3\n")
    assert main(["simhub", "--accounts", str(bad)]) != 0
    assert "username" in capsys.readouterr().err


def test_history_records_check_and_head_and_estimates(cli: Cli) -> None:
    cli("check")
    cli.server.model.consume("anonymous", 10)
    cli("head", "anonymous")
    code, out, _ = cli("history", "anonymous", "--json")
    assert code == 0
    document = json.loads(out)
    assert [r["remaining"] for r in document["readings"]] == [100, 90]
    recovery = document["recovery"]
    assert recovery["estimate"] is True and recovery["deficit"] == 10
    code, out, _ = cli("history", "anonymous")
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["TIME", "STATE", "REMAINING"]
    assert "90/100" in lines[2]
    assert lines[-1].startswith("2 readings of ratelimitpreview/test:latest on http://")
    assert "full <= " in lines[-1]


def test_history_errors(cli: Cli) -> None:
    code, _, err = cli("history", "nobody")
    assert code == 1 and "no identity 'nobody'" in err
    code, _, err = cli("history", "anonymous", "--since", "soon")
    assert code == 64 and "duration" in err
    code, out, _ = cli("history", "anonymous")
    assert code == 0 and out.startswith("no readings of anonymous")


def test_check_json_adds_insights_recovery_and_advice(cli: Cli) -> None:
    cli.add("ci", ALICE.username, ALICE.secret)
    cli.add("mirror", ALICE.username, ALICE.secret)
    cli.server.model.consume("alice", 30)
    code, out, _ = cli("check", "--json")
    rows = {r["label"]: r for r in json.loads(out)["identities"]}
    assert any("shares one quota with mirror" in m for m in rows["ci"]["insights"])
    assert rows["ci"]["recovery"]["deficit"] == 30
    assert isinstance(rows["ci"]["advice"], list)
    code, out, _ = cli("check")
    assert code == 0
    assert "ci: warning: shares one quota with mirror" in out


def test_a_broken_history_does_not_fail_the_check(cli: Cli) -> None:
    cli.paths.data_dir.mkdir(parents=True)
    cli.paths.history_db.mkdir()  # a directory where the database should be
    code, out, err = cli("check", "--json")
    assert code == 0
    assert json.loads(out)["identities"][0]["state"] == "ok"
    assert err.startswith("pullwatch: warning: history not used:") and err.count("\n") == 1


# -- identity add: the shared validator, --check, one login in two identities -----------------


def test_identity_add_refuses_a_token_for_a_username_on_any_registry(
    cli: Cli, cli_keyring: MemoryKeyring
) -> None:
    for registry in (cli.server.url, "https://registry-1.docker.io"):
        code, _, err = cli(
            "identity", "add", "x", "--username", "dckr_pat_AbCdEf123456", "--password-stdin",
            "--registry", registry, stdin=ALICE.secret,
        )  # fmt: skip
        assert code == 1 and "looks like a token, not a username" in err, registry
        assert "dckr_pat_AbCdEf123456" not in err  # the would-be secret is never echoed
    assert cli_keyring.get_password("pullwatch", "x") is None
    assert not cli.paths.config_file.exists()


def test_identity_add_applies_docker_ids_rule_on_docker_hub_only(cli: Cli) -> None:
    hub = ("--registry", "https://registry-1.docker.io")
    for username in ("Ci.Bot", "abc", "a" * 31):
        code, _, err = cli(
            "identity",
            "add",
            "x",
            "--username",
            username,
            "--password-stdin",
            *hub,
            stdin="pat-docker-id-rule-7f3a",
        )
        assert code == 1 and "invalid Docker ID: 4 to 30 lower-case letters and digits" in err
        assert err.count("\n") == 1
    # another registry keeps its own, looser rule
    cli.add("other", "Ci.Bot", "pat-docker-id-rule-7f3a")


def test_identity_add_check_asks_for_one_token_first(cli: Cli, cli_keyring: MemoryKeyring) -> None:
    model = cli.server.model
    before = model.token_requests_by_user["alice"]
    code, _, err = cli(
        "identity", "add", "ci", "--username", ALICE.username, "--password-stdin", "--check",
        stdin=ALICE.secret,
    )  # fmt: skip
    assert code == 0, err
    assert model.token_requests_by_user["alice"] == before + 1  # one request, no more
    assert "login checked" in err and "issued a token for alice" in err
    assert "pullwatch token" not in err  # already checked
    assert cli_keyring.get_password("pullwatch", "ci") == ALICE.secret


def test_identity_add_check_saves_nothing_when_refused(
    cli: Cli, cli_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.add("first")  # a config file to compare
    before = cli.paths.config_file.read_bytes()
    writes: list[tuple[str, str]] = []
    monkeypatch.setattr(cli_keyring, "set_password", lambda s, u, p: writes.append((s, u)))
    code, _, err = cli(
        "identity", "add", "ci", "--username", ALICE.username, "--password-stdin", "--check",
        stdin="dckr_pat_not-the-right-one",
    )  # fmt: skip
    assert code == 1 and "refused the login of alice" in err and "nothing was stored" in err
    assert "dckr_pat_not-the-right-one" not in err
    assert cli.paths.config_file.read_bytes() == before
    assert writes == []  # the keyring untouched
    # what the store would refuse anyway costs no request
    model = cli.server.model
    requests = sum(model.token_requests_by_user.values())
    code, _, err = cli(
        "identity", "add", "first", "--username", ALICE.username, "--password-stdin", "--check",
        stdin=ALICE.secret,
    )  # fmt: skip
    assert code == 1 and "already exists" in err
    assert sum(model.token_requests_by_user.values()) == requests


def test_identity_add_without_check_says_how_to_check_later(cli: Cli) -> None:
    code, _, err = cli(
        "identity", "add", "ci", "--username", ALICE.username, "--password-stdin",
        stdin=ALICE.secret,
    )  # fmt: skip
    assert code == 0 and "`pullwatch token ci`" in err


def test_two_identities_with_one_login_are_warned_about(cli: Cli) -> None:
    cli.add("ci", ALICE.username, ALICE.secret)
    code, _, err = cli(
        "identity", "add", "mirror", "--username", ALICE.username, "--password-stdin",
        stdin=ALICE.secret,
    )  # fmt: skip
    assert code == 0
    assert "warning: mirror and ci both log in as alice: one account, one bucket" in err
    code, out, err = cli("identity", "list")
    assert code == 0 and err.count("both log in as alice") == 1  # said once, not per identity
    code, out, _ = cli("identity", "list", "--json")
    rows = {row["label"]: row for row in json.loads(out)["identities"]}
    assert rows["ci"]["same_login_as"] == ["mirror"]
    assert rows["mirror"]["same_login_as"] == ["ci"]
    assert "same_login_as" not in rows["anonymous"]
