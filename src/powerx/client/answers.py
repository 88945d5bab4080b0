"""What a simulator's answer means to a client: its JSON body, or the error it describes."""

from __future__ import annotations

from typing import Any

import httpx

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

NOT_RUNNING_FIX = "start one with `powerx host start --mock PATH` (in this project folder)."


def decoded(response: httpx.Response) -> Any:
    """The JSON body of a success; an error answer (problem JSON) raised as it was sent."""
    body = response.json() if response.content else {}
    if response.status_code >= 400:
        raise PowerXError.from_dict(body if isinstance(body, dict) else {}, response.status_code)
    return body


def not_answering(url: str) -> PowerXError:
    return PowerXError(
        ErrorCode.HOST_NOT_RUNNING,
        f"The simulator at {url} does not answer (it may have crashed).",
        NOT_RUNNING_FIX,
    )
