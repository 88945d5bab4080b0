"""The notes backend: an HTTP server on PORT (as PowerX starts one) that keeps notes in
memory, lists the host's contacts for the request's identity, and remembers every request
it received (GET /api/v1/seen), so a test can tell that a refused one never arrived."""

from __future__ import annotations

import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from powerx_plugin import answer_denials, host_for

NOTES: list[dict[str, object]] = []
SEEN: list[str] = []


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def seen(request: Request) -> None:
    query = f"?{request.url.query}" if request.url.query else ""
    SEEN.append(f"{request.method} {request.url.path}{query}")


async def notes(request: Request) -> JSONResponse:
    seen(request)
    if request.method == "POST":
        body = await request.json()
        note = {"id": len(NOTES) + 1, "title": body["title"], "status": body.get("status", "todo")}
        NOTES.append(note)
        return JSONResponse(note, status_code=201)
    status = request.query_params.get("status")
    return JSONResponse({"data": [n for n in NOTES if status in (None, n["status"])]})


async def note(request: Request) -> JSONResponse:
    seen(request)
    wanted = int(request.path_params["id"])
    found = [n for n in NOTES if n["id"] == wanted]
    if not found:
        return JSONResponse({"error": "NOTE_NOT_FOUND"}, status_code=404)
    return JSONResponse(found[0])


async def broken(request: Request) -> JSONResponse:
    seen(request)
    return JSONResponse({"id": "seven", "title": 5}, status_code=201)


async def contacts(request: Request) -> JSONResponse:
    seen(request)
    return JSONResponse(await host_for(request).list_contacts())


async def seen_requests(request: Request) -> JSONResponse:
    return JSONResponse(SEEN)


app = answer_denials(
    Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/api/v1/notes", notes, methods=["GET", "POST"]),
            Route("/api/v1/notes/{id:int}", note),
            Route("/api/v1/broken", broken, methods=["POST"]),
            Route("/api/v1/contacts", contacts),
            Route("/api/v1/seen", seen_requests),
        ]
    )
)

if __name__ == "__main__":
    host, _, port = os.environ.get("POWERX_HTTP_ADDR", "").rpartition(":")
    uvicorn.run(app, host=host or "127.0.0.1", port=int(port or os.environ["PORT"]))
