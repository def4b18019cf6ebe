"""Pytest plugin: `pullwatch ...` run in-process against the test's directories and simulator.

`cli_keyring` swaps the keyring the CLI resolves by itself for an in-memory one; `cli` runs
commands with `--config-dir`, `--data-dir` and `--registry` pointed at the test's own.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import keyring
import pytest

from pullwatch.cli import main
from pullwatch.identities.secrets import MemoryKeyring
from pullwatch.paths import Paths
from pullwatch.simhub import SimHubServer


@pytest.fixture
def cli_keyring() -> Iterator[MemoryKeyring]:
    """The process-wide keyring the CLI resolves by itself, swapped for an in-memory one."""
    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    try:
        yield memory
    finally:
        keyring.set_keyring(previous)


class Cli:
    def __init__(
        self, paths: Paths, server: SimHubServer, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.paths = paths
        self.server = server
        self.capsys = capsys
        self.outputs: list[str] = []

    def __call__(self, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        argv = [
            "--config-dir", str(self.paths.config_dir),
            "--data-dir", str(self.paths.data_dir),
            "--registry", self.server.url,
            *args,
        ]  # fmt: skip
        old_stdin = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            code = main(argv)
        finally:
            sys.stdin = old_stdin
        out, err = self.capsys.readouterr()
        self.outputs += [out, err]
        return code, out, err

    def add(self, label: str, username: str | None = None, secret: str | None = None) -> None:
        if username is None:
            code, _, err = self("identity", "add", label)
        else:
            code, _, err = self(
                "identity", "add", label, "--username", username, "--password-stdin", stdin=secret
            )
        assert code == 0, err


@pytest.fixture
def cli(
    paths: Paths,
    simhub: SimHubServer,
    capsys: pytest.CaptureFixture[str],
    cli_keyring: MemoryKeyring,
) -> Cli:
    return Cli(paths, simhub, capsys)
