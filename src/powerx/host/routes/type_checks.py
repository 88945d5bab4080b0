"""``POST /internal/debug/hot-reload/type-check``: what a dev loop's type check of a plugin
found (``reload/type_checks.py``), so that status, the event stream and the dashboard show
its errors as warnings with file:line until a clean run clears them.

Body: ``{"plugin", "tool", "config", "state": clean|errors|failed|unavailable,
"problems": [{"file", "line", "column", "code", "message"}], "duration_ms", "message",
"fix", "at"}``; the developer credential, as the dev loop's other notes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, validation_problems
from powerx.host.routes import state
from powerx.host.routes.guards import read_json, require_debug

__all__ = ["routes"]


class TypeProblemNote(BaseModel):
    model_config = ConfigDict(extra="ignore")

    file: str = Field(max_length=1000)
    line: int = Field(ge=0)
    column: int = Field(ge=0)
    code: str = Field(max_length=40)
    message: str = Field(max_length=2000)


class TypeCheckNote(BaseModel):
    model_config = ConfigDict(extra="ignore")

    plugin: str = Field(min_length=1, max_length=200)
    tool: str = Field(min_length=1, max_length=20)
    config: str = Field(default="", max_length=200)
    state: Literal["clean", "errors", "failed", "unavailable"]
    problems: list[TypeProblemNote] = Field(default_factory=list, max_length=100_000)
    duration_ms: float = Field(default=0.0, ge=0)
    message: str = Field(default="", max_length=4000)
    fix: str | None = Field(default=None, max_length=1000)
    at: float = 0.0


async def type_checked(request: Request) -> Response:
    require_debug(request)
    try:
        raw = await read_json(request)
        note = TypeCheckNote.model_validate(raw)
    except (ValueError, ValidationError) as error:
        problems = validation_problems(error) if isinstance(error, ValidationError) else []
        raise PowerXError(
            ErrorCode.INVALID_BODY,
            'A type check note needs {"plugin": id, "tool": str, "state": '
            '"clean"|"errors"|"failed"|"unavailable", "problems"?: [...]}.',
            "send the report the dev loop's type check made, as JSON.",
            problems=problems,
        ) from None
    state.simulator(request).note_type_check(note.model_dump())
    return JSONResponse({"plugin": note.plugin, "state": note.state, "errors": len(note.problems)})


routes = [
    Route("/internal/debug/hot-reload/type-check", type_checked, methods=["POST"]),
]
