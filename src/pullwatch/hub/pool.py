"""Connection pools kept small, so a request costs the same CPU at any concurrency.

httpcore's pool (1.0.x) re-examines all of its connections twice per request - and, for each
idle one, all of them again - polling every idle socket on the way (encode/httpcore#1035): the
CPU a request costs grows with the square of the pool's size, about 8 ms per request at 64
connections on a small machine. `ShardedTransport` puts several small pools behind one
transport and sends each request through the least busy one, so the bookkeeping stays that of
a small pool however many probes run at once, and keep-alive connections are still reused.

Shards and the TLS context are created on first use and shared: a plain-http (loopback)
registry never pays for loading a trust store, and a TLS one loads it once, not once per shard.
The context comes from `hub/tls.py` (the system trust store, SSL_CERT_FILE, --ca-cert).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable

import httpx

from pullwatch.hub.tls import TrustConfig, build_context, unverified_context

# What to verify https with: a context, a function that builds one (called on the first https
# request), True for `hub/tls.py`'s default (the system store and the environment), or False.
Verify = ssl.SSLContext | Callable[[], ssl.SSLContext] | bool

SHARD_CONNECTIONS = 8  # connections per pool: past ~16 the pool's own bookkeeping dominates


def shard_count(max_concurrency: int, per_shard: int = SHARD_CONNECTIONS) -> int:
    """Enough shards for `max_concurrency` requests in flight without queueing in a pool."""
    return max(1, -(-max(1, max_concurrency) // per_shard))


def make_context(verify: Verify, trust_env: bool = True) -> ssl.SSLContext:
    """The context `verify` stands for (see `Verify`); may raise `tls.CaCertError`."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        return unverified_context()
    if verify is True:
        return build_context(TrustConfig.from_environment() if trust_env else TrustConfig())
    return verify()


class _Released(httpx.AsyncByteStream):
    """A response body that tells its shard when the answer is closed (its connection is free)."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class ShardedTransport(httpx.AsyncBaseTransport):
    """Small `httpx.AsyncHTTPTransport` pools behind one transport (see the module).

    Each scheme has its own `shards`: https ones verify with the TLS context (built on first
    use, once, from `verify`), plain-http ones get a context that trusts nothing, never used.
    """

    def __init__(
        self,
        *,
        shards: int,
        connections_per_shard: int = SHARD_CONNECTIONS,
        verify: Verify = True,
        trust_env: bool = True,
    ) -> None:
        self._count = max(1, shards)
        self._size = max(1, connections_per_shard)
        self._verify = verify
        self._trust_env = trust_env
        self._context = verify if isinstance(verify, ssl.SSLContext) else None
        self._shards: dict[str, list[httpx.AsyncHTTPTransport]] = {}
        self._busy: dict[str, list[int]] = {}

    @property
    def shards(self) -> int:
        return self._count

    @property
    def in_flight(self) -> int:
        return sum(sum(busy) for busy in self._busy.values())

    def _context_for(self, scheme: str) -> ssl.SSLContext:
        if scheme != "https":
            return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies against no CA: trusts none
        if self._context is None:
            self._context = make_context(self._verify, self._trust_env)
        return self._context

    def _group(self, scheme: str) -> tuple[list[httpx.AsyncHTTPTransport], list[int]]:
        shards = self._shards.get(scheme)
        if shards is None:
            context = self._context_for(scheme)
            limits = httpx.Limits(max_connections=self._size, max_keepalive_connections=self._size)
            shards = self._shards[scheme] = [
                httpx.AsyncHTTPTransport(verify=context, limits=limits, trust_env=self._trust_env)
                for _ in range(self._count)
            ]
            self._busy[scheme] = [0] * self._count
        return shards, self._busy[scheme]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        shards, busy = self._group(request.url.scheme)
        index = min(range(len(busy)), key=busy.__getitem__)
        busy[index] += 1

        def release() -> None:
            busy[index] -= 1

        try:
            response = await shards[index].handle_async_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Released(response.stream, release),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for shards in self._shards.values():
            for shard in shards:
                await shard.aclose()
