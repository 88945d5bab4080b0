"""What a generation's process says, read while it runs: its output lines (into the plugin's
log), the control messages among them (ready, egress blocked, a debugger endpoint, the
modules it loaded), and its exit (a crash while serving is restarted)."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from powerx.host.after_flip import learn_modules
from powerx.host.crash_restarts import restart_after_crash
from powerx.host.generations import Generation, PluginSlot
from powerx.runtimes import CONTROL_PREFIX

if TYPE_CHECKING:
    from powerx.host.supervisor import Supervisor

__all__ = ["attach_debugger", "read_stderr", "read_stdout", "watch_exit"]

# What Node's inspector writes to stderr of a generation the simulator debugs.
_INSPECTOR_CHATTER = (
    "Debugger listening on ws://",
    "For help, see: https://nodejs.org/en/docs/inspector",
    "Debugger attached.",
    "Waiting for the debugger to disconnect...",
)


async def read_stdout(supervisor: Supervisor, slot: PluginSlot, gen: Generation) -> None:
    async for raw in gen.process.stdout:
        line = raw.decode(errors="replace").rstrip("\n")
        if line.startswith(CONTROL_PREFIX):
            with contextlib.suppress(ValueError):
                message = json.loads(line[len(CONTROL_PREFIX) :])
                if message.get("event") == "egress_blocked":
                    if supervisor.on_egress_blocked is not None:
                        supervisor.on_egress_blocked(slot, gen, message)
                elif message.get("event") == "debug":
                    supervisor._spawn_background(attach_debugger(supervisor, slot, gen, message))
                elif message.get("event") == "modules":
                    supervisor._spawn_background(learn_modules(supervisor, gen, message))
                elif not gen.ready.done():
                    gen.ready.set_result(message)
                continue
        supervisor._log(slot, gen.number, "stdout", line)


async def attach_debugger(
    supervisor: Supervisor, slot: PluginSlot, gen: Generation, message: dict[str, Any]
) -> None:
    """The generation waits for its breakpoints before loading code; replay them. If
    that fails it would wait forever, so it is stopped and the start reports why."""
    if supervisor.debug is None:
        return
    try:
        message = await supervisor.network.debug_endpoint(gen, message)
        await supervisor.debug.generation_listening(
            slot.manifest.id, gen.number, gen.run_dir, message
        )
    except Exception as error:
        supervisor._log(slot, gen.number, "system", f"debugger attach failed: {error!r}")
        gen.process.kill()


async def read_stderr(supervisor: Supervisor, slot: PluginSlot, gen: Generation) -> None:
    async for raw in gen.process.stderr:
        line = raw.decode(errors="replace").rstrip("\n")
        if not line.startswith(_INSPECTOR_CHATTER):
            supervisor._log(slot, gen.number, "stderr", line)


async def watch_exit(supervisor: Supervisor, slot: PluginSlot, gen: Generation) -> None:
    code = await gen.process.wait()
    gen.exit_code = code
    if not gen.ready.done():
        gen.ready.set_result({"event": "exited", "code": code})
    if gen.state == "running":
        gen.state = "crashed"
        supervisor.tokens.pop(gen.token, None)
        supervisor._log(
            slot,
            gen.number,
            "system",
            f"generation {gen.number} exited unexpectedly with code {code}",
        )
        if slot.active is gen and not supervisor.closing:
            supervisor._spawn_background(restart_after_crash(supervisor, slot, gen))
    elif gen.state == "draining":
        gen.state = "stopped"
