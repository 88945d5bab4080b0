"""The file watcher on real files: native events, the poller, and what is left out."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from powerx.reload.watcher import WatchPlan, plan_watch, polling_reason, watch


async def collect_after(
    plan: WatchPlan, edit: Callable[[], None], settle_s: float = 0.4
) -> set[Path]:
    stop = asyncio.Event()
    seen: set[Path] = set()

    async def consume() -> None:
        async for batch in watch(plan, stop):
            seen.update(batch)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)  # armed
    edit()
    await asyncio.sleep(settle_s)
    stop.set()
    await asyncio.wait_for(task, 5)
    return seen


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

    assert asyncio.run(collect_after(plan, edit)) == set()


def test_the_poller_sees_two_saves_within_one_second(tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "p")
    plan = plan_watch(root, force_polling=True)
    target = root / "app.py"
    batches: list[set[Path]] = []

    async def run() -> None:
        stop = asyncio.Event()

        async def consume() -> None:
            async for batch in watch(plan, stop):
                batches.append(batch)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.2)
        target.write_text("y = 1\n")  # same size as before: only mtime_ns differs
        await asyncio.sleep(0.25)
        target.write_text("y = 2\n")
        await asyncio.sleep(0.25)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(run())
    assert sum(target in batch for batch in batches) == 2


def test_polling_is_chosen_when_forced_by_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert polling_reason(tmp_path, force=False) is None
    monkeypatch.setenv("POWERX_FORCE_POLLING", "1")
    assert "forced" in (polling_reason(tmp_path, force=False) or "")
