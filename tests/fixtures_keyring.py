"""Pytest plugin: keyrings for tests.

In-process backends (all with a negative priority, so keyring never picks one by itself):
`memory_keyring`, and failing ones - no backend, locked, hanging until released, failing writes,
plaintext. `secret_store` and `identity_store` wrap the memory keyring with a short timeout.

`secret_service` (session scope) starts a real Secret Service: a private dbus-daemon and
gnome-keyring-daemon with HOME and the XDG directories in a temporary directory, so the user's
own keyring is never touched. It exports DBUS_SESSION_BUS_ADDRESS while it runs and restores the
environment and stops both daemons at teardown. If the daemons cannot start the tests using it
are skipped - except when CI=true, where they fail instead. `password_collection` adds a
collection of its own to it (with a password, so it can be locked and unlocked without a
prompt), deleted at teardown.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.errors import KeyringLocked, PasswordDeleteError, PasswordSetError

from pullwatch.identities.secrets import MemoryKeyring, SecretStore
from pullwatch.identities.store import IdentityStore
from pullwatch.paths import Paths

TEST_TIMEOUT = 0.5  # seconds: the SecretStore timeout used by the in-process fixtures
SESSION_COLLECTION = "/org/freedesktop/secrets/collection/session"
KEYRING_PASSWORD = "pullwatch-test-keyring-password"

# -- in-process backends ------------------------------------------------------------------------


class LockedKeyring(MemoryKeyring):
    """Raises KeyringLocked (as a locked Secret Service does) while `locked` is true."""

    def __init__(self) -> None:
        super().__init__()
        self.locked = True

    def _check(self) -> None:
        if self.locked:
            raise KeyringLocked("Failed to unlock the collection!")

    def get_password(self, service: str, username: str) -> str | None:
        self._check()
        return super().get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self._check()
        super().set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self._check()
        super().delete_password(service, username)


class HangingKeyring(MemoryKeyring):
    """Every call blocks until `release()` (as an unlock prompt nobody sees does); then works."""

    MAX_HANG = 60.0  # a safety net: a forgotten release still ends the thread eventually

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()
        self.entered = threading.Event()
        self.calls = 0

    def release(self) -> None:
        self.released.set()

    def _hang(self) -> None:
        self.calls += 1
        self.entered.set()
        self.released.wait(self.MAX_HANG)

    def get_password(self, service: str, username: str) -> str | None:
        self._hang()
        return super().get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self._hang()
        super().set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self._hang()
        super().delete_password(service, username)


class FailingWriteKeyring(MemoryKeyring):
    """Reads work; writes (and, if `fail_delete`, deletes) raise like a read-only keyring."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_set = True
        self.fail_delete = True

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.fail_set:
            # A careless backend that echoes the password: SecretStore must scrub it.
            raise PasswordSetError(f"cannot store {password!r}: the keyring is read-only")
        super().set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        if self.fail_delete:
            raise PasswordDeleteError("cannot delete: the keyring is read-only")
        super().delete_password(service, username)


class PlaintextKeyring(MemoryKeyring):
    """Stands in for keyrings.alt.file.PlaintextKeyring (same name and scheme)."""

    scheme = "no encyption"  # sic, as keyrings.alt spells it


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    """A fresh, empty in-memory keyring."""
    return MemoryKeyring()


@pytest.fixture
def secret_store(memory_keyring: MemoryKeyring) -> SecretStore:
    """A SecretStore on `memory_keyring` with a short timeout."""
    return SecretStore(memory_keyring, timeout=TEST_TIMEOUT, allow_plaintext=False)


@pytest.fixture
def identity_store(paths: Paths, secret_store: SecretStore) -> IdentityStore:
    """An IdentityStore in the test's own config directory, secrets in `memory_keyring`."""
    return IdentityStore(paths.config_file, secret_store, lock_path=paths.config_lock)


@pytest.fixture
def no_backend_keyring() -> KeyringBackend:
    """keyring's own `fail` backend: what it picks when there is no D-Bus session (SSH)."""
    return fail.Keyring()


@pytest.fixture
def locked_keyring() -> LockedKeyring:
    """A keyring that is locked until the test sets `.locked = False`."""
    return LockedKeyring()


@pytest.fixture
def hanging_keyring() -> Iterator[HangingKeyring]:
    """A keyring whose calls hang until `.release()`; released at teardown so threads end."""
    backend = HangingKeyring()
    yield backend
    backend.release()


@pytest.fixture
def failing_write_keyring() -> FailingWriteKeyring:
    """A keyring that reads but refuses writes and deletes (toggle `fail_set`/`fail_delete`)."""
    return FailingWriteKeyring()


