"""Shared machinery for the benchmarks: result tables, the simulated hub in its own process,
throwaway config/data directories, identities and secrets, and processes under a pseudo-terminal.

Everything runs on loopback against `pullwatch simhub` started as a separate process (so its
CPU is not ours), in temporary directories (never the user's config, data or keyring).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchkeyring import secret_for

if TYPE_CHECKING:
    from _secretservice import SecretService

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable
# The program as the user starts it: the `pullwatch` console script pip wrote next to the
# interpreter (not `python -m pullwatch`, which also pays for runpy), run by that interpreter so
# that `-X importtime` can be put in front. Without the script (a bare source checkout), -m.
_SCRIPT = Path(PYTHON).parent / "pullwatch"
PULLWATCH = [PYTHON, str(_SCRIPT)] if _SCRIPT.is_file() else [PYTHON, "-m", "pullwatch"]
KEYRING_BACKEND = "benchkeyring.BenchKeyring"
SIM_LATENCY = 0.050  # seconds the simulated hub adds to every answer
PYCACHE = Path(tempfile.gettempdir()) / "pullwatch-bench-pycache"
# The request pace (hub/pacing.py, default 25/s after a burst of 250) lifted: for untimed
# warm-up runs, and for figures of the engine itself, which say so. What the user runs is
# measured at the default pace. (The pacer keeps a quarter second of the rate in reserve out of
# the burst: 4000/s leaves 9000 of 10000, more than a cold round of 1000 identities needs.)
LIFTED_PACE = {"PULLWATCH_MAX_RATE": "4000", "PULLWATCH_BURST": "10000"}
# compare.py runs the same benchmarks against another source tree (a `src` directory)
SOURCE_TREE = os.environ.get("PULLWATCH_BENCH_SRC", "")


# -- results --------------------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    measured: str
    target: str = ""
    verdict: str = ""  # PASS, MISS, or "" for a figure without a target


@dataclass
class Table:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    headers: tuple[str, str, str, str] = ("figure", "measured (median)", "target", "verdict")

    def add(self, figure: str, measured: str, target: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        self.rows.append(Row(figure, measured, target, verdict))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def render(self) -> str:
        cells = [self.headers, *((r.figure, r.measured, r.target, r.verdict) for r in self.rows)]
        widths = [max(len(c[i]) for c in cells) for i in range(4)]
        rule = "  ".join("-" * w for w in widths)
        lines = [f"== {self.title} ==", ""]
        for n, c in enumerate(cells):
            lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
            if n == 0:
                lines.append(rule)
        lines += [f"  {text}" for text in self.notes]
        return "\n".join(lines) + "\n"

    def print(self) -> None:
        print(self.render(), flush=True)

    @property
    def misses(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "MISS"]

    def to_json(self) -> str:
        """One line: how a table measured in a child process comes back (`from_json`)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Table:
        data = json.loads(text)
        return cls(
            title=data["title"],
            rows=[Row(**row) for row in data["rows"]],
            notes=list(data["notes"]),
            headers=tuple(data["headers"]),
        )


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def secs(value: float) -> str:
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def mib(value_bytes: float) -> str:
    return f"{value_bytes / 2**20:.1f} MiB"


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


# -- identities, config, environment --------------------------------------------------------


def label_for(i: int) -> str:
    return f"id{i:04d}"


def username_for(i: int) -> str:
    return f"bench{i:04d}"


def write_accounts(path: Path, n: int, used: Callable[[int], int] = lambda i: i % 150) -> Path:
    """The simulated hub's accounts: one per identity, 200 pulls per 6 h, some already used."""
    parts = ["[anonymous]\nlimit = 100\nwindow = 21600\n"]
    for i in range(1, n + 1):
        parts.append(
            f'[[account]]\nusername = "{username_for(i)}"\nsecret = "{secret_for(label_for(i))}"\n'
            f"limit = 200\nwindow = 21600\nused = {used(i)}\n"
        )
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_config(
    config_dir: Path, n: int, *, interval: int = 60, concurrency: int | None = None
) -> Path:
    """A pullwatch config with `n` credentialed identities (secrets: the benchmark keyring)."""
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = ["version = 1", "", "[settings]", f"interval = {interval}"]
    if concurrency is not None:
        lines.append(f"concurrency = {concurrency}")
    for i in range(1, n + 1):
        lines += [
            "",
            "[[identity]]",
            f'label = "{label_for(i)}"',
            f'username = "{username_for(i)}"',
        ]
    path = config_dir / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@dataclass
