"""IdentityStore: the config file, validation, atomic locked writes, and keyring consistency."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures_keyring import FailingWriteKeyring, HangingKeyring, LockedKeyring
from pullwatch.identities.secrets import (
    KeyringStatus,
    MemoryKeyring,
    SecretStore,
    SecretStoreError,
)
from pullwatch.identities.store import (
    Config,
    ConfigError,
    Identity,
    IdentityError,
    IdentityStore,
    Settings,
)
from pullwatch.paths import Paths

SECRET = "dckr_pat_TOPSECRET-abc123"
OTHER_SECRET = "dckr_pat_OTHERSECRET-def456"


def store_with(paths: Paths, backend: MemoryKeyring) -> IdentityStore:
    secrets = SecretStore(backend, timeout=0.5, allow_plaintext=False)
    return IdentityStore(paths.config_file, secrets, lock_path=paths.config_lock)


def stored(backend: MemoryKeyring) -> dict[str, str | None]:
    """Everything in the keyring under service pullwatch, by label."""
    return {
        label: backend.get_password("pullwatch", label) for label in backend.labels("pullwatch")
    }


def all_config_bytes(paths: Paths) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(paths.config_dir.rglob("*")) if p.is_file())


def write_config(paths: Paths, text: str) -> bytes:
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    raw = text.encode()
    paths.config_file.write_bytes(raw)
    return raw


# -- reading --------------------------------------------------------------------------------------


def test_fresh_install_is_one_anonymous_identity_and_writes_nothing(
    identity_store: IdentityStore, paths: Paths
) -> None:
    config = identity_store.load()
    assert config.identities == (Identity("anonymous"),)
    assert config.identities[0].anonymous
    assert config.settings == Settings()
    assert config.exists is False
    assert config.path == paths.config_file
    assert config.warning is None
    assert not paths.config_dir.exists()


def test_config_get_is_case_insensitive_after_exact(identity_store: IdentityStore) -> None:
    config = identity_store.add(Identity("CI-Bot", "cibot"), SECRET)
    assert config.get("CI-Bot") == Identity("CI-Bot", "cibot")
    assert config.get("ci-bot") == Identity("CI-Bot", "cibot")
    assert config.get("nobody") is None
    assert config.labels == ["anonymous", "CI-Bot"]


def test_default_lock_path_is_beside_the_config(paths: Paths, secret_store: SecretStore) -> None:
    store = IdentityStore(paths.config_file, secret_store)
    assert store.lock_path == paths.config_dir / ".config.lock" == paths.config_lock


# -- add / update / remove ------------------------------------------------------------------------


def test_add_round_trip_and_file_format(
    identity_store: IdentityStore, memory_keyring: MemoryKeyring, paths: Paths
) -> None:
    config = identity_store.add(Identity("ci-bot", "cibot", warn_below=20), SECRET)
    assert config.exists
    assert config.identities == (Identity("anonymous"), Identity("ci-bot", "cibot", 20))
    assert identity_store.load() == config
    assert stored(memory_keyring) == {"ci-bot": SECRET}
    lookup = identity_store.secret_for(config.identities[1])
    assert (lookup.status, lookup.secret) == (KeyringStatus.OK, SECRET)

    text = paths.config_file.read_text()
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert body[0] == "version = 1"
    assert "[[identity]]" in body
    assert 'label = "ci-bot"' in body
    assert 'username = "cibot"' in body
    assert "warn_below = 20" in body
    assert "[settings]" not in text  # no defaults the user did not set
    header = text.split("version = 1")[0]
    assert "keyring" in header and '"pullwatch"' in header and "never" in header


def test_add_anonymous_needs_no_keyring(
    identity_store: IdentityStore, memory_keyring: MemoryKeyring
) -> None:
    config = identity_store.add(Identity("office-nat"))
    assert config.get("office-nat") == Identity("office-nat")
    assert stored(memory_keyring) == {}


def test_secret_for_anonymous_makes_no_keyring_call(
    paths: Paths, hanging_keyring: HangingKeyring
) -> None:
    store = store_with(paths, hanging_keyring)
    started = time.monotonic()
    lookup = store.secret_for(Identity("anonymous"))
    assert time.monotonic() - started < 0.2
    assert (lookup.status, lookup.secret) == (KeyringStatus.OK, None)
    assert hanging_keyring.calls == 0


def test_update_keeps_or_replaces_the_secret(
    identity_store: IdentityStore, memory_keyring: MemoryKeyring
) -> None:
    identity_store.add(Identity("ci-bot", "cibot"), SECRET)
    config = identity_store.update("ci-bot", Identity("ci-bot", "cibot2", warn_below=5))
    assert config.get("ci-bot") == Identity("ci-bot", "cibot2", 5)
    assert stored(memory_keyring) == {"ci-bot": SECRET}
    identity_store.update("ci-bot", Identity("ci-bot", "cibot2"), OTHER_SECRET)
    assert stored(memory_keyring) == {"ci-bot": OTHER_SECRET}


def test_update_rename_moves_the_secret(
    identity_store: IdentityStore, memory_keyring: MemoryKeyring
) -> None:
    identity_store.add(Identity("ci-bot", "cibot"), SECRET)
    config = identity_store.update("ci-bot", Identity("builder", "cibot"))
    assert config.labels == ["anonymous", "builder"]
    assert config.warning is None
    assert stored(memory_keyring) == {"builder": SECRET}
    # rename and new secret at once
    identity_store.update("builder", Identity("release", "cibot"), OTHER_SECRET)
    assert stored(memory_keyring) == {"release": OTHER_SECRET}
    # a case-only rename keeps the secret too
    identity_store.update("release", Identity("Release", "cibot"))
    assert stored(memory_keyring) == {"Release": OTHER_SECRET}
    assert identity_store.load().labels == ["anonymous", "Release"]


def test_update_keeps_the_position_in_the_list(identity_store: IdentityStore) -> None:
    identity_store.add(Identity("a"))
    identity_store.add(Identity("b"))
    config = identity_store.update("a", Identity("z"))
    assert config.labels == ["anonymous", "z", "b"]


def test_update_to_anonymous_deletes_the_secret(
    identity_store: IdentityStore, memory_keyring: MemoryKeyring
) -> None:
    identity_store.add(Identity("ci-bot", "cibot"), SECRET)
    config = identity_store.update("ci-bot", Identity("ci-bot"))
    assert config.get("ci-bot") == Identity("ci-bot")
    assert stored(memory_keyring) == {}


def test_update_errors(identity_store: IdentityStore) -> None:
    identity_store.add(Identity("ci-bot", "cibot"), SECRET)
    identity_store.add(Identity("office"))
    with pytest.raises(IdentityError, match="no identity 'ghost'"):
        identity_store.update("ghost", Identity("ghost"))
    with pytest.raises(IdentityError, match="already exists"):
        identity_store.update("office", Identity("CI-BOT"))
    with pytest.raises(IdentityError, match="needs a secret"):
        identity_store.update("office", Identity("office", "someone"))
    with pytest.raises(IdentityError, match="takes no secret"):
        identity_store.update("ci-bot", Identity("ci-bot"), SECRET)


def test_remove_deletes_config_entry_and_secret(
    identity_store: IdentityStore, memory_keyring: MemoryKeyring
) -> None:
    identity_store.add(Identity("ci-bot", "cibot"), SECRET)
    config = identity_store.remove("ci-bot")
    assert config.labels == ["anonymous"]
    assert config.warning is None
    assert stored(memory_keyring) == {}
    with pytest.raises(IdentityError, match="no identity 'ci-bot'"):
        identity_store.remove("ci-bot")
    config = identity_store.remove("anonymous")
    assert config.identities == ()
    assert config.exists
    assert identity_store.load().identities == ()  # an empty list stays empty


def test_remove_with_keyring_failure_still_removes_and_warns(
    paths: Paths, failing_write_keyring: FailingWriteKeyring
) -> None:
    failing_write_keyring.fail_set = False
    store = store_with(paths, failing_write_keyring)
    store.add(Identity("ci-bot", "cibot"), SECRET)
    config = store.remove("ci-bot")
    assert config.get("ci-bot") is None
    assert store.load().get("ci-bot") is None
    assert config.warning is not None
    assert "may remain" in config.warning
    assert "keyring del pullwatch ci-bot" in config.warning
    assert SECRET not in config.warning


def test_remove_with_locked_keyring_warns(paths: Paths, locked_keyring: LockedKeyring) -> None:
    locked_keyring.locked = False
    store = store_with(paths, locked_keyring)
    store.add(Identity("ci-bot", "cibot"), SECRET)
    locked_keyring.locked = True
    config = store.remove("ci-bot")
    assert config.labels == ["anonymous"]
    assert config.warning is not None and "locked" in config.warning


def test_rename_with_keyring_failure_on_old_entry_warns(
    paths: Paths, failing_write_keyring: FailingWriteKeyring
) -> None:
    failing_write_keyring.fail_set = False
    store = store_with(paths, failing_write_keyring)
    store.add(Identity("ci-bot", "cibot"), SECRET)
    config = store.update("ci-bot", Identity("builder", "cibot"))
    assert config.labels == ["anonymous", "builder"]
    assert config.warning is not None and "'ci-bot'" in config.warning
    assert stored(failing_write_keyring)["builder"] == SECRET


def test_update_settings_writes_only_what_was_set(
    identity_store: IdentityStore, paths: Paths
) -> None:
    write_config(paths, "version = 1\n\n[settings]\ninterval = 30\n")
    identity_store.add(Identity("office"))
    text = paths.config_file.read_text()
    assert "interval = 30" in text
    assert "concurrency" not in text and "bell" not in text and "retention_days" not in text
    config = identity_store.update_settings(bell=False, registry="http://127.0.0.1:5000")
    assert config.settings == Settings(interval=30, bell=False, registry="http://127.0.0.1:5000")
    config = identity_store.update_settings(interval=None)
    assert config.settings.interval == 60
    text = paths.config_file.read_text()
    assert "interval" not in text and "bell = false" in text
    assert identity_store.load().settings == config.settings


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"interval": 5}, "interval must be >= 10"),
        ({"concurrency": 0}, "concurrency must be >= 1 and <= 256"),
        ({"concurrency": 257}, "concurrency"),
        ({"retention_days": 0}, "retention_days"),
        ({"bell": "yes"}, "true or false"),
        ({"interval": True}, "whole number"),
        ({"colour": "red"}, "unknown setting 'colour'"),
    ],
)
def test_update_settings_validation(
    identity_store: IdentityStore, paths: Paths, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(IdentityError, match=message):
        identity_store.update_settings(**changes)
    assert not paths.config_file.exists()


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "label", ["", " ci", "-ci", ".ci", "ci bot", "ci/bot", "x" * 65, "ci\nbot", "ci#"]
)
def test_bad_labels(identity_store: IdentityStore, label: str) -> None:
    with pytest.raises(IdentityError, match="invalid label"):
        identity_store.add(Identity(label))


@pytest.mark.parametrize("label", ["a", "ci-bot", "A.b_c@d+e-f", "9", "x" * 64])
def test_good_labels(identity_store: IdentityStore, label: str) -> None:
    assert identity_store.add(Identity(label)).get(label) == Identity(label)


def test_duplicate_label_is_case_insensitive(identity_store: IdentityStore) -> None:
    identity_store.add(Identity("ci-bot", "cibot"), SECRET)
    with pytest.raises(IdentityError, match="already exists"):
        identity_store.add(Identity("CI-BOT"))
    with pytest.raises(IdentityError, match="already exists"):
        identity_store.add(Identity("anonymous"))


def test_email_username_is_rejected_with_the_docker_id_hint(
    identity_store: IdentityStore, memory_keyring: MemoryKeyring
) -> None:
    with pytest.raises(IdentityError) as caught:
        identity_store.add(Identity("me", "me@example.com"), SECRET)
    message = str(caught.value)
    assert "Docker ID" in message and "e-mail" in message
    assert stored(memory_keyring) == {}


def test_secret_rules(identity_store: IdentityStore) -> None:
    with pytest.raises(IdentityError, match="needs a secret"):
        identity_store.add(Identity("ci-bot", "cibot"))
    with pytest.raises(IdentityError, match="empty"):
        identity_store.add(Identity("ci-bot", "cibot"), "")
    with pytest.raises(IdentityError, match="line break") as caught:
        identity_store.add(Identity("ci-bot", "cibot"), SECRET + "\n")
    assert SECRET not in str(caught.value)
    with pytest.raises(IdentityError, match="takes no secret"):
        identity_store.add(Identity("office"), SECRET)
    with pytest.raises(IdentityError, match="invalid username"):
        identity_store.add(Identity("ci-bot", "ci bot"), SECRET)
    with pytest.raises(IdentityError, match="warn_below"):
        identity_store.add(Identity("office", warn_below=-1))


# -- files: no secrets, modes, atomicity ----------------------------------------------------------


def test_no_file_in_the_config_dir_ever_holds_a_secret(
    identity_store: IdentityStore, paths: Paths
) -> None:
    identity_store.add(Identity("ci-bot", "cibot"), SECRET)
    identity_store.update("ci-bot", Identity("builder", "cibot"), OTHER_SECRET)
    identity_store.add(Identity("second", "other"), SECRET)
    identity_store.update_settings(interval=30)
    identity_store.remove("second")
    content = all_config_bytes(paths)
    assert content
    assert SECRET.encode() not in content
    assert OTHER_SECRET.encode() not in content
    assert "TOPSECRET" not in repr(identity_store.load())
    leftovers = [p.name for p in paths.config_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_file_and_directory_modes(identity_store: IdentityStore, paths: Paths) -> None:
    identity_store.add(Identity("office"))
    assert stat.S_IMODE(paths.config_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(paths.config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.config_lock.stat().st_mode) == 0o600


def test_existing_loose_modes_are_tightened(identity_store: IdentityStore, paths: Paths) -> None:
    write_config(paths, "version = 1\n")
    paths.config_dir.chmod(0o755)
    paths.config_file.chmod(0o644)
    identity_store.add(Identity("office"))
    assert stat.S_IMODE(paths.config_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(paths.config_file.stat().st_mode) == 0o600


# -- corrupt and invalid files --------------------------------------------------------------------


def _assert_every_write_refuses(store: IdentityStore, paths: Paths, raw: bytes, match: str) -> None:
    attempts = [
        lambda: store.add(Identity("new-one", "someone"), SECRET),
        lambda: store.add(Identity("office")),
        lambda: store.update("anonymous", Identity("anon")),
        lambda: store.remove("anonymous"),
        lambda: store.update_settings(interval=30),
    ]
    for attempt in attempts:
        with pytest.raises(ConfigError, match=match):
            attempt()
        assert paths.config_file.read_bytes() == raw


def test_corrupt_toml_names_file_and_line_and_is_never_overwritten(
    identity_store: IdentityStore, paths: Paths, memory_keyring: MemoryKeyring
) -> None:
    raw = write_config(paths, 'version = 1\n\n[[identity]]\nlabel = "ci-bot\nusername = "x"\n')
    with pytest.raises(ConfigError) as caught:
        identity_store.load()
    message = str(caught.value)
    assert message.startswith(f"{paths.config_file} line 4: invalid TOML")
    assert "\n" not in message
    _assert_every_write_refuses(identity_store, paths, raw, "line 4")
    assert stored(memory_keyring) == {}  # the keyring was not touched either
    assert sorted(p.name for p in paths.config_dir.iterdir()) == [".config.lock", "config.toml"]


def test_unterminated_table_at_end_of_file(identity_store: IdentityStore, paths: Paths) -> None:
    write_config(paths, "version = 1\n[settings")
    with pytest.raises(ConfigError, match=r"line 2: invalid TOML"):
        identity_store.load()


def test_not_utf8(identity_store: IdentityStore, paths: Paths) -> None:
    paths.config_dir.mkdir(parents=True)
    raw = b'version = 1\n[[identity]]\nlabel = "caf\xe9"\n'
    paths.config_file.write_bytes(raw)
    with pytest.raises(ConfigError, match="line 3: not UTF-8"):
        identity_store.load()
    _assert_every_write_refuses(identity_store, paths, raw, "not UTF-8")


def test_unreadable_config_is_reported_and_kept(
    identity_store: IdentityStore, paths: Paths
) -> None:
    paths.config_file.mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(ConfigError, match="cannot read the config"):
        identity_store.load()
    with pytest.raises(ConfigError, match="cannot read the config"):
        identity_store.add(Identity("office"))
    assert paths.config_file.is_dir()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "version = 2\n",
            "line 1: written by a newer pullwatch (format 2); this version reads format 1",
        ),
        ('version = "1"\n', "line 1: version must be a whole number"),
        ("version = 1\ncolour = 'red'\n", "line 2: unknown key 'colour'"),
        ("version = 1\n[extras]\nx = 1\n", "line 2: unknown key 'extras'"),
        (
            "version = 1\n\n[settings]\nbell = true\nintervall = 5\n",
            "line 5: unknown setting 'intervall'",
        ),
        ('[settings]\ninterval = "60"\n', "line 2: settings.interval must be a whole number"),
        ("[settings]\ninterval = 5\n", "line 2: settings.interval must be >= 10 (got 5)"),
        (
            "[settings]\nconcurrency = 1000\n",
            "line 2: settings.concurrency must be >= 1 and <= 256",
        ),
        ("[settings]\nbell = 1\n", "line 2: settings.bell must be true or false"),
        ("[settings]\nregistry = 3\n", "line 2: settings.registry must be a non-empty string"),
        ("settings = 3\n", "line 1: settings must be a table"),
        ("[identity]\nlabel = 'x'\n", "line 1: identity must be an array of tables"),
        (
            "version = 1\n[[identity]]\nlabel = 'a'\n\n[[identity]]\nlabel = 'b'\npassword = 'p'\n",
            "line 7: identity #2: unknown key 'password'",
        ),
        ("[[identity]]\nusername = 'x'\n", "line 1: identity #1 has no label"),
        ("[[identity]]\nlabel = 'a b'\n", "line 2: identity #1: invalid label"),
        ("[[identity]]\nlabel = 7\n", "line 2: identity #1: label must be a string"),
        (
            "[[identity]]\nlabel = 'me'\nusername = 'me@x.org'\n",
            "line 3: identity #1: username looks like an e-mail",
        ),
        ("[[identity]]\nlabel = 'a'\nwarn_below = -1\n", "line 3: identity #1: warn_below must be"),
        (
            "[[identity]]\nlabel = 'ci'\n[[identity]]\nlabel = 'CI'\n",
            "line 4: duplicate label 'CI' (labels are case-insensitive; first: 'ci')",
        ),
    ],
)
def test_schema_errors_name_file_and_line(
    identity_store: IdentityStore, paths: Paths, text: str, expected: str
) -> None:
    raw = write_config(paths, text)
    with pytest.raises(ConfigError) as caught:
        identity_store.load()
    assert str(caught.value).startswith(f"{paths.config_file} {expected}")
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError):
        identity_store.add(Identity("office"))
    assert paths.config_file.read_bytes() == raw


def test_hand_written_file_without_version_or_settings(
    identity_store: IdentityStore, paths: Paths
) -> None:
    write_config(paths, "# mine\n[[identity]]\nlabel = 'ci'\nusername = 'cibot'\nwarn_below = 3\n")
    config = identity_store.load()
    assert config.identities == (Identity("ci", "cibot", 3),)
    assert config.exists


# -- keyring and config stay consistent -----------------------------------------------------------


def test_keyring_failure_on_add_leaves_the_config_alone(
    paths: Paths, failing_write_keyring: FailingWriteKeyring
) -> None:
    store = store_with(paths, failing_write_keyring)
    with pytest.raises(SecretStoreError) as caught:
        store.add(Identity("ci-bot", "cibot"), SECRET)
    assert SECRET not in str(caught.value)
    assert not paths.config_file.exists()  # fresh install: still nothing written
    store.add(Identity("office"))
    raw = paths.config_file.read_bytes()
    with pytest.raises(SecretStoreError):
        store.add(Identity("ci-bot", "cibot"), SECRET)
    assert paths.config_file.read_bytes() == raw


def test_config_write_failure_rolls_back_the_keyring_entry(
    identity_store: IdentityStore,
    memory_keyring: MemoryKeyring,
    paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    identity_store.add(Identity("ci-bot", "cibot"), SECRET)
    raw = paths.config_file.read_bytes()

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ConfigError, match="cannot write the config: Read-only file system"):
        identity_store.add(Identity("new-bot", "newbot"), OTHER_SECRET)
    assert stored(memory_keyring) == {"ci-bot": SECRET}  # no half-created identity

    with pytest.raises(ConfigError):  # rename: the secret stays where it was
        identity_store.update("ci-bot", Identity("builder", "cibot"))
    assert stored(memory_keyring) == {"ci-bot": SECRET}

    with pytest.raises(ConfigError):  # new secret in place: the old one is put back
        identity_store.update("ci-bot", Identity("ci-bot", "cibot"), OTHER_SECRET)
    assert stored(memory_keyring) == {"ci-bot": SECRET}

    with pytest.raises(ConfigError):  # case-only rename (deletes first): restored
        identity_store.update("ci-bot", Identity("CI-bot", "cibot"))
    assert stored(memory_keyring) == {"ci-bot": SECRET}

    with pytest.raises(ConfigError):  # remove: config write fails first, secret kept
        identity_store.remove("ci-bot")
    assert stored(memory_keyring) == {"ci-bot": SECRET}

    assert paths.config_file.read_bytes() == raw
    assert not [p for p in paths.config_dir.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    assert identity_store.load().labels == ["anonymous", "ci-bot"]


# -- two processes at once ------------------------------------------------------------------------

_CHILD = """
import sys, time
from pathlib import Path
from pullwatch.identities.secrets import MemoryKeyring, SecretStore
from pullwatch.identities.store import Identity, IdentityStore

