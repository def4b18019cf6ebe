"""Reading Docker Hub's answers: pure functions from header text to typed results.

Nothing here raises on input: any string yields a result (with unknown parts as `None`), because
the registry, proxies in between and hostile servers send anything (docs/protocol.md, "The
headers"). Text kept for display is redacted whole, then cleaned of control characters, then
shortened (`redact.one_line`), so it is safe to store and to print.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pullwatch.reading import Source, parse_source
from pullwatch.redact import one_line

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
    raw: str  # as received: redacted, cleaned and clipped for display


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
    return RateValue(count=count, window=window, raw=one_line(raw, MAX_RAW))


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """The rate-limit part of one answer."""

    limit: RateValue | None
    remaining: RateValue | None
    source: Source | None
    limit_header: str | None = None  # which header name supplied the limit (display)
    remaining_header: str | None = None

    def quota_problem(self) -> str | None:
        """Why these headers do not give a valid quota; None when they do (or are absent).

        A valid quota is two whole numbers with 0 <= remaining <= limit: anything else -
        empty, not a number, negative, implausibly large or contradictory - is unreadable,
        and pullwatch says so rather than guess (the raw values are kept for display).
        """
        if not self.metered:
            return None
        problems = []
        for name, value, default in (
            (self.limit_header, self.limit, "ratelimit-limit"),
            (self.remaining_header, self.remaining, "ratelimit-remaining"),
        ):
            header = name or default
            if value is None:
                problems.append(f"{header} is missing")
            elif value.count is None:
                shown = one_line(value.raw, 32) if value.raw else "empty"
                problems.append(f"{header} {shown!r} is not a plausible count")
        if problems:
            return "; ".join(problems)
        assert self.limit is not None and self.remaining is not None
        limit, remaining = self.limit.count, self.remaining.count
        assert limit is not None and remaining is not None
        if remaining > limit:
            return f"contradictory: remaining {remaining} is more than the limit {limit}"
        return None

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
    remaining_name, remaining = first(REMAINING_HEADERS)
    return RateLimitHeaders(
        limit=limit,
        remaining=remaining,
        source=parse_source(found.get(SOURCE_HEADER)),
        limit_header=limit_name,
        remaining_header=remaining_name,
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
        try:
            seconds = when.timestamp() - now
        except (OverflowError, ValueError, OSError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
