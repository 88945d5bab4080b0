"""uvicorn's HTTP protocol with a deadline for a request's headers.

uvicorn has no header timeout: ``timeout_keep_alive`` only runs between requests and the
first byte of the next one cancels it, so a client that sends its headers a byte at a
time keeps a connection (and its buffers) forever. This protocol gives each request
``timeout_s`` from the connection (or from the first byte of a later request on it)
until its headers are complete; then it answers 408 and closes the connection. A request
whose headers arrived is not limited: its body and a long response (an SSE stream) run
as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEADER_TIMEOUT_S = 10.0
_TIMEOUT_TEXT = b"The request's headers did not arrive in time.\n"
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMEOUT_TEXT), _TIMEOUT_TEXT)
)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """The httptools protocol (uvicorn's default with httptools installed), plus the
    header deadline; :func:`with_header_timeout` sets ``timeout_s``."""

    timeout_s = DEFAULT_HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_deadline = self.loop.call_later(self.timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # no response under way
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()


def with_header_timeout(timeout_s: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class to pass as ``uvicorn.Config(http=...)``."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"timeout_s": timeout_s})
