"""Finding the tools a build or a plugin process needs on this machine.

Go plugins need ``go`` (to build) and, to debug them, ``dlv`` (Delve). Each is found at
the path its environment variable names (``POWERX_GO``, ``POWERX_DLV``: a toolchain
outside PATH, or one of several versions), else on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

GO_ENV = "POWERX_GO"
DLV_ENV = "POWERX_DLV"
GO_INSTALL_HINT = (
    "install Go (Debian/Ubuntu: `sudo apt-get install golang-go`; elsewhere see "
    "https://go.dev/doc/install), or set POWERX_GO to the go binary"
)
DLV_INSTALL_HINT = (
    "install Delve (Debian/Ubuntu: `sudo apt-get install delve`; elsewhere "
    "`go install github.com/go-delve/delve/cmd/dlv@latest`), or set POWERX_DLV to the dlv binary"
)


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise PowerXError(
            ErrorCode.NODE_MISSING,
            "Node.js is not installed or not on PATH; node18 plugins need it.",
            "install Node.js 18 or newer (https://nodejs.org or your package manager) and retry.",
        )
    return node


def _configured(env_name: str, program: str) -> str | None:
    explicit = os.environ.get(env_name)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which(program)


def go_executable() -> str:
    """The ``go`` command Go plugins are built with."""
    go = _configured(GO_ENV, "go")
    if go is None:
        where = os.environ.get(GO_ENV)
        raise PowerXError(
            ErrorCode.GO_MISSING,
            f"{GO_ENV}={where} is not an executable go binary; Go plugins are built with it."
            if where
            else "Go is not installed or not on PATH; Go plugins are built with `go build`.",
            GO_INSTALL_HINT + ".",
        )
    return go


def dlv_executable() -> str:
    """The ``dlv`` (Delve) a Go plugin is debugged with."""
    dlv = _configured(DLV_ENV, "dlv")
    if dlv is None:
        where = os.environ.get(DLV_ENV)
        raise PowerXError(
            ErrorCode.DLV_MISSING,
            f"{DLV_ENV}={where} is not an executable dlv binary; Go plugins are debugged with it."
            if where
            else "Delve (dlv) is not installed or not on PATH; Go plugins are debugged with it.",
            DLV_INSTALL_HINT + ".",
        )
    return dlv


@dataclass(frozen=True)
class ToolVersion:
    path: str
    version: str


def _version_of(argv: list[str], pattern: str) -> str | None:
    try:
        output = subprocess.run(
            argv, capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(pattern, output)
    return match.group(1) if match else None


def go_version() -> ToolVersion:
    """``go`` and its version (``1.19.8``); ``go_missing`` when it is absent or broken."""
    go = go_executable()
    version = _version_of([go, "version"], r"go version go(\S+)")
    if version is None:
        raise PowerXError(
            ErrorCode.GO_MISSING,
            f"`{go} version` failed; the Go toolchain looks broken.",
            GO_INSTALL_HINT + ".",
        )
    return ToolVersion(go, version)


def dlv_version() -> ToolVersion:
    """``dlv`` and its version (``1.20.2``); ``dlv_missing`` when it is absent or broken."""
    dlv = dlv_executable()
    version = _version_of([dlv, "version"], r"Version:\s*(\S+)")
    if version is None:
        raise PowerXError(
            ErrorCode.DLV_MISSING,
            f"`{dlv} version` failed; Delve looks broken.",
            DLV_INSTALL_HINT + ".",
        )
    return ToolVersion(dlv, version)
