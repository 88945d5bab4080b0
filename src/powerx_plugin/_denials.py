"""``answer_denials``: a host permission denial a plugin does not catch answers its request
``403`` with the host's JSON, the same in Python as in Node."""

from __future__ import annotations

import json
import sys

from powerx_plugin._client import HostApiError
from powerx_plugin._types import ASGIApp, ASGIMessage, Receive, Scope, Send

# The plugin lacks the scope, or the identity of the request it serves lacks the permission.
DENIAL_CODES = frozenset({"permission_denied", "rbac_denied"})


def _denial(error: BaseException) -> HostApiError | None:
    """The permission denial ``error`` is, or holds (an ExceptionGroup from a task group)."""
    if isinstance(error, HostApiError):
        return error if error.code in DENIAL_CODES else None
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if found := _denial(inner):
                return found
    return None


def answer_denials(app: ASGIApp) -> ASGIApp:
    """Wrap an ASGI app: a host permission denial it does not catch answers the request
    ``403`` with the host's JSON (``error``, ``message``, ``fix``) and logs one warning
    line, instead of a bare 500 and a traceback that ends, 40 lines down, in the reason.

    The simulator wraps a handler plugin's app itself; a backend plugin (its own server)
    wraps its app::

        app = answer_denials(Starlette(routes=routes))

    Starlette's (and FastAPI's) outermost middleware sends its 500 before it re-raises,
    so a 500 is held back until the app has finished: if a denial is what broke it, the
    403 goes instead. Every other response passes straight through.
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        held: list[ASGIMessage] = []  # a 500 and its body, sent only once the app is done
        started = False

        async def send_unless_500(message: ASGIMessage) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message.get("status") == 500:
                    held.append(message)
                    return
            elif held:
                held.append(message)
                return
            await send(message)

        try:
            await app(scope, receive, send_unless_500)
        except Exception as error:
            denial = _denial(error)
            if denial is None or (started and not held):
                for message in held:
                    await send(message)
                raise
            await _answer_denial(scope, send, denial)
            return
        for message in held:
            await send(message)

    return wrapped


async def _answer_denial(scope: Scope, send: Send, denial: HostApiError) -> None:
    # The one line the log gets (the same as a Node plugin's): the reason and the fix.
    print(
        f"WARNING {denial.code}: {scope.get('method', '')} {scope.get('path', '')} "
        f"answered {denial.status}: {denial.message} fix: {denial.fix}",
        file=sys.stderr,
        flush=True,
    )
    body = json.dumps({"error": denial.code, "message": denial.message, "fix": denial.fix})
    await send(
        {
            "type": "http.response.start",
            "status": denial.status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
