"""The probing commands: `check`, `token`, `head`, and `history` (what earlier probes found)."""

from __future__ import annotations

import argparse
import json
import sys

from pullwatch.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    CliError,
    Command,
    assess_and_remember,
    chosen_identities,
    color,
    find_identity,
    load_runtime,
    non_negative,
    out,
    seconds,
)


def register(command: Command) -> None:
    check = command(
        "check", "probe every identity once, print, exit 0 ok/1 warning/2 critical/3 unknown"
    )
    fmt = check.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON document")
    fmt.add_argument(
        "--openmetrics",
        action="store_true",
        help="OpenMetrics text (node_exporter textfile collector)",
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
        type=non_negative,
        help="warning when remaining <= N (default: the identity's or config's warn_below, "
        "else 20%% of the limit)",
    )
    check.add_argument(
        "--crit",
        metavar="N",
        type=non_negative,
        default=0,
        help="critical when remaining <= N (default 0)",
    )
    check.add_argument(
        "--warn-within",
        metavar="DURATION",
        type=seconds(7 * 86400),
        help="warning when a bucket is forecast to run out within this time at the recent pace "
        "(30m, 2h; default: the config's warn_within, else 30m)",
    )
    check.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds(3600),
        help="overall deadline: identities unanswered by then are unknown (default 60, plus "
        "the least time --max-rate and --burst need for that many identities)",
    )
    check.add_argument(
        "--retry-auth",
        action="store_true",
        help="send logins that were refused before (otherwise reported, not retried)",
    )
    check.add_argument(
        "--instance-label",
        metavar="NAME",
        help="with --openmetrics: the `node` label (default: the host name)",
    )
    check.set_defaults(handler=cmd_check)

    token = command("token", "a fresh token request: status, latency, expiry and decoded claims")
    token.add_argument("label", metavar="LABEL")
    token.add_argument("--json", action="store_true")
    token.set_defaults(handler=cmd_token)

    head = command(
        "head", "one HEAD probe now: status, latency, every header (redacted) and the parse"
    )
    head.add_argument("label", metavar="LABEL")
    head.add_argument("--json", action="store_true")
    head.add_argument(
        "--retry-auth", action="store_true", help="send a login that was refused before"
    )
    head.set_defaults(handler=cmd_head)

    hist = command("history", "the recorded readings of one identity, and its recovery estimate")
    hist.add_argument("label", metavar="LABEL")
    hist.add_argument("--json", action="store_true")
    hist.add_argument(
        "--since", metavar="DURATION", default="24h", help="how far back: 90m, 6h, 7d (default 24h)"
    )
    hist.set_defaults(handler=cmd_history)


def cmd_check(args: argparse.Namespace) -> int:
    from pullwatch.output import check_notes, exit_code, render_json, render_table

    runtime = load_runtime(args)
    identities = chosen_identities(runtime, args.identity)
    if args.openmetrics:
        from pullwatch import metrics  # fails before any probe if it cannot load
    readings = runtime.probe_round([i.label for i in identities], deadline=args.timeout)
    checked_at = runtime.clock.time()
    assessments = assess_and_remember(runtime, readings)
    if args.openmetrics:
        out(
            metrics.openmetrics_text(
                assessments,
                registry=runtime.registry,
                repository=runtime.repository,
                node=args.instance_label,
            )
        )
    elif args.json:
        out(
            render_json(
                assessments,
                checked_at=checked_at,
                registry=runtime.registry,
                repository=runtime.repository,
            )
        )
    else:
        notes, footer = check_notes(assessments, checked_at)
        out(
            render_table(
                assessments, color=color(sys.stdout), notes=notes, footer=footer, now=checked_at
            )
        )
    return int(exit_code(assessments, crit=args.crit, now=checked_at))


def cmd_token(args: argparse.Namespace) -> int:
    from pullwatch.output import describe_token_check, token_check_json
    from pullwatch.reading import Reading

    runtime = load_runtime(args)
    identity = find_identity(runtime, args.label)
    result = runtime.token_check(identity)
    if isinstance(result, Reading):  # the secret could not be read
        from pullwatch.assess import assess
        from pullwatch.output import assessment_json, render_table

        assessment = assess(result)
        out(
            json.dumps(assessment_json(assessment), indent=2)
            if args.json
            else render_table([assessment])
        )
        return EXIT_FAILURE
    out(
        json.dumps(token_check_json(result), indent=2)
        if args.json
        else describe_token_check(result)
    )
    return 0 if result.ok else EXIT_FAILURE


def cmd_head(args: argparse.Namespace) -> int:
    from pullwatch.output import assessment_code, describe_head_check, head_check_json

    runtime = load_runtime(args)
    identity = find_identity(runtime, args.label)
    result = runtime.probe_now(identity, retry_auth=args.retry_auth)
    assessment = assess_and_remember(runtime, [result.reading])[0]
    out(
        json.dumps(head_check_json(result, assessment), indent=2)
        if args.json
        else describe_head_check(result, assessment)
    )
    return int(assessment_code(assessment))


def cmd_history(args: argparse.Namespace) -> int:
    from pullwatch.assess import assess
    from pullwatch.durations import iso_time, parse_duration
    from pullwatch.history import History, HistoryError
    from pullwatch.output import (
        assessment_json,
        recovery_json,
        recovery_line,
        remaining_text,
        source_text,
        window_text,
    )
    from pullwatch.recent import RecentHistory
    from pullwatch.recovery import estimate

    try:
        since_seconds = float(parse_duration(args.since))
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    runtime = load_runtime(args)
    now = runtime.clock.time()
    since = now - since_seconds
    try:
        with History(runtime.paths.history_db, clock=runtime.clock, readonly=True) as history:
            readings = history.for_label(
                args.label, since, registry=runtime.registry, repository=runtime.repository
            )
            key = next((r.bucket_key for r in reversed(readings) if r.bucket_key), None)
            bucket = history.for_bucket(key, now - 2 * 86400) if key else []
    except HistoryError as exc:
        if not runtime.paths.history_db.exists():
            readings, bucket = [], []  # nothing recorded yet: said below
        else:
            raise CliError(str(exc)) from None
    if not readings and runtime.config.get(args.label) is None:
        raise CliError(f"no identity {args.label!r} and no history for it")
    recovery = estimate(bucket)
    recent = RecentHistory()
    assessments = []
    for reading in readings:  # each row as it was assessed then: the last good one so far
        assessments.append(assess(reading, recent=recent, policy=runtime.policy()))
        recent.add(reading)
    if args.json:
        document = {
            "label": args.label,
            "registry": runtime.registry,
            "repository": runtime.repository,
            "since": iso_time(since),
            "readings": [assessment_json(a) for a in assessments],
            "recovery": recovery_json(recovery),
        }
        out(json.dumps(document, indent=2))
        return 0
    if not readings:
        out(f"no readings of {args.label} against {runtime.repository} in the last {args.since}")
        return 0
    from pullwatch.redact import one_line

    rows = [
        (
            iso_time(a.reading.checked_at),
            a.state.label,
            remaining_text(a),
            window_text(a),
            one_line(source_text(a), 40),
            one_line(a.reason or "", 160),
        )
        for a in assessments
    ]
    headers = ("TIME", "STATE", "REMAINING", "WINDOW", "SOURCE", "DETAIL")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        out("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    line = recovery_line(recovery, now)
    out(
        f"{len(readings)} readings of {runtime.repository} on {runtime.registry} since "
        f"{iso_time(since)}" + (f"; {line}" if line else "")
    )
    return 0
