"""explain, plan, report, check --openmetrics and identity import-docker from the command line,
in-process against the simulator with an in-memory keyring."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

import pullwatch
from fixtures_cli import Cli
from fixtures_simhub import ALICE, BOB, EGRESS_IP, ERIN
from pullwatch.identities.docker_config import HUB_KEY
from pullwatch.identities.secrets import MemoryKeyring
from pullwatch.paths import Paths
from pullwatch.simhub import SimHubServer
from pullwatch.simhub.accounts import stable_uuid
from test_advice import SEED_LINE
from test_docker_config import answering, write_helper

# -- explain -----------------------------------------------------------------------------------


def test_explain_the_seeds_line(cli: Cli) -> None:
    code, out, _ = cli("explain", SEED_LINE)
    assert code == 0
    assert out.startswith("Matched: ")
    assert "Which limit: Docker Hub's abuse limit (HAP429), not the pull rate limit" in out
    assert "1. Slow the client down" in out
    code, out, _ = cli(
        "explain", "--json", stdin="toomanyrequests: You have reached your pull rate limit"
    )
    assert code == 0 and json.loads(out)["kind"] == "pull_limit"


def test_explain_unknown_and_empty(cli: Cli) -> None:
    code, out, _ = cli("explain", "everything is fine")
    assert code == 1 and "Which limit: not recognised" in out
    code, _, err = cli("explain", "-", stdin="   \n")
    assert code == 64 and err == "pullwatch: error: nothing to explain: the error line is empty\n"


# -- plan --------------------------------------------------------------------------------------


def test_plan_with_documented_and_given_limits(cli: Cli) -> None:
    code, out, _ = cli("plan", "--repositories", "40")
    assert code == 2  # does not fit
    assert "Pulls per window: 200 of 100 per 6 h (Docker's documented anonymous limit" in out
    assert "Largest Cap at this interval: 2" in out
    code, out, _ = cli(
        "plan", "--repositories", "10", "--architectures", "2", "--scans-per-day", "6",
        "--limit", "200", "--window", "6h", "--json",
    )  # fmt: skip
    document = json.loads(out)
    assert code == 0
    assert document["pulls_per_window"] == 200 and document["fits"] is True
    assert document["shortest_interval_seconds"] == 10800


def test_plan_with_a_live_identity(cli: Cli) -> None:
    cli.add("spent", ERIN.username, ERIN.secret)
    heads = cli.server.model.counters["head"]
    code, out, _ = cli("plan", "--repositories", "4", "--cap", "1", "--identity", "spent")
    assert code == 0
    assert "Pulls per window: 4 of 200 per 6 h (live: spent)" in out
    assert "right now only 0 pulls remain" in out
    assert cli.server.model.counters["head"] == heads + 1  # one HEAD, no pull
    code, out, _ = cli("plan", "--repositories", "4", "--identity", "anonymous", "--json")
    assert json.loads(out)["quota"] == {
        "limit": 100, "window_seconds": 21600, "remaining": 100, "origin": "live: anonymous",
    }  # fmt: skip


def test_plan_usage_errors(cli: Cli) -> None:
    code, _, err = cli("plan", "--repositories", "3", "--cap", "0")
    assert code == 64 and "--tags" in err and err.count("\n") == 1
    code, _, err = cli("plan", "--repositories", "3", "--window", "1h")
    assert code == 64 and "--window goes with --limit" in err
    code, _, err = cli("plan", "--repositories", "3", "--interval", "soon")
    assert code == 64 and "not a duration" in err
    code, _, err = cli("plan", "--repositories", "3", "--identity", "nope")
    assert code == 1 and "no identity 'nope'" in err


# -- check --openmetrics -----------------------------------------------------------------------


def test_check_openmetrics_parses(cli: Cli) -> None:
    cli.add("ci", ALICE.username, ALICE.secret)
    cli.add("paid", BOB.username, BOB.secret)
    cli.add("spent", ERIN.username, ERIN.secret)
    code, out, _ = cli("check", "--openmetrics", "--instance-label", "node-7")
    assert code == 2  # the exit code keeps check's meaning
    assert out.endswith("# EOF\n")
    registry = cli.server.url.split("://", 1)[1]
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in parse_om(out)
        for s in family.samples
    }

    def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        return name, tuple(sorted({**labels, "registry": registry, "node": "node-7"}.items()))

    remaining = key("pullwatch_remaining_pulls", identity="anonymous", source=EGRESS_IP)
    assert found[remaining] == 100
    account = stable_uuid("alice")
    assert found[key("pullwatch_limit_pulls", identity="ci", source=account)] == 200
    assert found[key("pullwatch_state", identity="spent", state="exhausted")] == 1
    assert found[key("pullwatch_state", identity="paid", state="unmetered")] == 1
    assert found[key("pullwatch_probe_success", identity="paid")] == 1
    assert list(parse_text(out))  # the textfile collector's format parses it too
    assert ALICE.secret not in out


def test_metrics_need_no_extra() -> None:
    """`check --openmetrics` and `serve` work after the README's first command: the
    exporter's library is a normal dependency, not an extra a newcomer trips over."""
    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("prometheus-client") for dep in project["dependencies"])
    assert project["optional-dependencies"].get("metrics", []) == []  # kept for old commands


