"""The README's "Over SSH" recipe, run as written: no drift between the docs and what works.

The `dbus-run-session -- sh -c '... gnome-keyring-daemon --unlock ...; pullwatch'` line is read
from README.md and run in a clean environment (HOME and the XDG directories in a temporary
directory, no D-Bus session of our own), with one change only: the final `pullwatch` gets
arguments (`"$@"`). A first session adds an identity, whose token goes into the keyring the
recipe unlocked; a second, separate session reads it back and probes with it. When the recipe
cannot run here the test is skipped - except under CI=true, where it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures_simhub import ALICE
from pullwatch.simhub import SimHubServer

README = Path(__file__).resolve().parents[1] / "README.md"
KEYRING_PW = "recipe-test-keyring-password"


def recipe() -> str:
    """The recipe line from README's 'Over SSH' section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Over SSH", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines()]
    found = [line for line in lines if line.startswith("dbus-run-session ")]
    assert len(found) == 1, "README 'Over SSH' must show exactly one dbus-run-session recipe"
    return found[0]


def with_arguments(line: str) -> str:
    """The recipe with `pullwatch` taking arguments: `...; pullwatch "$@"' sh`."""
    assert line.endswith("; pullwatch'"), line
    return line[: -len("pullwatch'")] + 'pullwatch "$@"\' sh'


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"the README's Over SSH recipe cannot run: {reason} (CI=true: must run)")
    pytest.skip(f"the README's Over SSH recipe cannot run: {reason}")


def test_readme_recipe_text() -> None:
    line = recipe()
    assert "gnome-keyring-daemon --unlock --components=secrets" in line
    assert '"$KEYRING_PW"' in line  # the password comes from the environment, not the text
    assert with_arguments(line).endswith('; pullwatch "$@"\' sh')


def test_readme_over_ssh_recipe_adds_and_reads_back_an_identity(
    simhub: SimHubServer, tmp_path: Path
) -> None:
    for program in ("dbus-run-session", "gnome-keyring-daemon", "sh"):
        if shutil.which(program) is None:
            unavailable(f"{program} is not installed")
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    bin_dir = str(Path(sys.executable).parent)  # the pullwatch script beside this python
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DBUS_", "KEYRING_", "PYTHON_KEYRING", "PULLWATCH_", "XDG_"))
        and key not in ("DISPLAY", "WAYLAND_DISPLAY")
    }
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(tmp_path / "run"),
        PATH=bin_dir + os.pathsep + env.get("PATH", ""),
        KEYRING_PW=KEYRING_PW,
        PULLWATCH_CONFIG_DIR=str(tmp_path / "config"),
        PULLWATCH_DATA_DIR=str(tmp_path / "data"),
        PULLWATCH_REGISTRY=simhub.url,
        NO_COLOR="1",
    )
    (tmp_path / "run").mkdir(mode=0o700)
    command = with_arguments(recipe())

    def session(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", f'{command} "$@"', "recipe", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    added = session("identity", "add", "ci", "--username", ALICE.username, "--password-stdin",
                    stdin=ALICE.secret)  # fmt: skip
    if added.returncode != 0 and "keyring" in added.stderr and "no keyring backend" in added.stderr:
        unavailable(f"no Secret Service came up: {added.stderr.strip()}")
    assert added.returncode == 0, added.stderr
    assert "secret stored in the keyring" in added.stderr

    listed = session("identity", "list", "--json")  # a second, separate session
    assert listed.returncode == 0, listed.stderr
    assert '"secret": "in keyring"' in listed.stdout

    checked = session("check", "--json", "--identity", "ci")
    assert checked.returncode == 0, checked.stderr
    assert '"state": "ok"' in checked.stdout and '"remaining": 200' in checked.stdout
    for path in [*tmp_path.rglob("*")]:
        if path.is_file() and "keyrings" not in path.parts:  # gnome-keyring encrypts its own
            assert ALICE.secret.encode() not in path.read_bytes(), path
