"""The one domain record: what one probe of one identity found.

Every layer speaks `Reading`: the hub client classifies a probe into one, the monitor produces
one per identity per round, history stores them, and the TUI, the CLI and the metrics render
them. A reading never holds a secret or a token; `detail` is already redacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class State(StrEnum):
    OK = "ok"
    LOW = "low"  # metered, remaining at or under the warning threshold
    EXHAUSTED = "exhausted"  # remaining 0, or the HEAD itself answered 429
    UNMETERED = "unmetered"  # no ratelimit headers: paid plan or exempt
    AUTH_FAILED = "auth_failed"  # the token endpoint refused the credentials, or the token
    THROTTLED = "throttled"  # token-endpoint 429 or the abuse limit (HAP429)
    ERROR = "error"  # network, TLS, 5xx, malformed answer, secret unavailable
    UNKNOWN = "unknown"  # never probed


class ErrorKind(StrEnum):
    CONNECT = "connect"  # refused, reset, closed early
    DNS = "dns"
    TIMEOUT = "timeout"
    TLS = "tls"
    HTTP = "http"  # an unexpected status: 5xx, 404, ...
    MALFORMED = "malformed"  # an answer pullwatch cannot read
    SECRET = "secret"  # the identity's secret could not be read from the keyring


# States in which a reading carries live numbers from the registry.
METERED_STATES = frozenset({State.OK, State.LOW, State.EXHAUSTED})
# States that are a failure to measure, as opposed to a measurement.
FAILED_STATES = frozenset({State.AUTH_FAILED, State.THROTTLED, State.ERROR})


@dataclass(frozen=True, slots=True)
class Reading:
    label: str
    username: str | None
    checked_at: float  # wall clock, epoch seconds
    state: State
    limit: int | None = None
    remaining: int | None = None
    window_seconds: int | None = None
    source: str | None = None  # docker-ratelimit-source as sent: IPv4, IPv6 prefix or UUID
    http_status: int | None = None
    latency_ms: float | None = None
    error_kind: ErrorKind | None = None
    detail: str | None = None  # one line, redacted: why the state is what it is
    retry_after: float | None = None  # seconds, from Retry-After
    raw_limit: str | None = None  # header values as received (redacted, length-capped)
    raw_remaining: str | None = None
    token_expires_at: float | None = None  # wall clock; None when no token was used

    @classmethod
    def unknown(cls, label: str, username: str | None, at: float) -> Reading:
        return cls(label=label, username=username, checked_at=at, state=State.UNKNOWN)

    @property
    def anonymous(self) -> bool:
        return self.username is None

    @property
    def failed(self) -> bool:
        return self.state in FAILED_STATES

    @property
    def used(self) -> int | None:
        if self.limit is None or self.remaining is None:
            return None
        return max(self.limit - self.remaining, 0)

    def to_json(self) -> dict[str, Any]:
        """The `check --json` shape (design.md §3), plus a few extra keys after the contract's."""
        return {
            "label": self.label,
            "username": self.username,
            "state": self.state.value,
            "limit": self.limit,
            "remaining": self.remaining,
            "window_seconds": self.window_seconds,
            "source": self.source,
            "http_status": self.http_status,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "error": self.detail if self.failed else None,
            "error_kind": None if self.error_kind is None else self.error_kind.value,
            "detail": self.detail,
            "retry_after": self.retry_after,
            "checked_at": self.checked_at,
            "raw": {"limit": self.raw_limit, "remaining": self.raw_remaining},
        }
