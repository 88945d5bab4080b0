"""The simulator with both example plugins, as real processes on real ports."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from powerx.paths import run_root
from powerx.testing import wait_until
from tests.conftest import (
    HELLO_NODE,
    HELLO_PYTHON,
    RunningSimulator,
    Workspace,
    make_workspace,
    python_manifest,
    write_plugin,
)

PY_ID = "com.example.hello-python"
NODE_ID = "com.example.hello-node"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    workspace = make_workspace(tmp_path_factory.mktemp("demo"))
    workspace.login()
    simulator = RunningSimulator(workspace, [HELLO_PYTHON, HELLO_NODE])
    yield simulator
    simulator.stop()


@pytest.mark.parametrize(
    ("plugin_id", "greeting"), [(PY_ID, "hello from python"), (NODE_ID, "hello from node")]
)
def test_each_example_answers_through_the_simulator(
    demo: RunningSimulator, plugin_id: str, greeting: str
) -> None:
    response = demo.get(f"/plugins/{plugin_id}/")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["greeting"] == greeting
    assert body["tenant"] == "acme"
    assert body["contacts"] >= 5  # read through the host API with contacts:read
    assert response.headers["x-powerx-generation"] == "1"


def test_status_lists_both_plugins_running_with_digest_and_pid(demo: RunningSimulator) -> None:
    result = demo.workspace.powerx("host", "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    plugins = {p["id"]: p for p in status["plugins"]}
    assert set(plugins) == {PY_ID, NODE_ID}
    assert plugins[PY_ID]["runtime"] == "python3.11"
    assert plugins[NODE_ID]["runtime"] == "node18"
    for plugin in plugins.values():
        assert plugin["state"] == "running"
        assert plugin["generation"] == 1
        assert len(plugin["digest"]) == 64
        os.kill(plugin["pid"], 0)  # a live process
    assert status["host"]["api_version"] == "2.4"


def test_status_table_names_the_plugins(demo: RunningSimulator) -> None:
    result = demo.workspace.powerx("host", "status")
    assert result.returncode == 0, result.stderr
    assert PY_ID in result.stdout and NODE_ID in result.stdout
    assert "running" in result.stdout
    ports = {p["id"]: p["debug_port"] for p in demo.status()["plugins"]}  # type: ignore[union-attr]
    for plugin_id, port in ports.items():
        row = next(line for line in result.stdout.splitlines() if plugin_id in line)
        assert f":{port}" in row  # the port an IDE attaches to


@pytest.mark.parametrize("plugin_id", [PY_ID, NODE_ID])
def test_undeclared_host_api_is_denied_with_the_missing_scope(
    demo: RunningSimulator, plugin_id: str
) -> None:
    response = demo.get(f"/plugins/{plugin_id}/messages")
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "permission_denied"
    assert "messages:read" in body["message"]
    assert "messages:read" in body["fix"]


def test_internal_endpoints_demand_a_credential(demo: RunningSimulator) -> None:
    missing = demo.get("/internal/debug/status")
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthenticated"
    assert "powerx login" in missing.json()["fix"]
    wrong = demo.get("/internal/debug/status", headers={"authorization": "Bearer pxm_wrong"})
    assert wrong.status_code == 401
    shutdown = demo.request("POST", "/internal/debug/shutdown")
    assert shutdown.status_code == 401
    assert demo.get(f"/plugins/{PY_ID}/").status_code == 200  # still up


def test_host_api_refuses_calls_without_a_plugin_token(demo: RunningSimulator) -> None:
    response = demo.get("/host/api/contacts")
    assert response.status_code == 401
    forged = demo.get("/host/api/contacts", headers={"authorization": "Bearer pxp_forged"})
    assert forged.status_code == 401


def test_tenant_data_is_seeded_and_deterministic(demo: RunningSimulator) -> None:
    def first(tenant: str) -> str:
        response = demo.get(f"/plugins/{PY_ID}/", headers={"x-powerx-tenant": tenant})
        assert response.status_code == 200
        return str(response.json()["first_contact"])

    assert first("globex") == first("globex")
    node = demo.get(f"/plugins/{NODE_ID}/", headers={"x-powerx-tenant": "globex"}).json()
    assert node["first_contact"] == first("globex")
    assert {first(t) for t in ("globex", "initech", "umbrella", "hooli")} != {first("globex")}


def test_kv_store_is_kept_per_tenant(demo: RunningSimulator) -> None:
    put = demo.request(
        "PUT", f"/plugins/{PY_ID}/notes/colour", content=b"teal", headers={"x-powerx-tenant": "t1"}
    )
    assert put.status_code == 200 and put.json()["value"] == "teal"
    same = demo.get(f"/plugins/{PY_ID}/notes/colour", headers={"x-powerx-tenant": "t1"})
    assert same.json()["value"] == "teal"
    other = demo.get(f"/plugins/{PY_ID}/notes/colour", headers={"x-powerx-tenant": "t2"})
    assert other.status_code == 404
    assert other.json()["error"] == "not_found"


def test_unknown_plugin_is_a_404_with_the_mounted_ones(demo: RunningSimulator) -> None:
    response = demo.get("/plugins/com.example.nope/")
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "plugin_not_found"
    assert PY_ID in body["fix"]


def test_dashboard_needs_its_key_and_then_reads_with_a_cookie(demo: RunningSimulator) -> None:
    refused = demo.get("/dashboard")
    assert refused.status_code == 401
    assert "powerx host status" in refused.text
    assert demo.get("/dashboard?key=wrong").status_code == 401
    assert demo.get("/internal/debug/status").status_code == 401
    link = demo.get("/internal/debug/dashboard-link", headers=demo.debug_headers()).json()["url"]
    with httpx.Client(trust_env=False, follow_redirects=True, timeout=30) as browser:
        page = browser.get(link)
        assert page.status_code == 200
        assert str(page.url).endswith("/dashboard"), "the key leaves the address bar"
        assert "latency-chart" in page.text
        status = browser.get(demo.url + "/internal/debug/status").json()
    assert {PY_ID, NODE_ID} <= {p["id"] for p in status["plugins"]}
    assert status["host"]["image"] == "powerx/host-simulator:2.4.0"
    # The cookie reads; it does not act: state changes still need the bearer credential.
    with httpx.Client(trust_env=False, timeout=30, cookies=browser.cookies) as browser_again:
        assert browser_again.post(demo.url + "/internal/debug/cache/clear").status_code == 401


ENV_PROBE = """
import os
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def env(request):
    return JSONResponse(dict(os.environ))

