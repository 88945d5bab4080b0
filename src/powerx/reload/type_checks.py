"""A plugin's type check, run beside its dev loop: after each reload (and once at the
start) the checkers its config asks for run in the background, at the lowest CPU
priority, and report what they found; the reload never waits for them.

Only the newest check matters: a save stops the check still running (it checks code that
is no longer on disk), and the reload that follows starts a new one. So a burst of saves
costs one check, and a checker never competes with the build it would be stale behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from powerx.reload.type_checkers import (
    MissingChecker,
    TypeChecker,
    TypeCheckState,
    TypeProblem,
    find_type_checkers,
)

# Off with POWERX_TYPE_CHECK=0 (a project whose checker is too slow to run on each save).
TYPE_CHECK_ENV = "POWERX_TYPE_CHECK"
# A checker that runs longer is stopped and reported as failed.
TYPE_CHECK_TIMEOUT_S = 120.0
# What a failed checker's report quotes of its output.
OUTPUT_TAIL_CHARS = 600


@dataclass(frozen=True)
class TypeCheckReport:
    """What one run of one checker found for one plugin."""

    plugin: str
    tool: str
    config: str
    state: TypeCheckState
    problems: tuple[TypeProblem, ...] = ()
    duration_ms: float = 0.0
    message: str = ""  # failed: the checker's own words; unavailable: what is missing
    fix: str | None = None
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "tool": self.tool,
            "config": self.config,
            "state": self.state,
            "problems": [p.to_dict() for p in self.problems],
            "duration_ms": round(self.duration_ms, 1),
            "message": self.message,
            "fix": self.fix,
            "at": self.at,
        }


Report = Callable[[TypeCheckReport], Awaitable[None]]


def type_checks_wanted(env: Mapping[str, str] = os.environ) -> bool:
    """Whether dev loops type-check (yes, unless ``POWERX_TYPE_CHECK`` says 0/off/false)."""
    return env.get(TYPE_CHECK_ENV, "1").strip().lower() not in {"0", "off", "false", "no"}


def _lowest_priority(command: tuple[str, ...]) -> tuple[str, ...]:
    """``command`` under ``nice -n 19`` where there is one: the checker (and what it
    starts) yields the CPU to the plugin's next build and first request."""
    nice = shutil.which("nice")
    return (nice, "-n", "19", *command) if nice else command


def _lowest_group_priority(pid: int) -> None:
    """With Linux's autogroup scheduling, CPU time is shared between sessions first and
    nice only counts inside one: a checker's session at autogroup nice 19 yields to the
    plugin's next generation and its warm spare, which run in sessions of their own
    (measured on hello-node: a reload's start phase went from 6 to 50-80 ms while a
    checker ran at plain nice 19)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text("19")


def _stop(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # its own group: tsc's native child too


async def run_checker(
    checker: TypeChecker, plugin: str, root: Path, timeout_s: float = TYPE_CHECK_TIMEOUT_S
) -> TypeCheckReport:
    """Run ``checker`` in ``root`` once; cancelling this stops the process."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *_lowest_priority(checker.command),
        cwd=root,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # one group to stop: tsc's native child goes with it
    )
    _lowest_group_priority(process.pid)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        _stop(process)
        await process.wait()
        return TypeCheckReport(
            plugin,
            checker.tool,
            checker.config,
            "failed",
            duration_ms=(time.perf_counter() - started) * 1000,
            message=f"{checker.tool} ran for more than {timeout_s:g} s and was stopped.",
        )
    except BaseException:  # cancelled: a newer save made this check stale
        _stop(process)
        with contextlib.suppress(ProcessLookupError):
            await asyncio.shield(process.wait())
        raise
    text = output.decode(errors="replace")
    problems = tuple(checker.parse(text))
    duration_ms = (time.perf_counter() - started) * 1000
    if process.returncode == 0 and not problems:
        state: TypeCheckState = "clean"
    elif problems:
        state = "errors"
    else:  # it failed without one error we can place: a crash, a config it cannot read
        return TypeCheckReport(
            plugin,
            checker.tool,
            checker.config,
            "failed",
            duration_ms=duration_ms,
            message=f"{checker.tool} exited with {process.returncode}: "
            f"{text.strip()[-OUTPUT_TAIL_CHARS:] or 'no output'}",
        )
    return TypeCheckReport(
        plugin, checker.tool, checker.config, state, problems, duration_ms=duration_ms
    )


class TypeChecks:
    """The type checks of one plugin's dev loop (none if its folder has no checker config).

    ``report`` gets each run's report; a checker the config asks for but that is not
    installed is reported once, as ``unavailable``, with the fix."""

    def __init__(
        self,
        plugin: str,
        root: Path,
        cache_dir: Path,
        report: Report,
        timeout_s: float = TYPE_CHECK_TIMEOUT_S,
    ) -> None:
        self.plugin = plugin
        self.root = root
        self.timeout_s = timeout_s
        self._report = report
        found = find_type_checkers(root, cache_dir)
        self.checkers = [c for c in found if isinstance(c, TypeChecker)]
        self._missing = [c for c in found if isinstance(c, MissingChecker)]
        self._running: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Check the folder as it is now, in the background (a check still running is
        stopped first)."""
        self.stale()
        if self._missing:
            missing, self._missing = self._missing, []
            self._running = asyncio.create_task(self._run(missing))
        elif self.checkers:
            self._running = asyncio.create_task(self._run([]))

    def stale(self) -> None:
        """The folder changed: a check still running is stopped, unreported."""
        if self._running is not None and not self._running.done():
            self._running.cancel()
        self._running = None

    async def _run(self, missing: list[MissingChecker]) -> None:
        for gap in missing:
            await self._report(
                TypeCheckReport(
                    self.plugin,
                    gap.tool,
                    gap.config,
                    "unavailable",
                    message=f"{gap.config} asks for {gap.tool}, which is not installed.",
                    fix=gap.fix,
                )
            )
        for checker in self.checkers:
            try:
                report = await run_checker(checker, self.plugin, self.root, self.timeout_s)
            except OSError as error:  # the checker cannot be started at all
                report = TypeCheckReport(
                    self.plugin,
                    checker.tool,
                    checker.config,
                    "failed",
                    message=f"{checker.tool} could not start: {error}",
                )
            await self._report(report)

    async def close(self) -> None:
        """Stop a check still running and wait until it has."""
        running, self._running = self._running, None
        if running is not None and not running.done():
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
