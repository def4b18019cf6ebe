"""Import the Docker Hub login Docker itself uses (docs/protocol.md, "Docker's logins").

`$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`) says where Docker keeps a
registry's login: `credHelpers[key]` wins, then `credsStore`, then an inline `auths[key].auth`
(base64 of `user:password`). Docker Hub's key is `https://index.docker.io/v1/`. A helper is the
program `docker-credential-<name>`: `get` reads the server URL on stdin and prints
`{"ServerURL", "Username", "Secret"}`. A `<token>` username is an identity token (a Docker
Desktop or SSO login), which the token endpoint does not take: it is reported, not imported.

Helpers can prompt (gpg for `pass`), so they run with a timeout, and never while a full-screen
app owns the terminal: the caller suspends the app first, or passes `detach_terminal=True` so the
helper runs without a controlling terminal and fails instead of prompting. The secret is only
ever handed to the identity store (the keyring); messages are redacted and never contain it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pullwatch.identities.model import check_label
from pullwatch.identities.store import (
    Config,
    Identity,
    IdentityError,
    IdentityStore,
    validate_username,
)
from pullwatch.redact import one_line, redact, register_secret

HUB_KEY = "https://index.docker.io/v1/"
HUB_HOSTS = frozenset({"index.docker.io", "docker.io", "registry-1.docker.io"})
IDENTITY_TOKEN_USER = "<token>"
DEFAULT_HELPER_TIMEOUT = 30.0  # seconds: enough to type a gpg passphrase
MAX_CONFIG_BYTES = 4 * 1024 * 1024
_HELPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NOT_FOUND = re.compile(r"credentials not found", re.IGNORECASE)


class DockerConfigError(Exception):
    """Docker's config cannot be used: one line, naming the file."""


def docker_config_path(env: Mapping[str, str] | None = None) -> Path:
    """`$DOCKER_CONFIG/config.json`, or `~/.docker/config.json`."""
    env = os.environ if env is None else env
    directory = env.get("DOCKER_CONFIG")
    base = Path(directory).expanduser() if directory else Path.home() / ".docker"
    return base / "config.json"


@dataclass(frozen=True, slots=True)
class DockerConfig:
    path: Path
    exists: bool
    auths: Mapping[str, Any] = field(default_factory=dict)
    creds_store: str | None = None
    cred_helpers: Mapping[str, str] = field(default_factory=dict)


