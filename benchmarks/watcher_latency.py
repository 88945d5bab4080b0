"""Time from a file write to the batch `powerx dev`'s watcher yields, per watchfiles step.

The watcher is the first phase of every reload and the one the reload line cannot show
(its clock starts at the batch). Writes go to a plugin-shaped folder in a temp dir.

    python benchmarks/watcher_latency.py                  # steps 2, 5 and 10, 40 writes each
    python benchmarks/watcher_latency.py --steps 2 5 10 --writes 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from powerx.reload import watcher


async def measure(step_ms: int, writes: int, folder: Path) -> list[float]:
    watcher.STEP_MS = step_ms  # read when the watch starts
    plan = watcher.plan_watch(folder)
    source = folder / "src" / "index.ts"
    stop = asyncio.Event()
    armed = asyncio.Event()
    batches = watcher.watch(plan, stop, lambda _plan: armed.set())
    latencies: list[float] = []
    pending = asyncio.ensure_future(anext(batches))
    await armed.wait()
    for number in range(writes):
        written = time.perf_counter()
        source.write_text(f'export const GREETING = "edit {number}";\n')
        await pending
        latencies.append((time.perf_counter() - written) * 1000)
        await asyncio.sleep(0.05)  # let the rest of this save's events arrive
        pending = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.1)
        if pending.done():  # a late event of the last write: not a new batch to time
            pending = asyncio.ensure_future(anext(batches))
    stop.set()
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
        await pending
    await batches.aclose()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[2, 5, 10])
    parser.add_argument("--writes", type=int, default=40)
    args = parser.parse_args()
    print("| step ms | writes | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    for step in args.steps:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "src").mkdir()
            (folder / "src" / "index.ts").write_text("export const GREETING = 'start';\n")
            found = sorted(asyncio.run(measure(step, args.writes, folder)))
            p95 = found[max(0, round(0.95 * len(found)) - 1)]
            print(
                f"| {step} | {len(found)} | {statistics.median(found):.1f} | {p95:.1f} "
                f"| {found[-1]:.1f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
