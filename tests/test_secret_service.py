"""The store against a real Secret Service (gnome-keyring on a private D-Bus session): one
secret at a time, and a whole round at once with `get_many`."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService

from fixtures_keyring import PasswordCollection
from pullwatch.identities.secrets import KeyringStatus, SecretLookup, SecretStore
from pullwatch.identities.store import Identity, IdentityStore
from pullwatch.paths import Paths
from pullwatch.redact import redact

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


# -- get_many: one batch against the real daemon -----------------------------------------------

ODD_LABELS = [
    "ünïcødé-ключ-鍵",
    "emoji-🔑-label",
    "with space",
    "quote'and\"double",
    "semi;colon,comma=equals",
    "slash/back\\slash",
    "tab\tand-newline\n",
    "%s %d {} $HOME",
]


def batch_secret(label: str, i: int) -> str:
    # lengths around the AES block (15, 16, 17 bytes and more) and text beyond ASCII
    return f"s{i:02d}-{'x' * (i % 20)}-ß€{uuid.uuid4().hex[: i % 7]}"


@pytest.fixture
def store(secret_service: KeyringBackend) -> Iterator[SecretStore]:
    secrets = SecretStore(SecretService.Keyring(), timeout=5.0)
    yield secrets
    for label in secret_service_labels():
        secrets.delete(label)


def secret_service_labels() -> list[str]:
    """Every username stored under service pullwatch, on the test's keyring (any collection)."""
    import secretstorage

    with closing(secretstorage.dbus_init()) as connection:
        return [
            item.get_attributes().get("username", "")
            for item in secretstorage.search_items(connection, {"service": "pullwatch"})
        ]


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often keyring's own get_password and the batch read run (the fast path is kept)."""
    from pullwatch.identities import secret_service

    counts = {"get_password": 0, "read_secrets": 0}
    original_get = SecretService.Keyring.get_password
    original_batch = secret_service.read_secrets

    def get_password(self: SecretService.Keyring, service: str, username: str) -> str | None:
        counts["get_password"] += 1
        return original_get(self, service, username)  # type: ignore[no-any-return]

    def read_secrets(*args: Any) -> secret_service.BatchRead:
        counts["read_secrets"] += 1
        return original_batch(*args)

    monkeypatch.setattr(SecretService.Keyring, "get_password", get_password)
    monkeypatch.setattr(secret_service, "read_secrets", read_secrets)
    return counts


def test_get_many_reads_a_round_in_one_batch(
    store: SecretStore, counted_reads: dict[str, int]
) -> None:
    labels = [f"id{i:03d}" for i in range(40)] + ODD_LABELS
    secrets = {label: batch_secret(label, i) for i, label in enumerate(labels)}
    for label, secret in secrets.items():
        store.set(label, secret)
    store.set("empty", "")  # keyring stores and returns an empty secret as such
    asked = ["never-stored", *labels, "empty", "id000"]
    found = store.get_many(asked)
    assert counted_reads == {"get_password": 0, "read_secrets": 1}
    assert list(found) == asked[:-1]  # every label once, in the order given
    assert found["never-stored"] == SecretLookup(KeyringStatus.OK, None, "")
    assert found["empty"] == SecretLookup(KeyringStatus.OK, "", "")
    for label, secret in secrets.items():
        assert found[label] == SecretLookup(KeyringStatus.OK, secret, ""), label
    # exactly what one read at a time answers (keyring's own get_password)
    assert {label: store.get(label) for label in asked} == found
    assert store.health().ok


def test_get_many_registers_what_it_reads(store: SecretStore) -> None:
    secret = f"plain-batch-{uuid.uuid4().hex}"  # stored behind pullwatch's back: not registered
    SecretService.Keyring().set_password("pullwatch", "outside", secret)
    assert redact(secret) == secret
    assert store.get_many(["outside", "other"])["outside"].secret == secret
    assert redact(f"said {secret}") == "said [redacted]"


def test_get_many_only_takes_the_service_and_username_asked(store: SecretStore) -> None:
    import secretstorage

    store.set("mine", "pullwatch-secret")
    backend = SecretService.Keyring()
    backend.set_password("another-app", "mine", "not-pullwatch")  # same username elsewhere
    try:
        found = store.get_many(["mine", "another-app"])
        assert found["mine"].secret == "pullwatch-secret"
        assert found["another-app"].secret is None
    finally:
        with closing(secretstorage.dbus_init()) as connection:
            for item in secretstorage.search_items(connection, {"service": "another-app"}):
                item.delete()


