"""Long sessions: what one reload leaves behind must go, or a day of saves adds up
(`benchmarks/soak.py` runs 2,000 of them and measures the processes)."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path
from typing import Any

from powerx.bundling import BuildSession
from powerx.client.dev import SimulatorClient
from powerx.config import SimulatorConfig, Tuning
from powerx.host.artefacts import ActiveRecord
from powerx.host.simulator import Simulator
from powerx.reload.executor import PluginLoop, ReloadOutcome
from powerx.reload.watcher import WatchPlan
from powerx.testing import WaitTimeout, wait_until_async
from tests.conftest import HELLO_PYTHON, Workspace
from tests.integration.test_hot_reload import copy_example, set_python_greeting

PY_ID = "com.example.hello-python"


class SilentReporter:
    """Keeps nothing: whatever the test finds alive, the dev loop holds."""

    def watching(self, plan: WatchPlan) -> None:
        pass

    def reloaded(self, outcome: ReloadOutcome) -> None:
        pass

    def alert(self, state: str, alert: dict[str, Any]) -> None:
        pass


def outcomes_alive() -> int:
    gc.collect()
    return sum(isinstance(thing, ReloadOutcome) for thing in gc.get_objects())


async def outcomes_settle_to(limit: int, timeout_s: float = 10.0) -> int:
    """The outcomes alive once the reloads' background reports (telemetry, alerts),
    which hold theirs for a moment, are done; or at the timeout."""
    try:
        return await wait_until_async(outcomes_alive, timeout_s, accept=lambda n: n <= limit)
    except WaitTimeout as timeout:
        assert isinstance(timeout.last, int)
        return timeout.last


def test_the_dev_loop_keeps_no_record_of_each_reload(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "hello-python")
    simulator = start_simulator([plugin])

    async def reload(loop: PluginLoop, times: int) -> None:
        for _ in range(times):
            set_python_greeting(plugin, f"v{time.monotonic_ns()}")
            outcome = await loop.reload_once(["app.py"], time.perf_counter())
            assert outcome.ok and outcome.status != "unchanged", outcome

    async def session() -> tuple[int, int]:
        client = SimulatorClient(simulator.url, workspace.token())
        loop = PluginLoop(plugin, client, tmp_path / "build", SilentReporter())
        try:
            await reload(loop, 1)
            after_one = await outcomes_settle_to(0)
            await reload(loop, 30)
            return after_one, await outcomes_settle_to(after_one)
        finally:
            loop.close()
            await client.close()

    after_one, after_thirty_one = asyncio.run(session())
    assert after_thirty_one <= after_one, (
        f"{after_thirty_one} reload outcomes alive after 31 reloads, {after_one} after one"
    )


def test_the_simulator_keeps_no_record_of_each_started_artefact(tmp_path: Path) -> None:
    """The count of starts under way per artefact kept a zero for every artefact ever
    started: one key a reload, for the whole session. Checked in the process that counts
    (a real simulator object, real plugin processes)."""
    plugin = copy_example(HELLO_PYTHON, tmp_path / "hello-python")

    async def session() -> dict[str, int]:
        simulator = Simulator(SimulatorConfig(), tmp_path / "state", "http://127.0.0.1:9")
        build = BuildSession(plugin, tmp_path / "build")
        try:
            for number in range(5):
                set_python_greeting(plugin, f"v{number}")
                artefact = build.build()
                activation = await simulator.hot_reload(
                    artefact.data, artefact.digest, plugin, {}, time.perf_counter()
                )
                assert activation.generation == number + 1
            return simulator.run_trees.under_way()
        finally:
            build.close()
            await simulator.stop()

    assert asyncio.run(session()) == {}


def test_old_artefacts_go_after_reloads_but_what_serves_and_rollback_need_stays(
    tmp_path: Path,
) -> None:
    """A day of saves must not fill the disk (a Go artefact holds a binary): after each
    reload the store keeps the newest ``artefacts_kept``, and always what serves and what
    served just before (``host rollback`` goes there), however old."""
    plugin = copy_example(HELLO_PYTHON, tmp_path / "hello-python")
    kept = 10

    async def session() -> tuple[list[str], list[str], list[str], ActiveRecord | None]:
        config = SimulatorConfig(tuning=Tuning(artefacts_kept=kept))
        simulator = Simulator(config, tmp_path / "state", "http://127.0.0.1:9")
        build = BuildSession(plugin, tmp_path / "build")
        saved: list[str] = []

        async def save(greeting: str) -> None:
            set_python_greeting(plugin, greeting)
            artefact = build.build()
            saved.append(artefact.digest)
            await simulator.hot_reload(
                artefact.data, artefact.digest, plugin, {}, time.perf_counter()
            )
            await simulator.pruner.settled()

        try:
            for number in range(kept + 6):
                await save(f"v{number}")
            after_saves = simulator.store.stored()
            # Back to the oldest kept one, then one more save: the one it replaced is
            # now the oldest of all, and stays (rollback without --to goes there).
            await simulator.rollback(PY_ID, saved[-kept])
            await save("after the rollback")
            return saved, after_saves, simulator.store.stored(), simulator.store.active(PY_ID)
        finally:
            build.close()
            await simulator.stop()

    saved, after_saves, at_end, pointer = asyncio.run(session())
    assert len(set(saved)) == kept + 7
    assert sorted(after_saves) == sorted(saved[-kept - 1 : -1]), "the newest ones, only"
    assert pointer is not None and pointer.digest == saved[-1]
    assert pointer.previous == saved[-kept - 1]
    assert pointer.previous in at_end and pointer.digest in at_end
    assert len(at_end) == kept + 1, f"{len(at_end)} kept: the newest {kept} and the previous"
