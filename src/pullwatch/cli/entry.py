"""The command line's entry point: the parser (every subcommand: a public interface scripts
rely on, docs/design.md "The command line") and `main`, which turns every failure a user can
meet into one line on stderr and a documented exit code, never a traceback.

Headless commands never import textual, so `pullwatch check` starts fast; only the dashboard
and the demo import `pullwatch.tui`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pullwatch import __version__
from pullwatch.cli import app, fleet, identities, probe, triage
from pullwatch.cli.common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    CliError,
    Parser,
    add_common_options,
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pullwatch",
        description="Docker Hub pull rate limits for every identity, live, without spending a pull",
        epilog="Run without a command for the live dashboard; `pullwatch demo` tries it offline.",
    )
    parser.add_argument("--version", action="version", version=f"pullwatch {__version__}")
    add_common_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def command(name: str, help_text: str, **kwargs: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(
            name, help=help_text, description=help_text, **kwargs
        )
        add_common_options(p, suppress=True)
        return p

    probe.register(command)
    identities.register(command)
    triage.register(command)
    fleet.register(command)
    app.register(command)
    return parser


def _known_errors() -> tuple[type[BaseException], ...]:
    from pullwatch.hub.urls import ConfigurationError
    from pullwatch.identities.model import ConfigError, IdentityError

    known: list[type[BaseException]] = [ConfigError, IdentityError, ConfigurationError]
    if "pullwatch.identities.secrets" in sys.modules:  # loaded only when a command used it
        from pullwatch.identities.secrets import SecretStoreError

        known.append(SecretStoreError)
    return tuple(known)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = getattr(args, "handler", app.cmd_dashboard)
    # `check` promises monitoring semantics: anything that stops it checking is UNKNOWN (3).
    failure_code = 3 if args.command == "check" else EXIT_FAILURE
    try:
        return handler(args)
    except CliError as exc:
        print(f"pullwatch: error: {_line(str(exc))}", file=sys.stderr)
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
            print(f"pullwatch: error: {_line(str(exc))}", file=sys.stderr)
            return failure_code
        print(
            f"pullwatch: internal error: {type(exc).__name__}: {_line(str(exc))}"
            " (please report it)",
            file=sys.stderr,
        )
        return failure_code


def _line(text: str) -> str:
    from pullwatch.redact import one_line

    return one_line(text, 400)
