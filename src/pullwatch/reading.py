"""The one domain record: what one probe of one identity found.

Every layer speaks `Reading`: the hub client classifies a probe into one, the monitor produces
one per identity per round, history stores them, and `assess` turns them into what the
dashboard, the CLI and the metrics show. A reading is a measurement, parsed once at the network
boundary: its strings are sanitised and redacted, its source is already parsed, and it never
holds a secret or a token.

A reading's state says what the registry answered, not what that means for the user: `low` is
not a measured state (it depends on the user's threshold) and is decided by `assess`. `ok` and
`exhausted` are only ever given with a valid quota (see `Reading.quota_valid`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class State(StrEnum):
    OK = "ok"  # metered, a valid quota with pulls left
    LOW = "low"  # (assessed, never measured) at or under the warning threshold
    EXHAUSTED = "exhausted"  # remaining 0, or the HEAD itself answered 429
    UNMETERED = "unmetered"  # no ratelimit headers: paid plan or exempt (or another registry)
    AUTH_FAILED = "auth_failed"  # the token endpoint refused the credentials, or the token
    THROTTLED = "throttled"  # token-endpoint 429 or the abuse limit (HAP429)
    ERROR = "error"  # network, TLS, 5xx, not found, secret unavailable
    UNKNOWN = "unknown"  # never probed, or the quota could not be read (malformed headers)

    @property
    def label(self) -> str:
        """For people: `auth failed`, not `auth_failed`."""
        return self.value.replace("_", " ")


# What a 429 to a HEAD without rate-limit headers means: the hub client says it, `assess`
# refines it (an unmetered identity can only have met the abuse limit).
AMBIGUOUS_429 = "HEAD answered 429 without rate-limit headers: the pull quota or the abuse limit"


class ErrorKind(StrEnum):
    CONNECT = "connect"  # refused, closed early
    RESET = "reset"  # the connection was reset mid-answer
    DNS = "dns"
    TIMEOUT = "timeout"
    TLS = "tls"
    PLAIN_HTTP = "plain_http"  # a TLS handshake met a plain-HTTP answer
    HTTP = "http"  # an unexpected status: 5xx, ...
    NOT_FOUND = "not_found"  # the probe manifest does not exist: a configuration error
    MALFORMED = "malformed"  # an answer pullwatch cannot read
    SECRET = "secret"  # the identity's secret could not be read from the keyring
    DEADLINE = "deadline"  # the command's overall deadline passed before the probe finished


class Step(StrEnum):
    """Which request decided a reading's state (shown as "token request HTTP 401")."""

    PING = "ping"
    TOKEN = "token"
    HEAD = "head"

    @property
    def phrase(self) -> str:
        """For people: `token request`, as in "token request: connection refused"."""
        return _STEP_PHRASES[self]


_STEP_PHRASES = {Step.PING: "registry ping", Step.TOKEN: "token request", Step.HEAD: "HEAD probe"}

# States in which a reading carries live numbers from the registry.
METERED_STATES = frozenset({State.OK, State.LOW, State.EXHAUSTED})
# States that are a failure to measure, as opposed to a measurement.
FAILED_STATES = frozenset({State.AUTH_FAILED, State.THROTTLED, State.ERROR})
# States in which the last probe measured the quota (metered or not).
MEASURED_STATES = METERED_STATES | {State.UNMETERED}


