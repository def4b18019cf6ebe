"""The interactive commands: the dashboard (no command), `demo`, and `simhub` (the simulated
Docker Hub). Only these import textual, and only when run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pullwatch.cli.common import EXIT_USAGE, CliError, Command, load_runtime


def register(command: Command) -> None:
    demo = command(
        "demo", "the dashboard against the built-in simulated hub (no network, no secrets)"
    )
    demo.add_argument(
        "--no-traffic",
        action="store_true",
        help="no simulated pulls by other clients while you watch",
    )
    demo.set_defaults(handler=cmd_demo)

    sim = command("simhub", "serve the simulated Docker Hub on loopback (for trying and testing)")
    sim.add_argument("--accounts", metavar="FILE", type=Path, help="accounts TOML file")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=0, help="default: a free port")
    sim.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    sim.set_defaults(handler=cmd_simhub)


def run_dashboard(runtime: Any, **options: Any) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError(
            "the dashboard needs a terminal; for scripts use `pullwatch check` (--json)", EXIT_USAGE
        )
    from pullwatch.tui.app import make_app
    from pullwatch.tui.terminal import hangup_safe_output

    app = make_app(runtime, **options)
    with hangup_safe_output():  # an SSH drop must not leave the app stuck writing
        app.run()
    return app.return_code or 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    runtime = load_runtime(args)
    runtime.round_interval = float(runtime.config.settings.interval)  # big rounds spread over it
    return run_dashboard(runtime)


def cmd_demo(args: argparse.Namespace) -> int:
    from pullwatch.demo import DEMO_INTERVAL, start_demo

    demo = start_demo(traffic=not args.no_traffic)
    try:
        return run_dashboard(demo.runtime, demo=True, interval=DEMO_INTERVAL)
    finally:
        demo.close()


def cmd_simhub(args: argparse.Namespace) -> int:
    from pullwatch.simhub.accounts import serve_main

    return serve_main(args.accounts, args.host, args.port, args.latency)
