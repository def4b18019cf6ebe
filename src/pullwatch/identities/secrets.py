"""The OS keyring behind a timeout, with a status.

Every call into `keyring` runs on one worker thread and is waited for with a timeout, because a
Secret Service that shows an unlock prompt on a display nobody sees blocks forever (keyring
passes no timeout). One keyring call runs at a time and other callers queue behind it; when a
call times out the keyring is marked stuck, the calls queued behind it are cancelled, and until
the stuck call returns every further call answers TIMED_OUT at once instead of piling up more
stuck threads. Failures become a `KeyringStatus` with a one-line message that says the way out.

`get_many` reads a whole round's secrets: from keyring's Secret Service backend in one batch
(see `secret_service`), from any other backend one label after another on the same worker.

A secret value never appears in a message, an exception or a log.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

    from pullwatch.identities.memory_keyring import MemoryKeyring

# keyring (and the backends it finds) is imported on first use, not with this module: the
# dashboard paints before it, and building a runtime costs no keyring import.

__all__ = [
    "ENV_ALLOW_PLAINTEXT",
    "KeyringHealth",
    "KeyringStatus",
    "MemoryKeyring",
    "SecretLookup",
    "SecretStore",
    "SecretStoreError",
    "backend_name",
    "is_plaintext_backend",
]

ENV_ALLOW_PLAINTEXT = "PULLWATCH_ALLOW_PLAINTEXT_KEYRING"

# Known backends that keep secrets unencrypted on disk (module.Class).
_PLAINTEXT_BACKENDS = frozenset(
    {
        "keyrings.alt.file.PlaintextKeyring",
        "keyrings.alt.pyfs.PlaintextKeyring",
        "keyrings.cryptfile.file.PlaintextKeyring",
    }
)
# Encrypted file backends that ask for their passphrase with getpass on the terminal: in a worker
# thread under a full-screen app that garbles the screen and then blocks until the timeout. keyring
# auto-selects them once keyrings.cryptfile or keyrings.alt is installed; pullwatch uses
# keyrings.cryptfile only on request (PULLWATCH_KEYRING=cryptfile), supplying the passphrase itself.
_PROMPTING_BACKENDS = frozenset({"EncryptedKeyring", "CryptFileKeyring"})
# A label that no identity can have (labels start with a letter or digit): the health probe.
_HEALTH_PROBE_LABEL = "~pullwatch-health-check"
_MAX_MESSAGE = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

T = TypeVar("T")


class KeyringStatus(StrEnum):
    OK = "ok"
    NO_BACKEND = "no_backend"
    LOCKED = "locked"
    TIMED_OUT = "timed_out"
    REFUSED = "refused"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class KeyringHealth:
    """Whether the keyring is usable; `message` is one line: what is wrong and the way out."""

    status: KeyringStatus
    backend: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status is KeyringStatus.OK


@dataclass(frozen=True, slots=True)
class SecretLookup:
    """The result of a read. OK with `secret` None means nothing is stored for that label."""

    status: KeyringStatus
    secret: str | None
    message: str = ""

    def __repr__(self) -> str:  # never show the secret, not even in a debugger or a log
        shown = None if self.secret is None else "'***'"
        return f"SecretLookup(status={self.status!r}, secret={shown}, message={self.message!r})"


class SecretStoreError(Exception):
    """A keyring write or delete failed; `str()` is the one-line message with the way out."""

    def __init__(self, health: KeyringHealth) -> None:
        super().__init__(health.message)
        self.health = health

    @property
    def status(self) -> KeyringStatus:
        return self.health.status


def __getattr__(name: str) -> type[MemoryKeyring]:
    """`MemoryKeyring` lives in `memory_keyring` (it subclasses keyring's backend, so importing
    it imports keyring); it is still importable from here."""
    if name == "MemoryKeyring":
        from pullwatch.identities.memory_keyring import MemoryKeyring

        return MemoryKeyring
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def backend_name(backend: KeyringBackend) -> str:
    """`module.Class` of a backend, for messages."""
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def is_plaintext_backend(backend: KeyringBackend) -> bool:
    """True for a backend that stores secrets unencrypted (also inside a ChainerBackend)."""
    from keyring.backends import chainer

    if isinstance(backend, chainer.ChainerBackend):
        return any(is_plaintext_backend(member) for member in backend.backends)
    if backend_name(backend) in _PLAINTEXT_BACKENDS:
        return True
    if "plaintext" in type(backend).__name__.lower():
        return True
    # keyrings.alt and keyrings.cryptfile describe unencrypted storage as scheme "no encyption".
    scheme = getattr(backend, "scheme", None)
    return isinstance(scheme, str) and scheme.lower().startswith(("no enc", "plain"))


def _prompts_on_terminal(backend: KeyringBackend) -> bool:
    cls = type(backend)
    return cls.__module__.startswith("keyrings.") and cls.__name__ in _PROMPTING_BACKENDS


def auto_backend(chosen: KeyringBackend, allow_plaintext: bool) -> KeyringBackend:
    """keyring's own choice, minus the members pullwatch must not use without being asked.

    keyring chains every viable backend, so merely installing keyrings.cryptfile or keyrings.alt
    adds a plaintext file and passphrase-prompting files to the chain, next to the Secret
    Service. pullwatch takes the best member that is neither (highest priority first); when
    only prompting ones are left that is "no backend", when only plaintext ones, the chain
    itself (refused unless plaintext was allowed).
    """
    from keyring.backends import chainer, fail

    if not isinstance(chosen, chainer.ChainerBackend):
        return chosen
    members: list[KeyringBackend] = list(chosen.backends)  # a jaraco classproperty: Any
    usable = [
        member
        for member in members
        if not _prompts_on_terminal(member)
        and (allow_plaintext or not is_plaintext_backend(member))
    ]
    if usable:
        return usable[0]
    if any(_prompts_on_terminal(member) for member in members):
        return fail.Keyring()
    return chosen


# keyring's own backends that are viable on one platform only (keyring imports them everywhere;
# the macOS one runs ctypes' find_library when imported, ~30 ms on Linux).
_ONE_PLATFORM = {"keyring.backends.macOS": "darwin", "keyring.backends.Windows": "win32"}
# Plugins all of whose backends `auto_backend` sets aside unless plaintext is allowed: files
# that prompt for a passphrase or keep secrets in plain text (keyrings.cryptfile imports
# pycryptodome and argon2 to say so, ~20 ms).
_SET_ASIDE_PLUGINS = ("keyrings.cryptfile.",)


def choose_backend(allow_plaintext: bool) -> KeyringBackend:
    """keyring's own choice, narrowed by `auto_backend`: the backend pullwatch uses.

    keyring finds its choice by importing every installed backend (macOS' and Windows' too, and
    every plugin) and asking each whether it works here - ~100 ms, paid by every command that
    touches a secret. When the answer cannot depend on the backends that would set aside
    anyway, `_quick_choice` finds the same one without importing them.
    """
    import keyring
    import keyring.core

    if keyring.get_keyring is keyring.core.get_keyring:  # not replaced (tests replace it)
        quick = _quick_choice(allow_plaintext)
        if quick is not None:
            return quick
    return auto_backend(keyring.get_keyring(), allow_plaintext)


def _quick_choice(allow_plaintext: bool) -> KeyringBackend | None:
    """What `auto_backend(keyring.get_keyring())` would answer, or None to ask keyring.

    keyring takes PYTHON_KEYRING_BACKEND, then keyringrc.cfg, then the viable backend of the
    highest priority (a chain of them, best first, when there are several); `auto_backend`
    takes the best member that neither prompts on the terminal nor stores plain text. So with
    neither setting and plaintext not allowed, the answer is the best such backend among those
    keyring would load - and the backends left out here can never be it: keyring's macOS and
    Windows ones elsewhere, and keyrings.cryptfile's (each prompts or is plain text). Every other
    plugin is loaded as keyring loads it. When none of them is usable the answer may depend on
    the ones left out ("no backend" rather than "refused"): keyring decides, as before.
    """
    import keyring.core
    from keyring.backend import KeyringBackend, by_priority
    from keyring.backends import chainer
    from keyring.util import platform_

    if allow_plaintext or keyring.core._keyring_backend is not None:  # chosen in this process
        return None
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return None
    try:
        if (platform_.config_root() / "keyringrc.cfg").exists():
            return None
    except Exception:  # an odd environment: keyring will say what it makes of it
        return None
    for entry in _entry_points("keyring.backends"):
        module = entry.value.split(":", 1)[0].strip()
        if _ONE_PLATFORM.get(module, sys.platform) != sys.platform:
            continue
        if module.startswith(_SET_ASIDE_PLUGINS):
            continue
        try:  # as keyring's own _load_plugins does
            init = entry.load()
            if callable(init):
                init()
        except Exception:
            continue
    usable: list[KeyringBackend] = []
    for cls in KeyringBackend.get_viable_backends():
        if issubclass(cls, chainer.ChainerBackend):
            continue
        try:
            backend = cls()
        except TypeError:  # keyring skips backends that need arguments
            continue
        if backend.priority > 0 and not (
            _prompts_on_terminal(backend) or is_plaintext_backend(backend)
        ):
            usable.append(backend)
    return max(usable, key=by_priority) if usable else None


def _entry_points(group: str) -> Iterable[Any]:
    """A group's entry points, read as keyring reads them (with its importlib_metadata, which
    it has loaded already; the standard library's would cost its own import), from the entries
    of sys.path that exist: for a missing one (a Python's unused `python3XY.zip`) importlib
    metadata imports zipp (~2 ms) to find nothing there. A distribution installed twice yields
    its entry points twice; loading one again is a no-op."""
    try:
        from keyring.compat.py312 import metadata
    except ImportError:  # another keyring release
        import importlib.metadata as metadata  # type: ignore[no-redef]  # same API, stdlib's

    path = [entry for entry in sys.path if Path(entry or ".").exists()]
    for distribution in metadata.distributions(path=path):
        yield from distribution.entry_points.select(group=group)


def _reads_in_batches(backend: KeyringBackend) -> bool:
    """keyring's own Secret Service backend, reading and unlocking items as keyring does.

    A subclass that reads or unlocks its own way is read through its own `get_password`. (The
    module is in sys.modules whenever such a backend exists, so this check imports nothing.)
    """
    module = sys.modules.get("keyring.backends.SecretService")
    secret_service = getattr(module, "Keyring", None)
    if not isinstance(secret_service, type) or not isinstance(backend, secret_service):
        return False
    cls = type(backend)
    return all(
        getattr(cls, name, None) is getattr(secret_service, name, None)
        for name in ("get_password", "unlock")
    )


def _register_secret(key: str, secret: str) -> None:
    from pullwatch.redact import register_secret

    register_secret(key, secret)


def _one_line(text: str, secret: str | None = None) -> str:
    """One line without the secret, control characters or anything shaped like a credential."""
    from pullwatch.redact import REDACTED, redact

    if secret:
        text = text.replace(secret, REDACTED)
    text = redact(_CONTROL.sub(" ", text))
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


class _WorkerClosed(Exception):
    """The worker was shut down (its keyring got stuck) between choosing it and submitting."""


class _KeyringWorker:
    """A single-worker executor: keyring calls run one at a time, in order, on a daemon thread.

    What `ThreadPoolExecutor(max_workers=1)` does - futures, cancellation of queued work - but
    its thread is a daemon and ends after `IDLE` seconds without work: the interpreter joins a
    ThreadPoolExecutor's threads at exit, so one call stuck on an unlock prompt nobody sees
    would hold up pullwatch's exit for good. A stuck worker is shut down (the calls queued
    behind it are cancelled) and replaced by a fresh one once the stuck call returns.
    """

    # Seconds a thread waits for more work before it ends: long enough to serve calls made one
    # after another (get_many on a backend without batches), short enough that no idle thread
    # outlives its store for long.
    IDLE = 0.05
    THREAD_NAME = "pullwatch-keyring"

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._jobs: deque[tuple[Future[Any], Callable[[], Any]]] = deque()
        self._serving = False  # a thread is serving the queue
        self._closed = False

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue `fn`; raises _WorkerClosed after `shutdown()`."""
        future: Future[T] = Future()
        job = (future, fn)
        with self._cond:
            if self._closed:
                raise _WorkerClosed
            self._jobs.append(job)
            if self._serving:
                self._cond.notify()
                return future
            self._serving = True
        try:
            threading.Thread(target=self._serve, name=self.THREAD_NAME, daemon=True).start()
        except BaseException:
            with self._cond:
                self._serving = False
                if job in self._jobs:
                    self._jobs.remove(job)
            raise
        return future

    def shutdown(self) -> None:
        """Cancel every call not started yet; a running one ends on its own, then the thread."""
        with self._cond:
            self._closed = True
            queued = list(self._jobs)
            self._jobs.clear()
            self._cond.notify_all()
        for future, _ in queued:
            future.cancel()  # wakes its caller (done callbacks run on cancel)

    def _serve(self) -> None:
        while True:
            with self._cond:
                if not self._jobs and not self._closed:
                    self._cond.wait(self.IDLE)
                if not self._jobs:
                    self._serving = False
                    return
                future, fn = self._jobs.popleft()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # handed to the caller's thread
                    future.set_exception(exc)
            del future, fn  # no reference to a call (or its secret) while idle


