"""pullwatch as a user runs it: real processes, the real Secret Service, the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from keyring.backend import KeyringBackend

from fixtures_simhub import ALICE, BOB
from pullwatch.paths import Paths
from pullwatch.simhub import SimHubServer
from pullwatch.simhub.accounts import stable_uuid

pytestmark = pytest.mark.secret_service


def run(
    paths: Paths, server: SimHubServer, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PULLWATCH_CONFIG_DIR": str(paths.config_dir),
        "PULLWATCH_DATA_DIR": str(paths.data_dir),
        "PULLWATCH_REGISTRY": server.url,
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "pullwatch", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_add_check_remove_with_the_real_keyring(
    secret_service: KeyringBackend, simhub: SimHubServer, paths: Paths
) -> None:
    added = run(paths, simhub, "identity", "add", "ci", "--username", ALICE.username,
                "--password-stdin", stdin=ALICE.secret + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert secret_service.get_password("pullwatch", "ci") == ALICE.secret
    lookup = subprocess.run(
        ["secret-tool", "lookup", "service", "pullwatch", "username", "ci"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert lookup.stdout == ALICE.secret
    run(paths, simhub, "identity", "add", "paid", "--username", BOB.username, "--password-stdin",
        stdin=BOB.secret)  # fmt: skip

    checked = run(paths, simhub, "check", "--json")
    assert checked.returncode == 0, checked.stderr
    rows = {r["label"]: r for r in json.loads(checked.stdout)["identities"]}
    assert rows["anonymous"]["state"] == "ok" and rows["anonymous"]["limit"] == 100
    assert rows["ci"]["source"] == stable_uuid("alice") and rows["ci"]["remaining"] == 200
    assert rows["paid"]["state"] == "unmetered"

    removed = run(paths, simhub, "identity", "remove", "ci")
    assert removed.returncode == 0, removed.stderr
    assert secret_service.get_password("pullwatch", "ci") is None
    files = [p for p in paths.config_dir.rglob("*") if p.is_file()]
    assert all(ALICE.secret not in p.read_text(errors="replace") for p in files)
    assert (paths.config_file.stat().st_mode & 0o777) == 0o600
    assert (paths.config_dir.stat().st_mode & 0o777) == 0o700
