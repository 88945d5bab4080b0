"""The simulator's state as `host status`, the dashboard and `/internal/debug/status`
show it: one row per plugin (mounted, or known only from a failed first reload) and the
host's own settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from powerx import __version__
from powerx.host.plugin_environments import dependencies_status
from powerx.host.reload_failures import ReloadFailure, plugin_state

if TYPE_CHECKING:
    from powerx.host.simulator import Simulator


def simulator_status(simulator: Simulator) -> dict[str, Any]:
    plugins = []
    for plugin_id, slot in simulator.supervisor.slots.items():
        gen = slot.active
        record = simulator.store.active(plugin_id)
        failure = simulator.reload_failures.affecting(plugin_id, gen.digest if gen else None)
        plugins.append(
            {
                "id": plugin_id,
                "name": slot.manifest.name,
                "version": slot.manifest.version,
                "runtime": slot.manifest.runtime,
                "source": str(slot.source_dir),
                "state": plugin_state(
                    gen.state if gen else None, slot.crash_loop, failure is not None
                ),
                "failure": failure.to_dict() if failure else None,
                "generation": gen.number if gen else None,
                "digest": gen.digest if gen else None,
                "previous_digest": record.previous if record else None,
                "pid": gen.pid if gen else None,
                "port": gen.port if gen else None,
                "start_ms": round(gen.start_ms, 1) if gen else None,
                "exit_code": gen.exit_code if gen else None,
                "restarts": slot.restarts,
                "contained": simulator.supervisor.contained,
                "dependencies": dependencies_status(
                    gen.python if gen else None,
                    simulator.supervisor.launcher(slot.manifest.runtime, plugin_id),
                ),
                "launcher": simulator.supervisor.launcher(slot.manifest.runtime, plugin_id).name,
                "launcher_warm": simulator.supervisor.launcher(
                    slot.manifest.runtime, plugin_id
                ).warm(),
                "permissions": slot.manifest.permissions,
                "url": simulator.url + slot.manifest.serving_path,
                "debug_port": simulator.debugger.debug_port(plugin_id),
                "debugging": simulator.debugger.debugging(plugin_id),
                "watch": simulator.dev_loops.status(
                    plugin_id, simulator.gate.holding(plugin_id), simulator.gate.held(plugin_id)
                ),
            }
        )
    for plugin_id, failure in simulator.reload_failures.last.items():
        if plugin_id not in simulator.supervisor.slots:  # its first build or upload failed
            row = _never_mounted(plugin_id, failure)
            row["watch"] = simulator.dev_loops.status(
                plugin_id, simulator.gate.holding(plugin_id), simulator.gate.held(plugin_id)
            )
            plugins.append(row)
    return {
        "host": {
            "url": simulator.url,
            "image": simulator.image.name,
            "api_version": simulator.image.api_version,
            "powerx_version": __version__,
            "started_at": simulator.started_at,
            "tenant": simulator.config.tenant,
            "flags": simulator.config.flags,
            "counters": dict(simulator.counters),
            "containment": simulator.containment.as_dict(),
            "grpc": simulator.upstream.status(),
        },
        "plugins": plugins,
    }


def _never_mounted(plugin_id: str, failure: ReloadFailure) -> dict[str, Any]:
    """A status row for a plugin the simulator knows only from its failed first reload."""
    return {
        "id": plugin_id,
        "name": None,
        "version": None,
        "runtime": None,
        "source": None,
        "state": "failed",
        "failure": failure.to_dict(),
        "generation": None,
        "digest": None,
        "previous_digest": None,
        "pid": None,
        "port": None,
        "start_ms": None,
        "exit_code": None,
        "restarts": 0,
        "launcher": None,
        "launcher_warm": False,
        "permissions": [],
        "url": None,
        "debug_port": None,
        "debugging": False,
        "dependencies": None,
    }
