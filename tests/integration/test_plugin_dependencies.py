"""A Python plugin brings its own dependencies: requirements.txt (or pyproject.toml) is
installed with uv into the plugin's own environment, which its processes run in; the
DevKit's own packages are not the plugin's.

Real installs from the registries this machine's uv/pip configuration names, into each
test's own state folder (uv's cache makes a repeat fast); ``six`` and ``termcolor`` are
small, and neither is something the DevKit has.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from powerx.environments import find_uv
from powerx.testing import wait_until
from tests.conftest import RunningSimulator, Workspace, python_manifest, write_plugin
from tests.integration.test_debugging import APP as DEBUGGED_APP
from tests.integration.test_debugging import PLUGIN as DEBUGGED
from tests.integration.test_debugging import (
    RETURN_LINE,
    Debug,
    edit,
    request_in_background,
)
from tests.integration.test_hot_reload import push

PLUGIN = "com.test.deps"
# Says where its modules come from, and whether the zygote had imported them already.
DEPS_APP = """
import sys

WARM = {name: name in sys.modules for name in ("six", "termcolor")}
import six
GREETING = "start"


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    import json
    body = {"greeting": GREETING, "six": six.__file__, "warm": WARM}
    if scope["path"].endswith("/termcolor"):
        import termcolor  # at request time: learned by the zygote after the first request
        body["termcolor"] = termcolor.__file__
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
"""


def deps_plugin(folder: Path, requirements: str, app: str = DEPS_APP) -> Path:
    return write_plugin(
        folder,
        python_manifest(PLUGIN),
        {"app.py": app, "requirements.txt": requirements},
    )


def answer(simulator: RunningSimulator, path: str = "") -> dict[str, Any]:
    response = simulator.get(f"/plugins/{PLUGIN}/{path}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def set_greeting(plugin: Path, text: str) -> None:
    app = plugin / "app.py"
    app.write_text(re.sub(r'(?m)^GREETING = ".*"$', f'GREETING = "{text}"', app.read_text()))


@contextmanager
def requests_meanwhile(simulator: RunningSimulator, plugin: str = PLUGIN) -> Iterator[list[str]]:
    """Requests the plugin without pause while the block runs; yields the failures."""
    failures: list[str] = []
    done = threading.Event()

    def run() -> None:
        with httpx.Client(trust_env=False, timeout=30) as client:
            while not done.is_set():
                try:
                    response = client.get(f"{simulator.url}/plugins/{plugin}/")
                except httpx.HTTPError as error:
                    failures.append(repr(error))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield failures
    finally:
        done.set()
        thread.join(timeout=60)


@pytest.mark.parametrize("launch", ["zygote", "spare", "cold"])
def test_a_declared_package_the_devkit_lacks_is_installed_into_the_plugins_own_environment(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, launch: str
) -> None:
    assert importlib.util.find_spec("six") is None  # what makes this test mean something
    workspace.env["POWERX_PYTHON_LAUNCH"] = launch
    workspace.login()
    plugin = deps_plugin(tmp_path / "p", "six\n")
    simulator: RunningSimulator = start_simulator([plugin])
    body = answer(simulator)
    # From its environment, kept in the state folder and shown in its sandbox at /powerx/envs
    dependencies = simulator.plugin_status(PLUGIN)["dependencies"]
    assert Path(dependencies["environment"]).parent == workspace.state_dir / "envs"
    assert [p.split("==")[0] for p in dependencies["packages"]] == ["six"]
    assert body["six"].startswith("/powerx/envs/"), body
    # A zygote imported it before forking; a spare or a cold start did not.
    assert body["warm"]["six"] is (launch == "zygote")
    output = simulator.output()
    assert "dependencies: installing 1 package ..." in output, output
    assert "dependencies: installed 1 package in " in output, output
    event = Debug(simulator, PLUGIN).first_event("plugin.debug.dependencies")
    assert event["message"] == "resolving requirements.txt ...", event
    status = workspace.powerx("host", "status")
    assert f"{PLUGIN}: 1 package from requirements.txt" in status.stdout, status.stdout
    # Bytecode comes after the install, in the background (the plugin runs meanwhile): the
    # environment is read-only to the plugin, whose next zygote would compile it again.
    environment = Path(dependencies["environment"])
    assert wait_until(
        lambda: list(environment.glob("lib/python3.*/site-packages/__pycache__/six.*.pyc")), 60
    )


def test_a_package_the_plugin_does_not_declare_is_not_importable_even_if_the_devkit_has_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.login()
    app = "import rich\n" + DEPS_APP
    plugin = deps_plugin(tmp_path / "p", "six\n", app)
    result = workspace.powerx("host", "start", "--mock", "--port", "0", str(plugin))
    assert result.returncode == 1, result.stdout
    assert "[module_not_found]" in result.stderr, result.stderr
    assert "`import rich` in app.py:1" in result.stderr
    assert "not declared in its requirements.txt" in result.stderr
    assert "fix: add rich to requirements.txt" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_plugin_without_a_declaration_sees_the_toolkit_but_not_the_rest_of_the_devkit(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.login()
    app = "import starlette\nimport httpx\nimport rich\n" + DEPS_APP.replace("import six", "")
    plugin = write_plugin(tmp_path / "p", python_manifest(PLUGIN), {"app.py": app})
    result = workspace.powerx("host", "start", "--mock", "--port", "0", str(plugin))
    assert result.returncode == 1, result.stdout
    assert "`import rich` in app.py:3" in result.stderr, result.stderr
    assert "add rich to requirements.txt (create it beside the manifest)" in result.stderr


def test_editing_requirements_while_watching_installs_and_reloads_without_a_failed_request(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = deps_plugin(tmp_path / "p", "six\n")
    simulator: RunningSimulator = start_simulator([plugin], "--watch")
    first = answer(simulator)
    first_environment = Path(simulator.plugin_status(PLUGIN)["dependencies"]["environment"])
    with requests_meanwhile(simulator) as failures:
        (plugin / "requirements.txt").write_text("six\ntermcolor\n")
        simulator.wait_generation(PLUGIN, 2, timeout_s=120)
        set_greeting(plugin, "after install")
        simulator.wait_generation(PLUGIN, 3)
    assert failures == []
    after = answer(simulator, "termcolor")
    assert after["greeting"] == "after install"
    # A new environment, beside the first (which served until the new one was ready).
    assert Path(after["six"]).parent != Path(first["six"]).parent
    assert Path(after["termcolor"]).parent.parent == Path(after["six"]).parent
    output = simulator.output()
    assert "dependencies: installing 2 packages ..." in output
    assert f"… {PLUGIN}  requirements.txt changed: installing its dependencies" in output
    assert f"{PLUGIN}  gen 2" in output and "(install " in output  # the reload's line
    # The first environment serves no more: the cache clear removes it, not the new one.
    cleared = workspace.powerx("host", "cache", "clear")
    assert "and 1 unused Python environment(s)" in cleared.stdout, cleared.stdout + cleared.stderr
    assert not first_environment.exists()
    assert answer(simulator, "termcolor")["greeting"] == "after install"


def test_a_failed_install_keeps_the_old_generation_serving_with_the_resolvers_message(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = deps_plugin(tmp_path / "p", "six\n")
    simulator: RunningSimulator = start_simulator([plugin], "--watch")
    (plugin / "requirements.txt").write_text("six==999.0.0\n")
    status = simulator.wait_plugin(
        PLUGIN, lambda s: s["state"] == "stale", "a failed install", timeout_s=120
    )
    failure = status["failure"]
    assert failure["code"] == "dependencies_failed"
    assert "six==999.0.0" in failure["message"], failure  # the resolver's own words
    assert "requirements.txt" in failure["fix"] and "keeps serving" in failure["fix"]
    assert status["generation"] == 1
    response = simulator.get(f"/plugins/{PLUGIN}/")
    assert response.status_code == 200
    assert response.headers["x-powerx-stale"] == "dependencies_failed; serving generation 1"
    (plugin / "requirements.txt").write_text("six\n")
    set_greeting(plugin, "fixed")
    simulator.wait_generation(PLUGIN, 2)
    assert answer(simulator)["greeting"] == "fixed"


def test_the_zygote_learns_the_modules_a_generation_imported_later(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """``termcolor`` is imported at request time only: not seen by reading the code, but the
    first generation reports it after its first request, and its zygote imports it, so
    the next generation finds it imported already."""
    workspace.login()
    plugin = deps_plugin(tmp_path / "p", "six\ntermcolor\n")
    simulator: RunningSimulator = start_simulator([plugin], "--watch")
    assert answer(simulator, "termcolor")["warm"] == {"six": True, "termcolor": False}
    status = simulator.wait_plugin(
        PLUGIN,
        lambda s: "termcolor" in s["dependencies"]["warm_modules"],
        "the zygote to learn termcolor",
        timeout_s=30,
    )
    assert status["dependencies"]["declared_in"] == "requirements.txt"
    packages = sorted(p.split("==")[0] for p in status["dependencies"]["packages"])
    assert packages == ["six", "termcolor"]
    set_greeting(plugin, "next")
    simulator.wait_generation(PLUGIN, 2)
    body = answer(simulator)
    assert body["greeting"] == "next" and body["warm"] == {"six": True, "termcolor": True}


def test_pyproject_dependencies_with_a_uv_lock_are_installed_as_locked(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """Locked at the lowest version the range allows: a fresh resolve would pick the
    newest, so the version served says which one was installed."""
    workspace.login()
    app = DEPS_APP.replace('"six": six.__file__', '"six": six.__file__, "version": six.__version__')
    pyproject = (
        '[project]\nname = "deps-plugin"\nversion = "1.0.0"\n'
        'requires-python = ">=3.11"\ndependencies = ["six>=1.15"]\n'
    )
    plugin = write_plugin(
        tmp_path / "p", python_manifest(PLUGIN), {"app.py": app, "pyproject.toml": pyproject}
    )
    locked = subprocess.run(
        [find_uv(), "lock", "--resolution", "lowest-direct"],
        cwd=plugin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert locked.returncode == 0, locked.stderr
    simulator: RunningSimulator = start_simulator([plugin])
    assert answer(simulator)["version"] == "1.15.0"
    dependencies = simulator.plugin_status(PLUGIN)["dependencies"]
    assert dependencies["declared_in"] == "pyproject.toml"
    assert dependencies["packages"] == ["six==1.15.0"]


BACKEND_MANIFEST = """id: com.test.deps-backend
name: Backend with dependencies
version: 1.0.0
backend:
  entry: python server.py
  health: /healthz
