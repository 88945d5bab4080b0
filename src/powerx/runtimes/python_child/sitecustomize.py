"""Run at start-up by each Python process a Python plugin starts (``PYTHONPATH`` points
here), so that process installs the plugin's egress guard too, from ``POWERX_EGRESS``.

The guard is loaded from its file (it needs only the standard library), so this works
whichever interpreter the plugin starts, with or without powerx installed in it.

In a backend program being debugged (``POWERX_DEBUG_PROGRAM=1``), the first Python also
loads the debugger as the shim does and waits until the simulator has set the breakpoints,
so they hold from the program's first line, in every generation.
"""

import importlib.util
import os
import sys
from pathlib import Path


def _start_debugger() -> None:
    if os.environ.pop("POWERX_DEBUG_PROGRAM", None) != "1":  # popped: its children do not
        return
    try:
        from powerx.runtimes.python_shim import listen_for_debugger
    except ImportError:
        print("powerx: this Python has no DevKit; it runs without the debugger", file=sys.stderr)
        return
    listen_for_debugger()


def _install_guard() -> None:
    path = Path(__file__).resolve().parent.parent / "egress_guard.py"
    spec = importlib.util.spec_from_file_location("_powerx_egress_guard", path)
    if spec is None or spec.loader is None:
        return
    guard = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = guard  # its dataclasses look their module up here
    spec.loader.exec_module(guard)
    guard.install_from_env()


_start_debugger()  # before the guard: debugpy resolves its own listen address
_install_guard()