class SourceKind(StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"  # an address or a prefix (Docker charges IPv6 per /64 or wider)
    ACCOUNT = "account"  # an account UUID: the request was charged to an authenticated user
    OTHER = "other"


_UUID = re.compile(
    r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.IGNORECASE
)
_SOURCE_MAX = 80
# Anything but printable characters: a hostile registry's header must not reach a terminal.
_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")


@dataclass(frozen=True, slots=True)
class Source:
    """Who the registry charged (`docker-ratelimit-source`), parsed: the bucket."""

    kind: SourceKind
    value: str  # canonical: an address or prefix, a lower-case UUID, or sanitised text

    @property
    def is_ip(self) -> bool:
        return self.kind in (SourceKind.IPV4, SourceKind.IPV6)

    @property
    def display(self) -> str:
        """Short enough for a table cell: `account 186e63fa`, an address, or the text."""
        if self.kind is SourceKind.ACCOUNT:
            return f"account {self.value.replace('-', '')[:8].lower()}"
        return self.value

    @property
    def meaning(self) -> str:
        return _SOURCE_MEANINGS[self.kind]

    def __str__(self) -> str:
        return self.value


_SOURCE_MEANINGS = {
    SourceKind.ACCOUNT: "an account UUID: the pulls are charged to this account",
    SourceKind.IPV4: "an IPv4 address: the pulls are charged to this address",
    SourceKind.IPV6: "an IPv6 prefix: the pulls are charged to this network",
    SourceKind.OTHER: "an unrecognised source",
}


def parse_source(raw: str | None) -> Source | None:
    """`docker-ratelimit-source` as sent -> a `Source`; never raises, never keeps control codes.

    An address or prefix is canonicalised, a UUID lower-cased; anything else is kept as text
    with every character that is not printable ASCII replaced by `?`, at most 80 characters.
    """
    if raw is None:
        return None
    text = raw.strip().strip('"').strip()
    if not text:
        return None
    if len(text) <= 64 and _UUID.match(text):
        return Source(SourceKind.ACCOUNT, text.lower())
    if len(text) <= 64:
        try:
            if "/" in text:
                network = ipaddress.ip_network(text, strict=False)
                kind = SourceKind.IPV4 if network.version == 4 else SourceKind.IPV6
                return Source(kind, str(network))
            address = ipaddress.ip_address(text)
            kind = SourceKind.IPV4 if address.version == 4 else SourceKind.IPV6
            return Source(kind, str(address))
        except ValueError:
            pass
    from pullwatch.redact import one_line  # a registry may echo a credential in any header

    clean = _UNPRINTABLE.sub("?", one_line(text, 64 * 1024).replace(" ", "_"))
    if len(clean) > _SOURCE_MAX:
        clean = clean[: _SOURCE_MAX - 1] + "…"
    return Source(SourceKind.OTHER, clean)


def source_from_store(value: str | None, kind: str | None) -> Source | None:
    """A source as the history database stores it: trusted kind, or parsed again if unknown."""
    if value is None:
        return None
    try:
        return Source(SourceKind(kind), value) if kind else parse_source(value)
    except ValueError:
        return parse_source(value)


@dataclass(frozen=True, slots=True)
class Reading:
    label: str
    username: str | None
    checked_at: float  # wall clock, epoch seconds
    state: State
    limit: int | None = None
    remaining: int | None = None
    window_seconds: int | None = None
    source: Source | None = None  # the bucket charged (docker-ratelimit-source), parsed
    http_status: int | None = None
    latency_ms: float | None = None
    error_kind: ErrorKind | None = None
    detail: str | None = None  # one line, sanitised and redacted: why the state is what it is
    retry_after: float | None = None  # seconds, from Retry-After
    raw_limit: str | None = None  # header values as received (sanitised, redacted, capped)
    raw_remaining: str | None = None
    token_expires_at: float | None = None  # wall clock; None when no token was used
    step: Step | None = None  # the request whose answer decided the state; None: none was sent
    registry: str | None = None  # the registry probed (normalised URL)
    repository: str | None = None  # the manifest probed: `name[:tag|@digest]`
    docker_hub: bool = True  # the registry is Docker Hub (or speaks as it: its token service)

    def __post_init__(self) -> None:
        given: object = self.source  # a string is a convenience for tests and hand-made readings
        if isinstance(given, str):
            object.__setattr__(self, "source", parse_source(given))

    @classmethod
    def unknown(cls, label: str, username: str | None, at: float) -> Reading:
        """Not probed yet."""
        return cls(label=label, username=username, checked_at=at, state=State.UNKNOWN)

    @property
    def anonymous(self) -> bool:
        return self.username is None

    @property
    def failed(self) -> bool:
        return self.state in FAILED_STATES

    @property
    def probed(self) -> bool:
        """False for the placeholder of an identity that was never probed."""
        return not (self.state is State.UNKNOWN and self.http_status is None and not self.detail)

    @property
    def quota_valid(self) -> bool:
        """Whole numbers with 0 <= remaining <= limit: the only quota pullwatch shows as fact."""
        return (
            self.limit is not None
            and self.remaining is not None
            and 0 <= self.remaining <= self.limit
        )

    @property
    def measured(self) -> bool:
        """The probe read the quota: a valid metered quota, or no quota at all (unmetered)."""
        return self.state is State.UNMETERED or (self.state in METERED_STATES and self.quota_valid)

    @property
    def used(self) -> int | None:
        if self.limit is None or self.remaining is None:
            return None
        return max(self.limit - self.remaining, 0)

    @property
    def bucket_key(self) -> tuple[str, str, str] | None:
        """(registry, repository, source): what history and estimates are kept by."""
        if self.source is None:
            return None
        return (self.registry or "", self.repository or "", self.source.value)

    def to_json(self) -> dict[str, Any]:
        """The measurement as JSON (the `check --json` contract's keys, plus a few)."""
        from pullwatch.durations import iso_time

        return {
            "label": self.label,
            "username": self.username,
            "state": self.state.value,
            "limit": self.limit,
            "remaining": self.remaining,
            "window_seconds": self.window_seconds,
            "source": None if self.source is None else self.source.value,
            "source_kind": None if self.source is None else self.source.kind.value,
            "http_status": self.http_status,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "error": self.detail if self.failed else None,
            "error_kind": None if self.error_kind is None else self.error_kind.value,
            "step": None if self.step is None else self.step.value,
            "detail": self.detail,
            "retry_after": self.retry_after,
            "checked_at": iso_time(self.checked_at) if self.probed else None,
            "raw": {"limit": self.raw_limit, "remaining": self.raw_remaining},
        }
