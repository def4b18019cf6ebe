"""Who we check as: the identity and settings model, and the one set of validators.

The store (files), the add/edit form and `identity add` all check values here, so they cannot
disagree. Usernames follow the registry: on Docker Hub a Docker ID (4-30 lower-case letters and
digits, never an e-mail address); other registries keep their own, looser rules. A token is
never accepted where a username belongs, on any registry.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

FORMAT_VERSION = 1
DEFAULT_LABEL = "anonymous"

LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
# Docker Hub's rule for new Docker IDs: 4 to 30 lower-case letters and digits.
DOCKER_ID_RE = re.compile(r"^[a-z0-9]{4,30}$")
# What a config file may hold (older Docker IDs, other registries): looser, never an e-mail.
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._$-]{0,254}$")
# Shapes of secrets: Docker personal/organisation access tokens, JWTs, long opaque blobs.
_TOKEN_SHAPED = re.compile(
    r"^(?:dckr_(?:pat|oat|jti)_|eyJ[A-Za-z0-9_-]{8,}\.)|^[A-Za-z0-9+/_=-]{40,}$", re.IGNORECASE
)


class ConfigError(Exception):
    """The config file cannot be used: one line, "<path> line N: <what is wrong>"."""


class IdentityError(ValueError):
    """A requested change is not valid: one line."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who we check as: anonymous (no username), or a login whose secret is in the keyring."""

    label: str
    username: str | None = None
    warn_below: int | None = None

    @property
    def anonymous(self) -> bool:
        return self.username is None


@dataclass(frozen=True, slots=True)
class Settings:
    interval: int = 60  # seconds between rounds, >= 10
    registry: str | None = None
    repository: str | None = None  # NAME[:TAG|@DIGEST]
    warn_below: int | None = None
    concurrency: int = 32  # 1..256
    bell: bool = True
    retention_days: int = 7  # >= 1
    keyring: str | None = None  # "system" (default) or "cryptfile" (the encrypted-file opt-in)
    ca_cert: str | None = None  # a PEM file of CAs to trust, beside the system's
    max_rate: float | None = None  # requests per second, sustained (see hub/pacing.py)
    burst: int | None = None  # requests allowed at once above the sustained rate
    warn_within: str | None = None  # a forecast run-out this close is a warning ("30m")


@dataclass(frozen=True, slots=True)
class Config:
    """The identities and settings as loaded; `exists` is False when no file was found.

    `warning` is set by a write that succeeded but left something behind (a keyring entry that
    could not be deleted); it is None on a plain load.
    """

    identities: tuple[Identity, ...]
    settings: Settings
    path: Path
    exists: bool
    warning: str | None = None

    def get(self, label: str) -> Identity | None:
        """The identity with this label (exact match first, then case-insensitive)."""
        for identity in self.identities:
            if identity.label == label:
                return identity
        folded = label.casefold()
        for identity in self.identities:
            if identity.label.casefold() == folded:
                return identity
        return None

    @property
    def labels(self) -> list[str]:
        return [identity.label for identity in self.identities]


# -- validation -------------------------------------------------------------------------------


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def check_label(value: object) -> str | None:
    if not isinstance(value, str):
        return "label must be a string"
    if not LABEL_RE.match(value):
        return (
            f"invalid label {value[:70]!r}: use 1-64 letters, digits and . _ @ + - "
            "(starting with a letter or digit)"
        )
    return None


def looks_like_token(value: str) -> bool:
    """Whether `value` is shaped like a secret (a PAT, a JWT, a long opaque token)."""
    return bool(_TOKEN_SHAPED.search(value.strip()))


def check_username(value: object, *, docker_hub: bool | None = True) -> str | None:
    """Why `value` is not a username for this registry; None when it is.

    `docker_hub` True applies Docker's rule for Docker IDs, False another registry's looser
    one, None the file rule (what any config may hold, whichever registry it is used with).
    """
    if not isinstance(value, str):
        return "username must be a string"
    if looks_like_token(value):
        return (
            "that looks like a token, not a username: put the personal access token in the "
            "token field (or --password-stdin), and the username here"
        )
    if "@" in value:
        who = {
            True: "the Docker ID (the username shown on hub.docker.com)",
            False: "the registry's username",
            None: "the Docker ID on Docker Hub (the username shown on hub.docker.com)",
        }[docker_hub]
        return f"username looks like an e-mail address: use {who}, not the e-mail address"
    if docker_hub:
        if not DOCKER_ID_RE.match(value):
            return (
                "invalid Docker ID: 4 to 30 lower-case letters and digits (the username shown "
                "on hub.docker.com)"
            )
        return None
    if not USERNAME_RE.match(value):
        return "invalid username: letters, digits and . _ $ - (no spaces or colons)"
    return None


def check_warn_below(value: object, name: str = "warn_below") -> str | None:
    if not is_int(value) or value < 0:
        return f"{name} must be a whole number >= 0"
    return None


def check_secret(secret: object) -> str | None:
    """Why `secret` cannot be stored (never echoes it); None when it can."""
    if not isinstance(secret, str):
        return "the secret must be a string"
    if not secret:
        return "the secret is empty: paste the personal access token"
    if any(c in secret for c in "\r\n\x00"):
        return "the secret contains a line break: paste only the token itself"
    return None


def _raise(problem: str | None) -> None:
    if problem:
        raise IdentityError(problem)


