"""SecretStore: every status, the timeout, and secrets never leaking into messages."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, null
from keyring.errors import InitError, NoKeyringError

from fixtures_keyring import (
    FailingWriteKeyring,
    HangingKeyring,
    LockedKeyring,
    PlaintextKeyring,
)
from pullwatch.identities.secrets import (
    ENV_ALLOW_PLAINTEXT,
    KeyringStatus,
    MemoryKeyring,
    SecretLookup,
    SecretStore,
    SecretStoreError,
    is_plaintext_backend,
)
from pullwatch.redact import redact

SECRET = "dckr_pat_s3cret-VALUE-0123456789"
TIMEOUT = 0.3
# Generous bounds: these check behaviour, not speed.
SLACK = 2.0
IMMEDIATE = 0.25


class RaisingKeyring(MemoryKeyring):
    """Every call raises the exception given (a factory, so each call gets a fresh one)."""

    def __init__(self, make_error: type[Exception] | None = None, text: str = "") -> None:
        super().__init__()
        self.make_error = make_error or RuntimeError
        self.text = text

    def get_password(self, service: str, username: str) -> str | None:
        raise self.make_error(self.text)

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.make_error(self.text)

    def delete_password(self, service: str, username: str) -> None:
        raise self.make_error(self.text)


class FixedChainer(chainer.ChainerBackend):
    """A ChainerBackend over a given list (never auto-selected)."""

    priority = -1  # type: ignore[assignment]

    def __init__(self, members: list[KeyringBackend] | None = None) -> None:
        super().__init__()
        self.members = members or []

    @property
    def backends(self) -> list[KeyringBackend]:  # type: ignore[override]
        return self.members


def keyring_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "pullwatch-keyring"]


def wait_until(condition: object, deadline: float = 5.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


# -- ok ---------------------------------------------------------------------------------------


def test_round_trip(secret_store: SecretStore, memory_keyring: MemoryKeyring) -> None:
    assert secret_store.get("ci-bot") == SecretLookup(KeyringStatus.OK, None, "")
    secret_store.set("ci-bot", SECRET)
    assert memory_keyring.get_password("pullwatch", "ci-bot") == SECRET
    lookup = secret_store.get("ci-bot")
    assert lookup.status is KeyringStatus.OK
    assert lookup.secret == SECRET
    secret_store.delete("ci-bot")
    assert secret_store.get("ci-bot").secret is None
    secret_store.delete("ci-bot")  # deleting a missing entry is fine
    health = secret_store.health()
    assert health.status is KeyringStatus.OK
    assert health.message == ""
    assert health.backend.endswith("MemoryKeyring")


def test_entries_live_under_service_pullwatch(
    secret_store: SecretStore, memory_keyring: MemoryKeyring
) -> None:
    secret_store.set("a", "one-secret")
    secret_store.set("b", "two-secret")
    assert SecretStore.SERVICE == "pullwatch"
    assert memory_keyring.labels("pullwatch") == ["a", "b"]


def test_memory_keyring_is_never_auto_selected() -> None:
    assert MemoryKeyring.priority < 0
    assert not isinstance(keyring.get_keyring(), MemoryKeyring)


def test_concurrent_calls_are_all_answered(secret_store: SecretStore) -> None:
    secret_store.set("x", SECRET)
    results: list[SecretLookup] = []

    def read() -> None:
        results.append(secret_store.get("x"))

    threads = [threading.Thread(target=read) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(results) == 16
    assert all(r.status is KeyringStatus.OK and r.secret == SECRET for r in results)


def test_default_backend_is_resolved_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = MemoryKeyring()
    calls: list[int] = []

    def fake_get_keyring() -> KeyringBackend:
        calls.append(1)
        return backend

    monkeypatch.setattr(keyring, "get_keyring", fake_get_keyring)
    store = SecretStore(timeout=TIMEOUT)
    assert calls == []
    assert store.backend_name == "unresolved"
    store.set("lazy", SECRET)
    assert store.get("lazy").secret == SECRET
    assert calls == [1]
    assert store.backend_name.endswith("MemoryKeyring")


# -- no backend -------------------------------------------------------------------------------


def _assert_no_backend(store: SecretStore) -> None:
    health = store.health()
    assert health.status is KeyringStatus.NO_BACKEND
    assert "dbus-run-session" in health.message
    assert "PYTHON_KEYRING_BACKEND" in health.message
    assert "\n" not in health.message
    lookup = store.get("x")
    assert (lookup.status, lookup.secret) == (KeyringStatus.NO_BACKEND, None)
    with pytest.raises(SecretStoreError) as caught:
        store.set("x", SECRET)
    assert caught.value.status is KeyringStatus.NO_BACKEND
    assert str(caught.value) == health.message
    with pytest.raises(SecretStoreError):
        store.delete("x")


def test_fail_backend_is_no_backend(no_backend_keyring: KeyringBackend) -> None:
    _assert_no_backend(SecretStore(no_backend_keyring, timeout=TIMEOUT))


def test_null_backend_and_empty_chain_are_no_backend() -> None:
    _assert_no_backend(SecretStore(null.Keyring(), timeout=TIMEOUT))
    _assert_no_backend(SecretStore(FixedChainer([]), timeout=TIMEOUT))


def test_no_keyring_error_is_no_backend() -> None:
    _assert_no_backend(SecretStore(RaisingKeyring(NoKeyringError, "nothing"), timeout=TIMEOUT))


# -- locked -----------------------------------------------------------------------------------


def test_locked_then_unlocked(locked_keyring: LockedKeyring) -> None:
    store = SecretStore(locked_keyring, timeout=TIMEOUT)
    health = store.health()
    assert health.status is KeyringStatus.LOCKED
    assert "unlock" in health.message
    assert "gnome-keyring-daemon --unlock" in health.message
    assert store.get("x").status is KeyringStatus.LOCKED
    with pytest.raises(SecretStoreError) as caught:
        store.set("x", SECRET)
    assert caught.value.status is KeyringStatus.LOCKED

    locked_keyring.locked = False
    store.set("x", SECRET)  # a later call notices the recovery...
    assert store.health().status is KeyringStatus.OK  # ...and so does health, at once
    locked_keyring.locked = True
    assert store.get("x").status is KeyringStatus.LOCKED
    assert store.health().status is KeyringStatus.LOCKED


def test_health_is_cached_but_rechecked_after_ttl(locked_keyring: LockedKeyring) -> None:
    store = SecretStore(locked_keyring, timeout=TIMEOUT)
    assert store.health().status is KeyringStatus.LOCKED
    locked_keyring.locked = False
    assert store.health().status is KeyringStatus.LOCKED  # cached: no probe each call
    store.HEALTH_TTL = 0.0
    assert store.health().status is KeyringStatus.OK


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (InitError, "Failed to create the collection: Prompt dismissed."),
        (RuntimeError, "Item is locked!"),
    ],
)
def test_prompt_dismissed_and_locked_texts_are_locked(error: type[Exception], text: str) -> None:
    store = SecretStore(RaisingKeyring(error, text), timeout=TIMEOUT)
    assert store.get("x").status is KeyringStatus.LOCKED


# -- timed out --------------------------------------------------------------------------------


def test_hanging_backend_times_out_then_recovers(hanging_keyring: HangingKeyring) -> None:
    store = SecretStore(hanging_keyring, timeout=TIMEOUT)
    started = time.monotonic()
    lookup = store.get("x")
    elapsed = time.monotonic() - started
    assert lookup.status is KeyringStatus.TIMED_OUT
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK
    assert f"did not answer within {TIMEOUT:g} s" in lookup.message

    # While that call is stuck, every further call answers at once and starts no thread.
    def set_fails() -> None:
        with pytest.raises(SecretStoreError) as caught:
            store.set("x", SECRET)
        assert caught.value.status is KeyringStatus.TIMED_OUT

    def delete_fails() -> None:
        with pytest.raises(SecretStoreError) as caught:
            store.delete("x")
        assert caught.value.status is KeyringStatus.TIMED_OUT

    for call in (lambda: store.get("x"), store.health, set_fails, delete_fails):
        started = time.monotonic()
        result = call()
        assert time.monotonic() - started < IMMEDIATE
        if result is not None:
            assert result.status is KeyringStatus.TIMED_OUT
            assert "earlier call" in result.message
    assert store.health().status is KeyringStatus.TIMED_OUT
    assert hanging_keyring.calls == 1
    stuck = keyring_threads()
    assert len(stuck) == 1
    assert all(thread.daemon for thread in stuck)

    hanging_keyring.release()
    assert wait_until(lambda: store.get("x").status is KeyringStatus.OK)
    store.set("x", SECRET)
    assert store.get("x").secret == SECRET
    assert store.health().status is KeyringStatus.OK
    assert wait_until(lambda: not keyring_threads())


def test_timeout_error_from_set_says_so(hanging_keyring: HangingKeyring) -> None:
    store = SecretStore(hanging_keyring, timeout=TIMEOUT)
    with pytest.raises(SecretStoreError) as caught:
        store.set("x", SECRET)
    assert caught.value.status is KeyringStatus.TIMED_OUT
    assert "unlock prompt" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_resolving_the_default_backend_is_timed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()

    def slow_get_keyring() -> KeyringBackend:
        gate.wait(30)
        return MemoryKeyring()

    monkeypatch.setattr(keyring, "get_keyring", slow_get_keyring)
    store = SecretStore(timeout=TIMEOUT)
    try:
        started = time.monotonic()
        assert store.health().status is KeyringStatus.TIMED_OUT
        assert time.monotonic() - started < TIMEOUT + SLACK
        started = time.monotonic()
        assert store.get("x").status is KeyringStatus.TIMED_OUT
        assert time.monotonic() - started < IMMEDIATE
    finally:
        gate.set()
    assert wait_until(lambda: store.get("x").status is KeyringStatus.OK)


# -- refused ----------------------------------------------------------------------------------


def test_plaintext_is_refused_unless_allowed(
    plaintext_keyring: PlaintextKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_ALLOW_PLAINTEXT, raising=False)
    store = SecretStore(plaintext_keyring, timeout=TIMEOUT)
    health = store.health()
    assert health.status is KeyringStatus.REFUSED
    assert f"{ENV_ALLOW_PLAINTEXT}=1" in health.message
    assert "plain text" in health.message
    with pytest.raises(SecretStoreError) as caught:
        store.set("x", SECRET)
    assert caught.value.status is KeyringStatus.REFUSED
    assert plaintext_keyring.labels("pullwatch") == []  # nothing written
    assert store.get("x").status is KeyringStatus.REFUSED

    allowed = SecretStore(plaintext_keyring, timeout=TIMEOUT, allow_plaintext=True)
    allowed.set("x", SECRET)
    assert allowed.get("x").secret == SECRET

    monkeypatch.setenv(ENV_ALLOW_PLAINTEXT, "1")
    assert SecretStore(plaintext_keyring, timeout=TIMEOUT).health().status is KeyringStatus.OK


def test_plaintext_inside_a_chain_is_refused(plaintext_keyring: PlaintextKeyring) -> None:
    chain = FixedChainer([MemoryKeyring(), plaintext_keyring])
    assert is_plaintext_backend(chain)
    store = SecretStore(chain, timeout=TIMEOUT, allow_plaintext=False)
    assert store.health().status is KeyringStatus.REFUSED
    assert not is_plaintext_backend(FixedChainer([MemoryKeyring()]))
    assert not is_plaintext_backend(MemoryKeyring())


# -- error ------------------------------------------------------------------------------------


def test_other_errors_are_error_with_class_and_one_line() -> None:
    store = SecretStore(RaisingKeyring(OSError, "disk on fire\nsecond line"), timeout=TIMEOUT)
    lookup = store.get("x")
    assert lookup.status is KeyringStatus.ERROR
    assert "OSError: disk on fire second line" in lookup.message
    assert "\n" not in lookup.message
    assert store.health().status is KeyringStatus.ERROR


def test_delete_error_that_is_not_a_missing_entry(
    failing_write_keyring: FailingWriteKeyring,
) -> None:
    failing_write_keyring.fail_set = False
    store = SecretStore(failing_write_keyring, timeout=TIMEOUT)
    store.delete("missing")  # PasswordDeleteError for a missing entry: fine
    store.set("x", SECRET)
    with pytest.raises(SecretStoreError) as caught:
        store.delete("x")  # PasswordDeleteError while the entry is there: a real failure
    assert caught.value.status is KeyringStatus.ERROR
    assert "PasswordDeleteError" in str(caught.value)


# -- the secret never leaks ---------------------------------------------------------------------


def test_secret_never_in_messages(failing_write_keyring: FailingWriteKeyring) -> None:
    store = SecretStore(failing_write_keyring, timeout=TIMEOUT)
    with pytest.raises(SecretStoreError) as caught:
        store.set("x", SECRET)
    error = caught.value
    for text in (str(error), repr(error), error.health.message, repr(error.health)):
        assert SECRET not in text
    assert "read-only" in str(error)
    # The backend's exception (which quoted the secret) is not chained to ours either.
    assert error.__context__ is None
    assert error.__cause__ is None


def test_lookup_repr_hides_the_secret(secret_store: SecretStore) -> None:
    secret_store.set("x", SECRET)
    lookup = secret_store.get("x")
    assert SECRET not in repr(lookup)
    assert SECRET not in str(lookup)


@pytest.fixture
def _no_leftover_threads() -> Iterator[None]:
    yield
    assert wait_until(lambda: not keyring_threads())


@pytest.mark.usefixtures("_no_leftover_threads")
def test_short_secrets_are_scrubbed_too() -> None:
    store = SecretStore(FailingWriteKeyring(), timeout=TIMEOUT)
    with pytest.raises(SecretStoreError) as caught:
        store.set("x", "abc")
    assert "'abc'" not in str(caught.value)


class SlowKeyring(MemoryKeyring):
    """Answers every call, slowly (a healthy Secret Service on a busy bus)."""

    DELAY = 0.05

    def get_password(self, service: str, username: str) -> str | None:
        time.sleep(self.DELAY)
        return super().get_password(service, username)


def test_queued_calls_on_a_slow_keyring_do_not_time_out() -> None:
    backend = SlowKeyring()
    backend.set_password("pullwatch", "x", SECRET)
    store = SecretStore(backend, timeout=TIMEOUT)
    callers = 16  # 16 x 0.05 s queued behind one another: well over the 0.3 s timeout
    results: list[SecretLookup] = []

    def read() -> None:
        results.append(store.get("x"))

    threads = [threading.Thread(target=read) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert [r.status for r in results] == [KeyringStatus.OK] * callers


# -- the worker: one call at a time, queued calls cancelled when the keyring gets stuck ----------


def test_calls_queued_behind_a_stuck_call_answer_at_once_and_never_run(
    hanging_keyring: HangingKeyring,
) -> None:
    store = SecretStore(hanging_keyring, timeout=TIMEOUT)
    first: list[SecretLookup] = []
    queued: list[tuple[KeyringStatus, str, float]] = []

    def write() -> None:
        try:
            store.set("queued", SECRET)
        except SecretStoreError as exc:
            queued.append((exc.status, str(exc), time.monotonic()))

    reader = threading.Thread(target=lambda: first.append(store.get("x")))
    reader.start()
    assert hanging_keyring.entered.wait(5)
    writer = threading.Thread(target=write)  # queued behind the hanging read
    writer.start()
    reader.join(5)
    timed_out_at = time.monotonic()
    writer.join(5)
    assert [r.status for r in first] == [KeyringStatus.TIMED_OUT]
    assert len(queued) == 1
    status, message, answered_at = queued[0]
    assert status is KeyringStatus.TIMED_OUT and "earlier call" in message
    assert answered_at - timed_out_at < IMMEDIATE  # woken when the read was marked stuck
    assert SECRET not in message
    assert hanging_keyring.calls == 1  # the queued write never reached the keyring...
    hanging_keyring.release()
    assert wait_until(lambda: store.get("x").status is KeyringStatus.OK)
    assert hanging_keyring.labels("pullwatch") == []  # ...not even after the keyring recovered
    assert wait_until(lambda: not keyring_threads())


def test_calls_run_on_a_daemon_thread_that_ends_when_idle() -> None:
    seen: list[list[threading.Thread]] = []

    class Watching(MemoryKeyring):
        def get_password(self, service: str, username: str) -> str | None:
            seen.append(keyring_threads())
            return SECRET

    store = SecretStore(Watching(), timeout=TIMEOUT)
    for _ in range(3):
        assert store.get("x").secret == SECRET
    assert all(len(threads) >= 1 and all(t.daemon for t in threads) for threads in seen)
    assert wait_until(lambda: not keyring_threads())


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_and_system_exit_propagate(interrupt: type[BaseException]) -> None:
    class Interrupted(MemoryKeyring):
        def get_password(self, service: str, username: str) -> str | None:
            raise interrupt()

    store = SecretStore(Interrupted(), timeout=TIMEOUT)
    with pytest.raises(interrupt):
        store.get("x")
    with pytest.raises(interrupt):
        store.health()
    store_ok = SecretStore(MemoryKeyring(), timeout=TIMEOUT)
    assert store_ok.get("x").status is KeyringStatus.OK  # nothing left broken elsewhere


# -- get_many: a whole round at once --------------------------------------------------------------


def unique_secret(tag: str) -> str:
    """A secret with no credential shape, so only its registration can redact it."""
    return f"plain-{tag}-{uuid.uuid4().hex}"


def test_get_many_reads_every_label_in_order(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore(memory_keyring, timeout=TIMEOUT)
    secrets = {f"id{i}": unique_secret(f"many{i}") for i in range(5)}
    for label, secret in secrets.items():
        memory_keyring.set_password("pullwatch", label, secret)  # not through the store
    asked = ["id3", "missing", "id0", "id3", "id1", "id2", "id4"]
    found = store.get_many(asked)
    assert list(found) == ["id3", "missing", "id0", "id1", "id2", "id4"]  # each once, in order
    assert found["missing"] == SecretLookup(KeyringStatus.OK, None, "")
    for label, secret in secrets.items():
        assert found[label] == SecretLookup(KeyringStatus.OK, secret, "")
        assert found[label] == store.get(label)
        assert redact(f"echo {secret}") == "echo [redacted]"  # registered, as get() does
    assert store.get_many([]) == {}
    assert store.health().ok


def test_get_many_registers_secrets_for_redaction_itself(memory_keyring: MemoryKeyring) -> None:
    secret = unique_secret("registered")
    memory_keyring.set_password("pullwatch", "ci", secret)
    assert redact(secret) == secret  # nothing has read it yet
    found = SecretStore(memory_keyring, timeout=TIMEOUT).get_many(["ci"])
    assert found["ci"].secret == secret
    assert redact(f"log line {secret}") == "log line [redacted]"
    assert secret not in repr(found)


def test_get_many_no_backend_answers_every_label(no_backend_keyring: KeyringBackend) -> None:
    store = SecretStore(no_backend_keyring, timeout=TIMEOUT)
    found = store.get_many(["a", "b"])
    assert set(found) == {"a", "b"}
    for lookup in found.values():
        assert (lookup.status, lookup.secret) == (KeyringStatus.NO_BACKEND, None)
        assert "dbus-run-session" in lookup.message
    assert store.health().status is KeyringStatus.NO_BACKEND


def test_get_many_locked_then_unlocked(locked_keyring: LockedKeyring) -> None:
    store = SecretStore(locked_keyring, timeout=TIMEOUT)
    found = store.get_many(["a", "b"])
    for lookup in found.values():
        assert (lookup.status, lookup.secret) == (KeyringStatus.LOCKED, None)
        assert "gnome-keyring-daemon --unlock" in lookup.message
        assert lookup.message == store.get("a").message  # the same words as a single read
    assert store.health().status is KeyringStatus.LOCKED
    locked_keyring.locked = False
    locked_keyring.set_password("pullwatch", "a", SECRET)
    found = store.get_many(["a", "b"])
    assert (found["a"].secret, found["b"].secret) == (SECRET, None)
    assert store.health().ok


def test_get_many_on_a_hanging_keyring_times_out_once(hanging_keyring: HangingKeyring) -> None:
    store = SecretStore(hanging_keyring, timeout=TIMEOUT)
    labels = [f"id{i}" for i in range(20)]
    started = time.monotonic()
    found = store.get_many(labels)
    elapsed = time.monotonic() - started
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK  # one timeout, not one per label
    assert all(lookup.status is KeyringStatus.TIMED_OUT for lookup in found.values())
    assert f"did not answer within {TIMEOUT:g} s" in found["id0"].message
    assert all("earlier call" in found[label].message for label in labels[1:])
    assert hanging_keyring.calls == 1
    assert len(keyring_threads()) == 1
    started = time.monotonic()
    again = store.get_many(labels)  # still stuck: answered at once
    assert time.monotonic() - started < IMMEDIATE
    assert all(lookup.status is KeyringStatus.TIMED_OUT for lookup in again.values())
    hanging_keyring.release()
    hanging_keyring.set_password("pullwatch", "id7", SECRET)
    assert wait_until(lambda: store.get_many(labels)["id7"].secret == SECRET)
    assert wait_until(lambda: not keyring_threads())


def test_get_many_plaintext_refused(plaintext_keyring: PlaintextKeyring) -> None:
    plaintext_keyring.set_password("pullwatch", "x", SECRET)
    found = SecretStore(plaintext_keyring, timeout=TIMEOUT, allow_plaintext=False).get_many(["x"])
    assert (found["x"].status, found["x"].secret) == (KeyringStatus.REFUSED, None)
    assert ENV_ALLOW_PLAINTEXT in found["x"].message
    allowed = SecretStore(plaintext_keyring, timeout=TIMEOUT, allow_plaintext=True)
    assert allowed.get_many(["x"])["x"].secret == SECRET


def test_get_many_errors_are_per_label_and_never_leak() -> None:
    class Picky(MemoryKeyring):
        def get_password(self, service: str, username: str) -> str | None:
            if username == "bad":
                raise OSError(f"cannot read {SECRET}\nsecond line")
            return super().get_password(service, username)

    backend = Picky()
    backend.set_password("pullwatch", "good", SECRET)
    found = SecretStore(backend, timeout=TIMEOUT).get_many(["good", "bad"])
    assert found["good"].secret == SECRET
    assert found["bad"].status is KeyringStatus.ERROR
    assert "OSError: cannot read" in found["bad"].message and "\n" not in found["bad"].message
    assert SECRET not in found["bad"].message and SECRET not in repr(found)


class OverlapCounting(MemoryKeyring):
    """Remembers how many of its calls ever ran at once (a backend that cannot take two)."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most = 0
        self.reads = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        self.reads += 1
        time.sleep(0.001)
        self.in_flight -= 1
        return super().get_password(service, username)


def test_get_many_never_overlaps_calls_into_the_backend() -> None:
    backend = OverlapCounting()
    labels = [f"id{i}" for i in range(30)]
    for label in labels:
        backend.set_password("pullwatch", label, f"secret-of-{label}")
    store = SecretStore(backend, timeout=TIMEOUT)
    results: list[dict[str, SecretLookup]] = []
    singles: list[SecretLookup] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.get_many(labels))) for _ in range(4)
    ] + [threading.Thread(target=lambda: singles.append(store.get("id5"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 4 and len(singles) == 8
    for found in results:
        assert all(found[label].secret == f"secret-of-{label}" for label in labels)
    assert all(lookup.secret == "secret-of-id5" for lookup in singles)
    assert backend.most == 1  # one call at a time, however many callers
    assert backend.reads == 4 * 30 + 8  # one read per label asked
