"""A hostile registry on loopback: every answer scripted by the test, byte for byte.

`HostileRegistry` serves the three requests pullwatch makes - the ping (`GET /v2/`), the token
(`GET /token`) and the HEAD of a manifest - from a `Script` the test fills in: any status, any
header names and values (escape sequences, C1 controls and all: they are written as latin-1
bytes, exactly as a hostile server would send them), any body. Every request is logged (method,
path, query, headers), so a test can count what pullwatch sent. A GET of a manifest is answered
with 405 and counted: pullwatch must never send one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Answer = tuple[int, list[tuple[str, str]], bytes]

ESC = "\x1b"
# What a hostile server puts in every field pullwatch shows: a screen clear, an OSC 0 title, an
# OSC 52 clipboard write, an 8-bit CSI (C1 0x9b), a BEL, a bidi override and a hyperlink.
POISON = (
    f"{ESC}[2J{ESC}]0;pwned{chr(7)}{ESC}]52;c;cHduZWQ={chr(7)}\x9b31m\u202eevil"
    f"{ESC}]8;;http://evil.example/{ESC}\\click{ESC}]8;;{ESC}\\"
)
# Characters that must never reach a terminal or a file from the network.
FORBIDDEN = frozenset([*map(chr, range(0x00, 0x09)), *map(chr, range(0x0B, 0x20)),
                       *map(chr, range(0x7F, 0xA0)), "\u202e", "\u202d", "\u200f"])  # fmt: skip


def forbidden_in(text: str) -> list[str]:
    """The forbidden characters in `text` (tabs and newlines are fine), by code point."""
    return sorted({f"U+{ord(c):04X}" for c in text if c in FORBIDDEN})


@dataclass
class Script:
    """What each request is answered with; a callable gets the request log entry first."""

    ping: Answer | Callable[[dict[str, Any]], Answer] = (200, [], b"")
    token: Answer | Callable[[dict[str, Any]], Answer] = (
        200,
        [("Content-Type", "application/json")],
        json.dumps({"token": "opaque-token-value-0123456789abcdef", "expires_in": 300}).encode(),
    )
    head: Answer | Callable[[dict[str, Any]], Answer] = (
        200,
        [("ratelimit-limit", "100;w=21600"), ("ratelimit-remaining", "76;w=21600")],
        b"",
    )


@dataclass
class HostileRegistry:
    script: Script = field(default_factory=Script)
    log: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bearer_challenge(self, extra: str = "") -> str:
        return f'Bearer realm="{self.url}/token",service="hostile.test"{extra}'

    def count(self, step: str) -> int:
        return sum(1 for entry in self.log if entry["step"] == step)


def _handler(registry: HostileRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def _answer(self, method: str) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/v2/" or parts.path == "/v2":
                step = "ping"
            elif parts.path == "/token":
                step = "token"
            elif "/manifests/" in parts.path:
                step = "head" if method == "HEAD" else "manifest_get"
            else:
                step = "other"
            entry = {
                "step": step,
                "method": method,
                "path": parts.path,
                "query": parse_qs(parts.query),
                "headers": dict(self.headers.items()),
            }
            registry.log.append(entry)
            if step == "manifest_get" or step == "other":
                status, headers, body = 405 if step == "manifest_get" else 404, [], b""
            else:
                scripted = getattr(registry.script, step)
                status, headers, body = scripted(entry) if callable(scripted) else scripted
            # Written by hand, as latin-1 bytes, as a hostile server sends them (http.server's
            # own header writer would refuse some of them).
            lines = [f"HTTP/1.1 {status} Scripted", *(f"{n}: {v}" for n, v in headers)]
            lines.append(f"Content-Length: {len(body)}")
            raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
            self.wfile.write(raw + (b"" if method == "HEAD" else body))
            self.wfile.flush()

        def do_GET(self) -> None:
            self._answer("GET")

        def do_HEAD(self) -> None:
            self._answer("HEAD")

    return Handler


@contextmanager
def hostile_registry(script: Script | None = None) -> Iterator[HostileRegistry]:
    registry = HostileRegistry(script or Script())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry))
    server.daemon_threads = True
    registry.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="hostile-registry", daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
