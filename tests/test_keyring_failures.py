"""Keyring failure modes, end to end: a clear status, no crash, no silent plaintext.

For each way a keyring fails - no backend (SSH), a locked collection, a backend that hangs (the
timeout fires), one that raises on write, a plaintext one that is refused - the same four
promises are checked at every layer that meets it: adding an identity fails with the status and
its way out and leaves config and keyring consistent (no half-created identity); the monitor
reports the identity's secret as unavailable while anonymous identities keep working; the CLI
prints one line and no traceback; and the secret is in no file.

Then: a keyring entry wiped under a running monitor, and the opt-in encrypted-file keyring
(`keyrings.cryptfile`, for real) with its passphrase supplied by pullwatch.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail

from fixtures_keyring import FailingWriteKeyring, HangingKeyring, LockedKeyring, PlaintextKeyring
from fixtures_simhub import ALICE
from pullwatch.cli import main
from pullwatch.clock import ManualClock
from pullwatch.demo import Demo
from pullwatch.hub.client import HubClient, Timeouts
from pullwatch.hub.urls import ConfigurationError
from pullwatch.identities import cryptfile
from pullwatch.identities.secrets import KeyringStatus, MemoryKeyring, SecretStore, SecretStoreError
from pullwatch.identities.store import Identity, IdentityStore
from pullwatch.monitor import Monitor
from pullwatch.paths import Paths
from pullwatch.reading import ErrorKind, State
from pullwatch.runtime import build_runtime
from pullwatch.simhub import SimHubServer

SECRET = "dckr_pat_KeyringFailureSecret-7"
TIMEOUT = 0.3
FAST = Timeouts(connect=1.0, read=1.0, total=1.5)

FAILURES: list[tuple[str, Callable[[], KeyringBackend], KeyringStatus, str]] = [
    ("no backend", fail.Keyring, KeyringStatus.NO_BACKEND, "dbus-run-session"),
    ("locked collection", LockedKeyring, KeyringStatus.LOCKED, "gnome-keyring-daemon --unlock"),
    ("backend hangs", HangingKeyring, KeyringStatus.TIMED_OUT, "did not answer within 0.3 s"),
    ("raises on write", FailingWriteKeyring, KeyringStatus.ERROR, "read-only"),
    ("plaintext backend", PlaintextKeyring, KeyringStatus.REFUSED, "PULLWATCH_ALLOW_PLAINTEXT"),
]


@pytest.fixture(params=[pytest.param(f, id=f[0]) for f in FAILURES])
def failure(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[KeyringBackend, KeyringStatus, str]]:
    _, make, status, hint = request.param
    backend = make()
    yield backend, status, hint
    if isinstance(backend, HangingKeyring):
        backend.release()


def files_under(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots if root.exists() for p in root.rglob("*")
            if p.is_file()}  # fmt: skip


def test_adding_an_identity_fails_cleanly_and_half_creates_nothing(
    failure: tuple[KeyringBackend, KeyringStatus, str], paths: Paths
) -> None:
    backend, status, hint = failure
    store = IdentityStore(
        paths.config_file, SecretStore(backend, timeout=TIMEOUT), lock_path=paths.config_lock
    )
    store.add(Identity("office"))  # anonymous identities need no keyring
    before = paths.config_file.read_bytes()
    with pytest.raises(SecretStoreError) as caught:
        store.add(Identity("ci", ALICE.username), SECRET)
    assert caught.value.status is status
    assert hint in str(caught.value)
    assert SECRET not in str(caught.value) and "\n" not in str(caught.value)
    assert paths.config_file.read_bytes() == before  # the identity was not half-created
    assert store.load().labels == ["anonymous", "office"]
    if isinstance(backend, MemoryKeyring):
        assert backend.labels("pullwatch") == []  # nor is its secret anywhere
    assert all(SECRET.encode() not in raw for raw in files_under(paths.config_dir).values())


async def test_monitor_reports_the_secret_unavailable_and_keeps_the_rest(
    failure: tuple[KeyringBackend, KeyringStatus, str],
    paths: Paths,
    simhub: SimHubServer,
    clock: ManualClock,
) -> None:
    backend, status, hint = failure
    good = IdentityStore(paths.config_file, SecretStore(MemoryKeyring()))
    good.add(Identity("ci", ALICE.username), ALICE.secret)  # configured earlier, elsewhere
    store = IdentityStore(paths.config_file, SecretStore(backend, timeout=TIMEOUT))
    client = HubClient(simhub.url, clock=clock, timeouts=FAST)
    monitor = Monitor(client, store.secret_for, clock=clock)
    monitor.set_identities(store.load().identities)
    anon, ci = await monitor.round()
    await client.aclose()
    assert anon.state is State.OK
    if status is KeyringStatus.ERROR:  # a backend that only refuses writes still reads
        assert ci.state is State.ERROR and "no secret stored" in (ci.detail or "")
    else:
        assert (ci.state, ci.error_kind) == (State.ERROR, ErrorKind.SECRET)
        assert (ci.detail or "").startswith("secret unavailable: ") and hint in (ci.detail or "")
    assert simhub.model.token_requests_by_user[ALICE.username] == 0  # no login without it
    assert not monitor.is_halted("ci") and monitor.next_attempt_at("ci") is None


def test_cli_says_one_line_and_keeps_the_config(
    failure: tuple[KeyringBackend, KeyringStatus, str],
    paths: Paths,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend, _, hint = failure
    import pullwatch.identities.secrets as secrets_module

    real_init = SecretStore.__init__

    def short_timeout(self: SecretStore, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("timeout", TIMEOUT)
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(secrets_module.SecretStore, "__init__", short_timeout)
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    monkeypatch.setattr(sys, "stdin", _Stdin(SECRET + "\n"))
    try:
        code = main([
            "--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir),
            "identity", "add", "ci", "--username", ALICE.username, "--password-stdin",
        ])  # fmt: skip
    finally:
        keyring.set_keyring(previous)
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("pullwatch: error: ") and err.count("\n") == 1, err
    assert hint in err and "Traceback" not in err and SECRET not in out + err
    assert not paths.config_file.exists()  # fresh install: nothing written at all


class _Stdin:
    def __init__(self, text: str) -> None:
        self._text = text

    def read(self) -> str:
        return self._text

    def isatty(self) -> bool:
        return False


# -- wiped under a running app ------------------------------------------------------------------


async def test_a_keyring_entry_wiped_under_a_running_monitor_is_noticed_at_token_renewal(
    paths: Paths, simhub: SimHubServer, clock: ManualClock
) -> None:
    memory = MemoryKeyring()
    store = IdentityStore(paths.config_file, SecretStore(memory, timeout=TIMEOUT))
    store.add(Identity("ci", ALICE.username), ALICE.secret)
    client = HubClient(simhub.url, clock=clock, timeouts=FAST)
    monitor = Monitor(client, store.secret_for, clock=clock)
    monitor.set_identities(store.load().identities)
    (_, ci) = await monitor.round()
    assert ci.state is State.OK
    memory.delete_password("pullwatch", "ci")  # `keyring del pullwatch ci` in another terminal
    tokens = simhub.model.token_requests_by_user[ALICE.username]
    for _ in range(4):  # the token (300 s, renewed ~10 s early) is still good: no change yet
        clock.advance(60)
        (_, ci) = await monitor.round()
        assert ci.state is State.OK
    clock.advance(60)  # 300 s: a new token is due, so the keyring is read again
    (anon, ci) = await monitor.round()
    assert anon.state is State.OK
    assert (ci.state, ci.error_kind) == (State.ERROR, ErrorKind.SECRET)
    assert ci.detail == "no secret stored in the keyring for this identity: edit it to add one"
    assert simhub.model.token_requests_by_user[ALICE.username] == tokens  # no stale login
    memory.set_password("pullwatch", "ci", ALICE.secret)  # put back: the next round works
    clock.advance(60)
    (_, ci) = await monitor.round()
    await client.aclose()
    assert ci.state is State.OK


async def test_a_keyring_locked_under_a_running_monitor_says_so_at_renewal(
    paths: Paths, simhub: SimHubServer, clock: ManualClock, locked_keyring: LockedKeyring
) -> None:
    locked_keyring.locked = False
    store = IdentityStore(paths.config_file, SecretStore(locked_keyring, timeout=TIMEOUT))
    store.add(Identity("ci", ALICE.username), ALICE.secret)
    client = HubClient(simhub.url, clock=clock, timeouts=FAST)
    monitor = Monitor(client, store.secret_for, clock=clock)
    monitor.set_identities(store.load().identities)
    assert (await monitor.round())[1].state is State.OK
    locked_keyring.locked = True  # the screen locker locked the collection
    clock.advance(300)
    (_, ci) = await monitor.round()
    await client.aclose()
    assert ci.error_kind is ErrorKind.SECRET and "keyring is locked" in (ci.detail or "")


# -- the encrypted-file opt-in (keyrings.cryptfile, for real) -----------------------------------


@pytest.fixture
def quick_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheaper Argon2 for most tests (one test below keeps the real cost)."""
    module = pytest.importorskip("keyrings.cryptfile.cryptfile")
    ArgonAESEncryption = module.ArgonAESEncryption

    monkeypatch.setattr(ArgonAESEncryption, "time_cost", 1)
    monkeypatch.setattr(ArgonAESEncryption, "memory_cost", 2**10)