def test_serve_rejects_a_bad_listen_address(cli: Cli) -> None:
    code, _, err = cli("serve", "--listen", "nowhere")
    assert code == 64 and "HOST:PORT" in err


# -- report ------------------------------------------------------------------------------------


def test_report_is_redacted_in_every_format(cli: Cli, tmp_path: Path) -> None:
    cli.add("ci", ALICE.username, ALICE.secret)
    cli.add("spent", ERIN.username, ERIN.secret)
    cli.add("typo", ALICE.username, "dckr_pat_typo-secret-123")
    cli.add("password", BOB.username, "hunter2-password-value")
    model = cli.server.model
    outputs = []
    for args in (("report",), ("report", "--markdown")):
        code, out, err = cli(*args)
        assert code == 0, err
        outputs.append(out)
    model.faults.status = {"token": 503}
    model.faults.echo_jti = {"token"}  # "... as 'alice': dckr_jti_<id>" in the error body
    code, out, err = cli("report", "--json")
    assert code == 0, err
    outputs.append(out)
    target = tmp_path / "ticket.md"
    code, out, err = cli("report", "--markdown", "--output", str(target))
    assert code == 0 and out == "" and str(target) in err
    assert (target.stat().st_mode & 0o777) == 0o600
    outputs.append(target.read_text())

    text, markdown, document = outputs[0], outputs[1], json.loads(outputs[2])
    assert "pullwatch triage report" in text and "## pullwatch triage report" in markdown
    assert [i["label"] for i in document["identities"]] == [
        "anonymous", "ci", "spent", "typo", "password",
    ]  # fmt: skip
    assert document["pullwatch"] == pullwatch.__version__
    assert document["registry"] == cli.server.url
    ci = document["identities"][1]
    assert ci["state"] == "error" and "[redacted]" in ci["error"]  # the echoed user and jti
    assert ci["meaning"] and ci["steps"]
    assert "| anonymous | ok | 100/100 | 6 h | 203.0.113.7 |" in markdown
    assert "### spent" in markdown

    needles = {ALICE.secret, ERIN.secret, BOB.secret, "dckr_pat_typo-secret-123",
               "hunter2-password-value"}  # fmt: skip
    for grant in model.issued_tokens():
        needles |= {grant.token, grant.jti}
    for username in (ALICE.username, ERIN.username):
        needles.add(model.jti_for(username))
    assert len(needles) > 6
    leaks = [(n[:14], i) for i, o in enumerate(outputs) for n in needles if n in o]
    assert leaks == []
    assert not any("dckr_jti_" in o.replace("dckr_jti_[redacted]", "") for o in outputs)


def test_report_needs_identities(cli: Cli) -> None:
    code, out, _ = cli("report", "--identity", "anonymous")
    assert code == 0 and "== anonymous" in out
    assert "Next" not in out  # nothing to do for a fresh anonymous bucket


