"""The command line: every subcommand (design.md §3, a public interface scripts rely on).

Headless commands never import textual, so `pullwatch check` starts fast; only the TUI
commands import `pullwatch.tui`. Every failure a user can meet ends as one line on stderr and a
documented exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pullwatch import __version__
from pullwatch.paths import resolve_paths

# Exit codes outside `check`'s 0-3 contract.
EXIT_FAILURE = 1
EXIT_USAGE = 64  # EX_USAGE
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A one-line error for the user, with the exit code to leave with."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _common_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
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
        metavar="REPO",
        default=default,
        help="repository whose manifest is HEAD-probed (default ratelimitpreview/test)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pullwatch",
        description="Docker Hub pull rate limits for every identity, live, without spending a pull",
        epilog="Run without a command for the live dashboard; `pullwatch demo` tries it offline.",
    )
    parser.add_argument("--version", action="version", version=f"pullwatch {__version__}")
    _common_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_text: str, **kwargs: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, **kwargs)
        _common_options(p, suppress=True)
        return p

    check = command(
        "check", "probe every identity once, print, exit 0 ok/1 warning/2 critical/3 unknown"
    )
    fmt = check.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON document")
    check.add_argument(
        "--identity",
        metavar="LABEL",
        action="append",
        default=[],
        help="only this identity (repeatable)",
    )
    check.add_argument(
        "--warn",
        metavar="N",
        type=_non_negative,
        help="warning when remaining <= N (default: 20%% of the limit)",
    )
    check.add_argument(
        "--crit",
        metavar="N",
        type=_non_negative,
        default=0,
        help="critical when remaining <= N (default 0)",
    )
    check.set_defaults(handler=_cmd_check)

    token = command("token", "a fresh token request: status, latency, expiry and decoded claims")
    token.add_argument("label", metavar="LABEL")
    token.add_argument("--json", action="store_true")
    token.set_defaults(handler=_cmd_token)

    head = command(
        "head", "one HEAD probe now: status, latency, every header (redacted) and the parse"
    )
    head.add_argument("label", metavar="LABEL")
    head.add_argument("--json", action="store_true")
    head.set_defaults(handler=_cmd_head)

    identity = command("identity", "manage identities (secrets go to the OS keyring)")
    isub = identity.add_subparsers(dest="identity_command", metavar="ACTION", parser_class=_Parser)
    isub.required = True
    add = isub.add_parser("add", help="add an identity (no --username: anonymous)")
    _common_options(add, suppress=True)
    add.add_argument("label", metavar="LABEL")
    add.add_argument("--username", metavar="USER", help="Docker ID (not the e-mail address)")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the personal access token (or password) from stdin, like `docker login`",
    )
    add.add_argument(
        "--warn-below", metavar="N", type=_non_negative, help="low when remaining <= N"
    )
    add.set_defaults(handler=_cmd_identity_add)
    lst = isub.add_parser("list", help="list identities and whether their secret is in the keyring")
    _common_options(lst, suppress=True)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=_cmd_identity_list)
    rm = isub.add_parser("remove", help="remove an identity and its keyring entry")
    _common_options(rm, suppress=True)
    rm.add_argument("label", metavar="LABEL")
    rm.set_defaults(handler=_cmd_identity_remove)

    demo = command(
        "demo", "the dashboard against the built-in simulated hub (no network, no secrets)"
    )
    demo.add_argument(
        "--no-traffic",
        action="store_true",
        help="no simulated pulls by other clients while you watch",
    )
    demo.set_defaults(handler=_cmd_demo)

    sim = command("simhub", "serve the simulated Docker Hub on loopback (for trying and testing)")
    sim.add_argument("--accounts", metavar="FILE", type=Path, help="accounts TOML file")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=0, help="default: a free port")
    sim.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    sim.set_defaults(handler=_cmd_simhub)
    return parser


# -- helpers -----------------------------------------------------------------------------------


def _runtime(args: argparse.Namespace) -> Any:
    from pullwatch.runtime import build_runtime

    paths = resolve_paths(config_dir=args.config_dir, data_dir=args.data_dir)
    return build_runtime(paths, registry=args.registry, repository=args.repository)


def _color(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def _identity(runtime: Any, label: str) -> Any:
    identity = runtime.config.get(label)
    if identity is None:
        known = ", ".join(i.label for i in runtime.config.identities) or "none"
        raise CliError(f"no identity {label!r} (known: {known})")
    return identity


def _print(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


# -- commands ----------------------------------------------------------------------------------


def _cmd_check(args: argparse.Namespace) -> int:
    from pullwatch.output import exit_code, render_json, render_table

    runtime = _runtime(args)
    identities = list(runtime.config.identities)
    if args.identity:
        identities = [_identity(runtime, label) for label in args.identity]
    if not identities:
        raise CliError("no identities configured: add one with `pullwatch identity add`", 3)

    async def probe() -> list[Any]:
        async with runtime.client() as client:
            monitor = runtime.monitor(client, warn_below=args.warn)
            return await monitor.round([i.label for i in identities])

    readings = asyncio.run(probe())
    checked_at = runtime.clock.time()
    if args.json:
        _print(
            render_json(
                readings,
                checked_at=checked_at,
                registry=runtime.registry,
                repository=runtime.repository,
            )
        )
    else:
        notes = _check_notes(readings, runtime)
        _print(render_table(readings, color=_color(sys.stdout), notes=notes))
    return int(exit_code(readings, crit=args.crit))


def _check_notes(readings: list[Any], runtime: Any) -> dict[str, list[str]]:
    """Per identity: what `check` prints under the table (next steps, bucket warnings)."""
    from pullwatch.advice import advise

    notes: dict[str, list[str]] = {}
    for reading in readings:
        lines = list(advise(reading, readings).steps)
        if lines:
            notes[reading.label] = lines
    return notes


def _cmd_token(args: argparse.Namespace) -> int:
    from pullwatch.output import describe_token_check, render_table, token_check_json
    from pullwatch.reading import Reading

    runtime = _runtime(args)
    identity = _identity(runtime, args.label)

    async def run() -> Any:
        async with runtime.client() as client:
            return await runtime.monitor(client).check_token(identity)

    result = asyncio.run(run())
    if isinstance(result, Reading):  # the secret could not be read
        if args.json:
            _print(json.dumps(result.to_json(), indent=2))
        else:
            _print(render_table([result]))
        return EXIT_FAILURE
    _print(
        json.dumps(token_check_json(result), indent=2)
        if args.json
        else describe_token_check(result)
    )
    return 0 if result.ok else EXIT_FAILURE


def _cmd_head(args: argparse.Namespace) -> int:
    from pullwatch.output import describe_head_check, head_check_json, reading_code

    runtime = _runtime(args)
    identity = _identity(runtime, args.label)

    async def run() -> Any:
        async with runtime.client() as client:
            return await runtime.monitor(client).check(identity)

    result = asyncio.run(run())
    _print(
        json.dumps(head_check_json(result), indent=2) if args.json else describe_head_check(result)
    )
    return int(reading_code(result.reading))


def _read_secret(args: argparse.Namespace) -> str:
    if args.password_stdin:
        secret = sys.stdin.read()
        secret = secret[:-1] if secret.endswith("\n") else secret
        secret = secret[:-1] if secret.endswith("\r") else secret
    elif sys.stdin.isatty():
        secret = getpass.getpass(f"Personal access token for {args.username}: ")
    else:
        raise CliError("stdin is not a terminal: pass the token with --password-stdin", EXIT_USAGE)
    if not secret:
        raise CliError("empty secret: nothing stored", EXIT_USAGE)
    return secret


def _cmd_identity_add(args: argparse.Namespace) -> int:
    from pullwatch.identities.store import Identity

    if args.password_stdin and not args.username:
        raise CliError(
            "--password-stdin needs --username (an anonymous identity has no secret)", EXIT_USAGE
        )
    runtime = _runtime(args)
    secret = _read_secret(args) if args.username else None
    identity = Identity(label=args.label, username=args.username, warn_below=args.warn_below)
    runtime.store.add(identity, secret)
    where = (
        f"secret stored in the keyring ({runtime.secrets.SERVICE}/{args.label})"
        if secret
        else "anonymous"
    )
    print(f"added {args.label}: {where}", file=sys.stderr)
    return 0


def _cmd_identity_list(args: argparse.Namespace) -> int:
    from pullwatch.identities.secrets import KeyringStatus

    runtime = _runtime(args)
    rows = []
    for identity in runtime.config.identities:
        if identity.username is None:
            secret = "not needed"
        else:
            lookup = runtime.store.secret_for(identity)
            if lookup.status is KeyringStatus.OK:
                secret = "in keyring" if lookup.secret else "missing"
            else:
                secret = f"unavailable ({lookup.status.value})"
        rows.append(
            {
                "label": identity.label,
                "username": identity.username,
                "secret": secret,
                "warn_below": identity.warn_below,
            }
        )
    if args.json:
        _print(json.dumps({"identities": rows}, indent=2))
        return 0
    headers = ("LABEL", "USERNAME", "SECRET")
    table = [(r["label"], r["username"] or "(anonymous)", r["secret"]) for r in rows]
    widths = [
        max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(headers)
    ]
    for line in [headers, *table]:
        _print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return 0


def _cmd_identity_remove(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    _identity(runtime, args.label)
    result = runtime.store.remove(args.label)
    warning = getattr(result, "warning", None)
    if warning:
        print(f"pullwatch: warning: {warning}", file=sys.stderr)
    print(f"removed {args.label}", file=sys.stderr)
    return 0


def _run_dashboard(runtime: Any, **options: Any) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError(
            "the dashboard needs a terminal; for scripts use `pullwatch check` (--json)", EXIT_USAGE
        )
    from pullwatch.tui.app import make_app

    app = make_app(runtime, **options)
    app.run()
    return app.return_code or 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    return _run_dashboard(_runtime(args))


def _cmd_demo(args: argparse.Namespace) -> int:
    from pullwatch.demo import DEMO_INTERVAL, start_demo

    demo = start_demo(traffic=not args.no_traffic)
    try:
        return _run_dashboard(demo.runtime, demo=True, interval=DEMO_INTERVAL)
    finally:
        demo.close()


def _cmd_simhub(args: argparse.Namespace) -> int:
    from pullwatch.simhub.accounts import serve_main

    return serve_main(args.accounts, args.host, args.port, args.latency)


# -- entry point -------------------------------------------------------------------------------


def _known_errors() -> tuple[type[BaseException], ...]:
    from pullwatch.hub.client import ConfigurationError
    from pullwatch.identities.secrets import SecretStoreError
    from pullwatch.identities.store import ConfigError, IdentityError

    return (ConfigError, IdentityError, ConfigurationError, SecretStoreError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = getattr(args, "handler", _cmd_dashboard)
    # `check` promises monitoring semantics: anything that stops it checking is UNKNOWN (3).
    failure_code = 3 if args.command == "check" else EXIT_FAILURE
    try:
        return handler(args)
    except CliError as exc:
        print(f"pullwatch: error: {exc}", file=sys.stderr)
        return 3 if args.command == "check" and exc.code == EXIT_FAILURE else exc.code
    except KeyboardInterrupt:
        print("pullwatch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`pullwatch check | head -1`): leave quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return failure_code
    except Exception as exc:
        if isinstance(exc, _known_errors()):
            print(f"pullwatch: error: {exc}", file=sys.stderr)
            return failure_code
        from pullwatch.hub.redact import one_line

        print(
            f"pullwatch: internal error: {type(exc).__name__}: {one_line(str(exc))}"
            " (please report it)",
            file=sys.stderr,
        )
        return failure_code
