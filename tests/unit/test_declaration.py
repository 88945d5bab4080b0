"""Where a Python plugin declares its dependencies, and what identifies the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from powerx.environments import find_declaration
from powerx.errors import PowerXError


def folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_no_declaration_is_none_and_tool_settings_are_no_declaration(tmp_path: Path) -> None:
    assert find_declaration(folder(tmp_path, {"app.py": ""})) is None
    assert find_declaration(folder(tmp_path, {"pyproject.toml": "[tool.ruff]\n"})) is None


def test_requirements_win_over_pyproject_and_name_the_file_to_edit(tmp_path: Path) -> None:
    plugin = folder(
        tmp_path,
        {
            "requirements.txt": "six==1.17.0  # pinned\n-r more.txt\n",
            "more.txt": "termcolor\n",
            "pyproject.toml": '[project]\nname = "p"\ndependencies = ["idna"]\n',
        },
    )
    declaration = find_declaration(plugin)
    assert declaration is not None
    assert declaration.file == "requirements.txt" and not declaration.locked
    assert declaration.names == ["six"]
    assert declaration.add_fix("rich").startswith("add rich to requirements.txt")


def test_an_included_file_is_part_of_what_identifies_the_environment(tmp_path: Path) -> None:
    plugin = folder(tmp_path, {"requirements.txt": "-r more.txt\n", "more.txt": "six\n"})
    before = find_declaration(plugin)
    (plugin / "more.txt").write_text("six\ntermcolor\n")
    after = find_declaration(plugin)
    assert before is not None and after is not None and before.digest != after.digest


def test_pyproject_dependencies_count_and_its_other_fields_do_not(tmp_path: Path) -> None:
    project = '[project]\nname = "p"\nversion = "{}"\ndependencies = ["six", "idna>=3"]\n'
    plugin = folder(tmp_path, {"pyproject.toml": project.format("1.0")})
    first = find_declaration(plugin)
    assert first is not None and first.file == "pyproject.toml" and first.names == ["six", "idna"]
    (plugin / "pyproject.toml").write_text(project.format("2.0"))
    second = find_declaration(plugin)
    assert second is not None and second.digest == first.digest
    assert 'add "rich" to [project] dependencies in pyproject.toml;' in first.add_fix("rich")


def test_a_uv_lock_beside_pyproject_is_installed_as_locked(tmp_path: Path) -> None:
    plugin = folder(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "p"\nversion = "1"\ndependencies = ["six"]\n',
            "uv.lock": "version = 1\n",
        },
    )
    declaration = find_declaration(plugin)
    assert declaration is not None and declaration.locked and declaration.file == "pyproject.toml"
    assert "and run `uv lock`" in declaration.add_fix("rich")
    (plugin / "uv.lock").write_text("version = 1\n# relocked\n")
    relocked = find_declaration(plugin)
    assert relocked is not None and relocked.digest != declaration.digest


def test_a_broken_pyproject_is_a_user_error_with_a_fix(tmp_path: Path) -> None:
    plugin = folder(tmp_path, {"pyproject.toml": "[project\n"})
    with pytest.raises(PowerXError) as error:
        find_declaration(plugin)
    assert error.value.code == "dependencies_invalid"
    assert "pyproject.toml" in error.value.message and error.value.fix
    (plugin / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = "six"\n')
    with pytest.raises(PowerXError, match="must be a list of strings"):
        find_declaration(plugin)
