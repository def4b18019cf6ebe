"""The registry's discovered `WWW-Authenticate` challenge, kept on disk between runs.

It saves the ping on every cold start, so a one-shot `check` after the first run sends only a
token request and a HEAD per identity. The file is private (0600, in a 0700 directory) and
written atomically through a uniquely named temporary file, so two processes saving at once
cannot tear it or race on a shared temporary name. Stale or unreadable files are ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.hub.headers import Challenge
from pullwatch.paths import ensure_private_dir

CHALLENGE_CACHE_TTL = 7 * 24 * 3600.0


class ChallengeCache:
    """Challenges by registry URL; `path` None keeps nothing (every run pings)."""

    def __init__(self, path: Path | None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = path
        self.clock = clock

    def load(self, registry: str) -> Challenge | bool | None:
        """The cached challenge, None for "no auth needed", or False when nothing usable."""
        if self.path is None:
            return False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entry = data[registry]
            if self.clock.time() - float(entry["saved_at"]) > CHALLENGE_CACHE_TTL:
                return False
            if entry.get("scheme") is None:
                return None
            params = {str(k): str(v) for k, v in dict(entry["params"]).items()}
            return Challenge(scheme=str(entry["scheme"]), params=params)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False

    def save(self, registry: str, challenge: Challenge | None) -> None:
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        data[registry] = {
            "scheme": None if challenge is None else challenge.scheme,
            "params": {} if challenge is None else dict(challenge.params),
            "saved_at": self.clock.time(),
        }
        temp: str | None = None
        try:
            ensure_private_dir(self.path.parent)
            fd, temp = tempfile.mkstemp(prefix=".challenges.", dir=self.path.parent)  # 0600
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1)
            Path(temp).replace(self.path)
            temp = None
        except OSError:
            pass  # a cache that cannot be written only costs a ping next time
        finally:
            if temp is not None:
                with contextlib.suppress(OSError):
                    Path(temp).unlink()
