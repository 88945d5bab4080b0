"""Run at start-up by each Python process a Python plugin starts (``PYTHONPATH`` points
here), so that process installs the plugin's egress guard too, from ``POWERX_EGRESS``.

The guard is loaded from its file (it needs only the standard library), so this works
whichever interpreter the plugin starts, with or without powerx installed in it.
"""

import importlib.util
import sys
from pathlib import Path


def _install_guard() -> None:
    path = Path(__file__).resolve().parent.parent / "egress_guard.py"
    spec = importlib.util.spec_from_file_location("_powerx_egress_guard", path)
    if spec is None or spec.loader is None:
        return
    guard = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = guard  # its dataclasses look their module up here
    spec.loader.exec_module(guard)
    guard.install_from_env()


_install_guard()
