"""The dev loop: watch -> build -> push -> report, per plugin, concurrently.

Bursts of saves coalesce: while a reload is building or pushing, further changes only
mark the plugin dirty; when the reload ends, one more runs on the folder's state at that
moment. So the latest edit always wins and no queue of stale builds builds up.

A build that more saves overtook while it ran is dropped before it is pushed, and the
folder is built again: the watcher yields within a few ms of the first write, so the rest
of a multi-file save ("Save All", a branch switch) often lands during the build, and the
half-saved state it saw must not be served, nor its errors reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from powerx.build import Artefact, BuildSession
from powerx.errors import PowerXError
from powerx.manifest import load_manifest
from powerx.reload.client import SimulatorClient
from powerx.reload.watcher import WatchPlan, plan_watch, watch

# Builds dropped in a row because newer saves overtook them; then one is pushed anyway,
# so a tool that writes without pause (a code generator in watch mode) still reloads.
MAX_SUPERSEDED_BUILDS = 3
# Telemetry and the alert check of a reload wait this long after its line is printed.
REPORT_AFTER_S = 0.05


@dataclass
class ReloadOutcome:
    plugin: str
    ok: bool
    changed: list[str]
    total_ms: float
    generation: int | None = None
    status: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    error: PowerXError | None = None
    debug: dict[str, float] | None = None  # breakpoints replayed into the new generation


class DevReporter(Protocol):
    def watching(self, plan: WatchPlan) -> None: ...
    def reloaded(self, outcome: ReloadOutcome) -> None: ...
    def alert(self, state: str, alert: dict[str, Any]) -> None: ...


class AlertWatch:
    """Tells the developer when the simulator raises or clears an alert (shared by all
    plugin loops of one `powerx dev`, so each change is printed once)."""

    def __init__(self, client: SimulatorClient, reporter: DevReporter) -> None:
        self.client = client
        self.reporter = reporter
        self.known: dict[tuple[str, str], dict[str, Any]] = {}

    async def refresh(self) -> None:
        try:
            current = await self.client.alerts()
        except PowerXError:
            return  # observability off or host gone: the reload line already said enough
        now = {(str(a.get("name")), str(a.get("plugin"))): a for a in current}
        for key, alert in now.items():
            if key not in self.known:
                self.reporter.alert("raised", alert)
        for key, alert in self.known.items():
            if key not in now:
                self.reporter.alert("cleared", alert)
        self.known = now


class PluginLoop:
    """One plugin's watch/build/push cycle."""

    def __init__(
        self,
        path: Path,
        client: SimulatorClient,
        build_dir: Path,
        reporter: DevReporter,
        force_polling: bool = False,
        alert_watch: AlertWatch | None = None,
    ) -> None:
        self.session = BuildSession(path, build_dir)
        self.alert_watch = alert_watch
        self._reporting: set[asyncio.Task[None]] = set()
        self.plan = plan_watch(path, force_polling)
        self.plugin_id = load_manifest(path).id  # kept when a later manifest edit breaks it
        self.serving: int | None = None  # the generation known to serve
        self.client = client
        self.reporter = reporter
        self.dirty = asyncio.Event()
        self.changed: set[Path] = set()
        self.first_change_at = 0.0

    def mark(self, paths: set[Path]) -> None:
        if not self.dirty.is_set():
            self.first_change_at = time.perf_counter()
        self.changed |= paths
        self.dirty.set()

    async def _build(self) -> Artefact | PowerXError:
        try:
            return await asyncio.to_thread(self.session.build)
        except PowerXError as error:
            return error

    async def reload_once(
        self, changed: list[str], since: float, built: Artefact | PowerXError | None = None
    ) -> ReloadOutcome:
        """Build (unless ``built`` is given), push, and report one reload."""
        plugin = self.plan.root.name
        result: dict[str, Any] | None = None
        try:
            artefact = built if built is not None else await self._build()
            if isinstance(artefact, PowerXError):
                raise artefact
            plugin = artefact.manifest.id
            result = await self.client.push(artefact)
        except PowerXError as error:
            outcome = ReloadOutcome(
                plugin,
                False,
                changed,
                (time.perf_counter() - since) * 1000,
                generation=self.serving,  # a failed reload never replaces what serves
                error=error,
            )
        else:
            self.serving = result["generation"]
            outcome = ReloadOutcome(
                plugin,
                True,
                changed,
                (time.perf_counter() - since) * 1000,
                generation=result["generation"],
                status=result["status"],
                timings=result["timings"],
                debug=result.get("debug"),
            )
        # Not kept after it is reported: a list of them grew ~1.3 kB a reload, without end.
        self.reporter.reloaded(outcome)
        # Telemetry and the alert check run after the line is printed, off the reload path.
        task = asyncio.create_task(self._report(outcome, result if outcome.ok else None))
        self._reporting.add(task)
        task.add_done_callback(self._reporting.discard)
        return outcome

    async def _report(self, outcome: ReloadOutcome, result: dict[str, Any] | None) -> None:
        # Two requests to the simulator: sent at once, they would queue beside the first
        # request to the new generation, the one the developer saved for.
        await asyncio.sleep(REPORT_AFTER_S)
        error = outcome.error
        report: dict[str, Any] | None = None
        if result is not None and result.get("reload_id"):
            report = {
                "kind": "reload",
                "plugin": outcome.plugin,
                "ref": result["reload_id"],
                "status": outcome.status or "ok",
                "latency_ms": round(outcome.total_ms, 3),
            }
        elif (
            error is not None
            and "reload_id" not in error.details
            and error.code not in {"host_unreachable", "unauthenticated", "missing_scope"}
        ):
            # Failed before any upload (build error, bad manifest): the simulator saw nothing.
            report = {
                "kind": "failure",
                "plugin": self.plugin_id,
                "reason": error.code,
                "message": error.message[:4000],
                "latency_ms": round(outcome.total_ms, 3),
            }
        if report is not None:
            with contextlib.suppress(PowerXError):
                await self.client.report([report])
        if self.alert_watch is not None:
            await self.alert_watch.refresh()

    async def warm(self) -> None:
        await self._build()  # a failure here is reported by the first reload

    def _take_changed(self) -> set[str]:
        changed = {
            str(p.relative_to(self.plan.root))
            for p in self.changed
            if p.is_relative_to(self.plan.root)
        }
        self.changed = set()
        return changed

    async def run_builds(self) -> None:
        while True:
            await self.dirty.wait()
            since = self.first_change_at
            # Beside the build: the simulator holds this plugin's requests for the new code.
            pending = asyncio.create_task(self.client.reload_pending(self.plugin_id, True))
            changed: set[str] = set()
            for dropped in range(MAX_SUPERSEDED_BUILDS + 1):
                self.dirty.clear()
                changed |= self._take_changed()
                built = await self._build()
                await pending  # in place before the upload that ends it (sent by now, mostly)
                if not self.dirty.is_set() or dropped == MAX_SUPERSEDED_BUILDS:
                    break  # else newer saves landed while it built: build them too
            if not isinstance(built, Artefact) or built.manifest.id != self.plugin_id:
                await self.client.reload_pending(self.plugin_id, False)  # nothing to wait for
            await self.reload_once(sorted(changed), since, built)

    async def run_watch(self, stop: asyncio.Event) -> None:
        self.reporter.watching(self.plan)
        async for batch in watch(self.plan, stop):
            self.mark(batch)

    def close(self) -> None:
        self.session.close()


