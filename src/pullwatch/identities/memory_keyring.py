"""An in-memory keyring for the demo and the tests (also importable from `secrets`).

A module of its own because it subclasses keyring's backend: importing it imports keyring, which
`pullwatch.identities.secrets` leaves until a secret is first read or written.
"""

from __future__ import annotations

import threading

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring for demo mode and tests. Never auto-selected (negative priority)."""

    priority = -1

    def __init__(self) -> None:
        KeyringBackend.__init__(self)  # mypy: super() escapes untyped_calls_exclude
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        with self._lock:
            return self._entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._lock:
            self._entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        with self._lock:
            if self._entries.pop((service, username), None) is None:
                raise PasswordDeleteError("no such password")

    def labels(self, service: str) -> list[str]:
        """The usernames stored under `service` (tests and the demo use this)."""
        with self._lock:
            return sorted(user for svc, user in self._entries if svc == service)
