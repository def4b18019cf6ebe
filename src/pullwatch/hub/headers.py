"""Reading Docker Hub's answers: pure functions from header text to typed results.

Nothing here raises on input: any string yields a result (with unknown parts as `None`), because
the registry, proxies in between and hostile servers send anything (hub-protocol.md §2).
"""

from __future__ import annotations

import email.utils
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# Beyond these, a number is not a plausible pull count or window: treat it as unreadable.
MAX_COUNT = 1_000_000_000
MAX_WINDOW = 10 * 365 * 24 * 3600
MAX_RETRY_AFTER = 24 * 3600.0
# Raw values are kept for display; a hostile server must not make us keep megabytes.
MAX_RAW = 200

LIMIT_HEADERS = ("ratelimit-limit", "x-ratelimit-limit")
REMAINING_HEADERS = ("ratelimit-remaining", "x-ratelimit-remaining")
SOURCE_HEADER = "docker-ratelimit-source"

HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]]


def _clip(text: str, limit: int = MAX_RAW) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _int_or_none(text: str, maximum: int) -> int | None:
    text = text.strip().strip('"').strip()
    if not text or not text.isascii() or not text.isdigit():
        return None
    if len(text) > 12:  # avoid converting absurd digit strings at all
        return None
    value = int(text)
    return value if value <= maximum else None


@dataclass(frozen=True, slots=True)
class RateValue:
    """One `ratelimit-*` header: `<count>;w=<seconds>` (the first policy if there are several)."""

    count: int | None  # None: empty, not a number, or implausibly large
    window: int | None  # the `w=` parameter in seconds: the window's length, not time left
    raw: str  # as received, clipped for display


def parse_rate_value(raw: str) -> RateValue:
    """Parse `100;w=21600`, `100;w=21600, 10;w=60`, `;w=21600`, junk: never raises."""
    first = raw.split(",", 1)[0]
    parts = first.split(";")
    count = _int_or_none(parts[0], MAX_COUNT)
    window: int | None = None
    for param in parts[1:]:
        key, sep, value = param.partition("=")
        if sep and key.strip().lower() == "w":
            window = _int_or_none(value, MAX_WINDOW)
            if window == 0:
                window = None
            break
    return RateValue(count=count, window=window, raw=_clip(raw.strip()))


class SourceKind(StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"  # an address or a prefix (Docker charges IPv6 per /64 or wider)
    ACCOUNT = "account"  # an account UUID: the request was charged to an authenticated user
    OTHER = "other"


_UUID = re.compile(
    r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Source:
    """Who Docker Hub charged: `docker-ratelimit-source`."""

    kind: SourceKind
    value: str

    @property
    def is_ip(self) -> bool:
        return self.kind in (SourceKind.IPV4, SourceKind.IPV6)

    @property
    def display(self) -> str:
        if self.kind is SourceKind.ACCOUNT:
            return f"account {self.value.replace('-', '')[:8].lower()}"
        return self.value


def parse_source(raw: str | None) -> Source | None:
    if raw is None:
        return None
    text = raw.strip().strip('"').strip()
    if not text:
        return None
    text = _clip(text, 80)
    if _UUID.match(text):
        return Source(SourceKind.ACCOUNT, text.lower())
    try:
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False)
            kind = SourceKind.IPV4 if network.version == 4 else SourceKind.IPV6
            return Source(kind, str(network))
        address = ipaddress.ip_address(text)
        kind = SourceKind.IPV4 if address.version == 4 else SourceKind.IPV6
        return Source(kind, str(address))
    except ValueError:
        return Source(SourceKind.OTHER, text)


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """The rate-limit part of one answer."""

    limit: RateValue | None
    remaining: RateValue | None
    source: Source | None
    limit_header: str | None = None  # which header name supplied the limit (display)

    @property
    def metered(self) -> bool:
        """No `ratelimit-*` headers at all means not metered (paid plan or exempt)."""
        return self.limit is not None or self.remaining is not None

    @property
    def window(self) -> int | None:
        for value in (self.limit, self.remaining):
            if value is not None and value.window is not None:
                return value.window
        return None


def header_lookup(headers: HeaderInput) -> dict[str, str]:
    """Lower-cased names to the first value seen for each (a duplicate keeps the first)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    for name, value in items:
        key = str(name).strip().lower()
        if key not in found:
            found[key] = str(value)
    return found


def parse_ratelimit_headers(headers: HeaderInput) -> RateLimitHeaders:
    """`ratelimit-*` first, then `x-ratelimit-*`; names case-insensitive; never raises."""
    found = header_lookup(headers)

    def first(names: tuple[str, ...]) -> tuple[str | None, RateValue | None]:
        for name in names:
            if name in found:
                return name, parse_rate_value(found[name])
        return None, None

    limit_name, limit = first(LIMIT_HEADERS)
    _, remaining = first(REMAINING_HEADERS)
    return RateLimitHeaders(
        limit=limit,
        remaining=remaining,
        source=parse_source(found.get(SOURCE_HEADER)),
        limit_header=limit_name,
    )


@dataclass(frozen=True, slots=True)
class Challenge:
    """A `WWW-Authenticate` challenge: scheme plus its parameters (names lower-cased)."""

    scheme: str  # lower-cased: "bearer", "basic", ...
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")

    @property
    def error(self) -> str | None:
        return self.params.get("error")


_TOKEN_CHARS = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse the first challenge of a `WWW-Authenticate` value (RFC 9110 auth-params).

    `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"` ->
    Challenge("bearer", {"realm": ..., "service": ...}). Returns None for text with no scheme.
    Never raises.
    """
    if not header:
        return None
    text = header[:4096]
    pos = 0
    length = len(text)

    def skip_ws(i: int) -> int:
        while i < length and text[i] in " \t":
            i += 1
        return i

    pos = skip_ws(pos)
    match = _TOKEN_CHARS.match(text, pos)
    if not match:
        return None
    scheme = match.group(0).lower()
    pos = match.end()
    params: dict[str, str] = {}
    while pos < length:
        pos = skip_ws(pos)
        while pos < length and text[pos] in ", \t":
            pos += 1
        key_match = _TOKEN_CHARS.match(text, pos)
        if not key_match:
            break
        after_key = skip_ws(key_match.end())
        if after_key >= length or text[after_key] != "=":
            break  # a token without '=': the start of the next challenge (or token68)
        key = key_match.group(0).lower()
        pos = skip_ws(after_key + 1)
        if pos < length and text[pos] == '"':
            pos += 1
            chars: list[str] = []
            while pos < length and text[pos] != '"':
                if text[pos] == "\\" and pos + 1 < length:
                    pos += 1
                chars.append(text[pos])
                pos += 1
            pos += 1  # the closing quote (or past the end)
            value = "".join(chars)
        else:
            value_match = _TOKEN_CHARS.match(text, pos)
            if value_match:
                value = value_match.group(0)
                pos = value_match.end()
                # token68 padding ('=' runs) after a bare value
                while pos < length and text[pos] == "=":
                    pos += 1
            else:
                value = ""
        params.setdefault(key, value)
    return Challenge(scheme=scheme, params=params)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` as seconds from `now`: delta-seconds or an HTTP date; capped at a day."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    seconds: float | None
    if text.isascii() and text.isdigit():
        seconds = float(text[:9])
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        try:
            seconds = when.timestamp() - now
        except (OverflowError, ValueError, OSError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def format_window(seconds: int | None) -> str:
    """21600 -> "6 h", 3600 -> "1 h", 90 -> "90 s", 5400 -> "90 min"."""
    if seconds is None:
        return "-"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
