"""Which type checker a plugin asks for, and how tsc's and mypy's output becomes problems
with file, line and column."""

from __future__ import annotations

import sys
from pathlib import Path

from powerx.reload.type_checkers import (
    MissingChecker,
    TypeChecker,
    TypeProblem,
    find_type_checkers,
    parse_mypy,
    parse_tsc,
)

TSC_OUTPUT = """\
src/index.ts(24,37): error TS2551: Property 'nme' does not exist on type 'Contact'. Did you mean 'name'?
src/util.ts(3,7): error TS2322: Type '{ a: number; }' is not assignable to type 'B'.
  Object literal may only specify known properties, and 'a' does not exist in type 'B'.
error TS5083: Cannot read file '/p/base.json'.
"""  # noqa: E501

MYPY_OUTPUT = """\
app.py:12:10: error: Incompatible types in assignment (expression has type "str", variable has type "int")  [assignment]
app.py:12:10: note: See https://mypy.rtfd.io/en/stable/_refs.html#code-assignment
lib/store.py:3: error: Name "undefined_name" is not defined  [name-defined]
"""  # noqa: E501


def test_tsc_errors_keep_file_line_column_code_and_the_whole_message() -> None:
    assert parse_tsc(TSC_OUTPUT) == [
        TypeProblem(
            "src/index.ts",
            24,
            37,
            "TS2551",
            "Property 'nme' does not exist on type 'Contact'. Did you mean 'name'?",
        ),
        TypeProblem(
            "src/util.ts",
            3,
            7,
            "TS2322",
            "Type '{ a: number; }' is not assignable to type 'B'. Object literal may only "
            "specify known properties, and 'a' does not exist in type 'B'.",
        ),
        TypeProblem("", 0, 0, "TS5083", "Cannot read file '/p/base.json'."),
    ]


def test_mypy_errors_keep_their_code_and_leave_notes_out() -> None:
    assert parse_mypy(MYPY_OUTPUT) == [
        TypeProblem(
            "app.py",
            12,
            10,
            "assignment",
            'Incompatible types in assignment (expression has type "str", variable has type "int")',
        ),
        TypeProblem("lib/store.py", 3, 0, "name-defined", 'Name "undefined_name" is not defined'),
    ]


def test_a_folder_without_a_checker_config_is_not_checked(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (tmp_path / "setup.cfg").write_text("[flake8]\nmax-line-length = 100\n")
    assert find_type_checkers(tmp_path, tmp_path / "cache") == []


def test_a_tsconfig_without_typescript_installed_says_how_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "tsconfig.json").write_text("{}")
    [missing] = find_type_checkers(tmp_path, tmp_path / "cache")
    assert isinstance(missing, MissingChecker) and missing.tool == "tsc"
    assert "npm install --save-dev typescript" in missing.fix


def test_tsc_runs_from_the_plugins_own_node_modules(tmp_path: Path) -> None:
    (tmp_path / "tsconfig.json").write_text("{}")
    binary = tmp_path / "node_modules" / ".bin" / "tsc"
    binary.parent.mkdir(parents=True)
    binary.write_text("")
    [checker] = find_type_checkers(tmp_path, tmp_path / "cache")
    assert isinstance(checker, TypeChecker)
    assert checker.command == (str(binary), "--noEmit", "--pretty", "false", "-p", "tsconfig.json")


def test_mypy_checks_the_folder_unless_its_config_names_the_files(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    [checker] = find_type_checkers(tmp_path, cache)
    assert isinstance(checker, TypeChecker) and checker.config == "mypy.ini"
    assert checker.command[:3] == (sys.executable, "-m", "mypy")  # the DevKit's: mypy is there
    assert checker.command[-3:] == ("--cache-dir", str(cache), ".")

    (tmp_path / "mypy.ini").unlink()
    (tmp_path / "pyproject.toml").write_text('[tool.mypy]\nfiles = ["app.py"]\n')
    [checker] = find_type_checkers(tmp_path, cache)
    assert isinstance(checker, TypeChecker) and checker.config == "pyproject.toml"
    assert checker.command[-2:] == ("--cache-dir", str(cache))


def test_setup_cfg_asks_for_mypy_with_a_mypy_section(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_text("[mypy]\nwarn_unused_ignores = True\n")
    [checker] = find_type_checkers(tmp_path, tmp_path / "cache")
    assert isinstance(checker, TypeChecker) and checker.config == "setup.cfg"
