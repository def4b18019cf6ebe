"""The terminal stream the dashboard writes to, made safe for a terminal that goes away.

Textual writes the screen through a writer thread to `sys.__stderr__`. When the terminal goes
away (an SSH drop closes the pty's other end), every write fails with an `OSError`; the writer
thread dies on the first one, and anything queued behind it stays there. If the screen keeps
refreshing until the queue is full, the app's shutdown blocks forever putting its last write
into a queue nobody empties - the app never exits, though it noticed the loss.

`hangup_safe_output()` hands Textual a stream that turns such failures into "nothing to write
to": once a write fails, every later write is dropped, so the writer thread lives on and the
app's shutdown (and pullwatch's own clean-up) runs to the end.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import IO, Any


class HangupSafeStream:
    """A text stream that drops writes once its terminal is gone."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.lost = False

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                self._stream.write(text)
            except (OSError, ValueError):  # EIO after a hang-up; ValueError once closed
                self.lost = True
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.lost = True

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def hangup_safe_output() -> Iterator[HangupSafeStream | None]:
    """While the dashboard runs, Textual's terminal stream is a `HangupSafeStream`."""
    original = sys.__stderr__
    if original is None:
        yield None
        return
    safe = HangupSafeStream(original)
    sys.__stderr__ = safe  # type: ignore[misc,assignment]  # what Textual's driver writes to
    try:
        yield safe
    finally:
        sys.__stderr__ = original  # type: ignore[misc]  # typeshed: __stderr__ is read-only
