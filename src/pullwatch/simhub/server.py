"""The simulated Docker Hub over real HTTP on loopback: registry, token endpoint and admin.

One `ThreadingHTTPServer` serves all three, HTTP/1.1 keep-alive, a thread per connection. The
token realm in every challenge points back at this server. Endpoints:

- `GET /v2/` (ping), `GET /token` (token), `HEAD /v2/<repo>/manifests/<ref>` (probe),
  `GET /v2/<repo>/manifests/<ref>` (a real pull, counted as `manifest_get`),
  `GET /v2/<repo>/tags/list`, and blobs (none are held: 404 `BLOB_UNKNOWN`);
- admin, never counted: `GET /_sim/state`, `GET /_sim/arrivals` (when each counted request
  arrived, monotonic seconds), `POST /_sim/pull?who=&n=`, `POST /_sim/reset-counters`,
  `POST /_sim/faults` (JSON object of switches), `POST /_sim/reset-faults`.

Fault switches (`HubModel.faults`) are read on every request to ping, token and head.

The registry side answers as the CNCF distribution registry (the software Docker Hub's registry
descends from) does, checked against the real one by tests/test_real_registry.py's conformance
test: header names as Go writes them (`Www-Authenticate`, `Docker-Distribution-Api-Version:
registry/2.0` on every answer), JSON as `application/json; charset=utf-8`, error bodies
`{"errors": [{"code", "message", "detail"}]}` with distribution's codes (`UNAUTHORIZED`,
`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, `BLOB_UNKNOWN`, `UNSUPPORTED`), a 401 `insufficient_scope`
naming the scope for a repository the token does not grant (checked before the repository
exists, as the registry's access controller runs first), a 404 `MANIFEST_UNKNOWN` for a tag
the repository lacks, and `text/plain` "404 page not found" for a path no route matches. What
is Docker Hub's own is kept: the `ratelimit-*` and `docker-ratelimit-source` headers (lower
case, as Hub sends them), the token endpoint's `{"details": ...}` bodies, the HAP429 abuse
answer, and a token service that grants pull only on repositories that exist (so an unknown
repository is a 401 `insufficient_scope`, as on Hub).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.utils
import hashlib
import json
import re
import select
import selectors
import socket
import ssl
import struct
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from pullwatch.simhub.model import ANONYMOUS, Account, Faults, HubModel, Quota, TokenGrant

if TYPE_CHECKING:
    import httpx

HUGE_BODY_SIZE = 50 * 1024 * 1024
MAX_REQUEST_BODY = 1024 * 1024
HAP429_BODY = b"Too Many Requests (HAP429)."
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v1+prettyjws"
INCREASE_URL = "https://www.docker.com/increase-rate-limit"
API_VERSION = ("Docker-Distribution-Api-Version", "registry/2.0")
JSON_TYPE = "application/json; charset=utf-8"  # distribution's, on every JSON answer
TOKEN_JSON_TYPE = "application/json"  # Docker Hub's token service

# distribution's routes (its reference grammar): a repository name, and a tag or a digest.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_MANIFEST_PATH = re.compile(rf"^/v2/(?P<repo>{_NAME})/manifests/(?P<ref>{_TAG}|{_DIGEST})$")
_TAGS_PATH = re.compile(rf"^/v2/(?P<repo>{_NAME})/tags/list$")
_BLOB_PATH = re.compile(rf"^/v2/(?P<repo>{_NAME})/blobs/(?P<digest>{_DIGEST})$")
_CHUNK = 64 * 1024

Headers = list[tuple[str, str]]


@dataclass
class _Response:
    """An answer before serialisation; `stream` replaces `body` for huge bodies."""

    status: int
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    stream: Callable[[], Iterator[bytes]] | None = None
    length: int | None = None  # Content-Length when streaming (or a HEAD's announced length)

    @property
    def content_length(self) -> int:
        return self.length if self.length is not None else len(self.body)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _json(status: int, value: Any, headers: Headers | None = None) -> _Response:
    """A JSON answer of the token service or the admin endpoints."""
    return _Response(
        status, [("Content-Type", TOKEN_JSON_TYPE), *(headers or [])], _json_bytes(value)
    )


def _registry_error(code: str, message: str, detail: Any = None) -> bytes:
    """distribution's error body (Go's JSON encoder ends it with a newline)."""
    errors = {"errors": [{"code": code, "message": message, "detail": detail}]}
    return _json_bytes(errors) + b"\n"


def _registry_answer(
    status: int, code: str, message: str, detail: Any = None, headers: Headers | None = None
) -> _Response:
    """An error answer of the registry: its JSON body, content type and API version."""
    return _Response(
        status,
        [("Content-Type", JSON_TYPE), API_VERSION, *(headers or [])],
        _registry_error(code, message, detail),
    )


def _page_not_found() -> _Response:
    """What distribution's router answers to a path no route matches."""
    return _Response(
        404,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            API_VERSION,
            ("X-Content-Type-Options", "nosniff"),
        ],
        b"404 page not found\n",
    )


