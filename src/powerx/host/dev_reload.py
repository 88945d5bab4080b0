"""A reload through PowerX's dev protocol: the simulator builds the session's folder and
serves it the way it serves a save.

px-plugin's reload request carries no code, only what changed (a bundle hash, the files):
the host builds what the session was registered with. So the simulator does on its own
side what ``powerx dev`` does on a save: the plugin's requests are held from the moment
the reload arrives, the folder is built (incrementally: the session keeps its build
cache), and the artefact goes through the same admission and generation swap as an
upload to ``/internal/debug/hot-reload``. A build that fails leaves the serving
generation serving and is recorded as a failed reload, with the file and line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from powerx.errors import PowerXError
from powerx.host.dev_sessions import DevSession
from powerx.host.simulator import Activation, Simulator
from powerx.observe.observer import new_reload_id, reload_record


async def reload_from_source(
    simulator: Simulator, session: DevSession, changed: Sequence[str]
) -> tuple[Activation, float]:
    """Build ``session``'s folder and serve it; the activation and the build's ms.
    A failure (build, admission, start) raises with the serving generation unchanged."""
    received = time.perf_counter()
    plugin = session.plugin_id
    announced = plugin in simulator.supervisor.slots
    if announced:  # as the dev loop's note does: requests wait for the new code
        simulator.gate.expect(plugin)
        simulator.dev_loops.announced(plugin, True, changed)
    try:
        try:
            artefact = await asyncio.to_thread(session.builder.build)
        except PowerXError as error:
            if announced:
                simulator.dev_loops.announced(plugin, False, ())
            await _build_failed(simulator, plugin, error, received)
            raise
        activation = await simulator.hot_reload(
            artefact.data,
            artefact.digest,
            artefact.source_dir,
            artefact.timings(),
            received,
            plugin,  # one session's folder must not replace another plugin
        )
        return activation, artefact.build_ms
    finally:
        simulator.gate.settle(plugin)
        simulator.dev_loops.settled(plugin)


async def _build_failed(
    simulator: Simulator, plugin: str, error: PowerXError, received: float
) -> None:
    """Record a build that failed before anything reached admission: what serves is
    stale from now on, and the reload is in the telemetry, the audit trail and events."""
    reload_id = new_reload_id()
    error.details.setdefault("reload_id", reload_id)
    failure = simulator.reload_failures.failed(plugin, error.code, error.message, error.fix)
    await simulator.observer.reload_finished(
        reload_record(
            reload_id,
            plugin,
            "failed",
            received,
            generation=failure.serving_generation,
            reason=error.code,
            phases={"build_ms": (time.perf_counter() - received) * 1000},
        ),
        error.message,
        {k: v for k, v in error.details.items() if k in {"file", "line", "kind"}},
    )
