"""The fleet commands: `serve` (probe on an interval, export Prometheus metrics)."""

from __future__ import annotations

import argparse

from pullwatch.cli.common import EXIT_USAGE, CliError, Command, load_runtime, note, seconds


def register(command: Command) -> None:
    serve = command(
        "serve", "probe on the configured interval and serve Prometheus metrics on /metrics"
    )
    serve.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="127.0.0.1:9723",
        help="address to serve on (default 127.0.0.1:9723; ':9723' = every interface)",
    )
    serve.add_argument(
        "--interval",
        metavar="SECONDS",
        type=seconds(),
        help="seconds between probe rounds (default: the config's interval, at least 10)",
    )
    serve.add_argument(
        "--instance-label",
        metavar="NAME",
        help="the `node` label on every series (default: the host name)",
    )
    serve.add_argument(
        "--retry-auth",
        action="store_true",
        help="send logins that were refused before (once; a new refusal stops them again)",
    )
    serve.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from pullwatch import metrics

    try:
        host, port = metrics.parse_listen(args.listen)
    except metrics.MetricsError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    runtime = load_runtime(args)
    interval = max(float(args.interval or runtime.config.settings.interval), metrics.MIN_INTERVAL)
    try:
        return metrics.run_exporter(
            runtime,
            host=host,
            port=port,
            interval=interval,
            announce=note,
            node=args.instance_label,
        )
    except metrics.MetricsError as exc:
        raise CliError(str(exc)) from None
