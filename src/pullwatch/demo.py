"""`pullwatch demo`: the real dashboard against the simulated hub on loopback.

No network, no account, and nothing written to the user's config or keyring: identities live in
a temporary directory that is removed on exit, secrets in an in-memory keyring. A background
"traffic" thread spends pulls in some buckets now and then, as other clients would, so the
numbers move while you watch.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pullwatch.clock import SYSTEM_CLOCK, Clock
from pullwatch.identities.memory_keyring import MemoryKeyring
from pullwatch.identities.secrets import SecretStore
from pullwatch.identities.store import Identity, IdentityStore
from pullwatch.paths import Paths
from pullwatch.runtime import Runtime, build_runtime
from pullwatch.simhub import HubModel, SimHubServer

DEMO_INTERVAL = 15.0


@dataclass(frozen=True, slots=True)
class DemoAccount:
    label: str
    username: str | None
    secret: str | None  # what the identity stores; "old-bot" stores a revoked one
    limit: int | None = 200  # None: unlimited (a paid plan)
    window: int = 21600
    used: int = 0
    uuid: str | None = None
    hub_secret: str | None = None  # what the hub accepts, when it differs


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("anonymous", None, None, limit=100, window=3600, used=24),
    DemoAccount(
        "ci-bot",
        "cibot",
        "dckr_pat_demo-ci-bot",
        used=20,
        uuid="186e63fa-1b6a-4c51-9f12-61a26f0a9c01",
    ),
    DemoAccount(
        "dev-laptop",
        "devjane",
        "dckr_pat_demo-dev-laptop",
        used=171,
        uuid="5d0c2b8e-77a4-4f0e-8e2d-3c1f9b6a4e21",
    ),
    DemoAccount(
        "release",
        "acmerelease",
        "dckr_pat_demo-release",
        limit=None,
        uuid="9f2c01aa-5e3b-4d7c-a1f0-2b8e6c4d9a10",
    ),
    DemoAccount(
        "old-bot",
        "oldbot",
        "dckr_pat_demo-revoked",
        hub_secret="dckr_pat_demo-current",
        uuid="c47d2e91-0a6b-4f3e-9c58-7e1d2a3b4c5d",
    ),
    DemoAccount(
        "scanner",
        "scanbot",
        "dckr_pat_demo-scanner",
        used=200,
        uuid="e8a1f4c2-6b9d-4a07-b3e5-1c2d3e4f5a6b",
    ),
)

# Buckets that other (simulated) clients pull from while the demo runs.
TRAFFIC_BUCKETS = ("anonymous", "cibot", "devjane")


def build_demo_model(clock: Clock = SYSTEM_CLOCK) -> HubModel:
    """The demo's hub: anonymous on an hourly window (as seen live in 2026) and five accounts."""
    anonymous = DEMO_ACCOUNTS[0]
    model = HubModel(
        clock,
        anonymous_limit=anonymous.limit,
        anonymous_window=anonymous.window,
        anonymous_claim_window=21600,
        egress_ip="203.0.113.7",
    )
    model.consume("anonymous", anonymous.used)
    for account in DEMO_ACCOUNTS[1:]:
        assert account.username is not None
        model.add_account(
            account.username,
            account.hub_secret or account.secret or "",
            account.limit,
            account.window,
            uuid=account.uuid,
            used=account.used,
        )
    return model


class Traffic:
    """Other clients pulling: a few pulls every few seconds in the demo's busy buckets."""

    def __init__(self, model: HubModel, *, period: float = 4.0, seed: int | None = None) -> None:
        self._model = model
        self._period = period
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(self._period * self._rng.uniform(0.5, 1.5)):
            who = self._rng.choice(TRAFFIC_BUCKETS)
            try:
                self._model.consume(who, self._rng.randint(1, 3))
            except Exception:  # the demo's scenery must never take the app down
                pass


@dataclass
class Demo:
    server: SimHubServer
    runtime: Runtime
    workdir: Path
    traffic: Traffic | None = None
    _closed: bool = field(default=False, init=False)

    @property
    def model(self) -> HubModel:
        return self.server.model

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.traffic is not None:
            self.traffic.stop()
        self.server.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_demo(
    *,
    clock: Clock = SYSTEM_CLOCK,
    traffic: bool = True,
    workdir: Path | None = None,
    port: int = 0,
    name: str | None = None,
) -> Demo:
    """Start the simulated hub and a throwaway config with the demo identities in it.

    `port` 0 picks a free one. `name` (screenshots and snapshots: `simhub.localhost`) makes the
    URLs shown the same from run to run without a fixed port (simhub/named.py).
    """
    root = workdir or Path(tempfile.mkdtemp(prefix="pullwatch-demo-"))
    paths = Paths(config_dir=root / "config", data_dir=root / "data", cache_dir=root / "cache")
    secrets = SecretStore(MemoryKeyring())
    store = IdentityStore(paths.config_file, secrets, lock_path=paths.config_lock)
    for account in DEMO_ACCOUNTS:
        if store.load().get(account.label) is None:
            store.add(Identity(account.label, account.username), account.secret)
    server = SimHubServer(build_demo_model(clock), port=port, name=name).start()
    try:
        runtime = build_runtime(
            paths,
            registry=server.url,
            secrets=secrets,
            clock=clock,
            env={},
            transport=server.transport(),
        )
    except Exception:
        server.stop()
        raise
    runtime.use_challenge_cache = False
    runner = Traffic(server.model).start() if traffic else None
    return Demo(server=server, runtime=runtime, workdir=root, traffic=runner)
