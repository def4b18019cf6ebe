"""A keyring backend for benchmark subprocesses: in memory, every secret derived from its label.

Selected with `PYTHON_KEYRING_BACKEND=benchkeyring.BenchKeyring` (and this directory on
`PYTHONPATH`), so a `pullwatch` process started by a benchmark finds a secret for each of its
1000 identities without a Secret Service and without writing any secret to disk. The simulated
hub's accounts use the same derivation (`_common.secret_for`). Never used outside benchmarks.
"""

from __future__ import annotations

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError, PasswordSetError

SERVICE = "pullwatch"


def secret_for(label: str) -> str:
    return f"bench-pat-{label}-0f3c9a"


class BenchKeyring(KeyringBackend):
    priority = -1  # type: ignore[assignment]  # never auto-selected

    def get_password(self, service: str, username: str) -> str | None:
        if service != SERVICE or username.startswith("~"):  # "~": pullwatch's health probe
            return None
        return secret_for(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError("the benchmark keyring is read-only")

    def delete_password(self, service: str, username: str) -> None:
        raise PasswordDeleteError("the benchmark keyring is read-only")
