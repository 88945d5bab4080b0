"""What a plugin's missing import is called and how to fix it, read without running it."""

from __future__ import annotations

from pathlib import Path

from powerx.environments.imports import explain_missing_module, missing_imports


def plugin(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_module_nobody_provides_is_to_be_installed_under_its_distribution_name(
    tmp_path: Path,
) -> None:
    missing = explain_missing_module("sklearn.linear_model", tmp_path)
    assert missing.message == "module 'sklearn' is not installed"
    assert missing.fix.startswith("add scikit-learn to requirements.txt")


def test_a_misspelt_own_module_gets_the_name_it_resembles(tmp_path: Path) -> None:
    plugin(tmp_path, {"helpers.py": "", "storage/__init__.py": ""})
    assert "did you mean 'helpers' (helpers.py" in explain_missing_module("helpres", tmp_path).fix
    assert "'storage' (storage/" in explain_missing_module("storag", tmp_path).fix
    own = explain_missing_module("storage.nothere", tmp_path)
    assert own.message == "the plugin's own storage/ has no module 'nothere'"
    assert "pip" not in own.fix


def test_an_installed_package_without_the_submodule_is_not_to_be_installed(
    tmp_path: Path,
) -> None:
    missing = explain_missing_module("starlette.nothere", tmp_path)
    assert missing.message == "'starlette' is installed but has no module 'starlette.nothere'"
    assert "requirements.txt" not in missing.fix


def test_only_module_level_imports_the_entry_reaches_are_checked(tmp_path: Path) -> None:
    plugin(
        tmp_path,
        {
            "app.py": (
                "import os\nfrom .sibling import x\nimport pkg.models\n"
                "from ns import thing\n"
                "try:\n    import optional_xyz\nexcept ImportError:\n    pass\n"
                "def later():\n    import lazy_xyz\n"
            ),
            "pkg/__init__.py": "",
            "pkg/models.py": "from pkg import absent_xyz\nimport missing_in_models_xyz\n",
            "ns/thing.py": "",  # a namespace package: no __init__.py
            "unused.py": "import never_imported_xyz\n",
        },
    )
    problems = missing_imports(tmp_path, "app.py")
    assert [(p.where, p.message) for p in problems] == [
        (
            "pkg/models.py:2",
            "`import missing_in_models_xyz` in pkg/models.py:2: "
            "module 'missing_in_models_xyz' is not installed",
        )
    ]
