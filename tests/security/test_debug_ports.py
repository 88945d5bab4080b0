"""Attacks on the debug ports of a running simulator with a Python and a Node plugin.

Whatever attaches to a debug port can run code in the plugin (and read its token), so
each test plays someone who must not get there: a web page the developer visits (it can
open a WebSocket to loopback and send any HTTP request to any port, with its own
``Origin``, or through a rebound DNS name, but it cannot read the developer's credential)
or another local process (it can connect anywhere on loopback). Only the developer's
tools, which get the ports' secrets with the credential, may attach.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from powerx.host.launcher import shim_command
from powerx.runtimes import CONTROL_PREFIX
from tests.conftest import (
    HELLO_NODE,
    RunningSimulator,
    Workspace,
    make_workspace,
    python_manifest,
    write_plugin,
)
from tests.integration.test_dap_proxy import DapTestClient

PY_ID = "com.test.debug-target"
NODE_ID = "com.example.hello-node"
PY_APP = """\
import os

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def home(request):
    return JSONResponse({"ok": True})


async def env(request):
    return JSONResponse(dict(os.environ))


app = Starlette(routes=[Route("/", home), Route("/env", env)])
"""
EVIL = "http://evil.example"
TIMEOUT_S = 10.0


def _start(root: Path, sandbox: str) -> RunningSimulator:
    workspace = make_workspace(root)
    workspace.env["POWERX_SANDBOX"] = sandbox
    workspace.login()
    python_plugin = write_plugin(root / "py", python_manifest(PY_ID), {"app.py": PY_APP})
    return RunningSimulator(workspace, [python_plugin, HELLO_NODE])


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    running = _start(tmp_path_factory.mktemp("debug-ports"), "auto")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def uncontained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    """Plugins without the OS sandbox, where a generation's own debugger ports are on
    this machine's loopback for any local process to find (macOS, no bubblewrap)."""
    running = _start(tmp_path_factory.mktemp("debug-ports-uncontained"), "off")
    yield running
    running.stop()


def plugin_status(simulator: RunningSimulator, plugin: str) -> dict[str, Any]:
    plugins: list[dict[str, Any]] = simulator.status()["plugins"]  # type: ignore[assignment]
    return next(p for p in plugins if p["id"] == plugin)


def debug_port(simulator: RunningSimulator, plugin: str) -> int:
    return int(plugin_status(simulator, plugin)["debug_port"])


def breakpoints(simulator: RunningSimulator, plugin: str) -> list[Any]:
    response = simulator.get(
        f"/internal/debug/breakpoints/{plugin}", headers=simulator.debug_headers()
    )
    assert response.status_code == 200, response.text
    return list(response.json()["breakpoints"])


# -- raw clients: what a page or a process can send, byte for byte -------------------------


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (an assertion error if
    it keeps it open for TIMEOUT_S)."""
    sock.settimeout(TIMEOUT_S)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"still open after {TIMEOUT_S} s; got {received!r}") from None
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def http_exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """Send one HTTP request; the status and the body (up to the server's close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            assert chunk, f"closed before a response; got {head!r}"
            head += chunk
        head, _, body = head.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status == 101:  # upgraded: the attack got through
            return status, body
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            None,
        )
        while length is None or len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, body


