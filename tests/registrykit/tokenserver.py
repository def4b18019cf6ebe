"""A test token server for distribution's `auth: token` (the Docker registry token protocol).

It issues RS256 JWTs that distribution 2.8 accepts. distribution checks the signature against
the certificates in `rootcertbundle`, finding the key by the JWT header: an `x5c` chain that
ends at one of those certificates, or a `kid` equal to the libtrust key ID of one of their
public keys. `SigningKey` makes an RSA key and a self-signed certificate for the bundle and
signs with `kid` (or `x5c`, on request).

`GET /token?service=S&scope=repository:NAME:pull[,push]` (optionally with HTTP Basic) answers
`{"token", "access_token", "expires_in", "issued_at"}` like Docker Hub's auth service. What is
granted follows `TokenPolicy`: known users get every action they ask for; anonymous gets `pull`
on repositories that are not private, unless anonymous tokens are switched off (then 401
`{"details": ...}`). A scope that is not granted is simply left out of the token's `access`
list, so the registry answers 401 `insufficient_scope`. Every request is logged (`requests`),
with its query parameters unless `record_queries` is off.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def libtrust_key_id(public_key: rsa.RSAPublicKey) -> str:
    """docker/libtrust's key ID: base32 of the first 240 bits of SHA-256(DER SPKI), as 12
    groups of 4 joined by ':'."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


@dataclass(frozen=True)
class SigningKey:
    """An RSA key and its self-signed certificate (the registry's `rootcertbundle`)."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def generate(cls, common_name: str = "registrykit token issuer") -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @property
    def kid(self) -> str:
        return libtrust_key_id(self.private_key.public_key())

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write_bundle(self, path: Path) -> Path:
        path.write_bytes(self.certificate_pem)
        return path

    def sign(self, claims: Mapping[str, Any], *, x5c: bool = False) -> str:
        """A compact RS256 JWS of `claims`, keyed by `kid` (or carrying the `x5c` chain)."""
        header: dict[str, Any] = {"typ": "JWT", "alg": "RS256"}
        if x5c:
            der = self.certificate.public_bytes(serialization.Encoding.DER)
            header["x5c"] = [base64.b64encode(der).decode("ascii")]
        else:
            header["kid"] = self.kid
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self.private_key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64url(signature)}"


@dataclass(frozen=True)
class TokenPolicy:
    """Who gets what. Users get every action they ask for; anonymous only `pull`, if allowed."""

    users: Mapping[str, str] = field(default_factory=dict)  # username -> password
    allow_anonymous: bool = True
    anonymous_denied_details: str = "anonymous access is disabled on this test token server"
    private_repositories: frozenset[str] = frozenset()  # anonymous may not pull these
    expires_in: int = 300
    use_x5c: bool = False  # sign with an x5c chain instead of a kid


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server answered."""

    method: str
    path: str
    query: dict[str, list[str]]  # empty when `record_queries` is off
    username: str | None  # the Basic username, None for anonymous
    status: int
    granted: tuple[dict[str, Any], ...] = ()

    @property
    def scopes(self) -> list[str]:
        return [s for value in self.query.get("scope", []) for s in value.split(" ") if s]


def _parse_scopes(values: list[str]) -> list[tuple[str, str, list[str]]]:
    """`repository:NAME:pull,push` items -> (type, name, actions); malformed items dropped."""
    scopes = []
    for value in values:
        for item in value.split(" "):
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind and name and actions:
                scopes.append((kind, name, [a for a in actions.split(",") if a]))
    return scopes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: TokenServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "registrykit-token"
    sys_version = ""
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: `TokenServer.requests` is the log."""

    def do_GET(self) -> None:
        self.server.owner._answer(self)

    do_POST = do_HEAD = do_GET

    def send_json(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class TokenServer:
    """The token server on 127.0.0.1 (a free port): `realm` goes into the registry's config."""

    def __init__(
        self,
        key: SigningKey,
        *,
        service: str = "registrykit",
        issuer: str = "registrykit-issuer",
        policy: TokenPolicy | None = None,
    ) -> None:
        self.key = key
        self.service = service
        self.issuer = issuer
        self.default_policy = policy or TokenPolicy()
        self.policy = self.default_policy
        self.record_queries = True
        self._requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    @property
    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._requests)

    def start(self) -> TokenServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def reset(self) -> None:
        """The default policy again, query recording on, and an empty request log."""
        with self._lock:
            self.policy = self.default_policy
            self.record_queries = True
            self._requests.clear()

    def configure(self, **changes: Any) -> TokenPolicy:
        """Change the policy (`allow_anonymous=False`, `users={...}`, ...) until `reset()`."""
        self.policy = replace(self.policy, **changes)
        return self.policy

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- the answer ------------------------------------------------------------------------------

    def _answer(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        query = parse_qs(url.query, keep_blank_values=True)
        username, password = self._basic(handler.headers.get("Authorization"))
        status, body, granted = self._decide(handler.command, url.path, query, username, password)
        with self._lock:
            self._requests.append(
                TokenRequest(
                    handler.command,
                    url.path,
                    query if self.record_queries else {},
                    username,
                    status,
                    tuple(granted),
                )
            )
        handler.send_json(status, body)

    @staticmethod
    def _basic(header: str | None) -> tuple[str | None, str | None]:
        if not header or not header.lower().startswith("basic "):
            return None, None
        try:
            text = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        username, _, password = text.partition(":")
        return username, password

    def _decide(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        username: str | None,
        password: str | None,
    ) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
        policy = self.policy
        if path != "/token" or method not in ("GET", "HEAD"):
            return 404, {"details": f"no such endpoint: {method} {path}"}, []
        if username is not None:
            if policy.users.get(username) != password or password is None:
                return 401, {"details": "incorrect username or password"}, []
        elif not policy.allow_anonymous:
            return 401, {"details": policy.anonymous_denied_details}, []
        granted: list[dict[str, Any]] = []
        for kind, name, actions in _parse_scopes(query.get("scope", [])):
            if username is not None:
                allowed = actions
            elif kind == "repository" and name not in policy.private_repositories:
                allowed = [a for a in actions if a == "pull"]
            else:
                allowed = []
            if allowed:
                granted.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        service = (query.get("service") or [self.service])[0]
        claims = {
            "iss": self.issuer,
            "sub": username or "",
            "aud": service,
            "exp": now + policy.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(12),
            "access": granted,
        }
        token = self.key.sign(claims, x5c=policy.use_x5c)
        issued_at = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "token": token,
            "access_token": token,
            "expires_in": policy.expires_in,
            "issued_at": issued_at,
        }
        return 200, body, granted
