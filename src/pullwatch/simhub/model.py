"""The simulated Docker Hub's state: accounts, rolling-window buckets, tokens, counters, faults.

Thread-safe: the HTTP server answers on many threads, tests and the demo mutate the model from
others. Time comes from the injected `Clock` (token expiry, pull timestamps), so a test moves
the rolling window with `ManualClock.advance()`. The behaviour mirrors
docs/protocol.md.
"""

from __future__ import annotations

import bisect
import datetime as dt
import ipaddress
import secrets
import threading
import uuid as uuidlib
from collections import Counter, deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import EllipsisType
from typing import Any

from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.simhub import jwt

ANONYMOUS = "anonymous"
DEFAULT_TAG = "latest"
"""The `who` that means "the anonymous bucket of the current egress address"."""

ENDPOINTS = ("ping", "token", "head")
"""Endpoint names the fault switches accept, besides `ANY`."""
ANY = "any"

RATELIMIT_HEADER_MODES = (
    "normal",
    "missing",
    "empty",
    "malformed",
    "duplicated",
    "enormous",
    "x_prefixed",
    "mixed_case",
    "policy_list",
    "no_source",
)
TOKEN_BODY_MODES = (
    "normal",
    "malformed",
    "missing_token",
    "token_only",
    "access_token_only",
    "no_expires",
    "expires_zero",
    "expires_huge",
    "not_object",
    "html",
)
CHALLENGE_MODES = ("normal", "missing", "garbage", "basic", "no_auth")

COUNTER_NAMES = ("ping", "token", "head", "manifest_get", "other")
ARRIVALS_KEPT = 100_000  # request arrival times kept (the pace on the wire)


def busiest(arrivals: Iterable[float], span: float = 1.0) -> int:
    """The most arrivals in any `span` seconds (a closed window starting at an arrival)."""
    times = sorted(arrivals)
    most = first = 0
    for last, at in enumerate(times):
        while times[first] < at - span:
            first += 1
        most = max(most, last - first + 1)
    return most


# Pulls older than this (or the longest window a bucket ever had, if longer) are forgotten.
MIN_HISTORY_SECONDS = 86_400.0
# Expired tokens are swept after this many issues.
ISSUED_LOG_SIZE = 10_000
TOKEN_SWEEP_EVERY = 1_000


def _new_uuid() -> str:
    return str(uuidlib.uuid4())


@dataclass
class Account:
    """A Docker Hub account. `limit=None` is a paid plan: not metered, no ratelimit headers.

    Fields may be changed at runtime (a new secret revokes logins, a new limit or window applies
    to the next answer). `claim_window`, when set, is what token claims report as
    `pull_limit_interval` while the headers say `window` (the 2026 mismatch).
    """

    username: str
    secret: str
    limit: int | None = 200
    window: int = 21600
    uuid: str = field(default_factory=_new_uuid)
    claim_window: int | None = None

    @property
    def metered(self) -> bool:
        return self.limit is not None


@dataclass(frozen=True, slots=True)
class Quota:
    """One bucket as seen at one instant."""

    source: str  # what docker-ratelimit-source says: IPv4, IPv6 /64 prefix or account UUID
    limit: int | None  # None: not metered
    window: int
    remaining: int | None  # None: not metered

    @property
    def metered(self) -> bool:
        return self.limit is not None

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What the simulator remembers about a token it issued."""

    token: str
    username: str  # "" for anonymous
    subject: str  # account UUID; "" for anonymous
    service: str
    repositories: frozenset[str]
    issued_at: float
    expires_at: float
    jti: str

    @property
    def anonymous(self) -> bool:
        return not self.username


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A fresh token and what the token endpoint says about it."""

    grant: TokenGrant
    expires_in: int
    issued_at_text: str  # RFC 3339 with nanoseconds, like Docker's
    claims: dict[str, Any]


