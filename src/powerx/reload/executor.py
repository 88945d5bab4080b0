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
import dataclasses
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from powerx.bundling import Artefact, BuildSession
from powerx.client.dev import SimulatorClient
from powerx.environments import DECLARATION_FILES
from powerx.errors import PowerXError
from powerx.manifest import load_manifest
from powerx.reload.alerts import AlertWatch
from powerx.reload.type_checks import TypeCheckReport, TypeChecks, type_checks_wanted
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
    def type_checked(self, report: TypeCheckReport) -> None: ...


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
        self.session = BuildSession(path, build_dir, self._dependencies)
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
        # While a reload builds: the files the simulator has been told it covers.
        self._announced: set[str] | None = None
        self._notes: set[asyncio.Task[bool]] = set()  # pending and armed notes in flight
        # The report of a reload that failed before any upload; the next upload waits for
        # it, so the simulator never learns of a failure after the success that ended it.
        self._failure_report: asyncio.Task[None] | None = None
        self.type_checks: TypeChecks | None = None  # see check_types

    def _dependencies(self, line: str) -> None:
        """A step of a Node plugin's install, which its build runs (in a thread)."""
        tell = getattr(self.reporter, "dependencies", None)
        if tell is not None:
            tell(self.plugin_id, line)

    def check_types(self) -> None:
        """From now on, run the type checkers the plugin's config asks for (tsc, mypy)
        after each reload, in the background; the terminal and the simulator get what
        they find."""
        self.type_checks = TypeChecks(
            self.plugin_id, self.plan.root, self.session.build_dir / "type-check", self._typed
        )

    async def _typed(self, report: TypeCheckReport) -> None:
        self.reporter.type_checked(report)
        await self.client.type_checked(report.to_dict())

    def mark(self, paths: set[Path]) -> None:
        if self.session.build_outputs:  # what the build command wrote starts no build
            paths = {p for p in paths if not self._relative([p]) & self.session.build_outputs}
            if not paths:
                return
        if self.type_checks is not None:
            self.type_checks.stale()  # it checks code no longer on disk; the reload starts one
        if not self.dirty.is_set():
            self.first_change_at = time.perf_counter()
        self.changed |= paths
        self.dirty.set()
        if self._announced is not None:  # saved during a build: the reload covers it too
            self._announced |= self._relative(paths)
            self._send(self.client.reload_pending(self.plugin_id, True, sorted(self._announced)))

    def _send(self, note: Coroutine[Any, Any, bool]) -> None:
        """A note to the simulator, beside the work; ``_notes_sent`` waits for them."""
        task = asyncio.create_task(note)
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    async def _notes_sent(self) -> None:
        await asyncio.gather(*self._notes)

    async def _build(self) -> Artefact | PowerXError:
        try:
            return await asyncio.to_thread(self.session.build)
        except PowerXError as error:
            return error

    async def reload_once(
        self, changed: list[str], since: float, built: Artefact | PowerXError | None = None
    ) -> ReloadOutcome:
        """Build (unless ``built`` is given), push, and report one reload."""
        plugin = self.plugin_id  # the manifest's id, even while the build fails
        result: dict[str, Any] | None = None
        if self.alert_watch is not None:
            self.alert_watch.reloading(plugin)
        try:
            artefact = built if built is not None else await self._build()
            if isinstance(artefact, PowerXError):
                raise artefact
            plugin = artefact.manifest.id
            if self._failure_report is not None:
                await self._failure_report  # sent as the failure happened: done by now
                self._failure_report = None
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
            # A debugger is in the generation: build the next one for it (Go: unoptimised,
            # so breakpoints bind to the lines written); detached, back to a normal build.
            self.session.debug = result.get("debug") is not None
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
        if self.type_checks is not None:
            self.type_checks.start()  # beside what follows: the reload has been served
        if self.alert_watch is not None:
            self.alert_watch.reloaded(outcome.plugin, outcome.ok)
        report = self._telemetry(outcome, result if outcome.ok else None)
        if report is not None and report["kind"] == "failure":
            # At once: no new generation answers its first request, and the simulator
            # shows the plugin stale from now on.
            self._failure_report = asyncio.create_task(
                self._send_report(report, self._failure_report)
            )
            report = None
        # Telemetry and the alert check run after the line is printed, off the reload path.
        task = asyncio.create_task(self._report(report, self._failure_report))
        self._reporting.add(task)
        task.add_done_callback(self._reporting.discard)
        return outcome

    def _telemetry(
        self, outcome: ReloadOutcome, result: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """What to tell the simulator of a reload it did not record itself, if anything."""
        error = outcome.error
        if result is not None and result.get("reload_id"):
            return {
                "kind": "reload",
                "plugin": outcome.plugin,
                "ref": result["reload_id"],
                "status": outcome.status or "ok",
                "latency_ms": round(outcome.total_ms, 3),
            }
        if (
            error is not None
            and "reload_id" not in error.details
            and error.code not in {"host_unreachable", "unauthenticated", "missing_scope"}
        ):
            # Failed before any upload (build error, bad manifest): the simulator saw nothing.
            return {
                "kind": "failure",
                "plugin": self.plugin_id,
                "reason": error.code,
                "message": error.message[:4000],
                "fix": (error.fix or "")[:1000] or None,
                "latency_ms": round(outcome.total_ms, 3),
            }
        return None

    async def _send_report(
        self, report: dict[str, Any], after: asyncio.Task[None] | None = None
    ) -> None:
        if after is not None:
            await after  # failure reports arrive in the order the failures happened
        with contextlib.suppress(PowerXError):
            await self.client.report([report])

    async def _report(
        self, report: dict[str, Any] | None, failure: asyncio.Task[None] | None
    ) -> None:
        # Two requests to the simulator: sent at once, they would queue beside the first
        # request to the new generation, the one the developer saved for.
        await asyncio.sleep(REPORT_AFTER_S)
        if report is not None:
            await self._send_report(report)
        if failure is not None:
            await failure  # the alert check counts it
        if self.alert_watch is not None:
            await self.alert_watch.refresh()

    async def warm(self) -> None:
        await self._build()  # a failure here is reported by the first reload
        if self.type_checks is not None:
            self.type_checks.start()

    def _relative(self, paths: Iterable[Path]) -> set[str]:
        root = self.plan.root
        return {str(p.relative_to(root)) for p in paths if p.is_relative_to(root)}

    def _take_changed(self) -> set[str]:
        changed = self._relative(self.changed)
        self.changed = set()
        return changed

    async def run_builds(self) -> None:
        while True:
            await self.dirty.wait()
            since = self.first_change_at
            changed: set[str] = set()
            install_ms = 0.0  # of every build of this reload (npm writes the lockfile: a save)
            for dropped in range(MAX_SUPERSEDED_BUILDS + 1):
                self.dirty.clear()
                changed |= self._take_changed()
                if self._announced is None:
                    # Beside the build: the simulator holds this plugin's requests for the
                    # new code.
                    self._announced = set(changed)
                    self._send(self.client.reload_pending(self.plugin_id, True, sorted(changed)))
                built = await self._build()
                install_ms += built.install_ms if isinstance(built, Artefact) else 0.0
                if not self.dirty.is_set() or dropped == MAX_SUPERSEDED_BUILDS:
                    break  # else newer saves landed while it built: build them too
            if isinstance(built, Artefact) and install_ms != built.install_ms:
                built = dataclasses.replace(built, install_ms=install_ms)
            self._announced = None
            await self._notes_sent()  # in place before the upload that ends them (sent by now)
            declared = sorted(changed & DECLARATION_FILES)  # at the plugin's root
            tell = getattr(self.reporter, "declaration_changed", None)
            python = isinstance(built, Artefact) and built.manifest.runtime == "python3.11"
            if declared and python and tell is not None:
                tell(self.plugin_id, declared)
            if not isinstance(built, Artefact) or built.manifest.id != self.plugin_id:
                await self.client.reload_pending(self.plugin_id, False)  # nothing to wait for
            await self.reload_once(sorted(changed), since, built)

    async def run_watch(self, stop: asyncio.Event) -> None:
        async for batch in watch(self.plan, stop, self._armed):
            self.mark(batch)

    def _armed(self, plan: WatchPlan) -> None:
        """The watcher is armed (or now covers other folders): said only now, so whoever
        waits for it (the developer, a test, a tool) knows a save from here on reloads."""
        self.plan = plan
        self.reporter.watching(plan)
        folders = [folder.name for folder in plan.folders]
        mode = f"polling: {plan.reason}" if plan.polling else plan.reason
        self._send(self.client.watch_armed(self.plugin_id, True, folders, mode))

    async def disarm(self) -> None:
        """Tell the simulator this loop no longer watches (after its armed notes)."""
        await self._notes_sent()
        await self.client.watch_armed(self.plugin_id, False)

    async def finish_reports(self, timeout_s: float = 5.0) -> None:
        """Let the last reloads' telemetry and alert checks go out (nothing lost) before
        the client closes; what is still not done then is dropped."""
        pending = {*self._reporting, *([self._failure_report] if self._failure_report else [])}
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=timeout_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

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
    check_types: bool | None = None,
) -> list[PluginLoop]:
    """Run until ``stop`` is set. With ``initial_push`` the current code is pushed first,
    so the simulator serves what is on disk (and mounts plugins it does not know yet).
    With ``check_types`` (default: yes, unless ``POWERX_TYPE_CHECK=0``) a plugin with a
    tsconfig.json or a mypy config is type-checked after each reload, beside the loop
    (``reload/type_checks.py``)."""
    loops = [
        PluginLoop(p, client, build_root / p.resolve().name, reporter, force_polling) for p in paths
    ]
    if type_checks_wanted() if check_types is None else check_types:
        for loop in loops:
            loop.check_types()
    alert_watch = AlertWatch(client, reporter, [loop.plugin_id for loop in loops])
    for loop in loops:
        loop.alert_watch = alert_watch
    tasks: list[asyncio.Task[None]] = []
    try:
        tasks.append(asyncio.create_task(alert_watch.run()))
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
        await asyncio.gather(*(loop.finish_reports() for loop in loops))
        await asyncio.gather(
            *(loop.type_checks.close() for loop in loops if loop.type_checks is not None)
        )
        await asyncio.gather(*(loop.disarm() for loop in loops), return_exceptions=True)
        for loop in loops:
            loop.close()
    return loops
