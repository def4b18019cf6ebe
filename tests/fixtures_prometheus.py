"""Pytest plugin: a real Prometheus server (and promtool) for the contrib/ tests.

`prometheus` is a factory: `prometheus(["127.0.0.1:PORT", ...], rule_files=[...])` starts
Debian's /usr/bin/prometheus on a free loopback port with a configuration generated into the
test's temporary directory (TSDB there too; scrape and rule evaluation every second), waits for
`/-/ready` and returns a `PrometheusServer`:

- `query(expr)` - an instant query through `/api/v1/query`: the result list as the API gives it
  (each item `{"metric": {labels}, "value": [time, "text"]}`); `value_of(item)` makes the float;
- `wait_for(expr, predicate, timeout)` - polls `query(expr)` (short sleeps, bounded by
  `timeout`) until `predicate(result)` holds and returns that result; fails with the last result
  and the log's tail otherwise, and at once if Prometheus exits;
- `alerts()`, `rule_groups()`, `targets()` - the matching API lists;
- `startup_seconds` - from launch to `/-/ready`.

Every server is stopped at teardown. `run_prometheus()` is the same as a context manager, for
fixtures of a wider scope. `prometheus_binary` and `promtool` are the paths of the binaries.

Without the binaries the tests using them are skipped - except when CI=true, where they fail
(.ci/run installs Debian's `prometheus` package, which has both).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
READY_TIMEOUT = 30.0  # seconds for /-/ready; it takes about 0.1 s here
WAIT_TIMEOUT = 20.0  # default bound for wait_for
POLL = 0.05  # seconds between polls
START_ATTEMPTS = 3  # a free port can be taken between choosing it and Prometheus binding it

Result = list[dict[str, Any]]


class PrometheusError(Exception):
    """Prometheus did not start, stopped, or its API answered with an error; says why."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the test - or fail it under CI=true, where it must run."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: this test must run, not skip)")
    pytest.skip(reason)


def require_binary(path: str, package: str = "prometheus") -> str:
    """`path` if it is an executable file, else skip (fail under CI=true)."""
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        found = shutil.which(Path(path).name)
        if found is None:
            unavailable(f"{path} is missing: apt-get install {package}")
        return found
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def value_of(item: dict[str, Any]) -> float:
    """The float of one instant-vector item (`{"metric": ..., "value": [t, "12"]}`)."""
    return float(item["value"][1])


def config_text(
    targets: Sequence[str],
    rule_files: Sequence[Path],
    *,
    job: str,
    interval: str,
) -> str:
    """The generated prometheus.yml (JSON is YAML): one static job over `targets`."""
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(Path(f).resolve()) for f in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }
    return json.dumps(config, indent=2) + "\n"


@dataclass
class PrometheusServer:
    """One running Prometheus; `stop()` ends it (idempotent)."""

    base: Path
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    startup_seconds: float = 0.0
    stopped: bool = field(default=False, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.base / "prometheus.log"

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise PrometheusError(f"GET {path} {params or ''}: HTTP {exc.code}: {detail}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"GET {path} {params or ''}: {body}")
        return body["data"]

    def query(self, expr: str) -> Result:
        """Instant query: the API's result list (a scalar comes back as one item)."""
        data = self._get("/api/v1/query", {"query": expr})
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[Result], bool] = bool,
        timeout: float = WAIT_TIMEOUT,
    ) -> Result:
        """Poll `query(expr)` until `predicate(result)`; return that result."""
        deadline = time.monotonic() + timeout
        result: Result = []
        while True:
            if not self.alive():
                raise PrometheusError(
                    f"prometheus exited with {self.process.returncode} ({self.log_tail()})"
                )
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{expr!r}: condition not met within {timeout:g} s; last result: "
                    f"{json.dumps(result)[:2000]}"
                )
            time.sleep(POLL)

    def alerts(self) -> Result:
        return list(self._get("/api/v1/alerts")["alerts"])

    def rule_groups(self) -> Result:
        return list(self._get("/api/v1/rules")["groups"])

    def targets(self) -> Result:
        return list(self._get("/api/v1/targets")["activeTargets"])

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()


def _ready(server: PrometheusServer, timeout: float) -> bool:
    """Poll /-/ready; False if Prometheus exited first (port taken, bad config)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            return False
        try:
            with urllib.request.urlopen(server.url + "/-/ready", timeout=2) as answer:
                if answer.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(POLL / 2)
    raise PrometheusError(f"prometheus not ready within {timeout:g} s ({server.log_tail()})")


def start_prometheus(
    base: Path,
    targets: Sequence[str],
    *,
    rule_files: Sequence[Path] = (),
    binary: str = PROMETHEUS,
    job: str = "pullwatch",
    interval: str = "1s",
    lifecycle: bool = False,
) -> PrometheusServer:
    """Start Prometheus scraping `targets` (HOST:PORT, loopback) in `base`; wait until ready."""
    base.mkdir(parents=True, exist_ok=True)
    config = base / "prometheus.yml"
    config.write_text(config_text(targets, rule_files, job=job, interval=interval))
    problem = ""
    for _ in range(START_ATTEMPTS):
        port = free_port()
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={base / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        if lifecycle:
            command.append("--web.enable-lifecycle")
        log = (base / "prometheus.log").open("wb")
        started = time.monotonic()
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=base
        )
        server = PrometheusServer(base=base, port=port, process=process, log=log)
        try:
            if _ready(server, READY_TIMEOUT):
                server.startup_seconds = time.monotonic() - started
                return server
        except BaseException:
            server.stop()
            raise
        server.stop()
        problem = server.log_tail()
        if "address already in use" not in problem:
            break
    raise PrometheusError(f"prometheus exited before it was ready ({problem})")


@contextlib.contextmanager
def run_prometheus(
    base: Path, targets: Sequence[str], **options: Any
) -> Iterator[PrometheusServer]:
    """`start_prometheus` as a context manager: stopped on the way out."""
    binary = require_binary(options.pop("binary", PROMETHEUS))
    server = start_prometheus(base, targets, binary=binary, **options)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """The Prometheus server binary (skip without it; fail under CI=true)."""
    return require_binary(PROMETHEUS)


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool (skip without it; fail under CI=true)."""
    return require_binary(PROMTOOL)


@pytest.fixture
def prometheus(prometheus_binary: str, tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """Factory: `prometheus(targets, rule_files=(), job=..., interval="1s")` -> a running server."""
    servers: list[PrometheusServer] = []

    def start(targets: Sequence[str], **options: Any) -> PrometheusServer:
        base = tmp_path / f"prometheus-{len(servers)}"
        server = start_prometheus(base, targets, binary=prometheus_binary, **options)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
