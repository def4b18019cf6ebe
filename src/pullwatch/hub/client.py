"""HubClient: challenge discovery, token cache, HEAD probe, and every failure classified.

One `httpx.AsyncClient` (pooled, proxy and CA settings from the environment) serves every
identity. A probe is: the registry's challenge (discovered once per registry and cached, also on
disk), a token per identity (cached until ~10 s before it expires), and one HEAD of the probe
repository's manifest. A manifest is never fetched with GET: a GET is a pull.

Nothing raises past `probe()` / `check_token()`: every outcome, including a dropped connection or
a hostile answer, becomes a `Reading` with a state and a one-line, redacted reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import math
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from pullwatch import __version__
from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.hub.headers import (
    Challenge,
    RateLimitHeaders,
    header_lookup,
    parse_challenge,
    parse_ratelimit_headers,
    parse_retry_after,
)
from pullwatch.hub.pool import ShardedTransport, shard_count
from pullwatch.hub.redact import one_line, redact, redact_headers, register_secret
from pullwatch.hub.token import TokenClaims, TokenGrant, TokenParseError, parse_token_response
from pullwatch.reading import ErrorKind, Reading, State

DEFAULT_REGISTRY = "https://registry-1.docker.io"
DEFAULT_REPOSITORY = "ratelimitpreview/test"
DEFAULT_CONCURRENCY = 32

# Docker manifest v2 and list, OCI manifest and index, and schema 1 (ratelimitpreview/test is one).
MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
    )
)
MAX_BODY = 256 * 1024  # no sane registry answer we read is larger
CHALLENGE_CACHE_TTL = 7 * 24 * 3600.0
DEFAULT_LOW_FRACTION = 0.2

_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry.docker.io", "hub.docker.com"}
_REPOSITORY = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


class ConfigurationError(ValueError):
    """A registry URL or repository name pullwatch cannot use. str() is one line."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_registry(url: str) -> str:
    """`registry-1.docker.io` -> `https://registry-1.docker.io`; `docker.io` means Docker Hub.

    `http://` is accepted only for loopback (the simulated hub).
    """
    text = url.strip().rstrip("/")
    if not text:
        raise ConfigurationError("registry URL is empty")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"registry URL {url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ConfigurationError("registry URL must not carry credentials; add an identity")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(f"registry URL {url!r} must be scheme://host[:port] only")
    if parts.hostname in _DOCKER_HUB_ALIASES:
        return DEFAULT_REGISTRY
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"registry URL {url!r} is plain http: only loopback (the simulator) may use http"
        )
    return f"{parts.scheme}://{parts.netloc}"


def normalize_repository(name: str) -> str:
    """`alpine` -> `library/alpine` (Docker Hub official images); validated."""
    text = name.strip().strip("/")
    if not _REPOSITORY.match(text):
        raise ConfigurationError(f"repository {name!r} is not a valid repository name")
    return text if "/" in text else f"library/{text}"


def low_threshold(limit: int, warn_below: int | None) -> int:
    """Remaining at or under this is `low`: the configured number, else 20% of the limit."""
    if warn_below is not None:
        return warn_below
    return math.ceil(limit * DEFAULT_LOW_FRACTION)


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    secret: str = field(repr=False)

    @property
    def cache_key(self) -> str:
        digest = hashlib.sha256(f"{self.username}\0{self.secret}".encode()).hexdigest()
        return f"{self.username}:{digest[:24]}"


@dataclass(frozen=True, slots=True)
class Target:
    """What to probe: an identity, reduced to what the protocol needs."""

    label: str
    credentials: Credentials | None = None  # None: anonymous
    warn_below: int | None = None

    @property
    def username(self) -> str | None:
        return None if self.credentials is None else self.credentials.username

    @property
    def cache_key(self) -> str:
        return "" if self.credentials is None else self.credentials.cache_key


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    read: float = 10.0
    total: float = 20.0  # a whole request, however slowly the bytes drip


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its answer, safe to show: no secret, token or credential in it."""

    step: str  # "ping", "token", "head"
    method: str
    url: str
    auth: str  # "none", "basic (alice)", "bearer"
    status: int | None = None
    latency_ms: float | None = None
    headers: tuple[tuple[str, str], ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """A probe's reading plus everything a HEAD check screen shows."""

    reading: Reading
    exchanges: tuple[Exchange, ...]
    ratelimit: RateLimitHeaders | None = None