def load_docker_config(path: Path) -> DockerConfig:
    """Read Docker's config.json; a missing file is an empty config. Raises DockerConfigError."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return DockerConfig(path, exists=False)
    except OSError as exc:
        raise DockerConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise DockerConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes: not a config")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        where = f" line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise DockerConfigError(f"{path}{where}: not valid JSON") from None
    if not isinstance(data, dict):
        raise DockerConfigError(f"{path}: not a JSON object")
    auths = data.get("auths")
    helpers = data.get("credHelpers")
    store = data.get("credsStore")
    return DockerConfig(
        path,
        exists=True,
        auths=auths if isinstance(auths, dict) else {},
        creds_store=store if isinstance(store, str) and store else None,
        cred_helpers={k: v for k, v in helpers.items() if isinstance(v, str) and v}
        if isinstance(helpers, dict)
        else {},
    )


def _is_hub_key(key: str) -> bool:
    if key.rstrip("/").endswith(("access-token", "refresh-token")):
        return False
    try:
        host = urlsplit(key if "://" in key else f"https://{key}").hostname or ""
    except ValueError:  # "Invalid IPv6 URL" and the like: not Docker Hub's key
        return False
    return host.lower() in HUB_HOSTS


def _hub_entry(mapping: Mapping[str, Any]) -> tuple[str, Any] | None:
    """Docker Hub's entry: the exact key first, then other spellings of the Hub's host."""
    if HUB_KEY in mapping:
        return HUB_KEY, mapping[HUB_KEY]
    for key, value in mapping.items():
        if isinstance(key, str) and _is_hub_key(key):
            return key, value
    return None


@dataclass(frozen=True, slots=True)
class Step:
    """One place Docker may keep the Hub login, in the order Docker consults them."""

    where: str  # for people: 'credHelpers "desktop"', 'credsStore "pass"', 'auths (inline)'
    helper: str | None = None  # the helper's name when the step runs one

    @property
    def program(self) -> str | None:
        return None if self.helper is None else f"docker-credential-{self.helper}"


def lookup_steps(config: DockerConfig) -> list[Step]:
    """What would be tried, in order, without running anything (to ask before running)."""
    steps: list[Step] = []
    helper = _hub_entry(config.cred_helpers)
    if helper is not None:
        steps.append(Step(f'credHelpers "{helper[1]}"', helper[1]))
    if config.creds_store:
        steps.append(Step(f'credsStore "{config.creds_store}"', config.creds_store))
    if _hub_entry(config.auths) is not None:
        steps.append(Step("auths (inline)"))
    return steps


@dataclass(frozen=True, slots=True)
class DockerLogin:
    username: str
    secret: str = field(repr=False)
    where: str

    @property
    def looks_like_pat(self) -> bool:
        return self.secret.startswith("dckr_pat_")


@dataclass(frozen=True, slots=True)
class LookupResult:
    login: DockerLogin | None
    notes: tuple[str, ...]  # what each step found, one redacted line each
    config_path: Path

    @property
    def found(self) -> bool:
        return self.login is not None


Runner = Callable[..., "HelperAnswer"]


@dataclass(frozen=True, slots=True)
class HelperAnswer:
    username: str | None = None
    secret: str | None = field(default=None, repr=False)
    problem: str | None = None  # why there is no login; None when there is one


def run_helper(
    name: str,
    server: str = HUB_KEY,
    *,
    timeout: float = DEFAULT_HELPER_TIMEOUT,
    detach_terminal: bool = False,
    env: Mapping[str, str] | None = None,
) -> HelperAnswer:
    """`docker-credential-<name> get` for `server`, with a timeout. Never raises."""
    if not _HELPER_NAME.match(name):
        return HelperAnswer(problem=f"refusing to run a helper named {one_line(name, 40)!r}")
    program = f"docker-credential-{name}"
    try:
        process = subprocess.Popen(
            [program, "get"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            start_new_session=detach_terminal,
        )
    except FileNotFoundError:
        return HelperAnswer(problem=f"{program} is not installed (not found on PATH)")
    except OSError as exc:
        return HelperAnswer(problem=f"{program} cannot run: {one_line(exc.strerror or str(exc))}")
    try:
        out, err = process.communicate(server.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process, detach_terminal)
        return HelperAnswer(
            problem=f"{program} did not answer within {timeout:g} s (waiting for a passphrase?)"
        )
    said = redact((err or out).decode("utf-8", "replace"))
    if process.returncode != 0:
        if _NOT_FOUND.search(said):
            return HelperAnswer(problem=f"{program}: no Docker Hub login stored")
        reason = one_line(said, 160) or f"exit status {process.returncode}"
        return HelperAnswer(problem=f"{program} failed: {reason}")
    try:
        data = json.loads(out)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return HelperAnswer(problem=f"{program} printed something that is not JSON")
    username = data.get("Username") if isinstance(data, dict) else None
    secret = data.get("Secret") if isinstance(data, dict) else None
    if not isinstance(username, str) or not isinstance(secret, str) or not secret:
        return HelperAnswer(problem=f"{program} answered without a username and secret")
    return HelperAnswer(username=username, secret=secret)


def _kill(process: subprocess.Popen[bytes], group: bool) -> None:
    try:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.communicate(timeout=2)
    except subprocess.TimeoutExpired:  # a grandchild holds the pipes: stop waiting for it
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _inline(entry: Any) -> HelperAnswer:
    if not isinstance(entry, dict):
        return HelperAnswer(problem="auths entry is not an object")
    if isinstance(entry.get("identitytoken"), str) and entry["identitytoken"]:
        return HelperAnswer(username=IDENTITY_TOKEN_USER, secret=entry["identitytoken"])
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return HelperAnswer(problem="auths entry's auth is not base64 of user:password")
        username, sep, secret = decoded.partition(":")
        if not sep or not username or not secret:
            return HelperAnswer(problem="auths entry's auth is not user:password")
        return HelperAnswer(username=username, secret=secret)
    user, password = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(password, str) and user and password:
        return HelperAnswer(username=user, secret=password)
    return HelperAnswer(problem="auths has a Docker Hub entry without credentials")


def find_hub_login(
    config: DockerConfig,
    *,
    timeout: float = DEFAULT_HELPER_TIMEOUT,
    detach_terminal: bool = False,
    runner: Runner = run_helper,
) -> LookupResult:
    """Try each step in Docker's order; the first that yields a usable login wins."""
    notes: list[str] = []
    if not config.exists:
        notes.append(f"{config.path} does not exist: Docker has no login here")
        return LookupResult(None, _clean(notes), config.path)
    steps = lookup_steps(config)
    if not steps:
        notes.append(f"{config.path} has no Docker Hub login (no credHelpers, credsStore or auths)")
    for step in steps:
        if step.helper is not None:
            answer = runner(step.helper, HUB_KEY, timeout=timeout, detach_terminal=detach_terminal)
        else:
            entry = _hub_entry(config.auths)
            answer = _inline(entry[1] if entry else None)
        if answer.problem is not None:
            notes.append(f"{step.where}: {answer.problem}")
            continue
        assert answer.username is not None and answer.secret is not None
        if answer.username == IDENTITY_TOKEN_USER:
            notes.append(
                f"{step.where}: an identity token (a Docker Desktop or SSO login), not a personal "
                "access token: it cannot be imported; create a personal access token and use "
                "`pullwatch identity add`"
            )
            continue
        try:
            validate_username(answer.username)
        except IdentityError as exc:
            notes.append(f"{step.where}: {one_line(str(exc), 200)}")
            continue
        register_secret(f"docker-import:{answer.username}", answer.secret)
        login = DockerLogin(answer.username, answer.secret, step.where)
        notes.append(f"{step.where}: Docker ID {answer.username}")
        return LookupResult(login, _clean(notes), config.path)
    return LookupResult(None, _clean(notes), config.path)


