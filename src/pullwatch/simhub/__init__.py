"""A simulated Docker Hub on loopback, for the demo mode, integration tests and benchmarks.

`HubModel` holds accounts, rolling-window buckets, issued tokens, request counters and fault
switches; `SimHubServer` serves it over real HTTP (registry ping, token endpoint, manifest HEAD,
and admin endpoints under `/_sim/`). Standard library and `pullwatch.clock` only.
"""

from __future__ import annotations

from pullwatch.simhub.accounts import load_accounts, serve_main, standard_model
from pullwatch.simhub.model import (
    ANONYMOUS,
    CHALLENGE_MODES,
    ENDPOINTS,
    RATELIMIT_HEADER_MODES,
    TOKEN_BODY_MODES,
    Account,
    Faults,
    HubModel,
    Quota,
    TokenGrant,
)
from pullwatch.simhub.server import SimHubServer

__all__ = [
    "ANONYMOUS",
    "CHALLENGE_MODES",
    "ENDPOINTS",
    "RATELIMIT_HEADER_MODES",
    "TOKEN_BODY_MODES",
    "Account",
    "Faults",
    "HubModel",
    "Quota",
    "SimHubServer",
    "TokenGrant",
    "load_accounts",
    "serve_main",
    "standard_model",
]
