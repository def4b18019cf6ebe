"""Identities in a TOML file; their secrets in the OS keyring through `SecretStore`.

The file lists who we check as and a few settings; it never holds a secret. Every change is a
read-modify-write under an exclusive `flock` on a lock file, re-reading the file inside the lock,
so two processes editing at once never lose an edit. Writes are atomic (a 0600 temp file in the
same directory, fsync, rename, fsync of the directory). A corrupt or unreadable file is reported
as `ConfigError` naming the file and line, and never overwritten.

Config and keyring are kept consistent: `add` writes the secret first and takes it back if the
config write fails; `remove` and a renaming `update` delete the old keyring entry last, and when
that fails the change stands and the returned `Config.warning` says the entry may remain.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

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

FORMAT_VERSION = 1
DEFAULT_LABEL = "anonymous"
LOCK_TIMEOUT = 10.0  # seconds to wait for another pullwatch to finish its edit

LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
# Docker IDs are lower-case letters and digits today; older ones and other registries are looser.
DOCKER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")

HEADER = (
    "# pullwatch configuration: the identities to check and a few settings.\n"
    "# Secrets are never stored in this file: they live in the OS keyring under the service\n"
    '# "pullwatch", one entry per identity label. `pullwatch identity add|remove` edits this\n'
    "# file; hand edits are fine, but comments other than this header are not kept.\n"
)


class ConfigError(Exception):
    """The config file cannot be used: one line, "<path> line N: <what is wrong>"."""


class IdentityError(ValueError):
    """A requested change is not valid: one line."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who we check as: anonymous (no username), or a Docker ID whose secret is in the keyring."""

    label: str
    username: str | None = None
    warn_below: int | None = None

    @property
    def anonymous(self) -> bool:
        return self.username is None


@dataclass(frozen=True, slots=True)
class Settings:
    interval: int = 60  # seconds between rounds, >= 10
    registry: str | None = None
    repository: str | None = None
    warn_below: int | None = None
    concurrency: int = 32  # 1..256
    bell: bool = True
    retention_days: int = 7  # >= 1
    keyring: str | None = None  # "system" (default) or "cryptfile" (the encrypted-file opt-in)


@dataclass(frozen=True, slots=True)
class Config:
    """The identities and settings as loaded; `exists` is False when no file was found.

    `warning` is set by a write that succeeded but left something behind (a keyring entry that
    could not be deleted); it is None on a plain load.
    """

    identities: tuple[Identity, ...]
    settings: Settings
    path: Path
    exists: bool
    warning: str | None = None

    def get(self, label: str) -> Identity | None:
        """The identity with this label (exact match first, then case-insensitive)."""
        for identity in self.identities:
            if identity.label == label:
                return identity
        folded = label.casefold()
        for identity in self.identities:
            if identity.label.casefold() == folded:
                return identity
        return None

    @property
    def labels(self) -> list[str]:
        return [identity.label for identity in self.identities]


# -- validation -------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_label(value: object) -> str | None:
    if not isinstance(value, str):
        return "label must be a string"
    if not LABEL_RE.match(value):
        return (
            f"invalid label {value[:70]!r}: use 1-64 letters, digits and . _ @ + - "
            "(starting with a letter or digit)"
        )
    return None


def _check_username(value: object) -> str | None:
    if not isinstance(value, str):
        return "username must be a string"
    if "@" in value:
        return (
            "username looks like an e-mail address: Docker Hub wants the Docker ID "
            "(the username shown on hub.docker.com), not the e-mail address"
        )
    if not DOCKER_ID_RE.match(value):
        return "invalid username: a Docker ID has only letters, digits, '.', '_' and '-'"
    return None


def _check_warn_below(value: object, name: str = "warn_below") -> str | None:
    if not _is_int(value) or value < 0:  # type: ignore[operator]
        return f"{name} must be a whole number >= 0"
    return None