class Workdir:
    """A throwaway root: config, data and XDG dirs inside, removed on exit."""

    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def env(
        self, registry: str | None = None, *, keyring: SecretService | None = None, **extra: str
    ) -> dict[str, str]:
        """Environment for a pullwatch subprocess: our dirs, loopback, and as its keyring the
        real Secret Service `keyring` (keyring's own choice of backend, as a user has it) or,
        without one, the benchmark keyring (in memory)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PULLWATCH_", "PYTHON_KEYRING", "NO_COLOR"))
            and k not in ("COLUMNS", "LINES", "TEXTUAL", "PYTHONDONTWRITEBYTECODE")
        }
        pythonpath = [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        if SOURCE_TREE:  # compare.py: another pullwatch source tree first
            pythonpath.insert(0, SOURCE_TREE)
        env.update(
            PULLWATCH_CONFIG_DIR=str(self.config_dir),
            PULLWATCH_DATA_DIR=str(self.data_dir),
            PYTHON_KEYRING_BACKEND=KEYRING_BACKEND,
            PYTHONPATH=os.pathsep.join(pythonpath),
            XDG_CONFIG_HOME=str(self.root / "xdg-config"),
            XDG_DATA_HOME=str(self.root / "xdg-data"),
            XDG_CACHE_HOME=str(self.root / "xdg-cache"),
            # Byte code cached as an installed package has it (pip compiles on install), kept
            # outside the working tree; the first run of each program fills it.
            PYTHONPYCACHEPREFIX=str(PYCACHE),
            TERM="xterm-256color",
            NO_PROXY="127.0.0.1,localhost",
        )
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            env.pop(name, None)
        if keyring is not None:
            del env["PYTHON_KEYRING_BACKEND"]
            env.pop("KEYRING_PROPERTY_PREFERRED_COLLECTION", None)
            env.update(keyring.client_env())
        if registry is not None:
            env["PULLWATCH_REGISTRY"] = registry
        env.update(extra)
        return env


@contextlib.contextmanager
def workdir(prefix: str = "pullwatch-bench-") -> Iterator[Workdir]:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield Workdir(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- the simulated hub, in its own process --------------------------------------------------


class SimHub:
    """`pullwatch simhub` with `n` accounts and added latency, in a separate process."""

    def __init__(self, n: int, latency: float, directory: Path, **used: Any) -> None:
        accounts = write_accounts(directory / f"accounts-{n}.toml", n, **used)
        self._proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "pullwatch",
                "simhub",
                "--accounts",
                str(accounts),
                "--latency",
                f"{latency}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if "listening on" not in line:
            self._proc.kill()
            raise RuntimeError(f"simhub did not start: {line!r}")
        self.url = line.split()[-1]
        self.n = n

    def _call(self, path: str, method: str = "GET", body: bytes | None = None) -> Any:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)

    def state(self) -> dict[str, Any]:
        return dict(self._call("/_sim/state"))

    def counters(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.state()["counters"].items()}

    def reset_counters(self) -> None:
        self._call("/_sim/reset-counters", "POST", b"")

    def pull(self, who: str, n: int = 1) -> None:
        self._call(f"/_sim/pull?who={who}&n={n}", "POST", b"")

    def pull_many(self, pulls: Sequence[tuple[str, int]]) -> None:
        """Other clients pull: `(username, n)` each, several at a time (admin calls, no
        latency, not counted)."""
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda p: self.pull(*p), pulls))

    def remaining(self) -> dict[str, int]:
        """Remaining pulls per account username, from the simulator's own state."""
        return {str(b["who"]): int(b["remaining"]) for b in self.state()["buckets"]}

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> SimHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- processes ------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss(pid: int) -> int:
    """VmHWM (peak resident set) of a live process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


@dataclass
class Finished:
    returncode: int
    wall: float
    max_rss: int  # bytes
    cpu: float
    stdout: bytes
    stderr: bytes


def run_measured(
    argv: Sequence[str], env: dict[str, str], timeout: float = 600, stdin: bytes | None = None
) -> Finished:
    """Run to the end: wall time, peak RSS and CPU of this command alone.

    Started through `_rusage.py`, a small process, so that the peak RSS is the command's own
    (see there); wall time is measured there too, from spawn to exit.
    """
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [PYTHON, str(BENCH_DIR / "_rusage.py"), str(write_fd), "--", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            pass_fds=(write_fd,),
        )
    finally:
        os.close(write_fd)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
        with os.fdopen(read_fd, "rb") as pipe:
            report = json.loads(pipe.read() or b"{}")
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    if "returncode" not in report:
        raise RuntimeError(f"{argv[:4]} could not be measured: {err[-300:]!r}")
    return Finished(
        returncode=int(report["returncode"]),
        wall=float(report["wall"]),
        max_rss=int(report["max_rss"]),
        cpu=float(report["cpu"]),
        stdout=out,
        stderr=err,
    )


class PtyApp:
    """A program on a pseudo-terminal (its controlling terminal), everything it writes recorded
    with timestamps - what an SSH session would carry."""

    def __init__(
        self, argv: Sequence[str], env: dict[str, str], *, cols: int = 120, rows: int = 40
    ) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {**env, "COLUMNS": str(cols), "LINES": str(rows)}

        def controlling_terminal() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(argv),
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=controlling_terminal,
            close_fds=True,
        )
        os.close(slave)
        self.pid = self.proc.pid
        self.chunks: list[tuple[float, bytes]] = []  # (seconds since start, bytes)
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._seen = threading.Condition(self._lock)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            with self._lock:
                if not data:
                    self._seen.notify_all()
                    return
                self.chunks.append((time.perf_counter() - self.started, data))
                self._buffer += data
                self._seen.notify_all()

    def wait_for(self, marker: bytes, timeout: float, start: int = 0) -> float | None:
        """Seconds since start when `marker` first appeared after byte `start`; None on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                at = self._buffer.find(marker, start)
                if at >= 0:
                    # when the chunk that completed the marker arrived
                    end, total = at + len(marker), 0
                    for when, data in self.chunks:
                        total += len(data)
                        if total >= end:
                            return when
                if not self._reader.is_alive() and not self._seen.wait(0):
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._seen.wait(min(left, 0.5))

    @property
    def size(self) -> int:
        with self._lock:
            return len(self._buffer)

    def output(self) -> bytes:
        with self._lock:
            return bytes(self._buffer)

    def bytes_between(self, t0: float, t1: float) -> int:
        with self._lock:
            return sum(len(d) for when, d in self.chunks if t0 <= when < t1)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def stop(self, keys: bytes = b"q", timeout: float = 10) -> int | None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.send(keys)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self._reader.join(5)
        with contextlib.suppress(OSError):
            os.close(self.master)
        return self.proc.returncode


