"""Both SDKs reach every host API call the host image offers, and answer alike: the Python
``powerx_plugin.HostClient`` and the Node ``env.host`` (typed by ``@powerx/plugin``), each
in a real plugin process behind a real simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import RunningSimulator, Workspace, write_plugin

PERMISSIONS = "[contacts:read, messages:read, messages:write, kv:read, kv:write, tenant:read]"

PYTHON_APP = """
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from powerx_plugin import HostApiError, host_for


async def every_call(request: Request) -> JSONResponse:
    host = host_for(request)
    contacts = await host.list_contacts()
    first = contacts[0]
    query = first["name"].split()[0].upper()
    sent = await host.send_message(first["id"], "hello")
    await host.kv_put("notes today", {"n": 1})
    kept = await host.kv_get("notes today")
    await host.kv_delete("notes today")
    try:
        await host.kv_get("notes today")
        gone = None
    except HostApiError as error:
        gone = error.code
    return JSONResponse({
        "tenant": await host.get_tenant(),
        "contact": await host.get_contact(first["id"]),
        "search": [c["id"] for c in await host.search_contacts(query)],
        "sent": sent,
        "messages": len(await host.list_messages()),
        "kept": kept,
        "gone": gone,
    })


app = Starlette(routes=[Route("/", every_call)])
"""

NODE_APP = """
const { isHostApiError } = require(process.env.SDK_UNDER_TEST);

module.exports = {
  async fetch(request, env) {
    const host = env.host;
    const contacts = await host.contacts.list();
    const first = contacts[0];
    const query = first.name.split(" ")[0].toUpperCase();
    const sent = await host.messages.send(first.id, "hello");
    await host.kv.put("notes today", { n: 1 });
    const kept = await host.kv.get("notes today");
    await host.kv.delete("notes today");
    let gone = null;
    try {
      await host.kv.get("notes today");
    } catch (error) {
      gone = isHostApiError(error) ? error.code : "not a HostApiError";
    }
    return Response.json({
      tenant: await host.getTenant(),
      contact: await host.contacts.get(first.id),
      search: (await host.contacts.search(query)).map((c) => c.id),
      sent,
      messages: (await host.messages.list()).length,
      kept,
      gone,
    });
  },
};
"""


def manifest(plugin_id: str, runtime: str, entry: str) -> str:
    return (
        f"id: {plugin_id}\nname: SDK\nversion: 1.0.0\nruntime: {runtime}\nentry: {entry}\n"
        f"host:\n  api: '>=3 <4'\npermissions: {PERMISSIONS}\n"
    )


def test_every_host_call_answers_the_same_from_the_python_and_the_node_sdk(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    python = write_plugin(
        tmp_path / "py", manifest("com.test.sdk-py", "python3.11", "app.py:app"), {}
    )
    (python / "app.py").write_text(PYTHON_APP)
    node = write_plugin(tmp_path / "node", manifest("com.test.sdk-node", "node18", "index.js"), {})
    # The package's runtime part, as a bundle would carry it: copied into the plugin.
    sdk = Path(__file__).resolve().parents[2] / "packages" / "powerx-plugin" / "index.js"
    (node / "sdk.js").write_text(sdk.read_text())
    (node / "index.js").write_text(NODE_APP.replace("process.env.SDK_UNDER_TEST", "'./sdk.js'"))
    workspace.login()
    # contacts.search and tenant.get came with host API 3.0.
    simulator: RunningSimulator = start_simulator([python, node], "--image", "3.0.0")
    answers = {}
    for plugin in ("com.test.sdk-py", "com.test.sdk-node"):
        response = simulator.get(f"/plugins/{plugin}/", headers={"x-powerx-tenant": "globex"})
        assert response.status_code == 200, response.text
        answers[plugin] = response.json()
    python_answer, node_answer = answers["com.test.sdk-py"], answers["com.test.sdk-node"]
    assert python_answer["tenant"] == {"id": "globex", "name": "Globex", "plan": "developer"}
    assert python_answer["contact"]["tenant"] == "globex"
    assert python_answer["contact"]["id"] in python_answer["search"]
    assert python_answer["sent"]["text"] == "hello" and python_answer["sent"]["to"] == "c_001"
    assert python_answer["kept"] == {"n": 1}
    assert python_answer["gone"] == "not_found"
    # The same calls, the same answers (the second plugin's message got the next id).
    python_answer["sent"].pop("id"), node_answer["sent"].pop("id")
    python_answer.pop("messages"), node_answer.pop("messages")
    assert node_answer == python_answer
