"""Bucket insights: what the sources and numbers say that the states alone do not.

- a credentialed identity charged to an IP: its credentials are not being used;
- identities charged to the same bucket (same account or same IP): they share one quota;
- an identity charged to several sources lately: several egress addresses (NAT, proxies,
  dual stack), so several buckets;
- on Docker Hub, a live limit or window that differs from Docker's documented value
  (docs/protocol.md, "Limits").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pullwatch.durations import format_span
from pullwatch.reading import Reading, Source, SourceKind

# Documented limits (pulls, window seconds): unauthenticated and Personal accounts.
DOCUMENTED_ANONYMOUS = (100, 21600)
DOCUMENTED_PERSONAL = (200, 21600)


@dataclass(frozen=True, slots=True)
class Insight:
    label: str
    kind: str  # credentials_not_applied, shared_bucket, several_sources, differs_from_documented
    message: str


def find_insights(
    latest: Sequence[Reading], sources_seen: Mapping[str, Sequence[Source]] | None = None
) -> list[Insight]:
    """Insights for every identity from its latest reading (and the sources seen lately)."""
    found: list[Insight] = []
    by_bucket: dict[tuple[str, str, str], list[str]] = {}
    for reading in latest:
        key = reading.bucket_key
        if key is not None:
            by_bucket.setdefault(key, []).append(reading.label)
    for reading in latest:
        found.extend(insights_for(reading, by_bucket, sources_seen or {}))
    return found


def insights_for(
    reading: Reading,
    by_bucket: Mapping[tuple[str, str, str], Sequence[str]],
    sources_seen: Mapping[str, Sequence[Source]],
) -> list[Insight]:
    """One identity's insights; `by_bucket` lists the labels charged to each bucket."""
    found: list[Insight] = []
    source = reading.source
    if reading.username and source is not None and source.is_ip:
        found.append(
            Insight(
                reading.label,
                "credentials_not_applied",
                f"credentials not applied: charged to {source.value}, not to an account "
                "(anonymous quota); check the identity's username and token",
            )
        )
    key = reading.bucket_key
    if source is not None and key is not None:
        others = [label for label in by_bucket.get(key, ()) if label != reading.label]
        if others:
            what = "account" if source.kind is SourceKind.ACCOUNT else "address"
            found.append(
                Insight(
                    reading.label,
                    "shared_bucket",
                    f"shares one quota with {', '.join(others)} (same {what}: {source.display})",
                )
            )
    seen = list(sources_seen.get(reading.label, ()))
    if len(seen) > 1:
        shown = ", ".join(s.display for s in seen[-3:])
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
    if not reading.quota_valid or reading.limit is None:
        return None
    if not reading.docker_hub:
        return None  # only Docker Hub documents these numbers
    source = reading.source
    if reading.username is None or (source is not None and source.is_ip):
        kind, (limit, window) = "unauthenticated", DOCUMENTED_ANONYMOUS
    else:
        kind, (limit, window) = "Personal accounts", DOCUMENTED_PERSONAL
    live_window = reading.window_seconds
    if reading.limit == limit and (live_window is None or live_window == window):
        return None
    return (
        f"live limit {reading.limit} per {format_span(live_window)} differs from Docker's "
        f"documented {limit} per {format_span(window)} for {kind}: the headers win"
    )


def by_label(insights: Sequence[Insight]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for insight in insights:
        out.setdefault(insight.label, []).append(insight.message)
    return out
