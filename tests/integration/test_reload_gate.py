"""A request made while its plugin reloads waits, then gets what serves when the reload
settles: the new code, or the old generation when the reload failed."""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path
from typing import Any

import httpx

from powerx.bundling import BuildSession
from powerx.testing import wait_until
from tests.conftest import HELLO_PYTHON, RunningSimulator, Workspace
from tests.integration.test_hot_reload import (
    PY_ID,
    copy_example,
    push_bytes,
    set_python_greeting,
    start_example,
)


class ImportGate:
    """A file the next generation's import creates, then waits for its ``.release`` twin
    to exist. Both are in the plugin's own ``/tmp`` (its sandbox shows it none of the
    test's folders), which the test reaches through ``/proc/<pid>/root`` of a process
    in that sandbox."""

    def __init__(self, simulator: RunningSimulator, plugin_id: str) -> None:
        self.name = f"importing-{secrets.token_hex(6)}"
        pid = next(p["pid"] for p in simulator.status()["plugins"] if p["id"] == plugin_id)
        self.outside = Path(f"/proc/{pid}/root/tmp")

    def install(self, plugin: Path, tail: str = "") -> None:
        flag, release = f"/tmp/{self.name}", f"/tmp/{self.name}.release"
        app = plugin / "app.py"
        prefix = (
            f"import pathlib, time\npathlib.Path({flag!r}).touch()\n"
            f"while not pathlib.Path({release!r}).exists():\n    time.sleep(0.002)\n{tail}"
        )
        app.write_text(prefix + app.read_text())

    def wait_importing(self, timeout_s: float = 30) -> None:
        flag = self.outside / self.name
        wait_until(flag.exists, timeout_s, what=f"{flag} to appear")

    def release(self) -> None:
        (self.outside / f"{self.name}.release").touch()


def reload_in_background(
    simulator: RunningSimulator, plugin: Path, build_dir: Path
) -> tuple[threading.Thread, list[httpx.Response]]:
    session = BuildSession(plugin, build_dir)
    try:
        artefact = session.build()
    finally:
        session.close()
    responses: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: responses.append(push_bytes(simulator, artefact.data, artefact.digest))
    )
    thread.start()
    return thread, responses


def request_in_background(
    simulator: RunningSimulator, path: str
) -> tuple[threading.Thread, list[httpx.Response]]:
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(simulator.get(path)))
    thread.start()
    return thread, answers


def request_during_a_slow_reload(
    workspace: Workspace,
    tmp_path: Path,
    start_simulator: Any,
    greeting: str,
    tail: str = "",
    answer_after_s: float = 0.0,
) -> tuple[httpx.Response, httpx.Response]:
    """Save ``greeting`` with an import that waits (then runs ``tail``) and a `/` that
    takes ``answer_after_s``, push it, and request the plugin while generation 2 imports;
    once the request is held, let the import go on. (That response, the push's.)"""
    simulator, plugin = start_example(workspace, start_simulator, HELLO_PYTHON, tmp_path / "p")
    gate = ImportGate(simulator, PY_ID)
    set_python_greeting(plugin, greeting)
    if answer_after_s:
        app = plugin / "app.py"
        slow = f"    await __import__('asyncio').sleep({answer_after_s})\n    host = host_for"
        app.write_text(app.read_text().replace("    host = host_for", slow, 1))
    gate.install(plugin, tail)
    thread, pushed = reload_in_background(simulator, plugin, tmp_path / "build")
    gate.wait_importing()  # generation 2 is importing; generation 1 still serves
    request, answers = request_in_background(simulator, f"/plugins/{PY_ID}/")
    simulator.wait_held(PY_ID)
    gate.release()
    request.join(60)
    thread.join(60)
    assert pushed, "the push did not return"
    assert answers, "the request was not answered"
    return answers[0], pushed[0]


