"""Refused logins, remembered across processes so no process retries them behind the user's back.

Docker Hub locks a username out after repeated bad logins, and a `check` run by cron every five
minutes would otherwise send the same known-bad login twelve times an hour. When the token
endpoint refuses an identity's credentials, the refusal is written to `refusals.json` in the
data directory, keyed by identity label and registry, with a fingerprint of the username and
secret - a salted SHA-256, never the secret. Until the username or the secret changes (so the
fingerprint differs) or the user asks (`--retry-auth`, the dashboard's `enter`), every process
reports the identity as `auth_failed` without contacting the token endpoint.

The file is private (0600), written atomically under a lock file; an unreadable file is treated
as empty (it only costs one login attempt).
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pullwatch.paths import ensure_private_dir

FILE_NAME = "refusals.json"


@dataclass(frozen=True, slots=True)
class Refusal:
    at: float  # when the login was refused (epoch seconds)
    detail: str  # what the registry said, one line, redacted


class RefusalMemory:
    """`path` None remembers nothing (every login is tried)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._cached: tuple[int, dict[str, Any]] | None = None  # (mtime_ns, contents)

    def refused(self, label: str, registry: str, username: str, secret: str) -> Refusal | None:
        """The remembered refusal of exactly these credentials, if any (never writes)."""
        data = self._read()
        entry = data.get("refusals", {}).get(_key(label, registry))
        salt = data.get("salt")
        if not isinstance(entry, dict) or not isinstance(salt, str):
            return None
        if entry.get("fingerprint") != _fingerprint(salt, registry, username, secret):
            return None
        try:
            return Refusal(float(entry["at"]), str(entry.get("detail", "")))
        except (KeyError, TypeError, ValueError):
            return None

    def remember(
        self, label: str, registry: str, username: str, secret: str, at: float, detail: str
    ) -> None:
        with self._locked() as data:
            salt = data.get("salt")
            if not isinstance(salt, str) or not salt:
                salt = data["salt"] = secrets.token_hex(16)
            data.setdefault("refusals", {})[_key(label, registry)] = {
                "fingerprint": _fingerprint(salt, registry, username, secret),
                "at": at,
                "detail": detail[:300],
            }

    def forget(self, label: str, registry: str) -> None:
        if _key(label, registry) not in self._read().get("refusals", {}):
            return
        with self._locked() as data:
            data.get("refusals", {}).pop(_key(label, registry), None)

    # -- the file ------------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        """The file's contents (re-read only when it changed: asked once per identity)."""
        if self.path is None:
            return {}
        try:
            stamp = self.path.stat().st_mtime_ns
            if self._cached is not None and self._cached[0] == stamp:
                return copy.deepcopy(self._cached[1])  # a copy: callers may edit it
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        self._cached = (stamp, data)
        return copy.deepcopy(data)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write under an exclusive lock; the changes are written on exit."""
        if self.path is None:
            yield {}
            return
        try:
            ensure_private_dir(self.path.parent)
            lock = os.open(
                self.path.with_name(f".{self.path.name}.lock"),
                os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                0o600,
            )
        except OSError:
            yield {}  # cannot remember: each process will try the login once
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            yield data
            self._write(data)
        finally:
            os.close(lock)

    def _write(self, data: dict[str, Any]) -> None:
        assert self.path is not None
        temp: str | None = None
        try:
            fd, temp = tempfile.mkstemp(prefix=".refusals.", dir=self.path.parent)  # 0600
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1)
            Path(temp).replace(self.path)
            temp = None
        except OSError:
            pass
        finally:
            if temp is not None:
                with contextlib.suppress(OSError):
                    Path(temp).unlink()


def _key(label: str, registry: str) -> str:
    return f"{registry} {label}"


def _fingerprint(salt: str, registry: str, username: str, secret: str) -> str:
    """A salted SHA-256 of the credentials: says "the same login", never reveals it."""
    data = f"{salt}\0{registry}\0{username}\0{secret}".encode()
    return hashlib.sha256(data).hexdigest()[:32]
