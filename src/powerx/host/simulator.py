"""The simulator's state and services: artefacts, generations, the host API gateway.

Every change of what serves (mount, hot reload, rollback) goes through :meth:`Simulator.
activate`: one plugin at a time (a lock per plugin), generation N keeps serving until
N+1 is ready and healthy, and the active pointer is written only after the flip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from powerx.bundling.artefact import Artefact
from powerx.config import SimulatorConfig
from powerx.debug.debugger import Debugger
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.activation import Activation
from powerx.host.admission import admit_archive
from powerx.host.artefact_pruning import ArtefactPruner
from powerx.host.artefacts import ArtefactStore
from powerx.host.containment import required_containment
from powerx.host.dev_loops import DevLoops
from powerx.host.gateway import Gateway
from powerx.host.generations import Generation, LogLine, PluginSlot
from powerx.host.hot_reloads import hot_reload, reload_rejected
from powerx.host.identity import ContextSigner
from powerx.host.mock_data import FOLDER as MOCK_DATA_FOLDER
from powerx.host.mock_data import MockDataChange, MockDataFiles
from powerx.host.plugin_environments import PluginEnvironments
from powerx.host.rbac import RbacGate
from powerx.host.reload_failures import ReloadFailures
from powerx.host.reload_gate import ReloadGate
from powerx.host.reports import HostReports
from powerx.host.rollbacks import rollback
from powerx.host.run_trees import RunTrees
from powerx.host.served_plugins import ServedPluginsView
from powerx.host.serving import serving_generation
from powerx.host.status_view import simulator_status
from powerx.host.supervisor import Supervisor
from powerx.host.upstream import TenantDirectory, UpstreamServer
from powerx.images import HostImage, get_image
from powerx.manifest import Manifest
from powerx.observe import events
from powerx.observe.observer import Observer
from powerx.paths import RAM_DIR, environments_dir, run_root

__all__ = ["Activation", "Simulator"]


class Simulator:
    def __init__(
        self,
        config: SimulatorConfig,
        state_dir: Path,
        host_url: str,
        on_log: Callable[[LogLine], None] | None = None,
        on_mock_data: Callable[[MockDataChange], None] | None = None,
    ) -> None:
        self.config = config
        self.image: HostImage = get_image(config.image)
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.url = host_url
        self.started_at = time.time()
        self.store = ArtefactStore(state_dir, run_root(state_dir))
        self.containment = required_containment(config.sandbox)
        self._run_tree_in_ram = self.store.unpacked.is_relative_to(RAM_DIR)
        self.observer = Observer(config, state_dir, config.tenant)
        bus = self.observer.bus  # the reload's steps: see powerx.observe.events
        slots: dict[str, PluginSlot] = {}
        self.tenant_ids = TenantDirectory(config)
        self.reports = HostReports(
            config, self.observer, slots, self.tenant_ids, on_log, on_mock_data
        )
        self.debugger = Debugger(
            state_dir, self.observer, ServedPluginsView(slots, self.restart_generation)
        )
        self.signer = ContextSigner(config.identities, config.identity, config.context_signing)
        self.supervisor = Supervisor(
            host_url,
            config.tenant,
            config.plugin_start_timeout_s,
            state_dir,
            self.reports.log,
            production_hosts=config.production_hosts,
            on_egress_blocked=self.reports.egress_blocked,
            debug=self.debugger,
            bus=bus,
            tuning=config.tuning,
            slots=slots,
            run_folder=self.store.run_folder if self.containment.contained else None,
            plugin_env=self._plugin_environment,
            identity=config.identity,
        )
        self.run_trees = RunTrees(self.store, self.supervisor.live, slots, bus)
        self.pruner = ArtefactPruner(
            self.store, self.supervisor.live, self.run_trees.under_way, config.tuning.artefacts_kept
        )
        self.pruner.follow(bus)
        self.environments = PluginEnvironments(
            environments_dir(state_dir),
            self.reports.dependency_progress,
            self.supervisor.contained,
            shared=environments_dir(state_dir) != state_dir / "envs",
        )
        if self.supervisor.contained:
            self.supervisor.network.sandbox_mounts = self.environments.sandbox_mounts()
        self.gate = ReloadGate(config.tuning.reload_max_hold_s)
        self.gate.follow(bus)
        self.dev_loops = DevLoops(bus.publish)
        self.dev_loops.follow(bus)
        self.reload_failures = ReloadFailures(slots)
        self.counters: Counter[str] = Counter()
        self.rbac = RbacGate(config.identities, on_denied=self.reports.rbac_denied)
        self.gateway = Gateway(
            self.image,
            config.permission_policy,
            self.supervisor,
            config.tenant,
            on_denied=self.reports.denied,
            identities=config.identities,
            default_identity=config.identity,
            rbac=self.rbac,
            inspector=self.observer.requests,
        )
        self.mock_data = MockDataFiles(
            state_dir / MOCK_DATA_FOLDER, self.gateway.data, self.reports.mock_data, config.tuning
        )
        # The host's gRPC services, over the same per-tenant mock data as the host API.
        self.upstream = UpstreamServer(
            self.image,
            config.permission_policy,
            self.supervisor,
            self.tenant_ids,
            self.gateway.data,
            self.reports.grpc_call,
            self.reports.denied,
        )

    def _plugin_environment(self, plugin_id: str, token: str) -> dict[str, str]:
        """What a generation is handed beyond the basics: how requests to it are signed,
        and where and as whom it calls the host's gRPC services."""
        return {
            **self.signer.plugin_environment(plugin_id),
            **self.upstream.plugin_environment(plugin_id, token),
        }

    async def restart_generation(self, plugin_id: str) -> None:
        """Serve the same artefact again in a fresh process: once a debugger is wanted (it
        loads at start-up), or when the developer asks (the `r` hotkey)."""
        slot = self.supervisor.slots.get(plugin_id)
        if slot is None or slot.active is None:
            return
        await self.activate(slot.manifest, slot.active.digest, slot.source_dir, force=True)

    # -- checks ------------------------------------------------------------------------

    def admit(
        self, data: bytes, declared_digest: str | None, announced: str | None = None
    ) -> Manifest:
        """The checks of host/admission.py (of the plugin ``announced`` with the upload,
        if any), before any state is touched. A version mismatch is counted."""
        try:
            return admit_archive(data, self.image, self.config.production_hosts, announced)
        except PowerXError as error:
            if error.code == ErrorCode.VERSION_MISMATCH:
                self.counters["version_mismatch"] += 1
            raise

    # -- changes of what serves -----------------------------------------------------------

    async def activate(
        self,
        manifest: Manifest,
        digest: str,
        source_dir: Path,
        timings: dict[str, float] | None = None,
        force: bool = False,
        data: bytes | None = None,
        stored: Awaitable[str] | None = None,
    ) -> Activation:
        """Serve ``digest`` for the plugin: start N+1 beside N, flip, record the pointer.
        Requests to the plugin wait at the gate meanwhile, then go to what serves.
        ``data``: the archive, when the caller has it (checked already); ``stored``: its
        write to the store, if still under way (awaited before the flip)."""
        with self.gate.reloading(manifest.id):
            return await self._activate(
                manifest, digest, source_dir, dict(timings or {}), force, data, stored
            )

    async def _activate(
        self,
        manifest: Manifest,
        digest: str,
        source_dir: Path,
        timings: dict[str, float],
        force: bool,
        data: bytes | None,
        stored: Awaitable[str] | None,
    ) -> Activation:
        slot = self.supervisor.slot_for(manifest, source_dir)
        async with slot.lock:
            current = slot.active
            if (
                not force
                and current is not None
                and current.digest == digest
                and current.state == "running"
                and not self.supervisor.settings_changed(slot)  # an edit of .dev.vars
            ):
                return Activation(manifest.id, current.number, digest, "unchanged", timings, digest)
            slot.manifest, slot.source_dir = manifest, source_dir
            self.observer.bus.publish(
                events.GENERATION_STARTING,
                {"plugin": manifest.id, "version": manifest.version, "digest": digest},
            )
            started = time.perf_counter()
            built_install_ms = timings.get("install_ms", 0.0)  # in the build, not the start
            try:
                with self.run_trees.starting(digest, manifest.id):  # kept if N+1 runs from it
                    generation = await self._start(slot, manifest, digest, data, current, timings)
                    if stored is not None:
                        try:
                            await stored
                        except BaseException:
                            await self.supervisor.stop_generation(generation)
                            raise
            except PowerXError:
                self.counters["reload_failed"] += 1
                raise
            timings["start_ms"] = (time.perf_counter() - started) * 1000
            # An install while starting (a Python environment) is a phase of its own.
            timings["start_ms"] -= timings.get("install_ms", 0.0) - built_install_ms
            flipped = time.perf_counter()
            previous = self.supervisor.flip(slot, generation)  # the gate lets requests go
            deferred_ms = 0.0
            if self.gate.held(manifest.id) and not self.debugger.debugging(manifest.id):
                # Requests were held for this code: the first is answered before the rest of
                # the reload (the pointer's fsync, the records, the reply to the dev loop)
                # competes with it for the CPU, which cost it ~2 ms of its ~5.
                waited = time.perf_counter()
                await self.supervisor.first_request(generation)
                deferred_ms = (time.perf_counter() - waited) * 1000
            # On disk, durably; until then the old pointer names a consistent artefact.
            await asyncio.to_thread(self.store.set_active, manifest.id, digest)
            generation.swapped.set()
            timings["swap_ms"] = (time.perf_counter() - flipped) * 1000 - deferred_ms
            self.counters["activations"] += 1
            await self.debugger.ensure_proxy(manifest.id)
            self.observer.bus.publish(
                events.GENERATION,
                {"plugin": manifest.id, "generation": generation.number, "state": "running"},
            )
            return Activation(
                manifest.id,
                generation.number,
                digest,
                "ok",
                timings,
                previous.digest if previous else None,
                debug=self.debugger.replay_summary(manifest.id, generation.number),
                deferred_ms=deferred_ms,
            )

    async def _start(
        self,
        slot: PluginSlot,
        manifest: Manifest,
        digest: str,
        data: bytes | None,
        current: Generation | None,
        timings: dict[str, float],
    ) -> Generation:
        """Unpack ``digest``, carry the breakpoints over the edit, start N+1 (ready and
        healthy); traffic is not moved."""
        run_dir = self.store.unpack(digest, data, manifest.id)
        if current is not None and current.digest != digest:
            moved = self.debugger.follow_edit(manifest.id, current.run_dir, run_dir)
            for note in moved:
                self.reports.log(LogLine(time.time(), manifest.id, current.number, "system", note))
        python = await self.environments.runtime_for(manifest, run_dir / "src", timings)
        return await self.supervisor.start_generation(slot, digest, run_dir, python)

    async def mount(self, artefact: Artefact) -> Generation:
        """Mount a plugin built at start-up (same path as a hot reload, minus the upload)."""
        digest = self.store.put(artefact.data, artefact.digest)
        await self.activate(artefact.manifest, digest, artefact.source_dir)
        generation = self.supervisor.slots[artefact.manifest.id].active
        assert generation is not None
        await self.observer.audit(
            "plugin.mount",
            artefact.manifest.id,
            {
                "digest": digest,
                "version": artefact.manifest.version,
                "source": str(artefact.source_dir),
                "generation": generation.number,
            },
        )
        return generation

    def note_pending(self, plugin: str, pending: bool, changed: Sequence[str] = ()) -> None:
        """The dev loop saw a save of ``plugin`` (of the files ``changed``) and builds it
        (``pending``): hold its requests for the upload; or the build failed: stop
        holding. A plugin that is not mounted is refused (404 ``plugin_not_found``)."""
        self.serving(plugin)
        self.dev_loops.announced(plugin, pending, changed)  # the gate follows the event

    def note_watch(self, plugin: str, armed: bool, folders: Sequence[str], mode: str) -> None:
        """The dev loop's watcher for ``plugin`` is armed (or stopped); kept even before
        the plugin is mounted (its first build may fail)."""
        self.dev_loops.watching(plugin, armed, folders, mode)

    def note_type_check(self, report: dict[str, Any]) -> None:
        """What the dev loop's type check of a plugin found (its ``TypeCheckReport`` as a
        dict): warnings with file:line in status and the dashboard until a clean run."""
        self.dev_loops.type_checked(report)

    async def hot_reload(
        self,
        data: bytes,
        declared_digest: str | None,
        source_dir: Path | None,
        timings: dict[str, float],
        received: float,
        plugin_hint: str | None = None,
    ) -> Activation:
        """Admit, store and activate an uploaded artefact, recorded under one reload id
        (host/hot_reloads.py)."""
        return await hot_reload(
            self, data, declared_digest, source_dir, timings, received, plugin_hint
        )

    async def reload_rejected(
        self, error: PowerXError, plugin_hint: str | None, received: float
    ) -> None:
        """An upload refused before its archive could be read (too large, empty)."""
        await reload_rejected(self, error, plugin_hint, received)

    async def rollback(self, plugin_id: str, digest: str | None) -> Activation:
        """Serve the previous artefact (or a named one) again (host/rollbacks.py)."""
        return await rollback(self, plugin_id, digest)

    # -- reading -------------------------------------------------------------------------

    def serving(self, plugin_id: str) -> Generation:
        """The generation that serves ``plugin_id``; raises why none does."""
        return serving_generation(self.supervisor.slots, self.reload_failures, plugin_id)

    def status(self) -> dict[str, Any]:
        """What `host status`, the dashboard and `/internal/debug/status` show."""
        return simulator_status(self)

    async def started(self) -> None:
        """The server is up and the plugins given at start are mounted."""
        self.observer.start()
        await self.observer.audit(
            "host.start",
            None,
            {
                "url": self.url,
                "image": self.image.name,
                "pid": os.getpid(),
                "plugins": {
                    pid: slot.active.digest if slot.active else None
                    for pid, slot in self.supervisor.slots.items()
                },
            },
        )

    async def start_services(self) -> None:
        """Listeners the plugins need before the first one starts: the egress proxy and
        the host's gRPC services."""
        if self._run_tree_in_ram:  # left by a simulator that was killed: nothing runs there
            shutil.rmtree(self.store.unpacked, ignore_errors=True)
        await self.supervisor.open_egress_proxy(self.reports.proxy_blocked)
        await self.upstream.start()
        self.supervisor.network.grpc_socket = self.upstream.socket
        # The run's tenants: the config's and each identity's.
        tenants = {self.config.tenant} | {
            i.tenant for i in self.config.identities.values() if i.tenant
        }
        self.mock_data.start(sorted(tenants))

    async def stop(self) -> None:
        await self.pruner.settled()
        await self.supervisor.stop_all()
        await self.mock_data.close()
        await self.environments.close()
        if self._run_tree_in_ram:  # the archives stay on disk; RAM is given back
            shutil.rmtree(self.store.unpacked, ignore_errors=True)
        await self.debugger.close()
        await self.upstream.stop()
        if self.supervisor.network.egress_proxy is not None:
            await self.supervisor.network.egress_proxy.close()
        await self.observer.audit("host.stop", None, {"url": self.url, "pid": os.getpid()})
        await self.observer.close()
