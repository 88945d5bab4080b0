"""`powerx init`: every template writes a plugin that `powerx host start --mock` serves with
no edit and whose own test passes; nothing is ever overwritten; bad choices are refused
with a code and a fix before anything is written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from powerx.scaffold import NODE_SDK_DIR, NODE_TEST, TEMPLATES
from tests.conftest import HELLO_NODE, RunningSimulator, Workspace


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_each_template_serves_at_once_and_its_own_test_passes(
    workspace: Workspace, start_simulator: Any, template: str
) -> None:
    chosen = TEMPLATES[template]
    made = workspace.powerx("init", "demo", "--template", template)
    assert made.returncode == 0, made.stderr
    folder = workspace.root / "demo"
    assert {Path(line).relative_to("demo").as_posix() for line in made.stdout.splitlines()} >= {
        "plugin.yaml",
        chosen.test_file,
        ".vscode/launch.json",
        ".gitignore",
        "README.md",
    }
    assert "powerx host start --mock demo" in made.stderr  # the next step, said
    assert f"cd demo && {chosen.test_command}" in made.stderr  # and how to test it
    workspace.login()
    simulator: RunningSimulator = start_simulator([folder])
    path = chosen.url_path.format(id="com.example.demo")
    response = simulator.get(path)
    assert response.status_code == 200, response.text
    assert response.json()["greeting"] == "hello from Demo"
    simulator.stop()
    own_test = run_own_test(folder, workspace, node=chosen.test_command == NODE_TEST)
    assert own_test.returncode == 0, own_test.stdout + own_test.stderr
    if chosen.test_command == NODE_TEST:
        assert re.search(r"\bpass 1\b", own_test.stdout), own_test.stdout
        assert re.search(r"\bfail 0\b", own_test.stdout), own_test.stdout
    else:
        assert "1 passed" in own_test.stdout


def run_own_test(
    folder: Path, workspace: Workspace, node: bool
) -> subprocess.CompletedProcess[str]:
    """The scaffold's own test, as its README says to run it: pytest, or (Node) `npm
    install` (offline: its one dependency is the DevKit's own @powerx/plugin) and `npm
    test`, with `powerx` on PATH as an installed DevKit puts it there."""
    env = workspace.env | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=folder, env=env, capture_output=True, text=True, timeout=180, check=False
        )

    if not node:
        return run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    installed = run("npm", "install", "--offline", "--no-audit", "--no-fund", "--loglevel=error")
    assert installed.returncode == 0, installed.stderr
    return run("npm", "test")


def test_init_refuses_to_overwrite_and_writes_nothing(workspace: Workspace) -> None:
    folder = workspace.root / "taken"
    folder.mkdir()
    (folder / "app.py").write_text("mine\n")
    result = workspace.powerx("init", "taken", "--template", "python")
    assert result.returncode == 1
    assert "init_would_overwrite" in result.stderr and "app.py" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["app.py"]
    assert (folder / "app.py").read_text() == "mine\n"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--template", "cobol"], "init_template_unknown"),
        (["--template", "python", "--id", "Not An Id"], "init_id_invalid"),
    ],
)
def test_bad_choices_are_refused_with_a_fix(
    workspace: Workspace, args: list[str], code: str
) -> None:
    result = workspace.powerx("init", "fresh", *args)
    assert result.returncode == 1
    assert code in result.stderr and "fix" in result.stderr.lower()
    assert not (workspace.root / "fresh").exists()


def test_id_and_name_come_from_the_folder_unless_given(workspace: Workspace) -> None:
    result = workspace.powerx("init", "My Notes", "-t", "node")
    assert result.returncode == 0, result.stderr
    manifest = (workspace.root / "My Notes" / "plugin.yaml").read_text()
    assert "id: com.example.my-notes\n" in manifest and "name: My Notes\n" in manifest
    given = workspace.powerx("init", "x", "-t", "node", "--id", "com.acme.x", "--name", "Acme X")
    assert given.returncode == 0, given.stderr
    assert "id: com.acme.x\n" in (workspace.root / "x" / "plugin.yaml").read_text()


def test_debug_vscode_write_fills_in_the_scaffolds_launch_json(
    workspace: Workspace, start_simulator: Any
) -> None:
    assert workspace.powerx("init", "demo", "-t", "python").returncode == 0
    folder = workspace.root / "demo"
    launch = folder / ".vscode" / "launch.json"
    launch.write_text(
        launch.read_text().replace(
            '"configurations": [',
            '"configurations": [\n    {"name": "mine", "type": "node", "request": "launch"},',
        )
    )
    workspace.login()
    start_simulator([folder])
    result = workspace.powerx("debug", "vscode", "com.example.demo", "--write")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == launch.resolve()
    configurations = json.loads(launch.read_text())["configurations"]
    assert [c["name"] for c in configurations] == ["mine", "PowerX: com.example.demo"]
    ours = configurations[1]
    assert ours["type"] == "debugpy" and ours["connect"]["port"] > 0


def test_the_node_template_is_typed_by_the_sdk_package_not_a_copy(workspace: Workspace) -> None:
    assert workspace.powerx("init", "demo", "-t", "node").returncode == 0
    folder = workspace.root / "demo"
    assert not list(folder.rglob("*.d.ts"))
    manifest = json.loads((folder / "package.json").read_text())
    assert manifest["devDependencies"]["@powerx/plugin"] == f"file:{NODE_SDK_DIR}"
    installed = subprocess.run(
        ["npm", "install", "--offline", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    assert tsc(folder).returncode == 0, tsc(folder).stdout
    index = folder / "src" / "index.js"
    index.write_text(index.read_text().replace("contacts.list()", "contacts.lst()"))
    checked = tsc(folder)
    assert checked.returncode == 1
    assert checked.stdout.startswith("src/index.js(") and "'lst' does not exist" in checked.stdout


def tsc(folder: Path) -> subprocess.CompletedProcess[str]:
    """The real TypeScript checker (the example's), over a plugin's tsconfig.json."""
    return subprocess.run(
        [str(HELLO_NODE / "node_modules" / ".bin" / "tsc"), "-p", ".", "--pretty", "false"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
