"""textual stays inside pullwatch.tui, so headless commands start fast (docs/design.md,
"The house")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fixtures_prometheus import StubPrometheus
from pullwatch.paths import Paths
from pullwatch.simhub import SimHubServer


def test_headless_commands_never_import_textual(simhub: SimHubServer, paths: Paths) -> None:
    probe = (
        "import sys\n"
        "from pullwatch.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print('TEXTUAL:', loaded, file=sys.stderr)\n"
        "raise SystemExit(code)\n"
    )
    env = {**os.environ, "PULLWATCH_CONFIG_DIR": str(paths.config_dir),
           "PULLWATCH_DATA_DIR": str(paths.data_dir)}  # fmt: skip
    for args in (
        ["check", "--json"],
        ["head", "anonymous"],
        ["token", "anonymous"],
        ["identity", "list"],
    ):
        done = subprocess.run(
            [sys.executable, "-c", probe, "--registry", simhub.url, *args],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "TEXTUAL: []" in done.stderr, (args, done.stderr)


def test_fleet_json_never_imports_textual(stub_prometheus: StubPrometheus) -> None:
    probe = (
        "import sys\n"
        "from pullwatch.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print('TEXTUAL:', loaded, file=sys.stderr)\n"
        "raise SystemExit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "fleet", stub_prometheus.url, "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr  # no pullwatch metrics there: unknown
    assert '"rows": []' in done.stdout
    assert "TEXTUAL: []" in done.stderr, done.stderr
    assert stub_prometheus.queries  # it did read the API


def test_no_module_outside_tui_imports_textual() -> None:
    source = Path(__file__).resolve().parents[1] / "src" / "pullwatch"
    offenders = []
    for path in source.rglob("*.py"):
        if "tui" in path.relative_to(source).parts:
            continue
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import textual", "from textual")):
                offenders.append(f"{path.relative_to(source)}: {stripped}")
    assert offenders == []
