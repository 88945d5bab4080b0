"""Modules a Python plugin imports that nothing provides, and what to tell the developer.

One wording for both places that find them: a generation whose import raises
``ModuleNotFoundError`` (the supervisor's ``module_not_found``), and `powerx doctor`, which
reads the plugin's imports with :mod:`ast` without running any of its code.

A plugin runs with its own folder first on ``sys.path`` and in the Python that runs
powerx (the launcher starts ``sys.executable``), so a name is either one of the plugin's
own files and folders, or has to be installed into that Python.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from powerx.errors import Problem

__all__ = ["MissingModule", "explain_missing_module", "missing_imports"]

# Import names whose distribution on PyPI is called something else.
_DISTRIBUTIONS = {
    "PIL": "Pillow",
    "bs4": "beautifulsoup4",
    "cv2": "opencv-python",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "jwt": "PyJWT",
    "sklearn": "scikit-learn",
    "yaml": "PyYAML",
}
# Enough for any real plugin's own code; a cap, so a huge tree cannot stall doctor.
_MAX_FILES = 500


@dataclass(frozen=True)
class MissingModule:
    """What is wrong (one sentence, without the place) and how to fix it."""

    message: str
    fix: str


def _own_modules(root: Path) -> dict[str, str]:
    """Top-level names the plugin's folder provides, each with the file or folder."""
    names: dict[str, str] = {}
    try:
        children = list(root.iterdir())
    except OSError:
        return names
    for child in children:
        if child.is_file() and child.suffix == ".py":
            names[child.stem] = child.name
        elif child.is_dir() and child.name.isidentifier():
            names[child.name] = f"{child.name}/"
    return names


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def explain_missing_module(module: str, root: Path) -> MissingModule:
    """Why ``module`` cannot be imported by the plugin in ``root``, and the fix: the
    plugin's own module misspelt is not something to pip install."""
    top = module.split(".")[0]
    own = _own_modules(root)
    if top in own:
        return MissingModule(
            f"the plugin's own {own[top]} has no module '{module.removeprefix(top + '.')}'",
            f"check the name against what is in {own[top]}, or add the missing file.",
        )
    if top != module and _installed(top):
        return MissingModule(
            f"'{top}' is installed but has no module '{module}'",
            f"check the name against {top}'s documentation, or upgrade {top} if a newer "
            "version has it.",
        )
    guess = difflib.get_close_matches(top, sorted(own), n=1, cutoff=0.75)
    if guess:
        return MissingModule(
            f"no module '{top}' in the plugin or in the environment it runs in",
            f"did you mean '{guess[0]}' ({own[guess[0]]} in the plugin)? "
            "fix the spelling of the import.",
        )
    distribution = _DISTRIBUTIONS.get(top, top)
    return MissingModule(
        f"module '{top}' is not installed",
        f"install it into the environment the plugin runs in "
        f"({sys.executable} -m pip install {distribution}), or remove the import.",
    )


def _module_file(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _in_plugin(root: Path, dotted: str) -> bool:
    """A module file or a package folder (with or without ``__init__.py``) in the plugin."""
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or base.is_dir()


def _imports(tree: ast.Module) -> list[tuple[ast.stmt, str, list[str]]]:
    """The module-level imports: (statement, module, names imported from it). Imports in
    functions, ``if`` and ``try`` blocks are left out: they run later, or are guarded."""
    found: list[tuple[ast.stmt, str, list[str]]] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.extend((node, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node, node.module, [alias.name for alias in node.names]))
    return found


def missing_imports(root: Path, entry_file: str) -> list[Problem]:
    """Each module-level import, in the entry file and in the plugin's own modules it
    imports, of a module nothing provides; checked with ``find_spec``, so nothing is run.
    Relative imports are the plugin's own and are not followed."""
    root = root.resolve()
    own = _own_modules(root)
    problems: list[Problem] = []
    pending = [root / entry_file]
    seen: set[Path] = set()
    while pending and len(seen) < _MAX_FILES:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source, str(path))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            continue  # unreadable or broken: the build's compile check reports it
        for node, module, names in _imports(tree):
            if module.split(".")[0] in own:
                if _in_plugin(root, module):
                    submodules = (_module_file(root, f"{module}.{name}") for name in names)
                    pending += [f for f in (_module_file(root, module), *submodules) if f]
                    continue
            elif _installed(module.split(".")[0]):
                continue
            where = f"{path.relative_to(root)}:{node.lineno}"
            missing = explain_missing_module(module, root)
            statement = ast.get_source_segment(source, node) or module
            problems.append(
                Problem(where, f"`{statement}` in {where}: {missing.message}", missing.fix)
            )
    return problems
