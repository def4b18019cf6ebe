"""The store against a real Secret Service (gnome-keyring on a private D-Bus session)."""

from __future__ import annotations

import os
import subprocess

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService

from pullwatch.identities.secrets import KeyringStatus, SecretStore
from pullwatch.identities.store import Identity, IdentityStore
from pullwatch.paths import Paths

pytestmark = pytest.mark.secret_service

SECRET = "dckr_pat_RealKeyringSecret-42"


def secret_tool_lookup(label: str) -> subprocess.CompletedProcess[str]:
    """`secret-tool lookup service pullwatch username LABEL` on the test's bus."""
    return subprocess.run(
        ["secret-tool", "lookup", "service", "pullwatch", "username", label],
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": os.environ["DBUS_SESSION_BUS_ADDRESS"]},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def test_store_round_trip_through_gnome_keyring(
    secret_service: KeyringBackend, paths: Paths
) -> None:
    store = IdentityStore(
        paths.config_file, SecretStore(secret_service, timeout=5.0), lock_path=paths.config_lock
    )
    assert store.secrets.health().status is KeyringStatus.OK
    label = "ci-bot"
    store.add(Identity(label, "cibot"), SECRET)

    # A new SecretStore on a new backend object reads it back from the daemon.
    fresh = SecretStore(SecretService.Keyring(), timeout=5.0)
    lookup = fresh.get(label)
    assert (lookup.status, lookup.secret) == (KeyringStatus.OK, SECRET)
    reloaded = IdentityStore(paths.config_file, fresh, lock_path=paths.config_lock)
    identity = reloaded.load().get(label)
    assert identity is not None
    assert reloaded.secret_for(identity).secret == SECRET

    # libsecret's own tool sees the same entry: service "pullwatch", username = label.
    found = secret_tool_lookup(label)
    assert found.returncode == 0, found.stderr
    assert found.stdout == SECRET

    # The secret is in no file under the config dir.
    for path in paths.config_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path

    # Rename moves it in the real keyring too.
    store.update(label, Identity("builder", "cibot"))
    assert fresh.get("builder").secret == SECRET
    assert fresh.get(label).secret is None

    config = store.remove("builder")
    assert config.warning is None
    assert config.get("builder") is None
    assert fresh.get("builder") == fresh.get("never-stored")
    assert fresh.get("builder").secret is None
    assert secret_tool_lookup("builder").stdout == ""
