"""Send a request the inspector kept through the simulator again, as it was sent: same
method, path, query, headers and body, as the same identity (``powerx requests replay``).

It goes through the simulator's own routing (its ASGI app, in process), so the reload
gate, RBAC, the signed context and the inspector see it as any request; the new record
names the one it replays. The identity is named with the developer credential, as a
person naming one would; the caller's own ``Authorization`` never reached the plugin (the
simulator signs its own), so it is not sent again.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from starlette.types import ASGIApp

from powerx.auth import require_credential
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.forwarding import HOP_BY_HOP
from powerx.host.identity import IDENTITY_HEADER
from powerx.observe.request_view import mask_headers
from powerx.observe.requests import REQUEST_ID_HEADER, RequestRecord

__all__ = ["REPLAY_HEADER", "replay"]

# On a replayed request: the id of the one it replays (kept in its record, not forwarded).
REPLAY_HEADER = "x-powerx-replay-of"
_NOT_SENT_AGAIN = HOP_BY_HOP - {"host"} | {
    "authorization",
    IDENTITY_HEADER,
    REQUEST_ID_HEADER,
    REPLAY_HEADER,
}


def _headers(record: RequestRecord, default_identity: str) -> list[tuple[str, str]]:
    headers = []
    for raw_name, raw_value in record.incoming:
        name = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
        if name.lower() not in _NOT_SENT_AGAIN:
            headers.append((name, value))
    if record.identity != default_identity:
        headers.append((IDENTITY_HEADER, record.identity))
        headers.append(("authorization", f"Bearer {require_credential().token}"))
    headers.append((REPLAY_HEADER, record.id))
    return headers


def _answer_body(response: httpx.Response) -> dict[str, Any]:
    try:
        return {"body": response.content.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body": None, "body_bytes": len(response.content)}


async def replay(
    app: ASGIApp, base_url: str, record: RequestRecord, default_identity: str
) -> dict[str, Any]:
    """Send ``record``'s request again through ``app``; its answer, and whether its status
    is the one the original got."""
    if not record.replayable:
        raise PowerXError(
            ErrorCode.REQUEST_NOT_REPLAYABLE,
            f"Request {record.id} had a body of {record.body_size} bytes; the inspector keeps "
            "bodies whole only up to the replay cap, so it cannot send it again.",
            "send it again yourself (curl), or make the body smaller.",
            status=409,
        )
    url = record.path + (f"?{record.query}" if record.query else "")
    started = time.perf_counter()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=base_url, timeout=None
    ) as client:
        response = await client.request(
            record.method, url, headers=_headers(record, default_identity), content=record.body
        )
    generation = response.headers.get("x-powerx-generation")
    return {
        "id": record.id,
        "replay_id": response.headers.get(REQUEST_ID_HEADER),
        "plugin": record.plugin,
        "method": record.method,
        "path": record.path,
        "identity": record.identity,
        "status": response.status_code,
        "original_status": record.status,
        "same_status": response.status_code == record.status,
        "generation": int(generation) if generation and generation.isdigit() else None,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "headers": mask_headers(list(response.headers.items())),
        "content_type": response.headers.get("content-type"),
        **_answer_body(response),
    }