def _html(status: int, title: str, text: str) -> bytes:
    return (
        f"<html><head><title>{status} {title}</title></head>"
        f"<body><h1>{title}</h1><p>{text}</p></body></html>\n"
    ).encode()


def manifest_body(repo: str, tag: str = "latest") -> bytes:
    """A schema-1 signed manifest (the kind `ratelimitpreview/test` serves), deterministic."""
    blob = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
    manifest = {
        "schemaVersion": 1,
        "name": repo,
        "tag": tag,
        "architecture": "amd64",
        "fsLayers": [{"blobSum": blob}],
        "history": [
            {"v1Compatibility": json.dumps({"id": hashlib.sha256(repo.encode()).hexdigest()})}
        ],
        "signatures": [
            {
                "header": {"jwk": {"crv": "P-256", "kty": "EC"}, "alg": "ES256"},
                "signature": "c2ltaHViIGRvZXMgbm90IHNpZ24",
                "protected": "eyJmb3JtYXRMZW5ndGgiOjE",
            }
        ],
    }
    return json.dumps(manifest, indent=3).encode() + b"\n"


def _name(header: tuple[str, str]) -> str:
    return header[0]


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _huge_stream(prefix: bytes, suffix: bytes) -> Callable[[], Iterator[bytes]]:
    """HUGE_BODY_SIZE bytes: prefix, filler, suffix - generated chunk by chunk."""

    def chunks() -> Iterator[bytes]:
        yield prefix
        left = HUGE_BODY_SIZE - len(prefix) - len(suffix)
        filler = b"A" * _CHUNK
        while left > 0:
            piece = filler[: min(left, _CHUNK)]
            left -= len(piece)
            yield piece
        yield suffix

    return chunks


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so `stop()` can cut them."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True
    timeout = 0.0  # handle_request() after the selector said ready: never block in it

    def __init__(
        self, address: tuple[str, int], model: HubModel, tls: ssl.SSLContext | None = None
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.model = model
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)
        if tls is not None:
            # The handshake happens on the handler's first read, not in the accept loop, so a
            # client that refuses the certificate cannot stall the server.
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        scheme = "https" if tls is not None else "http"
        # server_address is typed str | bytes (for AF_UNIX); here it is always an IP address
        host, port = str(self.server_address[0]), int(self.server_address[1])
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.base_url = f"{scheme}://{where}"

    def process_request(self, request: Any, client_address: Any) -> None:
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """No stderr: a client that went away is not news; a handler bug goes to the model."""
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, OSError):
            text = "".join(traceback.format_exception(exc)).strip()
            self.model.server_errors.append(text[-4000:])

    def drop_connections(self) -> None:
        """Cut every open connection so blocked handler threads return."""
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "simhub"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection is closed after this
    server: _HTTPServer
    query: dict[str, list[str]]
    request_body: bytes

    # -- plumbing -----------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        """No request log on stderr."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        when = self.model.clock.time() if timestamp is None else timestamp
        return email.utils.formatdate(when, usegmt=True)

    @property
    def model(self) -> HubModel:
        return self.server.model

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding"):
            self.close_connection = True  # no chunked bodies: answer and hang up
            return b""
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            self.close_connection = True
            return b""
        if length <= 0:
            return b""
        if length > MAX_REQUEST_BODY:
            self.close_connection = True
            return b""
        return self.rfile.read(length)

    def _head_bytes(self, resp: _Response) -> bytes:
        try:
            reason = HTTPStatus(resp.status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {resp.status} {reason}"]
        # As Go's net/http writes them: the handler's headers sorted by name, then Date and
        # Content-Length.
        lines.extend(f"{name}: {value}" for name, value in sorted(resp.headers, key=_name))
        lines.append(f"Date: {self.date_time_string()}")
        lines.append(f"Content-Length: {resp.content_length}")
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, resp: _Response, drip: float | None = None) -> None:
        head = self._head_bytes(resp)
        send_body = self.command != "HEAD"
        try:
            if drip:
                payload = head + (resp.body if send_body and resp.stream is None else b"")
                for i in range(len(payload)):
                    self.wfile.write(payload[i : i + 1])
                    if self.server.stopping.wait(drip):
                        self.close_connection = True
                        return
                # A dripped stream would take days; it is sent at full speed after the head.
            else:
                self.wfile.write(head + (resp.body if send_body else b""))
            if send_body and resp.stream is not None:
                for chunk in resp.stream():
                    if self.server.stopping.is_set():
                        self.close_connection = True
                        return
                    self.wfile.write(chunk)
        except OSError:
            self.close_connection = True

    def _reset(self, resp: _Response) -> None:
        """Send part of the answer, then abort the connection with a TCP RST."""
        payload = self._head_bytes(resp) + (resp.body if self.command != "HEAD" else b"")
        part = payload[: max(1, len(payload) // 2)]
        sock = self.connection
        with contextlib.suppress(OSError):
            self.wfile.write(part)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.rfile.close()  # drop makefile()'s reference so close() really closes the fd
        sock.close()

    def _hang(self) -> None:
        """Never answer; return when the client goes away or the server stops."""
        self.close_connection = True
        sock = self.connection
        stopping = self.server.stopping
        while not stopping.is_set():
            try:
                readable, _, _ = select.select([sock], [], [], 0.1)
                if readable and not sock.recv(1, socket.MSG_PEEK):
                    return  # the client closed its side
            except (OSError, ValueError):
                return
            if readable:
                stopping.wait(0.1)  # pipelined bytes: keep ignoring them

    # -- dispatch -----------------------------------------------------------------------------

    def _handle(self) -> None:
        self.request_body = self._read_body()
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        path = url.path
        if path.startswith("/_sim/"):
            self._send(self._admin(path))
            return
        method = self.command
        manifest = _MANIFEST_PATH.match(path)
        endpoint: str | None = None
        if path == "/v2/" and method in ("GET", "HEAD"):
            endpoint = "ping"
            self.model.count("ping")
        elif path == "/token" and method in ("GET", "HEAD"):
            endpoint = "token"
            self.model.count("token", self._basic_username())
        elif manifest and method == "HEAD":
            endpoint = "head"
            grant = self.model.lookup_token(self._bearer() or "")
            self.model.count("head", grant.username if grant else "")
        elif method == "GET" and "/manifests/" in path:  # any attempt at a pull, routable or not
            self.model.count("manifest_get")
        else:
            self.model.count("other")

        faults = self.model.faults
        if faults.latency > 0 and self.server.stopping.wait(faults.latency):
            self.close_connection = True
            return
        resp: _Response | None = None
        if endpoint is not None:
            if Faults.hits(faults.hang, endpoint):
                self._hang()
                return
            resp = self._fault_response(endpoint, faults)
        if resp is None:
            if endpoint == "ping":
                resp = self._ping(faults)
            elif endpoint == "token":
                resp = self._token(faults)
            elif manifest is not None and method in ("GET", "HEAD"):
                resp = self._manifest(
                    manifest["repo"], manifest["ref"], faults, pull=method == "GET"
                )
            else:
                resp = self._other(path, method)
        if endpoint is None:
            self._send(resp)
            return
        if Faults.hits(faults.huge_body, endpoint):
            resp = self._hugify(resp, endpoint)
        if Faults.hits(faults.reset, endpoint):
            self._reset(resp)
            return
        self._send(resp, drip=Faults.value_for(faults.drip, endpoint))

    # -- faults -------------------------------------------------------------------------------

    def _fault_response(self, endpoint: str, faults: Faults) -> _Response | None:
        if Faults.hits(faults.hap429, endpoint):
            return _Response(
                429, [("Content-Type", "text/plain"), ("Retry-After", "60")], HAP429_BODY
            )
        status = Faults.value_for(faults.status, endpoint)
        if status:
            resp = self._error_response(endpoint, int(status))
            retry_after = Faults.value_for(faults.retry_after, endpoint)
            if retry_after is not None:
                resp.headers.append(("Retry-After", str(retry_after)))
            return resp
        if Faults.hits(faults.redirect_loop, endpoint):
            return _Response(302, [("Location", self.server.base_url + self.path)])
        return None

    def _error_response(self, endpoint: str, status: int) -> _Response:
        """A forced error with the body the real service would send."""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        if status in (502, 504):  # from the load balancer in front, not the registry
            return _Response(status, [("Content-Type", "text/html")], _html(status, phrase, phrase))
        if Faults.hits(self.model.faults.echo_jti, endpoint):
            user = self._requester(endpoint)
            message = (
                f"You have reached your pull rate limit as '{user}': "
                f"{self.model.jti_for(user)}. You may increase the limit by authenticating "
                f"and upgrading: {INCREASE_URL}"
            )
            if endpoint == "token":
                return _json(status, {"details": message})
            return _registry_answer(status, "TOOMANYREQUESTS", message)
        if endpoint == "token":
            if status == 401:
                return _json(status, {"details": "incorrect username or password"})
            return _json(status, {"details": phrase})
        codes = {401: "UNAUTHORIZED", 429: "TOOMANYREQUESTS", 503: "UNAVAILABLE"}
        if status == 429:
            message = (
                "You have reached your pull rate limit. You may increase the limit by"
                f" authenticating and upgrading: {INCREASE_URL}"
            )
            return _registry_answer(status, "TOOMANYREQUESTS", message)
        return _registry_answer(status, codes.get(status, "UNKNOWN"), phrase.lower())

    def _hugify(self, resp: _Response, endpoint: str) -> _Response:
        """The same answer with a 50 MB body (a HEAD only announces the length)."""
        content_type = next((v for k, v in resp.headers if k == "Content-Type"), "")
        if endpoint == "token":
            prefix, suffix = b'{"token":"', b'"}'
        elif content_type.startswith("application/json"):
            prefix, suffix = b'{"errors":[{"code":"UNKNOWN","message":"', b'"}]}'
        else:
            prefix, suffix = b"", b""
        return _Response(
            resp.status,
            resp.headers,
            stream=_huge_stream(prefix, suffix),
            length=HUGE_BODY_SIZE,
        )

    # -- auth helpers -------------------------------------------------------------------------

    def _authorization(self, scheme: str) -> str | None:
        value = self.headers.get("authorization") or ""
        name, _, credentials = value.strip().partition(" ")
        if name.lower() != scheme:
            return None
        return credentials.strip()

    def _bearer(self) -> str | None:
        return self._authorization("bearer")

    def _basic(self) -> tuple[str, str] | None:
        """(username, secret) from HTTP Basic; ("", "") for an undecodable header."""
        encoded = self._authorization("basic")
        if encoded is None:
            return None
        try:
            text = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ("", "")
        username, _, secret = text.partition(":")
        return username, secret

    def _basic_username(self) -> str:
        basic = self._basic()
        return basic[0] if basic else ""

    def _requester(self, endpoint: str) -> str:
        """Who is asking: the Basic username (token), the bearer token's user (head), or ""."""
        if endpoint == "token":
            return self._basic_username()
        grant = self.model.lookup_token(self._bearer() or "")
        return grant.username if grant else ""

    def _challenge(self, scope: str | None = None, error: str | None = None) -> str:
        value = f'Bearer realm="{self.server.base_url}/token",service="{self.model.service}"'
        if scope:
            value += f',scope="{scope}"'
        if error:
            value += f',error="{error}"'
        return value

    # -- registry and token endpoints ---------------------------------------------------------

    def _ping(self, faults: Faults) -> _Response:
        ok = _Response(200, [("Content-Type", JSON_TYPE), API_VERSION], b"{}")
        if faults.challenge == "no_auth":
            return ok
        token = self._bearer()
        if token and self.model.validate_token(token):
            return ok
        headers: Headers = []
        error = "invalid_token" if token else None
        if faults.challenge == "normal":
            headers.append(("Www-Authenticate", self._challenge(error=error)))
        elif faults.challenge == "garbage":
            headers.append(("Www-Authenticate", '=?garbage?= realm"/token'))
        elif faults.challenge == "basic":
            headers.append(("Www-Authenticate", 'Basic realm="Docker Registry"'))
        headers.append(("docker-ratelimit-source", self.model.egress_source))
        return _registry_answer(401, "UNAUTHORIZED", "authentication required", None, headers)

    def _token(self, faults: Faults) -> _Response:
        basic = self._basic()
        account: Account | None = None
        if basic is not None:
            account = self.model.authenticate(*basic)
            if account is None:
                return _json(401, {"details": "incorrect username or password"})
        service = (self.query.get("service") or [""])[0]
        repos = []
        for scope in self.query.get("scope", []):
            for item in scope.split(" "):
                kind, _, rest = item.partition(":")
                repo, _, actions = rest.rpartition(":")
                wanted = kind == "repository" and "pull" in actions.split(",")
                if wanted and repo in self.model.repositories:
                    repos.append(repo)
        issued = self.model.issue_token(account, service, repos)
        return self._token_body(
            issued.grant.token, issued.expires_in, issued.issued_at_text, faults
        )

    def _token_body(self, token: str, expires_in: int, issued_at: str, faults: Faults) -> _Response:
        mode = faults.token_body
        if mode == "malformed":
            return _Response(
                200, [("Content-Type", TOKEN_JSON_TYPE)], b'{"token": "' + token[:20].encode()
            )
        if mode == "html":
            page = _html(200, "Sign in to continue", "Please log in to the guest network.")
            return _Response(200, [("Content-Type", "text/html; charset=utf-8")], page)
        if mode == "not_object":
            return _json(200, [token, expires_in])
        body: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": expires_in,
            "issued_at": issued_at,
        }
        if mode == "missing_token":
            del body["token"], body["access_token"]
        elif mode == "token_only":
            del body["access_token"]
        elif mode == "access_token_only":
            del body["token"]
        elif mode == "no_expires":
            del body["expires_in"]
        elif mode == "expires_zero":
            body["expires_in"] = 0
        elif mode == "expires_huge":
            body["expires_in"] = 10**12
        return _json(200, body)

    def _authorize(self, repo: str, *, invalid_on_head: bool = False) -> TokenGrant | _Response:
        """The grant of a request's bearer token to pull `repo`, or the 401 the registry sends:
        no token, an invalid one, or one that does not grant this repository (checked before
        the repository exists, as distribution's access controller runs first)."""
        scope = f"repository:{repo}:pull"
        token = self._bearer()
        grant = self.model.validate_token(token) if token else None
        if invalid_on_head:
            grant = None
            token = token or "forced"
        if grant is None:
            return self._unauthorized(repo, scope, "invalid_token" if token else None)
        if repo not in grant.repositories:
            return self._unauthorized(repo, scope, "insufficient_scope")
        return grant

    def _manifest(self, repo: str, reference: str, faults: Faults, *, pull: bool) -> _Response:
        forced = not pull and faults.invalid_token_on_head
        authorized = self._authorize(repo, invalid_on_head=forced)
        if isinstance(authorized, _Response):
            return authorized
        grant = authorized
        body = self._manifest_for(repo, reference)
        if body is None:
            detail: dict[str, str] = (
                {"Name": repo, "Revision": reference} if ":" in reference else {"Tag": reference}
            )
            return _registry_answer(404, "MANIFEST_UNKNOWN", "manifest unknown", detail)
        if pull:
            allowed, quota = self.model.pull(grant)
            if not allowed:
                return self._pull_limit_429(grant, quota, faults)
        else:
            quota = self.model.grant_quota(grant)
        headers: Headers = [
            ("Content-Type", MANIFEST_TYPE),
            ("Docker-Content-Digest", _digest(body)),
            ("Etag", f'"{_digest(body)}"'),
            API_VERSION,
        ]
        headers.extend(self._ratelimit_headers(quota, faults))
        if not pull and quota.exhausted and faults.head_429_when_exhausted:
            return self._pull_limit_429(grant, quota, faults)
        return _Response(200, headers, body)

    def _manifest_for(self, repo: str, reference: str) -> bytes | None:
        """The manifest `repo` has under a tag or a digest, or None."""
        tags = self.model.tags(repo)
        if ":" not in reference:
            return manifest_body(repo, reference) if reference in tags else None
        bodies = (manifest_body(repo, tag) for tag in tags)
        return next((body for body in bodies if _digest(body) == reference), None)

    def _unauthorized(self, repo: str, scope: str, error: str | None) -> _Response:
        detail = [{"Type": "repository", "Class": "", "Name": repo, "Action": "pull"}]
        headers: Headers = [
            ("Www-Authenticate", self._challenge(scope, error)),
            ("docker-ratelimit-source", self.model.egress_source),
        ]
        return _registry_answer(401, "UNAUTHORIZED", "authentication required", detail, headers)

    def _pull_limit_429(self, grant: TokenGrant, quota: Quota, faults: Faults) -> _Response:
        if grant.anonymous:
            message = "You have reached your unauthenticated pull rate limit."
        else:
            message = f"You have reached your pull rate limit as '{grant.username}': {grant.jti}."
        message += f" You may increase the limit by authenticating and upgrading: {INCREASE_URL}"
        headers = self._ratelimit_headers(quota, faults)
        return _registry_answer(429, "TOOMANYREQUESTS", message, None, headers)

    @staticmethod
    def _ratelimit_headers(quota: Quota, faults: Faults) -> Headers:
        mode = faults.ratelimit_headers
        source = [] if mode == "no_source" else [("docker-ratelimit-source", quota.source)]
        if not quota.metered or mode == "missing":
            return source
        w = quota.window
        limit, remaining = f"{quota.limit};w={w}", f"{quota.remaining};w={w}"
        names = ("ratelimit-limit", "ratelimit-remaining")
        if mode == "empty":
            limit = remaining = f";w={w}"
        elif mode == "malformed":
            limit = remaining = "lots;w=abc"
        elif mode == "enormous":
            limit = remaining = f"99999999999999999999999;w={w}"
        elif mode == "policy_list":
            limit += ", 10;w=60"
            remaining += f", {min(quota.remaining or 0, 10)};w=60"
        elif mode == "x_prefixed":
            names = ("x-ratelimit-limit", "x-ratelimit-remaining")
        elif mode == "mixed_case":
            names = ("RateLimit-Limit", "RateLimit-Remaining")
        headers = [(names[0], limit), (names[1], remaining)]
        if mode == "duplicated":
            headers = [headers[0], headers[0], headers[1], headers[1]]
        return headers + source

    def _other(self, path: str, method: str) -> _Response:
        """Everything but ping, token and manifests: the rest of distribution's routes the
        simulator knows (tags, blobs), its redirect of `/v2`, and its router's 404."""
        if path == "/v2":
            return _Response(
                301,
                [("Content-Type", "text/html; charset=utf-8"), API_VERSION, ("Location", "/v2/")],
                b'<a href="/v2/">Moved Permanently</a>.\n\n',
            )
        tags, blob = _TAGS_PATH.match(path), _BLOB_PATH.match(path)
        if not (tags or blob or _MANIFEST_PATH.match(path)):
            return _page_not_found()
        if method not in ("GET", "HEAD"):  # no pushes or deletes here
            return _registry_answer(405, "UNSUPPORTED", "The operation is unsupported.")
        match = tags or blob
        assert match is not None
        repo = match["repo"]
        authorized = self._authorize(repo)
        if isinstance(authorized, _Response):
            return authorized
        if blob is not None:  # the simulator holds manifests only
            return _registry_answer(404, "BLOB_UNKNOWN", "blob unknown to registry", blob["digest"])
        names = self.model.tags(repo)
        if not names:
            detail = {"name": repo}
            return _registry_answer(
                404, "NAME_UNKNOWN", "repository name not known to registry", detail
            )
        body = _json_bytes({"name": repo, "tags": names}) + b"\n"
        return _Response(200, [("Content-Type", JSON_TYPE), API_VERSION], body)

    # -- admin --------------------------------------------------------------------------------

    def _admin(self, path: str) -> _Response:
        model = self.model
        method = self.command
        if path == "/_sim/state" and method == "GET":
            return _json(200, model.snapshot())
        if path == "/_sim/arrivals" and method == "GET":
            return _json(200, {"arrivals": model.arrival_times()})
        if path == "/_sim/pull" and method == "POST":
            who = (self.query.get("who") or [ANONYMOUS])[0]
            try:
                n = int((self.query.get("n") or ["1"])[0])
                recorded = model.consume(who, n)
            except KeyError as exc:
                return _json(404, {"error": str(exc.args[0])})
            except ValueError as exc:
                return _json(400, {"error": f"bad n: {exc}"})
            return _json(200, {"who": who, "recorded": recorded, "remaining": model.remaining(who)})
        if path == "/_sim/reset-counters" and method == "POST":
            model.reset_counters()
            return _json(200, {"ok": True})
        if path == "/_sim/faults" and method == "POST":
            try:
                changes = json.loads(self.request_body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("send a JSON object of switches")
                model.faults.update(changes)
            except (ValueError, TypeError) as exc:
                return _json(400, {"error": str(exc)})
            return _json(200, model.faults.as_json())
        if path == "/_sim/reset-faults" and method == "POST":
            model.reset_faults()
            return _json(200, model.faults.as_json())
        return _json(404, {"error": f"no admin endpoint {method} {path}"})


class SimHubServer:
    """A running simulated Docker Hub: `with SimHubServer(model) as hub: hub.url`."""

    def __init__(
        self,
        model: HubModel | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: ssl.SSLContext | None = None,
        name: str | None = None,
    ):
        """`name`: say the registry is `http://<name>` (realm included) instead of
        `http://127.0.0.1:<port>`; clients reach it through `transport()` (simhub/named.py)."""
        self.model = model if model is not None else HubModel()
        self._httpd = _HTTPServer((host, port), self.model, tls)
        self.name = name
        if name is not None:
            if tls is not None:
                raise ValueError("a named simulated hub is plain http")
            self._httpd.base_url = f"http://{name}"
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>` (https with `tls`): the registry URL; realm `<url>/token`."""
        return self._httpd.base_url

    def transport(self) -> httpx.AsyncBaseTransport | None:
        """What a client needs to reach a named hub (None: its URL reaches it as it is)."""
        if self.name is None:
            return None
        from pullwatch.simhub.named import NamedLoopbackTransport

        return NamedLoopbackTransport(self.name, self.port)

    def start(self) -> SimHubServer:
        """Serve in a background daemon thread; returns self."""
        if self._thread is not None or self._stopped:
            raise RuntimeError("a SimHubServer starts once")
        self._thread = threading.Thread(target=self._serve, name=f"simhub-{self.port}", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        """Accept connections until `stop()` writes to the wake-up pipe (no polling)."""
        httpd = self._httpd
        with selectors.DefaultSelector() as selector:
            selector.register(httpd, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not httpd.stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is httpd and not httpd.stopping.is_set():
                        httpd.handle_request()

    def stop(self) -> None:
        """Stop serving and cut open connections, without waiting for hanging handlers."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd.drop_connections()
        self._httpd.server_close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> SimHubServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
