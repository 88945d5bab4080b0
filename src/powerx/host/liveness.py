"""PowerX's liveness check of a running backend program: its health path, probed every
``interval_s`` with a ``timeout_s`` budget; ``failures`` misses in a row and the program
is taken for hung (the supervisor then restarts it, with backoff, as after a crash).
PowerX's supervisor probes every 2 s and restarts after 5 failures: the defaults of
``liveness_interval_s`` and ``liveness_failures`` in ``powerx.config.Tuning``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def watch_liveness(
    probe: Callable[[], Awaitable[bool]],
    on_dead: Callable[[int], None],
    interval_s: float,
    failures: int,
) -> None:
    """Probe until ``failures`` probes in a row fail, then call ``on_dead(failures)``."""
    missed = 0
    while missed < failures:
        await asyncio.sleep(interval_s)
        missed = 0 if await probe() else missed + 1
    on_dead(missed)