@pytest.fixture
def plaintext_keyring() -> PlaintextKeyring:
    """A backend that looks like keyrings.alt's PlaintextKeyring."""
    return PlaintextKeyring()


# -- a real Secret Service ----------------------------------------------------------------------

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={socket_dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class SecretServiceUnavailable(Exception):
    """The private Secret Service could not be started; the message says why."""


@dataclass
class SecretServiceProcesses:
    """A private session bus with gnome-keyring-daemon on it; `stop()` ends both."""

    base: Path
    runtime_dir: Path
    env: dict[str, str]
    address: str = ""
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    logs: list[IO[str]] = field(default_factory=list)

    @classmethod
    def start(cls, base: Path) -> SecretServiceProcesses:
        for program in ("dbus-daemon", "gnome-keyring-daemon"):
            if shutil.which(program) is None:
                raise SecretServiceUnavailable(f"{program} is not installed")
        home = base / "home"
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A short path of our own: unix socket paths are limited to ~107 bytes.
        runtime_dir = Path(tempfile.mkdtemp(prefix="pw-bus-"))
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY")
        }
        env.update(
            HOME=str(home),
            XDG_DATA_HOME=str(home / ".local" / "share"),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_CACHE_HOME=str(home / ".cache"),
            XDG_RUNTIME_DIR=str(runtime_dir),
        )
        service = cls(base=base, runtime_dir=runtime_dir, env=env)
        try:
            service._start_bus()
            service._start_keyring()
        except BaseException:
            service.stop()
            raise
        return service

    def _log(self, name: str) -> IO[str]:
        handle = (self.base / f"{name}.log").open("w")
        self.logs.append(handle)
        return handle

    def log_tail(self) -> str:
        tails = []
        for name in ("dbus-daemon", "gnome-keyring-daemon"):
            path = self.base / f"{name}.log"
            if path.exists():
                lines = path.read_text(errors="replace").strip().splitlines()[-3:]
                if lines:
                    tails.append(f"{name}: " + " | ".join(lines))
        return "; ".join(tails)

    def _start_bus(self) -> None:
        config = self.base / "bus.conf"
        config.write_text(_BUS_CONFIG.format(socket_dir=self.runtime_dir))
        bus = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log("dbus-daemon"),
            env=self.env,
            text=True,
        )
        self.processes.append(bus)
        assert bus.stdout is not None
        ready, _, _ = select.select([bus.stdout], [], [], 10)
        address = bus.stdout.readline().strip() if ready else ""
        if not address:
            raise SecretServiceUnavailable(f"dbus-daemon printed no address ({self.log_tail()})")
        self.address = address
        self.env["DBUS_SESSION_BUS_ADDRESS"] = address

    def _start_keyring(self) -> None:
        daemon = subprocess.Popen(
            [
                "gnome-keyring-daemon",
                "--foreground",
                "--unlock",
                "--components=secrets",
                f"--control-directory={self.runtime_dir / 'keyring'}",
            ],
            stdin=subprocess.PIPE,
            stdout=self._log("gnome-keyring-daemon"),
            stderr=subprocess.STDOUT,
            env=self.env,
            text=True,
        )
        self.processes.append(daemon)
        assert daemon.stdin is not None
        daemon.stdin.write(KEYRING_PASSWORD)  # --unlock reads the password from stdin
        daemon.stdin.close()
        self._wait_for_name("org.freedesktop.secrets", daemon)

    def _wait_for_name(self, name: str, daemon: subprocess.Popen[str]) -> None:
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        deadline = time.monotonic() + 10
        with open_dbus_connection(bus=self.address) as connection:
            while time.monotonic() < deadline:
                reply = connection.send_and_get_reply(message_bus.NameHasOwner(name), timeout=5)
                if reply.body[0]:
                    return
                if daemon.poll() is not None:
                    raise SecretServiceUnavailable(
                        f"gnome-keyring-daemon exited with {daemon.returncode} ({self.log_tail()})"
                    )
                time.sleep(0.05)
        raise SecretServiceUnavailable(f"{name} did not appear on the bus ({self.log_tail()})")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
            if process.stdout is not None:
                process.stdout.close()
        self.processes.clear()
        for handle in self.logs:
            handle.close()
        self.logs.clear()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


def _probe(backend: KeyringBackend) -> str | None:
    """Write, read and delete a probe entry; None when that works, else what went wrong."""
    store = SecretStore(backend, timeout=5.0, allow_plaintext=False)
    try:
        store.set("probe", "probe-value")
        lookup = store.get("probe")
        store.delete("probe")
    except Exception as exc:
        return str(exc)
    if lookup.secret != "probe-value":
        return f"read back {lookup.status.value}: {lookup.message or 'a different value'}"
    return None


