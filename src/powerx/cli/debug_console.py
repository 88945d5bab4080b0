"""`powerx debug attach`: a terminal debugger over the simulator's breakpoint set.

The console holds no debugger state of its own: breakpoints live in the simulator (so
they survive reloads and are shared with VS Code), and every command is one HTTP call.
Pauses, snapshots and notices arrive on the event stream, read in a background thread;
``logs`` adds the plugin's log stream to the same terminal.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import shlex
import sys
import threading
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape

from powerx.cli.debug_console_views import ConsoleViews
from powerx.client import sync as client
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

CLIENT_HEADER = {"x-powerx-client": "console"}
PROMPT = "(powerx) "
_LOCATION = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+)$")

HELP = """\
break FILE:LINE [hits N] [if COND]
                            pause there (COND: an expression in the plugin's language;
                            N: 3 = the third hit, >=3, >3, <3, <=3, %3 = every third)
snap FILE:LINE [hits N] [if COND]
                            snapshot there: capture locals and stack, do not halt
log FILE:LINE MESSAGE       log point: write MESSAGE ({expr} filled in) to the log, no halt
catch raised|uncaught|off   pause where an exception is raised, or where the plugin
                            does not handle it, or not at all
clear [ID|all]              remove a breakpoint (all without an id)
list                        breakpoints, verified or not, and hits
continue | c                resume          next | n    step over
step | s                    step into       out | o     step out
stack | bt                  the paused stack
up | down | frame N         choose the frame p, locals and set work in
locals [FRAME]              variables of a frame (the chosen one, or the innermost
                            plugin frame)
