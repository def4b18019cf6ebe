"""`explain` with text it does not recognise says so on its first line, and quotes nothing as
if it had matched (the CLI's text and JSON; the dashboard's `x` is in test_triage_tui.py)."""

from __future__ import annotations

import json

from fixtures_cli import Cli
from pullwatch.explain import explain


def test_unrecognised_text_says_so_first() -> None:
    found = explain("everything is fine, thanks")
    assert not found.recognised
    text = found.as_text()
    assert text.splitlines()[0] == "Which limit: not recognised"
    assert "Matched" not in text and "everything is fine" not in text
    assert found.to_json()["excerpt"] == ""


def test_recognised_text_still_starts_with_what_matched() -> None:
    text = explain("Error: 429 Too Many Requests (HAP429)").as_text()
    assert text.splitlines()[0].startswith("Matched: ")
    assert "abuse limit" in text.splitlines()[1]


def test_the_cli_says_not_recognised_first(cli: Cli) -> None:
    code, out, _ = cli("explain", "everything is fine")
    assert code == 1
    assert out.splitlines()[0] == "Which limit: not recognised"
    assert "Matched" not in out
    code, out, _ = cli("explain", "--json", "everything is fine")
    document = json.loads(out)
    assert document["recognised"] is False and document["excerpt"] == ""