@pytest.mark.parametrize("asked", [3, 30], ids=["fewer labels than items", "every label"])
def test_get_many_finds_items_as_keyring_does_either_way(
    store: SecretStore, counted_reads: dict[str, int], asked: int
) -> None:
    """Per-label searches (fewer labels than items) or every item's attributes: same answers,
    even for a label with two items (keyring takes the first its search returns)."""
    import secretstorage

    labels = [f"item{i:02d}" for i in range(30)]
    for label in labels:
        store.set(label, f"secret-{label}")
    backend = SecretService.Keyring()
    collection = backend.get_preferred_collection()
    with closing(collection.connection):  # a second item for one label, written by another tool
        collection.create_item(
            "duplicate", {"service": "pullwatch", "username": "item01", "extra": "x"}, b"other"
        )
    chosen = ["missing", *labels[:asked]]
    found = store.get_many(chosen)
    assert counted_reads["get_password"] == 0
    assert found == {label: store.get(label) for label in chosen}
    assert found["missing"].secret is None
    assert found["item01"].secret in ("secret-item01", "other")
    with closing(secretstorage.dbus_init()) as connection:
        for item in secretstorage.search_items(connection, {"extra": "x"}):
            item.delete()


def test_get_many_without_the_fast_path_gives_the_same_answers(
    store: SecretStore, counted_reads: dict[str, int]
) -> None:
    class ReadsItsOwnWay(SecretService.Keyring):
        """A subclass with its own get_password is read through it, one label at a time."""

        def get_password(self, service: str, username: str) -> str | None:
            return super().get_password(service, username)  # type: ignore[no-any-return]

    labels = ["a", "b", "ünï"]
    for label in labels:
        store.set(label, f"secret-{label}")
    own = SecretStore(ReadsItsOwnWay(), timeout=5.0)
    found = own.get_many([*labels, "missing"])
    assert counted_reads == {"get_password": 4, "read_secrets": 0}
    assert found == store.get_many([*labels, "missing"])
    assert [found[label].secret for label in labels] == ["secret-a", "secret-b", "secret-ünï"]


