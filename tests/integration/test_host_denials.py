"""A host API call the plugin has no scope for, not caught by the plugin: the same JSON
403 from a Python and a Node plugin, and one clear log line, not a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from powerx.testing import wait_until
from tests.conftest import RunningSimulator, Workspace, python_manifest, write_plugin

PYTHON_UNCAUGHT = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from powerx_plugin import host_for

async def messages(request):
    return JSONResponse(await host_for(request).list_messages())  # no messages:read

async def boom(request):
    raise RuntimeError("not a denial")

async def own_500(request):
    return JSONResponse({"mine": True}, status_code=500)

app = Starlette(
    routes=[Route("/messages", messages), Route("/boom", boom), Route("/own-500", own_500)]
)
"""

NODE_UNCAUGHT = """
module.exports = {
  async fetch(request, env) {
    return Response.json(await env.host.messages.list()); // no messages:read
  },
};
"""

NODE_MANIFEST = (
    "id: com.test.node-denied\nname: Test\nversion: 1.0.0\nruntime: node18\n"
    "entry: index.js\nhost:\n  api: '>=2.3 <3'\npermissions: []\n"
)


def test_an_uncaught_denial_is_the_same_json_403_from_python_and_node(
    workspace: Workspace, tmp_path: Path, start_simulator: object
) -> None:
    workspace.login()
    python = write_plugin(
        tmp_path / "py",
        python_manifest("com.test.py-denied"),
        {"app.py": PYTHON_UNCAUGHT},
    )
    node = write_plugin(tmp_path / "node", NODE_MANIFEST, {"index.js": NODE_UNCAUGHT})
    simulator: RunningSimulator = start_simulator([python, node])  # type: ignore[operator]
    bodies = {}
    for plugin in ("com.test.py-denied", "com.test.node-denied"):
        response = simulator.get(f"/plugins/{plugin}/messages")
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/json")
        bodies[plugin] = response.json()
    python_body, node_body = bodies["com.test.py-denied"], bodies["com.test.node-denied"]
    assert set(python_body) == set(node_body) == {"error", "message", "fix"}
    assert python_body["error"] == node_body["error"] == "permission_denied"
    for body in (python_body, node_body):
        assert "lacks scope 'messages:read'" in body["message"]
        assert "add 'messages:read' to permissions" in body["fix"]

    for plugin in bodies:
        records = wait_until_logged(workspace, plugin, "messages:read")
        assert len(records) == 1, records
        assert records[0]["level"] == "warning"
        assert "permission_denied" in records[0]["message"]
        everything = workspace.powerx("logs", plugin, "--json").stdout
        assert "Traceback" not in everything and "    at " not in everything, everything

    # Every other 500 is the plugin's own, as before: its exception, its own 500 body.
    boom = simulator.get("/plugins/com.test.py-denied/boom")
    assert (boom.status_code, boom.text) == (500, "Internal Server Error")
    own = simulator.get("/plugins/com.test.py-denied/own-500")
    assert (own.status_code, own.json()) == (500, {"mine": True})


def wait_until_logged(workspace: Workspace, plugin: str, text: str) -> list[dict[str, Any]]:
    """The plugin's log records that mention ``text``, once there is one."""

    def records() -> list[dict[str, Any]]:
        result = workspace.powerx("logs", plugin, "--json")
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    logged = wait_until(
        records,
        accept=lambda all_records: any(text in r["message"] for r in all_records),
        what=f"a log record of {plugin} mentioning {text!r}",
    )
    return [r for r in logged if text in r["message"]]


def test_the_request_after_a_plugins_exception_gets_the_plugins_answer(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """uvicorn closed the kept-alive connection after an app's exception, and the next
    request, already sent on it, came back 502 (1-2 in 150 here): never now."""
    workspace.login()
    python = write_plugin(
        tmp_path / "py", python_manifest("com.test.py-denied"), {"app.py": PYTHON_UNCAUGHT}
    )
    simulator: RunningSimulator = start_simulator([python])
    answers = []
    for _ in range(150):
        answers.append(simulator.get("/plugins/com.test.py-denied/boom").status_code)
        answers.append(simulator.get("/plugins/com.test.py-denied/own-500").status_code)
    assert answers == [500] * 300, sorted(set(answers))
    logged = workspace.powerx("logs", "com.test.py-denied", "--json").stdout
    assert "Exception in ASGI application" in logged  # still said, once per exception
