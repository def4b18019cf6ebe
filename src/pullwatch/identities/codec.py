"""The config file's text: read with tomllib (every problem named by file and line), edited
with tomlkit so the user's comments and layout survive every change pullwatch makes.

`parse()` checks a whole file and returns a `Document`; the `edit_*` functions change the text
of a file in place (one identity, or some settings) and return the new text, which the store
parses again before writing - pullwatch never writes what it could not read back.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pullwatch.identities.model import (
    DEFAULT_LABEL,
    FORMAT_VERSION,
    IDENTITY_KEYS,
    SETTING_ORDER,
    SETTING_RULES,
    ConfigError,
    Identity,
    Settings,
    check_label,
    check_username,
    check_warn_below,
    is_int,
    settings_from,
)

HEADER = (
    "# pullwatch configuration: the identities to check and a few settings.\n"
    "# Secrets are never stored in this file: they live in the OS keyring under the service\n"
    '# "pullwatch", one entry per identity label. `pullwatch identity add|remove` edits this\n'
    "# file and keeps your comments; hand edits are fine.\n"
)

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
class Document:
    """What a file says, plus which settings keys it set (only those are written back)."""

    identities: tuple[Identity, ...]
    settings: Settings
    settings_keys: frozenset[str] = field(default_factory=frozenset)
    exists: bool = True


def default_document() -> Document:
    return Document((Identity(DEFAULT_LABEL),), Settings(), frozenset(), exists=False)


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


def parse(path: Path, raw: bytes) -> Document:
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
    if not is_int(version):
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
        rule = SETTING_RULES.get(key)
        if rule is None:
            known = ", ".join(SETTING_ORDER)
            raise fail(
                where.in_table("settings", key),
                f"unknown setting {key[:40]!r} (known: {known})",
            )
        problem = rule(value)
        if problem:
            raise fail(where.in_table("settings", key), f"settings.{key} {problem}")
        values[key] = value
    settings = settings_from(values)

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
            if key not in IDENTITY_KEYS:
                raise fail(
                    where.in_array("identity", index, key),
                    f"identity #{number}: unknown key {key[:40]!r} (known: label, username, "
                    "warn_below; secrets belong in the keyring)",
                )
        if "label" not in entry:
            raise fail(where.in_array("identity", index), f"identity #{number} has no label")
        checks = (
            ("label", check_label),
            ("username", lambda value: check_username(value, docker_hub=None)),
            ("warn_below", check_warn_below),
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
    return Document(tuple(identities), settings, frozenset(values), exists=True)


# -- edits (tomlkit: comments, order and layout are kept) ----------------------------------------


def _load(text: str) -> Any:
    import tomlkit

    if not text.strip():
        doc = tomlkit.parse(HEADER)
        doc.add("version", FORMAT_VERSION)
        return doc
    return tomlkit.parse(text)


def _identity_table(identity: Identity) -> Any:
    import tomlkit

    table = tomlkit.table()
    for key in IDENTITY_KEYS:
        value = getattr(identity, key)
        if value is not None:
            table.add(key, value)
    return table


def _identities(doc: Any) -> Any:
    """The document's `[[identity]]` array of tables (made one from an inline array)."""
    import tomlkit
    from tomlkit.items import AoT

    if "identity" not in doc:
        doc.add(tomlkit.nl())
        doc.add("identity", tomlkit.aot())
    entries = doc["identity"]
    if not isinstance(entries, AoT):  # `identity = []` or `identity = [{...}]`: same meaning
        tables = tomlkit.aot()
        for entry in entries:
            table = tomlkit.table()
            for key, value in dict(entry).items():
                table.add(key, value)
            tables.append(table)
        del doc["identity"]
        doc.add("identity", tables)
        entries = doc["identity"]
    return entries


def _find(entries: Any, label: str) -> int:
    folded = label.casefold()
    for index, entry in enumerate(entries):
        if str(entry.get("label", "")).casefold() == folded:
            return index
    raise ConfigError(f"no identity {label!r} in the file")


def edit_add(text: str, identity: Identity, *, defaults: tuple[Identity, ...] = ()) -> str:
    """`text` with `identity` appended. `defaults` are written first when the file is new
    (so the implicit anonymous identity of a missing file is not lost by the first add)."""
    doc = _load(text)
    entries = _identities(doc)
    for default in defaults:
        entries.append(_identity_table(default))
    entries.append(_identity_table(identity))
    return str(doc.as_string())


def edit_update(
    text: str, label: str, identity: Identity, *, defaults: tuple[Identity, ...] = ()
) -> str:
    """`text` with identity `label` replaced by `identity`, its comments kept."""
    doc = _load(text)
    entries = _identities(doc)
    if not len(entries):
        for default in defaults:
            entries.append(_identity_table(default))
    entry = entries[_find(entries, label)]
    for key in IDENTITY_KEYS:
        value = getattr(identity, key)
        if value is None:
            if key in entry:
                del entry[key]
        else:
            entry[key] = value
    return str(doc.as_string())


def edit_remove(text: str, label: str, *, defaults: tuple[Identity, ...] = ()) -> str:
    """`text` without identity `label`."""
    doc = _load(text)
    entries = _identities(doc)
    if not len(entries):
        for default in defaults:
            entries.append(_identity_table(default))
    del entries[_find(entries, label)]
    return str(doc.as_string())


def edit_settings(text: str, changes: dict[str, Any]) -> str:
    """`text` with settings set (a value of None removes the key: its default applies)."""
    import tomlkit

    doc = _load(text)
    if "settings" not in doc:
        if all(value is None for value in changes.values()):
            return str(doc.as_string())
        table = tomlkit.table()
        doc.add(tomlkit.nl())
        doc.add("settings", table)
    settings = doc["settings"]
    for key, value in changes.items():
        if value is None:
            if key in settings:
                del settings[key]
        else:
            settings[key] = value
    return str(doc.as_string())
