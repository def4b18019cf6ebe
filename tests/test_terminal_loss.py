"""The dashboard in a real process on a pseudo-terminal: terminal loss, and `q` under hung probes.

`pullwatch demo` runs on the slave side of a pty, as over SSH. Closing the master is what sshd
does when the connection drops: the app must exit by itself within a few seconds (SIGHUP when
the pty is its controlling terminal, else the periodic terminal check), and still clean up (the
demo's temporary directory is removed). With every probe hanging, `q` must still quit promptly.

Time bounds here are generous correctness bounds (an exit, not a benchmark): 10 s.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="pty semantics tested on Linux")

EXIT_BOUND = 10.0  # seconds: a generous bound for "exits by itself"

HUNG_DEMO = """
import sys
from pullwatch.demo import DEMO_INTERVAL, start_demo
from pullwatch.tui.app import make_app

demo = start_demo(traffic=False)
demo.model.faults.hang = {"any"}  # every probe hangs: nothing ever answers
try:
    app = make_app(demo.runtime, demo=True, interval=DEMO_INTERVAL)
    app.run()
finally:
    demo.close()
print("pullwatch-exited", app.return_code, file=sys.stderr)
"""


class PtyApp:
    """A child process whose stdin/stdout/stderr are a pty's slave; we hold the master."""

    def __init__(self, argv: list[str], tmp: Path, *, controlling: bool) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

        def setup() -> None:  # runs in the child after setsid()
            if controlling:
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        env = {
            **os.environ,
            "TERM": "xterm-256color",
            "TMPDIR": str(tmp),
            "HOME": str(tmp),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
        env.pop("NO_COLOR", None)
        self.process = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=setup,  # only an ioctl: safe between fork and exec
            env=env,
            close_fds=True,
        )
        os.close(slave)
        self.output = b""
        self.closed = False

    def read_until(self, needle: bytes, timeout: float = 30.0, *, after: bytes = b"") -> bool:
        """Read until `needle` appears (past the first `after`, if given)."""
        deadline = time.monotonic() + timeout

        def found() -> bool:
            start = self.output.find(after) if after else 0
            return start >= 0 and needle in self.output[start + len(after) :]

        while not found() and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    return False
                if not chunk:
                    return False
                self.output += chunk
        return found()

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close_terminal(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.master)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.close_terminal()


@pytest.fixture
def pty_tmp(tmp_path: Path) -> Iterator[Path]:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    yield tmp


@pytest.mark.parametrize("controlling", [True, False], ids=["controlling tty", "no ctty"])
def test_dashboard_exits_when_its_terminal_disappears(pty_tmp: Path, controlling: bool) -> None:
    app = PtyApp(
        [sys.executable, "-m", "pullwatch", "demo", "--no-traffic"],
        pty_tmp,
        controlling=controlling,
    )
    try:
        assert app.read_until(b"identities"), app.output[-500:]  # the dashboard is up
        assert app.process.poll() is None
        if not controlling:  # past one periodic terminal check: a live terminal is not "lost"
            time.sleep(2.5)
            assert app.process.poll() is None, "exited while its terminal was still there"
        started = time.monotonic()
        app.close_terminal()  # the SSH connection drops
        code = app.wait(EXIT_BOUND)
        took = time.monotonic() - started
    finally:
        app.kill()
    assert code is not None, f"still running {EXIT_BOUND} s after its terminal went away"
    assert code == 129, code  # 128 + SIGHUP: left through its own handler, not killed
    assert took < EXIT_BOUND
    assert list(pty_tmp.iterdir()) == []  # the demo cleaned up its temporary directory


def test_q_quits_promptly_while_every_probe_hangs(pty_tmp: Path) -> None:
    app = PtyApp([sys.executable, "-c", HUNG_DEMO], pty_tmp, controlling=True)
    try:
        assert app.read_until(b"probing 6"), app.output[-500:]  # all six probes hang
        started = time.monotonic()
        app.send(b"q")
        assert app.read_until(b"pullwatch-exited"), app.output[-800:]
        app.read_until(b"\n", after=b"pullwatch-exited")  # the exit code follows
        code = app.wait(EXIT_BOUND)
        took = time.monotonic() - started
    finally:
        app.kill()
    assert code == 0, app.output[-800:]
    assert took < EXIT_BOUND
    assert b"Traceback" not in app.output
    assert b"pullwatch-exited 0" in app.output or b"pullwatch-exited None" in app.output
    assert list(pty_tmp.iterdir()) == []


def test_a_write_to_a_lost_terminal_is_dropped_not_raised() -> None:
    """The stream Textual writes through: after the first failed write (EIO: the pty's other
    end is gone) nothing raises, so Textual's writer thread lives on and its queue drains - a
    dead writer with a full queue made shutdown block forever (1 run in 3 under this test)."""
    from pullwatch.tui.terminal import HangupSafeStream

    master, slave = os.openpty()
    stream = os.fdopen(slave, "w", buffering=1)
    safe = HangupSafeStream(stream)
    safe.write("frame 1\n")
    assert not safe.lost and os.read(master, 100) == b"frame 1\r\n"
    os.close(master)  # the SSH connection drops
    for n in range(100):  # far more than Textual's queue of 30
        assert safe.write(f"frame {n}\n") == len(f"frame {n}\n")
        safe.flush()
    assert safe.lost and safe.isatty() in (True, False)
    with contextlib.suppress(OSError):  # its own buffer still holds a frame it cannot write
        stream.close()