"""
BACKEND_SERVER = """import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import six


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"six": six.__file__, "python": sys.prefix}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def test_a_backend_programs_python_is_its_environments(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = tmp_path / "backend"
    plugin.mkdir()
    (plugin / "plugin.yaml").write_text(BACKEND_MANIFEST)
    (plugin / "server.py").write_text(BACKEND_SERVER)
    (plugin / "requirements.txt").write_text("six\n")
    simulator: RunningSimulator = start_simulator([plugin])
    response = simulator.get("/_p/com.test.deps-backend/api/v1/")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["python"].startswith("/powerx/envs/") and body["six"].startswith(body["python"])


def test_a_breakpoint_hits_in_a_plugin_running_in_its_own_environment(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """The debugger is the runtime's (sealed away from plugin code, still there for it)."""
    workspace.login()
    files = {"app.py": DEBUGGED_APP, "requirements.txt": "starlette\nsix\n"}
    plugin = write_plugin(tmp_path / "debugged", python_manifest(DEBUGGED), files)
    simulator: RunningSimulator = start_simulator([plugin])
    debug = Debug(simulator)
    assert debug.call("POST", f"/internal/debug/sessions/{DEBUGGED}/attach").status_code == 200
    assert debug.put({"file": "app.py", "line": RETURN_LINE}).status_code == 200
    edit(plugin, 'GREETING = "v0"', 'GREETING = "v1"')
    assert push(simulator, plugin).json()["debug"]["verified"] == 1
    thread, result = request_in_background(simulator, f"/plugins/{DEBUGGED}/?name=ada")
    paused = debug.wait_paused()
    assert (paused["file"], paused["line"]) == ("app.py", RETURN_LINE)
    assert debug.command("locals")["locals"]["message"] == "'v1 ada'"
    debug.command("continue")
    thread.join(30)
    assert result["response"].json()["message"] == "v1 ada"
    assert simulator.plugin_status(DEBUGGED)["dependencies"]["declared_in"] == "requirements.txt"


def zygotes(simulator: RunningSimulator) -> set[int]:
    """The simulator's zygote processes (outside a sandbox they are its children)."""
    assert simulator.process is not None
    children = Path(f"/proc/{simulator.process.pid}/task/{simulator.process.pid}/children")
    found = set()
    for pid in map(int, children.read_text().split()):
        with contextlib.suppress(OSError):
            if b"powerx.runtimes.zygote" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
    return found


def test_plugins_in_different_environments_keep_their_zygotes_where_launchers_are_shared(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """Without a sandbox one launcher serves every Python plugin: reloading them in turn
    must not start a zygote each time (a heavy plugin's costs a second)."""
    workspace.env["POWERX_SANDBOX"] = "off"
    workspace.login()
    declared = deps_plugin(tmp_path / "declared", "six\n")
    plain_app = DEPS_APP.replace("import six", "").replace('"six": six.__file__, ', "")
    plain = write_plugin(
        tmp_path / "plain", python_manifest("com.test.plain"), {"app.py": plain_app}
    )
    simulator: RunningSimulator = start_simulator([declared, plain])
    assert answer(simulator)["six"]
    before = zygotes(simulator)
    assert len(before) == 2, before  # the DevKit's runtime and the declared environment
    for round_ in range(2):
        for plugin in (declared, plain):
            set_greeting(plugin, f"round {round_}")
            assert push(simulator, plugin).status_code == 200
    assert zygotes(simulator) == before
    assert answer(simulator)["greeting"] == "round 1"
    # A new environment: its own zygote; the old one's ends with the generation it served.
    (declared / "requirements.txt").write_text("six\ntermcolor\n")
    assert push(simulator, declared).status_code == 200
    assert wait_until(lambda: len(zygotes(simulator)) == 2 and zygotes(simulator) != before)
    assert len(zygotes(simulator) & before) == 1  # the DevKit's runtime's stays