app = Starlette(routes=[Route("/", env)])
"""


def test_plugin_processes_get_a_scrubbed_environment(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    probe = write_plugin(
        tmp_path / "probe", python_manifest("com.test.env-probe"), {"app.py": ENV_PROBE}
    )
    simulator = start_simulator([probe])
    seen = simulator.get("/plugins/com.test.env-probe/").json()
    assert seen["POWERX_PLUGIN_ID"] == "com.test.env-probe"
    assert seen["POWERX_PLUGIN_TOKEN"].startswith("pxp_")
    assert "POWERX_CONFIG_HOME" not in seen and "POWERX_STATE_DIR" not in seen
    token = workspace.token()
    assert not any(token in value for value in seen.values())
    pid = simulator.status()["plugins"][0]["pid"]
    exec_environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert token.encode() not in exec_environ


def test_host_stop_stops_the_simulator_and_every_plugin(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workspace = make_workspace(tmp_path_factory.mktemp("stop"))
    workspace.login()
    simulator = RunningSimulator(workspace, [HELLO_PYTHON, HELLO_NODE])
    pids = [p["pid"] for p in simulator.status()["plugins"]]  # type: ignore[union-attr]
    result = workspace.powerx("host", "stop")
    assert result.returncode == 0, result.stderr
    assert "stopped" in result.stdout
    simulator.process.wait(timeout=20)
    assert simulator.process.returncode == 0
    assert not (workspace.state_dir / "host.json").exists()
    assert wait_until(lambda: not any(_alive(pid) for pid in pids), 10)
    with pytest.raises(httpx.ConnectError):
        httpx.get(simulator.url + "/healthz", timeout=2, trust_env=False)
    again = workspace.powerx("host", "status")
    assert again.returncode == 1
    assert "host_not_running" in again.stderr


def test_plugins_exit_when_the_simulator_is_killed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workspace = make_workspace(tmp_path_factory.mktemp("kill"))
    workspace.login()
    simulator = RunningSimulator(workspace, [HELLO_PYTHON, HELLO_NODE])
    pids = [p["pid"] for p in simulator.status()["plugins"]]  # type: ignore[union-attr]
    simulator.process.kill()
    simulator.process.wait()
    wait_until(
        lambda: [p for p in pids if _alive(p)],
        10,
        accept=lambda alive: not alive,
        what="no plugin process left",
    )
    # A killed simulator cannot remove its run trees; the next start on this state would.
    shutil.rmtree(run_root(workspace.state_dir), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone before, or while, it was read
        return False