def validate_label(label: object) -> None:
    """Raise IdentityError unless `label` is a valid identity label."""
    _raise(check_label(label))


def validate_username(username: object, *, docker_hub: bool | None = True) -> None:
    """Raise IdentityError unless `username` is a username for this registry."""
    _raise(check_username(username, docker_hub=docker_hub))


def validate_secret(secret: object) -> None:
    """Raise IdentityError unless `secret` is a non-empty single line (never echoes it)."""
    _raise(check_secret(secret))


def validate_identity(identity: Identity, *, docker_hub: bool | None = None) -> None:
    """Raise IdentityError if any field of `identity` is invalid."""
    validate_label(identity.label)
    if identity.username is not None:
        validate_username(identity.username, docker_hub=docker_hub)
    if identity.warn_below is not None:
        _raise(check_warn_below(identity.warn_below))


def check_change(
    identity: Identity,
    secret: str | None,
    *,
    existing: Identity | None,
    taken: Collection[str] = (),
    docker_hub: bool | None = True,
) -> dict[str, str]:
    """Every problem with adding `identity` (or changing `existing` into it), by field.

    Fields: `label`, `username`, `secret`, `warn`. `taken` are the labels already in use (any
    case). A new token is needed when there is no stored one to keep: a new identity with a
    username, or an anonymous one that gets a username. A changed username keeps the stored
    token (fixing a mistyped username must not require pasting the token again).
    """
    errors: dict[str, str] = {}

    def add(name: str, problem: str | None) -> None:
        if problem and name not in errors:
            errors[name] = problem

    add("label", check_label(identity.label))
    folded = {label.casefold() for label in taken}
    mine = existing.label.casefold() if existing is not None else None
    if identity.label.casefold() in folded and identity.label.casefold() != mine:
        add("label", f"an identity called {identity.label!r} already exists")
    if identity.username is not None:
        add("username", check_username(identity.username, docker_hub=docker_hub))
    if identity.username is None and secret:
        add("secret", "an anonymous identity has no token: enter a username or clear this")
    needs_secret = identity.username is not None and (existing is None or existing.anonymous)
    if needs_secret and secret is None:
        add("secret", "a username needs a secret: paste the personal access token")
    if secret is not None:
        add("secret", check_secret(secret))
        if identity.username is not None and secret and secret.strip() == identity.username:
            add("secret", "the token is the same as the username: paste the access token")
    if identity.warn_below is not None:
        add("warn", check_warn_below(identity.warn_below))
    return errors


def first_problem(errors: Mapping[str, str]) -> str | None:
    for name in ("label", "username", "secret", "warn"):
        if name in errors:
            return errors[name]
    return next(iter(errors.values()), None)


# -- the keyring choice -----------------------------------------------------------------------

ENV_KEYRING = "PULLWATCH_KEYRING"
KEYRING_CHOICES = ("system", "cryptfile")


class KeyringChoiceError(ValueError):
    """PULLWATCH_KEYRING names no known keyring. str() is one line."""


def keyring_choice(env: Mapping[str, str], setting: str | None) -> str:
    """`system` or `cryptfile`: the environment wins over the config's `[settings] keyring`."""
    raw = env.get(ENV_KEYRING, "").strip().lower()
    if raw and raw not in KEYRING_CHOICES:
        raise KeyringChoiceError(
            f"{ENV_KEYRING}={raw[:40]!r} is not one of {', '.join(KEYRING_CHOICES)}"
        )
    return raw or setting or "system"


# -- settings ---------------------------------------------------------------------------------

Rule = Callable[[object], str | None]


def int_rule(minimum: int, maximum: int | None = None) -> Rule:
    def check(value: object) -> str | None:
        if not is_int(value):
            return "must be a whole number"
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and <= {maximum}" if maximum is not None else ""
            return f"must be >= {minimum}{upper} (got {value})"
        return None

    return check


def _number_rule(minimum: float) -> Rule:
    def check(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if not math.isfinite(value):
            return f"must be a finite number (got {value})"
        if value < minimum:
            return f"must be >= {minimum:g} (got {value})"
        return None

    return check


def _str_rule(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    return None


def _bool_rule(value: object) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _keyring_rule(value: object) -> str | None:
    if value in ("system", "cryptfile"):
        return None
    return 'must be "system" or "cryptfile"'


def _duration_rule(value: object) -> str | None:
    from pullwatch.durations import parse_duration

    if not isinstance(value, str):
        return 'must be a duration in quotes, like "30m"'
    try:
        parse_duration(value)
    except ValueError as exc:
        return str(exc)
    return None


SETTING_RULES: dict[str, Rule] = {
    "interval": int_rule(10),
    "registry": _str_rule,
    "repository": _str_rule,
    "warn_below": int_rule(0),
    "concurrency": int_rule(1, 256),
    "bell": _bool_rule,
    "retention_days": int_rule(1),
    "keyring": _keyring_rule,
    "ca_cert": _str_rule,
    "max_rate": _number_rule(0.1),
    "burst": int_rule(1, 10_000),
    "warn_within": _duration_rule,
}
SETTING_ORDER = tuple(f.name for f in dataclasses.fields(Settings))
IDENTITY_KEYS = ("label", "username", "warn_below")


def settings_from(values: Mapping[str, Any]) -> Settings:
    return Settings(**values)