def validate_label(label: object) -> None:
    """Raise IdentityError unless `label` is a valid identity label."""
    problem = _check_label(label)
    if problem:
        raise IdentityError(problem)


def validate_username(username: object) -> None:
    """Raise IdentityError unless `username` is a Docker ID (not an e-mail address)."""
    problem = _check_username(username)
    if problem:
        raise IdentityError(problem)


def validate_identity(identity: Identity) -> None:
    """Raise IdentityError if any field of `identity` is invalid."""
    validate_label(identity.label)
    if identity.username is not None:
        validate_username(identity.username)
    if identity.warn_below is not None:
        problem = _check_warn_below(identity.warn_below)
        if problem:
            raise IdentityError(problem)


def validate_secret(secret: object) -> None:
    """Raise IdentityError unless `secret` is a non-empty single line (never echoes it)."""
    if not isinstance(secret, str):
        raise IdentityError("the secret must be a string")
    if not secret:
        raise IdentityError("the secret is empty: paste the personal access token")
    if any(c in secret for c in "\r\n\x00"):
        raise IdentityError("the secret contains a line break: paste only the token itself")


def _int_rule(minimum: int, maximum: int | None = None) -> Any:
    def check(value: object) -> str | None:
        if not _is_int(value):
            return "must be a whole number"
        if value < minimum or (maximum is not None and value > maximum):  # type: ignore[operator]
            upper = f" and <= {maximum}" if maximum is not None else ""
            return f"must be >= {minimum}{upper} (got {value})"
        return None

    return check


def _str_rule(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    return None


def _bool_rule(value: object) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _keyring_rule(value: object) -> str | None:
    if value in ("system", "cryptfile"):
        return None
    return 'must be "system" or "cryptfile"'


_SETTING_RULES: dict[str, Any] = {
    "interval": _int_rule(10),
    "registry": _str_rule,
    "repository": _str_rule,
    "warn_below": _int_rule(0),
    "concurrency": _int_rule(1, 256),
    "bell": _bool_rule,
    "retention_days": _int_rule(1),
    "keyring": _keyring_rule,
}
_SETTING_ORDER = tuple(f.name for f in dataclasses.fields(Settings))
_IDENTITY_KEYS = ("label", "username", "warn_below")


# -- parsing ----------------------------------------------------------------------------------

_ARRAY_HEADER = re.compile(r"^\s*\[\[\s*([^\]]*?)\s*\]\]")
_TABLE_HEADER = re.compile(r"^\s*\[\s*([^\[\]]*?)\s*\]")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


class _Locator:
    """Best-effort line numbers for keys in the raw text (tomllib does not report them)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        # (0-based line, header name, is array-of-tables) for every table header
        self.headers: list[tuple[int, str, bool]] = []
        for number, line in enumerate(self.lines):
            match = _ARRAY_HEADER.match(line)
            if match:
                self.headers.append((number, _unquote(match.group(1)), True))
                continue
            match = _TABLE_HEADER.match(line)
            if match:
                self.headers.append((number, _unquote(match.group(1)), False))

    def _find_key(self, key: str, start: int, end: int) -> int | None:
        pattern = re.compile(
            rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*[=.]"""
        )
        for number in range(start, end):
            if pattern.match(self.lines[number]):
                return number + 1
        return None

    def _block(self, name: str, array: bool, index: int = 0) -> tuple[int, int] | None:
        seen = 0
        for position, (number, header, is_array) in enumerate(self.headers):
            if header == name and is_array == array:
                if seen == index:
                    following = self.headers[position + 1 :]
                    end = following[0][0] if following else len(self.lines)
                    return number, end
                seen += 1
        return None

    def top(self, key: str) -> int:
        first_header = self.headers[0][0] if self.headers else len(self.lines)
        found = self._find_key(key, 0, first_header)
        if found:
            return found
        for number, header, _ in self.headers:
            if header == key or header.startswith(key + "."):
                return number + 1
        return 1

    def in_table(self, table: str, key: str | None = None) -> int:
        block = self._block(table, array=False)
        if block is None:
            return self.top(table)
        if key is not None:
            found = self._find_key(key, block[0] + 1, block[1])
            if found:
                return found
        return block[0] + 1

    def in_array(self, table: str, index: int, key: str | None = None) -> int:
        block = self._block(table, array=True, index=index)
        if block is None:
            return self.top(table)
        if key is not None:
            found = self._find_key(key, block[0] + 1, block[1])
            if found:
                return found
        return block[0] + 1


