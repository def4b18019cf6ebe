"""The forecast on every output: `check` text, JSON (its documented keys), the exit code with
`--warn-within` and the config's `warn_within`, OpenMetrics, and the report.

Earlier rounds are written into the history database as a cron'd `check` would have left them
(a pull a minute for the last half hour); the simulated hub's bucket is where that pace left it.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable

import pytest

from pullwatch.cli import main
from pullwatch.history import History
from pullwatch.identities.secrets import MemoryKeyring
from pullwatch.paths import Paths
from pullwatch.reading import Reading, State
from pullwatch.simhub import SimHubServer

Run = Callable[..., tuple[int, str, str]]
REPOSITORY = "ratelimitpreview/test:latest"


@pytest.fixture
def run(paths: Paths, capsys: pytest.CaptureFixture[str], cli_keyring: MemoryKeyring) -> Run:
    def call(url: str, *args: str) -> tuple[int, str, str]:
        old = sys.stdin
        sys.stdin = io.StringIO("")
        try:
            code = main(["--config-dir", str(paths.config_dir), "--data-dir",
                         str(paths.data_dir), "--registry", url, *args])  # fmt: skip
        finally:
            sys.stdin = old
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture
def draining(simhub: SimHubServer, paths: Paths) -> SimHubServer:
    """The anonymous bucket, watched for 30 minutes while a client pulled once a minute."""
    now = time.time()
    earlier = [
        Reading("anonymous", None, now - 60 * minute, State.OK, limit=100,
                remaining=100 - (30 - minute), window_seconds=21600, source="203.0.113.7",
                http_status=200, registry=simhub.url, repository=REPOSITORY)
        for minute in range(30, 0, -1)
    ]  # fmt: skip
    with History(paths.history_db) as history:
        history.record(earlier)
    simhub.model.consume("anonymous", 30)  # where that pace left the bucket: 70 of 100 now
    return simhub


def test_check_json_says_when_the_bucket_runs_out_and_on_what(run: Run, draining) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(draining.url, "check", "--json")
    (row,) = json.loads(out)["identities"]
    forecast = row["forecast"]
    assert set(forecast) >= {"per_hour", "runs_out_at", "basis_seconds", "pulls_seen"}
    assert forecast["status"] == "draining"
    assert 50 <= forecast["per_hour"] <= 70  # a pull a minute
    assert forecast["runs_out_at"].endswith("Z") and forecast["basis_seconds"] >= 900
    assert forecast["pulls_seen"] >= 15 and forecast["assumes_recent_pace"] is True
    assert code == 0  # ~70 min left: more than the default 30 min


def test_check_warns_within_the_chosen_time(run: Run, draining, paths: Paths) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(draining.url, "check", "--warn-within", "2h")
    assert code == 1  # runs out within two hours: a warning, whatever the state
    (note,) = [line for line in out.splitlines() if "forecast:" in line]
    assert "runs out in ~" in note and "pulls in the last" in note and "recent pace" in note
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(
        '[settings]\nwarn_within = "3h"\n\n[[identity]]\nlabel = "anonymous"\n'
    )
    code, _, _ = run(draining.url, "check")
    assert code == 1  # the config's warn_within
    code, _, _ = run(draining.url, "check", "--warn-within", "10m")
    assert code == 0  # the flag wins


def test_openmetrics_and_the_report_carry_the_forecast(run: Run, draining) -> None:  # type: ignore[no-untyped-def]
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    _, out, _ = run(draining.url, "check", "--openmetrics")
    names = {s.name: s.value for f in text_string_to_metric_families(out) for s in f.samples}
    assert names["pullwatch_forecast_exhaustion_timestamp_seconds"] > time.time()
    assert 50 <= names["pullwatch_forecast_pulls_per_hour"] <= 70
    _, out, _ = run(draining.url, "report")
    (line,) = [line for line in out.splitlines() if line.strip().startswith("Forecast:")]
    assert "runs out in ~" in line


def test_too_few_readings_is_said_not_guessed(run: Run, simhub: SimHubServer) -> None:
    _, out, _ = run(simhub.url, "check", "--json")
    forecast = json.loads(out)["identities"][0]["forecast"]
    assert forecast["status"] in ("not_enough", "not_draining")
    assert forecast["runs_out_at"] is None and forecast["per_hour"] in (None, 0)
