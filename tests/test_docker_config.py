"""Importing Docker's Hub login: config.json, real credential-helper executables, inline auths."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from fixtures_cli import Cli
from pullwatch.identities.docker_config import (
    HUB_KEY,
    DockerConfigError,
    ImportPlan,
    find_hub_login,
    import_login,
    load_docker_config,
    lookup_steps,
    run_helper,
)
from pullwatch.identities.secrets import MemoryKeyring
from pullwatch.identities.store import IdentityError, IdentityStore

PAT = "dckr_pat_imported-0123456789"


def write_helper(bin_dir: Path, name: str, body: str) -> Path:
    """A real `docker-credential-<name>` executable (a Python script) on the test's PATH."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text(f"#!{sys.executable}\nimport json, sys, time\n{body}\n")
    path.chmod(0o755)
    return path


def answering(username: str, secret: str, log: Path) -> str:
    """A helper body that records its argv and stdin, then answers like a real helper."""
    return (
        "server = sys.stdin.read()\n"
        f"open({str(log)!r}, 'a').write(json.dumps([sys.argv[1:], server]) + '\\n')\n"
        f"print(json.dumps({{'ServerURL': server, 'Username': {username!r}, "
        f"'Secret': {secret!r}}}))\n"
    )


NOT_FOUND = "print('credentials not found in native keychain'); sys.exit(1)"


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", f"{path}:/usr/bin:/bin")
    return path


def write_config(directory: Path, data: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(data))
    return path