class Screen:
    """What a terminal shows for a `PtyApp`'s output: a VT emulator (pyte) fed chunk by chunk,
    so a clock can stop at the chunk after which the screen shows something - not at the first
    byte of it, and not at text that is drawn and then overwritten before it is seen."""

    def __init__(self, app: PtyApp, cols: int, rows: int) -> None:
        try:
            import pyte
        except ImportError:
            raise SystemExit(
                "the benchmarks read the terminal's screen with pyte: "
                "pip install -r benchmarks/requirements.txt"
            ) from None
        self.app = app
        self._screen = pyte.Screen(cols, rows)
        self._stream = pyte.ByteStream(self._screen)
        self._fed = 0  # chunks fed so far

    def lines(self) -> list[str]:
        return list(self._screen.display)

    def wait_until(
        self, shown: Callable[[list[str]], bool], timeout: float, after: float = 0.0
    ) -> float | None:
        """Seconds since the app's start at which the screen first satisfied `shown`, looking
        only at chunks that arrived at or after `after`; None on timeout (or the app ended)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.app._lock:
                chunks = self.app.chunks[self._fed :]
            for when, data in chunks:
                self._stream.feed(data)
                self._fed += 1
                if when >= after and shown(self.lines()):
                    return when
            left = deadline - time.monotonic()
            if left <= 0 or (self.app.proc.poll() is not None and not chunks):
                return None
            with self.app._lock:
                if len(self.app.chunks) == self._fed:
                    self.app._seen.wait(min(left, 0.2))


# -- the simulated hub's request counters -------------------------------------------------------

KINDS = ("ping", "token", "head", "manifest_get", "other")


def counts_delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Requests of each kind the hub counted between two reads of its counters."""
    return {k: after.get(k, 0) - before.get(k, 0) for k in KINDS}


def per_identity(counts: dict[str, int], n: int) -> str:
    shown = [f"{k} {counts[k] / n:.2f}" for k in ("ping", "token", "head") if counts.get(k)]
    shown.append(f"GET {counts.get('manifest_get', 0)}")
    return ", ".join(shown)
