"""Hot reload through POST /internal/debug/hot-reload, with real plugin processes."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from powerx.bundling import BuildSession
from powerx.paths import run_root
from powerx.testing import wait_until
from tests.conftest import (
    HELLO_NODE,
    HELLO_PYTHON,
    RunningSimulator,
    Workspace,
    python_manifest,
    write_plugin,
)

PY_ID = "com.example.hello-python"
NODE_ID = "com.example.hello-node"


def copy_example(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


def set_python_greeting(plugin: Path, text: str) -> None:
    app = plugin / "app.py"
    lines = [
        f'GREETING = "{text}"' if line.startswith("GREETING =") else line
        for line in app.read_text().splitlines()
    ]
    app.write_text("\n".join(lines) + "\n")


def set_node_greeting(plugin: Path, text: str) -> None:
    source = plugin / "src" / "index.ts"
    lines = [
        f'const GREETING = "{text}";' if line.startswith("const GREETING") else line
        for line in source.read_text().splitlines()
    ]
    source.write_text("\n".join(lines) + "\n")


def push(
    simulator: RunningSimulator,
    plugin: Path,
    session: BuildSession | None = None,
) -> httpx.Response:
    own = session is None
    session = session or BuildSession(plugin, simulator.workspace.state_dir / "test-build")
    try:
        artefact = session.build()
    finally:
        if own:
            session.close()
    return push_bytes(simulator, artefact.data, artefact.digest)


def push_bytes(
    simulator: RunningSimulator,
    data: bytes,
    digest: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = dict(simulator.debug_headers() if headers is None else headers)
    if digest:
        sent["x-powerx-digest"] = digest
    return httpx.post(
        simulator.url + "/internal/debug/hot-reload",
        content=data,
        headers=sent,
        timeout=60,
        trust_env=False,
    )


def greeting(simulator: RunningSimulator, plugin_id: str) -> str:
    response = simulator.get(f"/plugins/{plugin_id}/")
    assert response.status_code == 200, response.text
    return str(response.json()["greeting"])


def plugin_status(simulator: RunningSimulator, plugin_id: str) -> dict[str, Any]:
    return simulator.plugin_status(plugin_id)


@pytest.mark.parametrize("launch", ["zygote", "spare", "cold"])
def test_python_edit_is_served_by_the_next_generation(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, launch: str
) -> None:
    workspace.env["POWERX_PYTHON_LAUNCH"] = launch
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "hello-python")
    simulator = start_simulator([plugin])
    first = plugin_status(simulator, PY_ID)
    assert first["launcher"] == launch
    for version in range(1, 4):
        set_python_greeting(plugin, f"v{version}")
        response = push(simulator, plugin)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ok"
        assert body["generation"] == version + 1
        assert set(body["timings"]) >= {"build_ms", "upload_ms", "start_ms", "swap_ms", "total_ms"}
        assert greeting(simulator, PY_ID) == f"v{version}"
    now = plugin_status(simulator, PY_ID)
    assert now["generation"] == 4 and now["pid"] != first["pid"]
    assert now["previous_digest"] is not None


def test_node_edit_is_served_by_the_next_generation(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_NODE, tmp_path / "hello-node")
    simulator = start_simulator([plugin])
    session = BuildSession(plugin, tmp_path / "build")
    try:
        for version in range(1, 4):
            set_node_greeting(plugin, f"node v{version}")
            response = push(simulator, plugin, session)
            assert response.status_code == 200, response.text
            assert greeting(simulator, NODE_ID) == f"node v{version}"
    finally:
        session.close()
    assert plugin_status(simulator, NODE_ID)["generation"] == 4


def process_gone(pid: int, timeout_s: float = 10) -> bool:
    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    return wait_until(gone, timeout_s, what=f"process {pid} to exit")


def start_example(
    workspace: Workspace, start_simulator: Any, example: Path, folder: Path
) -> tuple[RunningSimulator, Path]:
    """Log in, copy an example plugin to ``folder`` and start a simulator over it."""
    workspace.login()
    plugin = copy_example(example, folder)
    simulator: RunningSimulator = start_simulator([plugin])
    return simulator, plugin


def test_the_previous_generation_stops_whether_or_not_a_request_comes(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """It is stopped after the new generation's first request, or shortly after the flip
    when none comes; either way no process is left behind."""
    workspace.login()
    plugin = copy_example(HELLO_NODE, tmp_path / "hello-node")
    simulator = start_simulator([plugin])
    session = BuildSession(plugin, tmp_path / "build")
    try:
        for version, request_first in ((1, True), (2, False)):
            old_pid = plugin_status(simulator, NODE_ID)["pid"]
            set_node_greeting(plugin, f"node v{version}")
            assert push(simulator, plugin, session).status_code == 200
            if request_first:
                assert greeting(simulator, NODE_ID) == f"node v{version}"
            assert process_gone(old_pid), f"generation pid {old_pid} still runs"
            assert plugin_status(simulator, NODE_ID)["pid"] != old_pid
    finally:
        session.close()
    assert greeting(simulator, NODE_ID) == "node v2"


def test_same_artefact_twice_is_idempotent(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")
    simulator = start_simulator([plugin])
    set_python_greeting(plugin, "once")
    first = push(simulator, plugin).json()
    again = push(simulator, plugin).json()
    assert first["status"] == "ok" and again["status"] == "unchanged"
    assert again["generation"] == first["generation"] == 2


def test_import_time_crash_keeps_the_old_generation_serving(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")
    simulator = start_simulator([plugin])
    app = plugin / "app.py"
    good = app.read_text()
    lines = good.splitlines()
    app.write_text("\n".join([*lines[:5], "raise ValueError('broken at import')", *lines[5:]]))
    response = push(simulator, plugin)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "plugin_start_failed"
    assert body["file"] == "app.py" and body["line"] == 6
    assert "broken at import" in body["message"]
    assert greeting(simulator, PY_ID) == "hello from python"
    assert plugin_status(simulator, PY_ID)["generation"] == 1


def test_node_crash_at_load_names_the_typescript_line(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_NODE, tmp_path / "n")
    simulator = start_simulator([plugin])
    source = plugin / "src" / "index.ts"
    lines = source.read_text().splitlines()
    source.write_text("\n".join([*lines[:4], 'throw new Error("node boom");', *lines[4:]]) + "\n")
    response = push(simulator, plugin)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "plugin_start_failed"
    assert body["file"] == "src/index.ts" and body["line"] == 5
    assert greeting(simulator, NODE_ID) == "hello from node"


def test_version_mismatch_is_refused_and_the_old_generation_serves(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")
    simulator = start_simulator([plugin])
    manifest = plugin / "plugin.yaml"
    manifest.write_text(manifest.read_text().replace('">=2.3 <3"', '"^3.0"'))
    set_python_greeting(plugin, "never served")
    for attempt in range(1, 3):
        response = push(simulator, plugin)
        assert response.status_code == 409
        body = response.json()
        assert body["error"] == "version_mismatch"
        assert body["plugin_range"] == "^3.0" and body["host_api"] == "2.4"
        assert "fix" in body
        assert simulator.status()["host"]["counters"]["version_mismatch"] == attempt  # type: ignore[index]
    assert greeting(simulator, PY_ID) == "hello from python"


def test_rollback_restores_the_previous_digest(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")
    simulator = start_simulator([plugin])
    original = plugin_status(simulator, PY_ID)["digest"]
    set_python_greeting(plugin, "new")
    pushed = push(simulator, plugin).json()
    assert greeting(simulator, PY_ID) == "new"
    result = workspace.powerx("host", "rollback", PY_ID)
    assert result.returncode == 0, result.stderr
    assert original[:12] in result.stdout
    assert greeting(simulator, PY_ID) == "hello from python"
    now = plugin_status(simulator, PY_ID)
    assert now["digest"] == original and now["previous_digest"] == pushed["digest"]
    named = workspace.powerx("host", "rollback", PY_ID, "--to", pushed["digest"][:10])
    assert named.returncode == 0, named.stderr
    assert greeting(simulator, PY_ID) == "new"
    unknown = workspace.powerx("host", "rollback", PY_ID, "--to", "ffffffffff")
    assert unknown.returncode == 1 and "[artefact_not_found]" in unknown.stderr


def test_cache_clear_keeps_what_serves(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")
    simulator = start_simulator([plugin])
    for version in range(3):
        set_python_greeting(plugin, f"c{version}")
        assert push(simulator, plugin).status_code == 200
    store = workspace.state_dir / "artefacts"
    assert len(list(store.iterdir())) == 4
    result = workspace.powerx("host", "cache", "clear")
    assert result.returncode == 0, result.stderr
    remaining = {p.name for p in store.iterdir()}
    status = plugin_status(simulator, PY_ID)
    assert remaining == {status["digest"], status["previous_digest"]}
    assert greeting(simulator, PY_ID) == "c2"
    assert workspace.powerx("host", "rollback", PY_ID).returncode == 0
    assert greeting(simulator, PY_ID) == "c1"


def _tar(entries: list[tarfile.TarInfo], contents: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for info in entries:
            data = contents.get(info.name)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def test_unsafe_archives_are_refused_before_touching_the_store(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    simulator = start_simulator([HELLO_PYTHON])
    store = workspace.state_dir / "artefacts"
    before = sorted(p.name for p in store.iterdir())
    escape = tarfile.TarInfo("../escape.py")
    escape.size = 3
    link = tarfile.TarInfo("src/link")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    absolute = tarfile.TarInfo("/abs.py")
    absolute.size = 3
    for archive in (
        _tar([escape], {"../escape.py": b"x=1"}),
        _tar([link], {}),
        _tar([absolute], {"/abs.py": b"x=1"}),
        b"not a tar at all" * 10,
    ):
        response = push_bytes(simulator, archive)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "unsafe_archive"
    assert sorted(p.name for p in store.iterdir()) == before
    assert not (tmp_path.parent / "escape.py").exists()


def test_push_needs_the_debug_credential(workspace: Workspace, start_simulator: Any) -> None:
    workspace.login()
    simulator = start_simulator([HELLO_PYTHON])
    assert push_bytes(simulator, b"x", headers={}).status_code == 401
    bad = {"authorization": "Bearer pxm_nope"}
    assert push_bytes(simulator, b"x", headers=bad).status_code == 401


def test_no_request_fails_during_a_reload_storm(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")
    simulator = start_simulator([plugin])
    failures: list[str] = []
    served = 0
    done = threading.Event()

    def load() -> None:
        nonlocal served
        with httpx.Client(base_url=simulator.url, trust_env=False, timeout=30) as client:
            while not done.is_set():
                response = client.get(f"/plugins/{PY_ID}/")
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:100]}")
                served += 1

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    session = BuildSession(plugin, tmp_path / "build")
    for version in range(15):
        set_python_greeting(plugin, f"storm {version}")
        assert push(simulator, plugin, session).status_code == 200
    done.set()
    for thread in threads:
        thread.join()
    assert failures == []
    assert served > 10  # requests really ran during the swaps
    assert greeting(simulator, PY_ID) == "storm 14"


CRASH_LATER = """
import os, threading
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def home(request):
    return PlainTextResponse("alive")