def _unquote(name: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in name.split("."))


@dataclass(frozen=True, slots=True)
class _Document:
    """What a file says, plus which settings keys it set (only those are written back)."""

    identities: tuple[Identity, ...]
    settings: Settings
    settings_keys: frozenset[str] = field(default_factory=frozenset)
    exists: bool = True


def _default_document() -> _Document:
    return _Document((Identity(DEFAULT_LABEL),), Settings(), frozenset(), exists=False)


def _decode_error(path: Path, text: str, exc: Exception) -> ConfigError:
    message = " ".join(str(exc).split())
    match = _TOML_POSITION.search(message)
    if match:
        line, column = match.group(1), match.group(2)
        what = message[: match.start()]
        return ConfigError(f"{path} line {line}: invalid TOML: {what} (column {column})")
    if _TOML_AT_END.search(message):
        what = _TOML_AT_END.sub("", message)
        last = max(1, len(text.splitlines()))
        return ConfigError(f"{path} line {last}: invalid TOML: {what} (at the end of the file)")
    return ConfigError(f"{path} line 1: invalid TOML: {message or type(exc).__name__}")


def _parse(path: Path, raw: bytes) -> _Document:
    """Parse and check the file's bytes; raise ConfigError naming file and line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} line {line}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError is a ValueError
        raise _decode_error(path, text, exc) from None
    where = _Locator(text)

    def fail(line: int, what: str) -> ConfigError:
        return ConfigError(f"{path} line {line}: {what}")

    for key in data:
        if key not in ("version", "settings", "identity"):
            raise fail(
                where.top(key), f"unknown key {key[:40]!r} (known: version, settings, identity)"
            )

    version = data.get("version", FORMAT_VERSION)
    if not _is_int(version):
        raise fail(where.top("version"), "version must be a whole number")
    if version > FORMAT_VERSION:
        raise fail(
            where.top("version"),
            f"written by a newer pullwatch (format {version}); this version reads format "
            f"{FORMAT_VERSION}",
        )
    if version < 1:
        raise fail(where.top("version"), f"unknown format version {version}")

    raw_settings = data.get("settings", {})
    if not isinstance(raw_settings, dict):
        raise fail(where.top("settings"), "settings must be a table ([settings])")
    values: dict[str, Any] = {}
    for key, value in raw_settings.items():
        rule = _SETTING_RULES.get(key)
        if rule is None:
            known = ", ".join(_SETTING_ORDER)
            raise fail(
                where.in_table("settings", key),
                f"unknown setting {key[:40]!r} (known: {known})",
            )
        problem = rule(value)
        if problem:
            raise fail(where.in_table("settings", key), f"settings.{key} {problem}")
        values[key] = value
    settings = Settings(**values)

    raw_identities = data.get("identity", [])
    if not isinstance(raw_identities, list):
        raise fail(where.top("identity"), "identity must be an array of tables: write [[identity]]")
    identities: list[Identity] = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(raw_identities):
        number = index + 1
        if not isinstance(entry, dict):
            raise fail(where.top("identity"), f"identity #{number} must be a table ([[identity]])")
        for key in entry:
            if key not in _IDENTITY_KEYS:
                raise fail(
                    where.in_array("identity", index, key),
                    f"identity #{number}: unknown key {key[:40]!r} (known: label, username, "
                    "warn_below; secrets belong in the keyring)",
                )
        if "label" not in entry:
            raise fail(where.in_array("identity", index), f"identity #{number} has no label")
        checks = (
            ("label", _check_label),
            ("username", _check_username),
            ("warn_below", _check_warn_below),
        )
        for key, check in checks:
            if key in entry:
                problem = check(entry[key])
                if problem:
                    line = where.in_array("identity", index, key)
                    raise fail(line, f"identity #{number}: {problem}")
        label = entry["label"]
        folded = label.casefold()
        if folded in seen:
            raise fail(
                where.in_array("identity", index, "label"),
                f"duplicate label {label!r} (labels are case-insensitive; first: {seen[folded]!r})",
            )
        seen[folded] = label
        identities.append(Identity(label, entry.get("username"), entry.get("warn_below")))
    return _Document(tuple(identities), settings, frozenset(values), exists=True)


def _toml_value(value: object) -> str:
    """One TOML value, escaped by tomli_w."""
    return tomli_w.dumps({"v": value}).strip()[len("v = ") :]


def _render(document: _Document) -> str:
    """The file text: header, version, [settings] (only keys the user set), [[identity]]."""
    lines = [HEADER, f"version = {FORMAT_VERSION}"]
    settings = [
        (key, getattr(document.settings, key))
        for key in _SETTING_ORDER
        if key in document.settings_keys and getattr(document.settings, key) is not None
    ]
    if settings:
        lines += ["", "[settings]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in settings]
    for identity in document.identities:
        lines += ["", "[[identity]]"]
        for key in _IDENTITY_KEYS:
            value = getattr(identity, key)
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


# -- the store --------------------------------------------------------------------------------


class IdentityStore:
    """Reads and edits the identity list; keeps the keyring in step with it."""

    def __init__(self, path: Path, secrets: SecretStore, lock_path: Path | None = None) -> None:
        self.path = Path(path)
        self.secrets = secrets
        self.lock_path = (
            Path(lock_path) if lock_path is not None else self.path.parent / ".config.lock"
        )

    # -- reading ---------------------------------------------------------------------------

    def load(self) -> Config:
        """The config; no file: one anonymous identity, default settings (nothing written)."""
        return self._config(self._read())

    def secret_for(self, identity: Identity) -> SecretLookup:
        """The secret for `identity`; anonymous needs none (no keyring call). Never raises."""
        if identity.anonymous:
            return SecretLookup(KeyringStatus.OK, None, "")
        return self.secrets.get(identity.label)

    # -- changes ---------------------------------------------------------------------------

    def add(self, identity: Identity, secret: str | None = None) -> Config:
        """Add `identity`; a username needs a secret, which goes to the keyring first."""
        validate_identity(identity)
        self._check_secret(identity, secret, required=True)
        with self._locked():
            document = self._read()
            self._check_free(document, identity.label)
            updated = dataclasses.replace(
                document, identities=(*document.identities, identity), exists=True
            )
            if secret is None:
                return self._write(updated)
            self.secrets.set(identity.label, secret)  # SecretStoreError: config untouched
            try:
                return self._write(updated)
            except BaseException as exc:
                raise self._rolled_back(
                    exc, [lambda: self.secrets.delete(identity.label)]
                ) from None

    def update(self, label: str, identity: Identity, secret: str | None = None) -> Config:
        """Replace identity `label` with `identity` (may rename: the secret moves along).

        `secret` None keeps the stored one. Turning an identity anonymous deletes its secret.
        """
        validate_identity(identity)
        self._check_secret(identity, secret, required=False)
        with self._locked():
            document = self._read()
            config = self._config(document)
            old = config.get(label)
            if old is None:
                raise IdentityError(f"no identity {label!r}")
            renamed = identity.label != old.label
            if renamed and identity.label.casefold() != old.label.casefold():
                self._check_free(document, identity.label)
            if not identity.anonymous and secret is None and old.anonymous:
                raise IdentityError(
                    f"identity {identity.label!r} gets a username, so it needs a secret "
                    "(a personal access token)"
                )
            updated = dataclasses.replace(
                document,
                identities=tuple(identity if i is old else i for i in document.identities),
                exists=True,
            )
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

            undo: list[Any] = []
            if delete_first:
                self.secrets.delete(old.label)
                undo.append(lambda: self.secrets.set(old.label, previous))  # type: ignore[arg-type]
            if writes_new:
                try:
                    self.secrets.set(identity.label, new_secret)  # type: ignore[arg-type]
                except SecretStoreError as exc:
                    raise self._rolled_back(exc, undo) from None
                if renamed:
                    undo.insert(0, lambda: self.secrets.delete(identity.label))
                elif previous is not None:
                    undo.insert(0, lambda: self.secrets.set(old.label, previous))  # type: ignore[arg-type]
                else:
                    undo.insert(0, lambda: self.secrets.delete(old.label))
            try:
                written = self._write(updated)
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
            document = self._read()
            old = self._config(document).get(label)
            if old is None:
                raise IdentityError(f"no identity {label!r}")
            updated = dataclasses.replace(
                document,
                identities=tuple(i for i in document.identities if i is not old),
                exists=True,
            )
            written = self._write(updated)
            if old.anonymous:
                return written
            return self._delete_secret_after(written, old.label, "removed")

    def update_settings(self, **changes: Any) -> Config:
        """Change settings; a value of None unsets the key (its default applies again)."""
        for key, value in changes.items():
            rule = _SETTING_RULES.get(key)
            if rule is None:
                raise IdentityError(f"unknown setting {key!r} (known: {', '.join(_SETTING_ORDER)})")
            if value is not None:
                problem = rule(value)
                if problem:
                    raise IdentityError(f"setting {key} {problem}")
        with self._locked():
            document = self._read()
            defaults = Settings()
            values = {
                key: getattr(defaults, key) if value is None else value
                for key, value in changes.items()
            }
            keys = (document.settings_keys | changes.keys()) - {
                key for key, value in changes.items() if value is None
            }
            updated = dataclasses.replace(
                document,
                settings=dataclasses.replace(document.settings, **values),
                settings_keys=frozenset(keys),
                exists=True,
            )
            return self._write(updated)

    # -- helpers ---------------------------------------------------------------------------

    def _config(self, document: _Document) -> Config:
        return Config(document.identities, document.settings, self.path, document.exists)

    def _check_secret(self, identity: Identity, secret: str | None, *, required: bool) -> None:
        if identity.anonymous:
            if secret is not None:
                raise IdentityError(
                    f"identity {identity.label!r} is anonymous (no username), so it takes no secret"
                )
            return
        if secret is None:
            if required:
                raise IdentityError(
                    f"identity {identity.label!r} has a username, so it needs a secret "
                    "(a personal access token)"
                )
            return
        validate_secret(secret)

    def _check_free(self, document: _Document, label: str) -> None:
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

    def _rolled_back(self, exc: BaseException, undo: list[Any]) -> BaseException:
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

    def _read(self) -> _Document:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return _default_document()
        except OSError as exc:
            raise ConfigError(
                f"{self.path}: cannot read the config: {exc.strerror or exc}"
            ) from None
        return _parse(self.path, raw)

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

    def _write(self, document: _Document) -> Config:
        """Write `document` atomically; return what the file now says."""
        text = _render(document)
        written = _parse(self.path, text.encode("utf-8"))  # never write what we cannot read
        directory = self.path.parent
        temp: Path | None = None
        try:
            ensure_private_dir(directory)
            fd, name = tempfile.mkstemp(prefix=".config.", suffix=".tmp", dir=directory)  # 0600
            temp = Path(name)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            temp.replace(self.path)
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
