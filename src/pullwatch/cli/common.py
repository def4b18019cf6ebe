"""What every command shares: the one-line error, exit codes, argument types, the global options,
building the runtime, and writing output.

Nothing here imports anything heavy at module level: `pullwatch check` loads only what it uses.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from pullwatch.paths import resolve_paths

if TYPE_CHECKING:
    from pullwatch.assess import Assessment
    from pullwatch.identities.model import Identity
    from pullwatch.reading import Reading
    from pullwatch.runtime import Runtime

# Exit codes outside `check`'s 0-3 contract.
EXIT_FAILURE = 1
EXIT_USAGE = 64  # EX_USAGE
EXIT_INTERRUPTED = 130

# Commands that read the keyring (an opted-in encrypted keyring asks for its passphrase first).
KEYRING_COMMANDS = frozenset({"check", "token", "head", "identity", "plan", "report", "serve"})

Command = Callable[..., argparse.ArgumentParser]


class CliError(Exception):
    """A one-line error for the user, with the exit code to leave with."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# -- argument types -----------------------------------------------------------------------------


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more")
        return value

    return parse


def seconds(maximum: float = 86400) -> Callable[[str], float]:
    """An argparse type: seconds, more than 0 and at most `maximum` (`90`, `1.5`, `2m`)."""

    def parse(text: str) -> float:
        from pullwatch.durations import parse_duration

        try:
            value = float(parse_duration(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not value > 0 or value > maximum:
            raise argparse.ArgumentTypeError(f"must be more than 0 and at most {maximum:g}")
        return value

    return parse


non_negative = whole_number(0)
positive = whole_number(1)


def setting(key: str, kind: Callable[[str], int | float]) -> Callable[[str], Any]:
    """An argparse type: a value for the config's `key`, checked by the config's own rule
    (identities/model.py), so a flag and the file accept the same values."""

    def parse(text: str) -> int | float:
        from pullwatch.identities.model import SETTING_RULES

        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        problem = SETTING_RULES[key](value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


def add_common_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The global options, accepted before and after the command name."""
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--config-dir",
        metavar="DIR",
        default=default,
        help="config directory (env PULLWATCH_CONFIG_DIR)",
    )
    group.add_argument(
        "--data-dir", metavar="DIR", default=default, help="data directory (env PULLWATCH_DATA_DIR)"
    )
    group.add_argument(
        "--registry",
        metavar="URL",
        default=default,
        help="registry (env PULLWATCH_REGISTRY; default https://registry-1.docker.io)",
    )
    group.add_argument(
        "--repository",
        metavar="NAME[:TAG]",
        default=default,
        help="manifest that is HEAD-probed: NAME[:TAG|@DIGEST] (default ratelimitpreview/test)",
    )
    group.add_argument(
        "--ca-cert",
        metavar="FILE",
        default=default,
        help="PEM file of CAs to trust for https, besides the system trust store "
        "(env PULLWATCH_CA_CERT; SSL_CERT_FILE and SSL_CERT_DIR are honoured too)",
    )
    group.add_argument(
        "--max-rate",
        metavar="N",
        type=setting("max_rate", float),
        default=default,
        help="at most N requests per second to the registry, sustained (env PULLWATCH_MAX_RATE, "
        "config max_rate; default 25, under Docker Hub's abuse limit)",
    )
    group.add_argument(
        "--burst",
        metavar="N",
        type=setting("burst", int),
        default=default,
        help="up to N requests at once above that rate: the registry never sees more than "
        "burst + max-rate requests in any second (env PULLWATCH_BURST, config burst; "
        "default 250: a check of 100 identities is not slowed)",
    )


# -- the runtime --------------------------------------------------------------------------------


def load_runtime(args: argparse.Namespace) -> Runtime:
    """The runtime for these arguments; an opted-in encrypted keyring is unlocked here."""
    from pullwatch.runtime import PaceError, build_runtime

    paths = resolve_paths(config_dir=args.config_dir, data_dir=args.data_dir)
    try:
        runtime = build_runtime(
            paths,
            registry=args.registry,
            repository=args.repository,
            ca_cert=args.ca_cert,
            max_rate=args.max_rate,
            burst=args.burst,
        )
    except PaceError as exc:  # a bad PULLWATCH_MAX_RATE / PULLWATCH_BURST: a usage error
        raise CliError(str(exc), EXIT_USAGE) from None
    runtime.warn_below = getattr(args, "warn", None)
    runtime.warn_within = getattr(args, "warn_within", None)
    runtime.retry_auth = bool(getattr(args, "retry_auth", False))
    if runtime.unlocker is not None and args.command in KEYRING_COMMANDS:
        # The opt-in encrypted keyring: asked for here, before any output (the TUI asks itself).
        from pullwatch.identities.cryptfile import prompt_passphrase

        health = prompt_passphrase(runtime.unlocker)
        if runtime.unlocker.problem or (health is not None and not health.ok):
            message = health.message if health is not None else runtime.unlocker.way_out()
            note(f"warning: {message}")
    return runtime


def find_identity(runtime: Runtime, label: str) -> Identity:
    identity = runtime.config.get(label)
    if identity is None:
        known = ", ".join(i.label for i in runtime.config.identities) or "none"
        raise CliError(f"no identity {label!r} (known: {known})")
    return identity


def chosen_identities(runtime: Runtime, labels: Sequence[str]) -> list[Identity]:
    identities = list(runtime.config.identities)
    if labels:
        identities = [find_identity(runtime, label) for label in labels]
    if not identities:
        raise CliError("no identities configured: add one with `pullwatch identity add`")
    return identities


def assess_and_remember(runtime: Runtime, readings: Sequence[Reading]) -> list[Assessment]:
    """Add readings to the history, then assess them with what it knows (best effort: a
    broken history costs the estimates and the last known values, never the check)."""
    from pullwatch.history import record_and_recall

    recall = record_and_recall(
        runtime.paths.history_db,
        readings,
        clock=runtime.clock,
        retention_days=runtime.config.settings.retention_days,
    )
    if recall.problem:
        note(f"warning: history not used: {recall.problem}")
    return runtime.assess(readings, recall.recent)


# -- output -------------------------------------------------------------------------------------


def color(stream: IO[str]) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def note(message: str) -> None:
    """A message for the user on stderr: `pullwatch: ...`, one line, cleaned."""
    from pullwatch.redact import one_line

    print(f"pullwatch: {one_line(message, 400)}", file=sys.stderr)


def write_private(path: Path, text: str) -> None:
    """Write `text` atomically, readable by the owner only. Raises CliError."""
    path = path.expanduser()
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path())
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(temp).replace(path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
