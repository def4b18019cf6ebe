"""The polling engine: one reading per identity per round, with backoff and no retry storms.

The monitor owns the per-identity bookkeeping that makes polling safe against a registry that
rate-limits and locks out: 429s and 5xx back off exponentially with jitter (honouring
`Retry-After`), bad credentials stop the identity until the user edits it or asks again - in
this process and, through `RefusalMemory`, in every other one - and every round probes all
identities concurrently through one shared `HubClient`, whose pacer (`hub/pacing.py`) every
request passes. A long-running front end (the dashboard, `serve`) sets `spread` to its interval:
then a round too big for one burst of the pacer starts its probes evenly over half the interval
instead of all at once; a one-shot `check` leaves it at 0 and goes as fast as the pacer allows.

It knows nothing of the TUI or the CLI: they call `round()` / `probe()` / `check()` and render
the `Reading`s it returns; sinks (the history database) receive every new reading.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.durations import iso_time
from pullwatch.hub.client import Credentials, HubClient, ProbeResult, Target, TokenResult
from pullwatch.hub.pacing import Pacer
from pullwatch.identities.model import Identity
from pullwatch.identities.secrets import KeyringStatus, SecretLookup
from pullwatch.reading import ErrorKind, Reading, State, Step
from pullwatch.refusals import RefusalMemory

SecretSource = Callable[[Identity], SecretLookup]
# A whole round's secrets in one keyring batch, by label (SecretStore.get_many); a label left
# out is read on its own with the SecretSource.
SecretsSource = Callable[[Sequence[Identity]], Mapping[str, SecretLookup]]
ReadingSink = Callable[[Reading], None]

log = logging.getLogger(__name__)

# Re-read the keyring whenever a new token is due (every ~5 min on Docker Hub), and at least
# this often: an entry wiped or changed under a running pullwatch is noticed at the next renewal.
SECRET_CACHE_SECONDS = 600.0

# A probe is at most a token request and a HEAD (a cached token: the HEAD alone): a round of
# identities * this many requests fits in one burst of the pacer and is not spread.
REQUESTS_PER_PROBE = 2
# A spread round starts its probes evenly over this share of the interval: even load, and the
# round is over well before the next one is due.
SPREAD_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff with jitter for 429 and 5xx-like failures, honouring Retry-After."""

    base: float = 15.0
    factor: float = 2.0
    cap: float = 900.0
    jitter: float = 0.2  # +/- this fraction
    # A Retry-After is honoured up to this long: a broken or hostile server cannot silence an
    # identity for a day (the user can always refresh it by hand).
    max_retry_after: float = 3600.0

    def delay(self, failures: int, retry_after: float | None, rng: random.Random) -> float:
        exponential = min(self.cap, self.base * self.factor ** max(failures - 1, 0))
        jittered = exponential * (1 + rng.uniform(-self.jitter, self.jitter))
        return max(jittered, self.honoured(retry_after))

    def honoured(self, retry_after: float | None) -> float:
        """How long a Retry-After keeps an identity from its next scheduled probe."""
        if retry_after is None or retry_after != retry_after:  # None or NaN
            return 0.0
        return min(max(retry_after, 0.0), self.max_retry_after)


@dataclass(slots=True)
class _Track:
    failures: int = 0
    not_before: float = 0.0  # wall clock: no scheduled probe before this
    halted: bool = False  # bad credentials: no scheduled probe until edited or forced


@dataclass(slots=True)
class _CachedSecret:
    lookup: SecretLookup
    read_at: float


