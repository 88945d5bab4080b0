"""The Node warm spare: listening before it is given a plugin, serving only that plugin."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import httpx

from powerx.build.toolchain import node_executable
from powerx.host.supervisor import HEALTH_PATH
from powerx.runtimes import CONTROL_PREFIX, NODE_SHIM

HELLO = "module.exports = { fetch: async () => new Response('plugin says hello') };\n"
BROKEN = "throw new Error('broken at load');\n"


def spare() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [node_executable(), "--enable-source-maps", str(NODE_SHIM), "--spare"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith(CONTROL_PREFIX), line
    message = json.loads(line[len(CONTROL_PREFIX) :])
    assert message["event"] == "spare"
    return process, int(message["port"])


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


def request_in_background(url: str) -> tuple[threading.Thread, list[object]]:
    answers: list[object] = []

    def send() -> None:
        try:
            answers.append(httpx.get(url, timeout=20, trust_env=False))
        except httpx.HTTPError as error:
            answers.append(error)

    thread = threading.Thread(target=send)
    thread.start()
    return thread, answers


def request_then_order(
    tmp_path: Path, path: str, source: str
) -> tuple[bool, dict[str, object], object, int, int | None]:
    """Send a request to a fresh spare, then give it a plugin of ``source``: whether the
    request waited, the spare's control message, the request's answer, the spare's port
    and its exit code (None while it runs)."""
    process, port = spare()
    try:
        thread, answers = request_in_background(f"http://127.0.0.1:{port}{path}")
        time.sleep(0.3)
        waited = thread.is_alive()
        message = order(process, plugin(tmp_path / "run", source))
        thread.join(20)
        try:
            code: int | None = process.wait(2)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        process.kill()
        process.wait()
    return waited, message, answers[0], port, code


def test_a_request_to_a_spare_waits_for_its_plugin(tmp_path: Path) -> None:
    waited, ready, response, port, code = request_then_order(tmp_path, "/", HELLO)
    assert waited, "the spare answered before it had a plugin"
    assert ready["event"] == "ready" and ready["port"] == port
    assert code is None  # still serving
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 200 and response.text == "plugin says hello"


def test_a_health_probe_to_a_spare_fails_when_its_plugin_does_not_load(tmp_path: Path) -> None:
    waited, failed, answer, _, code = request_then_order(tmp_path, HEALTH_PATH, BROKEN)
    assert waited
    assert failed["event"] == "error" and "broken at load" in str(failed["message"])
    assert code not in (None, 0)
    assert isinstance(answer, httpx.HTTPError), answer  # never a 200
