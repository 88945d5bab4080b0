"""The simulator's own code inside a plugin process: never shown, never stepped into.

A generation runs the plugin under the simulator's shim (``runtimes/python_shim.py``, the
zygote, ``powerx_plugin``; ``runtimes/node_shim.js`` and its helpers for Node). To the
developer these frames are noise, and worse: in an editable install debugpy takes them
for *user* code (they are not under site-packages), so ``out`` from a handler lands in
the shim, "User Uncaught Exceptions" stops a second time there, and ``stack`` lists them.

So, in every install mode, the debuggers are told that these folders are library code
(debugpy's ``rules``, V8's blackbox patterns: stepping runs through them, exceptions
stop only where they leave the plugin's code), and stacks shown to a user leave them out.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

import powerx
import powerx.runtimes

__all__ = ["blackbox_patterns", "debugpy_rules", "is_simulator_file"]


@cache
def _roots() -> tuple[str, ...]:
    roots = [Path(powerx.__file__).resolve().parent]
    # The plugin-side helper package, beside powerx (found without importing it here).
    spec = importlib.util.find_spec("powerx_plugin")
    if spec is not None and spec.origin is not None:
        roots.append(Path(spec.origin).resolve().parent)
    return tuple(str(root) for root in roots)


def is_simulator_file(path: str | None) -> bool:
    """A file of the DevKit itself (a path or a ``file://`` URL)."""
    if not path:
        return False
    text = path.removeprefix("file://")
    return any(text == root or text.startswith(root + "/") for root in _roots())


def debugpy_rules() -> list[dict[str, object]]:
    """debugpy's ``rules`` (attach argument): the DevKit's folders are not the user's."""
    return [{"path": root, "include": False} for root in _roots()]


def blackbox_patterns() -> list[str]:
    """``Debugger.setBlackboxPatterns``: the Node shim and its helpers, by script URL, and
    Node's own internals (js-debug's ``<node_internals>``), which the shim calls into."""
    runtimes = Path(powerx.runtimes.__file__).resolve().parent
    return [re.escape(str(runtimes)) + "/", re.escape(runtimes.as_uri()) + "/", "^node:"]
