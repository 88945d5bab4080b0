"""The request inspector against a real simulator and a real plugin process: each request
is listed with its masked headers and body, its host API calls and the plugin's log lines;
`--json` prints one JSON object per line; a request held by a reload says so; a replay
gets the same answer as the same identity."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from powerx.bundling import BuildSession
from powerx.testing import wait_until
from tests.conftest import (
    REPO,
    RunningSimulator,
    Workspace,
    make_workspace,
    python_manifest,
    write_plugin,
)
from tests.integration.test_hot_reload import push_bytes
from tests.integration.test_reload_gate import pending, request_in_background

PLUGIN_ID = "com.test.inspected"
ECHO_APP = """
import base64, json

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from powerx_plugin import host_for

MARK = "first"

async def echo(request):
    print(f"serving echo ({MARK})", flush=True)
    tag = {"level": "info", "msg": "tagged", "request_id": request.headers["x-request-id"]}
    print(json.dumps(tag), flush=True)
    contacts = await host_for(request).list_contacts()
    ctx = json.loads(base64.b64decode(request.headers["x-powerx-ctx"]))
    return JSONResponse({
        "uid": ctx["uid"],
        "body": (await request.body()).decode(),
        "query": request.url.query,
        "contacts": [c["name"] for c in contacts],
    })

