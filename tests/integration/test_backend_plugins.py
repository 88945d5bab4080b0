"""Backend plugins (``backend.entry``: a program of their own), run as PowerX runs them:
PORT in the environment, ready when the health path answers 200, reloaded beside the
serving generation, in the sandbox and outside it."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from powerx.errors import PowerXError
from powerx.testing import wait_until
from tests.conftest import EXAMPLES, RunningSimulator, Workspace
from tests.integration.test_hot_reload import copy_example, push

HELLO_BACKEND = EXAMPLES / "hello-backend-python"
BACKEND_ID = "com.example.hello-backend-python"
HELLO = f"/_p/{BACKEND_ID}/api/v1/hello"
SANDBOXES = ["auto", "off"]


def set_line(path: Path, prefix: str, line: str) -> None:
    """Replace the line of ``path`` that starts with ``prefix``."""
    lines = [line if x.startswith(prefix) else x for x in path.read_text().splitlines()]
    path.write_text("\n".join(lines) + "\n")


def set_greeting(plugin: Path, text: str) -> None:
    set_line(plugin / "server.py", "GREETING =", f'GREETING = "{text}"')


def start_backend(
    workspace: Workspace, start_simulator: Any, tmp_path: Path, sandbox: str
) -> tuple[RunningSimulator, Path]:
    workspace.env["POWERX_SANDBOX"] = sandbox
    workspace.login()
    plugin = copy_example(HELLO_BACKEND, tmp_path / "hello-backend")
    simulator: RunningSimulator = start_simulator([plugin])
    return simulator, plugin


def hello(simulator: RunningSimulator) -> dict[str, Any]:
    response = simulator.get(HELLO)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_backend_program_answers_at_its_api_path_with_the_tenant(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, sandbox: str
) -> None:
    simulator, _ = start_backend(workspace, start_simulator, tmp_path, sandbox)
    body = hello(simulator)
    assert body["greeting"] == "hello from a backend"
    # The tenant came from the signed context, verified with the secret it was given.
    assert body["tenant"] == "1"  # the developer identity's tenant_id in the test config
    status = simulator.plugin_status(BACKEND_ID)
    assert status["launcher"] == "program" and status["state"] == "running"
    alias = simulator.get(f"/plugins/{BACKEND_ID}/api/v1/hello")
    assert alias.status_code == 200 and alias.json()["greeting"] == "hello from a backend"


def reload_while_a_client_loops(
    simulator: RunningSimulator, path: str, reload: Callable[[str], None], texts: list[str]
) -> tuple[list[str], list[str]]:
    """``reload(text)`` for each text while a client requests ``path`` in a loop, each
    until the client is answered with it; the greetings it got and every failure."""
    failures: list[str] = []
    answered: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        with httpx.Client(timeout=30, trust_env=False) as client:
            while not stop.is_set():
                try:
                    response = client.get(simulator.url + path)
                except httpx.HTTPError as error:
                    failures.append(repr(error))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                else:
                    answered.append(str(response.json()["greeting"]))

    client = threading.Thread(target=loop)
    client.start()
    try:
        wait_until(lambda: len(answered) >= 5)
        for text in texts:
            reload(text)
            wait_until(lambda: answered[-3:], accept=lambda last, t=text: last[-1] == t, what=text)
    finally:
        stop.set()
        client.join()
    return answered, failures


def pushing(
    simulator: RunningSimulator, plugin: Path, save: Callable[[Path, str], None]
) -> Callable[[str], None]:
    """A reload: save ``text`` in the plugin, push it, and check a new generation serves."""

    def reload(text: str) -> None:
        before = simulator.plugin_status(plugin_id_of(plugin))["generation"]
        save(plugin, text)
        response = push(simulator, plugin)
        assert response.status_code == 200, response.text
        assert response.json()["generation"] == before + 1

    return reload


def plugin_id_of(plugin: Path) -> str:
    return str(yaml.safe_load((plugin / "plugin.yaml").read_text())["id"])


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_backend_reload_flips_with_no_failed_request(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, sandbox: str
) -> None:
    simulator, plugin = start_backend(workspace, start_simulator, tmp_path, sandbox)
    first_pid = hello(simulator)["pid"]
    reload = pushing(simulator, plugin, set_greeting)
    answered, failures = reload_while_a_client_loops(simulator, HELLO, reload, ["v1", "v2"])
    assert failures == []
    assert answered[0] == "hello from a backend" and "v1" in answered
    assert hello(simulator)["pid"] != first_pid


def set_node_greeting(plugin: Path, text: str) -> None:
    set_line(plugin / "server.js", "const GREETING =", f'const GREETING = "{text}";')


def test_the_node_backend_example_signs_in_its_tenant_and_reloads_with_no_failed_request(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(EXAMPLES / "hello-backend-node", tmp_path / "hello-backend-node")
    simulator: RunningSimulator = start_simulator([plugin])
    path = "/_p/com.example.hello-backend-node/api/v1/hello"
    first = simulator.get(path)
    assert first.status_code == 200, first.text
    assert first.json()["tenant"] == "1"  # from the signed context, checked with its secret
    reload = pushing(simulator, plugin, set_node_greeting)
    answered, failures = reload_while_a_client_loops(simulator, path, reload, ["v1", "v2"])
    assert failures == []
    assert answered[0] == "hello from a node backend" and "v1" in answered


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_backend_that_never_turns_healthy_keeps_the_old_generation_serving(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, sandbox: str
) -> None:
    config = tmp_path / "host_simulator.yaml"  # the test's config, with a short start timeout
    default = Path(workspace.env["POWERX_CONFIG"]).read_text()
    assert "plugin_start_timeout_s: 15.0" in default
    config.write_text(default.replace("plugin_start_timeout_s: 15.0", "plugin_start_timeout_s: 2"))
    workspace.env["POWERX_CONFIG"] = str(config)
    simulator, plugin = start_backend(workspace, start_simulator, tmp_path, sandbox)
    assert hello(simulator)["greeting"] == "hello from a backend"
    server = plugin / "server.py"
    healthy = 'return JSONResponse({"ok": True})'
    assert healthy in server.read_text()
    server.write_text(
        server.read_text().replace(healthy, 'return JSONResponse({"ok": False}, status_code=503)')
    )
    response = push(simulator, plugin)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "backend_unhealthy"
    assert "/healthz" in body["message"] and "2 s" in body["message"]
    assert "PORT" in body["fix"]
    assert any("503" in line for line in body["output"])  # uvicorn's access log, its last lines
    assert hello(simulator)["greeting"] == "hello from a backend"
    assert simulator.plugin_status(BACKEND_ID)["generation"] == 1


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_backend_that_exits_at_start_names_its_last_words_and_the_old_one_serves(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, sandbox: str
) -> None:
    simulator, plugin = start_backend(workspace, start_simulator, tmp_path, sandbox)
    server = plugin / "server.py"
    server.write_text(
        server.read_text().replace(
            "if __name__", 'raise SystemExit("no database configured")\n\nif __name__'
        )
    )
    response = push(simulator, plugin)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "plugin_start_failed"
    assert "exited with code 1" in body["message"]
    assert "no database configured" in body["message"]
    assert hello(simulator)["greeting"] == "hello from a backend"


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_backend_entry_naming_no_program_is_refused_with_the_fix(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, sandbox: str
) -> None:
    simulator, plugin = start_backend(workspace, start_simulator, tmp_path, sandbox)
    manifest = plugin / "plugin.yaml"
    manifest.write_text(manifest.read_text().replace("python server.py", "bin/plugin --serve"))
    response = push(simulator, plugin)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "backend_start_failed"
    assert "bin/plugin" in body["message"] and "backend.entry" in body["fix"]
    assert hello(simulator)["greeting"] == "hello from a backend"


def test_backend_entry_runs_a_script_of_the_plugin_with_port_in_its_arguments(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """A program relative to the plugin folder (its executable bit kept), `${PORT}` filled
    in: here a shell script serving the folder's files with Python's http.server."""
    simulator, plugin = start_backend(workspace, start_simulator, tmp_path, "auto")
    script = plugin / "bin" / "serve"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        'test "$1" = "--port=$PORT" || { echo "wrong argument: $1" >&2; exit 3; }\n'
        'exec python3 -m http.server --bind 127.0.0.1 "$PORT"\n'
    )
    script.chmod(0o755)
    (plugin / "healthz").write_text("ok\n")
    (plugin / "api" / "v1").mkdir(parents=True)
    (plugin / "api" / "v1" / "hello").write_text('{"greeting": "from a script"}\n')
    manifest = plugin / "plugin.yaml"
    manifest.write_text(
        manifest.read_text().replace("entry: python server.py", 'entry: bin/serve "--port=${PORT}"')
    )
    response = push(simulator, plugin)
    assert response.status_code == 200, response.text
    assert hello(simulator)["greeting"] == "from a script"


def test_a_save_reloads_a_watched_backend(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_BACKEND, tmp_path / "hello-backend")
    simulator: RunningSimulator = start_simulator([plugin], "--watch")  # returns once armed
    assert hello(simulator)["greeting"] == "hello from a backend"
    set_greeting(plugin, "saved")
    simulator.wait_generation(BACKEND_ID, 2)
    assert hello(simulator)["greeting"] == "saved"


def test_a_backend_that_dies_while_serving_is_restarted(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """With PowerX's backoff: 1 s after the first crash, doubling (to 10 s at most)."""
    simulator, _ = start_backend(workspace, start_simulator, tmp_path, "auto")
    for generation, delay in ((2, "1.0"), (3, "2.0")):
        crashed = simulator.plugin_status(BACKEND_ID)["pid"]
        os.kill(crashed, signal.SIGKILL)
        simulator.wait_generation(BACKEND_ID, generation)
        assert f"restarting in {delay} s" in simulator.output()
        assert hello(simulator)["greeting"] == "hello from a backend"
        assert simulator.plugin_status(BACKEND_ID)["pid"] != crashed


