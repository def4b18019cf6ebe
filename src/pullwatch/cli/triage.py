"""The triage commands: `explain` (a pasted error line), `plan` (the scan-budget planner) and
`report` (a redacted snapshot of every identity, for a ticket)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pullwatch.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    CliError,
    Command,
    assess_and_remember,
    chosen_identities,
    find_identity,
    load_runtime,
    non_negative,
    note,
    out,
    positive,
    seconds,
    write_private,
)

EXIT_DOES_NOT_FIT = 2  # `plan`: the schedule does not fit the limit


def register(command: Command) -> None:
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
    plan.add_argument("--repositories", metavar="N", type=non_negative, required=True)
    plan.add_argument(
        "--cap", metavar="N", type=non_negative, default=5,
        help="images per repository, the scanner's Cap (0 = every tag; default 5)",
    )  # fmt: skip
    plan.add_argument(
        "--tags", metavar="N", type=non_negative, help="tags per repository (needed with --cap 0)"
    )
    plan.add_argument(
        "--architectures", metavar="N", type=positive, default=1,
        help="architectures pulled per image (each counts as a pull; default 1)",
    )  # fmt: skip
    often = plan.add_mutually_exclusive_group()
    often.add_argument(
        "--interval", metavar="HOURS", default="24",
        help="hours between scans (1.5, 90m, 3d; default 24)",
    )  # fmt: skip
    often.add_argument("--scans-per-day", metavar="N", type=positive)
    plan.add_argument(
        "--hosts", metavar="N", type=positive, default=1,
        help="hosts running this scan through the same bucket (one account or one egress IP)",
    )  # fmt: skip
    plan.add_argument(
        "--reserve", metavar="N", type=non_negative, default=0,
        help="pulls per window kept for everything else charged to the bucket",
    )  # fmt: skip
    quota = plan.add_mutually_exclusive_group()
    quota.add_argument(
        "--identity", metavar="LABEL", help="use this identity's live limit and window (one HEAD)"
    )
    quota.add_argument("--limit", metavar="N", type=non_negative, help="the limit, by hand")
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
    report.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds(3600),
        help="overall deadline for the probes (default 60, plus the least time --max-rate and "
        "--burst need for that many identities)",
    )
    report.add_argument(
        "--retry-auth", action="store_true", help="send logins that were refused before"
    )
    report.set_defaults(handler=cmd_report)


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
    out(json.dumps(found.to_json(), indent=2) if args.json else found.as_text())
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
        out(json.dumps(result.to_json(), indent=2))
    else:
        out("\n".join(describe(result)))
    return 0 if result.fits else EXIT_DOES_NOT_FIT


def _live_quota(args: argparse.Namespace) -> Any:
    from pullwatch.assess import assess
    from pullwatch.redact import one_line

    runtime = load_runtime(args)
    identity = find_identity(runtime, args.identity)

    reading = runtime.probe_now(identity).reading
    from pullwatch.planner import quota_from_assessment

    quota = quota_from_assessment(assess(reading))
    if quota is None:
        raise CliError(
            f"could not read {identity.label}'s live limit ({reading.state.value}: "
            f"{one_line(reading.detail or 'no detail', 160)}); pass --limit N --window 6h"
        )
    return quota


# -- report ------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from pullwatch.report import build_report, render_json, render_markdown, render_text

    runtime = load_runtime(args)
    identities = chosen_identities(runtime, args.identity)
    readings = runtime.probe_round([i.label for i in identities], deadline=args.timeout)
    assessments = assess_and_remember(runtime, readings)
    keyring = None
    if any(i.username for i in identities):
        health = runtime.secrets.health()
        keyring = None if health.ok else f"{health.status.value}: {health.message}"
    report = build_report(
        assessments,
        generated_at=runtime.clock.time(),
        registry=runtime.registry,
        repository=runtime.repository,
        keyring=keyring,
        history=_summaries(runtime, readings),
    )
    if args.json:
        text = render_json(report)
    elif args.markdown:
        text = render_markdown(report)
    else:
        text = render_text(report)
    if args.output is None:
        out(text)
    else:
        write_private(args.output, text)
        note(f"report written to {args.output}")
    return 0


def _summaries(runtime: Any, readings: list[Any]) -> dict[str, Any]:
    """Each identity's history in a few numbers (best effort: the report stands without)."""
    from pullwatch.history import History, HistoryError
    from pullwatch.report import history_summaries

    try:
        with History(runtime.paths.history_db, clock=runtime.clock, readonly=True) as history:
            return dict(history_summaries(history, readings, runtime.clock.time()))
    except HistoryError as exc:
        note(f"warning: history not used: {exc}")
        return {}