def crypt_env(**extra: str) -> dict[str, str]:
    return {cryptfile.ENV_KEYRING: "cryptfile", **extra}


@pytest.mark.usefixtures("quick_argon2")
def test_cryptfile_is_locked_until_given_its_passphrase(paths: Paths) -> None:
    runtime = build_runtime(paths, env=crypt_env())
    unlocker = runtime.unlocker
    assert unlocker is not None and unlocker.locked and unlocker.is_new
    assert unlocker.path == paths.data_dir / cryptfile.CRYPTFILE_NAME
    health = runtime.secrets.health()
    assert health.status is KeyringStatus.LOCKED
    assert cryptfile.ENV_PASSPHRASE in health.message and "Over SSH" in health.message
    with pytest.raises(SecretStoreError) as caught:  # no silent fallback, nothing written
        runtime.store.add(Identity("ci", ALICE.username), SECRET)
    assert caught.value.status is KeyringStatus.LOCKED
    assert not paths.config_file.exists() and not unlocker.path.exists()

    assert unlocker.unlock("correct horse").ok  # a new file, with this passphrase
    assert not unlocker.locked
    assert (unlocker.path.stat().st_mode & 0o777) == 0o600
    assert (unlocker.path.parent.stat().st_mode & 0o777) == 0o700
    runtime.store.add(Identity("ci", ALICE.username), SECRET)
    assert SECRET.encode() not in unlocker.path.read_bytes()  # encrypted at rest
    identity = runtime.store.load().get("ci")
    assert identity is not None and runtime.store.secret_for(identity).secret == SECRET


