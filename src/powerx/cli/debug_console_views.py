"""What the terminal console remembers between commands: the frame that ``p``, ``locals``
and ``set`` work in (moved with ``up``, ``down`` and ``frame N``), and the watch
expressions it evaluates and shows at every stop. The simulator keeps neither: both are
the user's view of one pause, and a new pause starts again at the innermost plugin frame.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

Command = Callable[[dict[str, Any]], Any]


class ConsoleViews:
    def __init__(self, command: Command, out: Console) -> None:
        self._command = command
        self.out = out
        self.frame: int | None = None  # None: the innermost frame of the plugin's code
        self.watches: list[str] = []
        self._lock = threading.Lock()  # the event thread shows watches while the user types

    def with_frame(self, body: dict[str, Any]) -> dict[str, Any]:
        return body if self.frame is None else {**body, "frame": self.frame}

    # -- frames ------------------------------------------------------------------------

    def move(self, steps: int) -> None:
        """``up`` (towards the caller: +1) and ``down`` (-1)."""
        stack = self._stack()
        current = self.frame if self.frame is not None else _first_plugin_frame(stack)
        self._select(stack, current + steps)

    def select(self, index: int) -> None:
        self._select(self._stack(), index)

    def _select(self, stack: list[dict[str, Any]], index: int) -> None:
        if not 0 <= index < len(stack):
            edge = "outermost" if index >= len(stack) else "innermost"
            raise PowerXError(
                ErrorCode.DEBUG_FRAME_UNKNOWN,
                f"Already at the {edge} frame (the stack has {len(stack)}).",
                "see the frames with `stack`.",
            )
        self.frame = index
        frame = stack[index]
        self.out.print(escape(f"#{index:<2} {frame['file']}:{frame['line']} {frame['name']}"))

    def _stack(self) -> list[dict[str, Any]]:
        return list(self._command({"command": "stack"})["stack"])

    # -- watches -----------------------------------------------------------------------

    def watch(self, expression: str) -> None:
        with self._lock:
            self.watches.append(expression)
            number = len(self.watches)
        self.out.print(f"watch {number}: {escape(expression)}")

    def unwatch(self, which: str) -> None:
        with self._lock:
            if which in {"", "all"}:
                removed = len(self.watches)
                self.watches.clear()
            elif which.isdigit() and 1 <= int(which) <= len(self.watches):
                self.watches.pop(int(which) - 1)
                removed = 1
            else:
                raise PowerXError(
                    ErrorCode.WATCH_NOT_FOUND,
                    f"There is no watch {which!r}.",
                    "see the numbers with `watch` (no expression).",
                )
        self.out.print(f"removed {removed} watch(es)")

    def list_watches(self) -> None:
        with self._lock:
            watches = list(self.watches)
        if not watches:
            self.out.print("no watches (add one with `watch EXPR`)")
        for number, expression in enumerate(watches, start=1):
            self.out.print(f"watch {number}: {escape(expression)}")

    def paused(self) -> None:
        """A new stop: back to the innermost plugin frame, and every watch evaluated."""
        self.frame = None
        with self._lock:
            watches = list(self.watches)
        for expression in watches:
            try:
                value = str(self._command({"command": "eval", "expression": expression})["result"])
            except PowerXError as error:
                value = f"({error.message})"
            self.out.print(f"[cyan]watch[/] {escape(expression)} = {escape(value)}")


def _first_plugin_frame(stack: list[dict[str, Any]]) -> int:
    return next((i for i, frame in enumerate(stack) if frame.get("plugin_code")), 0)
