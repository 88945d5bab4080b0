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
