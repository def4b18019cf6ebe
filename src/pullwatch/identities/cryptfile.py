"""The opt-in encrypted-file keyring (`keyrings.cryptfile`) for hosts without a Secret Service.

Chosen only on request - `PULLWATCH_KEYRING=cryptfile` or `keyring = "cryptfile"` in the config's
`[settings]` - never by keyring's auto-detection (see `secrets.auto_backend`). Its file lives in
pullwatch's data directory (AES-GCM, Argon2 key derivation; 0600, directory 0700).

keyrings.cryptfile asks for its passphrase with `getpass` on the terminal, which a full-screen app
cannot allow (and which blocks a worker thread until the timeout). pullwatch supplies the
passphrase itself: from `PULLWATCH_KEYRING_PASSPHRASE`, from a modal password screen inside the
TUI, or from a prompt before any output for headless commands. Until then every keyring call
answers "locked" with the way out; a wrong passphrase is a status, never an exception.
"""

from __future__ import annotations

import functools
import getpass
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyring.backend import KeyringBackend
from keyring.errors import InitError, KeyringLocked

from pullwatch.identities.model import (
    ENV_KEYRING,
    KEYRING_CHOICES,
    KeyringChoiceError,
    keyring_choice,
)
from pullwatch.identities.secrets import KeyringHealth, KeyringStatus, backend_name
from pullwatch.paths import ensure_private_dir

__all__ = [
    "CRYPTFILE_NAME",
    "CRYPTFILE_TIMEOUT",
    "ENV_KEYRING",
    "ENV_PASSPHRASE",
    "KEYRING_CHOICES",
    "KeyringChoiceError",
    "PassphraseRequired",
    "Unlocker",
    "keyring_choice",
    "make_unlocker",
    "prompt_passphrase",
]

ENV_PASSPHRASE = "PULLWATCH_KEYRING_PASSPHRASE"
CRYPTFILE_NAME = "keyring.cryptfile.cfg"
# Every read or write derives the key with Argon2 (about 0.3 s here): allow slow machines more.
CRYPTFILE_TIMEOUT = 15.0
INSTALL_HINT = "keyrings.cryptfile is not installed: pip install 'pullwatch[cryptfile]'"


class PassphraseRequired(KeyringLocked):
    """The encrypted keyring has no passphrase yet; `way_out` says how to give it."""

    def __init__(self, way_out: str) -> None:
        super().__init__(way_out)
        self.way_out = way_out


@functools.cache
def _backend_class() -> Callable[[Path | None, Callable[[], str]], KeyringBackend] | None:
    """A CryptFileKeyring that never prompts on the terminal (None when not installed)."""
    try:
        from keyrings.cryptfile.cryptfile import CryptFileKeyring
    except ImportError:
        return None

    class PassphraseCryptFile(CryptFileKeyring):  # type: ignore[misc]  # untyped base: Any
        """keyrings.cryptfile with the passphrase supplied by pullwatch, never by getpass."""

        priority = -1  # never auto-selected

        def __init__(self, path: Path | None = None, way_out: Callable[[], str] = str) -> None:
            super().__init__()
            if path is not None:
                self.file_path = str(path)
            self.way_out = way_out
            self.lock = threading.RLock()

        def _require(self) -> None:
            if self._keyring_key is None:
                raise PassphraseRequired(self.way_out())

        def _unlock(self) -> None:  # keyrings.cryptfile would call getpass here
            self._require()
            super()._unlock()

        def _get_new_password(self) -> str:  # and here, for a new file
            raise PassphraseRequired(self.way_out())

        def get_password(self, service: str, username: str) -> str | None:
            with self.lock:
                self._require()
                return super().get_password(service, username)  # type: ignore[no-any-return]  # untyped

        def set_password(self, service: str, username: str, password: str) -> None:
            with self.lock:
                self._require()
                super().set_password(service, username, password)

        def delete_password(self, service: str, username: str) -> None:
            with self.lock:
                self._require()
                super().delete_password(service, username)

    return PassphraseCryptFile


class _MissingCryptfile(KeyringBackend):
    """Stands in when keyrings.cryptfile was chosen but is not installed: says how to fix it."""

    priority = -1

    def __init__(self) -> None:
        KeyringBackend.__init__(self)  # mypy: super() escapes untyped_calls_exclude

    def get_password(self, service: str, username: str) -> str | None:
        raise InitError(INSTALL_HINT)

    def set_password(self, service: str, username: str, password: str) -> None:
        raise InitError(INSTALL_HINT)

    def delete_password(self, service: str, username: str) -> None:
        raise InitError(INSTALL_HINT)


