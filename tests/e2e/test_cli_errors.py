"""Bad input through the real CLI: a clear code, message and fix; never a traceback."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    HELLO_NODE,
    HELLO_PYTHON,
    PYTHON_APP,
    Workspace,
    python_manifest,
    write_plugin,
)


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"[{code}]" in result.stderr, result.stderr
    assert "fix:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def start(
    workspace: Workspace, *paths: Path | str, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return workspace.powerx("host", "start", "--mock", "--port", "0", *extra, *map(str, paths))


@pytest.mark.parametrize(
    "api",
    [
        ">=3 <4",
        ">=3.0, <4",
        "^3.0",
        "~2.2",
        "2.2",
        "=3.0",
        "==2.2",
        "3.x",
        "<2.4",
        ">2.4",
        "2.2 || >=3",
    ],
)
def test_every_range_form_that_excludes_the_image_is_refused(
    workspace: Workspace, tmp_path: Path, api: str
) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "p", python_manifest(api=api), {"app.py": PYTHON_APP})
    result = start(workspace, plugin)
    assert_clean_failure(result, "version_mismatch")
    assert api in result.stderr  # the plugin's range
    assert "2.4" in result.stderr  # the image's API version
    assert not (workspace.state_dir / "host.json").exists()


@pytest.mark.parametrize("api", [">=2.3 <3", "^2.3", "~2.4", "2.4", "2.x", "*", "2.2 || 2.4"])
def test_ranges_that_admit_the_image_pass_doctor(
    workspace: Workspace, tmp_path: Path, api: str
) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "p", python_manifest(api=api), {"app.py": PYTHON_APP})
    result = workspace.powerx("doctor", str(plugin))
    assert result.returncode == 0, result.stdout


def test_mismatch_fix_names_the_image_that_fits(workspace: Workspace, tmp_path: Path) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "p", python_manifest(api="^3.0"), {"app.py": PYTHON_APP})
    result = start(workspace, plugin)
    assert "powerx/host-simulator:3.0.0" in result.stderr
    ok = start(workspace, plugin, extra=("--image", "9.9.9"))
    assert_clean_failure(ok, "config_invalid")


def test_invalid_manifest_lists_every_bad_field(workspace: Workspace, tmp_path: Path) -> None:
    workspace.login()
    manifest = (
        "id: NotReverseDns\nname: x\nversion: '1.0'\nruntime: ruby3\nentry: app.py\n"
        "host:\n  api: 'soon'\npermissions: [contacts]\npermisions: []\n"
    )
    plugin = write_plugin(tmp_path / "bad", manifest, {"app.py": PYTHON_APP})
    result = start(workspace, plugin)
    assert_clean_failure(result, "manifest_invalid")
    for field in ("id", "version", "runtime", "host.api", "permissions"):
        assert f"{field}: bad value" in result.stderr, field
    assert "'ruby3'" in result.stderr and "unknown runtime" in result.stderr
    assert "did you mean 'permissions'?" in result.stderr


def test_broken_yaml_names_the_line(workspace: Workspace, tmp_path: Path) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "yaml", "id: com.x.y\nname: [unclosed\nversion: 1.0.0\n", {})
    result = start(workspace, plugin)
    assert_clean_failure(result, "manifest_yaml")
    assert "powerx.plugin.yaml:" in result.stderr


def test_missing_entry_file_is_reported(workspace: Workspace, tmp_path: Path) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "noentry", python_manifest(entry="main.py:app"), {})
    result = start(workspace, plugin)
    assert_clean_failure(result, "manifest_invalid")
    assert "main.py does not exist" in result.stderr


def test_folder_without_manifest_is_reported(workspace: Workspace, tmp_path: Path) -> None:
    workspace.login()
    (tmp_path / "empty").mkdir()
    assert_clean_failure(start(workspace, tmp_path / "empty"), "manifest_missing")
    assert_clean_failure(start(workspace, tmp_path / "absent"), "plugin_not_found")


def test_several_broken_plugins_are_reported_together(workspace: Workspace, tmp_path: Path) -> None:
    workspace.login()
    one = write_plugin(
        tmp_path / "one", python_manifest("com.t.one", api="^3"), {"app.py": PYTHON_APP}
    )
    two = write_plugin(tmp_path / "two", python_manifest("com.t.two", entry="gone.py"), {})
    result = start(workspace, one, two)
    assert_clean_failure(result, "plugins_invalid")
    assert "version_mismatch" in result.stderr and "manifest_invalid" in result.stderr


def test_permission_unknown_to_the_image_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    workspace.login()
    plugin = write_plugin(
        tmp_path / "p", python_manifest(permissions="[tenant:read]"), {"app.py": PYTHON_APP}
    )
    result = start(workspace, plugin)
    assert_clean_failure(result, "unknown_permission")
    assert "tenant:read" in result.stderr


def test_port_in_use_is_reported_with_another_port_to_try(workspace: Workspace) -> None:
    workspace.login()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = workspace.powerx("host", "start", "--mock", "--port", str(port), str(HELLO_PYTHON))
    assert_clean_failure(result, "port_in_use")
    assert f"--port {port + 1}" in result.stderr


def test_node_missing_is_reported_for_node_plugins(workspace: Workspace, tmp_path: Path) -> None:
    workspace.login()
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    env = dict(workspace.env, PATH=str(empty_path))
    result = workspace.powerx("host", "start", "--mock", "--port", "0", str(HELLO_NODE), env=env)
    assert_clean_failure(result, "node_missing")
    doctor = workspace.powerx("doctor", str(HELLO_NODE), env=env)
    assert doctor.returncode == 1
    assert "Node.js is not installed" in doctor.stdout


def test_esbuild_missing_is_reported_with_npm_install(workspace: Workspace, tmp_path: Path) -> None:
    workspace.login()
    copy = tmp_path / "node-no-modules"
    shutil.copytree(HELLO_NODE, copy, ignore=shutil.ignore_patterns("node_modules"))
    # package.json declares nothing (a declared esbuild would be installed by the DevKit:
    # tests/integration/test_node_dependencies.py); the install of nothing needs no network.
    (copy / "package.json").write_text('{"name": "node-no-modules", "private": true}\n')
    result = start(workspace, copy)
    assert_clean_failure(result, "esbuild_missing")
    assert "npm install" in result.stderr


def test_simulator_flag_off_refuses_to_start(workspace: Workspace) -> None:
    workspace.login()
    env = dict(workspace.env, PX_PLUGIN_HOST_SIMULATOR="0")
    result = workspace.powerx("host", "start", "--mock", "--port", "0", str(HELLO_PYTHON), env=env)
    assert_clean_failure(result, "simulator_disabled")
    assert "PX_PLUGIN_HOST_SIMULATOR=1" in result.stderr


def test_start_without_login_says_how_to_log_in(workspace: Workspace) -> None:
    result = start(workspace, HELLO_PYTHON)
    assert_clean_failure(result, "not_logged_in")
    assert "powerx login --mock" in result.stderr


def test_credential_without_debug_scope_is_refused_by_the_simulator(
    workspace: Workspace, start_simulator: object
) -> None:
    workspace.login()
    simulator = start_simulator([HELLO_PYTHON])  # type: ignore[operator]
    workspace.login("plugin:read")
    result = workspace.powerx("host", "status")
    assert_clean_failure(result, "missing_scope")
    response = simulator.get("/internal/debug/status", headers=simulator.debug_headers())
    assert response.status_code == 403


def test_import_error_in_the_plugin_names_file_and_line(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.login()
    app = "import os\n\nraise RuntimeError('boom at import')\n"
    plugin = write_plugin(tmp_path / "crash", python_manifest(), {"app.py": app})
    result = start(workspace, plugin)
    assert_clean_failure(result, "plugin_start_failed")
    assert "app.py:3" in result.stderr and "boom at import" in result.stderr


def test_syntax_error_is_caught_before_anything_starts(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "syntax", python_manifest(), {"app.py": "def broken(:\n"})
    result = start(workspace, plugin)
    assert_clean_failure(result, "build_failed")
    assert "app.py:1" in result.stderr


def test_watch_without_plugin_folders_says_what_to_watch(workspace: Workspace) -> None:
    workspace.login()
    result = start(workspace, extra=("--watch",))
    assert_clean_failure(result, "nothing_to_watch")
    assert "powerx dev" in result.stderr


def test_typescript_build_error_names_file_and_line(workspace: Workspace, tmp_path: Path) -> None:
    workspace.login()
    copy = tmp_path / "node-broken"
    shutil.copytree(HELLO_NODE, copy, symlinks=True)
    source = copy / "src" / "index.ts"
    source.write_text(
        source.read_text().replace(
            'const GREETING = "hello from node";', 'const GREETING = "hello from node;'
        )
    )
    result = start(workspace, copy)
    assert_clean_failure(result, "build_failed")
    assert "src/index.ts:4" in result.stderr


def test_doctor_passes_on_the_examples_and_fails_without_login(workspace: Workspace) -> None:
    failing = workspace.powerx("doctor", str(HELLO_PYTHON), str(HELLO_NODE))
    assert failing.returncode == 1
    assert "powerx login --mock" in failing.stdout
    workspace.login()
    passing = workspace.powerx("doctor", "--json", str(HELLO_PYTHON), str(HELLO_NODE))
    assert passing.returncode == 0, passing.stdout
    assert '"status": "fail"' not in passing.stdout


def test_doctor_reports_a_mismatched_plugin_and_exits_non_zero(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "p", python_manifest(api="^3"), {"app.py": PYTHON_APP})
    result = workspace.powerx("doctor", str(plugin))
    assert result.returncode == 1
    assert "version_mismatch" in result.stdout


def test_login_needs_exactly_one_mode(workspace: Workspace) -> None:
    assert_clean_failure(workspace.powerx("login"), "login_mode")
    token = workspace.powerx("login", "--token", "short")
    assert_clean_failure(token, "token_invalid")


def test_help_teaches_by_example(workspace: Workspace) -> None:
    result = workspace.powerx("host", "start", "--help")
    assert result.returncode == 0
    assert "powerx host start --mock examples/hello-python" in result.stdout
