"""The warm-spare launcher: a shim started ahead of need, waiting for its plugin."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from powerx.host.launcher.code_cache import ensure_code_cache
from powerx.host.launcher.process import (
    ChildProcess,
    ForkedProcess,
    LaunchSpec,
    NodePreload,
    PluginProcess,
    Probe,
    Reach,
    shim_command,
    spawn,
    succeeded,
)
from powerx.host.python_runtime import devkit_runtime
from powerx.runtimes import CONTROL_PREFIX

if TYPE_CHECKING:
    from powerx.host.sandbox import Sandbox


def _loopback(listening: dict[str, Any]) -> str:
    return f"http://127.0.0.1:{int(listening['port'])}"


class SpareLauncher:
    """Keeps one warm shim per runtime, started before it is needed.

    The next spare is started by ``prepare()`` once the generation that took the last
    one has answered its first request and its swap is on disk, or 0.2 s after it came
    up (the supervisor calls it), not at once: a Node start-up with its warm-up costs
    ~0.1 s of CPU (measured with `/usr/bin/time node node_shim.js --spare`), and on a
    two-core laptop it would slow the very request the user saved for. A spare that
    preloads the plugin's packages is the exception (see ``launch()``). A launch that
    finds no spare starts one and waits for it.
    """

    name = "spare"

    def __init__(
        self,
        runtime: str,
        base_env: Mapping[str, str],
        cwd: str,
        probe: Probe | None = None,
        reach: Reach | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.runtime = runtime
        self.reach = reach or _loopback
        self.sandbox = sandbox
        self.base_env = dict(base_env)
        self.cwd = cwd
        # Sent as soon as a spare listens, so it waits in the spare, parsed, for the plugin:
        # sent after the order it would be read only once the plugin had loaded (~0.4 ms).
        self.probe = probe
        # The spares under way or waiting, oldest (the one the next launch takes) first.
        self._spares: deque[asyncio.Task[ChildProcess | ForkedProcess]] = deque()
        self._code_cache = asyncio.Lock()  # made once, not by two spares at once
        # What the next spare runs on (a Python spare: the DevKit's until told otherwise).
        self.python = devkit_runtime() if runtime == "python3.11" else None
        # What the next Node spare loads ahead: the last generation's dependencies.
        self.node: NodePreload | None = None

    async def _warm(self) -> ChildProcess | ForkedProcess:
        command = shim_command(self.runtime, ["--spare"], self.python)
        env = {**self.base_env, **(self.python.process_env() if self.python else {})}
        if self.node is not None:
            # Once per install and package set (~0.3 s), before the spare that uses it.
            async with self._code_cache:
                await ensure_code_cache(self.node, env, self.cwd, self.sandbox)
            env.update(self.node.spare_env())
        spare = await spawn(command, env, self.cwd, self.sandbox)
        line = await spare.stdout.readline()
        if not line.startswith(CONTROL_PREFIX.encode()):
            spare.kill()
            raise RuntimeError(f"warm spare did not start: {line!r}")
        listening = json.loads(line[len(CONTROL_PREFIX) :])
        if listening.get("port") or listening.get("unix"):
            spare.listening_url = self.reach(listening)
            if self.probe is not None:
                spare.early_probe = asyncio.create_task(self.probe(spare.listening_url))
        return spare

    def _depth(self) -> int:
        """Spares kept under way: two while each loads the plugin's packages (~0.2 s of
        CPU from the code cache, longer than an editor's pace between saves: one alone
        is not ready by the next save, two on two cores take turns), else one."""
        return 2 if self.node is not None and self.node.modules else 1

    def prepare(self) -> None:
        while len(self._spares) < self._depth():
            self._spares.append(asyncio.create_task(self._warm()))

    def warm(self) -> bool:
        return bool(self._spares) and succeeded(self._spares[0])

    async def launch(self, spec: LaunchSpec) -> PluginProcess:
        if spec.python is not None and spec.python != self.python:
            await self.close()  # a spare of the previous environment is of no use
            self.python = spec.python
        if spec.runtime != "python3.11" and spec.node != self.node:
            previous, self.node = self.node, spec.node
            if (previous.key if previous else None) != (spec.node.key if spec.node else None):
                # Loaded from another install (or another plugin's): stale modules would
                # be what the generation finds in require's cache.
                await self.close()
            # Same install, other packages (an import added): this spare serves, it
            # loads them itself; the next spare loads them ahead.
        if not self._spares:
            self.prepare()
        task = self._spares.popleft()
        try:
            spare = await task
        except Exception:
            spare = await self._warm()  # one retry with a fresh spare
        await spare.send_line({"argv": spec.argv, "env": spec.env})
        if self._depth() > 1:
            # Spares that load packages are started now, not after the first request:
            # then they are not ready when the next save comes at an editor's pace. The
            # generation they compete with only evaluates its bundle (the packages are
            # loaded), and two cores run both.
            self.prepare()
        return spare

    async def close(self) -> None:
        while self._spares:
            await self._stop(self._spares.popleft())

    @staticmethod
    async def _stop(task: asyncio.Task[ChildProcess | ForkedProcess]) -> None:
        spare: ChildProcess | ForkedProcess | None = None
        if task.done() and not task.cancelled() and task.exception() is None:
            spare = task.result()
            spare.close_stdin()
            spare.kill()
        else:
            task.cancel()
            with contextlib.suppress(BaseException):
                spare = await task
                spare.kill()
        if spare is not None and spare.early_probe is not None:
            spare.early_probe.cancel()
