"""The console's commands on a plugin's debug session (``POST .../session`` and the
terminal console): resume (continue, next, step, out), read the paused frame (stack,
locals, eval), change it (set) and choose where exceptions halt (catch). What fails is a
PowerXError that says which command, why, and what to type instead."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from powerx.debug.dap import DapError
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

if TYPE_CHECKING:
    from powerx.debug.session import DebugSession, Paused

__all__ = ["catch", "frame_of", "require_paused", "run_command", "set_variable"]

# The console's exception modes, as debugpy's filters (NodeLink maps them to V8's).
_CATCH: dict[str, list[str]] = {
    "raised": ["raised"],
    "uncaught": ["uncaught", "userUnhandled"],
    "off": [],
}


def require_paused(session: DebugSession, command: str) -> Paused:
    if session.paused is None:
        raise PowerXError(
            ErrorCode.DEBUG_NOT_PAUSED,
            f"'{command}' needs the plugin to be paused at a breakpoint.",
            "set a breakpoint with `break FILE:LINE` and send the plugin a request.",
            status=409,
        )
    return session.paused


def frame_of(paused: Paused, arguments: dict[str, Any]) -> dict[str, Any]:
    """The frame a command names (``frame``: an index into the stack), by default the
    innermost frame of the plugin's own code."""
    index = arguments.get("frame", _first_plugin_frame(paused))
    if not isinstance(index, int) or isinstance(index, bool):
        raise PowerXError(
            ErrorCode.DEBUG_FRAME_UNKNOWN,
            f"The frame must be a number from `stack`, not {index!r}.",
            "see the frames with `stack`.",
            status=422,
        )
    if not 0 <= index < len(paused.stack):
        raise PowerXError(
            ErrorCode.DEBUG_FRAME_UNKNOWN,
            f"There is no frame {index}; the stack has {len(paused.stack)}.",
            "see the frames with `stack`.",
            status=422,
        )
    return paused.stack[index]


async def run_command(
    session: DebugSession, name: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """continue | next | step | out | stack | locals | eval | set | catch."""
    expression = str(arguments.get("expression", "")).strip()
    resume = {"continue": "continue", "next": "next", "step": "stepIn", "out": "stepOut"}
    try:
        if name in resume:
            paused = require_paused(session, name)
            await session.resume(resume[name], paused.thread_id)
            return {"ok": True}
        if name == "stack":
            return {"stack": require_paused(session, name).to_dict(session.plugin)["stack"]}
        if name == "locals":
            paused = require_paused(session, name)
            frame = frame_of(paused, arguments)
            return {
                "frame": frame["name"],
                "locals": await paused.link.locals(int(frame["id"])),
            }
        if name == "catch":
            return await catch(session, str(arguments.get("mode", "")))
        if name == "set":
            return await set_variable(session, arguments)
        if name == "eval":
            paused = require_paused(session, name)
            frame = frame_of(paused, arguments)
            if not expression:
                raise PowerXError(ErrorCode.DEBUG_EVAL_EMPTY, "Nothing to evaluate.", "eval EXPR")
            return {"result": await paused.link.evaluate(expression, int(frame["id"]))}
    except (DapError, TimeoutError) as error:
        if isinstance(error, DapError) and name in {"eval", "set"} and session.paused:
            # Still paused, so the expression failed, not the debugger.
            shown = expression or f"{arguments.get('name')} = {arguments.get('value')}"
            raise PowerXError(
                ErrorCode.DEBUG_EVAL_FAILED,
                f"{shown!r} failed: {_last_line(error.message)}",
                "use names of the paused frame (see `locals`; `stack` lists the frames).",
                status=422,
            ) from None
        raise PowerXError(
            ErrorCode.DEBUG_COMMAND_FAILED,
            f"The debugger refused '{name}': {error}",
            "the generation may have been replaced; see `list` and try again.",
            status=409,
        ) from None
    raise PowerXError(
        ErrorCode.DEBUG_COMMAND_UNKNOWN,
        f"Unknown debugger command {name!r}.",
        "use continue, next, step, out, stack, locals, eval, set or catch.",
    )


async def catch(session: DebugSession, mode: str) -> dict[str, Any]:
    """Exception breakpoints from the console: ``raised``, ``uncaught`` or ``off``."""
    if mode not in _CATCH:
        raise PowerXError(
            ErrorCode.DEBUG_CATCH_INVALID,
            f"{mode!r} is not an exception mode.",
            "use catch raised (every raise), catch uncaught (what the plugin does not "
            "handle) or catch off.",
            status=422,
        )
    await session.set_exception_filters({"filters": _CATCH[mode]})
    return {"catch": mode}


async def set_variable(session: DebugSession, arguments: dict[str, Any]) -> dict[str, Any]:
    """``set VAR VALUE``: assign in the paused frame; the new value, read back."""
    paused = require_paused(session, "set")
    frame = frame_of(paused, arguments)
    variable, value = str(arguments.get("name", "")), str(arguments.get("value", "")).strip()
    if not variable.isidentifier() or not value:
        raise PowerXError(
            ErrorCode.DEBUG_SET_INVALID,
            f"'set' needs a variable name and a value, not {variable!r} {value!r}.",
            "write it as: set name 'ada' (the value is an expression).",
            status=422,
        )
    await paused.link.evaluate(f"{variable} = {value}", int(frame["id"]))
    return {"name": variable, "result": await paused.link.evaluate(variable, int(frame["id"]))}


def _last_line(text: str) -> str:
    """debugpy answers a failed evaluation with a traceback: its last line says what."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text


def _first_plugin_frame(paused: Paused) -> int:
    return next((i for i, f in enumerate(paused.stack) if f["plugin_code"]), 0)
