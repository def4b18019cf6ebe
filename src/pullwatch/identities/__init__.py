"""Who we check as: identities in a TOML file (`store`), secrets in the OS keyring (`secrets`).

Headless: nothing here imports textual, and nothing here knows about the monitor or the UI.
"""

from __future__ import annotations

from pullwatch.identities.secrets import (
    KeyringHealth,
    KeyringStatus,
    MemoryKeyring,
    SecretLookup,
    SecretStore,
    SecretStoreError,
)
from pullwatch.identities.store import (
    Config,
    ConfigError,
    Identity,
    IdentityError,
    IdentityStore,
    Settings,
)

__all__ = [
    "Config",
    "ConfigError",
    "Identity",
    "IdentityError",
    "IdentityStore",
    "KeyringHealth",
    "KeyringStatus",
    "MemoryKeyring",
    "SecretLookup",
    "SecretStore",
    "SecretStoreError",
    "Settings",
]
