"""Pacing: a token bucket that every request to the registry passes through.

A `Pacer` promises that the registry never sees more than `burst + max_rate` requests in any
one second (and `burst + 60 * max_rate` in any minute). A request takes a token before it is
sent; the bucket refills at `max_rate` a second. A bucket of exactly `burst` tokens keeps that
promise for the times requests *leave*, but the network does not carry them all equally fast:
one on a new connection (TCP and TLS handshakes) or sent by a busy event loop arrives later
than one on a warm connection, and a window on the registry's side can then hold a few more.
So the bucket holds `margin` seconds' worth of requests less than `burst` (at least one; when
`burst` is too small for that, the rate gives way instead): any `1 + margin` seconds of sending
hold at most `burst + max_rate`, which keeps the promise on the registry's side while requests
are delayed by up to `margin` seconds more than others.

A request that finds the bucket empty reserves the next token and sleeps until it is due:
waiters are served in the order they came, and there is no lock (nothing awaits between the
look at the bucket and the reservation). A reservation whose waiter is cancelled is not given
back: a cancelled request costs a token, which only makes the pace slower, never faster.

Pacing is in real time: the `clock` (monotonic) and `sleep` are injectable for tests, which pass
a fake clock and a sleep that advances it. Pure apart from the sleep; no I/O.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from pullwatch.clock import SYSTEM_CLOCK, Clock

Sleep = Callable[[float], Awaitable[None]]

# The defaults, against Docker Hub's abuse limit: "thousands of requests of any kind per minute
# from one address or /64" (docs/protocol.md, "429 answers" and "Pacing"). Read "thousands" as
# 2,000: with these, at most BURST + 60 * MAX_RATE = 250 + 1,500 = 1,750 requests leave in any
# minute, a margin below it. 25/s sustained still carries 1,000 identities at the default 60 s
# interval (a HEAD each plus a token every ~5 minutes: ~1,200 a minute), and a burst of 250
# (243 in the bucket, less the jitter margin) lets one ordinary round of up to 121 identities
# (a token and a HEAD each) go out at once, so `check` with 100 identities never waits.
DEFAULT_MAX_RATE = 25.0  # requests per second, sustained
DEFAULT_BURST = 250  # requests at once
JITTER_MARGIN = 0.25  # seconds: how much later than others a request may reach the registry


class Pacer:
    """A token bucket: up to `burst` requests at once, `max_rate` per second sustained, and
    never more than `burst + max_rate` in any second on the registry's side (asyncio)."""

    def __init__(
        self,
        max_rate: float = DEFAULT_MAX_RATE,
        burst: int = DEFAULT_BURST,
        *,
        margin: float = JITTER_MARGIN,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not (max_rate > 0 and math.isfinite(max_rate)):
            raise ValueError(f"max_rate must be a finite number above 0 (got {max_rate!r})")
        if burst < 1:
            raise ValueError(f"burst must be 1 or more (got {burst!r})")
        if not (0 <= margin < 60):
            raise ValueError(f"margin must be 0 or more seconds, under a minute (got {margin!r})")
        self.max_rate = float(max_rate)
        self.burst = int(burst)
        self.margin = float(margin)
        # The bucket: `capacity` + `rate` * (1 + margin) <= burst + max_rate.
        self.capacity = max(1, self.burst - math.ceil(self.max_rate * self.margin))
        self.rate = min(self.max_rate, (self.burst + self.max_rate - self.capacity) / (1 + margin))
        self.clock = clock
        self.sleep = sleep
        self._tokens = float(self.capacity)  # below 0: tokens already promised to waiters
        self._updated = clock.monotonic()
        self.acquired = 0  # tokens handed out, for tests and benchmarks
        self.waited = 0.0  # seconds spent waiting, summed over all requests

    def __repr__(self) -> str:
        return f"Pacer(max_rate={self.max_rate:g}, burst={self.burst}, margin={self.margin:g})"

    def least_time(self, requests: int) -> float:
        """The fewest seconds `requests` requests take from a full bucket at this pace."""
        return max(0.0, (requests - self.capacity) / self.rate)

    def available(self) -> float:
        """Tokens in the bucket now (negative: that many are promised to waiting requests)."""
        self._refill()
        return self._tokens

    def reserve(self) -> float:
        """Take the next token: the monotonic time at which it may be used (now, or later)."""
        now = self._refill()
        self._tokens -= 1.0
        self.acquired += 1
        if self._tokens >= 0:
            return now
        return now + (-self._tokens) / self.rate

    async def acquire(self) -> float:
        """Wait for a token; the seconds waited (0.0 when one was in the bucket)."""
        due = self.reserve()
        started = now = self.clock.monotonic()
        while now < due:  # a sleep may wake a hair early: never send before the token is due
            await self.sleep(due - now)
            now = self.clock.monotonic()
        waited = now - started
        self.waited += waited
        return waited

    def _refill(self) -> float:
        now = self.clock.monotonic()
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(float(self.capacity), self._tokens + elapsed * self.rate)
            self._updated = now
        return now
