"""One HTTP transport for every generation, however it listens.

Outside a sandbox a generation listens on a loopback port (``http://127.0.0.1:PORT``).
Inside one it listens on a unix socket in its sandbox's socket folder, which the
simulator reaches directly: no relay between the two network namespaces on the request
path (a relay per hop cost ~1 ms a request). Each such socket gets a base URL on a
reserved name (``http://<id>.unix.invalid``) that this transport routes to it, so the
gateway and the health probe only ever deal in base URLs.
"""

from __future__ import annotations

import secrets
import ssl

import httpx

_SUFFIX = ".unix.invalid"  # .invalid never resolves: such a URL cannot leak anywhere


class SocketTransport(httpx.AsyncBaseTransport):
    def __init__(self, limits: httpx.Limits) -> None:
        self.limits = limits
        # Plain HTTP only; made once: a transport loads the CA bundle for its default TLS
        # context (~30 ms), which a reload would pay on its way to serving.
        self._tls = ssl.create_default_context()
        self.tcp = httpx.AsyncHTTPTransport(limits=limits, retries=0, verify=self._tls)
        self._unix: dict[str, httpx.AsyncHTTPTransport] = {}

    def add(self, path: str) -> str:
        """The base URL that reaches the HTTP server on the unix socket ``path``."""
        name = secrets.token_hex(8)
        self._unix[name] = httpx.AsyncHTTPTransport(
            uds=path, limits=self.limits, retries=0, verify=self._tls
        )
        return f"http://{name}{_SUFFIX}"

    async def remove(self, url: str) -> None:
        transport = self._unix.pop(_name(httpx.URL(url).host), None)
        if transport is not None:
            await transport.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if not host.endswith(_SUFFIX):
            return await self.tcp.handle_async_request(request)
        transport = self._unix.get(_name(host))
        if transport is None:
            raise httpx.ConnectError("that generation has stopped", request=request)
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self.tcp.aclose()
        for transport in self._unix.values():
            await transport.aclose()
        self._unix.clear()


def _name(host: str) -> str:
    return host.removesuffix(_SUFFIX)


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"