class _Call:
    """A keyring call for the worker: when it started; `moved` once it started or is cancelled."""

    __slots__ = ("fn", "moved", "started_at")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.started_at: float | None = None
        self.moved = threading.Event()

    def __call__(self) -> Any:
        self.started_at = time.monotonic()
        self.moved.set()
        return self.fn()

    def wake(self, _: Future[Any]) -> None:
        self.moved.set()


@dataclass(frozen=True, slots=True)
class _Resolved:
    backend: KeyringBackend
    name: str
    verdict: KeyringHealth | None  # None: usable; else the status every call answers


class SecretStore:
    """Secrets by identity label, in the keyring under service `pullwatch`, behind a timeout."""

    SERVICE = "pullwatch"
    # How long health() reuses a verdict (so a UI may ask every second without re-probing, and
    # a locked keyring is not asked to unlock each time); every get/set/delete refreshes it.
    HEALTH_TTL = 5.0
    # A safety cap on waiting behind other callers' calls (each bounded by `timeout`).
    QUEUE_LIMIT = 30.0

    def __init__(
        self,
        backend: KeyringBackend | None = None,
        *,
        timeout: float = 3.0,
        allow_plaintext: bool | None = None,
    ) -> None:
        self._backend = backend
        self.timeout = timeout
        if allow_plaintext is None:
            flag = os.environ.get(ENV_ALLOW_PLAINTEXT, "").strip().lower()
            allow_plaintext = flag in {"1", "true", "yes"}
        self.allow_plaintext = allow_plaintext
        self._state = threading.Lock()  # guards the fields below
        self._worker: _KeyringWorker | None = None  # runs every keyring call, one at a time
        self._resolved: _Resolved | None = None
        self._stuck: Future[Any] | None = None  # a call that timed out and has not returned
        self._stuck_since = 0.0
        self._health: KeyringHealth | None = None
        self._health_at = 0.0

    # -- public API --------------------------------------------------------------------------

    @property
    def backend_name(self) -> str:
        """The backend in use (`module.Class`), or "unresolved" before the first call."""
        if self._resolved is not None:
            return self._resolved.name
        return backend_name(self._backend) if self._backend is not None else "unresolved"

    def health(self) -> KeyringHealth:
        """Whether the keyring is usable: a harmless read, reused for a few seconds."""
        stuck = self._stuck_health()
        if stuck is not None:
            return stuck
        with self._state:
            cached = self._health
            if cached is not None and time.monotonic() - self._health_at < self.HEALTH_TTL:
                return cached
        _, failure = self._attempt(lambda b: b.get_password(self.SERVICE, _HEALTH_PROBE_LABEL))
        return failure or self._ok_health()

    def recheck(self) -> None:
        """Forget the cached health verdict (the keyring was just unlocked, say)."""
        with self._state:
            self._health = None

    def get(self, label: str) -> SecretLookup:
        """The secret stored for `label`; never raises."""
        secret, failure = self._attempt(lambda b: b.get_password(self.SERVICE, label))
        if failure is not None:
            return SecretLookup(failure.status, None, failure.message)
        if secret:
            _register_secret(self._redact_key(label), secret)  # scrubbed from anything shown
        return SecretLookup(KeyringStatus.OK, secret, "")

    def get_many(self, labels: Iterable[str]) -> dict[str, SecretLookup]:
        """The secrets of many labels (a whole round), each as `get` would answer; never raises.

        On keyring's Secret Service backend one batch: one connection, one search, one request
        for all the secrets, under the timeout of a single call (see `secret_service`); a label
        the batch cannot read is read on its own. On any other backend one label after another,
        each under its own timeout, on the same worker as every other call. A label given twice
        is read once; the result has every label given, in the order given.
        """
        wanted = list(dict.fromkeys(labels))
        if not wanted:
            return {}
        resolved, failure = self._resolve()
        if resolved is not None and failure is None:
            failure = resolved.verdict
        if failure is not None:
            self._remember(failure)
            return dict.fromkeys(wanted, SecretLookup(failure.status, None, failure.message))
        assert resolved is not None
        found = self._read_batch(resolved, wanted) if _reads_in_batches(resolved.backend) else {}
        for label in wanted:
            if label not in found:
                found[label] = self.get(label)
        return {label: found[label] for label in wanted}

    def set(self, label: str, secret: str) -> None:
        """Store `secret` for `label`; raises SecretStoreError."""
        _register_secret(self._redact_key(label), secret)
        _, failure = self._attempt(
            lambda b: b.set_password(self.SERVICE, label, secret), secret=secret
        )
        if failure is not None:
            raise SecretStoreError(failure)

    def delete(self, label: str) -> None:
        """Delete the entry for `label`; a missing entry is fine. Raises SecretStoreError."""

        from keyring.errors import PasswordDeleteError

        def delete(backend: KeyringBackend) -> None:
            try:
                backend.delete_password(self.SERVICE, label)
            except PasswordDeleteError:
                # Backends say "not found" this way, but so do some real failures: look again.
                if backend.get_password(self.SERVICE, label) is not None:
                    raise

        _, failure = self._attempt(delete)
        if failure is not None:
            raise SecretStoreError(failure)

    # -- machinery ---------------------------------------------------------------------------
    #
    # Failures travel as values, not exceptions, so no SecretStoreError ever carries the
    # backend's own exception (which might quote the secret) as its __context__.

    def _redact_key(self, label: str) -> str:
        return f"keyring:{self.SERVICE}:{label}"

    def _attempt(
        self, op: Callable[[KeyringBackend], T], secret: str | None = None
    ) -> tuple[T | None, KeyringHealth | None]:
        """Run `op` on the backend under the timeout: (value, None) or (None, why it failed)."""
        resolved, failure = self._resolve()
        if resolved is not None and failure is None:
            if resolved.verdict is not None:
                failure = resolved.verdict
            else:
                value, error, failure = self._timed(lambda: op(resolved.backend))
                if error is not None:
                    failure = self._classify(error, resolved.name, secret)
                    del error
                if failure is None:
                    self._remember(self._ok_health())
                    return value, None
        assert failure is not None
        self._remember(failure)
        return None, failure

    def _read_batch(self, resolved: _Resolved, labels: list[str]) -> dict[str, SecretLookup]:
        """One Secret Service batch under the timeout; labels it could not read are left out."""
        try:
            from pullwatch.identities.secret_service import read_secrets
        except ImportError:  # secretstorage or jeepney missing: keyring's API then
            return {}
        batch, error, failure = self._timed(
            lambda: read_secrets(resolved.backend, self.SERVICE, labels)
        )
        if error is not None:  # what keyring's get_password would raise for every label
            failure = self._classify(error, resolved.name)
            del error
        if failure is not None:
            self._remember(failure)
            return dict.fromkeys(labels, SecretLookup(failure.status, None, failure.message))
        assert batch is not None
        from keyring.errors import KeyringLocked

        locked = (
            self._classify(KeyringLocked("Failed to unlock the item!"), resolved.name)
            if batch.locked
            else None
        )
        found: dict[str, SecretLookup] = {}
        for label in labels:
            if label in batch.retry:
                continue
            if locked is not None and label in batch.locked:
                found[label] = SecretLookup(locked.status, None, locked.message)
                continue
            secret = batch.secrets.get(label)
            if secret:
                _register_secret(self._redact_key(label), secret)  # scrubbed from anything shown
            found[label] = SecretLookup(KeyringStatus.OK, secret, "")
        self._remember(locked or self._ok_health())
        return found

    def _resolve(self) -> tuple[_Resolved | None, KeyringHealth | None]:
        """The backend and whether it is usable; keyring's own choice is resolved lazily."""
        with self._state:
            if self._resolved is not None:
                return self._resolved, None
        given = self._backend

        def resolve() -> _Resolved:
            backend = given if given is not None else choose_backend(self.allow_plaintext)
            return _Resolved(backend, backend_name(backend), self._verdict(backend))

        resolved, error, failure = self._timed(resolve)
        if error is not None:
            name = backend_name(given) if given is not None else "unresolved"
            return None, self._classify(error, name)
        if failure is not None or resolved is None:
            return None, failure
        with self._state:
            self._resolved = resolved
        return resolved, None

    def _verdict(self, backend: KeyringBackend) -> KeyringHealth | None:
        """Why this backend can never work (no backend, plaintext refused), or None."""
        from keyring.backends import chainer, fail, null

        name = backend_name(backend)
        if isinstance(backend, fail.Keyring | null.Keyring) or (
            isinstance(backend, chainer.ChainerBackend) and not backend.backends
        ):
            return KeyringHealth(KeyringStatus.NO_BACKEND, name, self._no_backend_message())
        if not self.allow_plaintext and is_plaintext_backend(backend):
            message = (
                f"keyring backend {name} stores secrets in plain text, so pullwatch refuses it: "
                "use an encrypted keyring (Secret Service, keyrings.cryptfile) or opt in with "
                f"{ENV_ALLOW_PLAINTEXT}=1"
            )
            return KeyringHealth(KeyringStatus.REFUSED, name, message)
        return None

    def _timed(
        self, fn: Callable[[], T]
    ) -> tuple[T | None, BaseException | None, KeyringHealth | None]:
        """Run `fn` on the worker: (value, exception raised, TIMED_OUT health)."""
        # Queue behind the calls in flight: each either returns or, after `timeout`, is marked
        # stuck, which cancels every call queued behind it (those callers answer TIMED_OUT at
        # once). Waiting is not the keyring's fault, so a healthy but slow keyring serving many
        # callers does not time anyone out; `timeout` counts from when `fn` starts.
        queued_until = time.monotonic() + max(self.QUEUE_LIMIT, self.timeout)
        while True:
            stuck = self._stuck_health()
            if stuck is not None:
                return None, None, stuck
            with self._state:
                worker = self._worker
                if worker is None:
                    worker = self._worker = _KeyringWorker()
            call = _Call(fn)
            try:
                future = worker.submit(call)
            except _WorkerClosed:  # marked stuck just now: the loop says so
                continue
            future.add_done_callback(call.wake)  # a cancelled call wakes its caller too
            if not call.moved.wait(max(queued_until - time.monotonic(), 0.0)):
                if future.cancel():
                    message = (
                        f"keyring is busy: waited {self.QUEUE_LIMIT:g} s behind earlier calls; "
                        "try again"
                    )
                    health = KeyringHealth(KeyringStatus.TIMED_OUT, self.backend_name, message)
                    return None, None, health
                call.moved.wait()  # it started just as the wait ended
            started = call.started_at
            if started is None:  # cancelled: the call ahead got stuck, this one never ran
                continue
            try:
                error = future.exception(timeout=max(started + self.timeout - time.monotonic(), 0))
            except TimeoutError:
                self._mark_stuck(worker, future, started)
                return None, None, self._timeout_health()
            if error is not None:
                if not isinstance(error, Exception):
                    raise error  # KeyboardInterrupt, SystemExit: not ours to swallow
                return None, error, None
            return future.result(), None, None

    def _mark_stuck(self, worker: _KeyringWorker, future: Future[Any], since: float) -> None:
        """`future` hangs: answer TIMED_OUT until it returns; later calls get a fresh worker."""
        with self._state:
            if self._worker is worker:
                self._worker = None
            self._stuck = future
            self._stuck_since = since
        worker.shutdown()

    def _stuck_health(self) -> KeyringHealth | None:
        """TIMED_OUT while an earlier call is still hung, else None."""
        with self._state:
            stuck = self._stuck
            if stuck is None:
                return None
            if stuck.done():
                self._stuck = None
                return None
            waited = time.monotonic() - self._stuck_since
        message = (
            f"keyring has not answered an earlier call for {waited:.1f} s (an unlock prompt on a "
            "display nobody sees?): unlock the keyring for this session, see README 'Over SSH'"
        )
        return KeyringHealth(KeyringStatus.TIMED_OUT, self.backend_name, message)

    def _timeout_health(self) -> KeyringHealth:
        message = (
            f"keyring did not answer within {self.timeout:g} s (an unlock prompt on a display "
            "nobody sees?): unlock the keyring for this session, see README 'Over SSH'"
        )
        return KeyringHealth(KeyringStatus.TIMED_OUT, self.backend_name, message)

    def _ok_health(self) -> KeyringHealth:
        return KeyringHealth(KeyringStatus.OK, self.backend_name, "")

    def _remember(self, health: KeyringHealth) -> None:
        with self._state:
            self._health = health
            self._health_at = time.monotonic()

    @staticmethod
    def _no_backend_message() -> str:
        return (
            "no keyring backend (no D-Bus session - usual over SSH): run pullwatch inside "
            "dbus-run-session with gnome-keyring unlocked, set PYTHON_KEYRING_BACKEND, or use "
            "an encrypted file with PULLWATCH_KEYRING=cryptfile; see README 'Over SSH'"
        )

    def _classify(self, exc: BaseException, name: str, secret: str | None = None) -> KeyringHealth:
        """Map a keyring exception to a status and a one-line message without the secret."""
        from keyring.errors import KeyringLocked, NoKeyringError

        detail = _one_line(str(exc), secret)
        lowered = detail.lower()
        if isinstance(exc, NoKeyringError):
            return KeyringHealth(KeyringStatus.NO_BACKEND, name, self._no_backend_message())
        hint = getattr(exc, "way_out", None)
        if isinstance(exc, KeyringLocked) and isinstance(hint, str):  # says how to unlock it
            return KeyringHealth(KeyringStatus.LOCKED, name, _one_line(hint, secret))
        # InitError "Failed to create the collection: Prompt dismissed", secretstorage's
        # LockedException and the like all say so in their text.
        if isinstance(exc, KeyringLocked) or "prompt dismissed" in lowered or "locked" in lowered:
            message = (
                f"keyring is locked ({detail or type(exc).__name__}): unlock it - log in to the "
                "desktop, or in this session run "
                '`printf %s "$PW" | gnome-keyring-daemon --unlock --components=secrets`'
            )
            return KeyringHealth(KeyringStatus.LOCKED, name, _one_line(message, secret))
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        message = f"keyring error from {name}: {text}"
        return KeyringHealth(KeyringStatus.ERROR, name, _one_line(message, secret))
