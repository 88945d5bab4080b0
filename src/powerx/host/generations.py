"""What the supervisor keeps per plugin: its slot (manifest, folder, serving generation,
logs, crashes) and each generation (one process serving one artefact) with the events its
lifecycle waits on."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from powerx.host.launcher import PluginProcess
from powerx.host.python_runtime import PythonRuntime
from powerx.manifest import Manifest

GenerationState = Literal["starting", "running", "draining", "stopped", "crashed", "failed"]
CRASH_LOOP_AFTER = 5  # crashes within the supervisor's window that make a crash loop


@dataclass(frozen=True)
class LogLine:
    ts: float
    plugin: str
    generation: int
    stream: Literal["stdout", "stderr", "system"]
    line: str


@dataclass(eq=False)
class Generation:
    plugin_id: str
    number: int
    digest: str
    token: str
    process: PluginProcess
    run_dir: Path
    state: GenerationState = "starting"
    port: int | None = None  # where it listens: a loopback port, or
    url: str = ""  # the base URL it is reached on (a port, or a unix socket in its sandbox)
    started_at: float = field(default_factory=time.time)
    start_ms: float = 0.0
    exit_code: int | None = None
    inflight: int = 0
    ready: asyncio.Future[dict[str, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    served: asyncio.Event = field(default_factory=asyncio.Event)  # its first answer went out
    swapped: asyncio.Event = field(default_factory=asyncio.Event)  # its pointer is on disk
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    exposed: list[int] = field(default_factory=list)  # ports brought out of its sandbox
    relayed: list[int] = field(default_factory=list)  # its ports reached by unix socket
    settings: str = ""  # digest of the .dev.vars values it started with
    python: PythonRuntime | None = None  # a Python plugin's interpreter and environment

    @property
    def pid(self) -> int:
        return self.process.pid

    def enter(self) -> None:
        self.inflight += 1
        self.idle.clear()

    def leave(self) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self.idle.set()

    def answered(self) -> None:
        """A response from this generation has gone out to the client."""
        self.served.set()


@dataclass
class PluginSlot:
    """One mounted plugin: its manifest, where it came from, its serving generation."""

    manifest: Manifest
    source_dir: Path
    active: Generation | None = None
    last_number: int = 0
    logs: deque[LogLine] = field(default_factory=lambda: deque(maxlen=2000))
    crashes: deque[float] = field(default_factory=lambda: deque(maxlen=CRASH_LOOP_AFTER))
    crash_loop: bool = False
    restarts: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
