"""``@powerx/plugin/testing`` (packages/powerx-plugin/testing.js), the Node twin of
``powerx.testing.LocalSimulator``: from a Node process it runs the real ``powerx host start
--mock`` with its own throwaway login and state, answers once the simulator is up, waits on
what the simulator reports, and leaves no process or folder behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from powerx.testing import wait_until
from tests.conftest import HELLO_PYTHON, REPO, python_manifest, write_plugin

HELPER = REPO / "packages" / "powerx-plugin" / "testing.js"
PY_ID = "com.example.hello-python"
VENV_BIN = str(Path(sys.executable).parent)  # where an installed DevKit's `powerx` is


def run_node(
    tmp_path: Path, body: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``body`` (an async function's body, with ``LocalSimulator``, ``waitUntil``,
    ``fs`` and ``path`` in scope; what it returns is printed as JSON) in a Node process."""
    script = tmp_path / "script.cjs"
    script.write_text(
        "const fs = require('node:fs');\nconst path = require('node:path');\n"
        f"const {{ LocalSimulator, waitUntil }} = require({json.dumps(str(HELPER))});\n"
        f"(async () => {{\n{body}\n}})().then((out) => console.log(JSON.stringify(out)),\n"
        "  (error) => { console.log(JSON.stringify({ error: error.message })); });\n"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POWERX_", "PX_"))}
    return subprocess.run(
        ["node", str(script)],
        cwd=tmp_path,
        env=env or base | {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def answer(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stdout + result.stderr
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def test_it_runs_an_isolated_simulator_and_stopping_leaves_nothing_behind(tmp_path: Path) -> None:
    mine = tmp_path / "my-own-state"  # the caller's own settings: never used
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERX_", "PX_"))}
    env |= {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "POWERX_STATE_DIR": str(mine / "state"),
        "POWERX_CONFIG_HOME": str(mine / "config"),
    }
    result = run_node(
        tmp_path,
        f"""
        const sim = await LocalSimulator.start([{json.dumps(str(HELLO_PYTHON))}]);
        const info = JSON.parse(fs.readFileSync(path.join(sim.env.POWERX_STATE_DIR, 'host.json')));
        const response = await sim.fetch('/plugins/{PY_ID}/');
        const body = await response.json();
        const plugins = (await sim.status()).plugins.map((p) => [p.id, p.generation]);
        const whoami = await sim.powerx('host', 'status', '--json');
        await sim.stop();
        return {{ status: response.status, body, plugins, pid: info.pid, url: sim.url,
          workdir: sim.workdir, env: sim.env, hostStatus: JSON.parse(whoami.stdout) }};
        """,
        env,
    )
    found = answer(result)
    assert found["status"] == 200 and found["body"]["greeting"] == "hello from python"
    assert found["plugins"] == [[PY_ID, 1]]
    assert found["url"].startswith("http://127.0.0.1:")
    assert found["hostStatus"]["host"]["url"] == found["url"]  # powerx commands reach it
    workdir = Path(found["workdir"])
    assert found["env"]["POWERX_STATE_DIR"] == str(workdir / "state")
    assert found["env"]["POWERX_CONFIG_HOME"] == str(workdir / "config-home")
    assert not mine.exists()  # the caller's own login and state were left alone
    assert not workdir.exists()  # its throwaway folder is removed
    assert wait_until(lambda: gone(found["pid"]))


def test_with_watch_a_save_reloads_and_it_waits_for_the_new_generation(tmp_path: Path) -> None:
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin, ignore=shutil.ignore_patterns("__pycache__"))
    app = plugin / "app.py"
    result = run_node(
        tmp_path,
        f"""
        const sim = await LocalSimulator.start([{json.dumps(str(plugin))}], {{ watch: true }});
        try {{
          const app = {json.dumps(str(app))};
          fs.writeFileSync(app, fs.readFileSync(app, 'utf8').replace(
            'GREETING = "hello from python"', 'GREETING = "saved from node"'));
          const serving = await sim.waitGeneration('{PY_ID}', 2);
          const body = await (await sim.fetch('/plugins/{PY_ID}/')).json();
          return {{ generation: serving.generation, body, output: sim.output() }};
        }} finally {{
          await sim.stop();
        }}
        """,
    )
    found = answer(result)
    assert found["generation"] >= 2
    assert found["body"]["greeting"] == "saved from node"
    assert f"✓ {PY_ID}  gen 2" in found["output"]


def test_a_plugin_that_cannot_start_rejects_with_what_the_simulator_said(
    tmp_path: Path,
) -> None:
    broken = write_plugin(tmp_path / "broken", python_manifest(), {"app.py": "import nothere\n"})
    result = run_node(
        tmp_path,
        f"""
        try {{
          await LocalSimulator.start([{json.dumps(str(broken))}]);
          return {{ started: true }};
        }} catch (error) {{
          return {{ message: error.message }};
        }}
        """,
    )
    found = answer(result)
    assert "the simulator exited with 1" in found["message"]
    assert "nothere" in found["message"]  # the simulator's own words: what is missing


def test_without_powerx_it_says_how_to_get_it(tmp_path: Path) -> None:
    node_only = str(Path(shutil.which("node") or "node").parent)
    env = {"PATH": node_only, "HOME": os.environ.get("HOME", str(tmp_path))}
    found = answer(run_node(tmp_path, "await LocalSimulator.start(['.']); return {};", env))
    assert "install the PowerX DevKit" in found["error"]
    assert "POWERX_CLI" in found["error"]


def test_a_test_that_forgets_to_stop_it_does_not_leave_it_running(tmp_path: Path) -> None:
    result = run_node(
        tmp_path,
        f"""
        const sim = await LocalSimulator.start([{json.dumps(str(HELLO_PYTHON))}]);
        const info = JSON.parse(fs.readFileSync(path.join(sim.env.POWERX_STATE_DIR, 'host.json')));
        return {{ pid: info.pid }};  // and the process ends here, without sim.stop()
        """,
    )
    found = answer(result)
    assert wait_until(lambda: gone(found["pid"]), timeout_s=30)


def test_wait_until_throws_what_it_waited_for_and_the_last_answer(tmp_path: Path) -> None:
    """As Python's ``wait_until``: a wait that gives up throws (a ``WaitTimeout``) naming
    what it waited for and what it saw, instead of handing back a falsy answer."""
    result = answer(
        run_node(
            tmp_path,
            """
            let calls = 0;
            const found = await waitUntil(() => (++calls >= 3 ? 'ready' : ''), 5000, 1);
            try {
              await waitUntil(() => 0, 50, 5, { what: 'a running plugin' });
              return { found, thrown: null };
            } catch (error) {
              return { found, thrown: error.name, message: error.message };
            }
            """,
        )
    )
    assert result["found"] == "ready"
    assert result["thrown"] == "WaitTimeout"
    assert "waiting for a running plugin" in result["message"]
    assert "last value seen: 0" in result["message"]
