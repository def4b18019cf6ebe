"""textual stays inside pullwatch.tui, so headless commands start fast (docs/design.md,
"The house"); `check` loads only what it uses; the dashboard paints before it imports httpx,
the keyring or the history (docs/design.md, "Start-up")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from keyring.backend import KeyringBackend

from fixtures_prometheus import StubPrometheus
from pullwatch.identities.secrets import SecretStore
from pullwatch.identities.store import Identity, IdentityStore
from pullwatch.paths import Paths
from pullwatch.simhub import SimHubServer

# What `check` must not load: the UI, the planner, the report, the encrypted-file keyring.
NOT_FOR_CHECK = ("textual", "pullwatch.tui", "pullwatch.planner", "pullwatch.report",
                 "keyrings.cryptfile")  # fmt: skip

LOADED = (
    "import sys\n"
    "from pullwatch.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "names = ('textual', 'pullwatch.tui', 'pullwatch.planner', 'pullwatch.report',\n"
    "         'keyrings.cryptfile', 'keyring', 'httpx', 'sqlite3', 'platformdirs', 'zipp')\n"
    "loaded = sorted(n for n in names if n in sys.modules)\n"
    "print('LOADED:', ' '.join(loaded), file=sys.stderr)\n"
    "raise SystemExit(code)\n"
)


def loaded_modules(stderr: str) -> set[str]:
    line = next(line for line in stderr.splitlines() if line.startswith("LOADED:"))
    return set(line.split()[1:])


def clean_env(paths: Paths, tmp_path: Path) -> dict[str, str]:
    """The test's directories, no keyring chosen by environment or keyringrc.cfg."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON_KEYRING")}
    env.update(
        PULLWATCH_CONFIG_DIR=str(paths.config_dir),
        PULLWATCH_DATA_DIR=str(paths.data_dir),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
    )
    return env


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


def test_check_json_loads_only_what_it_uses(
    simhub: SimHubServer, paths: Paths, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, "--registry", simhub.url, "check", "--json"],
        capture_output=True, text=True, env=clean_env(paths, tmp_path), timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded = loaded_modules(done.stderr)
    assert not loaded & set(NOT_FOR_CHECK), loaded
    assert "httpx" in loaded  # it did probe
    assert "platformdirs" not in loaded  # the directories were given: no default looked up


def test_check_with_the_real_keyring_loads_no_other_backend(
    simhub: SimHubServer, paths: Paths, tmp_path: Path, secret_service: KeyringBackend
) -> None:
    """A login read from the real Secret Service: keyring is loaded, keyrings.cryptfile (which
    keyring's own detection imports) is not."""
    label = f"hygiene-{uuid.uuid4().hex[:8]}"
    store = IdentityStore(
        paths.config_file, SecretStore(secret_service, timeout=5.0), lock_path=paths.config_lock
    )
    store.add(Identity(label, "alice"), "alice-pat")
    try:
        done = subprocess.run(
            [sys.executable, "-c", LOADED, "--registry", simhub.url, "check", "--json",
             "--identity", label],
            capture_output=True, text=True, env=clean_env(paths, tmp_path), timeout=60,
            check=False,
        )  # fmt: skip
    finally:
        store.remove(label)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["identities"]
    assert (row["label"], row["state"], row["limit"]) == (label, "ok", 200)  # the secret was read
    loaded = loaded_modules(done.stderr)
    assert "keyring" in loaded
    assert not loaded & set(NOT_FOR_CHECK), loaded
    # the backends are found without a look into sys.path's missing entries (a zip: zipp)
    assert "zipp" not in loaded, loaded


PAINT_ORDER = """
import asyncio, json, sys
from pullwatch.cli.entry import build_parser
from pullwatch.cli.common import load_runtime
runtime = load_runtime(build_parser().parse_args(sys.argv[1:]))
from pullwatch.tui.app import make_app
from pullwatch.tui.widgets.identity_table import IdentityTable
HEAVY = ("httpx", "keyring", "sqlite3", "pullwatch.history", "pullwatch.assess",
         "pullwatch.monitor", "pullwatch.hub.client")
seen = {}
draw = IdentityTable.render_line
def render_line(self, y):
    strip = draw(self, y)
    if y >= 1 and strip.text.strip():  # a row, drawn (y 0 is the header)
        kind = "numbers" if "/100" in strip.text else "labels"
        seen.setdefault(kind, sorted(m for m in HEAVY if m in sys.modules))
    return strip
IdentityTable.render_line = render_line
async def main():
    app = make_app(runtime, watch_terminal=False)
    async with app.run_test(size=(120, 32)):
        await app.wait_for_round()
    seen["after the round"] = sorted(m for m in HEAVY if m in sys.modules)
asyncio.run(main())
print(json.dumps(seen))
"""


def test_the_dashboard_paints_before_it_imports_the_engine(
    simhub: SimHubServer, paths: Paths, tmp_path: Path
) -> None:
    """The first rows are drawn with nothing heavy imported; the last values (from the history,
    stale) are drawn before httpx and the keyring are; then the live round."""
    env = clean_env(paths, tmp_path)
    check = subprocess.run(  # leaves a reading in the history: the last values to show
        [sys.executable, "-m", "pullwatch", "--registry", simhub.url, "check"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    done = subprocess.run(
        [sys.executable, "-c", PAINT_ORDER, "--registry", simhub.url],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["labels"] == []  # the first rows: labels from the config, nothing heavy
    assert "pullwatch.history" in seen["numbers"]  # the last values, from the database...
    assert not {"httpx", "keyring", "pullwatch.monitor"} & set(seen["numbers"])  # ... first
    assert {"httpx", "pullwatch.monitor"} <= set(seen["after the round"])


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


def test_the_last_values_need_nothing_from_the_hub_client() -> None:
    """The dashboard's history thread imports the history and `assess` to show the last values
    while the first frame's work is still going on the event loop: neither pulls in the hub
    client's modules (its header parsing imports the email package, ~7 ms)."""
    probe = (
        "import sys\n"
        "import pullwatch.assess, pullwatch.history\n"
        "print(sorted(m for m in sys.modules if m.startswith('pullwatch.hub') or m == 'email'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
