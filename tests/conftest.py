"""Shared fixtures. Fixture families live in their own plugin modules beside this file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pullwatch.clock import ManualClock
from pullwatch.paths import Paths

pytest_plugins = [
    "fixtures_simhub",
    "fixtures_keyring",
    "fixtures_demo",
    "fixtures_cli",
    "fixtures_registry",
    "fixtures_prometheus",
]


@pytest.fixture(autouse=True)
def _own_redaction_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test redacts only the secrets it (or its fixtures) registered.

    The registry is process-wide by design (every output path consults it); across tests a
    secret like "wrong" would redact another test's "wrong passphrase" on the same worker.
    """
    from pullwatch import redact

    monkeypatch.setattr(redact, "_literals", redact._Literals())
    monkeypatch.setattr(redact, "_fingerprints", redact._Fingerprints())


@pytest.fixture
def clock() -> ManualClock:
    """A clock frozen at 2026-11-30 12:00:00 UTC; tests move it with `advance()`."""
    return ManualClock()


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    """Config, data and cache directories inside the test's own temporary directory."""
    return Paths(
        config_dir=tmp_path / "config",
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "data" / "cache",
    )
