"""A Node plugin brings its own dependencies: package.json (and its lockfile) is installed
by npm into the plugin's node_modules, at first start and after each edit while
watching; the packages stay out of the per-reload bundle and are loaded by the warm
spare before it is given the generation.

No network: the dependency is a local package tarball (``file:...tgz``, made by `npm
pack`), which npm installs as it does one from the registry, and esbuild comes from
npm's cache (``make setup`` put it there for examples/hello-node).
"""

from __future__ import annotations

import fcntl
import json
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from powerx.bundling.node_packages import (
    INSTALL_LOCK,
    STAMP,
    NodeInstall,
    ensure_node_modules,
    find_node_declaration,
)
from powerx.testing import wait_until
from tests.conftest import HELLO_NODE, RunningSimulator, Workspace
from tests.integration.test_hot_reload import push
from tests.integration.test_plugin_dependencies import requests_meanwhile

PLUGIN = "com.test.node-deps"
ESBUILD = json.loads((Path(__file__).parents[2] / "examples/hello-node/package.json").read_text())[
    "devDependencies"
]["esbuild"]
MANIFEST = f"""id: {PLUGIN}
name: Node plugin with dependencies
version: 1.0.0
runtime: node18
entry: src/index.ts
host:
  api: "^2.3"
"""
# Counts its evaluations in its process, and says whether a generation had been given to
# the process when it was evaluated (POWERX_PLUGIN_ID comes with a spare's order): in a
# warm spare it is evaluated before the plugin's code, not by it.
COUNTED = """'use strict';
globalThis.__countedEvaluations = (globalThis.__countedEvaluations || 0) + 1;
module.exports = {
  label: LABEL,
  evaluations: () => globalThis.__countedEvaluations,
  beforeOrder: !process.env.POWERX_PLUGIN_ID,
  file: __filename,
};
"""
INDEX = """import counted from "powerx-counted";

const GREETING = "one";

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname.endsWith("/boom")) {
      throw new Error("boom in the plugin");
    }
    return Response.json({
      greeting: GREETING,
      label: counted.label,
      evaluations: counted.evaluations(),
      beforeOrder: counted.beforeOrder,
      file: counted.file,
    });
  },
};
"""
BOOM_LINE = 9  # the `throw` above, in src/index.ts


