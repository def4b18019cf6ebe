"""A real Secret Service for the benchmarks: gnome-keyring-daemon inside `dbus-run-session`.

    with SecretService(root) as service:
        env = work.env(sim.url, keyring=service)   # pullwatch processes use it as the OS keyring

`dbus-run-session` (with the test suite's bus configuration, `tests/fixtures_keyring.py`:
nothing is activated on demand, so a daemon that died is not silently replaced by an empty one)
runs this file as its child. The child starts `gnome-keyring-daemon --foreground --unlock
--components=secrets` with the unlock password on its stdin (as a login manager does), waits
until `org.freedesktop.secrets` is on the bus, stores nothing, prints the bus address and then
waits for its stdin to close; it then stops the daemon and exits, and `dbus-run-session` stops
the bus. HOME and the XDG directories are in the benchmark's temporary directory: the user's own
keyring is never touched.

Which collection: the default one (`login`, created and unlocked by `--unlock`, items written
to disk encrypted, as on a desktop) when a write/read/delete probe works there; otherwise the
in-memory `session` collection through `KEYRING_PROPERTY_PREFERRED_COLLECTION` (the test
suite's fallback). `collection` says which was used; the tables print it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={socket_dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
SESSION_COLLECTION = "/org/freedesktop/secrets/collection/session"
KEYRING_PASSWORD = "pullwatch-bench-keyring-password"
READY = "pullwatch-bench-secret-service-ready "


class SecretServiceUnavailable(RuntimeError):
    pass


def missing_programs() -> list[str]:
    return [p for p in ("dbus-run-session", "gnome-keyring-daemon") if not shutil.which(p)]


class SecretService:
    """gnome-keyring on a private session bus run by `dbus-run-session`; a context manager."""

    def __init__(self, root: Path) -> None:
        missing = missing_programs()
        if missing:
            raise SecretServiceUnavailable(f"{', '.join(missing)} not installed")
        self.root = root
        self.home = root / "keyring-home"
        # unix socket paths are limited to ~107 bytes: a short directory of its own
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="pw-bus-"))
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.address = ""
        self.collection = "default (login)"
        self.preferred_collection: str | None = None
        config = root / "bus.conf"
        config.write_text(BUS_CONFIG.format(socket_dir=self.runtime_dir))
        env = self._base_env()
        self._log = (root / "secret-service.log").open("w")
        self._proc = subprocess.Popen(
            ["dbus-run-session", f"--config-file={config}", "--",
             sys.executable, str(Path(__file__).resolve()), "--serve"],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )  # fmt: skip
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith(READY):
            self.stop()
            raise SecretServiceUnavailable(f"no Secret Service: {self.log_tail()!r}")
        self.address = line[len(READY) :].strip()
        forced = os.environ.get("PULLWATCH_BENCH_COLLECTION", "")  # "session": the in-memory one
        problem = self._probe(None) if forced != "session" else "session collection asked for"
        if problem is not None:
            second = self._probe(SESSION_COLLECTION)
            if second is not None:
                self.stop()
                raise SecretServiceUnavailable(f"cannot store a secret: {problem}; {second}")
            self.preferred_collection = SESSION_COLLECTION
            self.collection = "session (in memory)"

    def _base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY")
            and not k.startswith(("KEYRING_PROPERTY_", "PYTHON_KEYRING", "PULLWATCH_"))
        }
        env.update(
            HOME=str(self.home),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_CACHE_HOME=str(self.home / ".cache"),
            XDG_RUNTIME_DIR=str(self.runtime_dir),
        )
        return env

    def client_env(self) -> dict[str, str]:
        """What a client process needs to find this Secret Service (and only this one)."""
        env = {"DBUS_SESSION_BUS_ADDRESS": self.address, "XDG_RUNTIME_DIR": str(self.runtime_dir)}
        if self.preferred_collection:
            env["KEYRING_PROPERTY_PREFERRED_COLLECTION"] = self.preferred_collection
        return env

    def _probe(self, collection: str | None) -> str | None:
        code = (
            "from keyring.backends import SecretService as S\n"
            "k = S.Keyring()\n"
            "k.set_password('pullwatch-bench-probe', 'probe', 'v')\n"
            "assert k.get_password('pullwatch-bench-probe', 'probe') == 'v'\n"
            "k.delete_password('pullwatch-bench-probe', 'probe')\n"
        )
        env = {**self._base_env(), **self.client_env()}
        env.pop("KEYRING_PROPERTY_PREFERRED_COLLECTION", None)
        if collection:
            env["KEYRING_PROPERTY_PREFERRED_COLLECTION"] = collection
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
        if done.returncode == 0:
            return None
        lines = done.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit status {done.returncode}"

    def store(self, secrets: Sequence[tuple[str, str]], env: dict[str, str]) -> float:
        """Store (label, secret) pairs through pullwatch's SecretStore in a separate process
        (the pullwatch processes' keyring); returns the seconds it took."""
        code = (
            "import sys\n"
            "from keyring.backends import SecretService as S\n"
            "from pullwatch.identities.secrets import SecretStore\n"
            "store = SecretStore(S.Keyring(), timeout=60)\n"
            "for line in sys.stdin:\n"
            "    label, _, secret = line.rstrip('\\n').partition('\\t')\n"
            "    store.set(label, secret)\n"
        )
        text = "".join(f"{label}\t{secret}\n" for label, secret in secrets)
        problem = ""
        for _ in range(3):  # gnome-keyring now and then drops the first write of a new run
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", code],
                env=env,
                input=text,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if done.returncode == 0:
                return time.perf_counter() - started
            problem = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"
            print(f"  .. storing secrets failed, again: {problem}", file=sys.stderr, flush=True)
            time.sleep(2)
        raise RuntimeError(f"storing secrets failed: {problem}; {self.log_tail()}")

    def alive(self) -> bool:
        return self._proc.poll() is None

    def restarts(self) -> int:
        """How often the daemon aborted and was started again (see `serve`)."""
        self._log.flush()
        return (self.root / "secret-service.log").read_text(errors="replace").count(RESTARTED)

    def log_tail(self) -> str:
        self._log.flush()
        text = (self.root / "secret-service.log").read_text(errors="replace")
        return text[-400:]

    def stop(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()  # the child stops the daemon; dbus-run-session the bus
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._log.close()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def __enter__(self) -> SecretService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the child of dbus-run-session -------------------------------------------------------------


RESTARTED = "pullwatch-bench: gnome-keyring-daemon exited; restarted"
MAX_RESTARTS = 5


def _start_daemon() -> subprocess.Popen[str]:
    control = Path(os.environ["XDG_RUNTIME_DIR"]) / "keyring"
    daemon = subprocess.Popen(
        ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets",
         f"--control-directory={control}"],
        stdin=subprocess.PIPE, stdout=sys.stderr, stderr=sys.stderr, text=True,
    )  # fmt: skip
    assert daemon.stdin is not None
    daemon.stdin.write(KEYRING_PASSWORD)  # --unlock reads the password from stdin
    daemon.stdin.close()
    return daemon


def _wait_for_name(daemon: subprocess.Popen[str]) -> bool:
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection

    deadline = time.monotonic() + 15
    with open_dbus_connection(bus="SESSION") as bus:
        while True:
            reply = bus.send_and_get_reply(message_bus.NameHasOwner("org.freedesktop.secrets"))
            if reply.body[0]:
                return True
            if daemon.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def serve() -> int:
    """The child of dbus-run-session: the daemon up until stdin closes.

    gnome-keyring-daemon (46.x) now and then aborts on a GLib assertion when a client that
    created items disconnects while another one asks for the collection; its login keyring is
    on disk (unlocked again with the same password), so it is started again and the benchmark
    is told (RESTARTED in the log: `SecretService.restarts`)."""
    daemon = _start_daemon()
    stop = threading.Event()
    try:
        if not _wait_for_name(daemon):
            print("gnome-keyring-daemon did not come up", file=sys.stderr)
            return 1
        print(READY + os.environ["DBUS_SESSION_BUS_ADDRESS"], flush=True)

        def watch() -> None:
            nonlocal daemon
            restarts = 0
            while not stop.wait(0.05):
                if daemon.poll() is not None and restarts < MAX_RESTARTS:
                    restarts += 1
                    print(RESTARTED, file=sys.stderr, flush=True)
                    daemon = _start_daemon()
                    _wait_for_name(daemon)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        sys.stdin.read()  # until the benchmark closes it
        stop.set()
        watcher.join()
        return 0
    finally:
        daemon.terminate()
        try:
            daemon.wait(5)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(5)


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    sys.exit(serve())
