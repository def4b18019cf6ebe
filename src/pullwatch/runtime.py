"""Wiring: from flags, environment and config to a store, a client, a monitor and a policy.

The CLI and the TUI both start here, so a flag means the same thing everywhere. Precedence for
every setting: flag, then environment variable, then the config file, then the default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.durations import parse_duration
from pullwatch.hub.pacing import DEFAULT_BURST, DEFAULT_MAX_RATE
from pullwatch.hub.tls import ENV_CA_CERT, TrustConfig, check_environment, load_ca_cert
from pullwatch.hub.urls import (
    DEFAULT_REGISTRY,
    DEFAULT_REPOSITORY,
    ConfigurationError,
    ManifestRef,
    is_docker_hub,
    normalize_registry,
    parse_manifest_ref,
)
from pullwatch.identities.model import (
    SETTING_RULES,
    Config,
    Identity,
    KeyringChoiceError,
    keyring_choice,
)
from pullwatch.identities.secrets import SecretStore
from pullwatch.identities.store import IdentityStore
from pullwatch.ledger import FILE_NAME as LEDGER_FILE
from pullwatch.ledger import TokenLedger
from pullwatch.paths import Paths

# Only what building a runtime needs is imported here: the client (httpx), the monitor, the
# assessment and the keyring are imported by the methods that use them, so the dashboard paints
# before them and `identity add` never loads them (docs/design.md, "Start-up").
if TYPE_CHECKING:
    import httpx

    from pullwatch.assess import Assessment, Policy
    from pullwatch.hub.client import HubClient, ProbeResult, Timeouts, TokenResult
    from pullwatch.identities.cryptfile import Unlocker
    from pullwatch.monitor import Monitor
    from pullwatch.reading import Reading
    from pullwatch.recent import RecentHistory
    from pullwatch.refusals import RefusalMemory

ENV_REGISTRY = "PULLWATCH_REGISTRY"
ENV_REPOSITORY = "PULLWATCH_REPOSITORY"
ENV_MAX_RATE = "PULLWATCH_MAX_RATE"
ENV_BURST = "PULLWATCH_BURST"
DEFAULT_DEADLINE = 60.0  # seconds: a one-shot command's whole round


@dataclass(slots=True)
class Runtime:
    """Everything a command needs, built once from the command line."""

    paths: Paths
    secrets: SecretStore
    store: IdentityStore
    config: Config
    registry: str
    manifest: ManifestRef
    clock: Clock = SYSTEM_CLOCK
    timeouts: Timeouts | None = None  # None: the client's defaults
    use_challenge_cache: bool = True
    unlocker: Unlocker | None = None  # the encrypted-file keyring, when opted in
    warn_below: int | None = None  # --warn: overrides the config's warn_below
    retry_auth: bool = False  # --retry-auth: send logins that were refused before
    warn_within: float | None = None  # --warn-within: overrides the config's warn_within
    ledger: TokenLedger = field(default_factory=lambda: TokenLedger(None))
    trust: TrustConfig | None = None  # https trust (hub/tls.py); None: the system's and the env
    transport: httpx.AsyncBaseTransport | None = None  # None: the client's own (a named simhub)
    max_rate: float = DEFAULT_MAX_RATE  # requests per second, sustained (hub/pacing.py)
    burst: int = DEFAULT_BURST  # requests at once
    # The dashboard and `serve` set their interval: their rounds are spread over it when too big
    # for one burst (monitor.py). None: the one-shot commands, as fast as the pacer allows.
    round_interval: float | None = None

    @property
    def repository(self) -> str:
        """The probed manifest as the user would write it (`name:tag`)."""
        return self.manifest.display

    @property
    def docker_hub(self) -> bool:
        return is_docker_hub(self.registry)

    def client(self) -> HubClient:
        from pullwatch.hub.challenges import ChallengeCache
        from pullwatch.hub.client import HubClient, Timeouts
        from pullwatch.hub.pacing import Pacer

        cache = ChallengeCache(
            self.paths.challenge_cache if self.use_challenge_cache else None, self.clock
        )
        self.ledger.load()  # earlier runs' tokens are redacted from here on
        return HubClient(
            self.registry,
            self.manifest,
            clock=self.clock,
            timeouts=self.timeouts or Timeouts(),
            max_concurrency=self.config.settings.concurrency,
            challenge_cache=cache,
            on_token=self.ledger.remember,
            trust=self.trust,
            transport=self.transport,
            pacer=Pacer(self.max_rate, self.burst),
        )

    def refusals(self) -> RefusalMemory:
        from pullwatch.refusals import FILE_NAME as REFUSALS_FILE
        from pullwatch.refusals import RefusalMemory

        return RefusalMemory(self.paths.data_dir / REFUSALS_FILE)

    def monitor(self, client: HubClient, *, one_shot: bool = False) -> Monitor:
        """The monitor over the config's identities; `one_shot` (check, head, token): its
        rounds are never spread over `round_interval`."""
        from pullwatch.monitor import Monitor

        monitor = Monitor(
            client=client,
            secret_for=self.store.secret_for,
            secrets_for=self.store.secrets_for,
            clock=self.clock,
            refusals=self.refusals(),
            retry_auth=self.retry_auth,
            spread=0.0 if one_shot or self.round_interval is None else self.round_interval,
        )
        monitor.set_identities(self.config.identities)
        return monitor

    def policy(self) -> Policy:
        """The thresholds `assess` applies: each identity's own, else --warn, else the config's."""
        from pullwatch.assess import DEFAULT_WARN_WITHIN, Policy

        settings = self.config.settings
        warn_within = self.warn_within
        if warn_within is None and settings.warn_within is not None:
            warn_within = float(parse_duration(settings.warn_within))  # validated when loaded
        return Policy(
            warn_below=self.warn_below if self.warn_below is not None else settings.warn_below,
            identity_warn={i.label: i.warn_below for i in self.config.identities},
            warn_within=DEFAULT_WARN_WITHIN if warn_within is None else warn_within,
        )

    def assess(self, readings: Sequence[Reading], recent: RecentHistory) -> list[Assessment]:
        from pullwatch.assess import assess_all

        return assess_all(readings, recent=recent, policy=self.policy())

    # -- one-shot probes for the headless commands (each opens and closes its own client) -----

    def probe_round(self, labels: Sequence[str], deadline: float | None = None) -> list[Reading]:
        """One concurrent round over these identities, finished within `deadline` seconds:
        an identity still unanswered then is `unknown` ("no answer within the deadline").
        None: DEFAULT_DEADLINE plus the least time the pace needs for the round's requests
        (a token and a HEAD each), so many identities are not cut off by our own pacing."""
        import asyncio

        from pullwatch.monitor import REQUESTS_PER_PROBE

        async def run() -> list[Reading]:
            async with self.client() as client:
                monitor = self.monitor(client, one_shot=True)
                chosen = [i for i in monitor.identities if i.label in set(labels)]
                limit = deadline
                if limit is None:
                    needed = REQUESTS_PER_PROBE * len(chosen) + 1  # + the ping
                    limit = DEFAULT_DEADLINE + client.pacer.least_time(needed)
                # every secret in one keyring batch (a Secret Service round trip or a few),
                # not one keyring call per identity
                secrets = await monitor.round_secrets(chosen)
                tasks = {
                    i.label: asyncio.create_task(monitor.probe(i, secret=secrets.get(i.label)))
                    for i in chosen
                }
                if tasks:
                    await asyncio.wait(tasks.values(), timeout=limit)
                readings = []
                for identity in chosen:
                    task = tasks[identity.label]
                    if task.done() and not task.cancelled() and task.exception() is None:
                        readings.append(task.result())
                    else:
                        task.cancel()
                        readings.append(self._late(identity, limit))
                for task in tasks.values():
                    if not task.done():
                        with _suppress_cancel():
                            await task
                return readings

        try:
            return asyncio.run(run())
        finally:
            self.ledger.flush()

    def _late(self, identity: Identity, deadline: float) -> Reading:
        from pullwatch.reading import ErrorKind, Reading, State

        return Reading(
            label=identity.label,
            username=identity.username,
            checked_at=self.clock.time(),
            state=State.UNKNOWN,
            error_kind=ErrorKind.DEADLINE,
            detail=f"no answer within the {deadline:g} s deadline (--timeout)",
            registry=self.registry,
            repository=self.repository,
        )

    def probe_now(self, identity: Identity, *, retry_auth: bool = False) -> ProbeResult:
        """One HEAD probe of one identity, with every exchange (a HEAD check)."""
        import asyncio

        async def run() -> ProbeResult:
            async with self.client() as client:
                return await self.monitor(client, one_shot=True).check(
                    identity, retry_auth=retry_auth
                )

        try:
            return asyncio.run(run())
        finally:
            self.ledger.flush()

    def token_check(self, identity: Identity) -> TokenResult | Reading:
        """A fresh token request; a Reading when the identity's secret cannot be read."""
        import asyncio

        async def run() -> TokenResult | Reading:
            async with self.client() as client:
                return await self.monitor(client, one_shot=True).check_token(identity)

        try:
            return asyncio.run(run())
        finally:
            self.ledger.flush()

    def reload(self) -> Config:
        self.config = self.store.load()
        return self.config


