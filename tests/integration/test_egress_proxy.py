"""The egress proxy on real sockets: it forwards what a plugin's policy allows (plain HTTP
and CONNECT tunnels), refuses the rest with the host and the fix, and refuses callers
without a plugin token."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from powerx.host.egress_proxy import EgressProxy
from powerx.runtimes.egress_guard import EgressPolicy

TOKEN = "pxp_test-token"


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello {self.path}".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()


def run_with_proxy(
    scenario: object, allow: tuple[str, ...] = ()
) -> tuple[list[tuple[str, str, int, str]], object]:
    """Start a proxy whose only plugin may reach ``allow``; run ``scenario(url)``."""
    blocked: list[tuple[str, str, int, str]] = []
    policy = EgressPolicy(allow, ["api.powerx.io", "*.powerx.io"], "127.0.0.1:1")

    def identify(token: str) -> tuple[str, EgressPolicy] | None:
        return ("com.test.proxy", policy) if token == TOKEN else None

    async def main() -> object:
        proxy = EgressProxy(identify, lambda *args: blocked.append(args))
        await proxy.start()
        try:
            url = proxy.url_for("com.test.proxy", TOKEN)
            return await asyncio.to_thread(scenario, url, proxy.port)  # type: ignore[arg-type]
        finally:
            await proxy.close()

    return blocked, asyncio.run(main())


def test_allowed_hosts_are_forwarded_plain_and_tunnelled(upstream: int) -> None:
    def scenario(url: str, port: int) -> tuple[str, int]:
        with httpx.Client(proxy=url, trust_env=False, timeout=10) as client:
            plain = client.get(f"http://127.0.0.1:{upstream}/plain?x=1")
        # A CONNECT tunnel by hand (httpx tunnels only https), then HTTP inside it.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            auth = base64.b64encode(f"com.test.proxy:{TOKEN}".encode()).decode()
            head = f"CONNECT 127.0.0.1:{upstream} HTTP/1.1\r\nProxy-Authorization: Basic {auth}"
            sock.sendall(head.encode() + b"\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
            sock.sendall(b"GET /tunnel HTTP/1.0\r\nHost: x\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
        return plain.text + "|" + answer.decode().split("\r\n\r\n", 1)[1], plain.status_code

    # A local service is allowed by its port (localhost:8080 in a manifest).
    blocked, result = run_with_proxy(scenario, (f"127.0.0.1:{upstream}",))
    assert result == ("hello /plain?x=1|hello /tunnel", 200)
    assert blocked == []


def test_hosts_outside_the_policy_are_refused_naming_host_and_fix() -> None:
    def scenario(url: str, port: int) -> list[httpx.Response]:
        with httpx.Client(proxy=url, trust_env=False, timeout=10) as client:
            return [
                client.get("http://example.org/"),
                client.get("http://api.powerx.io/v1"),
            ]

    blocked, responses = run_with_proxy(scenario)
    outside, production = responses  # type: ignore[misc]
    assert outside.status_code == 403 and production.status_code == 403
    assert "egress to example.org:80 blocked" in outside.text
    assert "add the host to `egress`" in outside.reason_phrase
    assert "production PowerX API" in production.text
    assert [(host, reason) for _, host, _, reason in blocked] == [
        ("example.org", "egress_not_allowed"),
        ("api.powerx.io", "production_host"),
    ]


def test_callers_without_a_plugin_token_are_refused(upstream: int) -> None:
    def scenario(url: str, port: int) -> int:
        anonymous = f"http://127.0.0.1:{port}"
        with httpx.Client(proxy=anonymous, trust_env=False, timeout=10) as client:
            return client.get(f"http://127.0.0.1:{upstream}/").status_code

    blocked, status = run_with_proxy(scenario)
    assert status == 407 and blocked == []