@dataclass(frozen=True, slots=True)
class TokenResult:
    """A token check: a fresh token request, its exchange and the decoded claims."""

    label: str
    username: str | None
    ok: bool
    state: State  # OK on success; AUTH_FAILED / THROTTLED / ERROR otherwise
    detail: str | None
    error_kind: ErrorKind | None
    exchanges: tuple[Exchange, ...]
    http_status: int | None = None
    latency_ms: float | None = None
    retry_after: float | None = None
    expires_in: int | None = None
    issued_at: float | None = None
    expires_at: float | None = None  # wall clock, by our clock
    claims: TokenClaims | None = None


class _Failure(Exception):
    def __init__(
        self,
        state: State,
        detail: str,
        kind: ErrorKind | None = None,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        latency_ms: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.state = state
        self.detail = one_line(detail)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.latency_ms = latency_ms


@dataclass(slots=True)
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    latency_ms: float
    exchange: Exchange

    def header(self, name: str) -> str | None:
        return header_lookup(self.headers).get(name)


@dataclass(frozen=True, slots=True)
class _KnownChallenge:
    challenge: Challenge | None  # None: the registry wants no auth (ping answered 200)
    from_disk: bool = False


@dataclass(slots=True)
class _CachedToken:
    grant: TokenGrant
    obtained_at: float
    reuse_until: float


def classify_transport_error(exc: BaseException) -> tuple[ErrorKind, str]:
    """Map an httpx/asyncio/OS failure to an error kind and a short reason (no step prefix)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, socket.gaierror) for e in chain) or re.search(
        r"Name or service not known|nodename nor servname|Temporary failure in name resolution"
        r"|No address associated|getaddrinfo failed",
        text,
    ):
        return ErrorKind.DNS, "cannot resolve the host name (DNS)"
    if (
        any(isinstance(e, ssl.SSLCertVerificationError) for e in chain)
        or "CERTIFICATE_VERIFY" in text
    ):
        reason = next(
            (e.verify_message for e in chain if isinstance(e, ssl.SSLCertVerificationError)),
            "certificate verify failed",
        )
        return ErrorKind.TLS, f"TLS certificate not trusted: {reason}"
    if any(isinstance(e, ssl.SSLError) for e in chain) or "[SSL" in text:
        return ErrorKind.TLS, f"TLS handshake failed: {one_line(text, 120)}"
    if isinstance(exc, httpx.TimeoutException | TimeoutError | asyncio.TimeoutError):
        if isinstance(exc, httpx.ConnectTimeout):
            return ErrorKind.TIMEOUT, "timed out connecting"
        return ErrorKind.TIMEOUT, "timed out waiting for the answer"
    if isinstance(exc, httpx.TooManyRedirects):
        return ErrorKind.MALFORMED, "redirect loop (too many redirects)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "Connection refused" in text:
        return ErrorKind.CONNECT, "connection refused"
    if any(isinstance(e, ConnectionResetError) for e in chain) or "reset by peer" in text:
        return ErrorKind.CONNECT, "connection reset by the server"
    if isinstance(exc, httpx.RemoteProtocolError):
        if "without sending" in text or "disconnected" in text or "closed" in text:
            return ErrorKind.CONNECT, "connection closed before a complete answer"
        return ErrorKind.MALFORMED, f"malformed HTTP answer: {one_line(str(exc), 100)}"
    if isinstance(exc, httpx.ConnectError):
        return ErrorKind.CONNECT, f"cannot connect: {one_line(str(exc), 100) or 'no reason given'}"
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.CloseError):
        return ErrorKind.CONNECT, "connection lost mid-answer"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ErrorKind.MALFORMED, f"unusable URL: {one_line(str(exc), 100)}"
    if isinstance(exc, httpx.DecodingError):
        return ErrorKind.MALFORMED, "answer could not be decoded"
    if isinstance(exc, OSError):
        return ErrorKind.CONNECT, f"network error: {one_line(str(exc), 100)}"
    return ErrorKind.MALFORMED, f"unexpected {type(exc).__name__}: {one_line(str(exc), 100)}"


def _status_phrase(status: int) -> str:
    try:
        from http import HTTPStatus

        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _error_detail(body: bytes) -> str | None:
    """The server's own words from a JSON error body: `details`, or the registry `errors` list."""
    if not body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        text = body[:300].decode("utf-8", "replace").strip()
        return one_line(text, 160) if text and not text.startswith("<") else None
    if isinstance(data, dict):
        if isinstance(data.get("details"), str):
            return one_line(data["details"], 160)
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            message = errors[0].get("message") or errors[0].get("code")
            if isinstance(message, str):
                return one_line(message, 160)
        for key in ("message", "error", "detail"):
            if isinstance(data.get(key), str):
                return one_line(data[key], 160)
    return None


def _head_verdict(
    status: int,
    parsed: RateLimitHeaders,
    target: Target,
    repository: str,
    retry_after: float | None,
    challenge_header: str | None,
) -> tuple[State, str | None, ErrorKind | None]:
    """State, reason and error kind of one HEAD answer (hub-protocol.md §2-4)."""
    limit = parsed.limit.count if parsed.limit else None
    remaining = parsed.remaining.count if parsed.remaining else None
    wait = f"; retry after {retry_after:.0f} s" if retry_after else ""
    if status == 429:
        if remaining is not None and remaining > 0:
            return (
                State.THROTTLED,
                f"HEAD answered 429 while {remaining} pulls remain: the abuse limit (HAP429), "
                f"not the pull quota{wait}",
                None,
            )
        unsure = "" if parsed.remaining is not None else " (or the abuse limit: a HEAD can't tell)"
        return State.EXHAUSTED, f"HEAD answered 429{unsure}{wait}", None
    if 200 <= status < 300:
        if not parsed.metered:
            return State.UNMETERED, "no rate-limit headers (paid plan or exempt)", None
        if remaining == 0:
            return State.EXHAUSTED, "0 pulls remaining", None
        if remaining is None:
            raw = parsed.remaining.raw if parsed.remaining else "absent"
            return (
                State.OK,
                f"remaining unknown: ratelimit-remaining is {one_line(raw, 60)!r}",
                None,
            )
        threshold = (
            low_threshold(limit, target.warn_below) if limit is not None else target.warn_below
        )
        if threshold is not None and remaining <= threshold:
            of = f" of {limit}" if limit is not None else ""
            return State.LOW, f"{remaining}{of} left", None
        return State.OK, None, None
    if status == 401:
        challenge = parse_challenge(challenge_header)
        error = (challenge.error if challenge else None) or "401 Unauthorized"
        return State.AUTH_FAILED, f"registry rejected the token ({one_line(error, 60)})", None
    if status == 404:
        return (
            State.ERROR,
            f"repository {repository!r} not found (404): check --repository",
            ErrorKind.HTTP,
        )
    return State.ERROR, f"HEAD answered {_status_phrase(status)}{wait}", ErrorKind.HTTP


def reading_from_head(
    target: Target,
    *,
    checked_at: float,
    status: int,
    headers: Sequence[tuple[str, str]],
    latency_ms: float | None,
    repository: str,
    token_expires_at: float | None = None,
) -> tuple[Reading, RateLimitHeaders]:
    """Classify one HEAD answer into a Reading (pure)."""
    parsed = parse_ratelimit_headers(headers)
    found = header_lookup(headers)
    retry_after = parse_retry_after(found.get("retry-after"), checked_at)
    state, detail, kind = _head_verdict(
        status, parsed, target, repository, retry_after, found.get("www-authenticate")
    )
    remaining = parsed.remaining.count if parsed.remaining else None
    if state is State.EXHAUSTED and remaining is None:
        remaining = 0
    reading = Reading(
        label=target.label,
        username=target.username,
        checked_at=checked_at,
        state=state,
        limit=parsed.limit.count if parsed.limit else None,
        remaining=remaining,
        window_seconds=parsed.window,
        source=parsed.source.value if parsed.source else None,
        http_status=status,
        latency_ms=latency_ms,
        error_kind=kind,
        detail=detail,
        retry_after=retry_after,
        raw_limit=one_line(parsed.limit.raw, 120) if parsed.limit else None,
        raw_remaining=one_line(parsed.remaining.raw, 120) if parsed.remaining else None,
        token_expires_at=token_expires_at,
    )
    return reading, parsed


class ChallengeCache:
    """The discovered `WWW-Authenticate` challenge per registry, kept on disk between runs.

    It saves the ping on every cold start, so a one-shot `check` after the first run sends only
    a token request and a HEAD per identity. Stale or unreadable files are simply ignored.
    """

    def __init__(self, path: Path | None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = path
        self.clock = clock

    def load(self, registry: str) -> Challenge | bool | None:
        """The cached challenge, None for "no auth needed", or False when nothing usable."""
        if self.path is None:
            return False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entry = data[registry]
            if self.clock.time() - float(entry["saved_at"]) > CHALLENGE_CACHE_TTL:
                return False
            if entry.get("scheme") is None:
                return None
            params = {str(k): str(v) for k, v in dict(entry["params"]).items()}
            return Challenge(scheme=str(entry["scheme"]), params=params)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False

    def save(self, registry: str, challenge: Challenge | None) -> None:
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        data[registry] = {
            "scheme": None if challenge is None else challenge.scheme,
            "params": {} if challenge is None else dict(challenge.params),
            "saved_at": self.clock.time(),
        }
        try:
            from pullwatch.paths import ensure_private_dir

            ensure_private_dir(self.path.parent)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            tmp.replace(self.path)
        except OSError:
            pass  # a cache that cannot be written only costs a ping next time


class HubClient:
    """Probes identities against one registry. Use as an async context manager."""

    def __init__(
        self,
        registry: str = DEFAULT_REGISTRY,
        repository: str = DEFAULT_REPOSITORY,
        *,
        clock: Clock = SYSTEM_CLOCK,
        timeouts: Timeouts | None = None,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        challenge_cache: ChallengeCache | None = None,
        verify: ssl.SSLContext | str | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.registry = normalize_registry(registry)
        self.repository = normalize_repository(repository)
        self.clock = clock
        self.timeouts = timeouts or Timeouts()
        self._semaphore = asyncio.Semaphore(max(1, max_concurrency))
        self._challenge_cache = challenge_cache or ChallengeCache(None, clock)
        self._known: _KnownChallenge | None = None
        self._discover_lock = asyncio.Lock()
        self._tokens: dict[str, _CachedToken] = {}
        self._token_locks: dict[str, asyncio.Lock] = {}
        t = self.timeouts
        if transport is None:  # small pools: CPU per request stays flat (hub/pool.py)
            transport = ShardedTransport(shards=shard_count(max_concurrency), verify=verify)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=t.total),
            limits=httpx.Limits(  # for proxy transports from the environment only
                max_connections=max(2, max_concurrency * 2),
                max_keepalive_connections=max(1, max_concurrency),
            ),
            follow_redirects=True,
            max_redirects=5,
            trust_env=True,
            verify=verify,
            transport=transport,
            headers={"User-Agent": f"pullwatch/{__version__} (+HEAD-only rate-limit checks)"},
        )

    @property
    def manifest_url(self) -> str:
        return f"{self.registry}/v2/{self.repository}/manifests/latest"

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- public operations -------------------------------------------------------------------

    def token_expires_at(self, target: Target) -> float | None:
        cached = self._tokens.get(target.cache_key)
        if cached is None:
            return None
        return cached.obtained_at + max(cached.grant.expires_in, 0)

    def has_live_token(self, target: Target) -> bool:
        """Whether a cached token for `target` is still reused (no token request is due)."""
        cached = self._tokens.get(target.cache_key)
        return cached is not None and self.clock.time() < cached.reuse_until

    def forget_token(self, target: Target) -> None:
        """Drop a cached token (after the identity's secret changed, or to force a new one)."""
        self._tokens.pop(target.cache_key, None)

    async def probe(self, target: Target) -> ProbeResult:
        """One reading: challenge (cached), token (cached), one HEAD. Never raises."""
        exchanges: list[Exchange] = []
        async with self._semaphore:
            try:
                return await self._probe(target, exchanges)
            except _Failure as failure:
                return ProbeResult(self._failed_reading(target, failure), tuple(exchanges))
            except Exception as exc:  # the promise: nothing escapes a probe
                kind, reason = classify_transport_error(exc)
                failure = _Failure(State.ERROR, f"probe failed: {reason}", kind)
                return ProbeResult(self._failed_reading(target, failure), tuple(exchanges))

    async def check_token(self, target: Target) -> TokenResult:
        """A fresh token request (bypassing the cache, then refreshing it). Never raises."""
        exchanges: list[Exchange] = []
        async with self._semaphore:
            try:
                known = await self._discover(exchanges)
                if known.challenge is None:
                    raise _Failure(
                        State.ERROR,
                        "registry asks for no authentication: there is no token to check",
                        ErrorKind.HTTP,
                    )
                grant, answer = await self._fetch_token(target, known, exchanges)
            except _Failure as failure:
                return TokenResult(
                    label=target.label,
                    username=target.username,
                    ok=False,
                    state=failure.state,
                    detail=failure.detail,
                    error_kind=failure.kind,
                    exchanges=tuple(exchanges),
                    http_status=failure.status,
                    latency_ms=failure.latency_ms,
                    retry_after=failure.retry_after,
                )
            except Exception as exc:
                kind, reason = classify_transport_error(exc)
                return TokenResult(
                    label=target.label,
                    username=target.username,
                    ok=False,
                    state=State.ERROR,
                    detail=one_line(f"token check failed: {reason}"),
                    error_kind=kind,
                    exchanges=tuple(exchanges),
                )
        now = self.clock.time()
        return TokenResult(
            label=target.label,
            username=target.username,
            ok=True,
            state=State.OK,
            detail=None,
            error_kind=None,
            exchanges=tuple(exchanges),
            http_status=answer.status,
            latency_ms=answer.latency_ms,
            expires_in=grant.expires_in,
            issued_at=grant.issued_at,
            expires_at=now + max(grant.expires_in, 0),
            claims=grant.claims,
        )

    # -- the steps ---------------------------------------------------------------------------

    async def _probe(self, target: Target, exchanges: list[Exchange]) -> ProbeResult:
        known = await self._discover(exchanges)
        token: str | None = None
        fresh = False
        if known.challenge is not None:
            try:
                token, fresh = await self._token(target, known, exchanges)
            except _Failure as failure:
                stale = failure.kind in (ErrorKind.CONNECT, ErrorKind.DNS, ErrorKind.HTTP)
                if not (known.from_disk and stale):
                    raise
                # A challenge remembered from an earlier run may be stale: discover once more.
                known = await self._discover(exchanges, force=True)
                if known.challenge is not None:
                    token, fresh = await self._token(target, known, exchanges)
        answer = await self._head(token, exchanges)
        if answer.status == 401 and token is None:
            # The ping needed no auth but the manifest does: learn the challenge from the 401.
            learned = self._read_challenge(answer)
            self._known = known = learned
            self._challenge_cache.save(self.registry, learned.challenge)
            if learned.challenge is not None:
                token, fresh = await self._token(target, known, exchanges)
                answer = await self._head(token, exchanges)
        elif answer.status == 401 and token is not None and not fresh:
            # The cached token went stale (expired early, revoked): one fresh token, one retry.
            self.forget_token(target)
            token, fresh = await self._token(target, known, exchanges)
            answer = await self._head(token, exchanges)
        reading, parsed = reading_from_head(
            target,
            checked_at=self.clock.time(),
            status=answer.status,
            headers=answer.headers,
            latency_ms=answer.latency_ms,
            repository=self.repository,
            token_expires_at=self.token_expires_at(target),
        )
        if reading.state is State.AUTH_FAILED:
            self.forget_token(target)
        return ProbeResult(reading, tuple(exchanges), parsed)

    def _failed_reading(self, target: Target, failure: _Failure) -> Reading:
        return Reading(
            label=target.label,
            username=target.username,
            checked_at=self.clock.time(),
            state=failure.state,
            http_status=failure.status,
            latency_ms=failure.latency_ms,
            error_kind=failure.kind,
            detail=failure.detail,
            retry_after=failure.retry_after,
            token_expires_at=self.token_expires_at(target),
        )

    async def _discover(self, exchanges: list[Exchange], force: bool = False) -> _KnownChallenge:
        """The registry's auth challenge: memory, then disk, then `GET /v2/`."""
        if self._known is not None and not force:
            return self._known
        async with self._discover_lock:
            if self._known is not None and not force:
                return self._known
            if not force:
                cached = self._challenge_cache.load(self.registry)
                if cached is not False:
                    assert cached is None or isinstance(cached, Challenge)
                    if cached is None or self._usable_realm(cached) is None:
                        self._known = _KnownChallenge(cached, from_disk=True)
                        return self._known
            answer = await self._send(
                "ping", "GET", f"{self.registry}/v2/", exchanges, auth="none", read_body=False
            )
            known = self._read_challenge(answer)
            self._challenge_cache.save(self.registry, known.challenge)
            self._known = known
            return known

    def _read_challenge(self, answer: _Answer) -> _KnownChallenge:
        if 200 <= answer.status < 300:
            return _KnownChallenge(None)
        if answer.status == 429:
            raise self._throttled("registry ping", answer)
        if answer.status != 401:
            raise _Failure(
                State.ERROR,
                f"registry ping answered {_status_phrase(answer.status)}: is this a registry?",
                ErrorKind.HTTP,
                status=answer.status,
                retry_after=parse_retry_after(answer.header("retry-after"), self.clock.time()),
                latency_ms=answer.latency_ms,
            )
        challenge = parse_challenge(answer.header("www-authenticate"))
        if challenge is None:
            raise _Failure(
                State.ERROR,
                "registry answered 401 without a WWW-Authenticate challenge",
                ErrorKind.MALFORMED,
                status=401,
            )
        if challenge.scheme != "bearer":
            raise _Failure(
                State.ERROR,
                f"registry asks for {challenge.scheme!r} auth instead of Bearer: not Docker Hub",
                ErrorKind.MALFORMED,
                status=401,
            )
        problem = self._usable_realm(challenge)
        if problem:
            raise _Failure(State.ERROR, problem, ErrorKind.MALFORMED, status=401)
        return _KnownChallenge(challenge)

    def _usable_realm(self, challenge: Challenge) -> str | None:
        """Why the challenge's token realm must not be used, or None if it is fine."""
        realm = challenge.realm
        if not realm:
            return "registry challenge has no token realm"
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"registry challenge's realm {one_line(realm, 80)!r} is not an http(s) URL"
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            return f"registry challenge sends credentials to plain http ({parts.hostname}): refused"
        return None

    async def _token(
        self, target: Target, known: _KnownChallenge, exchanges: list[Exchange]
    ) -> tuple[str, bool]:
        """A token for `target`: the cached one while it is good, else a new one."""
        key = target.cache_key
        lock = self._token_locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and self.clock.time() < cached.reuse_until:
                return cached.grant.token, False
            grant, _ = await self._fetch_token(target, known, exchanges)
            return grant.token, True

    async def _fetch_token(
        self, target: Target, known: _KnownChallenge, exchanges: list[Exchange]
    ) -> tuple[TokenGrant, _Answer]:
        challenge = known.challenge
        assert challenge is not None and challenge.realm is not None
        params = {"scope": f"repository:{self.repository}:pull"}
        if challenge.service:
            params = {"service": challenge.service, **params}
        creds = target.credentials
        if creds is not None:
            register_secret(f"secret:{target.label}", creds.secret)
        answer = await self._send(
            "token",
            "GET",
            challenge.realm,
            exchanges,
            params=params,
            basic=(creds.username, creds.secret) if creds else None,
            auth=f"basic ({creds.username})" if creds else "none",
        )
        if answer.status == 200:
            try:
                grant = parse_token_response(answer.body)
            except TokenParseError as exc:
                raise _Failure(
                    State.ERROR,
                    str(exc),
                    ErrorKind.MALFORMED,
                    status=200,
                    latency_ms=answer.latency_ms,
                ) from None
            register_secret(f"token:{target.cache_key}", grant.token)
            now = self.clock.time()
            self._tokens[target.cache_key] = _CachedToken(
                grant=grant, obtained_at=now, reuse_until=now + grant.cache_lifetime()
            )
            return grant, answer
        self._tokens.pop(target.cache_key, None)
        said = _error_detail(answer.body)
        if answer.status == 401:
            what = "" if creds else "anonymous token refused: "
            raise _Failure(
                State.AUTH_FAILED,
                f"{what}{said or '401 Unauthorized, no reason given'}",
                status=401,
                latency_ms=answer.latency_ms,
            )
        if answer.status == 429:
            raise self._throttled("token endpoint", answer)
        raise _Failure(
            State.ERROR,
            f"token endpoint answered {_status_phrase(answer.status)}"
            + (f": {said}" if said else ""),
            ErrorKind.HTTP,
            status=answer.status,
            retry_after=parse_retry_after(answer.header("retry-after"), self.clock.time()),
            latency_ms=answer.latency_ms,
        )

    async def _head(self, token: str | None, exchanges: list[Exchange]) -> _Answer:
        headers = {"Accept": MANIFEST_ACCEPT}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        answer = await self._send(
            "head",
            "HEAD",
            self.manifest_url,
            exchanges,
            headers=headers,
            auth="bearer" if token else "none",
            read_body=False,
        )
        return answer

    def _throttled(self, where: str, answer: _Answer) -> _Failure:
        retry_after = parse_retry_after(answer.header("retry-after"), self.clock.time())
        body = answer.body[:200].decode("utf-8", "replace")
        abuse = "HAP429" in body
        what = "the abuse limit (HAP429), not the pull quota" if abuse else "rate-limited (429)"
        wait = f"; retry after {retry_after:.0f} s" if retry_after else ""
        return _Failure(
            State.THROTTLED,
            f"{where}: {what}{wait}",
            status=429,
            retry_after=retry_after,
            latency_ms=answer.latency_ms,
        )

    async def _send(
        self,
        step: str,
        method: str,
        url: str,
        exchanges: list[Exchange],
        *,
        auth: str,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        basic: tuple[str, str] | None = None,
        read_body: bool = True,
    ) -> _Answer:
        """One request under an overall deadline, recorded in `exchanges` (redacted).

        Transport failures (and over-large answers) become `_Failure`s naming the step.
        """
        request = self._http.build_request(method, url, headers=headers, params=params)
        shown_url = redact(unquote(str(request.url)))
        started = self.clock.monotonic()
        try:
            async with asyncio.timeout(self.timeouts.total):
                response = await self._http.send(
                    request, stream=True, auth=httpx.BasicAuth(*basic) if basic else None
                )
                try:
                    body = await self._read_body(response) if read_body else b""
                    if method == "HEAD":
                        # No body follows a HEAD, but closing an answer whose end was never
                        # read closes its connection: read the end, keep the connection.
                        await response.aread()
                finally:
                    await response.aclose()
        except _Failure as failure:  # an over-large answer: say which step it came from
            exchanges.append(Exchange(step, method, shown_url, auth, error=failure.detail))
            failure.detail = one_line(f"{_STEP_NAMES[step]}: {failure.detail}")
            raise
        except Exception as exc:  # CancelledError is a BaseException and propagates
            kind, reason = classify_transport_error(exc)
            exchanges.append(Exchange(step, method, shown_url, auth, error=one_line(reason)))
            latency = (self.clock.monotonic() - started) * 1000
            raise _Failure(
                State.ERROR, f"{_STEP_NAMES[step]}: {reason}", kind, latency_ms=latency
            ) from None
        latency = (self.clock.monotonic() - started) * 1000
        raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
        exchange = Exchange(
            step=step,
            method=method,
            url=shown_url,
            auth=auth,
            status=response.status_code,
            latency_ms=latency,
            headers=tuple(redact_headers(raw_headers)),
        )
        exchanges.append(exchange)
        return _Answer(response.status_code, raw_headers, body, latency, exchange)

    async def _read_body(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise _Failure(
                State.ERROR,
                f"answer of {int(declared):,} bytes is larger than any sane one",
                ErrorKind.MALFORMED,
                status=response.status_code,
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY:
                raise _Failure(
                    State.ERROR,
                    f"answer larger than {MAX_BODY // 1024} KiB: refused",
                    ErrorKind.MALFORMED,
                    status=response.status_code,
                )
            chunks.append(chunk)
        return b"".join(chunks)


_STEP_NAMES = {"ping": "registry ping", "token": "token request", "head": "HEAD probe"}
