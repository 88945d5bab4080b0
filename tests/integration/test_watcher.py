"""The file watcher on real files: native events, the poller, and what is left out."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from powerx.file_events import polling_reason
from powerx.reload.watcher import WatchPlan, plan_watch, watch


class Watching:
    """A watcher running in the test's event loop: what it has reported, by batch, and
    the plans it said it was armed with."""

    def __init__(self, plan: WatchPlan) -> None:
        self.plan = plan
        self.stop = asyncio.Event()
        self.batches: list[set[Path]] = []
        self.plans: list[WatchPlan] = []
        self._armed = asyncio.Event()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def seen(self) -> set[Path]:
        return set().union(*self.batches)

    def on_armed(self, plan: WatchPlan) -> None:
        self.plans.append(plan)
        self._armed.set()

    async def __aenter__(self) -> Watching:
        async def consume() -> None:
            async for batch in watch(self.plan, self.stop, self.on_armed):
                self.batches.append(batch)
                self._arrived.set()

        self._task = asyncio.create_task(consume())
        await asyncio.wait_for(self._armed.wait(), 10)
        return self

    async def until(self, seen: Callable[[set[Path]], bool], timeout_s: float = 10) -> None:
        """Wait until what was reported so far satisfies ``seen``."""
        async with asyncio.timeout(timeout_s):
            while not seen(self.seen):
                self._arrived.clear()
                await self._arrived.wait()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop.set()
        assert self._task is not None
        await asyncio.wait_for(self._task, 5)


async def collect_after(plan: WatchPlan, edit: Callable[[], None]) -> set[Path]:
    """What the watcher reports of ``edit``, up to later saves of a fence file at the root
    and in each source folder: each place's changes reach the watcher in the order they
    were made, so anything ``edit`` caused is in by the time its fences are."""
    fences = {plan.root / "fence.py", *(folder / "fence.ts" for folder in plan.folders)}
    async with Watching(plan) as watching:
        edit()
        for fence in fences:
            fence.write_text("fence\n")
        await watching.until(lambda seen: fences <= seen)
    return watching.seen - fences


def make_plugin(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "node_modules" / "dep").mkdir(parents=True)
    (root / "app.py").write_text("x = 1\n")
    (root / "src" / "index.ts").write_text("export {}\n")
    return root


@pytest.mark.parametrize("force_polling", [False, True], ids=["native", "poll"])
def test_atomic_saves_at_the_root_and_in_subfolders_are_seen(
    tmp_path: Path, force_polling: bool
) -> None:
    root = make_plugin(tmp_path / "p")
    plan = plan_watch(root, force_polling=force_polling)
    assert plan.polling is force_polling

    def edit() -> None:
        for target in (root / "app.py", root / "src" / "index.ts"):
            temp = target.with_name(target.name + ".tmp")
            temp.write_text("changed\n")
            os.replace(temp, target)  # how editors save

    seen = asyncio.run(collect_after(plan, edit))
    assert root / "app.py" in seen
    assert root / "src" / "index.ts" in seen


@pytest.mark.parametrize("force_polling", [False, True], ids=["native", "poll"])
def test_caches_and_dependencies_are_not_watched(tmp_path: Path, force_polling: bool) -> None:
    root = make_plugin(tmp_path / "p")
    plan = plan_watch(root, force_polling=force_polling)
    assert root / "node_modules" not in plan.folders

    def edit() -> None:
        (root / "node_modules" / "dep" / "index.js").write_text("x\n")
        (root / "__pycache__").mkdir()
        (root / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
        # What `tsc --incremental` writes when the type check runs: a save would loop.
        (root / "tsconfig.tsbuildinfo").write_text("{}\n")

    assert asyncio.run(collect_after(plan, edit)) == set()


def test_the_poller_sees_two_saves_within_one_second(tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "p")
    plan = plan_watch(root, force_polling=True)
    target = root / "app.py"
    batches: list[set[Path]] = []

    async def run() -> None:
        async with Watching(plan) as watching:
            target.write_text("y = 1\n")  # same size as before: only mtime_ns differs
            await watching.until(lambda seen: target in seen)
            target.write_text("y = 2\n")
            await watching.until(lambda _: sum(target in b for b in watching.batches) == 2)
            batches.extend(watching.batches)

    asyncio.run(run())
    assert sum(target in batch for batch in batches) == 2


def test_polling_is_chosen_when_forced_by_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert polling_reason(tmp_path, force=False) is None
    monkeypatch.setenv("POWERX_FORCE_POLLING", "1")
    assert "forced" in (polling_reason(tmp_path, force=False) or "")


@pytest.mark.parametrize("force_polling", [False, True], ids=["native", "poll"])
def test_a_save_made_the_moment_the_watcher_says_it_is_armed_is_seen(
    tmp_path: Path, force_polling: bool
) -> None:
    root = make_plugin(tmp_path / "p")
    plan = plan_watch(root, force_polling=force_polling)
    target = root / "src" / "index.ts"
    armed: list[WatchPlan] = []

    def save_at_once(armed_plan: WatchPlan) -> None:
        armed.append(armed_plan)
        target.write_text("export const saved = 'the moment it was armed'\n")

    async def run() -> set[Path]:
        stop = asyncio.Event()
        async for batch in watch(plan, stop, save_at_once):
            stop.set()
            return batch
        return set()

    assert asyncio.run(asyncio.wait_for(run(), 10)) == {target}
    assert [p.folders for p in armed] == [(root / "src",)]
    assert armed[0].polling is force_polling


@pytest.mark.parametrize("force_polling", [False, True], ids=["native", "poll"])
def test_a_folder_made_at_the_root_is_watched_from_then_on(
    tmp_path: Path, force_polling: bool
) -> None:
    """Its files are reported (even those written before its own watch began), later
    saves in it too, and the watcher says it again with the new folder."""
    root = make_plugin(tmp_path / "p")
    plan = plan_watch(root, force_polling=force_polling)
    lib = root / "lib"

    async def run() -> Watching:
        async with Watching(plan) as watching:
            (lib / "deep").mkdir(parents=True)
            (lib / "deep" / "mathx.py").write_text("WORD = 1\n")
            await watching.until(lambda seen: lib / "deep" / "mathx.py" in seen)
            watching.batches.clear()
            (lib / "deep" / "mathx.py").write_text("WORD = 2\n")
            await watching.until(lambda seen: lib / "deep" / "mathx.py" in seen)
        return watching

    watching = asyncio.run(run())
    assert [p.folders for p in watching.plans] == [(root / "src",), (lib, root / "src")]
    assert watching.seen == {lib / "deep" / "mathx.py"}


@pytest.mark.parametrize("force_polling", [False, True], ids=["native", "poll"])
def test_editor_temp_files_are_not_changes(tmp_path: Path, force_polling: bool) -> None:
    root = make_plugin(tmp_path / "p")
    plan = plan_watch(root, force_polling=force_polling)

    def edit() -> None:
        for folder in (root, root / "src"):
            for name in (".app.py.swp", ".app.py.swo", ".app.py.swx", "app.py~", ".#app.py"):
                (folder / name).write_text("scratch\n")
            (folder / "4913").write_text("")
            (folder / "sedX1y2Z3").write_text("scratch\n")
            (folder / "#app.py#").write_text("scratch\n")

    assert asyncio.run(collect_after(plan, edit)) == set()