def websocket_handshake(
    port: int, path: str, host: str | None = None, origin: str | None = None
) -> tuple[int, bytes]:
    """A WebSocket opening handshake as a browser (or a script) sends it."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host or f'127.0.0.1:{port}'}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return http_exchange(port, ("\r\n".join(lines) + "\r\n\r\n").encode())


def dap(command: str, arguments: dict[str, Any] | None = None, seq: int = 1) -> bytes:
    body = json.dumps(
        {"seq": seq, "type": "request", "command": command, "arguments": arguments or {}}
    ).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def dap_messages(data: bytes) -> list[dict[str, Any]]:
    messages = []
    while data:
        header, _, rest = data.partition(b"\r\n\r\n")
        length = int(header.split(b":")[1])
        messages.append(json.loads(rest[:length]))
        data = rest[length:]
    return messages


async def evaluate(url: str, expression: str, **options: Any) -> Any:
    async with websockets.connect(url, **options) as inspector:
        await inspector.send(
            json.dumps(
                {
                    "id": 1,
                    "method": "Runtime.evaluate",
                    "params": {"expression": expression, "returnByValue": True},
                }
            )
        )
        while True:
            message = json.loads(await asyncio.wait_for(inspector.recv(), TIMEOUT_S))
            if message.get("id") == 1:
                return message["result"]["result"]["value"]


def listening_ports(pid: int, its_own_network: bool = False) -> set[int]:
    """The TCP ports a process listens on in this machine's network (as any local
    process may find them), or in the network namespace it is in."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    where = f"/proc/{pid}/net" if its_own_network else "/proc/self/net"
    for table in (f"{where}/tcp", f"{where}/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


# -- the inspector endpoint of the Node plugin (CDP over WebSocket) --------------------


def test_a_websocket_without_the_secret_is_refused_before_the_upgrade(
    simulator: RunningSimulator,
) -> None:
    port = debug_port(simulator, NODE_ID)
    for path in (f"/{NODE_ID}", "/", f"/{NODE_ID}/{NODE_ID}"):
        status, body = websocket_handshake(port, path)
        assert status == 403, (path, status, body)
        assert json.loads(body)["error"] == "debug_secret_required"


def test_a_websocket_with_a_wrong_secret_is_refused_before_the_upgrade(
    simulator: RunningSimulator,
) -> None:
    port = debug_port(simulator, NODE_ID)
    for wrong in (secrets.token_urlsafe(32), "x" * 43, "%00"):
        status, _ = websocket_handshake(port, f"/{wrong}/{NODE_ID}")
        assert status == 403, wrong
    # Each port has its own secret: the Python plugin's does not open the Node plugin's.
    python_secret = simulator.ide_access(PY_ID)["secret"]
    status, _ = websocket_handshake(port, f"/{python_secret}/{NODE_ID}")
    assert status == 403


def test_a_web_page_is_refused_even_with_the_secret(simulator: RunningSimulator) -> None:
    access = simulator.ide_access(NODE_ID)
    port, path = access["port"], f"/{access['secret']}/{NODE_ID}"
    for origin in (EVIL, "null", f"http://127.0.0.1:{port}", "http://localhost"):
        status, body = websocket_handshake(port, path, origin=origin)
        assert status == 403, (origin, body)
        assert json.loads(body)["error"] == "origin_forbidden"
    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(evaluate(access["websocket"], "process.pid", origin=EVIL))
    assert refused.value.response.status_code == 403
    # The same URL without a page's origin (js-debug), or from DevTools itself, attaches.
    assert asyncio.run(evaluate(access["websocket"], "1 + 1")) == 2
    devtools = asyncio.run(evaluate(access["websocket"], "2 + 2", origin="devtools://devtools"))
    assert devtools == 4


def test_a_rebound_host_name_is_refused_even_with_the_secret(simulator: RunningSimulator) -> None:
    access = simulator.ide_access(NODE_ID)
    port, path = access["port"], f"/{access['secret']}/{NODE_ID}"
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
        status, body = websocket_handshake(port, path, host=host)
        assert status == 403, (host, body)
        assert json.loads(body)["error"] == "host_forbidden"
        status, _ = http_exchange(
            port, f"GET /{access['secret']}/json/list HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        )
        assert status == 403
    # js-debug sends "Host: localhost" (no port): that is the developer's tool.
    status, _ = websocket_handshake(port, path, host="localhost")
    assert status == 101


def test_discovery_without_the_secret_reveals_no_usable_url(simulator: RunningSimulator) -> None:
    port = debug_port(simulator, NODE_ID)
    answers = [
        httpx.get(f"http://127.0.0.1:{port}{path}", trust_env=False)
        for path in ("/json/list", "/json", "/json/list/", f"/{NODE_ID}/json/list")
    ]
    for response in answers:
        assert response.status_code == 403, (response.url, response.text)
        assert "ws://" not in response.text and "devtools://" not in response.text
    version = httpx.get(f"http://127.0.0.1:{port}/json/version", trust_env=False)
    assert version.status_code == 200
    secret = simulator.ide_access(NODE_ID)["secret"]
    assert all(secret not in r.text for r in [*answers, version])


def test_the_node_generations_own_inspector_lists_no_target(
    uncontained: RunningSimulator,
) -> None:
    """Behind the endpoint each generation has an inspector on a random loopback port,
    with a random id in its WebSocket path; Node would list that id to anyone."""
    with attached(uncontained, NODE_ID) as status:
        others = listening_ports(status["pid"]) - {status["port"]}
        assert others, "the debugging generation should have its inspector listening"
        for port in others:
            for path in ("/json/list", "/json"):
                text = httpx.get(f"http://127.0.0.1:{port}{path}", trust_env=False).text
                assert "webSocketDebuggerUrl" not in text and "ws=" not in text, text


def test_in_its_sandbox_a_debugging_generation_listens_on_no_port_of_this_machine(
    simulator: RunningSimulator,
) -> None:
    """Contained, a generation serves HTTP on a unix socket the simulator reaches, and
    its own debugger listens in the sandbox's network only: no local process can reach
    either through this machine's loopback."""
    for plugin in (NODE_ID, PY_ID):
        with attached(simulator, plugin) as status:
            assert listening_ports(status["pid"]) == set(), plugin
            assert status["port"] is None, status  # HTTP: a unix socket
    with attached(simulator, NODE_ID) as status:  # the inspector: in its own network
        assert listening_ports(status["pid"], its_own_network=True)


@contextlib.contextmanager
def attached(simulator: RunningSimulator, plugin: str) -> Iterator[dict[str, Any]]:
    """A console attached (over the HTTP API): the serving generation runs its debugger."""
    session = f"/internal/debug/sessions/{plugin}"
    headers = simulator.debug_headers()
    answer = simulator.request("POST", f"{session}/attach", headers=headers)
    assert answer.status_code == 200, answer.text
    try:
        status = plugin_status(simulator, plugin)
        assert status["debugging"] is True
        yield status
    finally:
        simulator.request("POST", f"{session}/detach", headers=headers)


# -- the DAP server of the Python plugin -----------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        dap("evaluate", {"expression": "__import__('os').getpid()", "context": "repl"}),
        dap("setBreakpoints", {"source": {"path": "/etc/app.py"}, "breakpoints": [{"line": 1}]}),
        dap("threads"),
        dap("initialize", {"adapterID": "python"})
        + dap("evaluate", {"expression": "1", "context": "repl"}, seq=2),
    ],
    ids=["evaluate", "setBreakpoints", "threads", "initialize-then-evaluate"],
)
def test_a_dap_request_before_a_valid_attach_is_disconnected_unanswered(
    simulator: RunningSimulator, request_bytes: bytes
) -> None:
    before = breakpoints(simulator, PY_ID)
    with socket.create_connection(("127.0.0.1", debug_port(simulator, PY_ID))) as sock:
        sock.sendall(request_bytes)
        answers = dap_messages(read_until_closed(sock))
    # At most the capabilities of an initialize; nothing about the plugin.
    assert [m.get("command") for m in answers] in ([], ["initialize"]), answers
    assert breakpoints(simulator, PY_ID) == before


