"""The command line, by what the commands do: `probe` (check, token, head, history),
`identities`, `triage` (explain, plan, report), `fleet` (serve) and `app` (the dashboard, the
demo, the simulated hub); `common` holds what they share and `entry` the parser and `main`.
"""

from __future__ import annotations

from pullwatch.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]