def _clean(notes: list[str]) -> tuple[str, ...]:
    """Notes quote the config file and helpers' answers: one clean line each."""
    return tuple(one_line(note, 400) for note in notes)


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    label: str
    username: str
    replaced: bool
    config: Config


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What importing a login would do, decided without storing anything (`--dry-run` says it,
    `import_login` does it)."""

    label: str  # the identity it would add or update
    replaces: bool  # an existing identity's login would be replaced (--update)
    problem: str | None = None  # why the import would be refused; None when it would not
    instead: str | None = None  # a free label that would be accepted (--label), when refused


def free_label(config: Config, base: str) -> str:
    """`base-2`, `base-3`, ...: the first label no identity has (in any case) and that is valid."""
    stem = base[:60]
    number = 2
    while config.get(f"{stem}-{number}") is not None or check_label(f"{stem}-{number}"):
        number += 1
    return f"{stem}-{number}"


def plan_import(
    config: Config, login: DockerLogin, label: str | None = None, *, update: bool = False
) -> ImportPlan:
    """The identity `login` would become under `label` (default: its Docker ID), or why not."""
    chosen = label or login.username
    problem = check_label(chosen)
    if problem:
        return ImportPlan(chosen, False, problem, free_label(config, "docker"))
    existing = config.get(chosen)
    if existing is None:
        same_user = [i.label for i in config.identities if i.username == login.username]
        if same_user and not label:
            return ImportPlan(
                chosen,
                False,
                f"Docker ID {login.username} is already identity {same_user[0]!r}: pass --label "
                f"{same_user[0]} --update to replace its token, or --label NEW",
                free_label(config, login.username),
            )
        return ImportPlan(chosen, False)
    if not update:
        return ImportPlan(
            existing.label,
            False,
            f"identity {existing.label!r} exists: pass --update to replace its login, or choose "
            "another --label",
            free_label(config, chosen),
        )
    return ImportPlan(existing.label, True)


def import_login(
    store: IdentityStore, login: DockerLogin, label: str | None = None, *, update: bool = False
) -> ImportOutcome:
    """Store `login` as an identity (secret to the keyring). Raises IdentityError, ConfigError,
    SecretStoreError with one-line messages; never one that holds the secret."""
    config = store.load()
    plan = plan_import(config, login, label, update=update)
    if plan.problem:
        free = f" (--label {plan.instead} is free)" if plan.instead else ""
        raise IdentityError(plan.problem + free)
    if not plan.replaces:
        written = store.add(Identity(plan.label, login.username), login.secret)
        return ImportOutcome(plan.label, login.username, False, written)
    existing = config.get(plan.label)
    assert existing is not None
    replacement = Identity(existing.label, login.username, existing.warn_below)
    written = store.update(existing.label, replacement, login.secret)
    return ImportOutcome(existing.label, login.username, True, written)
