"""The error a reload answers with when its new generation did not start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from powerx.bundling.node_packages import undeclared_package
from powerx.environments import find_declaration
from powerx.environments.imports import ImportWorld, explain_missing_module
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.generations import Generation, PluginSlot
from powerx.host.programs import backend_unhealthy


def start_error(
    slot: PluginSlot, gen: Generation, message: dict[str, Any], timeout_s: float
) -> PowerXError:
    """Why a generation did not start (its last message: an error it reported, a
    timeout, a failed probe, an exit), as the error the reload answers with."""
    plugin = slot.manifest.id
    event = message.get("event")
    tail = [r.line for r in slot.logs if r.generation == gen.number][-5:]
    if event == "error" and message.get("module"):
        node = not slot.manifest.is_backend and slot.manifest.runtime != "python3.11"
        return module_not_found(plugin, gen, message, slot.source_dir, node)
    if event == "error":
        file, line = message.get("file"), message.get("line")
        where = f" at {file}:{line}" if file else ""
        return PowerXError(
            ErrorCode.PLUGIN_START_FAILED,
            f"{plugin} failed to start ({message.get('kind')}{where}): {message.get('message')}",
            "fix the error at that line and save again.",
            status=422,
            details={"plugin": plugin, "kind": message.get("kind"), "file": file, "line": line},
        )
    if event == "timeout" and slot.manifest.is_backend:
        return backend_unhealthy(slot.manifest, timeout_s, tail)
    if event == "timeout":
        return PowerXError(
            ErrorCode.PLUGIN_START_TIMEOUT,
            f"{plugin} did not report ready within {timeout_s:g} s.",
            "check that the plugin does not block at import time; raise "
            "plugin_start_timeout_s in host_simulator.yaml if it needs longer.",
            status=422,
            details={"plugin": plugin, "output": tail},
        )
    if event == "unhealthy":
        return PowerXError(
            ErrorCode.PLUGIN_UNHEALTHY,
            f"{plugin} started but did not answer its health probe.",
            "check the plugin's startup code for blocking calls.",
            status=422,
            details={"plugin": plugin, "output": tail},
        )
    return PowerXError(
        ErrorCode.PLUGIN_START_FAILED,
        f"{plugin} exited with code {message.get('code')} before it was ready"
        + (f": {tail[-1]}" if tail else "."),
        "run the plugin's entry directly to see the failure, then fix it.",
        status=422,
        details={"plugin": plugin, "output": tail},
    )


def module_not_found(
    plugin: str,
    gen: Generation,
    message: dict[str, Any],
    source_dir: Path,
    runtime_is_node: bool = False,
) -> PowerXError:
    """An import of a module nothing provides: which one, and how to provide it (the
    generic "fix the error at that line" does not say to declare it)."""
    module, file, line = str(message["module"]), message.get("file"), message.get("line")
    if runtime_is_node:
        missing_package = undeclared_package(source_dir, module, file, line)
        return PowerXError(
            ErrorCode.MODULE_NOT_FOUND,
            f"{plugin} failed to start: {missing_package.message}",
            missing_package.fix,
            status=422,
            details={"plugin": plugin, **missing_package.details},
        )
    root = gen.run_dir / "src"  # the plugin's root
    environment = gen.python.environment if gen.python is not None else None
    world = ImportWorld(
        environment.site_packages if environment is not None else None,
        find_declaration(root) if environment is not None else None,
    )
    missing = explain_missing_module(module, root, world)
    where = f"{file}:{line}" if file else "the plugin"
    statement = f"`{message['source']}` in " if message.get("source") else ""
    return PowerXError(
        ErrorCode.MODULE_NOT_FOUND,
        f"{plugin} failed to start: {statement}{where}: {missing.message}.",
        missing.fix,
        status=422,
        details={"plugin": plugin, "module": module, "file": file, "line": line},
    )