async def die(request):
    os._exit(3)

app = Starlette(routes=[Route("/", home), Route("/die", die)])
"""

EXIT_SOON = """
import os, threading
from starlette.applications import Starlette
threading.Timer(0.3, lambda: os._exit(4)).start()
app = Starlette()
"""


def test_a_crashed_generation_is_restarted(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = write_plugin(
        tmp_path / "crashy", python_manifest("com.test.crashy"), {"app.py": CRASH_LATER}
    )
    simulator = start_simulator([plugin])
    assert simulator.get("/plugins/com.test.crashy/").text == "alive"
    simulator.get("/plugins/com.test.crashy/die")
    status = simulator.wait_plugin(
        "com.test.crashy",
        lambda s: s["restarts"] == 1 and s["state"] == "running",
        "a restart",
        15,
    )
    assert status["restarts"] == 1 and status["generation"] == 2
    assert simulator.get("/plugins/com.test.crashy/").text == "alive"


def test_a_crash_loop_is_reported_not_hidden(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = write_plugin(
        tmp_path / "loop", python_manifest("com.test.loop"), {"app.py": EXIT_SOON}
    )
    simulator = start_simulator([plugin])
    simulator.wait_plugin("com.test.loop", lambda s: s["state"] == "crash_loop", "a crash loop", 30)
    response = simulator.get("/plugins/com.test.loop/")
    assert response.status_code == 503
    assert "crash loop" in response.json()["message"]
    _out, err = simulator.stop()
    assert "crash loop" in err


def test_plugins_reload_concurrently_without_interference(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    python_plugin = copy_example(HELLO_PYTHON, tmp_path / "py")
    node_plugin = copy_example(HELLO_NODE, tmp_path / "node")
    simulator = start_simulator([python_plugin, node_plugin])
    results: dict[str, list[int]] = {PY_ID: [], NODE_ID: []}

    def reload_many(plugin: Path, plugin_id: str, edit: Any) -> None:
        session = BuildSession(plugin, tmp_path / f"build-{plugin.name}")
        try:
            for version in range(5):
                edit(plugin, f"{plugin.name} {version}")
                results[plugin_id].append(push(simulator, plugin, session).status_code)
        finally:
            session.close()

    threads = [
        threading.Thread(target=reload_many, args=(python_plugin, PY_ID, set_python_greeting)),
        threading.Thread(target=reload_many, args=(node_plugin, NODE_ID, set_node_greeting)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {PY_ID: [200] * 5, NODE_ID: [200] * 5}
    assert greeting(simulator, PY_ID) == "py 4"
    assert greeting(simulator, NODE_ID) == "node 4"


def test_kill_9_during_a_swap_leaves_a_consistent_pointer(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")
    simulator = start_simulator([plugin])
    session = BuildSession(plugin, tmp_path / "build")
    pushes: list[int] = []

    def storm() -> None:
        for version in range(50):
            set_python_greeting(plugin, f"k{version}")
            try:
                pushes.append(push(simulator, plugin, session).status_code)
            except httpx.HTTPError:
                return

    thread = threading.Thread(target=storm)
    thread.start()
    wait_until(lambda: len(pushes), 30, accept=lambda n: n >= 3, what="3 reloads before the kill")
    os.kill(simulator.process.pid, signal.SIGKILL)
    thread.join()
    session.close()
    assert pushes, "no reload happened before the kill"
    pointer = json.loads((workspace.state_dir / "plugins" / PY_ID / "active.json").read_text())
    blob = workspace.state_dir / "artefacts" / pointer["digest"]
    assert blob.is_file()
    tree = run_root(workspace.state_dir) / PY_ID / pointer["digest"]
    assert (tree / "artefact.json").is_file()
    assert not list((workspace.state_dir / "plugins" / PY_ID).glob(".active.json.*"))
    # The next start works on the same state and serves the folder's current code.
    (workspace.state_dir / "host.json").unlink(missing_ok=True)
    again = RunningSimulator(workspace, [plugin])
    try:
        assert (
            greeting(again, PY_ID)
            == (plugin / "app.py").read_text().split('GREETING = "')[1].split('"')[0]
        )
    finally:
        again.stop()


def test_client_retries_are_bounded_and_end_in_a_clear_error(tmp_path: Path) -> None:
    import asyncio

    from powerx.client.dev import RETRIES, SimulatorClient
    from powerx.errors import PowerXError

    with socket_bound_but_closed() as port:
        client = SimulatorClient(f"http://127.0.0.1:{port}", "pxm_token")
        session = BuildSession(HELLO_PYTHON, tmp_path / "build")
        artefact = session.build()
        session.close()
        started = time.monotonic()
        with pytest.raises(PowerXError) as caught:
            asyncio.run(client.push(artefact))
        elapsed = time.monotonic() - started
    assert caught.value.code == "host_unreachable"
    assert f"{RETRIES + 1} tries" in caught.value.message
    assert elapsed < 10  # bounded: 0.05 s doubling, 5 retries


class socket_bound_but_closed:
    """A loopback port that refuses connections (bound, never listening)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


