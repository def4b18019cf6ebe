"""Failures that are the registry's, not an identity's, said once (`check`; the dashboard's is
in test_tui.py), and a connection reset that is not taken for a DNS or firewall problem."""

from __future__ import annotations

import json

from fixtures_cli import Cli
from fixtures_simhub import ALICE, ERIN


def test_check_says_a_registry_wide_failure_once(cli: Cli) -> None:
    cli.add("ci", ALICE.username, ALICE.secret)
    cli.add("scanner", ERIN.username, ERIN.secret)
    cli.server.model.faults.status = {"head": 404}  # the probe manifest is missing
    code, out, _ = cli("check")
    assert code == 3
    assert out.count("every identity:") == 1
    assert out.count("Check --repository") == 1  # the step, once for the registry
    for label in ("anonymous", "ci", "scanner"):
        assert f"{label}: Check --repository" not in out


def test_one_identity_failing_keeps_its_own_advice(cli: Cli) -> None:
    cli.add("ci", ALICE.username, "not-her-token")
    code, out, _ = cli("check")
    assert code == 2  # a refused login is critical
    assert "every identity" not in out  # anonymous is fine: nothing registry-wide
    assert "ci: " in out


def test_a_connection_reset_is_not_dns_advice(cli: Cli) -> None:
    cli.server.model.faults.reset = {"any"}
    code, out, _ = cli("check", "--json")
    assert code == 3
    (row,) = json.loads(out)["identities"]
    assert row["error_kind"] == "reset"
    advice = " ".join(row["advice"])
    assert "DNS" not in advice and "firewall" not in advice
    assert "cut mid-answer" in advice
