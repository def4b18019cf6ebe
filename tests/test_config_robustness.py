"""Config robustness beyond the store's own tests (tests/test_store.py covers every parse error):

- three processes renaming, removing and changing settings at once lose no edit;
- another pullwatch holding the lock is a clean, one-line error, not a hang or a lost file;
- every CLI command meets a corrupt, unknown-key, wrong-type or newer-version config with one
  line and the documented exit code, and never rewrites the file;
- the dashboard meets a config that went bad on disk while it runs: the edit is refused in the
  form, the file is kept byte for byte, and the app keeps watching what it had.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import keyring
import pytest

from pullwatch.cli import main
from pullwatch.demo import Demo
from pullwatch.identities import store as store_module
from pullwatch.identities.secrets import MemoryKeyring, SecretStore
from pullwatch.identities.store import ConfigError, Identity, IdentityStore
from pullwatch.paths import Paths
from pullwatch.simhub import SimHubServer
from pullwatch.tui.app import make_app
from pullwatch.tui.screens.identity_form import IdentityForm

_RACER = """
import sys, time
from pathlib import Path
from pullwatch.identities.secrets import MemoryKeyring, SecretStore
from pullwatch.identities.store import Identity, IdentityStore

config, lock, role, go, count = sys.argv[1:6]
store = IdentityStore(Path(config), SecretStore(MemoryKeyring(), timeout=5), lock_path=Path(lock))
deadline = time.monotonic() + 30
while not Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.002)
for i in range(int(count)):
    if role == "renamer":  # add, then edit (rename + threshold)
        store.add(Identity(f"r-{i}"))
        store.update(f"r-{i}", Identity(f"r-{i}-renamed", warn_below=i))
    elif role == "remover":  # add two, remove one
        store.add(Identity(f"k-{i}"))
        store.add(Identity(f"x-{i}"))
        store.remove(f"x-{i}")
    else:  # settings, interleaved with the others' identity edits
        store.update_settings(interval=10 + i, warn_below=i)
"""


def test_three_processes_editing_at_once_lose_no_edit(tmp_path: Path, paths: Paths) -> None:
    count = 12
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _RACER,
                str(paths.config_file),
                str(paths.config_lock),
                role,
                str(go),
                str(count),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role in ("renamer", "remover", "settings")
    ]
    time.sleep(0.2)
    go.touch()
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
    config = IdentityStore(paths.config_file, SecretStore(MemoryKeyring())).load()
    expected = ["anonymous"]
    got = {i.label: i for i in config.identities}
    assert set(got) == (
        {"anonymous"} | {f"r-{i}-renamed" for i in range(count)} | {f"k-{i}" for i in range(count)}
    ), set(got) ^ set(expected)
    assert all(got[f"r-{i}-renamed"].warn_below == i for i in range(count))
    assert (config.settings.interval, config.settings.warn_below) == (10 + count - 1, count - 1)
    assert not [p for p in paths.config_dir.iterdir() if p.name.endswith(".tmp")]


def test_a_held_lock_is_a_clean_error_and_the_file_is_kept(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = IdentityStore(paths.config_file, SecretStore(MemoryKeyring()),
                          lock_path=paths.config_lock)  # fmt: skip
    store.add(Identity("office"))
    raw = paths.config_file.read_bytes()
    monkeypatch.setattr(store_module, "LOCK_TIMEOUT", 0.3)
    fd = os.open(paths.config_lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another pullwatch, stuck mid-edit
    try:
        started = time.monotonic()
        with pytest.raises(ConfigError, match="another pullwatch has been editing the config"):
            store.add(Identity("home"))
        assert time.monotonic() - started < 5  # a generous bound: it gives up, not hangs
    finally:
        os.close(fd)
    assert paths.config_file.read_bytes() == raw
    assert store.add(Identity("home")).labels == ["anonymous", "office", "home"]


BAD_CONFIGS = {
    "corrupt TOML": b'version = 1\n[[identity]]\nlabel = "ci\n',
    "unknown key": b"version = 1\ncolour = 'red'\n",
    "wrong type": b'[settings]\ninterval = "60"\n',
    "newer version": b'version = 7\n[[identity]]\nlabel = "from-the-future"\nshiny = true\n',
}
COMMANDS = [
    (("check",), 3),
    (("check", "--json"), 3),
    (("token", "anonymous"), 1),
    (("head", "anonymous"), 1),
    (("identity", "list"), 1),
    (("identity", "add", "office"), 1),
    (("identity", "remove", "anonymous"), 1),
]


@pytest.mark.parametrize("kind", list(BAD_CONFIGS))
def test_every_command_meets_a_bad_config_with_one_line_and_keeps_it(
    kind: str, paths: Paths, simhub: SimHubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = BAD_CONFIGS[kind]
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_bytes(raw)
    paths.config_file.chmod(0o640)  # the user's own mode is kept too
    before = paths.config_file.stat()
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        for args, code in COMMANDS:
            got = main(["--config-dir", str(paths.config_dir), "--data-dir",
                        str(paths.data_dir), "--registry", simhub.url, *args])  # fmt: skip
            out, err = capsys.readouterr()
            assert got == code, (args, err)
            assert out == "" and err.count("\n") == 1, (args, err)
            assert err.startswith(f"pullwatch: error: {paths.config_file} line "), err
            assert "Traceback" not in err
    finally:
        keyring.set_keyring(previous)
    after = paths.config_file.stat()
    assert paths.config_file.read_bytes() == raw
    assert (after.st_mtime_ns, after.st_mode, after.st_ino) == (
        before.st_mtime_ns, before.st_mode, before.st_ino,
    )  # fmt: skip
    if kind == "newer version":
        assert "written by a newer pullwatch (format 7)" in err


async def test_dashboard_meets_a_config_gone_bad_on_disk(demo: Demo) -> None:
    app = make_app(demo.runtime, demo=True, interval=60, watch_terminal=False)
    config_file = demo.runtime.paths.config_file
    async with app.run_test(size=(120, 32)) as pilot:
        await app.wait_for_round()
        labels = list(app.dashboard.table.labels)
        newer = b"version = 9\n" + config_file.read_bytes().replace(b"version = 1\n", b"")
        config_file.write_bytes(newer)  # a newer pullwatch elsewhere rewrote it
        await pilot.press("a")
        assert isinstance(app.screen, IdentityForm)
        await pilot.press(*"mirror", "enter")
        for _ in range(200):
            error = str(app.screen.query_one("#form-error").render())
            if error:
                break
            await asyncio.sleep(0.01)
        assert error.startswith("not saved: ") and "newer pullwatch (format 9)" in error
        await pilot.press("escape")
        assert app.screen is app.dashboard
        await pilot.press("r")  # it keeps watching what it had
        await app.wait_for_round()
        assert app.dashboard.table.labels == labels
        assert app.monitor.latest("anonymous") is not None
    assert config_file.read_bytes() == newer