async def run_dev(
    paths: list[Path],
    client: SimulatorClient,
    build_root: Path,
    reporter: DevReporter,
    stop: asyncio.Event,
    force_polling: bool = False,
    initial_push: bool = True,
    on_ready: Callable[[list[PluginLoop]], Any] | None = None,
) -> list[PluginLoop]:
    """Run until ``stop`` is set. With ``initial_push`` the current code is pushed first,
    so the simulator serves what is on disk (and mounts plugins it does not know yet)."""
    alert_watch = AlertWatch(client, reporter)
    loops = [
        PluginLoop(p, client, build_root / p.resolve().name, reporter, force_polling, alert_watch)
        for p in paths
    ]
    tasks: list[asyncio.Task[None]] = []
    try:
        if initial_push:
            await asyncio.gather(*(loop.reload_once([], time.perf_counter()) for loop in loops))
        else:
            # Warm the build caches (compiled files, the esbuild context) so that the first
            # save costs what every later one does.
            await asyncio.gather(*(loop.warm() for loop in loops))
        for loop in loops:
            tasks.append(asyncio.create_task(loop.run_watch(stop)))
            tasks.append(asyncio.create_task(loop.run_builds()))
        if on_ready is not None:
            on_ready(loops)
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for loop in loops:
            loop.close()
    return loops