@pytest.mark.usefixtures("quick_argon2")
def test_cryptfile_passphrase_from_the_environment_and_a_wrong_one(paths: Paths) -> None:
    first = build_runtime(paths, env=crypt_env(PULLWATCH_KEYRING_PASSPHRASE="s3cret pass"))
    assert first.unlocker is not None and not first.unlocker.locked
    first.store.add(Identity("ci", ALICE.username), SECRET)

    again = build_runtime(paths, env=crypt_env(PULLWATCH_KEYRING_PASSPHRASE="s3cret pass"))
    identity = again.config.get("ci")
    assert identity is not None and again.store.secret_for(identity).secret == SECRET

    wrong = build_runtime(paths, env=crypt_env(PULLWATCH_KEYRING_PASSPHRASE="guess"))
    assert wrong.unlocker is not None and wrong.unlocker.locked
    lookup = wrong.store.secret_for(identity)
    assert lookup.status is KeyringStatus.LOCKED and lookup.secret is None
    assert "wrong passphrase" in lookup.message and "guess" not in lookup.message
    health = wrong.unlocker.unlock("still wrong")
    assert health.status is KeyringStatus.LOCKED and "wrong passphrase" in health.message
    assert wrong.unlocker.unlock("s3cret pass").ok  # and then the right one
    assert wrong.store.secret_for(identity).secret == SECRET


