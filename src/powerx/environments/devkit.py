"""What of the DevKit's own install a plugin process sees.

The runtime (shim, zygote, uvicorn, debugpy, ``powerx_plugin``) is imported from the
DevKit's folders; plugin code sees none of it but ``powerx_plugin`` and, for a plugin that
declares no dependencies, the handler toolkit (``starlette``, ``httpx``): what the trivial
examples import. What those import in turn they get (the importer is the DevKit's code);
anything plugin code imports itself, it declares.
"""

from __future__ import annotations

import functools
import sysconfig
from pathlib import Path

import powerx
import powerx_plugin

__all__ = ["SDK", "TOOLKIT", "runtime_paths"]

SDK = frozenset({"powerx_plugin"})
# Kept small on purpose: the real host gives a plugin only what it declares.
TOOLKIT = frozenset({"starlette", "httpx"})


@functools.cache
def runtime_paths() -> tuple[str, ...]:
    """The folders the runtime is imported from: the DevKit's ``site-packages`` and, for an
    editable install, the source folder of ``powerx`` and ``powerx_plugin``."""
    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    paths += [str(Path(m.__file__ or "").resolve().parent.parent) for m in (powerx, powerx_plugin)]
    unique: list[str] = []
    for path in paths:
        if path not in unique:
            unique.append(path)
    return tuple(unique)
