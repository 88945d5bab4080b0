"""The Node warm spare: listening before it is given a plugin, serving only that plugin."""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from powerx.bundling.toolchain import node_executable
from powerx.host.launcher import LaunchSpec, SpareLauncher
from powerx.host.plugin_network import HEALTH_PATH
from powerx.runtimes import CONTROL_PREFIX, NODE_SHIM

HELLO = "module.exports = { fetch: async () => new Response('plugin says hello') };\n"
BROKEN = "throw new Error('broken at load');\n"


def spare_message(
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(
        [node_executable(), "--enable-source-maps", str(NODE_SHIM), "--spare"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith(CONTROL_PREFIX), line
    message = json.loads(line[len(CONTROL_PREFIX) :])
    assert message["event"] == "spare"
    return process, message


def spare() -> tuple[subprocess.Popen[str], int]:
    process, message = spare_message()
    return process, int(message["port"])


@pytest.mark.parametrize("listen", ["port", "unix"])
def test_a_spare_warms_up_before_it_is_given_a_plugin(tmp_path: Path, listen: str) -> None:
    """Its warm-up serves one request and calls a host API through its own server, on a
    port or (as in a sandbox) a unix socket: a failed warm-up left the first request of
    every Node generation ~18 ms slower, silently."""
    env = dict(os.environ)
    if listen == "unix":
        env["POWERX_LISTEN_DIR"] = str(tmp_path)
    process, message = spare_message(env)
    try:
        assert message["warmed"] is True, message
        assert (listen in message) and (("unix" in message) == (listen == "unix")), message
    finally:
        process.kill()
        process.wait()


def order(process: subprocess.Popen[str], root: Path) -> dict[str, object]:
    """Give the spare its plugin; returns its next control message."""
    assert process.stdin is not None and process.stdout is not None
    argv = [str(root), "bundle/index.js", str(root)]
    process.stdin.write(json.dumps({"argv": argv, "env": {"POWERX_TENANT": "t"}}) + "\n")
    process.stdin.flush()
    while True:
        line = process.stdout.readline()
        assert line, "the spare exited without a word"
        if line.startswith(CONTROL_PREFIX):
            return json.loads(line[len(CONTROL_PREFIX) :])  # type: ignore[no-any-return]


def plugin(root: Path, source: str) -> Path:
    (root / "bundle").mkdir(parents=True)
    (root / "bundle" / "index.js").write_text(source)
    return root


def http_get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()


def read_answer(connection: socket.socket) -> bytes:
    """The whole answer, until the spare closes the connection (b"" if it dropped it)."""
    answer = b""
    try:
        while chunk := connection.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def request_then_order(
    tmp_path: Path, path: str, source: str
) -> tuple[bool, dict[str, object], bytes, int, int | None]:
    """Send a request to a fresh spare (all of it, before anything else), then give it a
    plugin of ``source``: whether the request was still unanswered when the plugin was
    given, the spare's control message, the request's answer, the spare's port and its
    exit code (None while it runs)."""
    process, port = spare()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
            connection.sendall(http_get(path))
            readable, _, _ = select.select([connection], [], [], 0)
            waited = not readable  # no answer (nor a close) before the plugin is given
            message = order(process, plugin(tmp_path / "run", source))
            answer = read_answer(connection)
        try:
            code: int | None = process.wait(2)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        process.kill()
        process.wait()
    return waited, message, answer, port, code


def test_a_request_to_a_spare_waits_for_its_plugin(tmp_path: Path) -> None:
    waited, ready, response, port, code = request_then_order(tmp_path, "/", HELLO)
    assert waited, "the spare answered before it had a plugin"
    assert ready["event"] == "ready" and ready["port"] == port
    assert code is None  # still serving
    assert response.startswith(b"HTTP/1.1 200 "), response
    assert b"\r\nplugin says hello\r\n" in response, response  # the chunked body


def test_a_health_probe_to_a_spare_fails_when_its_plugin_does_not_load(tmp_path: Path) -> None:
    waited, failed, answer, _, code = request_then_order(tmp_path, HEALTH_PATH, BROKEN)
    assert waited
    assert failed["event"] == "error" and "broken at load" in str(failed["message"])
    assert code not in (None, 0)
    assert not answer.startswith(b"HTTP/1.1 200"), answer  # never a 200


def probe_a_launched_spare(tmp_path: Path, source: str) -> tuple[list[int], bool, bool]:
    """Warm a spare through the launcher, whose probe records the port and asks the
    spare's health path; then launch a plugin of ``source`` into it. Returns the ports
    probed before the launch, whether that probe was still waiting when the plugin was
    given, and its result."""

    async def scenario() -> tuple[list[int], bool, bool]:
        probed: list[int] = []
        sent = asyncio.Event()

        async def probe(url: str) -> bool:
            port = int(url.rpartition(":")[2])
            probed.append(port)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(http_get(HEALTH_PATH))
                await writer.drain()
                sent.set()  # all of it: the spare has it to read
                answer = await reader.read()
            except ConnectionError:
                return False
            finally:
                writer.close()
            return answer.startswith(b"HTTP/1.1 200")

        launcher = SpareLauncher("node18", dict(os.environ), str(tmp_path), probe)
        launcher.prepare()
        await asyncio.wait_for(sent.wait(), 20)  # the spare listens, and was probed at once
        probed_before = list(probed)
        root = plugin(tmp_path / "run", source)
        spec = LaunchSpec("node18", [str(root), "bundle/index.js", str(root)], {}, str(root))
        process = await launcher.launch(spec)
        try:
            assert process.early_probe is not None
            waiting_before = not process.early_probe.done()
            passed = await asyncio.wait_for(process.early_probe, 20)
            return probed_before, waiting_before, passed
        finally:
            process.kill()
            await process.wait()
            await launcher.close()

    return asyncio.run(scenario())


def test_the_launcher_probes_a_spare_before_giving_it_a_plugin(tmp_path: Path) -> None:
    """The probe goes as soon as the spare listens (it then waits in the spare, already
    read), and passes once the plugin has loaded."""
    probed, waiting_before, passed = probe_a_launched_spare(tmp_path, HELLO)
    assert len(probed) == 1, probed
    assert waiting_before, "the probe was answered before the spare had a plugin"
    assert passed


def test_a_probe_sent_early_fails_when_the_plugin_does_not_load(tmp_path: Path) -> None:
    probed, waiting_before, passed = probe_a_launched_spare(tmp_path, BROKEN)
    assert len(probed) == 1 and waiting_before
    assert not passed