@pytest.mark.usefixtures("quick_argon2")
def test_cryptfile_chosen_in_the_config_file_and_bad_choices(paths: Paths) -> None:
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text('version = 1\n[settings]\nkeyring = "cryptfile"\n')
    runtime = build_runtime(paths, env={})
    assert runtime.unlocker is not None
    assert build_runtime(paths, env={cryptfile.ENV_KEYRING: "system"}).unlocker is None
    with pytest.raises(ConfigurationError, match="PULLWATCH_KEYRING='bogus' is not one of"):
        build_runtime(paths, env={cryptfile.ENV_KEYRING: "bogus"})
    paths.config_file.write_text('version = 1\n[settings]\nkeyring = "plaintext"\n')
    with pytest.raises(Exception, match=r'settings\.keyring must be "system" or "cryptfile"'):
        build_runtime(paths, env={})


def test_cryptfile_chosen_but_not_installed_says_how_to_install_it(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cryptfile, "_backend_class", lambda: None)
    runtime = build_runtime(paths, env=crypt_env(PULLWATCH_KEYRING_PASSPHRASE="x"))
    assert runtime.unlocker is not None and not runtime.unlocker.installed
    health = runtime.secrets.health()
    assert health.status is KeyringStatus.ERROR
    assert "pip install 'pullwatch[cryptfile]'" in health.message
    with pytest.raises(SecretStoreError, match=r"pullwatch\[cryptfile\]"):
        runtime.store.add(Identity("ci", ALICE.username), SECRET)
    assert not paths.config_file.exists()


@pytest.mark.usefixtures("quick_argon2")
def test_cryptfile_prompt_for_headless_commands(paths: Paths) -> None:
    runtime = build_runtime(paths, env=crypt_env())
    unlocker = runtime.unlocker
    assert unlocker is not None
    asked: list[str] = []
    answers = iter(["one", "two", "pass-phrase", "pass-phrase"])

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return next(answers)

    assert cryptfile.prompt_passphrase(unlocker, ask, terminal=lambda: False) is None
    health = cryptfile.prompt_passphrase(unlocker, ask, terminal=lambda: True)
    assert health is not None and health.ok
    assert len(asked) == 4 and "New passphrase" in asked[0]  # a mismatch, then a match
    unlocker.lock()
    wrong = cryptfile.prompt_passphrase(unlocker, lambda _: "nope", terminal=lambda: True)
    assert wrong is not None and wrong.status is KeyringStatus.LOCKED  # three tries, no raise
    assert "wrong passphrase" in wrong.message


