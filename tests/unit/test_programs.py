"""How a backend plugin's program is named, placed and given its port (host/programs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from powerx.errors import PowerXError
from powerx.host.preflight import RuntimeCheck, check_runtime
from powerx.host.programs import backend_environment, inner_port, program_argv
from powerx.manifest import PLUGIN_YAML, Manifest, parse_manifest


def backend(entry: str) -> Manifest:
    """A plugin.yaml with only PowerX's keys: a backend plugin."""
    text = (
        "id: com.test.backend\nname: Backend\nversion: 1.0.0\n"
        f"backend:\n  entry: '{entry}'\n  port: 9000\n"
    )
    return parse_manifest(text, PLUGIN_YAML)


def test_entry_is_split_like_a_shell_with_port_variables_filled_in() -> None:
    manifest = backend('bin/plugin --addr "127.0.0.1:${PORT}" -v $PORT')
    argv = program_argv(manifest, Path("/run/src"), backend_environment(9001))
    assert argv == ["/run/src/bin/plugin", "--addr", "127.0.0.1:9001", "-v", "9001"]


def test_python_is_the_devkit_interpreter_and_a_bare_name_is_looked_up_on_path() -> None:
    env = backend_environment(9001)
    python = program_argv(backend("python -m uvicorn app:app"), Path("/r"), env)
    assert python == [sys.executable, "-m", "uvicorn", "app:app"]
    node = program_argv(backend("node server.js"), Path("/r"), env)
    assert node == ["node", "server.js"]


def test_an_entry_a_shell_cannot_split_is_a_clear_error() -> None:
    manifest = backend('bin/plugin "unclosed')
    with pytest.raises(PowerXError) as caught:
        program_argv(manifest, Path("/r"), {})
    assert caught.value.code == "backend_entry_invalid" and caught.value.fix


def test_the_next_generation_takes_the_next_free_port_in_the_sandbox() -> None:
    assert inner_port(9000, set()) == 9000
    assert inner_port(9000, {9000, 9001}) == 9002
    assert inner_port(None, set()) == 8080


def test_environment_names_the_address_as_powerx_and_its_plugin_base_read_it() -> None:
    assert backend_environment(9001) == {
        "PORT": "9001",
        "POWERX_HTTP_ADDR": "127.0.0.1:9001",
        "PX_BIND_ADDR": "127.0.0.1:9001",
        "PX_DEV_MODE": "true",
    }


def test_a_backend_program_needs_no_runtime_of_ours() -> None:
    assert check_runtime("program") == RuntimeCheck("program", None)