@pytest.mark.parametrize(
    "arguments",
    [{}, {"powerxToken": "guess"}, {"powerxToken": None}, {"powerxToken": ["x"]}],
    ids=["no-secret", "wrong", "null", "list"],
)
def test_an_attach_without_the_secret_is_refused_and_closed(
    simulator: RunningSimulator, arguments: dict[str, Any]
) -> None:
    port = debug_port(simulator, PY_ID)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            dap("initialize", {"adapterID": "python"})
            + dap("attach", {"justMyCode": True, **arguments}, seq=2)
            + dap("evaluate", {"expression": "1", "context": "repl"}, seq=3)
        )
        answers = dap_messages(read_until_closed(sock))
    attach = next(m for m in answers if m.get("command") == "attach")
    assert attach["success"] is False and "powerx debug vscode" in attach["message"]
    assert [m.get("command") or m.get("event") for m in answers] == ["initialize", "attach"]
    # The other port's secret is wrong here too.
    node_secret = simulator.ide_access(NODE_ID)["secret"]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(dap("attach", {"powerxToken": node_secret}))
        [refused] = dap_messages(read_until_closed(sock))
    assert refused["success"] is False


def test_an_http_request_to_the_dap_port_gets_nothing(simulator: RunningSimulator) -> None:
    """What a page can make a browser send: a POST whose body is a DAP request (with a
    Content-Length), or a WebSocket upgrade."""
    port = debug_port(simulator, PY_ID)
    before = breakpoints(simulator, PY_ID)
    body = dap("setBreakpoints", {"source": {"path": "/x.py"}, "breakpoints": [{"line": 1}]})
    body = body.partition(b"\r\n\r\n")[2]
    requests = [
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: %s\r\n"
        b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
        % (port, EVIL.encode(), len(body), body),
        b"Content-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s" % (len(body), body),
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade"
        b"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        % port,
    ]
    for request in requests:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)
            assert read_until_closed(sock) == b"", request
    assert breakpoints(simulator, PY_ID) == before


def test_the_python_generation_listens_for_nobody_once_the_simulator_is_in(
    uncontained: RunningSimulator,
) -> None:
    """Each generation's debugpy listens on a random loopback port; pydevd would let any
    new client evaluate code, and take the session over from the simulator."""
    with attached(uncontained, PY_ID) as status:
        assert listening_ports(status["pid"]) == {status["port"]}  # its HTTP port only


