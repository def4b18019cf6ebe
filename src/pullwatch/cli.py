"""The command line: every subcommand (design.md §3, a public interface scripts rely on).

Headless commands never import textual, so `pullwatch check` starts fast; only the TUI
commands import `pullwatch.tui`. Every failure a user can meet ends as one line on stderr and a
documented exit code, never a traceback.
"""

from __future__ import annotations

import argparse
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


_non_negative = whole_number(0)


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
    fmt.add_argument(
        "--openmetrics",
        action="store_true",
        help="OpenMetrics text (node_exporter textfile collector); needs pullwatch[metrics]",
    )
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

    hist = command("history", "the recorded readings of one identity, and its recovery estimate")
    hist.add_argument("label", metavar="LABEL")
    hist.add_argument("--json", action="store_true")
    hist.add_argument(
        "--since", metavar="DURATION", default="24h", help="how far back: 90m, 6h, 7d (default 24h)"
    )
    hist.set_defaults(handler=_cmd_history)

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

    from pullwatch.cli_triage import add_triage_commands  # explain, plan, report, serve, import

    add_triage_commands(command, isub, _common_options)

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
    runtime = build_runtime(paths, registry=args.registry, repository=args.repository)
    if runtime.unlocker is not None and args.command in _KEYRING_COMMANDS:
        # The opt-in encrypted keyring: asked for here, before any output (the TUI asks itself).
        from pullwatch.identities.cryptfile import prompt_passphrase

        health = prompt_passphrase(runtime.unlocker)
        if runtime.unlocker.problem or (health is not None and not health.ok):
            message = health.message if health is not None else runtime.unlocker.way_out()
            print(f"pullwatch: warning: {message}", file=sys.stderr)
    return runtime


_KEYRING_COMMANDS = frozenset({"check", "token", "head", "identity", "plan", "report", "serve"})


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

    metrics = _metrics_module() if args.openmetrics else None  # missing extra: fail first
    readings = runtime.probe_round([i.label for i in identities], warn_below=args.warn)
    checked_at = runtime.clock.time()
    recall = _remember(runtime, readings)
    if metrics is not None:
        _print(
            metrics.openmetrics_text(
                readings, registry=runtime.registry, repository=runtime.repository
            )
        )
    elif args.json:
        _print(
            render_json(
                readings,
                checked_at=checked_at,
                registry=runtime.registry,
                repository=runtime.repository,
                per_identity=_check_extras(readings, recall),
            )
        )
    else:
        notes = _check_notes(readings, recall, checked_at)
        _print(render_table(readings, color=_color(sys.stdout), notes=notes))
    return int(exit_code(readings, crit=args.crit))


def _metrics_module() -> Any:
    from pullwatch.cli_triage import metrics_module

    return metrics_module()


def _remember(runtime: Any, readings: list[Any]) -> Any:
    """Add readings to the history (best effort: a broken history costs only the estimates)."""
    from pullwatch.history import record_and_recall

    recall = record_and_recall(
        runtime.paths.history_db,
        readings,
        clock=runtime.clock,
        retention_days=runtime.config.settings.retention_days,
    )
    if recall.problem:
        print(f"pullwatch: warning: history not updated: {recall.problem}", file=sys.stderr)
    return recall


def _insights(readings: list[Any], recall: Any) -> dict[str, list[str]]:
    from pullwatch.insights import by_label, find_insights

    seen = {r.label: recall.recent.sources(r.label) for r in readings}
    return by_label(find_insights(readings, seen))


def _next_in(recall: Any, reading: Any) -> float | None:
    """Seconds until this identity's bucket has a pull back (an estimate), if it lacks some."""
    recovery = recall.recent.recovery(reading.source)
    if recovery is None or not recovery.recovering:
        return None
    return recovery.next_in(reading.checked_at)


def _check_extras(readings: list[Any], recall: Any) -> dict[str, dict[str, Any]]:
    """Per identity, beside the contract's keys: insights, recovery estimate, next steps."""
    from pullwatch.advice import advise
    from pullwatch.output import recovery_json

    insights = _insights(readings, recall)
    return {
        r.label: {
            "insights": insights.get(r.label, []),
            "recovery": recovery_json(recall.recent.recovery(r.source)),
            "advice": list(advise(r, readings, recovers_in=_next_in(recall, r)).steps),
        }
        for r in readings
    }


def _check_notes(readings: list[Any], recall: Any, now: float) -> dict[str, list[str]]:
    """Per identity: what `check` prints under the table (bucket warnings, recovery, next steps)."""
    from pullwatch.advice import advise
    from pullwatch.output import recovery_line

    insights = _insights(readings, recall)
    notes: dict[str, list[str]] = {}
    for reading in readings:
        lines = [f"warning: {message}" for message in insights.get(reading.label, [])]
        recovery = recovery_line(recall.recent.recovery(reading.source), now)
        if recovery and reading.state.value in ("low", "exhausted"):
            lines.append(recovery)
        lines += advise(reading, readings, recovers_in=_next_in(recall, reading)).steps
        if lines:
            notes[reading.label] = lines
    return notes


def _cmd_token(args: argparse.Namespace) -> int:
    from pullwatch.output import describe_token_check, render_table, token_check_json
    from pullwatch.reading import Reading

    runtime = _runtime(args)
    identity = _identity(runtime, args.label)

    result = runtime.token_check(identity)
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

    result = runtime.probe_now(identity)
    _remember(runtime, [result.reading])
    _print(
        json.dumps(head_check_json(result), indent=2) if args.json else describe_head_check(result)
    )
    return int(reading_code(result.reading))


def _cmd_history(args: argparse.Namespace) -> int:
    from pullwatch.durations import parse_duration
    from pullwatch.history import History
    from pullwatch.output import (
        STATE_LABELS,
        iso_time,
        recovery_json,
        recovery_line,
        remaining_text,
    )
    from pullwatch.recovery import estimate

    try:
        since_seconds = float(parse_duration(args.since))
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    runtime = _runtime(args)
    now = runtime.clock.time()
    since = now - since_seconds
    with History(runtime.paths.history_db, clock=runtime.clock) as history:
        readings = history.for_label(args.label, since)
        latest_source = next((r.source for r in reversed(readings) if r.source), None)
        bucket = history.for_source(latest_source, now - 2 * 86400) if latest_source else []
    if not readings and runtime.config.get(args.label) is None:
        raise CliError(f"no identity {args.label!r} and no history for it")
    recovery = estimate(bucket)
    if args.json:
        document = {
            "label": args.label,
            "since": iso_time(since),
            "readings": [r.to_json() for r in readings],
            "recovery": recovery_json(recovery),
        }
        _print(json.dumps(document, indent=2))
        return 0
    if not readings:
        _print(f"no readings of {args.label} in the last {args.since}")
        return 0
    from pullwatch.hub.headers import format_window
    from pullwatch.output import source_display

    rows = [
        (
            iso_time(r.checked_at),
            STATE_LABELS[r.state],
            remaining_text(r),
            format_window(r.window_seconds),
            source_display(r.source),
            r.detail or "",
        )
        for r in readings
    ]
    headers = ("TIME", "STATE", "REMAINING", "WINDOW", "SOURCE", "DETAIL")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        _print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    line = recovery_line(recovery, now)
    _print(f"{len(readings)} readings since {iso_time(since)}" + (f"; {line}" if line else ""))
    return 0


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
