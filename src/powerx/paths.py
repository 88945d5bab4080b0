"""Where PowerX keeps files: per-project state and the per-user credential."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

RAM_DIR = Path("/dev/shm")
# Below this much free RAM disk (a container's /dev/shm is often 64 MB), run trees stay
# under the state dir.
RAM_MIN_FREE_BYTES = 256 * 1024 * 1024


def state_dir() -> Path:
    """Project state (artefacts, runtime info): ``./.powerx`` or ``$POWERX_STATE_DIR``."""
    return Path(os.environ.get("POWERX_STATE_DIR") or Path.cwd() / ".powerx")


def environments_dir(state: Path) -> Path:
    """Where plugins' Python environments are kept: ``$POWERX_ENV_DIR``, else
    ``<state>/envs``. Several projects (or test runs) can share one folder: environments
    are named by what they contain."""
    explicit = os.environ.get("POWERX_ENV_DIR")
    return Path(explicit) if explicit else state / "envs"


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


def run_root(state: Path) -> Path:
    """Where stored artefacts are unpacked for their generations to run from:
    ``$POWERX_RUN_DIR``, else a private folder in RAM (``/dev/shm``) on Linux, else
    ``<state>/run``.

    Run trees are disposable copies of the stored artefacts (which stay on disk), and a
    reload unpacks one: ~6 files and folders. Creating one costs ~0.5 ms on some disks
    (virtual machines, WSL ``/mnt``, network homes), so ~3 ms of every reload; in RAM it
    costs ~0.01 ms."""
    explicit = os.environ.get("POWERX_RUN_DIR")
    if explicit:
        return Path(explicit)
    ram = _private_ram_dir()
    if ram is None:
        return state / "run"
    project = hashlib.sha256(str(state.resolve()).encode()).hexdigest()[:16]
    return ram / project


def _private_ram_dir() -> Path | None:
    """``/dev/shm/powerx-<uid>``, made ours alone; None where that cannot be had."""
    if not RAM_DIR.is_dir() or not hasattr(os, "getuid"):
        return None
    try:
        if shutil.disk_usage(RAM_DIR).free < RAM_MIN_FREE_BYTES:
            return None
        folder = RAM_DIR / f"powerx-{os.getuid()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()  # not a link someone else planted
    except OSError:
        return None
    owned = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
    return folder if owned and not info.st_mode & 0o077 else None
