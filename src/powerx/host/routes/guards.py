"""The checks the simulator's endpoints share, written once.

- Who may ask: ``require_debug`` (the developer credential, a bearer token) and
  ``require_reader`` (that, or the dashboard's cookie: a browser's EventSource cannot send
  headers, so the dashboard reads with the cookie; anything that changes state still needs
  the bearer credential).
- Whether the feature is on: ``require_simulator_flag``, ``require_observability_flag``.
- What was sent: the JSON body (``read_json``, ``json_or_none``, ``require_json``) and whole
  numbers in the query string (``int_param``).

A body that is not JSON is each route's to explain (it knows what it needed); one nested
deeper than the parser can follow is refused here, as 400 ``json_too_deep``, not a 500.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request

from powerx.auth import check_bearer
from powerx.config import OBSERVABILITY_FLAG, SIMULATOR_FLAG
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.routes import state

if TYPE_CHECKING:
    from powerx.host.simulator import Simulator

__all__ = [
    "DASHBOARD_COOKIE",
    "QueryNumber",
    "int_param",
    "is_dashboard_key",
    "json_or_none",
    "read_json",
    "require_debug",
    "require_json",
    "require_observability_flag",
    "require_reader",
    "require_simulator_flag",
    "strings",
]

DASHBOARD_COOKIE = "powerx_dashboard"


def require_debug(request: Request) -> None:
    """The developer credential (``Authorization: Bearer``), else 401/403."""
    check_bearer(request.headers.get("authorization"))


def is_dashboard_key(request: Request, presented: str) -> bool:
    """Whether ``presented`` is this simulator's dashboard key (compared in constant time)."""
    key = state.controls(request).dashboard_key
    return bool(presented) and secrets.compare_digest(presented.encode(), key.encode())


def require_reader(request: Request) -> None:
    """The developer credential, or the dashboard cookie (for GETs a browser makes)."""
    if is_dashboard_key(request, request.cookies.get(DASHBOARD_COOKIE, "")):
        return
    require_debug(request)


def require_simulator_flag(simulator: Simulator) -> None:
    if not simulator.config.flag(SIMULATOR_FLAG):
        raise PowerXError(
            ErrorCode.SIMULATOR_DISABLED,
            f"The flag {SIMULATOR_FLAG} is off.",
            f"set {SIMULATOR_FLAG}=1 and restart the simulator.",
            status=403,
        )


def require_observability_flag(simulator: Simulator) -> None:
    if not simulator.config.flag(OBSERVABILITY_FLAG):
        raise PowerXError(
            ErrorCode.OBSERVABILITY_DISABLED,
            f"The flag {OBSERVABILITY_FLAG} is off.",
            "set POWERX_FLAG_DEBUG_OBSERVABILITY_V2=1 (or the flag in host_simulator.yaml) "
            "and restart the simulator.",
            status=404,
        )


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


async def require_json(request: Request) -> Any:
    """The JSON body; 400 ``invalid_body`` when it is not JSON."""
    try:
        return await read_json(request)
    except ValueError:
        raise PowerXError(
            ErrorCode.INVALID_BODY, "The request body is not JSON.", "send a JSON object."
        ) from None


def strings(value: object) -> bool:
    """Whether ``value`` is a list of strings (file or folder names in a dev loop note)."""
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# A query parameter ``int_param`` reads, and the code it answers a bad value with.
QueryNumber = Literal["limit", "tail"]
_INVALID_NUMBER: dict[QueryNumber, ErrorCode] = {
    "limit": ErrorCode.INVALID_LIMIT,
    "tail": ErrorCode.INVALID_TAIL,
}


def int_param(request: Request, name: QueryNumber, default: int, low: int, high: int) -> int:
    """The query parameter ``name`` as a whole number from ``low`` to ``high``
    (``default`` when absent), else 400 ``invalid_<name>``."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise PowerXError(
            _INVALID_NUMBER[name],
            f"{name}={raw!r} is not a whole number from {low} to {high}.",
            f"pass {name} between {low} and {high}.",
        )
    return value
