"""Bucket insights: what the sources and numbers say that the states alone do not.

- a credentialed identity charged to an IP: its credentials are not being used;
- identities charged to the same bucket (same account or same IP): they share one quota;
- an identity charged to several sources lately: several egress addresses (NAT, proxies,
  dual stack), so several buckets;
- a live limit or window that differs from Docker's documented value (hub-protocol.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pullwatch.hub.headers import SourceKind, format_window, parse_source
from pullwatch.reading import METERED_STATES, Reading

# Documented limits (pulls, window seconds): unauthenticated and Personal accounts.
DOCUMENTED_ANONYMOUS = (100, 21600)
DOCUMENTED_PERSONAL = (200, 21600)


@dataclass(frozen=True, slots=True)
class Insight:
    label: str
    kind: str  # credentials_not_applied, shared_bucket, several_sources, differs_from_documented
    message: str


def find_insights(
    latest: Sequence[Reading], sources_seen: Mapping[str, Sequence[str]] | None = None
) -> list[Insight]:
    """Insights for every identity from its latest reading (and the sources seen lately)."""
    found: list[Insight] = []
    by_source: dict[str, list[str]] = {}
    for reading in latest:
        if reading.source is not None:
            by_source.setdefault(reading.source, []).append(reading.label)
    for reading in latest:
        source = parse_source(reading.source)
        if reading.username and source is not None and source.is_ip:
            found.append(
                Insight(
                    reading.label,
                    "credentials_not_applied",
                    f"credentials not applied: charged to {source.value}, not to an account "
                    "(anonymous quota); check the identity's username and token",
                )
            )
        if source is not None:
            others = [label for label in by_source[reading.source or ""] if label != reading.label]
            if others:
                what = "account" if source.kind is SourceKind.ACCOUNT else "address"
                found.append(
                    Insight(
                        reading.label,
                        "shared_bucket",
                        f"shares one quota with {', '.join(others)} (same {what}: "
                        f"{source.display})",
                    )
                )
        seen = list((sources_seen or {}).get(reading.label, ()))
        if len(seen) > 1:
            shown = ", ".join(parse_source(s).display if parse_source(s) else s for s in seen[-3:])
            found.append(
                Insight(
                    reading.label,
                    "several_sources",
                    f"charged to {len(seen)} different sources lately ({shown}): several egress "
                    "addresses (NAT, proxies or dual stack) mean several buckets",
                )
            )
        differs = _differs_from_documented(reading)
        if differs:
            found.append(Insight(reading.label, "differs_from_documented", differs))
    return found


def _differs_from_documented(reading: Reading) -> str | None:
    if reading.state not in METERED_STATES or reading.limit is None:
        return None
    source = parse_source(reading.source)
    if reading.username is None or (source is not None and source.is_ip):
        kind, (limit, window) = "unauthenticated", DOCUMENTED_ANONYMOUS
    else:
        kind, (limit, window) = "Personal accounts", DOCUMENTED_PERSONAL
    live_window = reading.window_seconds
    if reading.limit == limit and (live_window is None or live_window == window):
        return None
    return (
        f"live limit {reading.limit} per {format_window(live_window)} differs from Docker's "
        f"documented {limit} per {format_window(window)} for {kind}: the headers win"
    )


def by_label(insights: Sequence[Insight]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for insight in insights:
        out.setdefault(insight.label, []).append(insight.message)
    return out
