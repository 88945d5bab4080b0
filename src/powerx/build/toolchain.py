"""Finding the tools a build or a plugin process needs on this machine."""

from __future__ import annotations

import shutil

from powerx.errors import PowerXError


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise PowerXError(
            "node_missing",
            "Node.js is not installed or not on PATH; node18 plugins need it.",
            "install Node.js 18 or newer (https://nodejs.org or your package manager) and retry.",
        )
    return node
