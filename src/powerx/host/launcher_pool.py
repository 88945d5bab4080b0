"""The supervisor's launchers: one per runtime (per plugin and runtime, where plugins run
in sandboxes), chosen on first use, warmed before they are needed, taught the modules a
generation imported, and retired with the Python runtimes no generation uses any more."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from powerx.host.generations import Generation
from powerx.host.launcher import Launcher, ZygoteLauncher, choose_launcher
from powerx.host.plugin_network import PluginNetwork


class LauncherPool:
    def __init__(self, network: PluginNetwork, work_dir: Path) -> None:
        self._network = network
        self._work_dir = work_dir
        self.launchers: dict[tuple[str, str], Launcher] = {}  # (runtime, plugin or "")

    def launcher(self, runtime: str, plugin: str) -> Launcher:
        sandbox = self._network.sandbox(plugin)
        key = (runtime, plugin if sandbox is not None else "")
        if key not in self.launchers:
            cwd = sandbox.run_folder if sandbox is not None else self._work_dir
            self.launchers[key] = choose_launcher(
                runtime,
                self._network.process_env(plugin),
                str(cwd),
                self._healthy_once_loaded,
                self._network.reach,
                sandbox,
            )
        return self.launchers[key]

    async def _healthy_once_loaded(self, url: str) -> bool:
        """The probe a warm spare holds until it is given a plugin (maybe minutes later);
        a spare that never loads one is stopped, which ends it."""
        return await self._network.healthy(url, timeout_s=None)

    def prepare(self, plugins: Iterable[tuple[str, str]]) -> None:
        """Start warm parents/spares early so the next reload already finds them;
        ``plugins``: (runtime, plugin id) pairs."""
        for runtime, plugin in plugins:
            launcher = self.launcher(runtime, plugin)
            prepare = getattr(launcher, "prepare", None)
            if prepare is not None:
                prepare()

    def warm_next(self, gen: Generation, runtime: str) -> None:
        """The next warm spare for ``gen``'s plugin (a Node start-up costs ~0.1 s of CPU:
        called once ``gen``'s first request and swap are done)."""
        launcher = self.launcher(runtime, gen.plugin_id)
        if isinstance(launcher, ZygoteLauncher) and gen.python is not None:
            launcher.prepare(gen.python)  # that plugin's zygote, where launchers are shared
        else:
            self.prepare({(runtime, gen.plugin_id)})

    def learn(self, gen: Generation, names: list[str]) -> None:
        """Modules of its environment ``gen`` loaded: its zygote imports them too."""
        learn = getattr(self.launcher("python3.11", gen.plugin_id), "learn", None)
        if learn is not None and gen.python is not None:
            learn(gen.python, names)

    def release(self, in_use: set[str]) -> None:
        """Zygotes of Python runtimes (environments) not ``in_use`` are retired."""
        for launcher in self.launchers.values():
            if isinstance(launcher, ZygoteLauncher):
                launcher.release(in_use)

    async def close(self) -> None:
        await asyncio.gather(*(launcher.close() for launcher in self.launchers.values()))
