"""Where dlmsdoctor keeps its files: config, data (ledger, sessions) and captures.

platformdirs decides per OS; ``DLMSDOCTOR_CONFIG_DIR`` and ``DLMSDOCTOR_DATA_DIR`` override it so
that tests stay hermetic. Nothing here creates a folder: ``ensure_dir`` does, and only writers
call it (folders appear on first write, never on read).
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "dlmsdoctor"


def config_dir() -> Path:
    override = os.environ.get("DLMSDOCTOR_CONFIG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    override = os.environ.get("DLMSDOCTOR_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_file() -> Path:
    return config_dir() / "config.toml"


def ledger_file() -> Path:
    return data_dir() / "ledger.jsonl"


def sessions_dir() -> Path:
    return data_dir() / "sessions"


def captures_dir() -> Path:
    return data_dir() / "captures"


def ensure_dir(path: Path, mode: int = 0o700) -> Path:
    """Create ``path`` (and parents) for a writer; private by default: it may hold secrets."""
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    return path