config, lock, prefix, go, count = sys.argv[1:6]
store = IdentityStore(Path(config), SecretStore(MemoryKeyring(), timeout=5), lock_path=Path(lock))
deadline = time.monotonic() + 30
while not Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.002)
for i in range(int(count)):
    if i % 2:
        store.add(Identity(f"{prefix}-{i}", f"user{i}"), f"secret-{prefix}-{i}")
    else:
        store.add(Identity(f"{prefix}-{i}"))
"""


def test_two_processes_adding_at_once_lose_nothing(
    identity_store: IdentityStore, paths: Paths, tmp_path: Path
) -> None:
    count = 20
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(paths.config_file),
                str(paths.config_lock),
                prefix,
                str(go),
                str(count),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix in ("p1", "p2")
    ]
    time.sleep(0.2)  # let both start up and wait for the signal
    go.touch()
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
    config = identity_store.load()
    expected = {"anonymous"} | {f"{p}-{i}" for p in ("p1", "p2") for i in range(count)}
    assert len(config.identities) == 2 * count + 1
    assert set(config.labels) == expected


# -- any bytes: a Config or a ConfigError, nothing else -------------------------------------------

_FRAGMENTS = [
    "version = 1",
    "version = 2",
    'version = "1"',
    "[settings]",
    "interval = 60",
    "interval = 5",
    "interval = true",
    "concurrency = 300",
    "bell = false",
    'registry = ""',
    "retention_days = 0",
    "warn_below = -1",
    "[[identity]]",
    'label = "ci-bot"',
    'label = "CI-BOT"',
    'label = "bad label"',
    "label = 7",
    'username = "a@b.c"',
    'username = "cibot"',
    "warn_below = 3",
    'password = "x"',
    "[identity]",
    "identity = [1, 2]",
    "settings = 3",
    "settings.interval = 30",
    '"interval" = 30',
    "x = 1",
    "[other]",
    "# comment",
    "",
]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    raw=st.one_of(
        st.binary(max_size=200),
        st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=12)), max_size=12).map(
            lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")
        ),
    )
)
def test_any_bytes_load_to_a_config_or_a_config_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "fuzz" / "config.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(raw)
    store = IdentityStore(path, SecretStore(MemoryKeyring(), timeout=0.5))
    try:
        config = store.load()
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"{path} line ")
        assert "\n" not in message
    else:
        assert isinstance(config, Config)
        assert config.exists