eval EXPR | p EXPR          evaluate in the chosen frame
set VAR VALUE               assign VALUE (an expression) to VAR in the chosen frame
watch [EXPR] | unwatch [N]  evaluate EXPR at every stop (no EXPR: list the watches)
logs [on|off]               interleave the plugin's live log lines
help | quit"""


def parse_location(text: str) -> tuple[str, int]:
    match = _LOCATION.match(text.strip())
    if match is None:
        raise PowerXError(
            ErrorCode.BREAKPOINT_LOCATION_INVALID,
            f"{text!r} is not FILE:LINE.",
            "write it as app.py:17 (the file relative to the plugin folder).",
        )
    return match["file"], int(match["line"])


class DebugConsole:
    def __init__(self, plugin: str, out: Console) -> None:
        self.plugin = plugin
        self.out = out
        self._logs: threading.Thread | None = None
        self._logs_on = threading.Event()
        self._stopping = threading.Event()
        self._connection = ""  # the simulator's id of this console's held connection
        self.views = ConsoleViews(self._command, out)
        # Set while the user is at the prompt: a notice printed then ends with the prompt
        # again (and what was typed so far), or the terminal looks as if it were busy.
        self.at_prompt = threading.Event()

    # -- talking to the simulator ------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return client.request(method, path, timeout=30.0, json_body=body, headers=CLIENT_HEADER)

    def attach(self) -> dict[str, Any]:
        """Attach for as long as this process holds its connection to the simulator:
        however the console ends (quit, a closed terminal, SIGKILL), it is detached."""
        first: queue.Queue[dict[str, Any] | PowerXError] = queue.Queue()
        threading.Thread(
            target=self._follow_events, args=(first,), name="powerx-events", daemon=True
        ).start()
        # The first attach restarts the plugin with the debugger (a few hundred ms).
        state = first.get(timeout=120)
        if isinstance(state, PowerXError):
            raise state
        self._connection = str(state.get("connection") or "")
        return state

    def detach(self) -> None:
        self._stopping.set()
        if not self._connection:
            return
        with contextlib.suppress(PowerXError):  # the simulator is gone: nothing to detach
            self._call(
                "POST",
                f"/internal/debug/sessions/{self.plugin}/detach?connection={self._connection}",
            )

    # -- background streams ------------------------------------------------------------

    def _follow_events(self, first: queue.Queue[dict[str, Any] | PowerXError]) -> None:
        path = f"/internal/debug/sessions/{self.plugin}/connection"
        attached = False
        try:
            for event in client.stream(path, {}, headers=CLIENT_HEADER):
                if self._stopping.is_set():
                    return
                if not event.data:
                    continue
                if event.event == "attached":
                    attached = True
                    first.put(json.loads(event.data))
                else:
                    self._show_event(event.event, json.loads(event.data))
        except PowerXError as error:
            if not attached:
                first.put(error)
                return
            self.out.print(f"[red]event stream ended: {escape(error.message)}[/]")
        if not attached:
            first.put(
                PowerXError(
                    ErrorCode.HOST_UNREACHABLE,
                    "The simulator closed the debugger connection before attaching.",
                    "retry; if it persists, restart the simulator.",
                )
            )
        elif not self._stopping.is_set():
            self.out.print("[red]the simulator closed the debugger connection[/]")

    def _follow_logs(self) -> None:
        params = {"plugin": self.plugin, "tail": "0", "follow": "1"}
        for event in client.stream("/internal/debug/logs", params):
            if self._stopping.is_set():
                return
            if event.event == "log" and self._logs_on.is_set():
                record = json.loads(event.data)
                self.out.print(
                    f"{'' if not self.at_prompt.is_set() else chr(10)}"
                    f"[dim]│ #{record.get('generation')} {record.get('level', ''):<7}[/] "
                    f"{escape(str(record.get('message', '')))}"
                )
                self._reprompt()

    def read_command(self) -> str:
        """One line from the user at the prompt (EOFError at the end of input)."""
        self.at_prompt.set()
        try:
            return input(PROMPT)
        finally:
            self.at_prompt.clear()

    def _show_event(self, kind: str, data: dict[str, Any]) -> None:
        if self._show(kind, data):
            self._reprompt()

    def _reprompt(self) -> None:
        if self.at_prompt.is_set():
            typed = ""
            readline = sys.modules.get("readline")
            if readline is not None:
                typed = readline.get_line_buffer()
            self.out.print(escape(PROMPT + typed), end="", highlight=False)
            self.out.file.flush()

    def _show(self, kind: str, data: dict[str, Any]) -> bool:
        """Print a notice; False when the event is not one the console shows."""
        if kind == "plugin.debug.paused":
            where = f"{data.get('file')}:{data.get('line')}"
            bp = f" (breakpoint {data['breakpoint']})" if data.get("breakpoint") else ""
            self.out.print(
                f"\n[bold yellow]paused[/] at [bold]{escape(where)}[/]{bp} in generation "
                f"{data.get('generation')} ({escape(str(data.get('reason')))})"
            )
            for line in data.get("code") or []:
                self.out.print(escape(line), style="bold" if line.startswith("->") else "dim")
            self.views.paused()
        elif kind == "plugin.debug.snapshot":
            where = f"{data.get('file')}:{data.get('line')}"
            self.out.print(
                f"\n[cyan]snapshot[/] at [bold]{escape(where)}[/] in generation "
                f"{data.get('generation')}"
            )
            for name, value in (data.get("locals") or {}).items():
                self.out.print(f"  {escape(name)} = {escape(_short(value))}")
        elif kind == "plugin.debug.notice":
            self.out.print(f"\n[magenta]{escape(str(data.get('message')))}[/]")
        elif kind == "plugin.debug.generation":
            self.out.print(
                f"[dim]generation {data.get('generation')} is serving; breakpoints carried over[/]"
            )
        else:
            return False
        return True

    # -- commands ------------------------------------------------------------------------

    def run_command(self, text: str) -> bool:
        """Run one command line; False when the user asked to quit."""
        try:
            words = shlex.split(text)
        except ValueError as error:
            self.out.print(f"[red]{escape(str(error))}[/]")
            return True
        if not words:
            return True
        name, args = words[0], words[1:]
        handlers: dict[str, Callable[[list[str], str], None]] = {
            "break": self._break,
            "b": self._break,
            "snap": self._snap,
            "log": self._log_point,
            "clear": self._clear,
            "list": self._list,
            "l": self._list,
            "stack": self._stack,
            "bt": self._stack,
            "locals": self._locals,
            "eval": self._eval,
            "p": self._eval,
            "catch": self._catch,
            "up": lambda args, rest: self.views.move(_number(args, 1)),
            "down": lambda args, rest: self.views.move(-_number(args, 1)),
            "frame": lambda args, rest: self.views.select(_number(args, 0)),
            "set": self._set,
            "watch": lambda args, rest: (
                self.views.watch(rest) if rest else self.views.list_watches()
            ),
            "unwatch": lambda args, rest: self.views.unwatch(args[0] if args else "all"),
            "logs": self._logs_command,
        }
        resume = {"continue": "continue", "c": "continue", "next": "next", "n": "next"}
        resume |= {"step": "step", "s": "step", "out": "out", "o": "out"}
        if name in {"quit", "q", "exit"}:
            return False
        if name in {"help", "h", "?"}:
            self.out.print(escape(HELP))
            return True
        try:
            if name in resume:
                self._call(
                    "POST",
                    f"/internal/debug/sessions/{self.plugin}/command",
                    {"command": resume[name]},
                )
            elif name in handlers:
                handlers[name](args, text.split(None, 1)[1] if len(words) > 1 else "")
            else:
                self.out.print(f"[red]unknown command {escape(name)!r}[/]; type help")
        except PowerXError as error:
            self.out.print(f"[red]{error.code}[/]: {escape(error.message)}")
            for problem in error.problems:
                self.out.print(f"  {escape(problem.where)}: {escape(problem.message)}")
            if error.fix:
                self.out.print(f"  fix: {escape(error.fix)}")
        return True

    def _add(self, rest: str, kind: str) -> None:
        location, _, condition = rest.partition(" if ")
        location, _, hits = location.strip().partition(" hits ")
        file, line = parse_location(location)
        spec: dict[str, Any] = {"file": file, "line": line, "kind": kind}
        if hits.strip():
            spec["hit_condition"] = hits.strip()
        if condition.strip():
            spec["condition"] = condition.strip()
        added = self._call("POST", f"/internal/debug/breakpoints/{self.plugin}", spec)
        state = "verified" if added.get("verified") else "not verified yet"
        self.out.print(
            f"breakpoint {added['id']} ({kind}) at {escape(file)}:{line} [dim]{state}[/]"
        )

    def _break(self, args: list[str], rest: str) -> None:
        self._add(rest, "pause")

    def _snap(self, args: list[str], rest: str) -> None:
        self._add(rest, "snapshot")

    def _log_point(self, args: list[str], rest: str) -> None:
        location, _, message = rest.strip().partition(" ")
        if not message.strip():
            raise PowerXError(
                ErrorCode.LOG_POINT_EMPTY,
                "A log point needs a message.",
                "log app.py:12 said {name}",
            )
        file, line = parse_location(location)
        spec = {"file": file, "line": line, "log_message": message.strip()}
        added = self._call("POST", f"/internal/debug/breakpoints/{self.plugin}", spec)
        self.out.print(f"log point {added['id']} at {escape(file)}:{line}: {escape(message)}")

    def _clear(self, args: list[str], rest: str) -> None:
        target = args[0] if args else "all"
        query = "" if target == "all" else f"?id={target}"
        removed = self._call("DELETE", f"/internal/debug/breakpoints/{self.plugin}{query}")
        self.out.print(f"removed {removed['removed']} breakpoint(s)")

    def _list(self, args: list[str], rest: str) -> None:
        state = self._call("GET", f"/internal/debug/sessions/{self.plugin}")
        items = state.get("breakpoints") or []
        if not items:
            self.out.print("no breakpoints")
        for bp in items:
            mark = "[green]✓[/]" if bp.get("verified") else "[yellow]?[/]"
            extra = f" on hit {bp['hit_condition']}" if bp.get("hit_condition") else ""
            extra += f" if {bp['condition']}" if bp.get("condition") else ""
            extra += f" log {bp['log_message']!r}" if bp.get("log_message") else ""
            why = f" [dim]({escape(bp['message'])})[/]" if bp.get("message") else ""
            role = "log" if bp.get("log_message") else bp["kind"]
            origin = " [dim](set in the IDE)[/]" if bp.get("origin") == "ide" else ""
            self.out.print(
                f"{mark} {bp['id']:>3} {role:<8} {escape(bp['file'])}:{bp['line']}"
                f"{escape(extra)}  hits {bp.get('hits', 0)}{why}{origin}"
            )
        paused = state.get("paused")
        if paused:
            self.out.print(f"paused at {escape(str(paused['file']))}:{paused['line']}")

    def _stack(self, args: list[str], rest: str) -> None:
        body = self._call(
            "POST", f"/internal/debug/sessions/{self.plugin}/command", {"command": "stack"}
        )
        for index, frame in enumerate(body["stack"]):
            style = "" if frame.get("plugin_code") else "dim"
            self.out.print(
                escape(f"#{index:<2} {frame['file']}:{frame['line']} {frame['name']}"), style=style
            )

    def _command(self, body: dict[str, Any]) -> Any:
        return self._call("POST", f"/internal/debug/sessions/{self.plugin}/command", body)

    def _locals(self, args: list[str], rest: str) -> None:
        command: dict[str, Any] = self.views.with_frame({"command": "locals"})
        if args:
            command["frame"] = int(args[0]) if args[0].isdigit() else -1
        body = self._command(command)
        for name, value in body["locals"].items():
            self.out.print(f"{escape(name)} = {escape(_short(value))}")

    def _eval(self, args: list[str], rest: str) -> None:
        body = self._command(self.views.with_frame({"command": "eval", "expression": rest}))
        self.out.print(escape(str(body["result"])))

    def _catch(self, args: list[str], rest: str) -> None:
        mode = args[0] if args else ""
        self._command({"command": "catch", "mode": mode})
        self.out.print(f"exceptions: {escape(mode)}")

    def _set(self, args: list[str], rest: str) -> None:
        variable, _, value = rest.strip().partition(" ")
        body = self._command(
            self.views.with_frame({"command": "set", "name": variable, "value": value})
        )
        self.out.print(f"{escape(body['name'])} = {escape(_short(body['result']))}")

    def _logs_command(self, args: list[str], rest: str) -> None:
        turn_on = not args or args[0] == "on"
        if turn_on:
            self._logs_on.set()
            if self._logs is None:
                self._logs = threading.Thread(
                    target=self._follow_logs, name="powerx-logs", daemon=True
                )
                self._logs.start()
            self.out.print("[dim]live logs on (logs off to stop)[/]")
        else:
            self._logs_on.clear()
            self.out.print("[dim]live logs off[/]")


def _number(args: list[str], default: int) -> int:
    if not args:
        return default
    if not args[0].isascii() or not args[0].isdigit():
        raise PowerXError(
            ErrorCode.DEBUG_FRAME_UNKNOWN,
            f"{args[0]!r} is not a frame number.",
            "see the frames with `stack`, then e.g. `frame 2` or `up`.",
        )
    return int(args[0])


def _short(value: object, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