def inline(user: str, secret: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{secret}".encode()).decode()}


def test_creds_store_helper_is_called_with_the_hub_key(tmp_path: Path, bin_dir: Path) -> None:
    log = tmp_path / "calls.log"
    write_helper(bin_dir, "pwtest", answering("alice", PAT, log))
    config = load_docker_config(write_config(tmp_path / "docker", {"credsStore": "pwtest"}))
    result = find_hub_login(config, timeout=20)
    assert result.login is not None
    assert (result.login.username, result.login.secret) == ("alice", PAT)
    assert result.login.where == 'credsStore "pwtest"'
    assert result.login.looks_like_pat
    assert json.loads(log.read_text()) == [["get"], HUB_KEY]
    assert PAT not in repr(result)


def test_cred_helpers_win_over_creds_store_over_inline(tmp_path: Path, bin_dir: Path) -> None:
    log = tmp_path / "calls.log"
    write_helper(bin_dir, "first", answering("alice", PAT, log))
    write_helper(bin_dir, "second", answering("bob", "bob-pat", log))
    config = load_docker_config(
        write_config(
            tmp_path / "docker",
            {
                "credHelpers": {HUB_KEY: "first", "gcr.io": "gcloud"},
                "credsStore": "second",
                "auths": {HUB_KEY: inline("carol", "carol-pw")},
            },
        )
    )
    assert [s.where for s in lookup_steps(config)] == [
        'credHelpers "first"',
        'credsStore "second"',
        "auths (inline)",
    ]
    result = find_hub_login(config, timeout=20)
    assert result.login is not None and result.login.username == "alice"
    assert len(log.read_text().splitlines()) == 1  # the later steps never ran


def test_a_helper_without_the_login_falls_through(tmp_path: Path, bin_dir: Path) -> None:
    write_helper(bin_dir, "empty", NOT_FOUND)
    config = load_docker_config(
        write_config(
            tmp_path / "docker",
            {"credsStore": "empty", "auths": {HUB_KEY: inline("carol", "carol-pw")}},
        )
    )
    result = find_hub_login(config, timeout=20)
    assert result.login is not None and result.login.username == "carol"
    assert result.login.secret == "carol-pw"
    assert not result.login.looks_like_pat
    assert (
        result.notes[0] == 'credsStore "empty": docker-credential-empty: no Docker Hub login stored'
    )


def test_inline_auths_skip_token_keys_and_accept_host_spellings(tmp_path: Path) -> None:
    config = load_docker_config(
        write_config(
            tmp_path / "docker",
            {
                "auths": {
                    "https://index.docker.io/v1/access-token": inline("x", "access"),
                    "https://index.docker.io/v1/refresh-token": inline("x", "refresh"),
                    "ghcr.io": inline("gh", "ghp"),
                    "docker.io": inline("dave", "dave-pat"),
                }
            },
        )
    )
    result = find_hub_login(config)
    assert result.login is not None and (result.login.username, result.login.secret) == (
        "dave",
        "dave-pat",
    )


def test_identity_tokens_are_reported_not_imported(tmp_path: Path, bin_dir: Path) -> None:
    log = tmp_path / "calls.log"
    write_helper(bin_dir, "desktop", answering("<token>", "eyJidentity.token.value", log))
    config = load_docker_config(
        write_config(
            tmp_path / "docker",
            {"credsStore": "desktop", "auths": {HUB_KEY: {"identitytoken": "idtok-123456"}}},
        )
    )
    result = find_hub_login(config, timeout=20)
    assert result.login is None
    assert len(result.notes) == 2
    assert all("identity token" in note and "cannot be imported" in note for note in result.notes)
    assert not any("idtok-123456" in note or "eyJidentity" in note for note in result.notes)


def test_helper_failures_are_one_line_and_never_hang(tmp_path: Path, bin_dir: Path) -> None:
    write_helper(bin_dir, "slow", "time.sleep(30)")
    write_helper(bin_dir, "broken", "sys.stderr.write('gpg: decryption failed\\n'); sys.exit(2)")
    write_helper(bin_dir, "chatty", "print('not json at all')")
    answer = run_helper("slow", timeout=0.3)
    assert answer.problem == (
        "docker-credential-slow did not answer within 0.3 s (waiting for a passphrase?)"
    )
    answer = run_helper("slow", timeout=0.3, detach_terminal=True)
    assert answer.problem is not None and "did not answer" in answer.problem
    assert run_helper("broken").problem == "docker-credential-broken failed: gpg: decryption failed"
    assert (
        run_helper("chatty").problem
        == "docker-credential-chatty printed something that is not JSON"
    )
    assert run_helper("missing").problem == (
        "docker-credential-missing is not installed (not found on PATH)"
    )
    assert run_helper("../../bin/sh").problem is not None  # never a path outside PATH lookups


def test_an_email_username_is_not_imported(tmp_path: Path) -> None:
    config = load_docker_config(
        write_config(tmp_path / "docker", {"auths": {HUB_KEY: inline("me@example.com", "pw1234")}})
    )
    result = find_hub_login(config)
    assert result.login is None
    assert "e-mail" in result.notes[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", " line 1: not valid JSON"), ("[1, 2]", ": not a JSON object")],
)
def test_a_broken_config_is_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(DockerConfigError) as info:
        load_docker_config(path)
    assert str(info.value) == f"{path}{message}"


def test_missing_config_has_nothing_to_import(tmp_path: Path) -> None:
    config = load_docker_config(tmp_path / "nope" / "config.json")
    assert not config.exists
    result = find_hub_login(config)
    assert result.login is None and "does not exist" in result.notes[0]


def test_import_puts_the_secret_in_the_keyring_only(
    tmp_path: Path, identity_store: IdentityStore, memory_keyring: MemoryKeyring
) -> None:
    config = load_docker_config(
        write_config(tmp_path / "docker", {"auths": {HUB_KEY: inline("alice", PAT)}})
    )
    login = find_hub_login(config).login
    assert login is not None
    outcome = import_login(identity_store, login)
    assert (outcome.label, outcome.username, outcome.replaced) == ("alice", "alice", False)
    assert memory_keyring.get_password("pullwatch", "alice") == PAT
    assert PAT not in identity_store.path.read_text()
    with pytest.raises(IdentityError, match="exists: pass --update"):
        import_login(identity_store, login)
    newer = type(login)("alice", PAT + "-new", login.where)
    assert import_login(identity_store, newer, "alice", update=True).replaced
    assert memory_keyring.get_password("pullwatch", "alice") == PAT + "-new"
    labels = [i.label for i in identity_store.load().identities]
    assert labels == ["anonymous", "alice"]


def test_import_does_not_duplicate_a_docker_id(identity_store: IdentityStore) -> None:
    from pullwatch.identities.docker_config import DockerLogin
    from pullwatch.identities.store import Identity

    identity_store.add(Identity("ci", "alice"), "old-secret")
    with pytest.raises(IdentityError, match="already identity 'ci'"):
        import_login(identity_store, DockerLogin("alice", PAT, "auths (inline)"))
    assert import_login(identity_store, DockerLogin("alice", PAT, "x"), "second").label == "second"


# -- what an import would do: plan_import, and `import-docker --dry-run` ----------------------


def test_plan_import_names_the_conflict_and_a_free_label(identity_store: IdentityStore) -> None:
    from pullwatch.identities.docker_config import DockerLogin, plan_import
    from pullwatch.identities.store import Identity

    login = DockerLogin("alice", PAT, "auths (inline)")
    assert plan_import(identity_store.load(), login) == ImportPlan("alice", False)
    identity_store.add(Identity("alice"))  # the label taken, by an anonymous identity
    identity_store.add(Identity("alice-2"))
    plan = plan_import(identity_store.load(), login)
    assert plan.problem is not None and "identity 'alice' exists" in plan.problem
    assert plan.instead == "alice-3"  # alice-2 is taken too
    assert plan_import(identity_store.load(), login, update=True) == ImportPlan("alice", True)
    assert plan_import(identity_store.load(), login, "mine") == ImportPlan("mine", False)
    with pytest.raises(IdentityError, match=r"exists: pass --update.*\(--label alice-3 is free\)"):
        import_login(identity_store, login)


def test_plan_import_of_a_docker_id_already_imported(identity_store: IdentityStore) -> None:
    from pullwatch.identities.docker_config import DockerLogin, plan_import
    from pullwatch.identities.store import Identity

    identity_store.add(Identity("ci", "alice"), "old-secret")
    plan = plan_import(identity_store.load(), DockerLogin("alice", PAT, "x"))
    assert plan.problem is not None and "already identity 'ci'" in plan.problem
    assert plan.instead == "alice-2"


@pytest.fixture
def docker_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Docker's config pointing at a helper that holds alice's login (the simulator's)."""
    from fixtures_simhub import ALICE

    home = tmp_path / "docker-home"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({"credsStore": "pwtest"}))
    monkeypatch.setenv("DOCKER_CONFIG", str(home))
    bin_dir = tmp_path / "helpers"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    write_helper(bin_dir, "pwtest", answering(ALICE.username, ALICE.secret, tmp_path / "calls"))
    return home


def test_dry_run_reports_what_the_real_run_would_refuse(
    cli: Cli, docker_home: Path, cli_keyring: MemoryKeyring
) -> None:
    code, out, _ = cli("identity", "import-docker", "--dry-run")
    assert code == 0 and "as identity 'alice'" in out
    cli.add("alice")  # the label taken (by an anonymous identity)
    before = cli.paths.config_file.read_bytes()
    code, out, _ = cli("identity", "import-docker", "--dry-run")
    assert code == 1
    assert "would not import Docker ID alice" in out and "identity 'alice' exists" in out
    assert "as a new identity it would be: --label alice-2" in out
    code, out, _ = cli("identity", "import-docker", "--dry-run", "--update")
    assert code == 0 and "would replace the login of identity 'alice'" in out
    code, out, _ = cli("identity", "import-docker", "--dry-run", "--label", "alice-2")
    assert code == 0 and "as identity 'alice-2'" in out
    assert cli.paths.config_file.read_bytes() == before  # a dry run changes nothing
    assert cli_keyring.get_password("pullwatch", "alice-2") is None
    # the real run refuses exactly what the dry run said, and names the same free label
    code, _, err = cli("identity", "import-docker")
    assert code == 1 and "identity 'alice' exists" in err and "--label alice-2 is free" in err
    code, _, err = cli("identity", "import-docker", "--label", "alice-2")
    assert code == 0, err


def test_dry_run_of_a_docker_id_already_imported(cli: Cli, docker_home: Path) -> None:
    from fixtures_simhub import ALICE

    cli.add("ci", ALICE.username, ALICE.secret)
    code, out, _ = cli("identity", "import-docker", "--dry-run")
    assert code == 1 and "Docker ID alice is already identity 'ci'" in out
    assert "--label alice-2" in out
    code, out, err = cli("identity", "import-docker", "--dry-run", "--label", "second")
    assert code == 0 and "as identity 'second'" in out
    assert "second and ci both log in as alice" in err  # one account, one bucket