class _suppress_cancel:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, value: object, tb: object) -> bool:
        import asyncio

        return isinstance(value, asyncio.CancelledError | Exception)


def build_runtime(
    paths: Paths,
    *,
    registry: str | None = None,
    repository: str | None = None,
    secrets: SecretStore | None = None,
    clock: Clock = SYSTEM_CLOCK,
    env: Mapping[str, str] | None = None,
    ca_cert: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    max_rate: float | None = None,
    burst: int | None = None,
) -> Runtime:
    """Load the config (raises ConfigError) and resolve registry, repository, the CAs
    trusted for https (`ca_cert`: --ca-cert, else PULLWATCH_CA_CERT, else the config's) and
    the pace (`max_rate`, `burst`: the flags, else the environment, else the config's; a bad
    environment value raises `PaceError`)."""
    env = os.environ if env is None else env
    chosen_secrets = secrets
    secrets = secrets or SecretStore()
    store = IdentityStore(paths.config_file, secrets, lock_path=paths.config_lock)
    config = store.load()
    chosen_registry = normalize_registry(
        registry or env.get(ENV_REGISTRY) or config.settings.registry or DEFAULT_REGISTRY
    )
    chosen_repository = (
        repository or env.get(ENV_REPOSITORY) or config.settings.repository or DEFAULT_REPOSITORY
    )
    store.docker_hub = is_docker_hub(chosen_registry)
    trust = _trust(ca_cert, env, config.settings.ca_cert, paths, https=chosen_registry)
    chosen_rate = _paced(max_rate, env, ENV_MAX_RATE, config.settings.max_rate, DEFAULT_MAX_RATE)
    chosen_burst = _paced(burst, env, ENV_BURST, config.settings.burst, DEFAULT_BURST)
    try:
        keyring = keyring_choice(env, config.settings.keyring)
    except KeyringChoiceError as exc:
        raise ConfigurationError(str(exc)) from None
    unlocker: Unlocker | None = None
    if keyring == "cryptfile" and chosen_secrets is None:
        # The opt-in encrypted file (README 'Over SSH'), locked until given its passphrase;
        # imported only when chosen.
        from pullwatch.identities.cryptfile import (
            CRYPTFILE_NAME,
            CRYPTFILE_TIMEOUT,
            ENV_PASSPHRASE,
            make_unlocker,
        )

        unlocker = make_unlocker(paths.data_dir / CRYPTFILE_NAME)
        secrets = store.secrets = SecretStore(unlocker.backend, timeout=CRYPTFILE_TIMEOUT)
        if env.get(ENV_PASSPHRASE):
            unlocker.unlock(env[ENV_PASSPHRASE])  # a wrong one: stays locked, and says so
    return Runtime(
        paths=paths,
        secrets=secrets,
        store=store,
        config=config,
        registry=chosen_registry,
        manifest=parse_manifest_ref(chosen_repository, chosen_registry),
        clock=clock,
        unlocker=unlocker,
        ledger=TokenLedger(paths.data_dir / LEDGER_FILE, clock),
        trust=trust,
        transport=transport,
        max_rate=float(chosen_rate),
        burst=int(chosen_burst),
    )


