"""Ways to start a plugin process, fastest first, behind one process handle.

- :class:`ZygoteLauncher` (Python on Linux): fork a warm parent that has the server
  stack imported; the child gets its own stdin/stdout/stderr pipes over SCM_RIGHTS.
- :class:`SpareLauncher` (Node everywhere, Python where fork is unsafe): keep one
  pre-started shim waiting for "run this artefact"; replace it as soon as it is taken.
- :class:`ColdLauncher`: a fresh process per generation (the fallback).
- :class:`ProgramLauncher`: a backend plugin's own program (``backend.entry``), no shim.

``POWERX_PYTHON_LAUNCH`` / ``POWERX_NODE_LAUNCH`` = ``zygote`` | ``spare`` | ``cold`` force one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from powerx.host.launcher.cold import ColdLauncher, ProgramLauncher
from powerx.host.launcher.process import (
    ChildProcess,
    ForkedProcess,
    Launcher,
    LaunchSpec,
    NodePreload,
    PluginProcess,
    Probe,
    Reach,
    pipe_reader,
    shim_command,
)
from powerx.host.launcher.spare import SpareLauncher
from powerx.host.launcher.zygote import ZygoteLauncher

if TYPE_CHECKING:
    from powerx.host.sandbox import Sandbox

__all__ = [
    "ChildProcess",
    "ColdLauncher",
    "ForkedProcess",
    "LaunchSpec",
    "Launcher",
    "NodePreload",
    "PluginProcess",
    "Probe",
    "ProgramLauncher",
    "Reach",
    "SpareLauncher",
    "ZygoteLauncher",
    "choose_launcher",
    "pipe_reader",
    "shim_command",
]


def choose_launcher(
    runtime: str,
    base_env: Mapping[str, str],
    cwd: str,
    probe: Probe | None = None,
    reach: Reach | None = None,
    sandbox: Sandbox | None = None,
) -> Launcher:
    if runtime == "program":
        return ProgramLauncher(sandbox)
    variable = "POWERX_PYTHON_LAUNCH" if runtime == "python3.11" else "POWERX_NODE_LAUNCH"
    forced = os.environ.get(variable, "").strip().lower()
    fork_safe = sys.platform.startswith("linux") and hasattr(os, "fork")
    if runtime == "python3.11" and (forced == "zygote" or (not forced and fork_safe)):
        return ZygoteLauncher(base_env, cwd, sandbox)
    if forced == "cold":
        return ColdLauncher(sandbox)
    return SpareLauncher(runtime, base_env, cwd, probe, reach, sandbox)
