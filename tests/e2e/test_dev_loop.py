"""`powerx dev` and `host start --watch` as a developer runs them: real files, real saves."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from powerx.testing import LocalSimulator
from tests.conftest import (
    HELLO_NODE,
    HELLO_PYTHON,
    PYTHON_APP,
    Workspace,
    python_manifest,
    wait_until,
    write_plugin,
)

PY_ID = "com.example.hello-python"
NODE_ID = "com.example.hello-node"


def replace_line(path: Path, prefix: str, new: str) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(new if x.startswith(prefix) else x for x in lines) + "\n")


def wait_for_text(get: Any, path: str, text: str, timeout_s: float = 15) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = get(path)
        if response.status_code == 200 and text in response.text:
            return True
        time.sleep(0.02)
    return False


def wait_for_output(sim: LocalSimulator, text: str, timeout_s: float = 5) -> bool:
    deadline = time.monotonic() + timeout_s
    while text not in sim.output() and time.monotonic() < deadline:
        time.sleep(0.02)
    return text in sim.output()


@dataclass
class DevRun:
    """A `powerx dev` process; its output once it has stopped."""

    process: subprocess.Popen[str]
    out: str = ""
    err: str = ""


@contextlib.contextmanager
def powerx_dev(workspace: Workspace, plugin: Path, *args: str) -> Iterator[DevRun]:
    """`powerx dev PLUGIN ARGS` against the running simulator, stopped (SIGTERM) after."""
    run = DevRun(
        subprocess.Popen(
            [sys.executable, "-m", "powerx.cli.main", "dev", str(plugin), *args],
            cwd=workspace.root,
            env=workspace.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    try:
        time.sleep(1.0)  # initial push and watchers armed
        yield run
    finally:
        run.process.terminate()
        run.out, run.err = run.process.communicate(timeout=20)


@pytest.mark.parametrize("poll", [False, True], ids=["native", "poll"])
def test_powerx_dev_reloads_each_save(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, poll: bool
) -> None:
    workspace.login()
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    simulator = start_simulator([plugin])
    with powerx_dev(workspace, plugin, *(["--poll"] if poll else [])) as dev:
        source = plugin / "app.py"
        replace_line(source, "GREETING =", 'GREETING = "first save"')
        assert wait_for_text(simulator.get, f"/plugins/{PY_ID}/", "first save")
        # Two saves within one second, same size: both must be seen (the last one wins).
        replace_line(source, "GREETING =", 'GREETING = "save two A"')
        time.sleep(0.15)
        replace_line(source, "GREETING =", 'GREETING = "save two B"')
        assert wait_for_text(simulator.get, f"/plugins/{PY_ID}/", "save two B")
        replace_line(source, "GREETING =", "GREETING = (")
        time.sleep(1.0)
        assert wait_for_text(simulator.get, f"/plugins/{PY_ID}/", "save two B", timeout_s=2)
    out, err = dev.out, dev.err
    assert dev.process.returncode in (0, -15), err
    assert "Traceback" not in out + err
    reload_lines = [line for line in out.splitlines() if line.startswith("✓")]
    assert reload_lines, out
    assert all(
        "gen " in line and " ms" in line and "build" in line and "swap" in line
        for line in reload_lines
    )
    assert "build_failed" in out and "app.py:" in out
    assert "keeps serving" in out
    assert ("polling" in err) == poll


def test_dev_without_a_running_simulator_says_how_to_start_one(workspace: Workspace) -> None:
    workspace.login()
    result = workspace.powerx("dev", str(HELLO_PYTHON))
    assert result.returncode == 1
    assert "[host_not_running]" in result.stderr
    assert "powerx host start" in result.stderr


def test_host_start_watch_reloads_typescript(tmp_path: Path) -> None:
    plugin = tmp_path / "hello-node"
    shutil.copytree(HELLO_NODE, plugin, symlinks=True)
    with LocalSimulator([plugin], watch=True, workdir=tmp_path / "sim") as sim:
        time.sleep(0.5)
        replace_line(plugin / "src/index.ts", "const GREETING", 'const GREETING = "watched";')
        assert wait_for_text(sim.get, f"/plugins/{NODE_ID}/", "watched")
        # The line is printed when the push returns, just after the flip; a request can win.
        assert wait_for_output(sim, "gen 2"), sim.output()


def test_a_burst_of_saves_coalesces_and_the_last_edit_wins(tmp_path: Path) -> None:
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    with LocalSimulator([plugin], watch=True, workdir=tmp_path / "sim") as sim:
        time.sleep(0.5)
        for number in range(20):
            replace_line(plugin / "app.py", "GREETING =", f'GREETING = "burst {number}"')
            time.sleep(0.005)
        assert wait_for_text(sim.get, f"/plugins/{PY_ID}/", "burst 19")
        time.sleep(0.5)
        reloads = [line for line in sim.output().splitlines() if line.startswith("✓")]
    assert 1 <= len(reloads) < 20


SLOW_BUILD = """\
// Joins src/a.js and src/b.js into dist/index.js, slowly: saves land while it runs.
const fs = require('node:fs');
const [a, b] = ['a', 'b'].map((name) => fs.readFileSync(`src/${name}.js`, 'utf8').trim());
setTimeout(() => {
  fs.mkdirSync('dist', { recursive: true });
  fs.writeFileSync('dist/index.js', `const parts = [${a}, ${b}];
module.exports = { fetch: async () => new Response(parts.join('+')) };
`);
}, 400);
"""


def two_file_plugin(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src/a.js").write_text('"a0"\n')
    (root / "src/b.js").write_text('"b0"\n')
    (root / "build.js").write_text(SLOW_BUILD)
    (root / "powerx.plugin.yaml").write_text(
        "id: com.example.two-files\nname: Two files\nversion: 1.0.0\nruntime: node18\n"
        "entry: src/a.js\nbuild:\n  command: node build.js\n  output: dist/index.js\n"
        'host:\n  api: "^2.3"\n'
    )
    return root


def test_a_save_that_lands_during_a_build_drops_that_build(tmp_path: Path) -> None:
    """Two files saved 0.1 s apart, the second while the first one's build runs: one
    reload, serving both edits; the half-saved state is never pushed."""
    plugin = two_file_plugin(tmp_path / "two-files")
    with LocalSimulator([plugin], watch=True, workdir=tmp_path / "sim") as sim:
        assert sim.get("/plugins/com.example.two-files/").text == "a0+b0"
        time.sleep(0.5)
        (plugin / "src/a.js").write_text('"a1"\n')
        time.sleep(0.1)  # the build of a1 alone is running
        (plugin / "src/b.js").write_text('"b1"\n')
        assert wait_for_text(sim.get, "/plugins/com.example.two-files/", "a1+b1")
        assert wait_for_output(sim, "gen 2"), sim.output()
        time.sleep(1.0)  # a late second reload would show up by now
        reloads = [line for line in sim.output().splitlines() if "  gen " in line]
    assert len(reloads) == 1, sim.output()
    assert "gen 2" in reloads[0] and "a.js" in reloads[0] and "b.js" in reloads[0]


@pytest.mark.parametrize("where", ["in the simulator", "powerx dev"])
def test_a_request_made_while_the_save_builds_gets_the_saved_code(
    tmp_path: Path, workspace: Workspace, start_simulator: Any, where: str
) -> None:
    """The dev loop tells the simulator a reload is coming as soon as it sees the save, so
    a request sent during the (0.4 s) build waits for the new generation. In the
    simulator's process (`host start --watch`) that note is a call; from `powerx dev`, an
    HTTP request."""
    plugin = two_file_plugin(tmp_path / "two-files")
    with contextlib.ExitStack() as running:
        if where == "powerx dev":
            workspace.login()
            get = start_simulator([plugin]).get
            running.enter_context(powerx_dev(workspace, plugin))
        else:
            sim = running.enter_context(
                LocalSimulator([plugin], watch=True, workdir=tmp_path / "sim")
            )
            get = sim.get
            time.sleep(0.5)
        assert get("/plugins/com.example.two-files/").text == "a0+b0"
        (plugin / "src/a.js").write_text('"a1"\n')
        time.sleep(0.15)  # seen, and building
        response = get("/plugins/com.example.two-files/")
    assert response.status_code == 200
    assert response.text == "a1+b0"
    assert int(response.headers["x-powerx-held-ms"]) > 100


def test_a_failed_build_lets_held_requests_go_at_once(tmp_path: Path) -> None:
    """A save that does not build ends the hold when the build fails, not 3 s later."""
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    with LocalSimulator([plugin], watch=True, workdir=tmp_path / "sim") as sim:
        time.sleep(0.5)
        replace_line(plugin / "app.py", "GREETING =", "GREETING = (")
        assert wait_for_output(sim, "build_failed", timeout_s=10), sim.output()
        started = time.monotonic()
        response = sim.get(f"/plugins/{PY_ID}/")
        waited_s = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["greeting"] == "hello from python"
    assert waited_s < 2.0, f"held {waited_s:.1f} s after a failed build"


def test_repeated_mismatches_print_an_alert_line_that_later_clears(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(
        "observability:\n  alerts:\n    mismatch_count: 2\n    mismatch_window_s: 3\n"
        "    failure_min_reloads: 100\n"
    )
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    manifest = plugin / "powerx.plugin.yaml"
    good = manifest.read_text()
    with LocalSimulator(
        [plugin], watch=True, workdir=tmp_path / "sim", extra_args=["--config", str(config)]
    ) as sim:
        time.sleep(0.5)
        for number in range(2):
            manifest.write_text(good.replace('">=2.3 <3"', f'">=3.{number}"'))
            deadline = time.monotonic() + 15
            while sim.output().count("version_mismatch") <= number and time.monotonic() < deadline:
                time.sleep(0.05)
        assert wait_for_output(sim, "⚠ alert", timeout_s=15), sim.output()
        assert "2 version mismatches" in sim.output()
        # The alert clears once the 3 s window has passed; the next reload tells the developer.
        time.sleep(3.5)
        manifest.write_text(good)
        replace_line(plugin / "app.py", "GREETING =", 'GREETING = "back in range"')
        assert wait_for_text(sim.get, f"/plugins/{PY_ID}/", "back in range")
        assert wait_for_output(sim, "alert cleared", timeout_s=15), sim.output()


def save_until(path: Path, text: str, done: Callable[[], bool], timeout_s: float = 30) -> bool:
    """Save ``text`` to ``path`` until ``done()``: a save made before the watcher is armed
    is missed, and the next one is seen."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        path.write_text(text)
        if wait_until(done, timeout_s=1.0):
            return True
    return False