class _Bucket:
    """Pull timestamps of one bucket, sorted, with a rolling-window count."""

    __slots__ = ("horizon", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.horizon = MIN_HISTORY_SECONDS

    def _prune(self, now: float, window: int) -> None:
        self.horizon = max(self.horizon, float(window))
        cut = bisect.bisect_right(self.times, now - self.horizon)
        if cut:
            del self.times[:cut]

    def in_window(self, now: float, window: int) -> list[float]:
        self._prune(now, window)
        return self.times[bisect.bisect_right(self.times, now - window) :]

    def used(self, now: float, window: int) -> int:
        self._prune(now, window)
        return len(self.times) - bisect.bisect_right(self.times, now - window)

    def record(self, now: float, n: int) -> None:
        if self.times and self.times[-1] > now:  # a wall clock that stepped back
            for _ in range(n):
                bisect.insort(self.times, now)
        else:
            self.times.extend([now] * n)


def egress_source(address: str) -> str:
    """The bucket an egress address is charged to: IPv4 as is, IPv6 as its /64 prefix."""
    ip = ipaddress.ip_address(address.strip())
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def rfc3339_nanos(epoch: float) -> str:
    """`2026-11-30T12:00:00.000000000Z` from epoch seconds (Docker's `issued_at` style)."""
    nanos = round(epoch * 1_000_000_000)
    seconds, fraction = divmod(nanos, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction:09d}Z"


def _check_mode(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"faults.{name} must be one of {', '.join(allowed)}; got {value!r}")


@dataclass
class Faults:
    """Switches read on every request; tests flip them at runtime.

    Endpoint keys are "ping", "token", "head" or "any" (all three). Mode strings are checked
    on assignment so a typo fails in the test, not silently in the server.
    """

    latency: float = 0.0  # wall-clock seconds before every (non-admin) response
    status: dict[str, int] = field(default_factory=dict)  # forced status per endpoint
    retry_after: dict[str, int] = field(default_factory=dict)  # Retry-After for forced statuses
    hap429: set[str] = field(default_factory=set)  # the abuse limit's plain-text 429
    reset: set[str] = field(default_factory=set)  # partial answer, then TCP RST
    drip: dict[str, float] = field(default_factory=dict)  # one byte every N seconds
    hang: set[str] = field(default_factory=set)  # read the request, never answer
    ratelimit_headers: str = "normal"
    token_body: str = "normal"
    challenge: str = "normal"
    invalid_token_on_head: bool = False
    redirect_loop: set[str] = field(default_factory=set)  # 302 to itself
    huge_body: set[str] = field(default_factory=set)  # a 50 MB body
    # Forced error bodies echo the requester and a real dckr_jti id, as Docker's authenticated
    # 429 does ("... as '<user>': dckr_jti_<id>."): redaction tests need the real thing.
    echo_jti: set[str] = field(default_factory=set)
    head_429_when_exhausted: bool = True  # 2026: HEAD 429; False: 200 with remaining 0

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "ratelimit_headers":
            _check_mode(name, value, RATELIMIT_HEADER_MODES)
        elif name == "token_body":
            _check_mode(name, value, TOKEN_BODY_MODES)
        elif name == "challenge":
            _check_mode(name, value, CHALLENGE_MODES)
        super().__setattr__(name, value)

    def clear(self) -> None:
        """Every switch back to its default (in place: references stay valid)."""
        for f in fields(self):
            default = f.default_factory() if callable(f.default_factory) else f.default
            setattr(self, f.name, default)

    @staticmethod
    def hits(switch: Collection[str], endpoint: str) -> bool:
        """Whether a set-valued switch applies to `endpoint`."""
        return endpoint in switch or ANY in switch

    @staticmethod
    def value_for(switch: Mapping[str, Any], endpoint: str) -> Any:
        """A dict-valued switch's value for `endpoint` (falling back to "any"), or None."""
        if endpoint in switch:
            return switch[endpoint]
        return switch.get(ANY)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Set several switches from JSON-like values (lists become sets). Raises ValueError."""
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault switch {name!r}")
            current = getattr(self, name)
            if isinstance(current, set):
                value = set(value)
            elif isinstance(current, dict):
                value = dict(value)
            setattr(self, name, value)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = sorted(value) if isinstance(value, set) else value
        return out


class HubModel:
    """Accounts, buckets, tokens, counters and fault switches of one simulated Docker Hub."""

    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        *,
        anonymous_limit: int | None = 100,
        anonymous_window: int = 21600,
        egress_ip: str = "203.0.113.7",
        token_lifetime: int = 300,
        service: str = "registry.docker.io",
        repositories: Iterable[str] = ("ratelimitpreview/test",),
        anonymous_claim_window: int | None = None,
    ) -> None:
        """`repositories`: `name` (tag `latest`) or `name:tag` entries; a name may repeat."""
        self.clock = clock
        self._lock = threading.RLock()
        self.anonymous_limit = anonymous_limit
        self.anonymous_window = anonymous_window
        self.anonymous_claim_window = anonymous_claim_window
        self.token_lifetime = token_lifetime
        self.service = service
        self.repositories: set[str] = set()
        self._tags: dict[str, set[str]] = {}
        for entry in repositories:
            name, _, tag = entry.partition(":")
            self.add_repository(name, (tag or DEFAULT_TAG,))
        self.issuer = "auth.docker.io"
        self.faults = Faults()
        self.counters: Counter[str] = Counter(dict.fromkeys(COUNTER_NAMES, 0))
        self.token_requests_by_user: Counter[str] = Counter()
        self.head_requests_by_user: Counter[str] = Counter()
        self.server_errors: list[str] = []  # tracebacks of handler bugs (never client hang-ups)
        # When each counted request arrived, by the real monotonic clock (the model's own may
        # stand still): the pace on the wire, which the pacing tests and benchmark read.
        self.arrivals: deque[float] = deque(maxlen=ARRIVALS_KEPT)
        self._accounts: dict[str, Account] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._tokens: dict[str, TokenGrant] = {}
        self._issued_log: deque[TokenGrant] = deque(maxlen=ISSUED_LOG_SIZE)
        self._issued_since_sweep = 0
        self._signing_key = secrets.token_bytes(32)
        self._egress_ip = ""
        self.egress_ip = egress_ip

    # -- accounts and egress ------------------------------------------------------------------

    def add_account(
        self,
        username: str,
        secret: str,
        limit: int | None = 200,
        window: int = 21600,
        *,
        uuid: str | None = None,
        used: int = 0,
        claim_window: int | None = None,
    ) -> Account:
        """Create an account (replacing one of the same name); `used` pulls are spent now."""
        account = Account(
            username=username,
            secret=secret,
            limit=limit,
            window=window,
            uuid=uuid or _new_uuid(),
            claim_window=claim_window,
        )
        self.add(account)
        if used:
            self.consume(username, used)
        return account

    def add(self, account: Account) -> Account:
        """Register an `Account` object."""
        if not account.username or account.username == ANONYMOUS:
            raise ValueError(f"invalid username {account.username!r}")
        with self._lock:
            self._accounts[account.username] = account
        return account

    def account(self, username: str) -> Account:
        """The account called `username` (KeyError if there is none)."""
        with self._lock:
            try:
                return self._accounts[username]
            except KeyError:
                raise KeyError(f"no simulated account {username!r}") from None

    @property
    def accounts(self) -> list[Account]:
        with self._lock:
            return list(self._accounts.values())

    @property
    def egress_ip(self) -> str:
        """The address anonymous requests come from; settable at runtime."""
        return self._egress_ip

    @egress_ip.setter
    def egress_ip(self, address: str) -> None:
        source = egress_source(address)  # validates
        with self._lock:
            self._egress_ip = address.strip()
            self._egress_source = source

    @property
    def egress_source(self) -> str:
        """The anonymous bucket now: the IPv4 address or the IPv6 /64 prefix."""
        with self._lock:
            return self._egress_source

    def authenticate(self, username: str, secret: str) -> Account | None:
        """The account for these credentials, or None (e-mail addresses never log in)."""
        if "@" in username:
            return None
        with self._lock:
            account = self._accounts.get(username)
        if account is None or not secrets.compare_digest(account.secret.encode(), secret.encode()):
            return None
        return account

    # -- repositories -----------------------------------------------------------------------

    def add_repository(self, name: str, tags: Iterable[str] = ("latest",)) -> None:
        """A repository with these tags (added to the ones it has)."""
        with self._lock:
            self.repositories.add(name)
            self._tags.setdefault(name, set()).update(tags)

    def tags(self, name: str) -> list[str]:
        """The tags of repository `name`, sorted; [] for an unknown one. A name added to
        `repositories` directly has the tag `latest`."""
        with self._lock:
            if name not in self.repositories:
                return []
            return sorted(self._tags.get(name) or {DEFAULT_TAG})

    # -- buckets --------------------------------------------------------------------------

    def _policy(self, who: str) -> tuple[str, int | None, int]:
        """(bucket key, limit, window) for a username or ANONYMOUS. Caller holds the lock."""
        if who == ANONYMOUS or who == "":
            return self._egress_source, self.anonymous_limit, self.anonymous_window
        account = self.account(who)
        return account.uuid, account.limit, account.window

    def _quota_locked(self, who: str) -> Quota:
        key, limit, window = self._policy(who)
        if limit is None:
            return Quota(source=key, limit=None, window=window, remaining=None)
        bucket = self._buckets.get(key)
        used = bucket.used(self.clock.time(), window) if bucket else 0
        return Quota(source=key, limit=limit, window=window, remaining=max(limit - used, 0))

    def quota(self, who: str) -> Quota:
        """The bucket `who` (a username or "anonymous") is charged to, as of now."""
        with self._lock:
            return self._quota_locked(who)

    def remaining(self, who: str) -> int | None:
        """Pulls left in `who`'s window now; None when not metered."""
        return self.quota(who).remaining

    def pull_times(self, who: str) -> list[float]:
        """Timestamps of the pulls in `who`'s current window, oldest first (ground truth)."""
        with self._lock:
            key, _, window = self._policy(who)
            bucket = self._buckets.get(key)
            return bucket.in_window(self.clock.time(), window) if bucket else []

    def consume(self, who: str, n: int = 1) -> int:
        """Record up to `n` pulls now, as another client pulling would; returns how many counted.

        A metered bucket takes no more than it has left (a refused pull is not a pull);
        an unmetered one records all `n`.
        """
        if n < 0:
            raise ValueError("n must not be negative")
        with self._lock:
            quota = self._quota_locked(who)
            taken = n if quota.remaining is None else min(n, quota.remaining)
            if taken:
                bucket = self._buckets.setdefault(quota.source, _Bucket())
                bucket.record(self.clock.time(), taken)
            return taken

    def set_policy(
        self,
        who: str,
        *,
        limit: int | EllipsisType | None = ...,
        window: int | None = None,
    ) -> Quota:
        """Change a bucket's limit and/or window length at runtime (past pulls are kept)."""
        if window is not None and window <= 0:
            raise ValueError("window must be positive")
        with self._lock:
            if who == ANONYMOUS:
                if limit is not ...:
                    self.anonymous_limit = limit
                if window is not None:
                    self.anonymous_window = window
            else:
                account = self.account(who)
                if limit is not ...:
                    account.limit = limit
                if window is not None:
                    account.window = window
            return self._quota_locked(who)

    # -- tokens ---------------------------------------------------------------------------

    def issue_token(
        self, account: Account | None, service: str, repositories: Iterable[str]
    ) -> IssuedToken:
        """Issue and remember a token for `account` (None: anonymous) to pull `repositories`."""
        now = self.clock.time()
        repos = sorted(set(repositories))
        with self._lock:
            if account is None:
                limit, window = self.anonymous_limit, self.anonymous_window
                claim_window = self.anonymous_claim_window or window
                username = subject = ""
            else:
                limit, window = account.limit, account.window
                claim_window = account.claim_window or window
                username, subject = account.username, account.uuid
        access: list[dict[str, Any]] = []
        for repo in repos:
            entry: dict[str, Any] = {"type": "repository", "name": repo, "actions": ["pull"]}
            if limit is not None:
                entry["parameters"] = {
                    "pull_limit": str(limit),
                    "pull_limit_interval": str(claim_window),
                }
            access.append(entry)
        jti = f"dckr_jti_{secrets.token_urlsafe(21)}"
        issued = int(now)
        claims: dict[str, Any] = {
            "access": access,
            "aud": service,
            "exp": issued + self.token_lifetime,
            "iat": issued,
            "iss": self.issuer,
            "jti": jti,
            "nbf": issued,
            "sub": subject,
        }
        token = jwt.encode(claims, self._signing_key)
        grant = TokenGrant(
            token=token,
            username=username,
            subject=subject,
            service=service,
            repositories=frozenset(repos),
            issued_at=now,
            expires_at=now + self.token_lifetime,
            jti=jti,
        )
        with self._lock:
            self._tokens[token] = grant
            self._issued_log.append(grant)
            self._issued_since_sweep += 1
            if self._issued_since_sweep >= TOKEN_SWEEP_EVERY:
                self._issued_since_sweep = 0
                self._tokens = {t: g for t, g in self._tokens.items() if g.expires_at > now}
        return IssuedToken(
            grant=grant,
            expires_in=self.token_lifetime,
            issued_at_text=rfc3339_nanos(now),
            claims=claims,
        )

    def issued_tokens(self) -> list[TokenGrant]:
        """Every token issued recently (the last ISSUED_LOG_SIZE), expired or not: ground truth
        for tests that search pullwatch's files and output for tokens and jti ids."""
        with self._lock:
            return list(self._issued_log)

    def jti_for(self, username: str) -> str:
        """The newest jti issued to `username` ("" anonymous); a fresh token's if none yet."""
        with self._lock:
            for grant in reversed(self._issued_log):
                if grant.username == username:
                    return grant.jti
            account = self._accounts.get(username) if username else None
        return self.issue_token(account, self.service, ()).grant.jti

    def lookup_token(self, token: str) -> TokenGrant | None:
        """The grant behind a token string, valid or not (None if never issued)."""
        with self._lock:
            return self._tokens.get(token)

    def validate_token(self, token: str) -> TokenGrant | None:
        """The grant if the registry would accept this token now: known, unexpired, our service."""
        grant = self.lookup_token(token)
        if grant is None or grant.service != self.service:
            return None
        if self.clock.time() >= grant.expires_at:
            return None
        return grant

    def revoke_tokens(self) -> None:
        """Forget every issued token (the registry then answers invalid_token)."""
        with self._lock:
            self._tokens.clear()

    def grant_quota(self, grant: TokenGrant) -> Quota:
        """The bucket a request with this token is charged to (anonymous: today's egress)."""
        return self.quota(grant.username or ANONYMOUS)

    def pull(self, grant: TokenGrant) -> tuple[bool, Quota]:
        """A real pull (manifest GET) with this token: (allowed, quota after it)."""
        who = grant.username or ANONYMOUS
        with self._lock:
            taken = self.consume(who, 1)
            quota = self._quota_locked(who)
        return bool(taken), quota

    # -- counters -------------------------------------------------------------------------

    def count(self, name: str, user: str | None = None) -> None:
        """Count one request; `user` feeds the per-user token/head counters."""
        with self._lock:
            self.arrivals.append(SYSTEM_CLOCK.monotonic())
            self.counters[name] += 1
            if user is not None:
                if name == "token":
                    self.token_requests_by_user[user] += 1
                elif name == "head":
                    self.head_requests_by_user[user] += 1

    def reset_counters(self) -> None:
        with self._lock:
            self.counters.clear()
            self.counters.update(dict.fromkeys(COUNTER_NAMES, 0))
            self.token_requests_by_user.clear()
            self.head_requests_by_user.clear()
            self.arrivals.clear()

    def arrival_times(self) -> list[float]:
        """When each counted request arrived (monotonic seconds, oldest first)."""
        with self._lock:
            return list(self.arrivals)

    def reset_faults(self) -> None:
        self.faults.clear()

    def snapshot(self) -> dict[str, Any]:
        """Counters, buckets and switches as a JSON-able dict."""
        with self._lock:
            now = self.clock.time()
            buckets: list[dict[str, Any]] = []
            anonymous = self._quota_locked(ANONYMOUS)
            buckets.append(self._bucket_json(ANONYMOUS, anonymous, now))
            for account in self._accounts.values():
                quota = self._quota_locked(account.username)
                entry = self._bucket_json(account.username, quota, now)
                entry["uuid"] = account.uuid
                buckets.append(entry)
            return {
                "time": now,
                "service": self.service,
                "egress_ip": self._egress_ip,
                "egress_source": self._egress_source,
                "counters": dict(self.counters),
                "token_requests_by_user": dict(self.token_requests_by_user),
                "head_requests_by_user": dict(self.head_requests_by_user),
                "buckets": buckets,
                "tokens_live": sum(1 for g in self._tokens.values() if g.expires_at > now),
                "server_errors": len(self.server_errors),
                "faults": self.faults.as_json(),
            }

    def _bucket_json(self, who: str, quota: Quota, now: float) -> dict[str, Any]:
        bucket = self._buckets.get(quota.source)
        return {
            "who": who,
            "source": quota.source,
            "limit": quota.limit,
            "window": quota.window,
            "remaining": quota.remaining,
            "used": bucket.used(now, quota.window) if bucket else 0,
        }
