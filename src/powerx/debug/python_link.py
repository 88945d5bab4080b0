"""The simulator's DAP connection to one Python generation's debugpy.

Each generation listens with ``debugpy.listen(..., in_process_debug_adapter=True)`` and
waits (``wait_for_client``) until a client has sent ``configurationDone``. The simulator
is that client: it runs the handshake and replays the plugin's breakpoint set, so the
generation takes no traffic before its breakpoints are in place. One generation accepts
one client, so IDEs and the terminal console reach it through the simulator: debugpy
answers only a client that presents the generation's access token, and stops listening
once the simulator is connected (``runtimes/python_shim.py``).

The generation runs the artefact from its own folder (``run/<digest>/src``); breakpoints
name files relative to the plugin. :meth:`PythonLink.local` and :meth:`remote` translate.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from powerx.debug.breakpoints import Breakpoint, log_mark, not_followed, parse_hit_condition
from powerx.debug.dap import DapConnection, DapError, Message
from powerx.debug.simulator_code import debugpy_rules, is_simulator_file

HANDSHAKE_TIMEOUT_S = 10.0


@dataclass
class ReplayResult:
    set: int = 0
    verified: int = 0
    replay_ms: float = 0.0


class PythonLink:
    def __init__(
        self,
        generation: int,
        code_root: Path,
        connection: DapConnection,
    ) -> None:
        self.generation = generation
        self.code_root = code_root.resolve()
        self.dap = connection
        self.ids: dict[int, int] = {}  # debugpy breakpoint id -> our breakpoint id
        self.capabilities: Message = {}
        self._initialized: asyncio.Future[bool] | None = None
        self._placements = 0  # a key per placement for folded hit counts

    @classmethod
    async def open(
        cls,
        generation: int,
        code_root: Path,
        port: int,
        token: str,
        on_event: Callable[[Message], None],
    ) -> PythonLink:
        """Connect to the generation's debugpy; ``token`` is the access token the generation
        made and told the simulator alone (debugpy answers nothing else before it)."""
        connection = await DapConnection.connect("127.0.0.1", port, on_event)
        try:
            await connection.request(
                "pydevdAuthorize", {"debugServerAccessToken": token}, HANDSHAKE_TIMEOUT_S
            )
        except (DapError, TimeoutError):
            await connection.close()
            raise
        return cls(generation, code_root, connection)

    # -- paths -----------------------------------------------------------------------------

    def remote(self, file: str) -> str:
        return str(self.code_root / file)

    def local(self, path: str | None) -> str | None:
        """The plugin-relative name of a path in this generation (None outside the plugin)."""
        if not path:
            return None
        try:
            return Path(path).resolve().relative_to(self.code_root).as_posix()
        except ValueError:
            return None

    def read_source(self, file: str) -> str | None:
        try:
            return (self.code_root / file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    # -- handshake and breakpoints ---------------------------------------------------------

    async def handshake(
        self,
        breakpoints: list[Breakpoint],
        exception_filters: Message | None = None,
        function_breakpoints: Message | None = None,
    ) -> ReplayResult:
        """initialize -> attach -> (initialized) -> setBreakpoints per file -> configurationDone."""
        started = time.perf_counter()
        initialized: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._initialized = initialized
        self.capabilities = await self.dap.request(
            "initialize",
            {
                "clientID": "powerx",
                "clientName": "PowerX DevKit",
                "adapterID": "python",
                "linesStartAt1": True,
                "columnsStartAt1": True,
                "pathFormat": "path",
                "supportsVariableType": True,
            },
            HANDSHAKE_TIMEOUT_S,
        )
        # An attach with empty arguments is refused and `initialized` never comes.
        # The shim's frames are library code in every install mode (see simulator_code).
        arguments = {"justMyCode": True, "redirectOutput": False, "rules": debugpy_rules()}
        attach = self.dap.send_request("attach", arguments)
        await asyncio.wait_for(initialized, HANDSHAKE_TIMEOUT_S)
        result = await self.set_breakpoints(breakpoints)
        if function_breakpoints:
            await self.set_function_breakpoints(function_breakpoints)
        await self.set_exception_breakpoints(exception_filters or {"filters": []})
        await self.dap.request("configurationDone", {}, HANDSHAKE_TIMEOUT_S)
        response = await asyncio.wait_for(attach, HANDSHAKE_TIMEOUT_S)
        if not response.get("success"):
            raise DapError("attach", str(response.get("message")))
        result.replay_ms = (time.perf_counter() - started) * 1000
        return result

    async def set_function_breakpoints(self, arguments: Message) -> Message:
        """The IDE's function breakpoints (by name), as it sent them."""
        return await self.dap.request("setFunctionBreakpoints", arguments, HANDSHAKE_TIMEOUT_S)

    async def set_exception_breakpoints(self, arguments: Message) -> Message:
        """The IDE's exception settings (``raised``, ``uncaught`` ...), as it sent them."""
        return await self.dap.request("setExceptionBreakpoints", arguments, HANDSHAKE_TIMEOUT_S)

    def saw_event(self, message: Message) -> None:
        """Feed every event here first: the handshake waits for ``initialized``."""
        future = self._initialized
        if message.get("event") == "initialized" and future is not None and not future.done():
            future.set_result(True)

    async def set_breakpoints(
        self, breakpoints: list[Breakpoint], files: list[str] | None = None
    ) -> ReplayResult:
        """Send the set, one request per file (each replaces that file's set in debugpy);
        ``files`` lists files whose breakpoints were all removed and must be cleared."""
        result = ReplayResult()
        by_file: dict[str, list[Breakpoint]] = {name: [] for name in files or []}
        for bp in breakpoints:
            by_file.setdefault(bp.file, []).append(bp)
        for name, group in by_file.items():
            active = [bp for bp in group if not orphaned(bp)]
            body = await self.dap.request(
                "setBreakpoints",
                {
                    "source": {"path": self.remote(name)},
                    "breakpoints": [self._dap_breakpoint(bp) for bp in active],
                    "sourceModified": False,
                },
                HANDSHAKE_TIMEOUT_S,
            )
            answers = body.get("breakpoints") or []
            for bp, answer in zip(active, answers, strict=False):
                result.set += 1
                bp.verified = bool(answer.get("verified"))
                bp.message = None if bp.verified else answer.get("message") or "not verified"
                if isinstance(answer.get("id"), int):
                    self.ids[answer["id"]] = bp.id
                if bp.verified:
                    result.verified += 1
        return result

    # -- inspection ------------------------------------------------------------------------

    async def stack(self, thread_id: int, levels: int = 20) -> list[dict[str, Any]]:
        body = await self.dap.request(
            "stackTrace", {"threadId": thread_id, "startFrame": 0, "levels": levels}
        )
        frames = []
        for frame in body.get("stackFrames") or []:
            path = (frame.get("source") or {}).get("path")
            if is_simulator_file(path):
                continue  # the shim, never the user's concern
            frames.append(
                {
                    "id": frame.get("id"),
                    "name": frame.get("name"),
                    "file": self.local(path) or path,
                    "line": frame.get("line"),
                    "plugin_code": self.local(path) is not None,
                }
            )
        return frames

    async def locals(self, frame_id: int, limit: int = 100) -> dict[str, str]:
        scopes = (await self.dap.request("scopes", {"frameId": frame_id})).get("scopes") or []
        found: dict[str, str] = {}
        for scope in scopes:
            if scope.get("name") not in {"Locals", "locals"}:
                continue
            reference = scope.get("variablesReference")
            body = await self.dap.request("variables", {"variablesReference": reference})
            for variable in (body.get("variables") or [])[:limit]:
                name = str(variable.get("name"))
                if name.startswith("(") or name in {"special variables", "function variables"}:
                    continue
                found[name] = str(variable.get("value"))
        return found

    async def evaluate(self, expression: str, frame_id: int | None) -> str:
        arguments: Message = {"expression": expression, "context": "repl"}
        if frame_id is not None:
            arguments["frameId"] = frame_id
        body = await self.dap.request("evaluate", arguments)
        return str(body.get("result"))

    async def resume(self, command: str, thread_id: int) -> None:
        """continue | next | stepIn | stepOut."""
        await self.dap.request(command, {"threadId": thread_id})

    async def detach(self) -> None:
        """Leave the generation running and unpaused (it may be draining a request)."""
        with contextlib.suppress(DapError, TimeoutError):
            await self.dap.request("disconnect", {"terminateDebuggee": False}, 2.0)
        await self.dap.close()

    def _dap_breakpoint(self, bp: Breakpoint) -> Message:
        entry: Message = {"line": bp.line}
        hit = parse_hit_condition(bp.hit_condition) if bp.hit_condition else None
        if bp.condition and hit is not None:
            # debugpy stops when the condition *or* the hit count holds, and counts every
            # arrival; VS Code and our Node plugins mean *and*, counting only when the
            # condition holds. So the count is folded into the condition here.
            self._placements += 1
            entry["condition"] = f"({bp.condition}) and ({_counted_hit(self._placements, *hit)})"
        elif bp.condition:
            entry["condition"] = bp.condition
        elif bp.hit_condition:
            entry["hitCondition"] = bp.hit_condition
        if bp.log_message:
            entry["logMessage"] = log_mark(bp.id) + bp.log_message
        return entry


def orphaned(bp: Breakpoint) -> bool:
    """An edit took its line away (or left its place uncertain): it stays listed,
    unverified, and is not set."""
    return not_followed(bp)


def _counted_hit(key: int, operator: str, count: int) -> str:
    """A Python expression that counts one hit of placement ``key`` in the plugin process
    and tests the count (``%`` is every count-th hit)."""
    hits = "vars(__import__('sys')).setdefault('_powerx_hits', {})"
    counted = (
        f"(lambda hits: hits.__setitem__({key}, hits.get({key}, 0) + 1) or hits[{key}])({hits})"
    )
    return f"{counted} % {count} == 0" if operator == "%" else f"{counted} {operator} {count}"