def plugin_row(sim: LocalSimulator, plugin_id: str) -> dict[str, Any]:
    """The plugin's row in the simulator's status ({} when it is not listed)."""
    assert sim.workdir is not None
    credential = json.loads((sim.workdir / "config-home/credentials.json").read_text())
    headers = {"authorization": f"Bearer {credential['token']}"}
    status = sim.get("/internal/debug/status", headers=headers).json()
    return next((p for p in status["plugins"] if p["id"] == plugin_id), {})


def test_host_start_watch_serves_the_others_and_mounts_a_failed_plugin_once_fixed(
    tmp_path: Path,
) -> None:
    """A plugin that cannot start (an import that fails) does not end `host start --watch`:
    the failure is printed, the other plugin serves, and a save that fixes it mounts it."""
    good = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, good)
    bad = write_plugin(
        tmp_path / "bad",
        python_manifest("com.test.bad"),
        {"app.py": "import notinstalled\n" + PYTHON_APP},
    )
    with LocalSimulator([good, bad], watch=True, workdir=tmp_path / "sim") as sim:
        started = sim.output()
        assert "com.test.bad not mounted: plugin_start_failed" in started, started
        assert "No module named 'notinstalled'" in started
        assert "fix: fix the error at that line and save again." in started
        assert sim.get(f"/plugins/{PY_ID}/").status_code == 200
        refused = sim.get("/plugins/com.test.bad/")
        assert refused.status_code == 503
        assert "notinstalled" in refused.json()["message"]
        row = plugin_row(sim, "com.test.bad")
        assert row["state"] == "failed" and row["failure"]["code"] == "plugin_start_failed"
        listed = sim.powerx("host", "status")
        assert "com.test.bad is not serving: it never started" in listed.stdout, listed.stderr

        assert save_until(
            bad / "app.py", PYTHON_APP, lambda: sim.get("/plugins/com.test.bad/").status_code == 200
        ), sim.output()
        assert sim.get("/plugins/com.test.bad/").json() == {"ok": True}
        assert plugin_row(sim, "com.test.bad")["state"] == "running"
        assert plugin_row(sim, PY_ID)["state"] == "running"
    assert "Traceback" not in sim.output()


