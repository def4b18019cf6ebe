"""The real CNCF distribution registry (`docker-registry serve`) as a subprocess on loopback.

`start_registry()` writes a config into a directory of its own (storage in it, `127.0.0.1` and a
free port, the access log on), starts the registry with its stdout (the access log) and stderr
(its application log) in files there, and polls `GET /v2/` until any HTTP answer comes back. Every
wait has a deadline; a registry that exits or never answers raises `RegistryStartError` with the
tail of its log. The config is written as JSON, which is YAML too.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from registrykit.accesslog import AccessLog
from registrykit.tokenserver import TokenServer

READY_TIMEOUT = 10.0  # seconds for a registry to answer its first /v2/
STOP_TIMEOUT = 5.0
PORT_ATTEMPTS = 3  # a free port can be taken between finding it and the registry binding it


class RegistryStartError(RuntimeError):
    """The registry did not come up; the message says why, with its log's tail."""


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TokenAuth:
    """distribution's `auth: token` section."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


@dataclass(frozen=True)
class TlsFiles:
    certificate: Path  # the server's chain, PEM
    key: Path
    ca_pem: Path  # the CA that signed it: what a client must trust


def registry_config(
    *,
    storage: Path,
    port: int,
    token: TokenAuth | None = None,
    tls: TlsFiles | None = None,
    proxy_remote: str | None = None,
) -> dict[str, Any]:
    """The registry's config (distribution 2.8 `configuration.Configuration`)."""
    http: dict[str, Any] = {
        "addr": f"127.0.0.1:{port}",
        "secret": "registrykit-not-a-secret",  # quiets the "no http secret" warning
    }
    if tls is not None:
        http["tls"] = {"certificate": str(tls.certificate), "key": str(tls.key)}
    config: dict[str, Any] = {
        "version": "0.1",
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http,
    }
    if token is not None:
        config["auth"] = {
            "token": {
                "realm": token.realm,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": str(token.rootcertbundle),
            }
        }
    if proxy_remote is not None:
        config["proxy"] = {"remoteurl": proxy_remote}
    return config


@dataclass
class Registry:
    """A running registry. `url` is `http(s)://127.0.0.1:PORT`; `host` is `127.0.0.1:PORT`."""

    name: str
    base: Path
    port: int
    url: str
    process: subprocess.Popen[bytes]
    access_log: AccessLog
    error_log: Path
    startup_seconds: float
    ca_pem: Path | None = None  # TLS: the CA a client must trust
    token_server: TokenServer | None = None  # token auth: its token server
    upstream: Registry | None = None  # a pull-through cache: the registry it mirrors
    _handles: list[IO[bytes]] = field(default_factory=list, repr=False)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.error_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, remove_storage: bool = True) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        for handle in self._handles:
            handle.close()
        self._handles.clear()
        if remove_storage:
            shutil.rmtree(self.base / "storage", ignore_errors=True)


def _client_context(ca_pem: Path | None) -> ssl.SSLContext | None:
    return None if ca_pem is None else ssl.create_default_context(cafile=str(ca_pem))


def _answers(port: int, context: ssl.SSLContext | None) -> bool:
    connection: http.client.HTTPConnection
    if context is not None:
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=1, context=context)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/v2/")
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def start_registry(
    executable: str,
    base: Path,
    *,
    name: str = "registry",
    token: TokenAuth | None = None,
    tls: TlsFiles | None = None,
    proxy_remote: str | None = None,
    ready_timeout: float = READY_TIMEOUT,
) -> Registry:
    """Start `docker-registry serve` in `base` and wait until it answers `GET /v2/`."""
    base.mkdir(parents=True, exist_ok=True)
    storage = base / "storage"
    storage.mkdir(exist_ok=True)
    context = _client_context(tls.ca_pem if tls else None)
    scheme = "https" if tls else "http"
    problem = ""
    for attempt in range(PORT_ATTEMPTS):
        port = free_port()
        config_path = base / "config.yml"
        config = registry_config(
            storage=storage, port=port, token=token, tls=tls, proxy_remote=proxy_remote
        )
        config_path.write_text(json.dumps(config, indent=1))
        access = (base / "access.log").open("wb")
        errors = (base / "registry.log").open("wb")
        started = time.monotonic()
        process = subprocess.Popen(
            [executable, "serve", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=access,
            stderr=errors,
            cwd=base,
        )
        url = f"{scheme}://127.0.0.1:{port}"
        registry = Registry(
            name=name,
            base=base,
            port=port,
            url=url,
            process=process,
            access_log=AccessLog(base / "access.log", url, context),
            error_log=base / "registry.log",
            startup_seconds=0.0,
            ca_pem=tls.ca_pem if tls else None,
            _handles=[access, errors],
        )
        deadline = started + ready_timeout
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(port, context):
                registry.startup_seconds = time.monotonic() - started
                return registry
            time.sleep(0.02)
        exited = process.poll()
        registry.stop(remove_storage=False)
        tail = registry.log_tail()
        if exited is not None and "address already in use" in tail and attempt + 1 < PORT_ATTEMPTS:
            problem = tail
            continue
        what = f"exited with {exited}" if exited is not None else f"no answer in {ready_timeout} s"
        raise RegistryStartError(f"{name}: docker-registry {what}: {tail or problem}")
    raise RegistryStartError(f"{name}: no free port after {PORT_ATTEMPTS} tries: {problem}")


def port_is_closed(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port any more (a teardown check)."""
    with contextlib.closing(socket.socket()) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0
