"""HubClient: challenge discovery, token cache, HEAD probe, and every failure classified.

One `httpx.AsyncClient` (pooled, proxy settings from the environment, https verified against
the system trust store, SSL_CERT_FILE or --ca-cert: `hub/tls.py`) serves every identity. A
probe is: the registry's challenge (discovered once per registry and cached, also on disk), a
token per identity (cached until ~10 s before it expires), and one HEAD of the probe
repository's manifest. A manifest is never fetched with GET: a GET is a pull.

Nothing raises past `probe()` / `check_token()`: every outcome, including a dropped connection or
a hostile answer, becomes a `Reading` with a state and a one-line, redacted reason.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies

import httpx

from pullwatch import __version__
from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.hub.challenges import ChallengeCache
from pullwatch.hub.errors import classify_transport_error, error_detail, status_phrase
from pullwatch.hub.headers import (
    Challenge,
    RateLimitHeaders,
    header_lookup,
    parse_challenge,
    parse_retry_after,
)
from pullwatch.hub.pacing import Pacer
from pullwatch.hub.pool import ShardedTransport, Verify, make_context, shard_count
from pullwatch.hub.tls import TrustConfig, build_context
from pullwatch.hub.token import TokenClaims, TokenGrant, TokenParseError, parse_token_response
from pullwatch.hub.urls import (
    DEFAULT_REGISTRY,
    DEFAULT_REPOSITORY,
    ManifestRef,
    is_docker_hub,
    is_loopback,
    normalize_registry,
    parse_manifest_ref,
)
from pullwatch.hub.verdict import reading_from_head
from pullwatch.reading import ErrorKind, Reading, State, Step
from pullwatch.redact import one_line, redact_headers, register_secret

if TYPE_CHECKING:
    import ssl

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
DOCKER_HUB_SERVICE = "registry.docker.io"  # the `service` of Docker Hub's token challenge

# The request `_send` took a pacing token for; any other request httpx sends for it (a
# redirect) takes its own in the request hook. Per task, so concurrent probes do not mix.
_PACED: contextvars.ContextVar[httpx.Request | None] = contextvars.ContextVar(
    "pullwatch_paced", default=None
)


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

    step: Step
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
    docker_hub: bool = True  # Docker Hub (or speaks as it): wording follows (advice.py)


class _Failure(Exception):
    def __init__(
        self,
        state: State,
        detail: str,
        kind: ErrorKind | None = None,
        *,
        step: Step | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        latency_ms: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.state = state
        self.detail = one_line(detail)
        self.kind = kind
        self.step = step
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


class HubClient:
    """Probes identities against one registry and one manifest. An async context manager."""

    def __init__(
        self,
        registry: str = DEFAULT_REGISTRY,
        repository: str | ManifestRef = DEFAULT_REPOSITORY,
        *,
        clock: Clock = SYSTEM_CLOCK,
        timeouts: Timeouts | None = None,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        challenge_cache: ChallengeCache | None = None,
        verify: Verify = True,
        trust: TrustConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_token: Callable[[str], None] | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        """`trust` (the system store, SSL_CERT_FILE, --ca-cert: `hub/tls.py`) is what `verify`
        True means; the TLS context is built on the first https request, never for http.
        `pacer`: every request (ping, token, HEAD, a redirect) takes a token from it first;
        None: the default pace (`hub/pacing.py`), in real time whatever `clock` is."""
        self.registry = normalize_registry(registry)
        self._on_token = on_token  # every token issued (the ledger remembers its fingerprint)
        self.manifest = (
            repository
            if isinstance(repository, ManifestRef)
            else parse_manifest_ref(repository, self.registry)
        )
        self._hub_url = is_docker_hub(self.registry)
        self.clock = clock
        self.timeouts = timeouts or Timeouts()
        self.pacer = pacer if pacer is not None else Pacer()
        self._semaphore = asyncio.Semaphore(max(1, max_concurrency))
        self._challenge_cache = challenge_cache or ChallengeCache(None, clock)
        self._known: _KnownChallenge | None = None
        self._discover_lock = asyncio.Lock()
        self._tokens: dict[str, _CachedToken] = {}
        self._token_locks: dict[str, asyncio.Lock] = {}
        t = self.timeouts
        if verify is True and trust is not None:
            chosen = trust

            def verify_with_trust() -> ssl.SSLContext:
                return build_context(chosen)

            verify = verify_with_trust
        if transport is None:  # small pools: CPU per request stays flat (hub/pool.py)
            transport = ShardedTransport(shards=shard_count(max_concurrency), verify=verify)
        # httpx sends requests that match a proxy variable through its own proxy transports,
        # which need the context up front: built now only for https, when such a variable is set.
        proxied = self.registry.startswith("https://") and any(
            getproxies().get(scheme) for scheme in ("https", "all")
        )
        client_verify: ssl.SSLContext | bool = make_context(verify) if proxied else True
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=t.total),
            limits=httpx.Limits(  # for proxy transports from the environment only
                max_connections=max(2, max_concurrency * 2),
                max_keepalive_connections=max(1, max_concurrency),
            ),
            follow_redirects=True,
            max_redirects=5,
            trust_env=True,
            verify=client_verify,
            transport=transport,
            headers={"User-Agent": f"pullwatch/{__version__} (+HEAD-only rate-limit checks)"},
            event_hooks={"request": [self._pace_redirect]},
        )

    @property
    def docker_hub(self) -> bool:
        """Docker Hub, by its URL or by its token service (`registry.docker.io`): only Docker
        Hub has Hub's pull limit and wording (a stand-in for it, like the simulator, says so
        the same way; a mirror in front of it does not)."""
        if self._hub_url:
            return True
        known = self._known
        return (
            known is not None
            and known.challenge is not None
            and (known.challenge.service == DOCKER_HUB_SERVICE)
        )

    @property
    def repository(self) -> str:
        """The probed manifest as the user would write it: `name:tag` or `name@digest`."""
        return self.manifest.display

    @property
    def manifest_url(self) -> str:
        return f"{self.registry}{self.manifest.path}"

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
                unexpected = _Failure(State.ERROR, f"probe failed: {reason}", kind)
                return ProbeResult(self._failed_reading(target, unexpected), tuple(exchanges))

    async def check_token(self, target: Target) -> TokenResult:
        """A fresh token request (bypassing the cache, then refreshing it). Never raises."""
        exchanges: list[Exchange] = []
        async with self._semaphore:
            try:
                known = await self._discover(exchanges)
                if known.challenge is None:
                    return TokenResult(
                        label=target.label,
                        username=target.username,
                        ok=True,
                        state=State.OK,
                        detail="this registry asks for no authentication: no token is needed "
                        "(HEAD probes go without one)",
                        error_kind=None,
                        exchanges=tuple(exchanges),
                        docker_hub=self.docker_hub,
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
                    docker_hub=self.docker_hub,
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
                    docker_hub=self.docker_hub,
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
            docker_hub=self.docker_hub,
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
                stale = failure.kind in (
                    ErrorKind.CONNECT,
                    ErrorKind.RESET,
                    ErrorKind.DNS,
                    ErrorKind.HTTP,
                )
                if not (known.from_disk and stale):
                    raise
                # A challenge remembered from an earlier run may be stale: discover once more.
                known = await self._discover(exchanges, force=True)
                if known.challenge is not None:
                    token, fresh = await self._token(target, known, exchanges)
        answer = await self._head(token, exchanges)
        if answer.status == 401 and token is None:
            # The ping needed no auth but the manifest does: learn the challenge from the 401.
            learned = self._read_challenge(answer, Step.HEAD)
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
            target.label,
            target.username,
            checked_at=self.clock.time(),
            status=answer.status,
            headers=answer.headers,
            latency_ms=answer.latency_ms,
            manifest=self.manifest,
            registry=self.registry,
            docker_hub=self.docker_hub,
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
            step=failure.step,
            registry=self.registry,
            repository=self.manifest.display,
            docker_hub=self.docker_hub,
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
                Step.PING, "GET", f"{self.registry}/v2/", exchanges, auth="none", read_body=False
            )
            known = self._read_challenge(answer, Step.PING)
            self._challenge_cache.save(self.registry, known.challenge)
            self._known = known
            return known

    def _read_challenge(self, answer: _Answer, step: Step) -> _KnownChallenge:
        if 200 <= answer.status < 300:
            return _KnownChallenge(None)
        if answer.status == 429:
            raise self._throttled(step, answer)
        if answer.status != 401:
            raise _Failure(
                State.ERROR,
                f"{step.phrase} answered {status_phrase(answer.status)}: is this a registry?",
                ErrorKind.HTTP,
                step=step,
                status=answer.status,
                retry_after=parse_retry_after(answer.header("retry-after"), self.clock.time()),
                latency_ms=answer.latency_ms,
            )
        challenge = parse_challenge(answer.header("www-authenticate"))
        if challenge is None:
            raise _Failure(
                State.ERROR,
                f"{step.phrase}: 401 without a WWW-Authenticate challenge",
                ErrorKind.MALFORMED,
                step=step,
                status=401,
            )
        if challenge.scheme != "bearer":
            raise _Failure(
                State.ERROR,
                f"{step.phrase}: the registry asks for {one_line(challenge.scheme, 20)!r} "
                "authentication, not token (bearer) authentication: pullwatch supports token "
                "auth only",
                ErrorKind.MALFORMED,
                step=step,
                status=401,
            )
        problem = self._usable_realm(challenge)
        if problem:
            raise _Failure(State.ERROR, problem, ErrorKind.MALFORMED, step=step, status=401)
        return _KnownChallenge(challenge)

    def _usable_realm(self, challenge: Challenge) -> str | None:
        """Why the challenge's token realm must not be used, or None if it is fine."""
        realm = challenge.realm
        if not realm:
            return "registry challenge has no token realm"
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"registry challenge's realm {one_line(realm, 80)!r} is not an http(s) URL"
        if parts.scheme == "http" and not is_loopback(parts.hostname):
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
        creds = target.credentials
        params: dict[str, str] = {}
        if challenge.service:
            params["service"] = challenge.service
        params["scope"] = self.manifest.scope
        if creds is not None:  # as docker and skopeo send it; some token servers use it
            params["account"] = creds.username
            register_secret(f"secret:{target.label}", creds.secret)
        answer = await self._send(
            Step.TOKEN,
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
                    step=Step.TOKEN,
                    status=200,
                    latency_ms=answer.latency_ms,
                ) from None
            register_secret(f"token:{target.cache_key}", grant.token)
            if self._on_token is not None:
                self._on_token(grant.token)
            now = self.clock.time()
            self._tokens[target.cache_key] = _CachedToken(
                grant=grant, obtained_at=now, reuse_until=now + grant.cache_lifetime()
            )
            return grant, answer
        self._tokens.pop(target.cache_key, None)
        said = error_detail(answer.body)
        if answer.status == 401:
            what = "login refused" if creds else "anonymous token refused"
            raise _Failure(
                State.AUTH_FAILED,
                f"{said or '401 Unauthorized, no reason given'} ({what})",
                step=Step.TOKEN,
                status=401,
                latency_ms=answer.latency_ms,
            )
        if answer.status == 429:
            raise self._throttled(Step.TOKEN, answer)
        phrase = status_phrase(answer.status)
        raise _Failure(
            State.ERROR,
            f"token request answered {phrase}"
            + (f": {said}" if said and said not in phrase else ""),
            ErrorKind.HTTP,
            step=Step.TOKEN,
            status=answer.status,
            retry_after=parse_retry_after(answer.header("retry-after"), self.clock.time()),
            latency_ms=answer.latency_ms,
        )

    async def _head(self, token: str | None, exchanges: list[Exchange]) -> _Answer:
        headers = {"Accept": MANIFEST_ACCEPT}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return await self._send(
            Step.HEAD,
            "HEAD",
            self.manifest_url,
            exchanges,
            headers=headers,
            auth="bearer" if token else "none",
            read_body=False,
        )

    def _throttled(self, step: Step, answer: _Answer) -> _Failure:
        retry_after = parse_retry_after(answer.header("retry-after"), self.clock.time())
        body = answer.body[:200].decode("utf-8", "replace")
        abuse = "HAP429" in body
        what = "the abuse limit (HAP429), not the pull quota" if abuse else "rate-limited (429)"
        wait = f"; retry after {retry_after:.0f} s" if retry_after else ""
        return _Failure(
            State.THROTTLED,
            f"{step.phrase}: {what}{wait}",
            step=step,
            status=429,
            retry_after=retry_after,
            latency_ms=answer.latency_ms,
        )

    async def _send(
        self,
        step: Step,
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
        shown_url = one_line(unquote(str(request.url)), 400)
        await self.pacer.acquire()  # before the clock starts: a wait for the pace is no latency
        _PACED.set(request)
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
            failure.detail = one_line(f"{step.phrase}: {failure.detail}")
            failure.step = step
            raise
        except Exception as exc:  # CancelledError is a BaseException and propagates
            kind, reason = classify_transport_error(exc)
            exchanges.append(Exchange(step, method, shown_url, auth, error=one_line(reason)))
            latency = (self.clock.monotonic() - started) * 1000
            raise _Failure(
                State.ERROR, f"{step.phrase}: {reason}", kind, step=step, latency_ms=latency
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

    async def _pace_redirect(self, request: httpx.Request) -> None:
        """httpx's request hook: a request `_send` did not pace itself (a redirect it follows)
        takes its token here."""
        if _PACED.get() is not request:
            await self.pacer.acquire()

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
