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

`ServeProcess.start(command, env)` runs a real `pullwatch serve --listen 127.0.0.1:0 ...` and
reads its URL from the first line it writes to stderr (bounded); `metrics()` scrapes it,
`wait_for_round()` polls until its first probe round is in, `stop()` sends SIGTERM and returns
the exit code. The `pullwatch_serve` factory stops every process it started at teardown.

`stub_prometheus` is a stand-in for Prometheus's query API (a loopback server answering what the
test says), for what a real one will not do on demand: an HTML page, a 404, a hang.

Without the binaries the tests using them are skipped - except when CI=true, where they fail
(.ci/run installs Debian's `prometheus` package, which has both).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
READY_TIMEOUT = 30.0  # seconds for /-/ready; it takes about 0.1 s here
WAIT_TIMEOUT = 20.0  # default bound for wait_for
POLL = 0.05  # seconds between polls
SERVE_START_TIMEOUT = 30.0  # seconds for `pullwatch serve` to say where it listens
SERVE_STOP_TIMEOUT = 15.0
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


# -- pullwatch serve as a process ---------------------------------------------------------------


class ServeProcess:
    """A running `pullwatch serve`; stderr is collected line by line in `lines`."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = ""

    @classmethod
    def start(
        cls, command: Sequence[str], env: dict[str, str], timeout: float = SERVE_START_TIMEOUT
    ) -> ServeProcess:
        """Start `command` (a `pullwatch ... serve --listen 127.0.0.1:0`); wait for its URL."""
        process = subprocess.Popen(
            list(command), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        serve = cls(process)
        try:
            first = serve._next_line(timeout)
            match = re.search(r"serving (http://127\.0\.0\.1:\d+/metrics)", first or "")
            if match is None:
                raise PrometheusError(f"pullwatch serve did not start: {first or serve.stderr}")
            serve.url = match.group(1)
        except BaseException:
            serve.stop()
            raise
        return serve

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line)
        self._queue.put(None)

    def _next_line(self, timeout: float) -> str | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    @property
    def address(self) -> str:
        """HOST:PORT, Prometheus's `instance` for this target."""
        return self.url.split("://", 1)[1].split("/", 1)[0]

    def metrics(self, accept: str | None = None) -> str:
        request = urllib.request.Request(self.url, headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return str(answer.read().decode())

    def wait_for_round(self, timeout: float = WAIT_TIMEOUT) -> str:
        """Poll /metrics until the first probe round is in; return that exposition."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.metrics()
            if re.search(r"^pullwatch_rounds_total\{[^}]*\} [1-9]", body, re.MULTILINE):
                return body
            if self.process.poll() is not None or time.monotonic() >= deadline:
                raise AssertionError(f"no probe round from {self.url}: {self.stderr[-2000:]}")
            time.sleep(POLL)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = SERVE_STOP_TIMEOUT) -> int:
        """Stop it (SIGTERM: a clean exit 0) and return the exit code; kills if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._reader.join(timeout)
        return self.process.returncode


@pytest.fixture
def pullwatch_serve() -> Iterator[Callable[..., ServeProcess]]:
    """Factory: `pullwatch_serve(command, env)` -> a running `ServeProcess`, stopped at teardown."""
    started: list[ServeProcess] = []

    def start(command: Sequence[str], env: dict[str, str]) -> ServeProcess:
        serve = ServeProcess.start(command, env)
        started.append(serve)
        return serve

    try:
        yield start
    finally:
        for serve in started:
            serve.stop()


# -- a stand-in Prometheus API, for the fleet reader's failure paths -----------------------------


StubAnswer = tuple[int, str, bytes]  # status, content type, body


def vector_answer(result: list[dict[str, Any]]) -> StubAnswer:
    """A successful instant-query answer with this vector."""
    body = {"status": "success", "data": {"resultType": "vector", "result": result}}
    return 200, "application/json", json.dumps(body).encode()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a reader cancelling its other queries) is not an error; the
        rest is left to the test's assertions, not printed on stderr."""


class StubPrometheus:
    """A loopback HTTP server answering `/api/v1/query` (GET or POST) with `answer(expr)`;
    `queries` records (expr, time) in arrival order. Only for what a real Prometheus will not
    do on demand: an HTML page, a 404, a hang, a malformed body."""

    def __init__(self, answer: Callable[[str], StubAnswer] | None = None) -> None:
        self.answer: Callable[[str], StubAnswer] = answer or (lambda expr: vector_answer([]))
        self.queries: list[tuple[str, str]] = []
        self.hang = threading.Event()  # set: requests get no answer until stop()
        self._stopping = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, params: dict[str, list[str]]) -> None:
                if stub.hang.is_set():
                    stub._stopping.wait(30)
                    return
                expr = params.get("query", [""])[0]
                stub.queries.append((expr, params.get("time", [""])[0]))
                status, kind, body = stub.answer(expr)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._serve(urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._serve(urllib.parse.parse_qs(self.rfile.read(length).decode()))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._thread.join(timeout=5)
        self._httpd.server_close()


@pytest.fixture
def stub_prometheus() -> Iterator[StubPrometheus]:
    """A stand-in Prometheus API on loopback: empty answers until the test sets `answer`."""
    stub = StubPrometheus()
    try:
        yield stub
    finally:
        stub.stop()
