"""The registry's access log: which requests it saw, and the no-pull assertion.

distribution writes one Apache "combined" line per request to its stdout (`log.accesslog`), e.g.
`127.0.0.1 - - [02/Dec/2026:13:09:11 +0000] "HEAD /v2/a/b/manifests/latest HTTP/1.1" 200 0 "" "ua"`.
The kit sends that stdout to a file; `AccessLog` reads it from a marked byte offset, so the kit's
own pushes and readiness polls made before `mark()` never count.

The line is written after the answer has gone out, so reading the file the moment a client is
done can miss the last request. `sync()` sends a sentinel request (`GET /v2/?registrykit-sync=N`)
and waits until its line appears: every request answered before the sentinel was sent is then in
the file. Sentinel lines are left out of every result.
"""

from __future__ import annotations

import http.client
import itertools
import re
import ssl
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

SYNC_PARAMETER = "registrykit-sync"
SYNC_TIMEOUT = 5.0  # seconds: the sentinel's line must appear within this

_COMBINED = re.compile(
    r"^(?P<remote>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<method>[A-Z]+) (?P<uri>\S+) (?P<proto>[^"]+)" (?P<status>\d{3}) (?P<size>\S+)'
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?'
)


class Request(NamedTuple):
    """One request line of the access log."""

    method: str
    path: str  # without the query string
    status: int
    query: str = ""
    user_agent: str = ""

    def __str__(self) -> str:
        query = f"?{self.query}" if self.query else ""
        return f"{self.method} {self.path}{query} -> {self.status}"


def parse_access_log(text: str) -> list[Request]:
    """Every request line in `text` (other lines are ignored), in order."""
    found: list[Request] = []
    for line in text.splitlines():
        match = _COMBINED.match(line)
        if match is None:
            continue
        path, _, query = match["uri"].partition("?")
        found.append(
            Request(match["method"], path, int(match["status"]), query, match["agent"] or "")
        )
    return found


def is_pull(request: Request) -> bool:
    """A GET of a manifest or a blob: what a registry counts (and Docker Hub charges) as a pull."""
    return request.method == "GET" and ("/manifests/" in request.path or "/blobs/" in request.path)


def assert_no_pull(requests: Iterable[Request]) -> None:
    """Fail, listing the offenders, if any request GETs a manifest or a blob."""
    seen = list(requests)
    pulls = [r for r in seen if is_pull(r)]
    if pulls:
        listing = "\n  ".join(str(r) for r in seen)
        raise AssertionError(
            f"{len(pulls)} pull(s) (GET on /manifests/ or /blobs/): "
            f"{', '.join(str(r) for r in pulls)}\nevery request:\n  {listing}"
        )


class AccessLog:
    """A registry's access-log file, read from a mark."""

    def __init__(self, path: Path, base_url: str, ssl_context: ssl.SSLContext | None) -> None:
        self.path = path
        self.base_url = base_url
        self._ssl_context = ssl_context
        self._offset = 0
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _read(self, offset: int) -> str:
        try:
            with self.path.open("rb") as handle:
                handle.seek(offset)
                return handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def sync(self) -> None:
        """Make sure every request answered so far is in the file (see the module)."""
        with self._lock:
            number = next(self._counter)
        query = f"{SYNC_PARAMETER}={number}"
        parts = urlsplit(self.base_url)
        assert parts.hostname is not None and parts.port is not None
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=SYNC_TIMEOUT, context=self._ssl_context
            )
        else:
            connection = http.client.HTTPConnection(
                parts.hostname, parts.port, timeout=SYNC_TIMEOUT
            )
        try:
            connection.request("GET", f"/v2/?{query}")
            connection.getresponse().read()
        finally:
            connection.close()
        deadline = time.monotonic() + SYNC_TIMEOUT
        needle = f"/v2/?{query} ".encode()
        while time.monotonic() < deadline:
            try:
                if needle in self.path.read_bytes():
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        raise AssertionError(f"the access log {self.path} never showed the sync request {query}")

    def mark(self) -> int:
        """Forget everything logged so far: later reads start here. Returns the offset."""
        self.sync()
        self._offset = self._size()
        return self._offset

    def requests(self, since: int | None = None) -> list[Request]:
        """The requests logged since the mark (or `since`, a byte offset), sentinels left out."""
        self.sync()
        offset = self._offset if since is None else since
        return [r for r in parse_access_log(self._read(offset)) if SYNC_PARAMETER not in r.query]

    def assert_no_pull(self, since: int | None = None) -> list[Request]:
        """`assert_no_pull` over the requests since the mark; returns them."""
        seen = self.requests(since)
        assert_no_pull(seen)
        return seen
