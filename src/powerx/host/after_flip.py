"""Work a reload defers until the new generation has answered its first request and its
swap is on disk (or ``after_flip_wait_s``): retiring the previous generation, warming the
next spare, teaching a zygote the modules a generation loaded."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from powerx.host.generations import Generation

if TYPE_CHECKING:
    from powerx.host.supervisor import Supervisor

__all__ = [
    "learn_modules",
    "retire_after_first_request",
    "settled",
    "warm_next_after_first_request",
]


async def settled(supervisor: Supervisor, gen: Generation) -> None:
    """Until ``gen`` has answered its first request and its swap is on disk, or
    ``after_flip_wait_s``: work done sooner competes for the CPU with the request the
    developer saved for, then with the rest of the reload."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(supervisor.tuning.after_flip_wait_s):
            await gen.served.wait()
            await gen.swapped.wait()


async def learn_modules(supervisor: Supervisor, gen: Generation, message: dict[str, Any]) -> None:
    """Modules of its environment a generation loaded: its zygote imports them too,
    once that generation's first request and swap are done."""
    names = message.get("names")
    if gen.python is None or not isinstance(names, list):
        return
    await settled(supervisor, gen)
    if not supervisor.closing:
        supervisor.launchers.learn(gen, [str(name) for name in names])


async def warm_next_after_first_request(
    supervisor: Supervisor, gen: Generation, runtime: str
) -> None:
    """Start the next warm spare (a Node start-up costs ~0.1 s of CPU) after
    ``gen``'s first request and swap."""
    await settled(supervisor, gen)
    if not supervisor.closing:
        supervisor.launchers.warm_next(gen, runtime)


async def retire_after_first_request(
    supervisor: Supervisor, previous: Generation, gen: Generation
) -> None:
    """Stop the previous generation (it gets no new requests) after ``gen``'s first
    request and swap; it drains what it still serves."""
    await settled(supervisor, gen)
    await supervisor.stop_generation(previous, drain=True)
