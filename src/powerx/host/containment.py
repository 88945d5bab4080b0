"""Whether plugins can run contained here (bubblewrap on Linux), with what, or why not:
probed once per process; ``doctor``, ``host status`` and the dashboard show it, and a
simulator that requires containment refuses to start without it."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Literal

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.bwrap import namespaces, system_binds

__all__ = ["INSTALL_HINT", "Containment", "SandboxSetting", "containment", "required_containment"]

SandboxSetting = Literal["auto", "required", "off"]
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`)"


@dataclass(frozen=True)
class Containment:
    """Whether plugins run contained, with what, or why not."""

    contained: bool
    tool: str | None  # e.g. "bubblewrap 0.8.0"
    reason: str  # what contains them, or why nothing does
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "contained": self.contained,
            "tool": self.tool,
            "reason": self.reason,
            "fix": self.fix,
        }


def containment(setting: SandboxSetting = "auto") -> Containment:
    """Probe (once per process) whether bubblewrap can contain plugins here."""
    if setting == "off":
        return Containment(
            False,
            None,
            "turned off (sandbox: off in host_simulator.yaml or POWERX_SANDBOX=off)",
            "remove `sandbox: off` / POWERX_SANDBOX to contain plugins",
        )
    return _probe()


@functools.cache
def _probe() -> Containment:
    if not sys.platform.startswith("linux"):
        return Containment(
            False,
            None,
            f"OS containment needs Linux namespaces; this is {sys.platform}",
            "only the in-process guards apply here; run untrusted plugins in a Linux VM",
        )
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Containment(False, None, "bubblewrap (bwrap) is not installed", INSTALL_HINT)
    version = _bwrap_version(bwrap)
    command = [bwrap, *namespaces(), *system_binds(), "--proc", "/proc", "--dev", "/dev"]
    try:
        result = subprocess.run(
            [*command, "true"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return Containment(False, version, f"bubblewrap could not start: {error}", INSTALL_HINT)
    if result.returncode != 0:
        return Containment(
            False,
            version,
            f"bubblewrap cannot create namespaces here: {result.stderr.strip()[:300]}",
            "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 "
            "or user.max_user_namespaces > 0), or run where they are allowed",
        )
    return Containment(
        True, version, f"{version}: own network, mount and PID namespaces per plugin"
    )


def _bwrap_version(bwrap: str) -> str:
    try:
        out = subprocess.run(
            [bwrap, "--version"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        out = []
    return f"bubblewrap {out[-1]}" if out else "bubblewrap"


def required_containment(setting: SandboxSetting) -> Containment:
    """:func:`containment`, refused (``sandbox_unavailable``) when ``setting`` requires it
    and plugins cannot be contained here."""
    found = containment(setting)
    if setting == "required" and not found.contained:
        raise PowerXError(
            ErrorCode.SANDBOX_UNAVAILABLE,
            f"Plugins must run contained (sandbox: required), but {found.reason}.",
            found.fix or "set `sandbox: auto` to run them uncontained.",
        )
    return found
