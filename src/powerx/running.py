"""Finding a running simulator from anywhere in its project.

A simulator writes ``<state dir>/host.json`` (its URL, pid and port) for the commands run
where it was started. A command run elsewhere, say inside a plugin folder, finds it in two
more ways: a ``.powerx/host.json`` in a parent folder (as git finds ``.git``), and the
per-user list of running simulators, one file per simulator under
``<config home>/simulators/``, naming its state folder and the plugin folders it serves.
Entries of simulators that died (kill -9 leaves them) are dropped when the list is read.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from powerx.paths import config_home, host_info_file

STATE_DIR_NAME = ".powerx"


def registry_dir() -> Path:
    return config_home() / "simulators"


def pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, though not ours
    except OSError:
        return False
    return True


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def register(info: dict[str, Any], state_dir: Path, plugins: list[Path]) -> None:
    """Add this simulator (``info`` as in its host.json) to the per-user list. A list
    that cannot be written (a read-only home) costs only the finding from elsewhere."""
    folder = registry_dir()
    entry = {
        **info,
        "state_dir": str(state_dir.resolve()),
        "plugins": [str(p.resolve()) for p in plugins],
    }
    target = folder / f"{info['pid']}.json"
    tmp = target.with_suffix(".tmp")
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(entry), encoding="utf-8")
        os.replace(tmp, target)


def unregister(pid: int) -> None:
    with contextlib.suppress(OSError):
        (registry_dir() / f"{pid}.json").unlink(missing_ok=True)


def running() -> list[dict[str, Any]]:
    """The simulators of this user that are alive; entries of dead ones are removed."""
    folder = registry_dir()
    if not folder.is_dir():
        return []
    alive = []
    for path in sorted(folder.glob("*.json")):
        entry = _read_json(path)
        if entry is not None and pid_alive(entry.get("pid")):
            alive.append(entry)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return alive


def _live_host_file(path: Path) -> dict[str, Any] | None:
    info = _read_json(path)
    return info if info is not None and pid_alive(info.get("pid")) else None


def _in_project(entry: dict[str, Any], folder: Path) -> int:
    """How closely ``folder`` lies inside what the simulator serves (its project folder or
    a plugin folder): the length of the matching root, 0 when it lies outside."""
    roots = [Path(str(entry.get("state_dir", ""))).parent]
    roots += [Path(str(p)) for p in entry.get("plugins") or []]
    return max((len(root.parts) for root in roots if folder.is_relative_to(root)), default=0)


def find_host_info() -> dict[str, Any] | None:
    """The running simulator this command means: this state folder's (as before, also a
    stale file, so that its absence can be told apart from a crash); else, unless
    ``POWERX_STATE_DIR`` pins the state folder, a live one in a parent folder or the
    live one whose project or plugin folder holds the current folder."""
    own = _read_json(host_info_file())
    if own is not None or os.environ.get("POWERX_STATE_DIR"):
        return own
    here = Path.cwd().resolve()
    for parent in here.parents:
        found = _live_host_file(parent / STATE_DIR_NAME / "host.json")
        if found is not None:
            return found
    matches = [(depth, entry) for entry in running() if (depth := _in_project(entry, here)) > 0]
    if not matches:
        return None
    return max(matches, key=lambda match: match[0])[1]


def simulator_on_port(port: int) -> dict[str, Any] | None:
    """The running simulator (of any project of this user) that listens on ``port``."""
    own = _live_host_file(host_info_file())
    if own is not None and own.get("port") == port:
        return {**own, "state_dir": str(host_info_file().parent.resolve()), "own": True}
    for entry in running():
        if entry.get("port") == port:
            own_state = host_info_file().parent.resolve()
            return {**entry, "own": Path(str(entry.get("state_dir"))) == own_state}
    return None