NODE_ECHO = """export default {
  async fetch(request: Request, env: { TENANT: string }): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/boom") throw new Error("boom at " + url.pathname);
    return new Response(JSON.stringify({
      method: request.method,
      path: url.pathname + url.search,
      body: await request.text(),
      header: request.headers.get("x-probe"),
      tenant: env.TENANT,
    }), { status: 201, headers: { "content-type": "application/json", "x-echo": "1" } });
  },
};
"""


def test_node_generation_from_a_warm_spare_serves_the_plugin_not_the_warm_up(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """A spare serves an echo handler of its own before it is taken; the generation made
    from it must answer with the plugin's handler, with method, body, headers and tenant
    intact, on its very first request, and turn a throw into a 500 plugin_exception."""
    workspace.login()
    plugin = copy_example(HELLO_NODE, tmp_path / "echo-node")
    (plugin / "src" / "index.ts").write_text(NODE_ECHO)
    simulator = start_simulator([plugin])
    assert plugin_status(simulator, NODE_ID)["launcher"] == "spare"
    for version in range(2):
        if version:
            source = plugin / "src" / "index.ts"
            source.write_text(source.read_text().replace("status: 201", "status: 202"))
            assert push(simulator, plugin).status_code == 200
        first = httpx.post(
            f"{simulator.url}/plugins/{NODE_ID}/echo?x=1",
            content=b"payload",
            headers={"x-probe": "p", "x-powerx-tenant": "tenant-from-header"},
            trust_env=False,
            timeout=10,
        )
        assert first.status_code == 201 + version, first.text
        assert first.headers["x-echo"] == "1"
        assert first.json() == {
            "method": "POST",
            "path": "/echo?x=1",
            "body": "payload",
            "header": "p",
            "tenant": "tenant-from-header",
        }
        failed = simulator.get(f"/plugins/{NODE_ID}/boom")
        assert failed.status_code == 500
        assert failed.json()["error"] == "plugin_exception"
        assert "boom at /boom" in failed.json()["message"]
        # Once the generation has answered, the next spare starts: the next reload finds it.
        simulator.wait_plugin(NODE_ID, lambda s: s["launcher_warm"], "a warm spare", 10)
