"""What a dev loop tells the simulator (its watcher is armed; a reload is being built) is
shown in status and on the event stream, where tests and tools wait for it."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import httpx

from powerx.testing import wait_until
from tests.conftest import HELLO_PYTHON, RunningSimulator, Workspace
from tests.integration.test_observability import EventCollector, set_greeting

PY_ID = "com.example.hello-python"


def note(
    simulator: RunningSimulator, path: str, body: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A dev loop's note (``watch`` or ``pending``), as `powerx dev` sends it."""
    if headers is None:
        headers = simulator.debug_headers()
    return simulator.post(f"/internal/debug/hot-reload/{path}", json=body, headers=headers)


def test_host_start_watch_says_when_it_is_armed_and_what_it_builds(
    workspace: Workspace, start_simulator: Any, tmp_path: Path
) -> None:
    workspace.login()
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    simulator: RunningSimulator = start_simulator([plugin], "--watch")  # returns once armed
    watch = simulator.plugin_status(PY_ID)["watch"]
    assert watch == {
        "armed": True,
        "folders": [],
        "mode": "inotify",
        "reload_pending": False,
        "changed": [],
        "held_requests": 0,
        "type_check": None,  # no tsconfig.json, no mypy config: not checked
    }
    assert "watching" in simulator.stderr()
    stream = EventCollector(simulator, last_event_id=0)
    set_greeting(plugin / "app.py", "seen")
    wait_until(lambda: stream.of_type("plugin.debug.hot_reload"), what="a hot_reload event")
    stream.stop()
    armed = stream.of_type("plugin.debug.watch")
    assert [e["data"] for e in armed] == [
        {"plugin": PY_ID, "armed": True, "folders": [], "mode": "inotify"}
    ]
    pending = stream.of_type("plugin.debug.reload_pending")
    assert [e["data"] for e in pending] == [
        {"plugin": PY_ID, "pending": True, "changed": ["app.py"]}
    ]
    kinds = [e["type"] for e in stream.events]
    assert kinds.index("plugin.debug.watch") < kinds.index("plugin.debug.reload_pending")
    assert kinds.index("plugin.debug.reload_pending") < kinds.index("plugin.debug.hot_reload")
    simulator.wait_generation(PY_ID, 2)  # and the reload is no longer pending


def test_a_dev_loop_in_another_process_says_so_over_http(
    workspace: Workspace, start_simulator: Any, tmp_path: Path
) -> None:
    workspace.login()
    simulator: RunningSimulator = start_simulator([HELLO_PYTHON])
    assert not simulator.plugin_status(PY_ID)["watch"]["armed"]

    armed = note(simulator, "watch", {"plugin": PY_ID, "armed": True, "folders": ["lib"]})
    assert armed.status_code == 200, armed.text
    assert simulator.plugin_status(PY_ID)["watch"]["folders"] == ["lib"]
    simulator.wait_armed(PY_ID, folder="lib")

    building = note(simulator, "pending", {"plugin": PY_ID, "changed": ["lib/mathx.py"]})
    assert building.status_code == 200, building.text
    simulator.wait_pending(PY_ID, ["lib/mathx.py"])
    answers: list[httpx.Response] = []
    request = threading.Thread(target=lambda: answers.append(simulator.get(f"/plugins/{PY_ID}/")))
    request.start()
    simulator.wait_held(PY_ID)
    assert note(simulator, "pending", {"plugin": PY_ID, "pending": False}).status_code == 200
    request.join(10)
    assert answers and answers[0].status_code == 200
    watch = simulator.plugin_status(PY_ID)["watch"]
    assert (watch["reload_pending"], watch["changed"], watch["held_requests"]) == (False, [], 0)

    stopped = note(simulator, "watch", {"plugin": PY_ID, "armed": False})
    assert stopped.status_code == 200
    assert not simulator.plugin_status(PY_ID)["watch"]["armed"]


def test_a_watch_note_is_refused_for_bad_input(
    workspace: Workspace, start_simulator: Any, tmp_path: Path
) -> None:
    workspace.login()
    simulator: RunningSimulator = start_simulator([HELLO_PYTHON])
    for body in (
        {},
        {"plugin": PY_ID},
        {"plugin": PY_ID, "armed": "yes"},
        {"plugin": PY_ID, "armed": True, "folders": "lib"},
        {"plugin": PY_ID, "armed": True, "folders": [1]},
        [PY_ID],
    ):
        refused = note(simulator, "watch", body)
        assert refused.status_code == 400, body
        assert refused.json()["error"] == "invalid_body" and refused.json()["fix"]
    bad_changed = note(simulator, "pending", {"plugin": PY_ID, "changed": "app.py"})
    assert bad_changed.status_code == 400
    assert note(simulator, "watch", {"plugin": PY_ID, "armed": True}, headers={}).status_code == 401
    assert not simulator.plugin_status(PY_ID)["watch"]["armed"]
