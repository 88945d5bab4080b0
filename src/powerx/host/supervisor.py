"""Plugin processes: spawn a generation, wait until it is ready, watch it, stop it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from powerx.build.node import node_executable
from powerx.errors import PowerXError
from powerx.manifest import Manifest
from powerx.runtimes import CONTROL_PREFIX, NODE_SHIM

GenerationState = Literal["starting", "running", "stopping", "stopped", "crashed", "failed"]
# The only variables of the developer's environment a plugin process inherits.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")
STOP_GRACE_S = 3.0


@dataclass(frozen=True)
class LogLine:
    ts: float
    plugin: str
    generation: int
    stream: Literal["stdout", "stderr", "system"]
    line: str


@dataclass
class Generation:
    plugin_id: str
    number: int
    digest: str
    token: str
    process: asyncio.subprocess.Process
    state: GenerationState = "starting"
    port: int | None = None
    started_at: float = field(default_factory=time.time)
    start_ms: float = 0.0
    exit_code: int | None = None
    ready: asyncio.Future[dict[str, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class PluginSlot:
    """One mounted plugin: its manifest, where it came from, its serving generation."""

    manifest: Manifest
    source_dir: Path
    active: Generation | None = None
    last_number: int = 0
    logs: deque[LogLine] = field(default_factory=lambda: deque(maxlen=2000))


class Supervisor:
    def __init__(
        self,
        host_url: str,
        tenant: str,
        start_timeout_s: float,
        on_log: Callable[[LogLine], None] | None = None,
    ) -> None:
        self.host_url = host_url
        self.tenant = tenant
        self.start_timeout_s = start_timeout_s
        self.on_log = on_log
        self.slots: dict[str, PluginSlot] = {}
        self.tokens: dict[str, tuple[str, int]] = {}  # token -> (plugin id, generation)

    def _command(
        self, manifest: Manifest, run_dir: Path, info: dict[str, Any], source_dir: Path
    ) -> list[str]:
        runnable = str(info["runnable"])
        if manifest.runtime == "python3.11":
            src_root = run_dir / "src"
            entry_file = str(Path(runnable).relative_to("src"))
            return [
                sys.executable,
                "-X",
                "frozen_modules=off",
                "-m",
                "powerx.runtimes.python_shim",
                str(src_root),
                entry_file,
                str(info["entry_attribute"]),
            ]
        return [
            node_executable(),
            "--enable-source-maps",
            str(NODE_SHIM),
            str(run_dir),
            runnable,
            str(source_dir),
        ]

    def _environment(self, manifest: Manifest, token: str) -> dict[str, str]:
        env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
        env.update(
            {
                "POWERX_HOST_URL": self.host_url,
                "POWERX_PLUGIN_TOKEN": token,
                "POWERX_PLUGIN_ID": manifest.id,
                "POWERX_PLUGIN_VERSION": manifest.version,
                "POWERX_TENANT": self.tenant,
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        return env

    def _log(
        self,
        slot: PluginSlot,
        generation: int,
        stream: Literal["stdout", "stderr", "system"],
        line: str,
    ) -> None:
        record = LogLine(time.time(), slot.manifest.id, generation, stream, line)
        slot.logs.append(record)
        if self.on_log is not None:
            self.on_log(record)

    async def _read_stdout(self, slot: PluginSlot, gen: Generation) -> None:
        assert gen.process.stdout is not None
        async for raw in gen.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith(CONTROL_PREFIX):
                with contextlib.suppress(ValueError):
                    message = json.loads(line[len(CONTROL_PREFIX) :])
                    if not gen.ready.done():
                        gen.ready.set_result(message)
                    continue
            self._log(slot, gen.number, "stdout", line)

    async def _read_stderr(self, slot: PluginSlot, gen: Generation) -> None:
        assert gen.process.stderr is not None
        async for raw in gen.process.stderr:
            self._log(slot, gen.number, "stderr", raw.decode(errors="replace").rstrip("\n"))

    async def _watch_exit(self, slot: PluginSlot, gen: Generation) -> None:
        code = await gen.process.wait()
        gen.exit_code = code
        if not gen.ready.done():
            gen.ready.set_result({"event": "exited", "code": code})
        if gen.state == "running":
            gen.state = "crashed"
            self._log(
                slot,
                gen.number,
                "system",
                f"generation {gen.number} exited unexpectedly with code {code}",
            )
        elif gen.state == "stopping":
            gen.state = "stopped"

    async def start_generation(self, slot: PluginSlot, digest: str, run_dir: Path) -> Generation:
        """Spawn a generation and wait until it serves; raise ``plugin_start_failed`` if not."""
        manifest = slot.manifest
        info = json.loads((run_dir / "artefact.json").read_text(encoding="utf-8"))
        token = f"pxp_{secrets.token_urlsafe(24)}"
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *self._command(manifest, run_dir, info, slot.source_dir),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._environment(manifest, token),
            cwd=run_dir,
            start_new_session=True,
        )
        slot.last_number += 1
        gen = Generation(manifest.id, slot.last_number, digest, token, process)
        self.tokens[token] = (manifest.id, gen.number)
        gen.tasks = [
            asyncio.create_task(self._read_stdout(slot, gen)),
            asyncio.create_task(self._read_stderr(slot, gen)),
            asyncio.create_task(self._watch_exit(slot, gen)),
        ]
        try:
            message = await asyncio.wait_for(asyncio.shield(gen.ready), self.start_timeout_s)
        except TimeoutError:
            message = {"event": "timeout"}
        if message.get("event") == "ready":
            gen.port = int(message["port"])
            gen.state = "running"
            gen.start_ms = (time.perf_counter() - started) * 1000
            return gen
        gen.state = "failed"
        await self.stop_generation(gen)
        raise self._start_error(slot, gen, message)

    def _start_error(
        self, slot: PluginSlot, gen: Generation, message: dict[str, Any]
    ) -> PowerXError:
        plugin = slot.manifest.id
        event = message.get("event")
        if event == "error":
            where = f" at {message['file']}:{message['line']}" if message.get("file") else ""
            return PowerXError(
                "plugin_start_failed",
                f"{plugin} failed to start ({message.get('kind')}{where}): "
                f"{message.get('message')}",
                "fix the error in the plugin's code; the simulator did not route traffic to it.",
                details={
                    "plugin": plugin,
                    "kind": message.get("kind"),
                    "file": message.get("file"),
                    "line": message.get("line"),
                },
            )
        tail = [r.line for r in slot.logs if r.generation == gen.number][-5:]
        if event == "timeout":
            return PowerXError(
                "plugin_start_timeout",
                f"{plugin} did not report ready within {self.start_timeout_s:g} s.",
                "check that the plugin does not block at import time; raise plugin_start_timeout_s "
                "in host_simulator.yaml if it needs longer.",
                details={"plugin": plugin, "output": tail},
            )
        return PowerXError(
            "plugin_start_failed",
            f"{plugin} exited with code {message.get('code')} before it was ready"
            + (f": {tail[-1]}" if tail else "."),
            "run the plugin's entry directly to see the failure, then fix it.",
            details={"plugin": plugin, "output": tail},
        )

    async def stop_generation(self, gen: Generation) -> None:
        if gen.process.returncode is None:
            gen.state = "stopping"
            with contextlib.suppress(ProcessLookupError):
                gen.process.terminate()
            try:
                await asyncio.wait_for(gen.process.wait(), STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    gen.process.kill()
                await gen.process.wait()
        gen.state = "stopped" if gen.state != "failed" else "failed"
        self.tokens.pop(gen.token, None)
        for task in gen.tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*gen.tasks, return_exceptions=True)

    async def mount(
        self, manifest: Manifest, source_dir: Path, digest: str, run_dir: Path
    ) -> Generation:
        slot = self.slots.get(manifest.id)
        if slot is None:
            slot = self.slots[manifest.id] = PluginSlot(manifest, source_dir)
        gen = await self.start_generation(slot, digest, run_dir)
        previous, slot.active = slot.active, gen
        if previous is not None:
            await self.stop_generation(previous)
        return gen

    async def stop_all(self) -> None:
        await asyncio.gather(
            *(
                self.stop_generation(slot.active)
                for slot in self.slots.values()
                if slot.active is not None
            )
        )

    def identity(self, token: str) -> PluginSlot | None:
        """The plugin a per-process token belongs to (only while that generation lives)."""
        entry = self.tokens.get(token)
        return self.slots.get(entry[0]) if entry else None