STUBBORN_SERVER = """
import signal

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
import os

GREETING = "stubborn"


async def answer(request):
    return JSONResponse({"greeting": GREETING})


class Server(uvicorn.Server):
    def handle_exit(self, sig, frame):
        print("ignoring", signal.Signals(sig).name, flush=True)


app = Starlette(routes=[Route("/healthz", answer), Route("/api/v1/hello", answer)])
config = uvicorn.Config(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
Server(config).run()
"""


def test_a_program_that_ignores_sigterm_is_killed_five_seconds_later(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = start_backend(workspace, start_simulator, tmp_path, "auto")
    (plugin / "server.py").write_text(STUBBORN_SERVER)
    assert push(simulator, plugin).status_code == 200
    stubborn = simulator.plugin_status(BACKEND_ID)["pid"]
    set_greeting(plugin, "next")
    assert push(simulator, plugin).status_code == 200
    assert hello(simulator)["greeting"] == "next"  # the new one serves at once
    assert wait_until(lambda: "did not stop within 5 s of SIGTERM" in simulator.output(), 20)
    assert "ignoring SIGTERM" in simulator.output()
    assert not Path(f"/proc/{stubborn}").exists()


def test_the_build_command_runs_before_packing_and_its_failure_keeps_the_old_one(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = start_backend(workspace, start_simulator, tmp_path, "auto")
    set_greeting(plugin, "built")
    manifest = plugin / "plugin.yaml"
    original = manifest.read_text().replace("entry: python server.py", "entry: python built.py")
    manifest.write_text(original + "build:\n  command: cp server.py built.py\n")
    response = push(simulator, plugin)
    assert response.status_code == 200, response.text
    assert hello(simulator)["greeting"] == "built"
    manifest.write_text(original + "build:\n  command: python3 -c 'raise SystemExit(4)'\n")
    with pytest.raises(PowerXError) as failed:
        push(simulator, plugin)
    assert failed.value.code == "build_failed" and "(4)" in failed.value.message
    assert hello(simulator)["greeting"] == "built"


def test_what_the_build_command_writes_is_not_taken_for_a_save(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """Else each build would start the next: a reload loop, ~80 builds a second."""
    workspace.login()
    plugin = copy_example(HELLO_BACKEND, tmp_path / "hello-backend")
    manifest = plugin / "plugin.yaml"
    manifest.write_text(
        manifest.read_text().replace("entry: python server.py", "entry: python built.py")
        + "build:\n  command: cp server.py built.py\n"
    )
    simulator: RunningSimulator = start_simulator([plugin], "--watch")
    for generation, text in ((2, "first save"), (3, "second save")):
        set_greeting(plugin, text)
        simulator.wait_generation(BACKEND_ID, generation)
        assert hello(simulator)["greeting"] == text
    # At most one build per save may find nothing new (its output landed while it ran).
    assert simulator.output().count("unchanged") <= 2, simulator.output()[-2000:]


NODE_SERVER = """
const http = require("http");
const answer = (response, body) => {
  response.writeHead(200, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
};
http
  .createServer((request, response) => {
    if (request.url === "/healthz") return answer(response, { ok: true });
    if (request.url !== "/api/v1/egress") {
      return answer(response, { greeting: "node", url: request.url });
    }
    try {
      http
        .get("http://203.0.113.7:81/", () => answer(response, { egress: "reached" }))
        .on("error", (error) => answer(response, { egress: error.code }));
    } catch (error) {
      answer(response, { egress: error.code });
    }
  })
  .listen(Number(process.env.PORT), "127.0.0.1");
"""


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_node_backend_runs_the_same_way(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, sandbox: str
) -> None:
    workspace.env["POWERX_SANDBOX"] = sandbox
    workspace.login()
    plugin = tmp_path / "hello-node-backend"
    plugin.mkdir()
    (plugin / "server.js").write_text(NODE_SERVER)
    (plugin / "plugin.yaml").write_text(
        "id: com.example.node-backend\nname: Node backend\nversion: 1.0.0\n"
        "backend:\n  entry: node server.js\n  health: /healthz\n"
    )
    simulator: RunningSimulator = start_simulator([plugin])
    response = simulator.get("/_p/com.example.node-backend/api/v1/hello")
    assert response.status_code == 200, response.text
    assert response.json() == {"greeting": "node", "url": "/api/v1/hello"}  # no stray "?"
    query = simulator.get("/_p/com.example.node-backend/api/v1/hello?a=1&b=%20")
    assert query.json()["url"] == "/api/v1/hello?a=1&b=%20"
    # Its egress is guarded as a Node handler's is (outside the sandbox, the only guard).
    egress = simulator.get("/_p/com.example.node-backend/api/v1/egress", timeout=30)
    assert egress.json() == {"egress": "POWERX_EGRESS_BLOCKED"}


SICKENING_SERVER = """
import os

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

sick = []


async def healthz(request):
    return JSONResponse({"ok": not sick}, status_code=503 if sick else 200)


async def sicken(request):
    sick.append(True)
    return JSONResponse({"pid": os.getpid()})


app = Starlette(routes=[Route("/healthz", healthz), Route("/api/v1/sicken", sicken)])
uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
"""


def test_a_backend_that_stops_answering_its_health_path_is_restarted(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """As PowerX does: probed every 2 s, restarted after 5 failures in a row."""
    workspace.login()
    plugin = tmp_path / "sickening"
    plugin.mkdir()
    (plugin / "server.py").write_text(SICKENING_SERVER)
    (plugin / "plugin.yaml").write_text(
        "id: com.example.sickening\nname: Sickening\nversion: 1.0.0\n"
        "backend:\n  entry: python server.py\n"
    )
    simulator: RunningSimulator = start_simulator([plugin])
    first = simulator.plugin_status("com.example.sickening")["pid"]
    sickened = simulator.get("/_p/com.example.sickening/api/v1/sicken")
    assert sickened.status_code == 200, sickened.text
    simulator.wait_generation("com.example.sickening", 2)
    assert "failed its health probe (/healthz) 5 times in a row" in simulator.output()
    assert simulator.plugin_status("com.example.sickening")["pid"] != first


DETACHING_SERVER = """
import os
import subprocess

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

GREETING = "detaching"
# In a process group of its own, as Delve starts the Go program it debugs.
HELPER = subprocess.Popen(["sleep", "600"], start_new_session=True)


async def answer(request):
    return JSONResponse({"greeting": GREETING, "helper": HELPER.pid})


app = Starlette(routes=[Route("/healthz", answer), Route("/api/v1/hello", answer)])
uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
"""


def test_what_a_program_started_outside_a_sandbox_ends_with_its_generation(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """In a sandbox the PID namespace ends every process with the generation; outside it,
    a child in a group of its own (Delve's debuggee) ran on after the simulator."""
    simulator, plugin = start_backend(workspace, start_simulator, tmp_path, "off")
    (plugin / "server.py").write_text(DETACHING_SERVER)
    assert push(simulator, plugin).status_code == 200
    helper = hello(simulator)["helper"]
    assert Path(f"/proc/{helper}").exists()
    set_greeting(plugin, "next")
    assert push(simulator, plugin).status_code == 200
    assert hello(simulator)["greeting"] == "next"
    assert wait_until(lambda: not Path(f"/proc/{helper}").exists(), 20, what=f"pid {helper} gone")