@dataclass(slots=True)
class Monitor:
    """Probes a set of identities; remembers the latest reading and the backoff of each."""

    client: HubClient
    secret_for: SecretSource
    clock: Clock = SYSTEM_CLOCK
    policy: BackoffPolicy = field(default_factory=BackoffPolicy)
    refusals: RefusalMemory = field(default_factory=lambda: RefusalMemory(None))
    retry_auth: bool = False  # --retry-auth: try logins that were refused before
    sinks: list[ReadingSink] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    secrets_for: SecretsSource | None = None
    spread: float = 0.0  # the interval a scheduled round may be spread over; 0: never spread
    _identities: dict[str, Identity] = field(default_factory=dict)
    _latest: dict[str, Reading] = field(default_factory=dict)
    _tracks: dict[str, _Track] = field(default_factory=dict)
    _secrets: dict[str, _CachedSecret] = field(default_factory=dict)
    _starts: Pacer | None = None

    # -- the identity set --------------------------------------------------------------------

    def set_identities(self, identities: Iterable[Identity]) -> None:
        """Replace the identity set. A changed identity starts afresh (backoff and halt reset)."""
        new = {i.label: i for i in identities}
        for label, identity in new.items():
            old = self._identities.get(label)
            if old != identity:
                self._tracks.pop(label, None)
                self._secrets.pop(label, None)
        for label in set(self._identities) - set(new):
            self._tracks.pop(label, None)
            self._secrets.pop(label, None)
            self._latest.pop(label, None)
        self._identities = new
        now = self.clock.time()
        for label, identity in new.items():
            if label not in self._latest or self._latest[label].username != identity.username:
                self._latest[label] = Reading.unknown(label, identity.username, now)

    def forget_secret(self, label: str) -> None:
        """The secret changed in the keyring: read it again before the next token."""
        self._secrets.pop(label, None)

    @property
    def identities(self) -> list[Identity]:
        return list(self._identities.values())

    def latest(self, label: str) -> Reading | None:
        return self._latest.get(label)

    def readings(self) -> list[Reading]:
        return [self._latest[label] for label in self._identities if label in self._latest]

    # -- scheduling state --------------------------------------------------------------------

    def next_attempt_at(self, label: str) -> float | None:
        """When backoff next allows a scheduled probe (None: no backoff in force)."""
        track = self._tracks.get(label)
        if track is None or track.halted or track.not_before <= self.clock.time():
            return None
        return track.not_before

    def is_halted(self, label: str) -> bool:
        track = self._tracks.get(label)
        return bool(track and track.halted)

    def due(self, label: str) -> bool:
        """Would a scheduled round probe this identity now?"""
        track = self._tracks.get(label)
        if track is None:
            return True
        return not track.halted and track.not_before <= self.clock.time()

    # -- probing -----------------------------------------------------------------------------

    async def round(self, labels: Sequence[str] | None = None) -> list[Reading]:
        """Probe every due identity (or those in `labels`) concurrently; latest readings back."""
        chosen = [
            self._identities[lb] for lb in (labels or self._identities) if lb in self._identities
        ]
        secrets = await self.round_secrets(chosen)
        await asyncio.gather(
            *(self.probe(identity, secret=secrets.get(identity.label)) for identity in chosen)
        )
        return [self._latest[identity.label] for identity in chosen]

    async def probe(
        self,
        identity: Identity,
        *,
        ignore_backoff: bool = False,
        secret: SecretLookup | None = None,
    ) -> Reading:
        """A scheduled probe: skipped (latest reading returned) while backing off or halted.

        `ignore_backoff` (the user asked for a refresh) skips the backoff timer, never a halt:
        a login that failed is retried only when the user asks for that identity by name.
        """
        due = not self.is_halted(identity.label) if ignore_backoff else self.due(identity.label)
        if not due:
            return self._latest.get(identity.label) or Reading.unknown(
                identity.label, identity.username, self.clock.time()
            )
        starts = None if ignore_backoff else self.start_pacer()
        if starts is not None:
            await starts.acquire()  # a large scheduled round: this probe's turn
        result = await self.check(identity, secret=secret)
        return result.reading

    def start_pacer(self) -> Pacer | None:
        """What spreads a scheduled round: one probe start every `SPREAD_SHARE * spread / n`
        seconds, for n identities; None when rounds go at once (no `spread`, or a round fits in
        one burst of the client's pacer). In the pacer's time, so tests can drive both."""
        count = len(self._identities)
        pacer = self.client.pacer
        if self.spread <= 0 or count * REQUESTS_PER_PROBE <= pacer.capacity:
            return None
        rate = count / (self.spread * SPREAD_SHARE)
        if self._starts is None or self._starts.max_rate != rate:
            self._starts = Pacer(rate, 1, margin=0, clock=pacer.clock, sleep=pacer.sleep)
        return self._starts

    def spread_time(self) -> float:
        """Seconds a scheduled round spends starting its probes on purpose (0: all at once);
        a front end that schedules rounds takes it out of the pause before the next one."""
        return 0.0 if self.start_pacer() is None else self.spread * SPREAD_SHARE

    async def check(
        self,
        identity: Identity,
        *,
        retry_auth: bool = False,
        secret: SecretLookup | None = None,
    ) -> ProbeResult:
        """Probe now, whatever the backoff says (the user asked): the full result.

        A login refused before (by this or another process) is not sent again unless
        `retry_auth` (the user asked for this identity by name) or the monitor's `retry_auth`.
        `secret`: the identity's keyring lookup when the caller has just read it (a round's
        batch); otherwise it is read here, unless the cached one still serves.
        """
        target, failure = await self._target(identity, retry_auth or self.retry_auth, secret)
        if failure is not None:
            result = ProbeResult(failure, ())
        else:
            assert target is not None
            result = await self.client.probe(target)
            self._remember_refusal(target, result.reading)
        self._record(identity, result.reading)
        return result

    async def check_token(self, identity: Identity) -> TokenResult | Reading:
        """A fresh token request for `identity` (the user asked: refusals do not stop it);
        a Reading when its secret is unavailable."""
        target, failure = await self._target(identity, retry_auth=True)
        if failure is not None:
            return failure
        assert target is not None
        result = await self.client.check_token(target)
        creds = target.credentials
        if creds is not None and result.state is State.AUTH_FAILED:
            self.refusals.remember(
                identity.label,
                self.client.registry,
                creds.username,
                creds.secret,
                self.clock.time(),
                result.detail or "",
            )
        elif creds is not None and result.ok:
            self.refusals.forget(identity.label, self.client.registry)
        return result

    def _remember_refusal(self, target: Target, reading: Reading) -> None:
        """A login the token endpoint refused is remembered; a login that worked, forgotten."""
        creds = target.credentials
        if creds is None:
            return
        if reading.state is State.AUTH_FAILED and reading.step is Step.TOKEN:
            self.refusals.remember(
                target.label,
                self.client.registry,
                creds.username,
                creds.secret,
                reading.checked_at,
                reading.detail or "",
            )
        elif reading.step is Step.HEAD and reading.state is not State.AUTH_FAILED:
            self.refusals.forget(target.label, self.client.registry)

    async def _target(
        self, identity: Identity, retry_auth: bool = False, fresh: SecretLookup | None = None
    ) -> tuple[Target | None, Reading | None]:
        if identity.username is None:
            return Target(identity.label, None), None
        lookup = await self._secret(identity, fresh)
        if lookup.status is KeyringStatus.OK and lookup.secret:
            creds = Credentials(identity.username, lookup.secret)
            refusal = None if retry_auth else self._refused(identity, creds)
            if refusal is not None:
                return None, refusal
            return Target(identity.label, creds), None
        if lookup.status is KeyringStatus.OK:
            detail = "no secret stored in the keyring for this identity: edit it to add one"
        else:
            detail = f"secret unavailable: {lookup.message}"
        reading = Reading(
            label=identity.label,
            username=identity.username,
            checked_at=self.clock.time(),
            state=State.ERROR,
            error_kind=ErrorKind.SECRET,
            detail=detail,
            registry=self.client.registry,
            repository=self.client.repository,
            docker_hub=self.client.docker_hub,
        )
        return None, reading

    def _refused(self, identity: Identity, creds: Credentials) -> Reading | None:
        """An `auth_failed` reading, without a request, for a login refused before."""
        refusal = self.refusals.refused(
            identity.label, self.client.registry, creds.username, creds.secret
        )
        if refusal is None:
            return None
        said = f" ({refusal.detail})" if refusal.detail else ""
        return Reading(
            label=identity.label,
            username=identity.username,
            checked_at=self.clock.time(),
            state=State.AUTH_FAILED,
            detail=f"login refused at {iso_time(refusal.at)}{said}; not retried: fix the token "
            "(edit the identity) or pass --retry-auth",
            registry=self.client.registry,
            repository=self.client.repository,
            docker_hub=self.client.docker_hub,
        )

    def _cached_secret(self, identity: Identity) -> SecretLookup | None:
        """The secret read earlier, while it still serves (fresh, and its token still live)."""
        cached = self._secrets.get(identity.label)
        if (
            cached is not None
            and self.clock.time() - cached.read_at < SECRET_CACHE_SECONDS
            and identity.username is not None
            and cached.lookup.secret
            and self.client.has_live_token(
                Target(identity.label, Credentials(identity.username, cached.lookup.secret))
            )
        ):
            return cached.lookup
        return None

    async def round_secrets(self, identities: Sequence[Identity]) -> Mapping[str, SecretLookup]:
        """One keyring batch for the identities this round probes that must read their secret
        (`round` does it; a caller that runs the probes itself passes each its `secret`).

        Never raises: without a batch source, or if it fails, each reads its own.
        """
        if self.secrets_for is None:
            return {}
        needed = [
            identity
            for identity in identities
            if identity.username is not None
            and self.due(identity.label)
            and self._cached_secret(identity) is None
        ]
        if len(needed) < 2:
            return {}
        try:
            return await asyncio.to_thread(self.secrets_for, needed)
        except Exception:
            log.exception("reading a round's secrets in one batch failed; reading each on its own")
            return {}

    async def _secret(self, identity: Identity, fresh: SecretLookup | None = None) -> SecretLookup:
        cached = self._cached_secret(identity)
        if cached is not None:
            return cached
        now = self.clock.time()
        lookup = fresh if fresh is not None else await asyncio.to_thread(self.secret_for, identity)
        if lookup.status is KeyringStatus.OK and lookup.secret:
            self._secrets[identity.label] = _CachedSecret(lookup, now)
        else:
            self._secrets.pop(identity.label, None)
        return lookup

    def _record(self, identity: Identity, reading: Reading) -> None:
        track = self._tracks.setdefault(identity.label, _Track())
        now = self.clock.time()
        if reading.state is State.AUTH_FAILED:
            # Docker Hub locks a username out after repeated bad logins: never retry by itself.
            track.halted = True
            track.failures += 1
        elif reading.state in (State.THROTTLED, State.ERROR) and reading.error_kind not in (
            ErrorKind.SECRET,
            ErrorKind.NOT_FOUND,  # a configuration error: checked each round, no backoff
        ):
            track.failures += 1
            track.not_before = now + self.policy.delay(
                track.failures, reading.retry_after, self.rng
            )
            track.halted = False
        else:
            # A measurement (a HEAD 429 too) ends the backoff, but its Retry-After still holds.
            track.failures = 0
            track.not_before = now + self.policy.honoured(reading.retry_after)
            track.halted = False
        if identity.label in self._identities:
            self._latest[identity.label] = reading
        for sink in self.sinks:
            try:
                sink(reading)
            except Exception:  # a sink (history) failing must not stop the monitoring
                log.exception("reading sink %r failed", sink)

    async def run(
        self,
        interval: float,
        stop: asyncio.Event,
        on_round: Callable[[list[Reading]], None] | None = None,
    ) -> None:
        """Rounds until `stop` is set; the next round starts `interval` s after the last ended
        (less the time a large round was spread over, so its identities still come round
        about once an interval)."""
        while not stop.is_set():
            spread = self.spread_time()
            readings = await self.round()
            if on_round is not None:
                on_round(readings)
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(interval - spread, 0.0))
            except TimeoutError:
                pass
