"""The bubblewrap command line of a plugin's sandbox (its namespaces and the mount view it
sees), and how a process inside is found from outside (its pid in the simulator's PID
namespace)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import powerx
import powerx_plugin
from powerx.bundling.toolchain import node_executable
from powerx.errors import PowerXError

__all__ = ["bwrap_command", "devkit_paths", "namespaces", "outer_pid", "system_binds"]

_SYSTEM = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")


def namespaces() -> list[str]:
    return ["--unshare-all", "--die-with-parent", "--new-session"]


def system_binds() -> list[str]:
    args: list[str] = []
    for name in _SYSTEM:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def devkit_paths() -> list[Path]:
    """What a plugin process needs of the DevKit: the interpreter (and its venv), the
    ``powerx`` and ``powerx_plugin`` packages, Node; outside the system folders."""
    candidates = [
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.exec_prefix),
        Path(sys.base_exec_prefix),
        Path(sys.executable).resolve().parent.parent,
        Path(powerx.__file__).resolve().parent.parent,
        Path(powerx_plugin.__file__).resolve().parent.parent,
    ]
    with contextlib.suppress(PowerXError):
        candidates.append(Path(node_executable()).resolve().parent.parent)
    system = tuple(Path("/") / name for name in _SYSTEM)
    chosen: list[Path] = []
    for path in sorted({p.resolve() for p in candidates}, key=lambda p: len(p.parts)):
        if path == Path("/") or any(path.is_relative_to(s) for s in system):
            continue
        if not any(path.is_relative_to(c) for c in chosen):
            chosen.append(path)
    return chosen


def bwrap_command(
    bwrap: str,
    run_folder: Path,
    sockets: Path,
    host_socket: Path | None = None,
    grpc_socket: Path | None = None,
    mounts: Sequence[tuple[Path, Path]] = (),
) -> list[str]:
    """The sandbox: namespaces, then the mount view, built from nothing (order matters:
    a bind below ``/tmp`` must come after the ``/tmp`` tmpfs). ``mounts``: more folders
    it sees, read-only, as (folder, where inside); those that exist and that the view
    does not hold already."""
    args = [bwrap, *namespaces(), *system_binds()]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    devkit = devkit_paths()
    for path in devkit:
        args += ["--ro-bind", str(path), str(path)]
    covered = (*devkit, *(Path("/") / name for name in _SYSTEM))
    for path, inside in mounts:
        if path.is_dir() and not (path == inside and any(path.is_relative_to(c) for c in covered)):
            args += ["--ro-bind", str(path), str(inside)]
    args += ["--ro-bind", str(run_folder), str(run_folder)]
    args += ["--bind", str(sockets), str(sockets), "--chdir", str(run_folder)]
    if host_socket is not None:  # the simulator's HTTP server, for the host API
        args += ["--bind", str(host_socket), str(host_socket)]
    if grpc_socket is not None:  # the host's gRPC services (host/upstream): this file only
        args += ["--bind", str(grpc_socket), str(grpc_socket)]
    return args


def outer_pid(root: int, inner: int) -> int | None:
    """The pid (as the simulator sees it) of the process that is ``inner`` inside the
    sandbox whose outermost process is ``root``: a walk down ``/proc``'s children lists
    comparing each process's innermost ``NSpid``."""
    queue = deque([root])
    seen: set[int] = set()
    while queue:
        pid = queue.popleft()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:"):
                ids = line.split()[1:]
                if pid != root and len(ids) > 1 and int(ids[-1]) == inner:
                    return pid
        queue.extend(int(child) for child in children)
    return None