def test_cryptfile_cli_with_the_real_argon2_cost(
    paths: Paths, simhub: SimHubServer, tmp_path: Path
) -> None:
    """Real processes, keyrings.cryptfile's default key derivation, nothing mocked."""
    pytest.importorskip("keyrings.cryptfile.cryptfile")

    def run(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        full = {
            **os.environ,
            "HOME": str(tmp_path),
            "PULLWATCH_CONFIG_DIR": str(paths.config_dir),
            "PULLWATCH_DATA_DIR": str(paths.data_dir),
            "PULLWATCH_REGISTRY": simhub.url,
            cryptfile.ENV_KEYRING: "cryptfile",
            **env,
        }
        full.pop("DBUS_SESSION_BUS_ADDRESS", None)
        # A new session: no controlling terminal, so nothing can prompt (as under cron).
        return subprocess.run([sys.executable, "-m", "pullwatch", *args], input=stdin,
                              capture_output=True, text=True, env=full, timeout=60, check=False,
                              stdin=None if stdin is not None else subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip

    passphrase = {cryptfile.ENV_PASSPHRASE: "a long passphrase"}
    added = run("identity", "add", "ci", "--username", ALICE.username, "--password-stdin",
                stdin=ALICE.secret, **passphrase)  # fmt: skip
    assert added.returncode == 0, added.stderr
    checked = run("check", "--json", **passphrase)
    assert checked.returncode == 0, checked.stderr
    assert '"state": "ok"' in checked.stdout
    for path in [*paths.config_dir.rglob("*"), *paths.data_dir.rglob("*")]:
        if path.is_file():
            assert ALICE.secret.encode() not in path.read_bytes(), path


@pytest.mark.usefixtures("quick_argon2")
def test_cryptfile_wrong_passphrase_in_the_cli_is_a_warning_and_a_status(
    paths: Paths,
    simhub: SimHubServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cryptfile, "_terminal_available", lambda: False)  # as under cron
    setup = build_runtime(paths, env=crypt_env(PULLWATCH_KEYRING_PASSPHRASE="right one"))
    setup.store.add(Identity("ci", ALICE.username), ALICE.secret)
    for key, value in crypt_env(PULLWATCH_KEYRING_PASSPHRASE="not it").items():
        monkeypatch.setenv(key, value)
    argv = ["--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir),
            "--registry", simhub.url]  # fmt: skip
    assert main([*argv, "check", "--json"]) == 3  # ci could not be checked: unknown
    out, err = capsys.readouterr()
    assert "secret unavailable: encrypted keyring" in out and "wrong passphrase" in out
    assert err.startswith("pullwatch: warning: encrypted keyring") and err.count("\n") == 1
    assert "not it" not in out + err and "Traceback" not in err
    monkeypatch.delenv(cryptfile.ENV_PASSPHRASE)
    assert main([*argv, "identity", "list"]) == 0  # no passphrase, no terminal: no prompt
    out, err = capsys.readouterr()
    assert "unavailable (locked)" in out and err == ""


@pytest.mark.usefixtures("quick_argon2")
async def test_cryptfile_passphrase_is_asked_inside_the_dashboard(
    paths: Paths, simhub: SimHubServer, clock: ManualClock
) -> None:
    from pullwatch.tui.app import make_app
    from pullwatch.tui.screens.passphrase import PassphraseScreen

    setup = build_runtime(paths, env=crypt_env(PULLWATCH_KEYRING_PASSPHRASE="open sesame"))
    setup.store.add(Identity("ci", ALICE.username), ALICE.secret)
    runtime = build_runtime(paths, registry=simhub.url, clock=clock, env=crypt_env())
    runtime.use_challenge_cache = False
    app = make_app(runtime, interval=60, watch_terminal=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.wait_for_round()
        assert isinstance(app.screen, PassphraseScreen)
        ci = app.monitor.latest("ci")
        assert ci is not None and ci.error_kind is ErrorKind.SECRET  # locked meanwhile
        await pilot.press(*"wrong guess", "enter")
        await _until(
            lambda: "wrong passphrase" in str(app.screen.query_one("#passphrase-error").render())
        )
        assert isinstance(app.screen, PassphraseScreen)  # still asking, no traceback
        await pilot.press(*"open sesame", "enter")
        await _until(lambda: not isinstance(app.screen, PassphraseScreen))
        await app.workers.wait_for_complete()
        await _until(lambda: (app.monitor.latest("ci") or ci).state is State.OK)
        assert app.keyring_health is not None and app.keyring_health.ok
        assert "open sesame" not in app.export_screenshot()


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


# -- keyring's auto-detected chain: nothing plaintext or prompting by itself ---------------------


def _backend(module: str, name: str, priority: float, **extra: object) -> KeyringBackend:
    cls = type(name, (MemoryKeyring,), {"__module__": module, "priority": -priority, **extra})
    backend = cls()
    backend.rank = priority  # type: ignore[attr-defined]
    return backend


class _Chain(chainer.ChainerBackend):
    """A ChainerBackend over given members, highest priority first (never auto-selected)."""

    priority = -1  # type: ignore[assignment]

    def __init__(self, *members: KeyringBackend) -> None:
        super().__init__()
        self.members = sorted(members, key=lambda m: m.rank, reverse=True)  # type: ignore[attr-defined]

    @property
    def backends(self) -> list[KeyringBackend]:  # type: ignore[override]
        return self.members


SECRET_SERVICE = ("keyring.backends.SecretService", "Keyring", 5)
CRYPTFILE = ("keyrings.cryptfile.cryptfile", "CryptFileKeyring", 2.5)
ENCRYPTED = ("keyrings.cryptfile.file", "EncryptedKeyring", 0.6)
PLAINTEXT = ("keyrings.cryptfile.file", "PlaintextKeyring", 0.5)


@pytest.mark.parametrize(
    ("members", "allow_plaintext", "expected"),
    [
        ([SECRET_SERVICE, CRYPTFILE, ENCRYPTED, PLAINTEXT], False, "Keyring"),  # the real case
        ([CRYPTFILE, ENCRYPTED, PLAINTEXT], False, KeyringStatus.NO_BACKEND),  # SSH + cryptfile
        ([PLAINTEXT], False, KeyringStatus.REFUSED),
        ([PLAINTEXT, CRYPTFILE], True, "PlaintextKeyring"),  # opted in: used, never prompting
    ],
    ids=["secret service beside cryptfile", "only file backends", "only plaintext", "opt-in"],
)
def test_keyrings_own_chain_is_narrowed(
    members: list[tuple[str, str, float]],
    allow_plaintext: bool,
    expected: str | KeyringStatus,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain = _Chain(*(_backend(*m, scheme="no encyption") if "Plain" in m[1] else _backend(*m)
                     for m in members))  # fmt: skip
    monkeypatch.setattr(keyring, "get_keyring", lambda: chain)
    store = SecretStore(timeout=TIMEOUT, allow_plaintext=allow_plaintext)
    health = store.health()
    if isinstance(expected, KeyringStatus):
        assert health.status is expected
        return
    assert health.ok and store.backend_name.endswith(f".{expected}")
    store.set("ci", SECRET)
    chosen = next(m for m in chain.members if type(m).__name__ == expected)
    assert isinstance(chosen, MemoryKeyring) and chosen.labels("pullwatch") == ["ci"]
    assert all(m.labels("pullwatch") == [] for m in chain.members if m is not chosen)  # type: ignore[attr-defined]


async def test_the_add_form_with_a_keyring_that_refuses_writes_saves_nothing(
    demo: Demo, failing_write_keyring: FailingWriteKeyring
) -> None:
    from pullwatch.tui.app import make_app
    from pullwatch.tui.screens.identity_form import IdentityForm

    refusing = SecretStore(failing_write_keyring, timeout=TIMEOUT)
    runtime = build_runtime(demo.runtime.paths, registry=demo.server.url, secrets=refusing,
                            clock=demo.runtime.clock, env={})  # fmt: skip
    before = runtime.paths.config_file.read_bytes()
    app = make_app(runtime, interval=60, watch_terminal=False)
    async with app.run_test(size=(120, 32)) as pilot:
        await app.wait_for_round()
        await pilot.press("a", *"mirror", "tab", *"cibot", "tab", *"dckr_pat_x1", "enter")
        form = app.screen
        assert isinstance(form, IdentityForm)
        await _until(lambda: "not saved" in str(form.query_one("#secret-error").render()))
        error = str(form.query_one("#secret-error").render())
        assert "the keyring refused the token" in error and "read-only" in error
        assert "dckr_pat_x1" not in error + app.export_screenshot()
        await pilot.press("escape")
        assert "mirror" not in app.dashboard.table.labels
    assert runtime.paths.config_file.read_bytes() == before  # no half-created identity
    assert failing_write_keyring.labels("pullwatch") == []
