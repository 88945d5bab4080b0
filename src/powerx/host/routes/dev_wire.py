"""How PowerX's dev hot-load API writes its answers, so px-plugin reads ours unchanged.

- Success: PowerX's envelope (``pkg/dto``) ``{"code": <HTTP status>, "message": "success",
  "data": {...}, "timestamp": <unix s>}``, with the payload's fields also at the top level
  as PowerX's register answers do: px-plugin's current client reads ``data``, its older
  one (and PowerX's own mock) the top level.
- Error: ``application/problem+json`` (RFC 9457: ``type``, ``title``, ``status``,
  ``detail``) carrying the simulator's own ``error`` code, ``message`` and ``fix``, and
  the code again as ``code``, which px-plugin's error parser shows first.
- Times: RFC 3339 in UTC, which Go's ``time.Time`` parses.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from powerx.errors import PowerXError
from powerx.host.dev_sessions import DevSession

PROBLEM_JSON = "application/problem+json"
Endpoint = Callable[[Request], Awaitable[Response]]
# Envelope keys a payload field must not overwrite at the top level (PowerX's rule).
_ENVELOPE_KEYS = frozenset({"code", "message", "data", "timestamp", "request_id"})


class JSONAnswer(JSONResponse):
    """JSON with non-ASCII escaped: a path or id a client sent with a lone surrogate (valid
    JSON, not UTF-8) is echoed in a message without failing to encode."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(payload: dict[str, Any], status: int = 200) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": status,
        "message": "success",
        "data": payload,
        "timestamp": int(time.time()),
    }
    body.update((k, v) for k, v in payload.items() if k not in _ENVELOPE_KEYS)
    return body


def success(payload: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONAnswer(envelope(payload, status), status_code=status)


def problem(error: PowerXError) -> dict[str, Any]:
    try:
        title = HTTPStatus(error.status).phrase
    except ValueError:
        title = "Error"
    return {
        **error.to_dict(),
        # RFC 9457's members, and px-plugin's ``code``, win over any detail of that name.
        "type": "about:blank",
        "title": title,
        "status": error.status,
        "detail": error.message,
        "code": error.code,
    }


def problem_response(error: PowerXError) -> JSONResponse:
    return JSONAnswer(problem(error), status_code=error.status, media_type=PROBLEM_JSON)


def protocol(endpoint: Endpoint) -> Endpoint:
    """Errors of the protocol's endpoints as problem+json (px-plugin reads ``code``)."""

    @functools.wraps(endpoint)
    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except PowerXError as error:
            return problem_response(error)

    return answer


def session_view(session: DevSession, dev_url: str) -> dict[str, Any]:
    """A session as PowerX's ``sessionView`` and px-plugin's ``StatusResponse`` and
    ``SessionRecord`` name its fields (the union of the three)."""
    end = session.ended_at or time.time()
    builds = session.reloads
    served = builds - session.failed_reloads  # the builds whose time is counted
    return {
        "sessionId": session.id,
        "pluginId": session.plugin_id,
        "version": session.version,
        "status": session.status,
        "note": session.note or None,
        "tenant": session.tenant,
        "tenant_uuid": session.tenant,
        "tenantId": session.tenant_id,
        "developerId": session.developer_id,
        "entryPath": str(session.source_dir),
        "devUrl": dev_url,
        "sandboxEndpoint": dev_url,
        "reloadToken": session.reload_token,
        "registeredAt": rfc3339(session.created_at),
        "createdAt": rfc3339(session.created_at),
        "updatedAt": rfc3339(session.last_reload_at or session.created_at),
        "expiresAt": rfc3339(session.expires_at),
        "endedAt": rfc3339(session.ended_at),
        "lastReload": rfc3339(session.last_reload_at),
        "reloadCount": session.reloads,
        "failedReloads": session.failed_reloads,
        "uptime": int(end - session.created_at),
        "buildStats": {
            "avgBuildTime": round(session.build_ms_total / served) if served else 0,
            "successRate": served / builds if builds else 0.0,
            "lastBuildDuration": round(session.last_build_ms or 0),
        },
        "metadata": session.metadata,
    }
