"""Where PowerX keeps files: per-project state and the per-user credential."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """Project state (artefacts, runtime info): ``./.powerx`` or ``$POWERX_STATE_DIR``."""
    return Path(os.environ.get("POWERX_STATE_DIR") or Path.cwd() / ".powerx")


def config_home() -> Path:
    """Per-user settings (the credential): ``$POWERX_CONFIG_HOME`` or ``~/.config/powerx``."""
    explicit = os.environ.get("POWERX_CONFIG_HOME")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "powerx"


def host_info_file() -> Path:
    """Written by a running simulator: its URL and pid, read by status/stop."""
    return state_dir() / "host.json"