@pytest.mark.parametrize("start", ["spare", "cold"])
def test_a_python_generation_waiting_for_its_debugger_answers_no_stranger(
    tmp_path: Path, start: str
) -> None:
    """Before the simulator connects, a local process may reach the generation's debugpy
    first: without the generation's access token it is refused everything."""
    root = write_plugin(tmp_path / "plugin", python_manifest(PY_ID), {"app.py": PY_APP})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERX_", "PX_"))}
    env["POWERX_DEBUGGER"] = "1"
    argv = [str(root), "app.py", "app"]
    generation = subprocess.Popen(
        shim_command("python3.11", ["--spare"] if start == "spare" else argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert generation.stdout is not None and generation.stdin is not None
        if start == "spare":  # as the simulator runs it: warm, then told what to run
            assert json.loads(generation.stdout.readline()[len(CONTROL_PREFIX) :]) == {
                "event": "spare",
                "pid": generation.pid,
            }
            generation.stdin.write(json.dumps({"argv": argv, "env": env}).encode() + b"\n")
            generation.stdin.flush()
        line = generation.stdout.readline().decode()
        assert line.startswith(CONTROL_PREFIX), line
        control = json.loads(line[len(CONTROL_PREFIX) :])
        assert control["event"] == "debug"

        def ask(*requests: bytes) -> list[dict[str, Any]]:
            with socket.create_connection(("127.0.0.1", control["port"])) as sock:
                sock.sendall(b"".join(requests))
                sock.settimeout(TIMEOUT_S)
                data = b""
                while len(dap_messages_safe(data)) < len(requests):
                    chunk = sock.recv(65536)
                    assert chunk, data
                    data += chunk
                return dap_messages_safe(data)

        stranger = ask(
            dap("initialize", {"adapterID": "python"}),
            dap("evaluate", {"expression": "__import__('os').getpid()"}, seq=2),
            dap("pydevdAuthorize", {"debugServerAccessToken": secrets.token_urlsafe(32)}, seq=3),
            dap("threads", seq=4),
        )
        assert [m["success"] for m in stranger if m["command"] != "pydevdAuthorize"] == [
            False,
            False,
            False,
        ], stranger
        # With the token it was made (told the simulator alone), it answers.
        assert control.get("token") and control["token"] not in json.dumps(env)
        owner = ask(
            dap("pydevdAuthorize", {"debugServerAccessToken": control["token"]}),
            dap("initialize", {"adapterID": "python"}, seq=2),
        )
        assert [m["success"] for m in owner] == [True, True], owner
    finally:
        generation.kill()
        generation.wait(TIMEOUT_S)


def dap_messages_safe(data: bytes) -> list[dict[str, Any]]:
    """The complete messages in ``data`` (a partial last one is left out)."""
    messages = []
    while b"\r\n\r\n" in data:
        header, _, rest = data.partition(b"\r\n\r\n")
        length = int(header.split(b":")[1])
        if len(rest) < length:
            break
        messages.append(json.loads(rest[:length]))
        data = rest[length:]
    return [m for m in messages if m.get("type") == "response"]


# -- the secret itself ------------------------------------------------------------------


def test_the_secrets_reach_only_the_developers_tools(simulator: RunningSimulator) -> None:
    path = f"/internal/debug/sessions/{NODE_ID}/ide"
    assert simulator.get(path).status_code == 401
    wrong = {"authorization": "Bearer pxm_not-the-developers-credential"}
    assert simulator.get(path, headers=wrong).status_code == 401
    known = [simulator.ide_access(plugin)["secret"] for plugin in (PY_ID, NODE_ID)]
    status_text = json.dumps(simulator.status())
    node_env = asyncio.run(
        evaluate(simulator.ide_access(NODE_ID)["websocket"], "JSON.stringify(process.env)")
    )
    python_env = simulator.get(f"/plugins/{PY_ID}/env").text
    for secret in known:
        assert secret not in status_text  # the status is also the dashboard's
        assert secret not in node_env and secret not in python_env


def test_no_secret_reaches_the_simulators_output(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    python_plugin = write_plugin(tmp_path / "py", python_manifest(PY_ID), {"app.py": PY_APP})
    running: RunningSimulator = start_simulator([python_plugin, HELLO_NODE])
    node, python = running.ide_access(NODE_ID), running.ide_access(PY_ID)
    assert asyncio.run(evaluate(node["websocket"], "'attached'")) == "attached"
    ide = DapTestClient(python["port"])
    ide.request("initialize", {"adapterID": "python"})
    ide.request("attach", {"justMyCode": True, "powerxToken": python["secret"]})
    ide.request("disconnect", {})
    status, _ = websocket_handshake(node["port"], f"/{secrets.token_urlsafe(32)}/{NODE_ID}")
    assert status == 403
    out, err = running.stop()
    for secret in (node["secret"], python["secret"]):
        assert secret not in out and secret not in err
