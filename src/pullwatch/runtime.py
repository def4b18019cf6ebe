"""Wiring: from flags, environment and config to a store, a client and a monitor.

The CLI and the TUI both start here, so a flag means the same thing everywhere. Precedence for
the registry and repository: flag, then environment variable, then the config file, then the
default.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.hub.client import (
    DEFAULT_REGISTRY,
    DEFAULT_REPOSITORY,
    ChallengeCache,
    ConfigurationError,
    HubClient,
    ProbeResult,
    Timeouts,
    TokenResult,
    normalize_registry,
    normalize_repository,
)
from pullwatch.identities.cryptfile import (
    CRYPTFILE_NAME,
    CRYPTFILE_TIMEOUT,
    ENV_PASSPHRASE,
    KeyringChoiceError,
    Unlocker,
    keyring_choice,
    make_unlocker,
)
from pullwatch.identities.secrets import SecretStore
from pullwatch.identities.store import Config, Identity, IdentityStore
from pullwatch.monitor import Monitor
from pullwatch.paths import Paths
from pullwatch.reading import Reading

ENV_REGISTRY = "PULLWATCH_REGISTRY"
ENV_REPOSITORY = "PULLWATCH_REPOSITORY"


@dataclass(slots=True)
class Runtime:
    """Everything a command needs, built once from the command line."""

    paths: Paths
    secrets: SecretStore
    store: IdentityStore
    config: Config
    registry: str
    repository: str
    clock: Clock = SYSTEM_CLOCK
    timeouts: Timeouts = field(default_factory=Timeouts)
    use_challenge_cache: bool = True
    unlocker: Unlocker | None = None  # the encrypted-file keyring, when opted in

    def client(self) -> HubClient:
        cache = ChallengeCache(
            self.paths.challenge_cache if self.use_challenge_cache else None, self.clock
        )
        return HubClient(
            self.registry,
            self.repository,
            clock=self.clock,
            timeouts=self.timeouts,
            max_concurrency=self.config.settings.concurrency,
            challenge_cache=cache,
        )

    def monitor(self, client: HubClient, warn_below: int | None = None) -> Monitor:
        monitor = Monitor(
            client=client,
            secret_for=self.store.secret_for,
            clock=self.clock,
            global_warn_below=warn_below
            if warn_below is not None
            else self.config.settings.warn_below,
        )
        monitor.set_identities(self.config.identities)
        return monitor

    # -- one-shot probes for the headless commands (each opens and closes its own client) -----

    def probe_round(self, labels: Sequence[str], warn_below: int | None = None) -> list[Reading]:
        """One concurrent round over these identities."""

        async def run() -> list[Reading]:
            async with self.client() as client:
                return await self.monitor(client, warn_below=warn_below).round(labels)

        return asyncio.run(run())

    def probe_now(self, identity: Identity) -> ProbeResult:
        """One HEAD probe of one identity, with every exchange (a HEAD check)."""

        async def run() -> ProbeResult:
            async with self.client() as client:
                return await self.monitor(client).check(identity)

        return asyncio.run(run())

    def token_check(self, identity: Identity) -> TokenResult | Reading:
        """A fresh token request; a Reading when the identity's secret cannot be read."""

        async def run() -> TokenResult | Reading:
            async with self.client() as client:
                return await self.monitor(client).check_token(identity)

        return asyncio.run(run())

    def reload(self) -> Config:
        self.config = self.store.load()
        return self.config


def build_runtime(
    paths: Paths,
    *,
    registry: str | None = None,
    repository: str | None = None,
    secrets: SecretStore | None = None,
    clock: Clock = SYSTEM_CLOCK,
    env: Mapping[str, str] | None = None,
) -> Runtime:
    """Load the config (raises ConfigError) and resolve registry and repository."""
    env = os.environ if env is None else env
    chosen_secrets = secrets
    secrets = secrets or SecretStore()
    store = IdentityStore(paths.config_file, secrets, lock_path=paths.config_lock)
    config = store.load()
    try:
        keyring = keyring_choice(env, config.settings.keyring)
    except KeyringChoiceError as exc:
        raise ConfigurationError(str(exc)) from None
    unlocker: Unlocker | None = None
    if keyring == "cryptfile" and chosen_secrets is None:
        # The opt-in encrypted file (README 'Over SSH'), locked until given its passphrase.
        unlocker = make_unlocker(paths.data_dir / CRYPTFILE_NAME)
        secrets = store.secrets = SecretStore(unlocker.backend, timeout=CRYPTFILE_TIMEOUT)
        if env.get(ENV_PASSPHRASE):
            unlocker.unlock(env[ENV_PASSPHRASE])  # a wrong one: stays locked, and says so
    chosen_registry = (
        registry or env.get(ENV_REGISTRY) or config.settings.registry or DEFAULT_REGISTRY
    )
    chosen_repository = (
        repository or env.get(ENV_REPOSITORY) or config.settings.repository or DEFAULT_REPOSITORY
    )
    return Runtime(
        paths=paths,
        secrets=secrets,
        store=store,
        config=config,
        registry=normalize_registry(chosen_registry),
        repository=normalize_repository(chosen_repository),
        clock=clock,
        unlocker=unlocker,
    )