app = Starlette(routes=[Route("/echo", echo, methods=["GET", "POST"])])
"""
SECRETS = {
    "cookie": "session=cookie-s3cr3t-value",
    "x-api-key": "k3y-value-that-is-secret",
}
PASSWORD = "hunter2-password-value"


def _config(folder: Path) -> Path:
    data = yaml.safe_load((REPO / "config/plugins/debug/host_simulator.yaml").read_text())
    data["identities"]["viewer"] = {
        "tenant": "globex",
        "tenant_id": 2,
        "user_id": 7,
        "perms": ["contacts:read"],
    }
    path = folder / "host_simulator.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def inspected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    folder = tmp_path_factory.mktemp("inspector")
    workspace = make_workspace(folder)
    workspace.env["POWERX_CONFIG"] = str(_config(folder))
    workspace.login()
    manifest = python_manifest(PLUGIN_ID, permissions="[contacts:read]")
    plugin = write_plugin(workspace.root / "inspected", manifest, {"app.py": ECHO_APP})
    simulator = RunningSimulator(workspace, [plugin])
    yield simulator
    simulator.stop()


def _workspace(simulator: RunningSimulator) -> Workspace:
    workspace: Workspace = simulator.workspace
    return workspace


def _listed(simulator: RunningSimulator, *args: str) -> list[dict[str, Any]]:
    """`powerx requests --json`: every line one JSON object."""
    result = _workspace(simulator).powerx("requests", *args, "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _record(simulator: RunningSimulator, request_id: str, *wanted: str) -> dict[str, Any]:
    """The listed request ``request_id``, once its log lines include each of ``wanted``."""

    def has_all(found: dict[str, Any]) -> bool:
        messages = [line["message"] for line in found.get("logs", [])]
        return all(any(w in m for m in messages) for w in wanted)

    found: dict[str, Any] = wait_until(
        lambda: next((r for r in _listed(simulator) if r["id"] == request_id), {}),
        accept=has_all,
        what=f"request {request_id} listed with log lines {wanted}",
    )
    return found


def _echo(simulator: RunningSimulator, **kwargs: Any) -> httpx.Response:
    response = simulator.post(f"/plugins/{PLUGIN_ID}/echo?x=1", **kwargs)
    assert response.status_code == 200, response.text
    return response


def test_a_request_is_listed_with_its_log_lines_host_calls_and_masked_headers(
    inspected: RunningSimulator,
) -> None:
    response = _echo(
        inspected,
        headers={**SECRETS, "content-type": "application/json"},
        content=json.dumps({"password": PASSWORD, "note": "hi"}),
    )
    request_id = response.headers["x-request-id"]

    record = _record(inspected, request_id, "serving echo", "tagged", "POST /echo 200")

    assert (record["plugin"], record["method"], record["status"]) == (PLUGIN_ID, "POST", 200)
    assert (record["path"], record["query"]) == (f"/plugins/{PLUGIN_ID}/echo", "x=1")
    assert (record["identity"], record["tenant"], record["generation"]) == ("developer", "acme", 1)
    assert record["held"] is False and record["held_ms"] == 0
    assert record["duration_ms"] >= record["upstream_ms"] > 0
    headers = dict(record["request"]["headers"])
    assert headers["cookie"] == headers["x-api-key"] == "***"
    assert headers["authorization"] == "Bearer ***"
    assert headers["x-powerx-ctx"] == headers["x-powerx-ctx-sig"] == headers["x-powerx-grant"]
    assert headers["x-powerx-ctx"] == "***"
    assert headers["x-request-id"] == request_id
    body = json.loads(record["request"]["body"]["text"])
    assert body == {"password": "***", "note": "hi"}
    assert json.loads(record["response"]["body"]["text"])["uid"] == 1
    assert dict(record["response"]["headers"])["x-request-id"] == request_id
    [call] = record["host_calls"]
    assert (call["api"], call["path"], call["status"]) == (
        "contacts.list",
        "/host/api/contacts",
        200,
    )
    assert call["match"] == "only"
    matches = {line["message"]: line["match"] for line in record["logs"]}
    assert matches["serving echo (first)"] == "time"  # from the generation, while it served
    assert matches["tagged"] == "id"  # the plugin logged the X-Request-Id it was given
    assert matches["POST /echo 200"] == "id"  # the simulator's access line
    shown = _workspace(inspected).powerx("requests", "show", request_id)
    assert shown.returncode == 0, shown.stderr
    everything = json.dumps(_listed(inspected)) + shown.stdout
    for secret in [*SECRETS.values(), PASSWORD, "eyJ"]:  # "eyJ": any JWT, the signed context
        assert secret.split("=")[-1] not in everything
    assert "serving echo (first)" in shown.stdout and "contacts.list" in shown.stdout


def test_a_replay_gets_the_same_answer_as_the_same_identity(inspected: RunningSimulator) -> None:
    original = _echo(
        inspected,
        headers={"x-powerx-identity": "viewer", **inspected.debug_headers()},
        content=b"replay me",
    )
    assert original.json()["uid"] == 7  # the viewer's signed context
    request_id = original.headers["x-request-id"]

    replayed = _workspace(inspected).powerx("requests", "replay", request_id, "--json")

    assert replayed.returncode == 0, replayed.stderr
    answer = json.loads(replayed.stdout)
    assert (answer["status"], answer["same_status"], answer["identity"]) == (200, True, "viewer")
    assert json.loads(answer["body"]) == original.json()
    again = next(r for r in _listed(inspected) if r["id"] == answer["replay_id"])
    assert (again["replay_of"], again["identity"], again["tenant"]) == (
        request_id,
        "viewer",
        "globex",
    )
    printed = _workspace(inspected).powerx("requests", "replay", request_id)
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout.splitlines()[-1]) == original.json()
    assert printed.stdout.startswith("200 POST ")


def test_follow_prints_each_request_as_one_json_line(inspected: RunningSimulator) -> None:
    before = _echo(inspected).headers["x-request-id"]
    follower = subprocess.Popen(
        [sys.executable, "-m", "powerx.cli.main", "requests", PLUGIN_ID, "-f", "-n", "1", "--json"],
        cwd=_workspace(inspected).root,
        env=_workspace(inspected).env,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert follower.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in follower.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        assert json.loads(lines.get(timeout=30))["id"] == before  # the backlog: the last one
        after = _echo(inspected).headers["x-request-id"]
        live = json.loads(lines.get(timeout=30))
        assert (live["id"], live["status"], live["plugin"]) == (after, 200, PLUGIN_ID)
        assert "logs" in live and "request" in live  # --json: the request in full
    finally:
        follower.terminate()
        follower.wait(10)


def test_an_unknown_request_id_is_a_clear_error(inspected: RunningSimulator) -> None:
    for action in ("show", "replay"):
        result = _workspace(inspected).powerx("requests", action, "nope-1")
        assert result.returncode == 1
        assert "request_not_found" in result.stderr and "powerx requests" in result.stderr
        assert "Traceback" not in result.stderr
    missing = _workspace(inspected).powerx("requests", "replay")
    assert missing.returncode == 1 and "request_id_missing" in missing.stderr


def test_a_request_held_by_a_reload_is_flagged_with_the_generation_that_answered(
    inspected: RunningSimulator,
) -> None:
    plugin = _workspace(inspected).root / "inspected"
    app = plugin / "app.py"
    app.write_text(app.read_text().replace('MARK = "first"', 'MARK = "second"'))
    session = BuildSession(plugin, _workspace(inspected).state_dir / "test-build")
    try:
        artefact = session.build()  # before the hold: it lasts at most 3 s
    finally:
        session.close()
    assert pending(inspected, {"plugin": PLUGIN_ID}).status_code == 200
    request, answers = request_in_background(inspected, f"/plugins/{PLUGIN_ID}/echo")
    inspected.wait_held(PLUGIN_ID)

    assert push_bytes(inspected, artefact.data, artefact.digest).status_code == 200
    request.join(30)

    assert answers and answers[0].status_code == 200, answers
    record = _record(inspected, answers[0].headers["x-request-id"], "serving echo (second)")
    assert record["held"] is True and record["held_ms"] > 0
    assert record["generation"] == 2
    text = _workspace(inspected).powerx("requests", PLUGIN_ID, "--tail", "1")
    assert "held" in text.stdout and "(reload)" in text.stdout