def test_host_start_watch_shows_a_failed_build_as_stale_until_a_save_fixes_it(
    tmp_path: Path,
) -> None:
    """The build error never reached the simulator; the dev loop's failure report makes the
    plugin stale (status, `host status`, a header on each response), and the next good
    save clears it."""
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    app = plugin / "app.py"
    good = app.read_text()
    broken = good.replace('GREETING = "hello from python"', "GREETING = (")
    fixed = good.replace('GREETING = "hello from python"', 'GREETING = "fixed"')
    with LocalSimulator([plugin], watch=True, workdir=tmp_path / "sim") as sim:
        assert save_until(app, broken, lambda: plugin_row(sim, PY_ID)["state"] == "stale")
        failure = plugin_row(sim, PY_ID)["failure"]
        assert failure["code"] == "build_failed" and failure["origin"] == "client"
        assert "app.py:" in failure["message"] and failure["fix"]
        response = sim.get(f"/plugins/{PY_ID}/")
        assert response.json()["greeting"] == "hello from python"
        assert response.headers["x-powerx-stale"] == "build_failed; serving generation 1"
        listed = sim.powerx("host", "status").stdout
        assert f"{PY_ID} is stale: generation 1 serves code older than the last save" in listed
        row = next(line for line in listed.splitlines() if line.startswith(f" {PY_ID}"))
        assert "stale" in row and "running" not in row

        assert save_until(app, fixed, lambda: plugin_row(sim, PY_ID)["state"] == "running")
        response = sim.get(f"/plugins/{PY_ID}/")
        assert response.json()["greeting"] == "fixed"
        assert "x-powerx-stale" not in response.headers


def test_a_simulator_started_without_plugins_mounts_what_powerx_dev_pushes(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    simulator = start_simulator([])
    assert simulator.status()["plugins"] == []
    with powerx_dev(workspace, plugin) as dev:
        assert wait_for_text(simulator.get, f"/plugins/{PY_ID}/", "hello from python")
        row = next(p for p in simulator.status()["plugins"] if p["id"] == PY_ID)
        assert row["state"] == "running" and row["generation"] == 1
    out, err = simulator.stop()
    assert "no plugins yet: run `powerx dev DIR`" in out, out + err
    assert f"✓ {PY_ID}  gen 1" in dev.out, dev.out + dev.err
    assert "Traceback" not in out + err + dev.out + dev.err