@pytest.fixture(scope="session")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyringBackend]:
    """A `keyring.backends.SecretService.Keyring` on a private, unlocked gnome-keyring."""
    in_ci = os.environ.get("CI", "").strip().lower() == "true"

    def unavailable(reason: str) -> NoReturn:
        message = f"no Secret Service for tests: {reason}"
        if in_ci:
            pytest.fail(message + " (CI=true: this test must run, not skip)")
        pytest.skip(message)

    try:
        from keyring.backends import SecretService
    except ImportError as exc:  # pragma: no cover - secretstorage is a keyring dependency here
        unavailable(f"keyring's SecretService backend cannot be imported: {exc}")
    try:
        service = SecretServiceProcesses.start(tmp_path_factory.mktemp("secret-service"))
    except (SecretServiceUnavailable, OSError) as exc:
        unavailable(str(exc))
    patch = pytest.MonkeyPatch()
    try:
        patch.setenv("DBUS_SESSION_BUS_ADDRESS", service.address)
        patch.delenv("KEYRING_PROPERTY_PREFERRED_COLLECTION", raising=False)
        backend: KeyringBackend = SecretService.Keyring()
        problem = _probe(backend)
        if problem is not None:
            # The login collection could not be used (no unlock?): the in-memory session
            # collection needs no unlock. New backends pick this up from the environment too.
            patch.setenv("KEYRING_PROPERTY_PREFERRED_COLLECTION", SESSION_COLLECTION)
            backend = SecretService.Keyring()
            second = _probe(backend)
            if second is not None:
                unavailable(f"{problem}; session collection: {second} ({service.log_tail()})")
        yield backend
    finally:
        patch.undo()
        service.stop()


# -- a collection of its own on the real Secret Service -------------------------------------------

_GNOME_KEYRING_INTERNAL = "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface"
_collections = itertools.count(1)


@contextlib.contextmanager
def _bus() -> Iterator[Any]:
    """A new connection to the session bus (the test's own, while `secret_service` runs)."""
    import secretstorage

    connection = secretstorage.dbus_init()
    try:
        yield connection
    finally:
        connection.close()


@dataclass
class PasswordCollection:
    """A collection with a password on the test's Secret Service: lock it, unlock it, no prompt.

    gnome-keyring creates and unlocks such a collection through the internal interface its own
    tools use (`CreateWithMasterPassword`, `UnlockWithMasterPassword`); locking is the standard
    `Service.Lock`. Unlocking through the standard API needs a prompt, which has no display here
    and is dismissed at once - just what a locked login keyring over SSH does.
    """

    path: str
    password: str

    @classmethod
    def create(cls, password: str) -> PasswordCollection:
        label = f"pullwatch-test-{os.getpid()}-{next(_collections)}"
        properties = {"org.freedesktop.Secret.Collection.Label": ("s", label)}
        made = cls("", password)
        (path,) = made._internal("CreateWithMasterPassword", "a{sv}(oayays)", properties)
        made.path = str(path)
        return made

    def _internal(self, method: str, signature: str, *args: object) -> tuple[object, ...]:
        """A call on gnome-keyring's internal interface, the password as its last argument."""
        from secretstorage.util import DBusAddressWrapper, format_secret, open_session

        with _bus() as connection:
            session = open_session(connection)
            secret = format_secret(session, self.password.encode(), "text/plain")
            internal = DBusAddressWrapper(
                "/org/freedesktop/secrets", _GNOME_KEYRING_INTERNAL, connection
            )
            return tuple(internal.call(method, signature, *args, secret))

    def _collection(self, connection: Any) -> Any:
        import secretstorage

        return secretstorage.Collection(connection, self.path)

    def lock(self) -> None:
        with _bus() as connection:
            self._collection(connection).lock()

    def unlock(self) -> None:
        self._internal("UnlockWithMasterPassword", "o(oayays)", self.path)

    def is_locked(self) -> bool:
        with _bus() as connection:
            return bool(self._collection(connection).is_locked())

    def delete(self) -> None:
        self.unlock()
        with _bus() as connection:
            self._collection(connection).delete()


@pytest.fixture
def password_collection(secret_service: KeyringBackend) -> Iterator[PasswordCollection]:
    """A new collection with a password on the `secret_service`; deleted at teardown."""
    try:
        collection = PasswordCollection.create("pullwatch-test-collection-password")
    except Exception as exc:  # a Secret Service other than gnome-keyring: no such interface
        message = f"cannot create a collection with a password: {exc}"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(message + " (CI=true: this test must run, not skip)")
        pytest.skip(message)
    yield collection
    collection.delete()
