"""A generation that crashed (or hung) while serving: restarted with backoff, or, after
repeated crashes, reported as a crash loop instead of being retried forever."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from powerx.errors import PowerXError
from powerx.host.generations import CRASH_LOOP_AFTER, Generation, PluginSlot

if TYPE_CHECKING:
    from powerx.host.supervisor import Supervisor

__all__ = ["end_hung_program", "restart_after_crash"]


def end_hung_program(
    supervisor: Supervisor, slot: PluginSlot, gen: Generation, missed: int
) -> None:
    """A running program stopped answering its health path: end it; its exit is then
    a crash, restarted with backoff."""
    health = slot.manifest.backend.health if slot.manifest.backend else ""
    supervisor._log(
        slot,
        gen.number,
        "system",
        f"generation {gen.number} failed its health probe ({health}) {missed} times in a "
        "row; restarting it",
    )
    gen.process.kill()


async def restart_after_crash(
    supervisor: Supervisor, slot: PluginSlot, crashed: Generation
) -> None:
    now = time.monotonic()
    slot.crashes.append(now)
    window = supervisor.tuning.crash_window_s
    recent = [t for t in slot.crashes if now - t <= window]
    if len(recent) >= CRASH_LOOP_AFTER:
        slot.crash_loop = True
        supervisor._log(
            slot,
            crashed.number,
            "system",
            f"crash loop: {len(recent)} crashes in {window:g} s; not restarting. "
            "Fix the plugin and save (or reload) to start it again.",
        )
        return
    first, most = (supervisor.tuning.crash_backoff_first_s, supervisor.tuning.crash_backoff_max_s)
    if slot.manifest.is_backend:
        first, most = (
            supervisor.tuning.program_backoff_first_s,
            supervisor.tuning.program_backoff_max_s,
        )
    delay = min(most, first * 2 ** (len(recent) - 1))
    supervisor._log(slot, crashed.number, "system", f"restarting in {delay:.1f} s")
    await asyncio.sleep(delay)
    async with slot.lock:
        if slot.active is not crashed or supervisor.closing:
            return  # a reload replaced it meanwhile
        try:
            gen = await supervisor.start_generation(
                slot, crashed.digest, crashed.run_dir, crashed.python
            )
        except PowerXError as error:
            supervisor._log(slot, crashed.number, "system", f"restart failed: {error.message}")
            supervisor._spawn_background(restart_after_crash(supervisor, slot, crashed))
            return
        slot.restarts += 1
        slot.active = gen
        gen.swapped.set()  # the pointer already names its artefact
        supervisor._publish_flip(gen, crashed, after_crash=True)
        supervisor._log(
            slot, gen.number, "system", f"restarted as generation {gen.number} after a crash"
        )
