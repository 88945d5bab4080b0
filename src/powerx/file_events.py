"""Whether a folder's native file events (inotify) can be trusted, for the two watchers:
the dev loop's over plugin folders (reload/watcher.py) and the simulator's over the mock
data folder (host/mock_data.py). Where they cannot, those watchers poll.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["polling_reason"]

_NETWORK_FS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "drvfs",
    "fuse.sshfs",
    "sshfs",
    "afs",
    "davfs",
    "fuse.rclone",
    "vboxsf",
    "prl_fs",
}


def _mount_fstype(path: Path) -> str | None:
    """The file system type of the mount holding ``path`` (Linux), else None."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    best, fstype = "", None
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if (
            len(fields) >= 3
            and (resolved == fields[1] or resolved.startswith(fields[1].rstrip("/") + "/"))
            and len(fields[1]) > len(best)
        ):
            best, fstype = fields[1], fields[2]
    return fstype


def polling_reason(root: Path, force: bool) -> str | None:
    """Why native events cannot be trusted for this folder (None: they can)."""
    if force or os.environ.get("POWERX_FORCE_POLLING", "").lower() in {"1", "true", "yes"}:
        return "polling forced (--poll or POWERX_FORCE_POLLING)"
    if "microsoft" in platform.release().lower() and str(root.resolve()).startswith("/mnt/"):
        return "WSL with a Windows drive (/mnt): inotify events do not arrive"
    fstype = _mount_fstype(root)
    if fstype in _NETWORK_FS:
        return f"network file system ({fstype}): inotify events do not arrive"
    return None
