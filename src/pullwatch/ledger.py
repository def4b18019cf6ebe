"""Tokens issued to pullwatch, remembered as fingerprints so no later run can print one.

A registry may echo a bearer token back in a header or an error body. Tokens this process
received are redacted by value (`redact.register_secret`), and JWT-shaped values always by
shape; an opaque token issued in an *earlier* run is neither. So every token pullwatch is
issued is also remembered here as a salted SHA-256 (never the token), for a day, and every run
loads the fingerprints into the redaction: a value whose digest matches is replaced before
anything is shown or stored.

The file (`tokens.seen` in the data directory) is private (0600), written atomically, bounded
(the newest `MAX_TOKENS`), and an unreadable one is treated as empty.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.paths import ensure_private_dir

FILE_NAME = "tokens.seen"
KEEP_SECONDS = 24 * 3600.0  # tokens live minutes; an echo a day later is still caught
MAX_TOKENS = 4000


class TokenLedger:
    """`path` None remembers nothing beyond this process."""

    def __init__(self, path: Path | None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._salt = ""
        self._entries: dict[str, float] = {}  # digest -> when it was issued
        self._loaded = False
        self._dirty = False

    def load(self) -> None:
        """Read the file and hand its fingerprints to the redaction (once; cheap to repeat)."""
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            data = self._read()
            salt = data.get("salt")
            self._salt = salt if isinstance(salt, str) and salt else os.urandom(16).hex()
            now = self.clock.time()
            entries = data.get("tokens")
            if isinstance(entries, dict):
                self._entries = {
                    str(digest): float(at)
                    for digest, at in entries.items()
                    if isinstance(at, int | float) and now - float(at) < KEEP_SECONDS
                }
            from pullwatch.redact import load_fingerprints

            load_fingerprints(self._salt, self._entries)

    def remember(self, token: str) -> None:
        """A token was issued: keep its fingerprint, redact it from now on (cheap: no I/O;
        `flush()` writes)."""
        from pullwatch.redact import add_fingerprint, fingerprint

        self.load()
        with self._lock:
            digest = fingerprint(self._salt, token)
            if digest not in self._entries:
                self._entries[digest] = self.clock.time()
                self._dirty = True
        add_fingerprint(digest)

    def flush(self) -> None:
        """Write what was remembered since the last flush, merged with what other processes
        wrote meanwhile (once per command, or once per round for the long-running ones)."""
        with self._lock:
            if not self._dirty or self.path is None:
                return
            self._dirty = False
            now = self.clock.time()
            theirs = self._read()
            merged = dict(self._entries)
            if theirs.get("salt") == self._salt and isinstance(theirs.get("tokens"), dict):
                for digest, at in theirs["tokens"].items():
                    if isinstance(at, int | float) and now - float(at) < KEEP_SECONDS:
                        merged.setdefault(str(digest), float(at))
            if len(merged) > MAX_TOKENS:
                merged = dict(sorted(merged.items(), key=lambda item: item[1])[-MAX_TOKENS:])
            self._entries = merged
            self._write({"salt": self._salt, "tokens": merged})

    def _read(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        if self.path is None:
            return
        temp: str | None = None
        try:
            ensure_private_dir(self.path.parent)
            fd, temp = tempfile.mkstemp(prefix=".tokens.", dir=self.path.parent)  # 0600
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
            Path(temp).replace(self.path)
            temp = None
        except OSError:
            pass  # remembering is best effort: this run still redacts by value
        finally:
            if temp is not None:
                with contextlib.suppress(OSError):
                    Path(temp).unlink()
