"""Where pullwatch keeps its files.

Config (the identity list, never a secret), data (the history database) and cache (the discovered
registry challenge) default to the platform's directories (platformdirs), and each can be moved by
a flag or an environment variable. A data dir given explicitly also holds the cache, so a test or
a script that points pullwatch at one directory finds everything pullwatch wrote inside it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "pullwatch"

ENV_CONFIG_DIR = "PULLWATCH_CONFIG_DIR"
ENV_DATA_DIR = "PULLWATCH_DATA_DIR"
ENV_CACHE_DIR = "PULLWATCH_CACHE_DIR"


@dataclass(frozen=True, slots=True)
class Paths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def config_lock(self) -> Path:
        return self.config_dir / ".config.lock"

    @property
    def history_db(self) -> Path:
        return self.data_dir / "history.sqlite3"

    @property
    def challenge_cache(self) -> Path:
        return self.cache_dir / "challenges.json"


def resolve_paths(
    config_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Paths:
    """Flags win over environment variables, which win over the platform defaults."""
    env = os.environ if env is None else env

    def pick(flag: str | os.PathLike[str] | None, var: str) -> Path | None:
        if flag:
            return Path(flag).expanduser()
        if env.get(var):
            return Path(env[var]).expanduser()
        return None

    config = pick(config_dir, ENV_CONFIG_DIR)
    data = pick(data_dir, ENV_DATA_DIR)
    cache = pick(cache_dir, ENV_CACHE_DIR)
    if cache is None and data is not None:
        cache = data / "cache"
    if config is None or data is None or cache is None:
        import platformdirs  # only for a default (~2 ms to import)

        if config is None:
            config = Path(platformdirs.user_config_dir(APP_NAME))
        if cache is None:
            cache = Path(platformdirs.user_cache_dir(APP_NAME))
        if data is None:
            data = Path(platformdirs.user_data_dir(APP_NAME))
    return Paths(config_dir=config, data_dir=data, cache_dir=cache)


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700 for the leaf; tighten an existing leaf."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError:
        pass
    return path