def test_a_request_during_a_reload_is_served_by_the_new_generation(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    response, pushed = request_during_a_slow_reload(workspace, tmp_path, start_simulator, "saved")
    assert pushed.status_code == 200, pushed.text
    assert response.status_code == 200, response.text
    assert response.json()["greeting"] == "saved"
    assert response.headers["x-powerx-generation"] == "2"
    assert int(response.headers["x-powerx-held-ms"]) > 0
    logs = workspace.powerx("logs", PY_ID, "--json", "--tail", "50")
    access = [
        json.loads(line)["message"]
        for line in logs.stdout.splitlines()
        if json.loads(line)["stream"] == "access"
    ]
    assert any("held" in message and "for a reload" in message for message in access), access


def test_the_rest_of_a_reload_waits_for_the_answer_to_the_held_request(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """After the flip the held request goes first: the reload's pointer write, records and
    reply would compete with it for the CPU. That wait is not counted as reload time."""
    response, pushed = request_during_a_slow_reload(
        workspace, tmp_path, start_simulator, "saved", answer_after_s=0.15
    )
    assert pushed.status_code == 200, pushed.text
    assert response.status_code == 200 and response.json()["greeting"] == "saved"
    assert response.headers["x-powerx-generation"] == "2"
    timings = pushed.json()["timings"]
    stood_aside_ms = pushed.elapsed.total_seconds() * 1000 - timings["total_ms"]
    assert stood_aside_ms >= 120, (stood_aside_ms, timings)
    assert timings["swap_ms"] < 120, timings


def test_a_request_held_for_a_failed_reload_is_served_by_the_old_generation(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    broken = "raise RuntimeError('broken at import')\n"
    response, pushed = request_during_a_slow_reload(
        workspace, tmp_path, start_simulator, "never served", broken
    )
    assert pushed.status_code == 422, pushed.text
    assert pushed.json()["error"] == "plugin_start_failed"
    assert response.status_code == 200, response.text
    assert response.json()["greeting"] == "hello from python"
    assert response.headers["x-powerx-generation"] == "1"
    assert int(response.headers["x-powerx-held-ms"]) > 0


def test_other_plugins_are_not_held(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    slow = copy_example(HELLO_PYTHON, tmp_path / "slow")
    other = tmp_path / "other"
    copy_example(HELLO_PYTHON, other)
    manifest = other / "plugin.yaml"
    manifest.write_text(manifest.read_text().replace(PY_ID, "com.example.other"))
    simulator: RunningSimulator = start_simulator([slow, other])
    gate = ImportGate(simulator, PY_ID)
    gate.install(slow)
    thread, pushed = reload_in_background(simulator, slow, tmp_path / "build")
    gate.wait_importing()

    response = simulator.get("/plugins/com.example.other/")
    still_reloading = thread.is_alive()  # it cannot end before the release
    gate.release()
    thread.join(60)

    assert response.status_code == 200, response.text
    assert "x-powerx-held-ms" not in response.headers
    assert still_reloading, "the reload ended before the other plugin answered"
    assert pushed and pushed[0].status_code == 200


def pending(simulator: RunningSimulator, body: object, **kwargs: Any) -> httpx.Response:
    headers = kwargs.pop("headers", simulator.debug_headers())
    return simulator.request(
        "POST", "/internal/debug/hot-reload/pending", json=body, headers=headers, **kwargs
    )


def test_a_pending_reload_holds_requests_until_it_is_called_off(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, _ = start_example(workspace, start_simulator, HELLO_PYTHON, tmp_path / "p")
    assert pending(simulator, {"plugin": PY_ID}).status_code == 200
    request, answers = request_in_background(simulator, f"/plugins/{PY_ID}/")
    simulator.wait_held(PY_ID)  # it waits while the reload is pending
    assert not answers, "the request was answered while a reload was pending"
    assert pending(simulator, {"plugin": PY_ID, "pending": False}).status_code == 200
    request.join(10)

    assert answers and answers[0].status_code == 200
    assert answers[0].json()["greeting"] == "hello from python"
    assert int(answers[0].headers["x-powerx-held-ms"]) > 0


def test_a_pending_reload_is_refused_for_bad_input(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, _ = start_example(workspace, start_simulator, HELLO_PYTHON, tmp_path / "p")
    unknown = pending(simulator, {"plugin": "com.example.nope"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "plugin_not_found"
    for body in ({}, {"plugin": 3}, {"plugin": PY_ID, "pending": "yes"}, [PY_ID]):
        refused = pending(simulator, body)
        assert refused.status_code == 400, body
        assert refused.json()["error"] == "invalid_body" and refused.json()["fix"]
    assert pending(simulator, {"plugin": PY_ID}, headers={}).status_code == 401
    # None of these held anything.
    response = simulator.get(f"/plugins/{PY_ID}/")
    assert response.status_code == 200 and "x-powerx-held-ms" not in response.headers


def test_an_upload_refused_before_activation_ends_the_pending_hold_at_once(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """No reload step is published for an upload refused before its manifest is known (not
    a tar here), so the route itself ends the hold its plugin header names: the held
    request is answered by what serves, and the reload is no longer pending."""
    simulator, _ = start_example(workspace, start_simulator, HELLO_PYTHON, tmp_path / "p")
    assert pending(simulator, {"plugin": PY_ID}).status_code == 200
    request, answers = request_in_background(simulator, f"/plugins/{PY_ID}/")
    simulator.wait_held(PY_ID)

    refused = push_bytes(
        simulator,
        b"not a tar archive",
        headers={**simulator.debug_headers(), "x-powerx-plugin": PY_ID},
    )
    assert 400 <= refused.status_code < 500, refused.text
    assert simulator.plugin_status(PY_ID)["watch"]["reload_pending"] is False
    request.join(10)

    assert answers and answers[0].status_code == 200
    assert answers[0].json()["greeting"] == "hello from python"
