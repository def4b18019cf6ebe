"""The identity list in a TOML file; their secrets in the OS keyring through `SecretStore`.

The file lists who we check as and a few settings; it never holds a secret. Every change is a
read-modify-write under an exclusive `flock` on a lock file, re-reading the file inside the lock,
so two processes editing at once never lose an edit. Edits go through `codec`, which changes the
text with tomlkit, so the user's comments and layout are kept. Writes are atomic (a 0600 temp
file in the same directory, fsync, rename, fsync of the directory); a symlinked config is
written through the link. A corrupt or unreadable file is reported as `ConfigError` naming the
file and line, and never overwritten.

Config and keyring are kept consistent: `add` writes the secret first and takes it back if the
config write fails; `remove` and a renaming `update` delete the old keyring entry last, and when
that fails the change stands and the returned `Config.warning` says the entry may remain.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pullwatch.identities import codec
from pullwatch.identities.codec import Document, default_document
from pullwatch.identities.model import (
    DEFAULT_LABEL,
    FORMAT_VERSION,
    SETTING_ORDER,
    SETTING_RULES,
    Config,
    ConfigError,
    Identity,
    IdentityError,
    Settings,
    check_change,
    first_problem,
    validate_identity,
    validate_label,
    validate_secret,
    validate_username,
)
from pullwatch.identities.secrets import (
    KeyringHealth,
    KeyringStatus,
    SecretLookup,
    SecretStore,
    SecretStoreError,
)
from pullwatch.paths import ensure_private_dir

__all__ = [
    "DEFAULT_LABEL",
    "FORMAT_VERSION",
    "Config",
    "ConfigError",
    "Identity",
    "IdentityError",
    "IdentityStore",
    "Settings",
    "validate_identity",
    "validate_label",
    "validate_secret",
    "validate_username",
]

LOCK_TIMEOUT = 10.0  # seconds to wait for another pullwatch to finish its edit


class IdentityStore:
    """Reads and edits the identity list; keeps the keyring in step with it."""

    def __init__(
        self,
        path: Path,
        secrets: SecretStore,
        lock_path: Path | None = None,
        *,
        docker_hub: bool | None = None,
    ) -> None:
        self.path = Path(path)
        self.secrets = secrets
        self.lock_path = (
            Path(lock_path) if lock_path is not None else self.path.parent / ".config.lock"
        )
        # Which username rule edits follow: Docker Hub's (True), another registry's (False),
        # or only what any config file may hold (None). The runtime sets it from the registry.
        self.docker_hub = docker_hub

    # -- reading ---------------------------------------------------------------------------

    def load(self) -> Config:
        """The config; no file: one anonymous identity, default settings (nothing written)."""
        return self._config(self._read())

    def secret_for(self, identity: Identity) -> SecretLookup:
        """The secret for `identity`; anonymous needs none (no keyring call). Never raises."""
        if identity.anonymous:
            return SecretLookup(KeyringStatus.OK, None, "")
        return self.secrets.get(identity.label)

    def secrets_for(self, identities: Sequence[Identity]) -> dict[str, SecretLookup]:
        """The secrets of many identities by label, in one keyring batch. Never raises."""
        found = self.secrets.get_many(i.label for i in identities if not i.anonymous)
        for identity in identities:
            if identity.anonymous:
                found[identity.label] = SecretLookup(KeyringStatus.OK, None, "")
        return found

    # -- changes ---------------------------------------------------------------------------

    def add(self, identity: Identity, secret: str | None = None) -> Config:
        """Add `identity`; a username needs a secret, which goes to the keyring first."""
        self._validate(identity, secret, existing=None)
        with self._locked():
            text, document = self._read_text()
            self._check_free(document, identity.label)
            defaults = () if document.exists else document.identities
            edited = codec.edit_add(text, identity, defaults=defaults)
            if secret is None:
                return self._write(edited)
            self.secrets.set(identity.label, secret)  # SecretStoreError: config untouched
            try:
                return self._write(edited)
            except BaseException as exc:
                raise self._rolled_back(
                    exc, [lambda: self.secrets.delete(identity.label)]
                ) from None

    def update(self, label: str, identity: Identity, secret: str | None = None) -> Config:
        """Replace identity `label` with `identity` (may rename: the secret moves along).

        `secret` None keeps the stored one. Turning an identity anonymous deletes its secret.
        """
        with self._locked():
            text, document = self._read_text()
            config = self._config(document)
            old = config.get(label)
            if old is None:
                raise IdentityError(f"no identity {label!r}")
            self._validate(identity, secret, existing=old)
            renamed = identity.label != old.label
            if renamed and identity.label.casefold() != old.label.casefold():
                self._check_free(document, identity.label)
            if not identity.anonymous and secret is None and old.anonymous:
                raise IdentityError(
                    f"identity {identity.label!r} gets a username, so it needs a secret "
                    "(a personal access token)"
                )
            defaults = () if document.exists else document.identities
            edited = codec.edit_update(text, old.label, identity, defaults=defaults)
            touches_keyring = not old.anonymous and (
                renamed or identity.anonymous or secret is not None
            )
            previous = self._read_secret(old.label) if touches_keyring else None
            new_secret = (
                None if identity.anonymous else (secret if secret is not None else previous)
            )
            writes_new = new_secret is not None and (renamed or secret is not None)
            # A case-only rename: on a case-insensitive keyring both labels are one entry, so
            # delete the old one before writing the new one rather than after.
            delete_first = (
                renamed
                and previous is not None
                and not identity.anonymous
                and (identity.label.casefold() == old.label.casefold())
            )
            delete_after = previous is not None and (
                identity.anonymous or (renamed and not delete_first)
            )

            undo: list[Callable[[], None]] = []

            def put_back(value: str | None = previous) -> None:
                if value is not None:
                    self.secrets.set(old.label, value)

            if delete_first:
                self.secrets.delete(old.label)
                undo.append(put_back)
            if writes_new and new_secret is not None:
                try:
                    self.secrets.set(identity.label, new_secret)
                except SecretStoreError as exc:
                    raise self._rolled_back(exc, undo) from None
                if renamed:
                    undo.insert(0, lambda: self.secrets.delete(identity.label))
                elif previous is not None:
                    undo.insert(0, put_back)
                else:
                    undo.insert(0, lambda: self.secrets.delete(old.label))
            try:
                written = self._write(edited)
            except BaseException as exc:
                raise self._rolled_back(exc, undo) from None
            if delete_after:
                return self._delete_secret_after(written, old.label, "updated")
            return written

    def remove(self, label: str) -> Config:
        """Remove identity `label`, then its keyring entry.

        If the keyring entry cannot be deleted the identity is still removed and the returned
        Config's `warning` says the entry may remain and how to delete it.
        """
        with self._locked():
            text, document = self._read_text()
            old = self._config(document).get(label)
            if old is None:
                raise IdentityError(f"no identity {label!r}")
            defaults = () if document.exists else document.identities
            written = self._write(codec.edit_remove(text, old.label, defaults=defaults))
            if old.anonymous:
                return written
            return self._delete_secret_after(written, old.label, "removed")

    def update_settings(self, **changes: Any) -> Config:
        """Change settings; a value of None unsets the key (its default applies again)."""
        for key, value in changes.items():
            rule = SETTING_RULES.get(key)
            if rule is None:
                raise IdentityError(f"unknown setting {key!r} (known: {', '.join(SETTING_ORDER)})")
            if value is not None:
                problem = rule(value)
                if problem:
                    raise IdentityError(f"setting {key} {problem}")
        with self._locked():
            text, document = self._read_text()
            if not document.exists:  # the first write keeps the implicit anonymous identity
                text = codec.edit_add(text, document.identities[0]) if document.identities else text
            return self._write(codec.edit_settings(text, changes))

    # -- helpers ---------------------------------------------------------------------------

    def _config(self, document: Document) -> Config:
        return Config(document.identities, document.settings, self.path, document.exists)

    def _validate(
        self, identity: Identity, secret: str | None, *, existing: Identity | None
    ) -> None:
        """Raise IdentityError for the first problem (the form shows them all, by field)."""
        if identity.anonymous and secret is not None:
            raise IdentityError(
                f"identity {identity.label!r} is anonymous (no username), so it takes no secret"
            )
        errors = check_change(identity, secret, existing=existing, docker_hub=self.docker_hub)
        problem = first_problem(errors)
        if problem:
            raise IdentityError(problem)

    def _check_free(self, document: Document, label: str) -> None:
        folded = label.casefold()
        for identity in document.identities:
            if identity.label.casefold() == folded:
                raise IdentityError(
                    f"an identity labelled {identity.label!r} already exists "
                    "(labels are case-insensitive)"
                )

    def _read_secret(self, label: str) -> str | None:
        lookup = self.secrets.get(label)
        if lookup.status is not KeyringStatus.OK:
            health = KeyringHealth(lookup.status, self.secrets.backend_name, lookup.message)
            raise SecretStoreError(health)
        return lookup.secret

    def _delete_secret_after(self, written: Config, label: str, done: str) -> Config:
        try:
            self.secrets.delete(label)
        except SecretStoreError as exc:
            warning = (
                f"identity {label!r} {done}, but its keyring entry may remain ({exc}); "
                f"delete it later with `keyring del {SecretStore.SERVICE} {label}`"
            )
            return dataclasses.replace(written, warning=warning)
        return written

    def _rolled_back(self, exc: BaseException, undo: list[Callable[[], None]]) -> BaseException:
        """Run the undo steps (newest first); return the exception to raise, noting leftovers."""
        failures: list[str] = []
        for step in undo:
            try:
                step()
            except SecretStoreError as undo_exc:
                failures.append(str(undo_exc))
        if not failures or not isinstance(exc, ConfigError | SecretStoreError):
            return exc
        note = f"{exc}; the keyring could not be put back as it was ({failures[0]})"
        if isinstance(exc, SecretStoreError):
            return SecretStoreError(dataclasses.replace(exc.health, message=note))
        return ConfigError(note)

    def _read(self) -> Document:
        return self._read_text()[1]

    def _read_text(self) -> tuple[str, Document]:
        """The file's text and what it says; no file: empty text, one anonymous identity."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return "", default_document()
        except OSError as exc:
            raise ConfigError(
                f"{self.path}: cannot read the config: {exc.strerror or exc}"
            ) from None
        document = codec.parse(self.path, raw)
        return raw.decode("utf-8"), document

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the exclusive config lock (other pullwatch processes wait for it)."""
        try:
            ensure_private_dir(self.lock_path.parent)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"{self.lock_path}: cannot open the lock file: {exc.strerror or exc}"
            ) from None
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ConfigError(
                            f"{self.lock_path}: another pullwatch has been editing the config "
                            f"for {LOCK_TIMEOUT:g} s; try again"
                        ) from None
                    time.sleep(0.01)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _write(self, text: str) -> Config:
        """Write `text` atomically (through a symlink to its target); what the file now says."""
        written = codec.parse(self.path, text.encode("utf-8"))  # never write what we cannot read
        target = self._target()
        directory = target.parent
        temp: Path | None = None
        try:
            ensure_private_dir(directory)
            fd, name = tempfile.mkstemp(prefix=".config.", suffix=".tmp", dir=directory)  # 0600
            temp = Path(name)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            temp.replace(target)
            temp = None
        except OSError as exc:
            raise ConfigError(
                f"{self.path}: cannot write the config: {exc.strerror or exc}"
            ) from None
        finally:
            if temp is not None:
                temp.unlink(missing_ok=True)
        _fsync_directory(directory)
        return self._config(written)

    def _target(self) -> Path:
        """The file to replace: the config itself, or - if it is a symlink - what it points to
        (a symlinked config, kept in a dotfiles repository say, stays a symlink)."""
        if not self.path.is_symlink():
            return self.path
        try:
            return self.path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise ConfigError(
                f"{self.path} is a symlink that cannot be followed ({exc}): fix or remove it"
            ) from None


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
