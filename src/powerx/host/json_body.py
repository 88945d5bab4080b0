"""Reading a request's JSON body, one way for every route.

A body that is not JSON is each route's to explain (it knows what it needed); one nested
deeper than the parser can follow is refused here, as 400 ``json_too_deep``, not a 500.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError


async def read_json(request: Request) -> Any:
    """The body parsed as JSON; ``ValueError`` when it is not JSON."""
    try:
        return await request.json()
    except RecursionError:
        raise PowerXError(
            ErrorCode.JSON_TOO_DEEP,
            "The JSON body is nested too deeply to read.",
            "send a flatter document: no request to the simulator needs more than a few levels.",
        ) from None


async def json_or_none(request: Request) -> Any:
    """The JSON body, or None when there is none or it is not JSON (the caller says why
    that is wrong for it)."""
    try:
        return await read_json(request)
    except ValueError:
        return None


def strings(value: object) -> bool:
    """Whether ``value`` is a list of strings (file or folder names in a dev loop note)."""
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
