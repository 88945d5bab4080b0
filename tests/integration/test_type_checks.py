"""Type checking beside the dev loop, with the real checkers: after each reload, tsc
(Node, from the plugin's node_modules) or mypy (Python) runs in the background; its errors
follow the reload line and reach status and events with file:line; a clean run clears
them; the reload never waits for it, and a save stops a check it made stale."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from powerx.reload.type_checkers import TypeChecker, parse_mypy
from powerx.reload.type_checks import TypeCheckReport, TypeChecks
from powerx.testing import wait_until, wait_until_async
from tests.conftest import HELLO_NODE, REPO, RunningSimulator, Workspace, write_plugin

NODE_ID = "com.example.hello-node"
PY_ID = "com.test.typed"
SDK = REPO / "packages" / "powerx-plugin"

TYPED_APP = """from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from powerx_plugin import host_for


async def home(request: Request) -> JSONResponse:
    contacts = await host_for(request).list_contacts()
    count: int = len(contacts)
    return JSONResponse({"greeting": "typed", "contacts": count})


app = Starlette(routes=[Route("/", home)])
"""
MANIFEST = (
    f"id: {PY_ID}\nname: Typed\nversion: 1.0.0\nruntime: python3.11\nentry: app.py:app\n"
    "host:\n  api: '>=2.3 <3'\npermissions: [contacts:read]\n"
)


def copy_hello_node(target: Path) -> Path:
    """The example with its node_modules (esbuild, typescript); its @powerx/plugin link,
    relative in the example, pointed at the package again from here."""
    shutil.copytree(HELLO_NODE, target, symlinks=True)
    link = target / "node_modules" / "@powerx" / "plugin"
    link.unlink()
    link.symlink_to(SDK)
    return target


def type_check(simulator: RunningSimulator, plugin: str) -> dict[str, Any]:
    return simulator.plugin_status(plugin).get("watch", {}).get("type_check") or {}


def wait_type_check(
    simulator: RunningSimulator, plugin: str, state: str, after: float = 0.0
) -> dict[str, Any]:
    """The plugin's type check once one made after ``after`` is in ``state``."""

    found = wait_until(
        lambda: type_check(simulator, plugin),
        timeout_s=90,
        accept=lambda check: check.get("state") == state and check["at"] > after,
        what=f"{plugin}'s type check {state} after {after}",
    )
    return found


def test_tsc_errors_follow_the_reload_and_a_clean_run_clears_them(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_hello_node(tmp_path / "hello-node")
    simulator: RunningSimulator = start_simulator([plugin], "--watch")
    clean = wait_type_check(simulator, NODE_ID, "clean")  # the first check, at the start
    assert clean["tool"] == "tsc" and clean["config"] == "tsconfig.json"

    source = plugin / "src" / "index.ts"
    good = source.read_text()
    source.write_text(good.replace("contacts[0]?.name", "contacts[0]?.nme"))
    errors = wait_type_check(simulator, NODE_ID, "errors", after=clean["at"])
    assert errors["errors"] == 1
    [problem] = errors["problems"]
    line = next(n for n, text in enumerate(good.splitlines(), 1) if "contacts[0]?.name" in text)
    assert (problem["file"], problem["line"], problem["code"]) == ("src/index.ts", line, "TS2551")
    assert "Property 'nme' does not exist on type 'Contact'" in problem["message"]
    # The reload went ahead without it: generation 2 serves the save, type error and all.
    assert simulator.plugin_status(NODE_ID)["generation"] == 2
    assert simulator.get(f"/plugins/{NODE_ID}/").status_code == 200
    output = simulator.stdout()
    reload_at = output.index(f"✓ {NODE_ID}  gen 2 ")
    warning_at = output.index(f"⚠ {NODE_ID}  1 type error (tsc, ")
    assert reload_at < warning_at, output
    assert f"\n    src/index.ts:{line}:" in output[warning_at:]

    source.write_text(good)
    wait_type_check(simulator, NODE_ID, "clean", after=errors["at"])
    assert f"✓ {NODE_ID}  types clean (tsc, " in simulator.stdout()[warning_at:]


def test_mypy_errors_from_powerx_dev_reach_the_simulator(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "typed", MANIFEST, {"app.py": TYPED_APP})
    (plugin / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    simulator: RunningSimulator = start_simulator([plugin])
    dev = subprocess.Popen(
        [sys.executable, "-m", "powerx.cli.main", "dev", str(plugin)],
        cwd=workspace.root,
        env=workspace.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        clean = wait_type_check(simulator, PY_ID, "clean")
        assert clean["tool"] == "mypy" and clean["config"] == "mypy.ini"
        app = plugin / "app.py"
        app.write_text(TYPED_APP.replace("count: int = len(contacts)", 'count: int = "many"'))
        errors = wait_type_check(simulator, PY_ID, "errors", after=clean["at"])
        [problem] = errors["problems"]
        assert (problem["file"], problem["line"], problem["code"]) == ("app.py", 11, "assignment")
        app.write_text(TYPED_APP)
        wait_type_check(simulator, PY_ID, "clean", after=errors["at"])
        # The dev loop keeps nothing of mypy's in the plugin folder (a cache there would be
        # a save); it is in the build folder.
        assert not (plugin / ".mypy_cache").exists()
    finally:
        dev.terminate()
        out, err = dev.communicate(timeout=30)
    assert "Traceback" not in out + err
    assert f"⚠ {PY_ID}  1 type error (mypy, " in out
    assert "    app.py:11:" in out and "[dim]" not in out


SLOW_CHECKER = """import os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(120)
"""


def test_a_save_stops_the_check_it_made_stale(tmp_path: Path) -> None:
    """The check still running when the folder changes is stopped, unreported."""
    pid_file = tmp_path / "checker.pid"
    (tmp_path / "slow_checker.py").write_text(SLOW_CHECKER)
    reports: list[TypeCheckReport] = []

    async def report(found: TypeCheckReport) -> None:
        reports.append(found)

    async def check_then_save() -> int:
        checks = TypeChecks("com.test.slow", tmp_path, tmp_path / "cache", report)
        command = (sys.executable, str(tmp_path / "slow_checker.py"), str(pid_file))
        checks.checkers = [TypeChecker("slow", "slow.ini", command, parse_mypy)]
        checks.start()
        pid = int(
            await wait_until_async(
                lambda: pid_file.is_file() and pid_file.read_text(), 30, what="the checker's pid"
            )
        )
        # It yields the CPU to the loop: nice 19, and so is its session's autogroup (the
        # kernel shares CPU time between sessions first).
        assert os.getpriority(os.PRIO_PROCESS, pid) == 19
        assert Path(f"/proc/{pid}/autogroup").read_text().strip().endswith("nice 19")
        checks.stale()  # a save
        await checks.close()
        return pid

    pid = asyncio.run(check_then_save())
    assert not Path(f"/proc/{pid}").exists()
    assert reports == []


def test_a_type_check_note_is_checked_before_it_is_kept(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    simulator: RunningSimulator = start_simulator([copy_hello_node(tmp_path / "hello-node")])
    note = {"plugin": NODE_ID, "tool": "tsc", "state": "broken", "problems": []}
    path = "/internal/debug/hot-reload/type-check"
    assert simulator.post(path, json=note).status_code == 401  # the developer's only
    refused = simulator.post(path, json=note, headers=simulator.debug_headers())
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_body"
    assert [p["where"] for p in refused.json()["problems"]] == ["state"]
    assert type_check(simulator, NODE_ID) == {}  # nothing kept
