"""Pytest plugin: the demo (simulated hub, in-memory keyring, throwaway config) on a frozen clock.

Both run the demo's simulator on a free port; `snapshot_demo`'s says it is
`http://simhub.localhost` (simhub/named.py), so the URLs a snapshot shows never change and test
runs can share a machine. Both assert at teardown that no manifest was ever fetched with GET.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pullwatch.clock import ManualClock
from pullwatch.demo import Demo, start_demo
from pullwatch.simhub.named import SIMHUB_NAME


def _demo(clock: ManualClock, workdir: Path, name: str | None) -> Iterator[Demo]:
    demo = start_demo(clock=clock, traffic=False, workdir=workdir, name=name)
    try:
        yield demo
    finally:
        counters = demo.model.counters
        demo.close()
    assert counters["manifest_get"] == 0, "a manifest GET spent a pull"


@pytest.fixture
def demo(clock: ManualClock, tmp_path: Path) -> Iterator[Demo]:
    yield from _demo(clock, tmp_path / "demo", None)


@pytest.fixture
def snapshot_demo(clock: ManualClock, tmp_path: Path) -> Iterator[Demo]:
    yield from _demo(clock, tmp_path / "demo", SIMHUB_NAME)
