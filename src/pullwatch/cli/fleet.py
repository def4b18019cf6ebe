"""The fleet commands: `serve` (probe on an interval, export Prometheus metrics) and `fleet`
(every node's buckets, read back from Prometheus: the dashboard, or `--json` for scripts)."""

from __future__ import annotations

import argparse
import sys

from pullwatch.cli.common import EXIT_USAGE, CliError, Command, load_runtime, note, out, seconds

FLEET_DEFAULT_INTERVAL = 30.0  # pullwatch.fleet.DEFAULT_INTERVAL (not imported: httpx is heavy)
FLEET_DEFAULT_TIMEOUT = 10.0
FLEET_DEFAULT_STALE_AFTER = 900.0
EXIT_UNKNOWN = 3  # `check`'s "could not check"


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

    fleet = command(
        "fleet",
        "every node's buckets from Prometheus (which scrapes `pullwatch serve` on each node): "
        "the dashboard in fleet mode, read-only",
    )
    fleet.add_argument(
        "prometheus",
        metavar="PROMETHEUS_URL",
        help="the Prometheus to read, e.g. http://prometheus:9090 (user:password@ for basic auth)",
    )
    fleet.add_argument(
        "--json",
        action="store_true",
        help="print every row once as JSON and exit like `check` (0 ok, 1 warning, "
        "2 critical, 3 unknown)",
    )
    fleet.add_argument(
        "--interval",
        metavar="SECONDS",
        type=seconds(),
        default=FLEET_DEFAULT_INTERVAL,
        help=f"seconds between refreshes (default {FLEET_DEFAULT_INTERVAL:g}, at least 2)",
    )
    fleet.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds(300),
        default=FLEET_DEFAULT_TIMEOUT,
        help=f"seconds to wait for Prometheus (default {FLEET_DEFAULT_TIMEOUT:g})",
    )
    fleet.add_argument(
        "--stale-after",
        metavar="SECONDS",
        type=seconds(7 * 86400),
        default=FLEET_DEFAULT_STALE_AFTER,
        help="a node that has not finished a probe round for this long is shown stale "
        f"(default {FLEET_DEFAULT_STALE_AFTER:g}; `15m`, `1h` work)",
    )
    fleet.set_defaults(handler=cmd_fleet)


def cmd_serve(args: argparse.Namespace) -> int:
    from pullwatch import metrics

    try:
        host, port = metrics.parse_listen(args.listen)
    except metrics.MetricsError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    runtime = load_runtime(args)
    interval = max(float(args.interval or runtime.config.settings.interval), metrics.MIN_INTERVAL)
    runtime.round_interval = interval  # a round too big for one burst is spread over it
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


def cmd_fleet(args: argparse.Namespace) -> int:
    """Read-only: no config, no keyring, no history - only Prometheus's HTTP API."""
    import json

    from pullwatch import fleet

    try:
        fleet.api_base(args.prometheus)
    except fleet.FleetError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if args.json:
        try:
            snapshot = fleet.read_once(
                args.prometheus, timeout=args.timeout, stale_after=args.stale_after
            )
        except fleet.FleetError as exc:
            raise CliError(str(exc), EXIT_UNKNOWN) from None
        out(json.dumps(fleet.snapshot_json(snapshot), indent=2))
        return int(snapshot.exit_code)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError(
            "the fleet dashboard needs a terminal; for scripts use "
            "`pullwatch fleet PROMETHEUS_URL --json`",
            EXIT_USAGE,
        )
    from pullwatch.tui.fleet import FleetApp
    from pullwatch.tui.terminal import hangup_safe_output

    reader = fleet.FleetReader(args.prometheus, timeout=args.timeout, stale_after=args.stale_after)
    app = FleetApp(reader, interval=args.interval)
    with hangup_safe_output():  # an SSH drop must not leave the app stuck writing
        app.run()
    return app.return_code or 0
