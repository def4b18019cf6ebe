"""Pytest plugin: a simulated Docker Hub on loopback with the standard accounts.

`simhub` is a running `SimHubServer` whose model runs on the test's `clock` (a ManualClock).
At teardown it asserts that no manifest was GET: every test that uses the simulator proves that
no pull was spent. A test that GETs a manifest on purpose resets that counter itself. It also
asserts that no handler crashed (`model.server_errors`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import pytest

from pullwatch.clock import ManualClock
from pullwatch.simhub import SimHubServer, standard_model


class Credentials(NamedTuple):
    username: str
    secret: str


ALICE = Credentials("alice", "alice-pat")  # Personal: 200 per 6 h, fresh
BOB = Credentials("bob", "bob-pat")  # paid plan: not metered
ERIN = Credentials("erin", "erin-pat")  # Personal: 200 per 6 h, all 200 used

SERVICE = "registry.docker.io"
REPOSITORY = "ratelimitpreview/test"
SCOPE = f"repository:{REPOSITORY}:pull"
MANIFEST_PATH = f"/v2/{REPOSITORY}/manifests/latest"
EGRESS_IP = "203.0.113.7"
ANONYMOUS_LIMIT = 100
PERSONAL_LIMIT = 200
WINDOW = 21600


@pytest.fixture
def simhub(clock: ManualClock) -> Iterator[SimHubServer]:
    """A running simulator on 127.0.0.1 (random port) with alice, bob, erin and anonymous."""
    server = SimHubServer(standard_model(clock)).start()
    try:
        yield server
    finally:
        server.stop()
    assert server.model.counters["manifest_get"] == 0, "a manifest GET spent a pull"
    assert not server.model.server_errors, server.model.server_errors[0]
