"""The reload's steps are named events on the bus, in the order they happen: what the
reload gate, the debugger and the dev loop follow, and what a script or a test waits on
(here, read from the SSE stream in the order the bus published them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from powerx.bundling import BuildSession
from powerx.testing import wait_until
from tests.conftest import HELLO_PYTHON, REPO, RunningSimulator, Workspace
from tests.integration.test_hot_reload import PY_ID, push_bytes, set_python_greeting, start_example
from tests.integration.test_observability import EventCollector
from tests.integration.test_reload_gate import pending, request_in_background

STEPS = {
    "plugin.debug.generation_starting",
    "plugin.debug.generation_started",
    "plugin.debug.generation_flipped",
    "plugin.debug.generation_stopped",
    "plugin.debug.reload_finished",
    "plugin.debug.reload_failed",
    "plugin.debug.hot_reload",
}


def push_folder(simulator: RunningSimulator, plugin: Path, build_dir: Path) -> Any:
    session = BuildSession(plugin, build_dir)
    try:
        artefact = session.build()
    finally:
        session.close()
    return push_bytes(simulator, artefact.data, artefact.digest)


def steps(collector: EventCollector) -> list[tuple[str, int | None]]:
    """The reload steps seen for the plugin: (type, generation)."""
    return [
        (event["type"], event["data"].get("generation"))
        for event in collector.events
        if event["type"] in STEPS and event["data"].get("plugin") == PY_ID
    ]


def test_a_good_reload_publishes_its_steps_in_order(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = start_example(workspace, start_simulator, HELLO_PYTHON, tmp_path / "p")
    collector = EventCollector(simulator)
    set_python_greeting(plugin, "saved")
    pushed = push_folder(simulator, plugin, tmp_path / "build")
    assert pushed.status_code == 200, pushed.text
    assert simulator.get(f"/plugins/{PY_ID}/").json()["greeting"] == "saved"
    wait_until(
        lambda: ("plugin.debug.generation_stopped", 1) in steps(collector),
        20,
        what="generation 1 stopped",
    )
    collector.stop()

    assert steps(collector) == [
        ("plugin.debug.generation_starting", None),
        ("plugin.debug.generation_started", 2),
        ("plugin.debug.generation_flipped", 2),
        ("plugin.debug.reload_finished", 2),
        ("plugin.debug.hot_reload", 2),
        ("plugin.debug.generation_stopped", 1),  # after the flip: it drained
    ] or steps(collector) == [
        ("plugin.debug.generation_starting", None),
        ("plugin.debug.generation_started", 2),
        ("plugin.debug.generation_flipped", 2),
        ("plugin.debug.reload_finished", 2),
        ("plugin.debug.generation_stopped", 1),  # stopped before the records were written
        ("plugin.debug.hot_reload", 2),
    ], steps(collector)
    flipped = collector.of_type("plugin.debug.generation_flipped")[0]["data"]
    assert flipped["previous"] == 1 and flipped["after_crash"] is False
    finished = collector.of_type("plugin.debug.reload_finished")[0]["data"]
    hot_reload = collector.of_type("plugin.debug.hot_reload")[0]["data"]
    assert finished["reload_id"] == hot_reload["id"] == pushed.json()["reload_id"]
    assert finished["status"] == "ok"


def test_a_failed_reload_publishes_failed_and_never_flips(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = start_example(workspace, start_simulator, HELLO_PYTHON, tmp_path / "p")
    collector = EventCollector(simulator)
    app = plugin / "app.py"
    app.write_text("raise RuntimeError('broken at import')\n" + app.read_text())
    pushed = push_folder(simulator, plugin, tmp_path / "build")
    assert pushed.status_code == 422 and pushed.json()["error"] == "plugin_start_failed"
    wait_until(lambda: collector.of_type("plugin.debug.hot_reload"), 20, what="the reload's record")
    collector.stop()

    assert steps(collector) == [
        ("plugin.debug.generation_starting", None),
        ("plugin.debug.generation_stopped", 2),  # it never became ready
        ("plugin.debug.reload_failed", None),
        ("plugin.debug.hot_reload", 1),  # generation 1 still serves
    ], steps(collector)
    failed = collector.of_type("plugin.debug.reload_failed")[0]["data"]
    assert failed["code"] == "plugin_start_failed"
    assert failed["reload_id"] == pushed.json()["reload_id"]
    assert simulator.get(f"/plugins/{PY_ID}/").headers["x-powerx-generation"] == "1"


def test_a_short_max_hold_from_the_config_bounds_how_long_a_request_waits(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """tuning.reload_max_hold_s from the config file is the gate's bound (default 3 s):
    a reload announced and never uploaded holds a request only that long."""
    data = yaml.safe_load((REPO / "config/plugins/debug/host_simulator.yaml").read_text())
    data["tuning"]["reload_max_hold_s"] = 0.3
    config = tmp_path / "host_simulator.yaml"
    config.write_text(yaml.safe_dump(data))
    workspace.env["POWERX_CONFIG"] = str(config)
    simulator, _ = start_example(workspace, start_simulator, HELLO_PYTHON, tmp_path / "p")

    assert pending(simulator, {"plugin": PY_ID}).status_code == 200  # and never uploaded
    request, answers = request_in_background(simulator, f"/plugins/{PY_ID}/")
    request.join(30)

    assert answers and answers[0].status_code == 200, answers
    held_ms = int(answers[0].headers["x-powerx-held-ms"])
    assert 250 <= held_ms < 2000, held_ms  # the default would hold it 3000 ms
