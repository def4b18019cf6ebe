"""The triage and fleet subcommands: explain, plan, report, serve, identity import-docker.

`cli.py` registers them with `add_triage_commands()`; each handler ends every failure as a
`CliError` (one line on stderr), and none imports textual.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from pullwatch.cli import (
    EXIT_FAILURE,
    EXIT_USAGE,
    CliError,
    _identity,
    _print,
    _runtime,
    whole_number,
)

EXIT_DOES_NOT_FIT = 2  # `plan`: the schedule does not fit the limit


_positive = whole_number(1)
_count = whole_number(0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value > 86400:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 86400")
    return value


def add_triage_commands(
    command: Callable[..., argparse.ArgumentParser],
    identity_actions: Any,
    common: Callable[[argparse.ArgumentParser, bool], None],
) -> None:
    """Register the subcommands on the parser `cli.build_parser()` is building."""
    explain = command(
        "explain", "name the limit behind a pasted error line (scanner, docker, kubelet)"
    )
    explain.add_argument(
        "text", metavar="TEXT", nargs="*", help="the error line; none or '-': read stdin"
    )
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(handler=cmd_explain)

    plan = command(
        "plan", "scan-budget planner: will a scanner's schedule fit the pull limit? (exit 2: no)"
    )
    plan.add_argument("--repositories", metavar="N", type=_count, required=True)
    plan.add_argument(
        "--cap", metavar="N", type=_count, default=5,
        help="images per repository, the scanner's Cap (0 = every tag; default 5)",
    )  # fmt: skip
    plan.add_argument(
        "--tags", metavar="N", type=_count, help="tags per repository (needed with --cap 0)"
    )
    plan.add_argument(
        "--architectures", metavar="N", type=_positive, default=1,
        help="architectures pulled per image (each counts as a pull; default 1)",
    )  # fmt: skip
    often = plan.add_mutually_exclusive_group()
    often.add_argument(
        "--interval", metavar="HOURS", default="24",
        help="hours between scans (1.5, 90m, 3d; default 24)",
    )  # fmt: skip
    often.add_argument("--scans-per-day", metavar="N", type=_positive)
    plan.add_argument(
        "--hosts", metavar="N", type=_positive, default=1,
        help="hosts running this scan through the same bucket (one account or one egress IP)",
    )  # fmt: skip
    plan.add_argument(
        "--reserve", metavar="N", type=_count, default=0,
        help="pulls per window kept for everything else charged to the bucket",
    )  # fmt: skip
    quota = plan.add_mutually_exclusive_group()
    quota.add_argument(
        "--identity", metavar="LABEL", help="use this identity's live limit and window (one HEAD)"
    )
    quota.add_argument("--limit", metavar="N", type=_count, help="the limit, by hand")
    plan.add_argument(
        "--window", metavar="DURATION",
        help="with --limit: the window (21600, 6h, 1h; default 6 h)",
    )  # fmt: skip
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(handler=cmd_plan)

    report = command("report", "a redacted triage snapshot of every identity, for a ticket")
    style = report.add_mutually_exclusive_group()
    style.add_argument("--markdown", action="store_true", help="Markdown (for a ticket)")
    style.add_argument("--json", action="store_true", help="one JSON document")
    report.add_argument(
        "--identity", metavar="LABEL", action="append", default=[], help="only this identity"
    )
    report.add_argument(
        "--output", "-o", metavar="FILE", type=Path, help="write to FILE (0600) instead of stdout"
    )
    report.set_defaults(handler=cmd_report)

    serve = command(
        "serve", "probe on the configured interval and serve Prometheus metrics on /metrics"
    )
    serve.add_argument(
        "--listen", metavar="HOST:PORT", default="127.0.0.1:9723",
        help="address to serve on (default 127.0.0.1:9723; ':9723' = every interface)",
    )  # fmt: skip
    serve.add_argument(
        "--interval", metavar="SECONDS", type=_seconds,
        help="seconds between probe rounds (default: the config's interval, at least 10)",
    )  # fmt: skip
    serve.set_defaults(handler=cmd_serve)

    imp = identity_actions.add_parser(
        "import-docker", help="import the Docker Hub login from Docker's config.json"
    )
    common(imp, True)
    imp.add_argument("--label", metavar="LABEL", help="identity label (default: the Docker ID)")
    imp.add_argument("--update", action="store_true", help="replace an existing identity's token")
    imp.add_argument("--dry-run", action="store_true", help="say what would be imported")
    imp.add_argument(
        "--docker-config", metavar="DIR", type=Path,
        help="Docker's config directory (default $DOCKER_CONFIG or ~/.docker)",
    )  # fmt: skip
    imp.add_argument(
        "--timeout", metavar="SECONDS", type=_seconds, default=30.0,
        help="how long a credential helper may take (default 30)",
    )  # fmt: skip
    imp.set_defaults(handler=cmd_import_docker)


def _note(message: str) -> None:
    from pullwatch.hub.redact import one_line

    print(f"pullwatch: {one_line(message, 400)}", file=sys.stderr)


# -- explain -----------------------------------------------------------------------------------


def cmd_explain(args: argparse.Namespace) -> int:
    from pullwatch.explain import MAX_INPUT, explain

    if args.text and args.text != ["-"]:
        text = " ".join(args.text)
    elif sys.stdin is not None and not sys.stdin.isatty():
        text = sys.stdin.read(MAX_INPUT)
    else:
        raise CliError(
            "paste the error line as an argument (quoted) or pipe it on stdin", EXIT_USAGE
        )
    if not text.strip():
        raise CliError("nothing to explain: the error line is empty", EXIT_USAGE)
    found = explain(text)
    _print(json.dumps(found.to_json(), indent=2) if args.json else found.as_text())
    return 0 if found.recognised else EXIT_FAILURE


# -- plan --------------------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from fractions import Fraction

    from pullwatch.planner import (
        DAY,
        PlanError,
        Quota,
        ScanPlan,
        describe,
        documented_quota,
        evaluate,
        parse_duration,
    )

    try:
        if args.scans_per_day:
            interval = Fraction(DAY, args.scans_per_day)
        else:
            interval = parse_duration(args.interval, "h")
        if args.window is not None and args.limit is None:
            raise PlanError("--window goes with --limit (an identity's window is read live)")
        window = parse_duration(args.window or "21600", "s")
        if window.denominator != 1:
            raise PlanError("the window must be a whole number of seconds")
        plan = ScanPlan(
            repositories=args.repositories,
            cap=args.cap,
            tags=args.tags,
            architectures=args.architectures,
            interval=interval,
            hosts=args.hosts,
            reserve=args.reserve,
        )
        if args.limit is not None:
            quota = Quota(args.limit, int(window), "given with --limit")
        elif args.identity:
            quota = _live_quota(args)
        else:
            quota = replace(
                documented_quota(anonymous=True),
                origin="Docker's documented anonymous limit; --identity LABEL uses a live one",
            )
        result = evaluate(plan, quota)
    except PlanError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if args.json:
        _print(json.dumps(result.to_json(), indent=2))
    else:
        _print("\n".join(describe(result)))
    return 0 if result.fits else EXIT_DOES_NOT_FIT


def _live_quota(args: argparse.Namespace) -> Any:
    from pullwatch.hub.redact import one_line

    runtime = _runtime(args)
    identity = _identity(runtime, args.identity)

    reading = runtime.probe_now(identity).reading
    from pullwatch.planner import quota_from_reading

    quota = quota_from_reading(reading)
    if quota is None:
        raise CliError(
            f"could not read {identity.label}'s live limit ({reading.state.value}: "
            f"{one_line(reading.detail or 'no detail', 160)}); pass --limit N --window 6h"
        )
    return quota


# -- report ------------------------------------------------------------------------------------


def _report_history(runtime: Any, readings: list[Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """Record this run's readings, then summarise each identity's history (best effort)."""
    from pullwatch.history import History, HistoryError
    from pullwatch.report import history_context

    settings = runtime.config.settings
    try:
        with History(
            runtime.paths.history_db, clock=runtime.clock, retention_days=settings.retention_days
        ) as history:
            history.record(readings)
            return history_context(history, readings, runtime.clock.time())
    except HistoryError as exc:
        _note(f"warning: history not used: {exc}")
        return {}, {}


def cmd_report(args: argparse.Namespace) -> int:
    from pullwatch.insights import by_label, find_insights
    from pullwatch.report import build_report, render_json, render_markdown, render_text

    runtime = _runtime(args)
    identities = list(runtime.config.identities)
    if args.identity:
        identities = [_identity(runtime, label) for label in args.identity]
    if not identities:
        raise CliError("no identities configured: add one with `pullwatch identity add`")

    readings = runtime.probe_round([i.label for i in identities])
    summaries, recovers = _report_history(runtime, readings)
    keyring = None
    if any(i.username for i in identities):
        health = runtime.secrets.health()
        keyring = None if health.ok else f"{health.status.value}: {health.message}"
    report = build_report(
        readings,
        generated_at=runtime.clock.time(),
        registry=runtime.registry,
        repository=runtime.repository,
        keyring=keyring,
        warnings=by_label(find_insights(readings)),
        history=summaries,
        recovers_in=recovers,
    )
    if args.json:
        text = render_json(report)
    elif args.markdown:
        text = render_markdown(report)
    else:
        text = render_text(report)
    if args.output is None:
        _print(text)
    else:
        write_private(args.output, text)
        _note(f"report written to {args.output}")
    return 0


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


# -- metrics -----------------------------------------------------------------------------------


def metrics_module() -> ModuleType:
    """pullwatch.metrics, or a one-line CliError when prometheus-client is missing."""
    try:
        from pullwatch import metrics
    except ImportError as exc:
        if (exc.name or "").startswith("prometheus_client"):
            raise CliError(
                "metrics need the prometheus-client package: pip install 'pullwatch[metrics]'"
            ) from None
        raise
    return metrics


def cmd_serve(args: argparse.Namespace) -> int:
    metrics = metrics_module()
    try:
        host, port = metrics.parse_listen(args.listen)
    except metrics.MetricsError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    runtime = _runtime(args)
    interval = max(float(args.interval or runtime.config.settings.interval), metrics.MIN_INTERVAL)
    try:
        return int(
            metrics.run_exporter(runtime, host=host, port=port, interval=interval, announce=_note)
        )
    except metrics.MetricsError as exc:
        raise CliError(str(exc)) from None


# -- identity import-docker --------------------------------------------------------------------


def cmd_import_docker(args: argparse.Namespace) -> int:
    from pullwatch.identities.docker_config import (
        DockerConfigError,
        docker_config_path,
        find_hub_login,
        import_login,
        load_docker_config,
    )

    path = (
        args.docker_config.expanduser() / "config.json"
        if args.docker_config
        else docker_config_path()
    )
    try:
        config = load_docker_config(path)
    except DockerConfigError as exc:
        raise CliError(str(exc)) from None
    runtime = None if args.dry_run else _runtime(args)  # a broken config fails before any helper
    # The CLI owns the terminal: a helper may prompt (gpg for `pass`) within the timeout.
    result = find_hub_login(config, timeout=args.timeout)
    if result.login is None:
        raise CliError("no importable Docker Hub login: " + "; ".join(result.notes))
    login = result.login
    for note in result.notes[:-1]:
        _note(note)
    if args.dry_run:
        _print(f"would import Docker ID {login.username} from {login.where} ({path})")
        return 0
    assert runtime is not None
    outcome = import_login(runtime.store, login, args.label, update=args.update)
    verb = "updated" if outcome.replaced else "imported"
    _note(
        f"{verb} identity {outcome.label!r}: Docker ID {login.username} from {login.where}; "
        f"token stored in the keyring ({runtime.secrets.SERVICE}/{outcome.label})"
    )
    if not login.looks_like_pat:
        _note(
            "warning: the imported secret is not a personal access token (dckr_pat_...); if it "
            "is a password, Docker Hub refuses it when two-factor authentication is on"
        )
    warning = getattr(outcome.config, "warning", None)
    if warning:
        _note(f"warning: {warning}")
    return 0