def test_get_many_falls_back_to_one_at_a_time_when_the_batch_breaks(
    store: SecretStore, counted_reads: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pullwatch.identities import secret_service

    for label in ("a", "b", "c"):
        store.set(label, f"secret-{label}")

    def broken(*args: Any) -> None:
        raise RuntimeError("an unexpected reply")

    monkeypatch.setattr(secret_service, "_pipelined", broken)
    found = store.get_many(["a", "b", "c", "missing"])
    assert counted_reads == {"get_password": 4, "read_secrets": 1}
    assert [found[label].secret for label in ("a", "b", "c", "missing")] == [
        "secret-a",
        "secret-b",
        "secret-c",
        None,
    ]
    assert all(lookup.status is KeyringStatus.OK for lookup in found.values())

    # a secret the batch cannot decode is read on its own; the others come from the batch
    monkeypatch.undo()
    counts = {"get_password": 0}
    original_get = SecretService.Keyring.get_password
    original_decode = secret_service._decode

    def get_password(self: SecretService.Keyring, service: str, username: str) -> str | None:
        counts["get_password"] += 1
        return original_get(self, service, username)  # type: ignore[no-any-return]

    def decode(session: Any, answer: Any) -> str | None:
        text = original_decode(session, answer)
        return None if text == "secret-b" else text

    monkeypatch.setattr(SecretService.Keyring, "get_password", get_password)
    monkeypatch.setattr(secret_service, "_decode", decode)
    found = store.get_many(["a", "b", "c"])
    assert counts == {"get_password": 1}
    assert [found[label].secret for label in "abc"] == ["secret-a", "secret-b", "secret-c"]


def test_get_many_reads_the_preferred_collection_as_keyring_does(
    store: SecretStore,
    password_collection: PasswordCollection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.set("shared", "in-the-usual-collection")
    monkeypatch.setenv("KEYRING_PROPERTY_PREFERRED_COLLECTION", password_collection.path)
    elsewhere = SecretStore(SecretService.Keyring(), timeout=5.0)  # the property from the env
    elsewhere.set("shared", "in-the-other-collection")
    elsewhere.set("only-there", "only-in-the-other")
    found = elsewhere.get_many(["shared", "only-there"])
    assert found["shared"].secret == "in-the-other-collection"
    assert found["only-there"].secret == "only-in-the-other"
    assert found == {label: elsewhere.get(label) for label in found}
    usual = store.get_many(["shared", "only-there"])
    assert (usual["shared"].secret, usual["only-there"].secret) == ("in-the-usual-collection", None)
    # the backend's own property wins too, as keyring's get_password honours it
    monkeypatch.delenv("KEYRING_PROPERTY_PREFERRED_COLLECTION")
    backend = SecretService.Keyring()
    backend.preferred_collection = password_collection.path  # type: ignore[attr-defined]
    assert SecretStore(backend, timeout=5.0).get_many(["shared"])["shared"].secret == (
        "in-the-other-collection"
    )


def test_get_many_on_a_locked_collection_is_locked(
    password_collection: PasswordCollection,
) -> None:
    backend = SecretService.Keyring()
    backend.preferred_collection = password_collection.path  # type: ignore[attr-defined]
    store = SecretStore(backend, timeout=5.0)
    store.set("ci", "locked-away-secret")
    password_collection.lock()
    assert password_collection.is_locked()

    found = store.get_many(["ci", "missing"])
    single = store.get("ci")
    assert single.status is KeyringStatus.LOCKED
    for lookup in found.values():
        assert (lookup.status, lookup.secret) == (KeyringStatus.LOCKED, None)
        assert lookup.message == single.message  # the same words as one read
    assert "Failed to unlock the collection!" in single.message
    assert "gnome-keyring-daemon --unlock" in single.message
    assert store.health().status is KeyringStatus.LOCKED

    password_collection.unlock()
    store.recheck()
    found = store.get_many(["ci", "missing"])
    assert (found["ci"].secret, found["missing"].secret) == ("locked-away-secret", None)
    assert store.health().ok


def test_get_many_with_items_that_stay_locked(password_collection: PasswordCollection) -> None:
    import secretstorage

    class SkipsTheCollectionUnlock(SecretService.Keyring):
        """Hands over the collection locked, so the batch has to ask for the items itself."""

        def get_preferred_collection(self) -> Any:
            return secretstorage.Collection(secretstorage.dbus_init(), self.preferred_collection)

    writer = SecretService.Keyring()
    writer.preferred_collection = password_collection.path  # type: ignore[attr-defined]
    SecretStore(writer, timeout=5.0).set("ci", "item-secret")
    password_collection.lock()
    backend = SkipsTheCollectionUnlock()
    backend.preferred_collection = password_collection.path  # type: ignore[attr-defined]
    store = SecretStore(backend, timeout=5.0)
    found = store.get_many(["ci", "missing"])
    assert (found["ci"].status, found["ci"].secret) == (KeyringStatus.LOCKED, None)
    assert "Failed to unlock the item!" in found["ci"].message
    assert "gnome-keyring-daemon --unlock" in found["ci"].message
    assert found["missing"] == SecretLookup(KeyringStatus.OK, None, "")  # no item: nothing locked
    assert store.health().status is KeyringStatus.LOCKED
    password_collection.unlock()
    assert store.get_many(["ci"])["ci"].secret == "item-secret"


QUICK_CHOICE = """
import sys, keyring
from pullwatch.identities.secrets import SecretStore, auto_backend, backend_name, choose_backend
quick = choose_backend(False)
left_out = [m for m in ("keyrings.cryptfile", "keyring.backends.macOS", "keyring.backends.Windows")
            if m in sys.modules]
store = SecretStore(timeout=5.0)
status = store.health().status.value
full = auto_backend(keyring.get_keyring(), False)  # keyring's own detection, every backend
print(backend_name(quick), backend_name(full), store.backend_name, status, left_out)
"""


def test_the_quick_backend_choice_is_keyrings_own(
    secret_service: KeyringBackend, tmp_path: Path
) -> None:
    """keyring's choice without importing the backends it would set aside (macOS', Windows',
    keyrings.cryptfile's): the same Secret Service backend keyring's full detection finds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON_KEYRING")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")  # no keyringrc.cfg
    done = subprocess.run(
        [sys.executable, "-c", QUICK_CHOICE], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    quick, full, used, status, left_out = done.stdout.split(maxsplit=4)
    assert quick == full == used == "keyring.backends.SecretService.Keyring"
    assert status == "ok"
    assert left_out.strip() == "[]"
