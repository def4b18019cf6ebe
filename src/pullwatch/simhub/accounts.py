"""Accounts for the simulator: the standard set, a TOML loader, and `pullwatch simhub`'s main.

Accounts file:

    [anonymous]
    limit = 100          # omit for unmetered
    window = 21600

    [[account]]
    username = "alice"
    secret = "alice-pat"
    limit = 200          # omit for a paid plan (unmetered)
    window = 21600
    used = 12            # pulls already spent in the window
    uuid = "..."         # optional
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import tomllib
import uuid as uuidlib
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.simhub.model import HubModel
from pullwatch.simhub.server import SimHubServer

_UUID_NAMESPACE = uuidlib.UUID("5e1f0b7c-9d4a-4c43-8c1e-73696d687562")

# username, secret, limit (None: unmetered), window, used
STANDARD_ACCOUNTS: tuple[tuple[str, str, int | None, int, int], ...] = (
    ("alice", "alice-pat", 200, 21600, 0),  # Personal, fresh
    ("bob", "bob-pat", None, 21600, 0),  # paid plan: not metered
    ("erin", "erin-pat", 200, 21600, 200),  # Personal, exhausted
)

_ANON_KEYS = {"limit", "window"}
_ACCOUNT_KEYS = {"username", "secret", "limit", "window", "used", "uuid"}


def stable_uuid(username: str) -> str:
    """A deterministic account UUID, so demo screens and snapshots do not change per run."""
    return str(uuidlib.uuid5(_UUID_NAMESPACE, username))


def standard_model(clock: Clock = SYSTEM_CLOCK) -> HubModel:
    """alice (200/6 h), bob (unmetered), erin (200/6 h, all used), anonymous 100/6 h."""
    model = HubModel(clock, anonymous_limit=100, anonymous_window=21600)
    for username, secret, limit, window, used in STANDARD_ACCOUNTS:
        model.add_account(username, secret, limit, window, uuid=stable_uuid(username), used=used)
    return model


def _int(where: str, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {key} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{where}: {key} must be at least {minimum}, got {value}")
    return value


def _str(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {key} must be a non-empty string")
    return value


def _check_keys(where: str, table: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def load_accounts(path: str | Path, clock: Clock = SYSTEM_CLOCK) -> HubModel:
    """A `HubModel` from an accounts TOML file. Raises ValueError with a one-line message."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None

    _check_keys(str(path), data, {"anonymous", "account"})
    anonymous = data.get("anonymous", {})
    if not isinstance(anonymous, dict):
        raise ValueError(f"{path}: [anonymous] must be a table")
    _check_keys(f"{path}: [anonymous]", anonymous, _ANON_KEYS)
    where = f"{path}: [anonymous]"
    anon_limit = anonymous.get("limit")
    model = HubModel(
        clock,
        anonymous_limit=None if anon_limit is None else _int(where, "limit", anon_limit, 0),
        anonymous_window=_int(where, "window", anonymous.get("window", 21600), 1),
    )

    accounts = data.get("account", [])
    if not isinstance(accounts, list) or not all(isinstance(a, dict) for a in accounts):
        raise ValueError(f"{path}: accounts must be [[account]] tables")
    seen: set[str] = set()
    for number, table in enumerate(accounts, start=1):
        where = f"{path}: account #{number}"
        _check_keys(where, table, _ACCOUNT_KEYS)
        if "username" not in table or "secret" not in table:
            raise ValueError(f"{where}: username and secret are required")
        username = _str(where, "username", table["username"])
        where = f"{path}: account {username!r}"
        if "@" in username:
            raise ValueError(f"{where}: a username is a Docker ID, not an e-mail address")
        if username in seen or username == "anonymous":
            raise ValueError(f"{where}: duplicate or reserved username")
        seen.add(username)
        secret = _str(where, "secret", table["secret"])
        limit = table.get("limit")
        limit = None if limit is None else _int(where, "limit", limit, 0)
        window = _int(where, "window", table.get("window", 21600), 1)
        used = _int(where, "used", table.get("used", 0), 0)
        account_uuid = table.get("uuid")
        if account_uuid is not None:
            account_uuid = _str(where, "uuid", account_uuid)
        model.add_account(
            username, secret, limit, window, uuid=account_uuid or stable_uuid(username), used=used
        )
    return model


def _stop_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM end `serve_main` like Ctrl-C; returns the undo (a no-op off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def serve_main(accounts_file: Path | None, host: str, port: int, latency: float) -> int:
    """Serve in the foreground until Ctrl-C or SIGTERM: 0 when stopped, 2 on bad input."""
    try:
        model = standard_model() if accounts_file is None else load_accounts(accounts_file)
        model.faults.latency = max(float(latency), 0.0)
        server = SimHubServer(model, host=host, port=port)
    except (ValueError, OSError) as exc:
        print(f"pullwatch simhub: {exc}", file=sys.stderr)
        return 2
    restore = _stop_on_sigterm()
    try:
        with server:
            print(f"simhub listening on {server.url}", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        restore()
    return 0