# -- identity import-docker --------------------------------------------------------------------


@pytest.fixture
def docker_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "docker"
    home.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(home))
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    write_helper(bin_dir, "pwtest", answering(ALICE.username, ALICE.secret, tmp_path / "calls"))
    return home


def test_import_from_a_credential_helper_then_check(
    cli: Cli, docker_home: Path, cli_keyring: MemoryKeyring
) -> None:
    (docker_home / "config.json").write_text(json.dumps({"credsStore": "pwtest"}))
    code, out, _ = cli("identity", "import-docker", "--dry-run")
    assert code == 0 and 'would import Docker ID alice from credsStore "pwtest"' in out
    assert cli_keyring.get_password("pullwatch", "alice") is None
    code, out, err = cli("identity", "import-docker")
    assert code == 0, err
    assert "imported identity 'alice': Docker ID alice from credsStore \"pwtest\"" in err
    assert "not a personal access token" in err  # the simulator's secret has no dckr_pat_ prefix
    assert cli_keyring.get_password("pullwatch", "alice") == ALICE.secret
    assert ALICE.secret not in cli.paths.config_file.read_text()
    code, out, _ = cli("check", "--json", "--identity", "alice")
    (row,) = json.loads(out)["identities"]
    assert (row["state"], row["source"]) == ("ok", stable_uuid("alice"))
    code, _, err = cli("identity", "import-docker")
    assert code == 1 and "--update" in err and err.count("\n") == 1
    code, _, err = cli("identity", "import-docker", "--update")
    assert code == 0 and "updated identity 'alice'" in err
    assert all(ALICE.secret not in o for o in cli.outputs)


def test_import_inline_auths_with_a_label(cli: Cli, docker_home: Path) -> None:
    auth = base64.b64encode(f"{ERIN.username}:{ERIN.secret}".encode()).decode()
    (docker_home / "config.json").write_text(json.dumps({"auths": {HUB_KEY: {"auth": auth}}}))
    code, _, err = cli("identity", "import-docker", "--label", "scanner")
    assert code == 0, err
    code, out, _ = cli("check", "--json", "--identity", "scanner")
    assert json.loads(out)["identities"][0]["state"] == "exhausted"


def test_import_errors_are_one_line(cli: Cli, docker_home: Path) -> None:
    code, _, err = cli("identity", "import-docker")
    assert code == 1 and "does not exist" in err and err.count("\n") == 1
    (docker_home / "config.json").write_text("{broken")
    code, _, err = cli("identity", "import-docker")
    assert code == 1 and "not valid JSON" in err
    (docker_home / "config.json").write_text(json.dumps({"credsStore": "absent"}))
    code, _, err = cli("identity", "import-docker")
    assert code == 1 and "docker-credential-absent is not installed" in err


def test_triage_commands_never_import_textual(
    simhub: SimHubServer, paths: Paths, tmp_path: Path
) -> None:
    probe = (
        "import sys\n"
        "from pullwatch.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "import pullwatch.metrics, pullwatch.cli.fleet  # serve's modules too\n"
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print('TEXTUAL:', loaded, file=sys.stderr)\n"
        "raise SystemExit(code)\n"
    )
    env = {**os.environ, "PULLWATCH_CONFIG_DIR": str(paths.config_dir),
           "PULLWATCH_DATA_DIR": str(paths.data_dir), "DOCKER_CONFIG": str(tmp_path)}  # fmt: skip
    for args, code in (
        (["explain", SEED_LINE], 0),
        (["plan", "--repositories", "3", "--identity", "anonymous"], 0),
        (["report", "--json"], 0),
        (["check", "--openmetrics"], 0),
        (["identity", "import-docker", "--dry-run"], 1),
    ):
        done = subprocess.run(
            [sys.executable, "-c", probe, "--registry", simhub.url, *args],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == code, (args, done.stderr)
        assert "TEXTUAL: []" in done.stderr, (args, done.stderr)
