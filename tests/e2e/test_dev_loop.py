"""`powerx dev` and `host start --watch` as a developer runs them: real files, real saves."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from powerx.testing import LocalSimulator, SimulatorProcess, wait_until
from tests.conftest import (
    HELLO_NODE,
    HELLO_PYTHON,
    PYTHON_APP,
    RunningSimulator,
    Workspace,
    python_manifest,
    write_plugin,
)

PY_ID = "com.example.hello-python"
NODE_ID = "com.example.hello-node"


def replace_line(path: Path, prefix: str, new: str) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(new if x.startswith(prefix) else x for x in lines) + "\n")


def wait_for_text(
    get: Callable[[str], httpx.Response], path: str, text: str, timeout_s: float = 15
) -> httpx.Response | None:
    """The first response of ``path`` that says ``text`` (None after ``timeout_s``)."""

    def answered() -> httpx.Response | None:
        response = get(path)
        return response if response.status_code == 200 and text in response.text else None

    return wait_until(answered, timeout_s, what=f"{path} to say {text!r}")


def wait_for_output(sim: SimulatorProcess, text: str, timeout_s: float = 5) -> None:
    wait_until(sim.output, timeout_s, accept=lambda output: text in output, what=repr(text))


def reload_lines(output: str) -> list[str]:
    """The lines of reloads that replaced what serves (``✓ <plugin>  gen N ...``)."""
    return [line for line in output.splitlines() if line.startswith("✓") and "  gen " in line]


def line_of(sim: SimulatorProcess, response: httpx.Response | None) -> str:
    """The reload line of the generation that gave ``response`` (printed once its push
    returns, which may be just after the generation's first answer)."""
    assert response is not None, sim.output()
    marker = f"  gen {response.headers['x-powerx-generation']}  "
    wait_for_output(sim, marker)
    return next(line for line in reload_lines(sim.output()) if marker in line)


def changed_files(line: str) -> set[str]:
    """The files a reload line names (after its phases)."""
    return set(line.rsplit(")  ", 1)[1].split(", "))


@dataclass
class DevRun:
    """A `powerx dev` process; its output once it has stopped."""

    process: subprocess.Popen[str]
    out: str = ""
    err: str = ""


@contextlib.contextmanager
def powerx_dev(
    workspace: Workspace, simulator: RunningSimulator, plugin: Path, plugin_id: str, *args: str
) -> Iterator[DevRun]:
    """`powerx dev PLUGIN ARGS` against the running simulator, from the moment its watcher
    is armed (it tells the simulator) until it is stopped (SIGTERM)."""
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
        simulator.wait_armed(plugin_id)
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
    simulator: RunningSimulator = start_simulator([plugin])
    with powerx_dev(workspace, simulator, plugin, PY_ID, *(["--poll"] if poll else [])) as dev:
        source = plugin / "app.py"
        replace_line(source, "GREETING =", 'GREETING = "first save"')
        assert wait_for_text(simulator.get, f"/plugins/{PY_ID}/", "first save")
        # Two saves a moment apart, same size: both must be seen (the last one wins).
        replace_line(source, "GREETING =", 'GREETING = "save two A"')
        assert wait_for_text(simulator.get, f"/plugins/{PY_ID}/", "save two A")
        replace_line(source, "GREETING =", 'GREETING = "save two B"')
        assert wait_for_text(simulator.get, f"/plugins/{PY_ID}/", "save two B")
        replace_line(source, "GREETING =", "GREETING = (")
        # The dev loop reports the failed build (nothing was uploaded): that is the end of
        # this save, so what serves now is what keeps serving.
        wait_until(lambda: build_failures(simulator), accept=lambda n: n == 1, what="1 failure")
        assert simulator.get(f"/plugins/{PY_ID}/").json()["greeting"] == "save two B"
    # Stopped, `powerx dev` tells the simulator it no longer watches.
    assert not simulator.plugin_status(PY_ID)["watch"]["armed"]
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


def build_failures(simulator: RunningSimulator) -> int:
    summary = simulator.get("/internal/debug/telemetry/summary", headers=simulator.debug_headers())
    return int(summary.json()["failures_by_reason"].get("build_failed", 0))


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
        replace_line(plugin / "src/index.ts", "const GREETING", 'const GREETING = "watched";')
        assert wait_for_text(sim.get, f"/plugins/{NODE_ID}/", "watched")
        # The line is printed when the push returns, just after the flip; a request can win.
        wait_for_output(sim, "gen 2")


def test_a_burst_of_saves_coalesces_and_the_last_edit_wins(tmp_path: Path) -> None:
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    with LocalSimulator([plugin], watch=True, workdir=tmp_path / "sim") as sim:
        for number in range(20):
            replace_line(plugin / "app.py", "GREETING =", f'GREETING = "burst {number}"')
            time.sleep(0.005)  # the workload: a burst of saves 5 ms apart
        line_of(sim, wait_for_text(sim.get, f"/plugins/{PY_ID}/", "burst 19"))
        reloads = reload_lines(sim.output())
    assert 1 <= len(reloads) < 20


GATED_BUILD = """\
// Joins src/a.js and src/b.js into dist/index.js, once the test lets it finish (the gate
// file exists): saves land while it waits. Each build notes what it read (the read log).
const fs = require('node:fs');
const [a, b] = ['a', 'b'].map((name) => fs.readFileSync(`src/${name}.js`, 'utf8').trim());
fs.appendFileSync(READ_LOG, `${a}+${b}\\n`.replaceAll('"', ''));
const finish = () => {
  if (!fs.existsSync(GATE)) return setTimeout(finish, 2);
  fs.mkdirSync('dist', { recursive: true });
  fs.writeFileSync('dist/index.js', `const parts = [${a}, ${b}];
module.exports = { fetch: async () => new Response(parts.join('+')) };
`);
};
finish();
"""


@dataclass
class TwoFilePlugin:
    """A Node plugin built from src/a.js and src/b.js by a build the test holds open."""

    root: Path
    gate: Path  # while it is missing, a build waits
    read_log: Path  # what each build read, a line each

    def hold_builds(self) -> None:
        self.gate.unlink()

    def let_builds_finish(self) -> None:
        self.gate.touch()

    def builds_read(self) -> list[str]:
        return self.read_log.read_text().splitlines() if self.read_log.exists() else []


def two_file_plugin(root: Path) -> TwoFilePlugin:
    plugin = TwoFilePlugin(root, root.parent / "build-gate", root.parent / "builds-read")
    plugin.let_builds_finish()
    (root / "src").mkdir(parents=True)
    (root / "src/a.js").write_text('"a0"\n')
    (root / "src/b.js").write_text('"b0"\n')
    build = GATED_BUILD.replace("READ_LOG", repr(str(plugin.read_log))).replace(
        "GATE", repr(str(plugin.gate))
    )
    (root / "build.js").write_text(build)
    (root / "powerx.plugin.yaml").write_text(
        "id: com.example.two-files\nname: Two files\nversion: 1.0.0\nruntime: node18\n"
        "entry: src/a.js\nbuild:\n  command: node build.js\n  output: dist/index.js\n"
        'host:\n  api: "^2.3"\n'
    )
    return plugin


TWO_FILES_ID = "com.example.two-files"


def test_a_save_that_lands_during_a_build_drops_that_build(tmp_path: Path) -> None:
    """Two files saved one after the other, the second while the first one's build runs:
    one reload, serving both edits; the half-saved state is never pushed."""
    plugin = two_file_plugin(tmp_path / "two-files")
    with LocalSimulator([plugin.root], watch=True, workdir=tmp_path / "sim") as sim:
        assert sim.get(f"/plugins/{TWO_FILES_ID}/").text == "a0+b0"
        plugin.hold_builds()
        (plugin.root / "src/a.js").write_text('"a1"\n')
        wait_until(plugin.builds_read, accept=lambda b: b[-1:] == ["a1+b0"], what="build a1+b0")
        (plugin.root / "src/b.js").write_text('"b1"\n')
        # The dev loop has seen the second save while the first build waits.
        sim.wait_pending(TWO_FILES_ID, ["src/a.js", "src/b.js"])
        plugin.let_builds_finish()
        assert wait_for_text(sim.get, f"/plugins/{TWO_FILES_ID}/", "a1+b1")
        # A fence: events reach the dev loop in the order the files were written, so once
        # this later save has reloaded, a late reload of the first two would have, too.
        (plugin.root / "src/b.js").write_text('"b2"\n')
        line_of(sim, wait_for_text(sim.get, f"/plugins/{TWO_FILES_ID}/", "a1+b2"))
        reloads = reload_lines(sim.output())
    assert len(reloads) == 2, sim.output()
    assert "  gen 2  " in reloads[0] and changed_files(reloads[0]) == {"src/a.js", "src/b.js"}
    assert "  gen 3  " in reloads[1] and changed_files(reloads[1]) == {"src/b.js"}
    assert "a1+b0" in plugin.builds_read()  # it was built, and dropped


@pytest.mark.parametrize("where", ["in the simulator", "powerx dev"])
def test_a_request_made_while_the_save_builds_gets_the_saved_code(
    tmp_path: Path, workspace: Workspace, start_simulator: Any, where: str
) -> None:
    """The dev loop tells the simulator a reload is coming as soon as it sees the save, so
    a request sent while it builds waits for the new generation. In the simulator's
    process (`host start --watch`) that note is a call; from `powerx dev`, an HTTP
    request."""
    plugin = two_file_plugin(tmp_path / "two-files")
    with contextlib.ExitStack() as running:
        sim: SimulatorProcess
        if where == "powerx dev":
            workspace.login()
            sim = start_simulator([plugin.root])
            running.enter_context(powerx_dev(workspace, sim, plugin.root, TWO_FILES_ID))
        else:
            sim = running.enter_context(
                LocalSimulator([plugin.root], watch=True, workdir=tmp_path / "sim")
            )
        assert sim.get(f"/plugins/{TWO_FILES_ID}/").text == "a0+b0"
        plugin.hold_builds()
        (plugin.root / "src/a.js").write_text('"a1"\n')
        sim.wait_pending(TWO_FILES_ID, ["src/a.js"])  # seen, and building
        answers: list[httpx.Response] = []
        request = threading.Thread(
            target=lambda: answers.append(sim.get(f"/plugins/{TWO_FILES_ID}/"))
        )
        request.start()
        sim.wait_held(TWO_FILES_ID)
        plugin.let_builds_finish()
        request.join(30)
    assert answers and answers[0].status_code == 200
    assert answers[0].text == "a1+b0"
    assert int(answers[0].headers["x-powerx-held-ms"]) > 0


def test_a_failed_build_lets_held_requests_go_at_once(tmp_path: Path) -> None:
    """A save that does not build ends the hold when the build fails, not 3 s later."""
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    with LocalSimulator([plugin], watch=True, workdir=tmp_path / "sim") as sim:
        replace_line(plugin / "app.py", "GREETING =", "GREETING = (")
        wait_for_output(sim, "build_failed", timeout_s=10)
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
    manifest = plugin / "plugin.yaml"
    good = manifest.read_text()
    with LocalSimulator(
        [plugin], watch=True, workdir=tmp_path / "sim", extra_args=["--config", str(config)]
    ) as sim:
        for number in range(2):
            manifest.write_text(good.replace('">=2.3 <3"', f'">=3.{number}"'))
            wait_until(
                sim.output,
                timeout_s=15,
                accept=lambda output, n=number: output.count("version_mismatch") > n,
                what=f"version_mismatch {number + 1} time(s)",
            )
        wait_for_output(sim, "⚠ alert", timeout_s=15)
        assert "2 version mismatches" in sim.output()
        # The alert clears once the 3 s window has passed; the next reload tells the developer.
        wait_until(lambda: alerts(sim), timeout_s=15, accept=lambda a: not a, what="no alert")
        manifest.write_text(good)
        replace_line(plugin / "app.py", "GREETING =", 'GREETING = "back in range"')
        assert wait_for_text(sim.get, f"/plugins/{PY_ID}/", "back in range")
        wait_for_output(sim, "alert cleared", timeout_s=15)


def alerts(sim: SimulatorProcess) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = sim.get(
        "/internal/debug/alerts", headers=sim.debug_headers()
    ).json()["alerts"]
    return found


@pytest.mark.parametrize("poll", [False, True], ids=["native", "poll"])
def test_a_python_subfolder_created_while_watching_is_watched(tmp_path: Path, poll: bool) -> None:
    """A folder made at the plugin's root after the start (lib/) is watched from then on,
    and the start line is said again with it."""
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    extra = ["--poll"] if poll else []
    with LocalSimulator([plugin], watch=True, workdir=tmp_path / "sim", extra_args=extra) as sim:
        assert "and no subfolders" in sim.output()
        (plugin / "lib").mkdir()
        (plugin / "lib/mathx.py").write_text('WORD = "from lib one"\n')
        app = plugin / "app.py"
        app.write_text(
            app.read_text().replace(
                'GREETING = "hello from python"',
                "from lib.mathx import WORD\n\nGREETING = WORD",
            )
        )
        assert wait_for_text(sim.get, f"/plugins/{PY_ID}/", "from lib one")
        sim.wait_armed(PY_ID, folder="lib")
        (plugin / "lib/mathx.py").write_text('WORD = "from lib two"\n')
        served = wait_for_text(sim.get, f"/plugins/{PY_ID}/", "from lib two")
        assert changed_files(line_of(sim, served)) == {"lib/mathx.py"}
        assert f"watching {plugin} and lib/" in sim.output()


def test_editor_temp_files_are_not_saves(tmp_path: Path) -> None:
    """What vim, Emacs and `sed -i` write beside a file is never named on a reload line
    and never reloads on its own."""
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    with LocalSimulator([plugin], watch=True, workdir=tmp_path / "sim") as sim:
        for name in (".app.py.swp", ".app.py.swo", ".app.py.swx", "app.py~", ".#app.py"):
            (plugin / name).write_text("scratch\n")
        (plugin / "4913").write_text("")  # vim's probe: may it write here?
        (plugin / "4913").unlink()
        (plugin / "sedAb12Cd").write_text("scratch\n")
        # A real save (by sed, which writes a sedXXXXXX file and renames it over app.py)
        # is the fence: the scratch files were written first, so their events came first;
        # had any of them reloaded, its line would be before this save's, or name it.
        subprocess.run(
            ["sed", "-i", "s/hello from python/edited by sed/", str(plugin / "app.py")],
            check=True,
        )
        served = wait_for_text(sim.get, f"/plugins/{PY_ID}/", "edited by sed")
        line = line_of(sim, served)
        reloads = reload_lines(sim.output())
    assert reloads == [line], sim.output()
    assert changed_files(line) == {"app.py"}


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
        assert "com.test.bad not mounted: module_not_found" in started, started
        assert "module 'notinstalled' is not installed" in started
        assert "fix the error at that line" not in started
        assert sim.get(f"/plugins/{PY_ID}/").status_code == 200
        refused = sim.get("/plugins/com.test.bad/")
        assert refused.status_code == 503
        assert "notinstalled" in refused.json()["message"]
        row = sim.plugin_status("com.test.bad")
        assert row["state"] == "failed" and row["failure"]["code"] == "module_not_found"
        listed = sim.powerx("host", "status")
        assert "com.test.bad is not serving: it never started" in listed.stdout, listed.stderr

        (bad / "app.py").write_text(PYTHON_APP)  # the watchers were armed before `with`
        wait_until(
            lambda: sim.get("/plugins/com.test.bad/").status_code == 200,
            timeout_s=30,
            what="com.test.bad to serve",
        )
        assert sim.get("/plugins/com.test.bad/").json() == {"ok": True}
        assert sim.plugin_status("com.test.bad")["state"] == "running"
        assert sim.plugin_status(PY_ID)["state"] == "running"
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
        app.write_text(broken)  # the watcher was armed before `with`
        sim.wait_plugin(PY_ID, lambda row: row["state"] == "stale", "stale", 30)
        failure = sim.plugin_status(PY_ID)["failure"]
        assert failure["code"] == "build_failed" and failure["origin"] == "client"
        assert "app.py:" in failure["message"] and failure["fix"]
        response = sim.get(f"/plugins/{PY_ID}/")
        assert response.json()["greeting"] == "hello from python"
        assert response.headers["x-powerx-stale"] == "build_failed; serving generation 1"
        listed = sim.powerx("host", "status").stdout
        assert f"{PY_ID} is stale: generation 1 serves code older than the last save" in listed
        row = next(line for line in listed.splitlines() if line.startswith(f" {PY_ID}"))
        assert "stale" in row and "running" not in row

        app.write_text(fixed)
        sim.wait_plugin(PY_ID, lambda row: row["state"] == "running", "running again", 30)
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
    with powerx_dev(workspace, simulator, plugin, PY_ID) as dev:
        assert wait_for_text(simulator.get, f"/plugins/{PY_ID}/", "hello from python")
        row = next(p for p in simulator.status()["plugins"] if p["id"] == PY_ID)
        assert row["state"] == "running" and row["generation"] == 1
    out, err = simulator.stop()
    assert "no plugins yet: run `powerx dev DIR`" in out, out + err
    assert f"✓ {PY_ID}  gen 1" in dev.out, dev.out + dev.err
    assert "Traceback" not in out + err + dev.out + dev.err
