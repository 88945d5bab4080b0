"""The advice a developer gets when something is wrong: each bad manifest field listed
with its fix (in `powerx doctor` and the watch loop), and a missing module named with
how to provide it (at start and in `powerx doctor`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from powerx.testing import wait_until
from tests.conftest import (
    HELLO_PYTHON,
    PYTHON_APP,
    RunningSimulator,
    Workspace,
    python_manifest,
    write_plugin,
)

PY_ID = "com.example.hello-python"
VERSION_FIX = "use a SemVer version such as '1.0.0'"


def doctor_json(workspace: Workspace, plugin: Path) -> list[dict[str, Any]]:
    """`powerx doctor --json`: one check per line."""
    out = workspace.powerx("doctor", "--json", str(plugin)).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def lines_after(text: str, marker: str) -> str:
    """The output from the line holding ``marker`` on: a list the marker announces
    ('listed below') has to come after it."""
    assert marker in text, text
    return text[text.index(marker) :]


def test_doctor_lists_each_bad_manifest_field_with_its_fix(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.login()
    manifest = python_manifest().replace("version: 1.0.0", "version: banana")
    manifest = manifest.replace("runtime: python3.11", "runtime: ruby3")
    plugin = write_plugin(tmp_path / "bad", manifest, {"app.py": PYTHON_APP})
    result = workspace.powerx("doctor", str(plugin))
    assert result.returncode == 1
    listed = lines_after(result.stdout, "fix each field listed below")
    assert "version: bad value 'banana'" in listed
    assert VERSION_FIX in listed
    assert "runtime: bad value 'ruby3'" in listed and "set runtime to one of" in listed
    as_json = doctor_json(workspace, plugin)
    check = next(c for c in as_json if c["name"] == f"plugin {plugin}")
    assert {"where": "version", "fix": VERSION_FIX}.items() <= check["problems"][0].items()


def start_dev(workspace: Workspace, plugin: Path, output: IO[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "powerx.cli.main", "dev", str(plugin)],
        cwd=workspace.root,
        env=workspace.env,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_the_watch_loop_lists_each_bad_manifest_field_with_its_fix(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    simulator: RunningSimulator = start_simulator([plugin])
    manifest = plugin / "plugin.yaml"
    broken = manifest.read_text().replace("version: 1.0.0", "version: banana")
    dev_output = tmp_path / "dev.out"
    with dev_output.open("w") as output:
        dev = start_dev(workspace, plugin, output)
    try:
        # The first push (of the code already serving) before the manifest breaks.
        wait_until(dev_output.read_text, 30, accept=lambda t: f"{PY_ID}  " in t, what=PY_ID)
        simulator.wait_armed(PY_ID)
        manifest.write_text(broken)
        wait_until(
            dev_output.read_text, 30, accept=lambda t: "manifest_invalid" in t, what="the error"
        )
        wait_until(dev_output.read_text, accept=lambda t: VERSION_FIX in t, what="the fix")
    finally:
        dev.terminate()
        dev.wait(timeout=20)
    out = dev_output.read_text()
    listed = lines_after(out, "fix each field listed below")
    assert "version: bad value 'banana'" in listed
    assert "keeps serving" in out
    assert "Traceback" not in out


def start(workspace: Workspace, plugin: Path) -> subprocess.CompletedProcess[str]:
    return workspace.powerx("host", "start", "--mock", "--port", "0", str(plugin))


MISSING_IMPORT_APP = "import os\n\nimport notinstalled_pkg_xyz\n" + PYTHON_APP


def test_a_missing_third_party_module_is_named_with_how_to_install_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "p", python_manifest(), {"app.py": MISSING_IMPORT_APP})
    result = start(workspace, plugin)
    assert result.returncode == 1
    assert "[module_not_found]" in result.stderr, result.stderr
    assert "`import notinstalled_pkg_xyz` in app.py:3" in result.stderr
    assert "module 'notinstalled_pkg_xyz' is not installed" in result.stderr
    assert "add notinstalled_pkg_xyz to requirements.txt" in result.stderr
    assert "fix the error at that line" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_misspelt_own_module_is_not_told_to_pip_install(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.login()
    app = "from helpres import GREETING\n" + PYTHON_APP
    files = {"app.py": app, "helpers.py": "GREETING = 'hi'\n"}
    plugin = write_plugin(tmp_path / "p", python_manifest(), files)
    result = start(workspace, plugin)
    assert result.returncode == 1
    assert "[module_not_found]" in result.stderr, result.stderr
    assert "app.py:1" in result.stderr
    assert "add helpres" not in result.stderr  # not a package to declare
    assert "did you mean 'helpers'" in result.stderr and "helpers.py" in result.stderr


def test_doctor_names_each_import_that_is_not_installed(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.login()
    app = (
        "from . import nothing_relative\n"  # relative: the plugin's own, skipped
        "import helpers\n"  # the plugin's own module
        "import json, notinstalled_pkg_xyz\n" + PYTHON_APP
    )
    helpers = "import starlette\nfrom notinstalled_other_xyz.sub import thing\n"
    files = {"app.py": app, "helpers.py": helpers, "tests/test_app.py": "import not_run_xyz\n"}
    plugin = write_plugin(tmp_path / "p", python_manifest(), files)
    # As typed in a terminal: relative to where doctor runs (uv runs in the plugin folder).
    result = workspace.powerx("doctor", os.path.relpath(plugin, workspace.root))
    assert result.returncode == 1, result.stdout
    assert "fits" not in result.stdout
    checks = doctor_json(workspace, plugin)
    check = next(c for c in checks if c["name"] == f"plugin {plugin}")
    assert check["status"] == "fail"
    problems = {p["where"]: p for p in check["problems"]}
    assert set(problems) == {"app.py:3", "helpers.py:2"}, problems  # not tests/: never run
    assert problems["app.py:3"]["message"] == (
        "`import json, notinstalled_pkg_xyz` in app.py:3: "
        "module 'notinstalled_pkg_xyz' is not installed"
    )
    assert "add notinstalled_pkg_xyz to requirements.txt" in problems["app.py:3"]["fix"]
    assert "'notinstalled_other_xyz' is not installed" in problems["helpers.py:2"]["message"]


def test_doctor_still_says_an_example_fits(workspace: Workspace) -> None:
    workspace.login()
    result = workspace.powerx("doctor", str(HELLO_PYTHON))
    assert result.returncode == 0, result.stdout
    assert f"{PY_ID} 1.0.0 (python3.11) fits" in result.stdout


def test_doctor_checks_imports_against_the_plugins_own_environment(
    workspace: Workspace, tmp_path: Path
) -> None:
    """six is declared (and installed for the check); rich is the DevKit's, not declared."""
    workspace.login()
    app = "import six\nimport rich\n" + PYTHON_APP
    files = {"app.py": app, "requirements.txt": "six\nstarlette\n"}
    plugin = write_plugin(tmp_path / "p", python_manifest(), files)
    # As typed in a terminal: relative to where doctor runs (uv runs in the plugin folder).
    result = workspace.powerx("doctor", os.path.relpath(plugin, workspace.root))
    assert result.returncode == 1, result.stdout
    assert "dependencies: installing" in result.stderr, result.stderr  # its progress
    checks = {c["name"]: c for c in doctor_json(workspace, plugin)}
    installed = checks[f"dependencies {plugin}"]
    assert installed["status"] == "ok" and "from requirements.txt" in installed["detail"]
    problems = checks[f"plugin {plugin}"]["problems"]
    assert [p["where"] for p in problems] == ["app.py:2"], problems
    assert "module 'rich' is not declared in its requirements.txt" in problems[0]["message"]
    assert problems[0]["fix"].startswith("add rich to requirements.txt")


def test_doctor_says_where_an_undeclared_plugins_toolkit_comes_from(
    workspace: Workspace,
) -> None:
    workspace.login()
    checks = {c["name"]: c for c in doctor_json(workspace, HELLO_PYTHON)}
    toolkit = checks[f"dependencies {HELLO_PYTHON}"]
    assert toolkit["status"] == "warn"
    assert "imports starlette from the DevKit's own copy" in toolkit["detail"]
    assert toolkit["fix"] == "add starlette to a requirements.txt beside the manifest"