class PaceError(ConfigurationError):
    """PULLWATCH_MAX_RATE or PULLWATCH_BURST is not a valid value: one line (a usage error)."""


_N = TypeVar("_N", int, float)


def _paced(
    flag: _N | None, env: Mapping[str, str], name: str, setting: _N | None, default: _N
) -> _N:
    """Flag, then environment, then config (validated when loaded), then the default. The
    environment's value is checked with the config's own rule (identities/model.py)."""
    if flag is not None:
        return flag
    raw = env.get(name, "").strip()
    if raw:
        kind = type(default)
        key = name.removeprefix("PULLWATCH_").lower()
        try:
            value = kind(raw)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise PaceError(f"{name}={raw[:40]!r} is not {what}") from None
        problem = SETTING_RULES[key](value)
        if problem:
            raise PaceError(f"{name} {problem}")
        return value
    return default if setting is None else setting


def _trust(
    flag: str | None, env: Mapping[str, str], setting: str | None, paths: Paths, *, https: str
) -> TrustConfig:
    """The https trust for this command; a CA file given anywhere is read and checked now, so
    a bad one is a one-line error before any probe (raises `tls.CaCertError`)."""
    ca_pem = chosen = None
    if flag:
        chosen, ca_pem = flag, load_ca_cert(flag)
    elif env.get(ENV_CA_CERT):
        chosen = env[ENV_CA_CERT]
        ca_pem = load_ca_cert(chosen, what=ENV_CA_CERT)
    elif setting:
        path = Path(setting).expanduser()
        if not path.is_absolute():  # relative to the config file, not to where pullwatch runs
            path = paths.config_file.parent / path
        chosen, ca_pem = str(path), load_ca_cert(path, what="config ca_cert")
    trust = TrustConfig.from_environment(env, ca_pem=ca_pem, ca_file=chosen)
    if https.startswith("https://"):
        check_environment(trust)
    return trust