@dataclass
class Unlocker:
    """The encrypted keyring's file, its backend and whether it has its passphrase yet."""

    path: Path
    backend: KeyringBackend
    installed: bool
    problem: str | None = None  # why the last unlock failed (one line, never the passphrase)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def locked(self) -> bool:
        return self.installed and getattr(self.backend, "_keyring_key", None) is None

    @property
    def is_new(self) -> bool:
        """No keyring file yet: the first passphrase given creates it."""
        return not self.path.exists()

    def way_out(self) -> str:
        """The one-line status while locked: what is wrong and how to unlock it."""
        why = f"{self.problem}; " if self.problem else ""
        return (
            f"encrypted keyring {self.path} is locked: {why}enter its passphrase when the "
            f"dashboard starts, or set {ENV_PASSPHRASE} (see README 'Over SSH')"
        )

    def unlock(self, passphrase: str) -> KeyringHealth:
        """Give the passphrase (a new file is created with it): OK, or LOCKED/ERROR and why."""
        name = backend_name(self.backend)
        if not self.installed:
            return KeyringHealth(KeyringStatus.ERROR, name, INSTALL_HINT)
        if not passphrase.strip():
            self.problem = "the passphrase is empty"
            return KeyringHealth(KeyringStatus.LOCKED, name, self.way_out())
        backend: Any = self.backend
        with self._lock, backend.lock:
            try:
                ensure_private_dir(self.path.parent)
                backend.keyring_key = passphrase  # creates the file, or checks its reference
            except OSError as exc:
                backend._keyring_key = None
                self.problem = None
                message = f"encrypted keyring {self.path} cannot be used: {exc.strerror or exc}"
                return KeyringHealth(KeyringStatus.ERROR, name, message)
            except Exception:  # MAC check failed, Incorrect Password, a damaged file
                backend._keyring_key = None
                self.problem = "wrong passphrase (or a damaged file)"
                return KeyringHealth(KeyringStatus.LOCKED, name, self.way_out())
        self.problem = None
        return KeyringHealth(KeyringStatus.OK, name, "")

    def lock(self) -> None:
        """Forget the passphrase (the next keyring call answers "locked")."""
        if self.installed:
            with self._lock:
                # cryptfile keeps the derived key here; forgetting it is its own way to lock
                self.backend._keyring_key = None  # type: ignore[attr-defined]


def make_unlocker(path: Path) -> Unlocker:
    """The encrypted keyring at `path`, locked until `unlock()` is given its passphrase."""
    cls = _backend_class()
    if cls is None:
        return Unlocker(path=path, backend=_MissingCryptfile(), installed=False)
    holder: list[Unlocker] = []
    backend = cls(path, lambda: holder[0].way_out())
    holder.append(Unlocker(path=path, backend=backend, installed=True))
    return holder[0]


def _terminal_available() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def prompt_passphrase(
    unlocker: Unlocker,
    ask: Callable[[str], str] = getpass.getpass,
    *,
    attempts: int = 3,
    terminal: Callable[[], bool] = _terminal_available,
) -> KeyringHealth | None:
    """For headless commands: ask on the terminal (never while a TUI owns it).

    None when there is nothing to do or no terminal to ask on; else the last unlock's health.
    """
    if not unlocker.locked or not terminal():
        return None
    health: KeyringHealth | None = None
    for _ in range(max(1, attempts)):
        try:
            if unlocker.is_new:
                first = ask(f"New passphrase for the encrypted keyring {unlocker.path}: ")
                if ask("Repeat it: ") != first:
                    unlocker.problem = "the two passphrases differ"
                    health = KeyringHealth(
                        KeyringStatus.LOCKED, backend_name(unlocker.backend), unlocker.way_out()
                    )
                    continue
                passphrase = first
            else:
                passphrase = ask(f"Passphrase for the encrypted keyring {unlocker.path}: ")
        except (EOFError, KeyboardInterrupt, OSError):
            return health
        health = unlocker.unlock(passphrase)
        if health.ok or health.status is KeyringStatus.ERROR:
            return health
    return health
