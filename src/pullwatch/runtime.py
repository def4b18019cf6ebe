"""Wiring: from flags, environment and config to a store, a client and a monitor.

The CLI and the TUI both start here, so a flag means the same thing everywhere. Precedence for
the registry and repository: flag, then environment variable, then the config file, then the
default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.hub.client import (
    DEFAULT_REGISTRY,
    DEFAULT_REPOSITORY,
    ChallengeCache,
    HubClient,
    Timeouts,
    normalize_registry,
    normalize_repository,
)
from pullwatch.identities.secrets import SecretStore
from pullwatch.identities.store import Config, IdentityStore
from pullwatch.monitor import Monitor
from pullwatch.paths import Paths

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
    secrets = secrets or SecretStore()
    store = IdentityStore(paths.config_file, secrets, lock_path=paths.config_lock)
    config = store.load()
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
    )