def counted_package(packages: Path, label: str, version: str = "1.0.0") -> str:
    """The package as a tarball, as the registry serves one (npm installs a copy, not a
    link to a folder); its package.json spec."""
    folder = packages / f"counted-{version}"
    folder.mkdir(parents=True)
    manifest = {"name": "powerx-counted", "version": version, "main": "index.js"}
    (folder / "package.json").write_text(json.dumps(manifest))
    (folder / "index.js").write_text(COUNTED.replace("LABEL", json.dumps(label)))
    packed = subprocess.run(
        ["npm", "pack", "--pack-destination", str(packages), "--silent"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert packed.returncode == 0, packed.stderr
    return f"file:../packages/powerx-counted-{version}.tgz"


def package_json(plugin: Path, dependencies: dict[str, str]) -> None:
    manifest = {
        "name": "node-deps",
        "private": True,
        "version": "1.0.0",
        "dependencies": dependencies,
        "devDependencies": {"esbuild": ESBUILD},
    }
    (plugin / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")


def node_plugin(tmp_path: Path, index: str = INDEX) -> Path:
    """A TypeScript plugin whose package.json names a local package (not installed yet)."""
    spec = counted_package(tmp_path / "packages", "a")
    plugin = tmp_path / "plugin"
    (plugin / "src").mkdir(parents=True)
    (plugin / "plugin.yaml").write_text(MANIFEST)
    package_json(plugin, {"powerx-counted": spec})
    (plugin / "src" / "index.ts").write_text(index)
    return plugin


def answer(simulator: RunningSimulator) -> dict[str, Any]:
    response = simulator.get(f"/plugins/{PLUGIN}/")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def set_greeting(plugin: Path, text: str) -> None:
    source = plugin / "src" / "index.ts"
    source.write_text(
        "\n".join(
            f'const GREETING = "{text}";' if line.startswith("const GREETING") else line
            for line in source.read_text().splitlines()
        )
        + "\n"
    )


def test_a_package_json_dependency_is_installed_at_first_start_and_runs(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = node_plugin(tmp_path)
    assert not (plugin / "node_modules").exists()
    simulator: RunningSimulator = start_simulator([plugin])
    body = answer(simulator)
    assert body["label"] == "a"
    # Required from the plugin's node_modules, not evaluated inside the bundle.
    assert body["file"] == str(plugin / "node_modules" / "powerx-counted" / "index.js"), body
    output = simulator.output()
    assert f"{PLUGIN}  dependencies: installing 2 packages from package.json" in output, output
    assert f"{PLUGIN}  dependencies: installed " in output
    assert (plugin / "node_modules" / STAMP).is_file()
    # npm wrote the lockfile it lacked; the stamp is of what is installed, so the next
    # start installs nothing.
    assert (plugin / "package-lock.json").is_file()
    simulator.stop()
    again: RunningSimulator = start_simulator([plugin])
    assert answer(again)["label"] == "a"
    assert "dependencies: installing" not in again.output()


def test_the_dependency_is_loaded_by_the_warm_spare_not_by_each_generation(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """Each generation is a spare process: in each of them the package was evaluated once,
    before the spare was given the generation. Bundled (as before), it was evaluated by
    the generation's own bundle, after the order (``beforeOrder`` false)."""
    workspace.login()
    workspace.env["POWERX_NODE_LAUNCH"] = "spare"
    plugin = node_plugin(tmp_path)
    simulator: RunningSimulator = start_simulator([plugin], "--watch")
    answers = [answer(simulator)]
    for number in (2, 3, 4):
        set_greeting(plugin, f"reload {number}")
        simulator.wait_generation(PLUGIN, number)
        answers.append(answer(simulator))
    assert [a["greeting"] for a in answers] == ["one", "reload 2", "reload 3", "reload 4"]
    assert all(a["evaluations"] == 1 for a in answers), answers
    # The first generation's spare was started knowing nothing of the plugin; every
    # later one loaded the package ahead.
    assert [a["beforeOrder"] for a in answers[1:]] == [True, True, True], answers
    # The spares compiled it from V8's code cache, made for them (in the sandbox) once.
    caches = list((plugin / "node_modules" / ".cache" / "powerx-code-cache").iterdir())
    assert len(caches) == 1 and len(list(caches[0].iterdir())) == 1, caches


def test_editing_package_json_while_watching_installs_and_reloads_without_a_failed_request(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = node_plugin(tmp_path)
    upgrade = counted_package(tmp_path / "packages", "b", "1.1.0")
    simulator: RunningSimulator = start_simulator([plugin], "--watch")
    assert answer(simulator)["label"] == "a"
    with requests_meanwhile(simulator, PLUGIN) as failures:
        package_json(plugin, {"powerx-counted": upgrade})
        simulator.wait_plugin(
            PLUGIN, lambda s: s["generation"] >= 2, "the reload after the install", 120
        )
    assert failures == []
    # The new copy, not the one a spare loaded from the old install.
    body = answer(simulator)
    assert body["label"] == "b", body
    output = simulator.output()
    assert f"… {PLUGIN}  dependencies: installing" in output, output
    # The install is a phase of the reload's own, not hidden in its build.
    reload_line = wait_until(  # reported once the push has returned
        lambda: next((x for x in simulator.output().splitlines() if f"{PLUGIN}  gen 2 " in x), ""),
        what="the reload's line",
    )
    phases = re.search(r"\(install (\d+) · build (\d+) · upload", reload_line)
    assert phases is not None, reload_line
    assert int(phases[1]) > int(phases[2]), reload_line  # npm, not the bundle, took the time


def test_a_failed_install_keeps_the_old_generation_serving_with_npms_message(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = node_plugin(tmp_path)
    simulator: RunningSimulator = start_simulator([plugin], "--watch")
    assert answer(simulator)["label"] == "a"
    package_json(plugin, {"powerx-counted": "file:../packages/not-there.tgz"})
    status = simulator.wait_plugin(
        PLUGIN, lambda s: s["state"] == "stale", "a failed install", timeout_s=120
    )
    failure = status["failure"]
    assert failure["code"] == "dependencies_failed", failure
    assert "not-there" in failure["message"], failure  # npm's own words
    assert "package.json" in failure["fix"] and "keeps serving" in failure["fix"]
    assert status["generation"] == 1
    response = simulator.get(f"/plugins/{PLUGIN}/")
    assert response.status_code == 200
    assert response.json()["label"] == "a"
    assert response.headers["x-powerx-stale"] == "dependencies_failed; serving generation 1"


@pytest.mark.parametrize("bundled", [True, False])
def test_an_import_of_an_undeclared_package_says_to_add_it_to_package_json(
    workspace: Workspace, tmp_path: Path, bundled: bool
) -> None:
    """Bundled, esbuild cannot resolve it; plain JavaScript, node cannot find it at load.
    Either way the fix is package.json, not "fix the code at that line"."""
    workspace.login()
    plugin = node_plugin(tmp_path)
    if bundled:
        index = 'import leftPad from "left-pad";\n' + INDEX.replace(
            "label:", "pad: leftPad,\nlabel:"
        )
        (plugin / "src" / "index.ts").write_text(index)
    else:
        (plugin / "plugin.yaml").write_text(MANIFEST.replace("src/index.ts", "src/index.js"))
        (plugin / "src" / "index.ts").unlink()
        (plugin / "src" / "index.js").write_text(
            "const leftPad = require('left-pad');\n"
            "module.exports = { fetch: async () => new Response(leftPad('x', 3)) };\n"
        )
    result = workspace.powerx("host", "start", "--mock", "--port", "0", str(plugin))
    assert result.returncode == 1, result.stdout
    assert "[module_not_found]" in result.stderr, result.stderr
    assert "imports 'left-pad'" in result.stderr
    assert "it is not in the plugin's package.json" in result.stderr
    assert "add left-pad to package.json dependencies" in result.stderr
    if bundled:  # esbuild says where; plain JavaScript runs from the artefact
        assert "src/index.ts:1 imports" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_plugin_error_maps_to_its_typescript_line_beside_an_external_dependency(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = node_plugin(tmp_path)
    simulator: RunningSimulator = start_simulator([plugin])
    assert answer(simulator)["label"] == "a"
    assert simulator.get(f"/plugins/{PLUGIN}/boom").status_code == 500
    mapped = f"src/index.ts:{BOOM_LINE}:"
    assert wait_until(lambda: mapped in simulator.output()), simulator.output()
    assert "boom in the plugin" in simulator.output()
    # And a crash at load names the line too, with the package still outside the bundle.
    source = plugin / "src" / "index.ts"
    lines = source.read_text().splitlines()
    source.write_text("\n".join([*lines[:3], 'throw new Error("load boom");', *lines[3:]]) + "\n")
    response = push(simulator, plugin)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "plugin_start_failed"
    assert (body["file"], body["line"]) == ("src/index.ts", 4)


def test_doctor_names_each_package_the_plugin_imports_but_package_json_does_not_give(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.login()
    plugin = node_plugin(tmp_path)  # powerx-counted: declared, not installed yet
    index = (
        'import type { Handler } from "typed-only";\n'  # erased by the build: not checked
        'import leftPad from "left-pad/index";\n' + INDEX
    )
    (plugin / "src" / "index.ts").write_text(index)
    result = workspace.powerx("doctor", "--json", str(plugin))
    assert result.returncode == 1, result.stdout
    checks = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    check = next(c for c in checks if c["name"] == f"plugin {plugin}")
    assert check["status"] == "fail"
    problems = {p["where"]: p for p in check["problems"]}
    assert set(problems) == {"src/index.ts:2", "src/index.ts:3"}, problems
    assert problems["src/index.ts:2"]["message"] == (
        "src/index.ts:2 imports 'left-pad', which is not in package.json"
    )
    assert "add left-pad to package.json dependencies" in problems["src/index.ts:2"]["fix"]
    assert "in package.json, but not installed" in problems["src/index.ts:3"]["message"]
    assert "npm install" in problems["src/index.ts:3"]["fix"]
    # The example: its only import (@powerx/plugin, types) is declared and installed.
    example = workspace.powerx("doctor", "--json", str(HELLO_NODE)).stdout
    found = [json.loads(line) for line in example.splitlines() if line.startswith("{")]
    check = next(c for c in found if c["name"] == f"plugin {HELLO_NODE}")
    assert check["status"] in ("ok", "warn") and not check.get("problems"), check


BACKEND = "com.test.node-backend-deps"
BACKEND_SERVER = """const http = require("node:http");
const counted = require("powerx-counted");

http
  .createServer((request, response) => {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ label: counted.label, file: counted.file }));
  })
  .listen(Number(process.env.PORT), "127.0.0.1");
"""


@pytest.mark.parametrize("sandbox", ["auto", "off"])
def test_a_backend_programs_package_json_is_installed_and_its_require_finds_it(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, sandbox: str
) -> None:
    """A program on PORT gets its package.json installed as a handler does; it runs from
    the artefact, and require() finds the packages in the plugin's node_modules."""
    workspace.env["POWERX_SANDBOX"] = sandbox
    workspace.login()
    spec = counted_package(tmp_path / "packages", "backend")
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "plugin.yaml").write_text(
        f"id: {BACKEND}\nname: Node backend with dependencies\nversion: 1.0.0\n"
        "backend:\n  entry: node server.js\n  health: /healthz\n"
    )
    (plugin / "package.json").write_text(
        json.dumps(
            {"name": "backend-deps", "private": True, "dependencies": {"powerx-counted": spec}}
        )
    )
    (plugin / "server.js").write_text(BACKEND_SERVER)
    simulator: RunningSimulator = start_simulator([plugin])
    response = simulator.get(f"/_p/{BACKEND}/api/v1/hello")
    assert response.status_code == 200, simulator.output()
    assert response.json() == {
        "label": "backend",
        "file": str(plugin / "node_modules" / "powerx-counted" / "index.js"),
    }
    assert f"{BACKEND}  dependencies: installing 1 package from package.json" in simulator.output()


def test_two_installs_in_one_folder_run_npm_one_at_a_time(tmp_path: Path) -> None:
    """Two simulators on one folder (or a rebuild while an install runs): the second
    waits for the first's npm, then finds its stamp current and runs none of its own."""
    spec = counted_package(tmp_path / "packages", "locked")
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "package.json").write_text(
        json.dumps({"name": "locked", "private": True, "dependencies": {"powerx-counted": spec}})
    )
    declaration = find_node_declaration(plugin)
    assert declaration is not None
    lines: list[str] = []
    installs: list[NodeInstall] = []

    def install() -> None:
        installs.append(ensure_node_modules(declaration, lines.append))

    (plugin / ".powerx").mkdir()
    with open(plugin / ".powerx" / INSTALL_LOCK, "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # an npm run of another powerx, under way
        threads = [threading.Thread(target=install) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_until(lambda: sum("waiting for the npm run" in line for line in lines) == 2)
        assert not any("installing" in line for line in lines)
        fcntl.flock(held, fcntl.LOCK_UN)
    for thread in threads:
        thread.join(120)
    assert sorted(i.installed for i in installs) == [False, True], lines
    assert sum(line.startswith("installing 1 package") for line in lines) == 1, lines
    assert (plugin / "node_modules" / "powerx-counted" / "index.js").is_file()
