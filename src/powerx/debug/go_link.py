"""The simulator's DAP connection to one Go generation, run under Delve.

A Go generation the simulator debugs runs as ``dlv exec --headless`` around the plugin's
binary (built with ``-gcflags=all=-N -l``, see ``powerx.bundling.go``). Delve starts the
program halted and speaks DAP on its listening port (a "remote attach", as VS Code's Go
extension does it): the simulator attaches, replays the plugin's breakpoints and sends
``configurationDone``; only then does the program run, so the generation answers its
health path, and takes traffic, with its breakpoints in place.

The binary was built in the plugin folder, so its debug information names the plugin's
own files (``<plugin>/backend/cmd/plugin/main.go``): breakpoints are set on those paths,
not on the copies in the generation's run folder. Everything else (inspection, stepping,
detaching with the program left running) is DAP as :class:`PythonLink` speaks it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from powerx.bundling.toolchain import dlv_executable
from powerx.debug.breakpoints import Breakpoint
from powerx.debug.dap import DapConnection, DapError, Message
from powerx.debug.python_link import HANDSHAKE_TIMEOUT_S, PythonLink, ReplayResult

# Delve listens ~15 ms after it starts; a connection refused before that is retried.
_CONNECT_RETRY_S = 0.01

_INITIALIZE: Message = {
    "clientID": "powerx",
    "clientName": "PowerX DevKit",
    "adapterID": "go",
    "linesStartAt1": True,
    "columnsStartAt1": True,
    "pathFormat": "path",
    "supportsVariableType": True,
}

__all__ = ["GoLink", "delve_command"]


def delve_command(argv: list[str], port: int) -> list[str]:
    """The program ``argv`` run under Delve, halted until a DAP client on ``port``
    (loopback) has sent ``configurationDone``; the program's own output stays its own."""
    return [
        dlv_executable(),
        "exec",
        "--headless",
        f"--listen=127.0.0.1:{port}",
        "--api-version=2",
        "--accept-multiclient",
        argv[0],
        "--",
        *argv[1:],
    ]


class GoLink(PythonLink):
    @classmethod
    async def open_delve(
        cls,
        generation: int,
        source_dir: Path,
        address: int | str,
        on_event: Callable[[Message], None],
    ) -> GoLink:
        """Connect to the generation's Delve (a loopback port, or in a sandbox its relay's
        unix socket) and initialize the DAP session, retrying while Delve starts
        listening. The relay accepts at once and closes the connection while nothing
        listens inside yet: a connection closed before ``initialize`` is answered is
        retried too."""
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        while True:
            connection: DapConnection | None = None
            try:
                if isinstance(address, str):  # in a sandbox: its relay's unix socket
                    connection = await DapConnection.connect_unix(address, on_event)
                else:
                    connection = await DapConnection.connect("127.0.0.1", address, on_event)
                capabilities = await connection.request(
                    "initialize", _INITIALIZE, HANDSHAKE_TIMEOUT_S
                )
            except (OSError, DapError):
                if connection is not None:
                    await connection.close()
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(_CONNECT_RETRY_S)
                continue
            link = cls(generation, source_dir, connection)
            link.capabilities = capabilities
            return link

    async def handshake(
        self,
        breakpoints: list[Breakpoint],
        exception_filters: Message | None = None,
        function_breakpoints: Message | None = None,
    ) -> ReplayResult:
        """attach (remote; :meth:`open_delve` did ``initialize``) -> (initialized) ->
        setBreakpoints per file -> configurationDone, which lets the halted program run."""
        started = time.perf_counter()
        initialized: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._initialized = initialized
        attach = self.dap.send_request("attach", {"request": "attach", "mode": "remote"})
        await asyncio.wait_for(initialized, HANDSHAKE_TIMEOUT_S)
        result = await self.set_breakpoints(breakpoints)
        if function_breakpoints:
            await self.set_function_breakpoints(function_breakpoints)
        # Go has no exceptions; a panic stops where Delve's own "unrecovered-panic"
        # breakpoint is. An IDE's exception settings have nothing to set here.
        await self.dap.request("configurationDone", {}, HANDSHAKE_TIMEOUT_S)
        response = await asyncio.wait_for(attach, HANDSHAKE_TIMEOUT_S)
        if not response.get("success"):
            raise DapError("attach", str(response.get("message")))
        result.replay_ms = (time.perf_counter() - started) * 1000
        return result

    async def set_exception_breakpoints(self, arguments: Message) -> Message:
        return {}

    async def locals(self, frame_id: int, limit: int = 100) -> dict[str, str]:
        """Delve lists a function's arguments apart from its locals: both are shown."""
        scopes = (await self.dap.request("scopes", {"frameId": frame_id})).get("scopes") or []
        found: dict[str, str] = {}
        for scope in scopes:
            if str(scope.get("name")).lower() not in {"locals", "arguments"}:
                continue
            reference = scope.get("variablesReference")
            body = await self.dap.request("variables", {"variablesReference": reference})
            for variable in (body.get("variables") or [])[:limit]:
                found[str(variable.get("name"))] = str(variable.get("value"))
        return found

    def _dap_breakpoint(self, bp: Breakpoint) -> Message:
        """Delve takes conditions (Go expressions), hit conditions and log messages as
        DAP defines them; when both a condition and a hit condition are given it counts
        only the hits where the condition holds, as VS Code means them."""
        entry: Message = {"line": bp.line}
        if bp.condition:
            entry["condition"] = bp.condition
        if bp.hit_condition:
            entry["hitCondition"] = bp.hit_condition
        if bp.log_message:
            entry["logMessage"] = bp.log_message
        return entry
