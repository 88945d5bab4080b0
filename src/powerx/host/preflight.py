"""Everything checked before the simulator touches any state: manifests against the image,
permissions against the image and policy, runtimes on this machine."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from powerx.bundling.go import go_build_for
from powerx.bundling.toolchain import go_executable, node_executable
from powerx.config import SimulatorConfig
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, Problem
from powerx.images import HostImage, check_compatible, get_image, unknown_permissions
from powerx.manifest import PROGRAM, Manifest, load_manifest

NODE_WANTED = 18
PYTHON_WANTED = (3, 11)


@dataclass(frozen=True)
class RuntimeCheck:
    runtime: str
    found: str | None
    warning: str | None = None


@dataclass
class PluginPlan:
    """A plugin folder that passed every check, ready to build and mount."""

    path: Path
    manifest: Manifest
    warnings: list[str] = field(default_factory=list)


def check_runtime(runtime: str) -> RuntimeCheck:
    """Is the runtime the manifest names available here? Newer is accepted with a warning.
    A backend program brings its own (a missing one fails its start, naming it)."""
    if runtime == PROGRAM:
        return RuntimeCheck(runtime, None)
    if runtime == "python3.11":
        found = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
        if sys.version_info[:2] < PYTHON_WANTED:
            raise PowerXError(
                ErrorCode.RUNTIME_TOO_OLD,
                f"python3.11 plugins need Python 3.11; this is {found}.",
                "run powerx from a Python 3.11 (or newer) environment.",
            )
        warning = (
            None
            if sys.version_info[:2] == PYTHON_WANTED
            else (
                f"runtime python3.11 requested; running on local Python {found} (newer, accepted)"
            )
        )
        return RuntimeCheck(runtime, found, warning)
    node = node_executable()
    try:
        output = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        raise PowerXError(
            ErrorCode.NODE_MISSING,
            f"`{node} --version` failed; Node.js looks broken.",
            "reinstall Node.js 18 or newer.",
        ) from None
    match = re.match(r"v(\d+)", output)
    major = int(match.group(1)) if match else 0
    if major < NODE_WANTED:
        raise PowerXError(
            ErrorCode.RUNTIME_TOO_OLD,
            f"node18 plugins need Node.js 18 or newer; found {output}.",
            "install Node.js 18 or newer.",
        )
    warning = (
        None
        if major == NODE_WANTED
        else (f"runtime node18 requested; running on local Node {output} (newer, accepted)")
    )
    return RuntimeCheck(runtime, output, warning)


def check_plugin(path: Path, image: HostImage, config: SimulatorConfig) -> PluginPlan:
    manifest = load_manifest(path)
    check_compatible(manifest, image)
    unknown = unknown_permissions(manifest, image)
    if unknown:
        raise PowerXError(
            ErrorCode.UNKNOWN_PERMISSION,
            f"{manifest.id} asks for scope(s) {', '.join(unknown)} "
            f"that {image.name} does not offer.",
            f"remove them from permissions, or use an image that offers them; "
            f"{image.name} offers: {', '.join(sorted(image.scopes))}",
            problems=[Problem("permissions", f"permissions: unknown scope '{s}'") for s in unknown],
        )
    plan = PluginPlan(path=path, manifest=manifest)
    denied = [s for s in manifest.permissions if s in config.permission_policy.deny]
    if denied:
        plan.warnings.append(
            f"{manifest.id}: the permission policy denies {', '.join(denied)}; "
            "calls needing them will get 403"
        )
    runtime = check_runtime(manifest.runtime)
    if runtime.warning:
        plan.warnings.append(runtime.warning)
    if go_build_for(manifest, path.resolve()) is not None:
        go_executable()  # go_missing now, not after the other plugins were built
    return plan


def plan_plugins(paths: list[Path], config: SimulatorConfig) -> list[PluginPlan]:
    """Check every plugin; report the problems of all of them at once."""
    image = get_image(config.image)
    plans: list[PluginPlan] = []
    failures: list[tuple[Path, PowerXError]] = []
    for path in paths:
        try:
            plans.append(check_plugin(path, image, config))
        except PowerXError as error:
            failures.append((path, error))
    seen: dict[str, Path] = {}
    for plan in plans:
        if plan.manifest.id in seen:
            failures.append(
                (
                    plan.path,
                    PowerXError(
                        ErrorCode.DUPLICATE_PLUGIN,
                        f"{plan.path} and {seen[plan.manifest.id]} both declare id "
                        f"{plan.manifest.id}.",
                        "give each plugin its own id.",
                    ),
                )
            )
        seen[plan.manifest.id] = plan.path
    if len(failures) == 1:
        raise failures[0][1]
    if failures:
        raise PowerXError(
            ErrorCode.PLUGINS_INVALID,
            f"{len(failures)} plugins cannot be mounted.",
            "fix each plugin listed below.",
            problems=[
                Problem(str(path), f"{path}: [{err.code}] {err.message}", err.fix)
                for path, err in failures
            ],
        )
    return plans
