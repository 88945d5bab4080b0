"""Modules a Python plugin imports that nothing provides, and what to tell the developer.

One wording for both places that find them: a generation whose import raises
``ModuleNotFoundError`` (the supervisor's ``module_not_found``), and `powerx doctor`, which
reads the plugin's imports with :mod:`ast` without running any of its code.

A plugin imports its own files and folders, the standard library, ``powerx_plugin`` and
what it declares (its environment, see ``environments/``); one that declares nothing
also gets the handler toolkit (starlette, httpx). So a missing name is either the
plugin's own module misspelt, or one to add to its declaration.
"""

from __future__ import annotations

import ast
import difflib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from powerx.environments.declaration import Declaration
from powerx.environments.devkit import SDK, TOOLKIT
from powerx.errors import Problem

__all__ = [
    "ImportWorld",
    "MissingModule",
    "explain_missing_module",
    "missing_imports",
    "third_party_imports",
    "toolkit_imports",
]

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
class ImportWorld:
    """What a plugin's imports resolve against besides its own files and the standard
    library: its environment's ``site-packages`` when it declares dependencies (in
    ``declaration``), else the DevKit's handler toolkit."""

    site_packages: Path | None = None
    declaration: Declaration | None = None
    _found: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def provides(self, top: str) -> bool:
        if top in sys.stdlib_module_names or top in sys.builtin_module_names or top in SDK:
            return True
        if self.site_packages is None:
            return top in TOOLKIT
        if top not in self._found:
            try:
                spec = importlib.machinery.PathFinder.find_spec(top, [str(self.site_packages)])
            except (ImportError, ValueError):
                spec = None
            self._found[top] = spec is not None
        return self._found[top]

    def add_fix(self, distribution: str) -> str:
        """How to give the plugin ``distribution``."""
        if self.declaration is not None:
            return self.declaration.add_fix(distribution)
        return (
            f"add {distribution} to requirements.txt (create it beside the manifest); the "
            "simulator installs it into the plugin's own environment and reloads."
        )


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


def _in_devkit(name: str) -> bool:
    """Whether the DevKit's own Python has ``name`` (which the plugin does not see)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def explain_missing_module(
    module: str, root: Path, world: ImportWorld | None = None
) -> MissingModule:
    """Why ``module`` cannot be imported by the plugin in ``root``, and the fix: the
    plugin's own module misspelt is not something to declare."""
    world = world or ImportWorld()
    top = module.split(".")[0]
    own = _own_modules(root)
    if top in own:
        return MissingModule(
            f"the plugin's own {own[top]} has no module '{module.removeprefix(top + '.')}'",
            f"check the name against what is in {own[top]}, or add the missing file.",
        )
    if top != module and world.provides(top):
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
    declared_in = world.declaration.file if world.declaration else None
    if _in_devkit(top):
        where = f"its {declared_in}" if declared_in else "a requirements.txt"
        message = (
            f"module '{top}' is not declared in {where} (the DevKit has its own copy, "
            "which plugins do not see: they get what they declare)"
        )
    else:
        message = f"module '{top}' is not installed"
    return MissingModule(message, f"{world.add_fix(distribution)} Or remove the import.")


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


def _foreign_imports(root: Path, entry_file: str) -> Iterator[tuple[Path, str, ast.stmt, str]]:
    """Each module-level import of something not the plugin's own, in the entry file and
    in the plugin's own modules it imports: (file, its source, statement, module).
    Relative imports are the plugin's own and are not followed."""
    own = _own_modules(root)
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
            if module.split(".")[0] in own and _in_plugin(root, module):
                submodules = (_module_file(root, f"{module}.{name}") for name in names)
                pending += [f for f in (_module_file(root, module), *submodules) if f]
                continue
            yield path, source, node, module


def missing_imports(root: Path, entry_file: str, world: ImportWorld | None = None) -> list[Problem]:
    """Each module-level import (see :func:`_foreign_imports`) of a module nothing the
    plugin sees provides; checked with ``find_spec``, so nothing is run."""
    root = root.resolve()
    world = world or ImportWorld()
    problems: list[Problem] = []
    for path, source, node, module in _foreign_imports(root, entry_file):
        if world.provides(module.split(".")[0]):
            continue
        where = f"{path.relative_to(root)}:{node.lineno}"
        missing = explain_missing_module(module, root, world)
        statement = ast.get_source_segment(source, node) or module
        problems.append(Problem(where, f"`{statement}` in {where}: {missing.message}", missing.fix))
    return problems


def third_party_imports(root: Path, entry_file: str, site_packages: Path) -> list[str]:
    """The modules the plugin imports at module level from its environment: what its
    zygote imports before the first generation, so that one starts warm too."""
    world = ImportWorld(site_packages)
    found = {
        module
        for _, _, _, module in _foreign_imports(root.resolve(), entry_file)
        if module.split(".")[0] not in sys.stdlib_module_names
        and world.provides(module.split(".")[0])
    }
    return sorted(found)


def toolkit_imports(root: Path, entry_file: str) -> set[str]:
    """The handler toolkit's packages (starlette, httpx) the plugin imports itself: what
    it gets from the DevKit's copy while it declares no dependencies."""
    return {
        module.split(".")[0]
        for _, _, _, module in _foreign_imports(root.resolve(), entry_file)
        if module.split(".")[0] in TOOLKIT
    }
