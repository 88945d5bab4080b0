"""Every import in ``src/powerx`` runs one way: cli -> client -> [HTTP] -> host -> core.

The table below is the architecture (docs: README's layout paragraph, issue 15): a package
may import only the packages listed for it. Module-level modules of ``powerx`` (config,
manifest, errors, ...) are the core and import no package. The plugin-side code in
``runtimes/`` runs inside plugin processes, where the DevKit is not importable, so it imports
nothing of ``powerx`` at all. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import powerx

SOURCE = Path(powerx.__file__).parent

ALLOWED: dict[str, set[str]] = {
    "cli": {
        "client",
        "reload",
        "host",
        "debug",
        "observe",
        "bundling",
        "environments",
        "scaffold",
        "core",
    },
    "reload": {"client", "bundling", "environments", "observe", "core"},
    "client": {"bundling", "observe", "core"},
    "host": {"debug", "observe", "runtimes", "bundling", "environments", "dashboard", "core"},
    "debug": {"observe", "runtimes", "bundling", "core"},
    "bundling": {"runtimes", "core"},
    "environments": {"core"},
    "observe": {"core"},
    "scaffold": {"core"},
    # For plugin authors' tests: drives the simulator as a process, over the CLI and HTTP.
    "testing": {"core"},
    "runtimes": set(),
    "core": set(),
}


def layer_of(module: str) -> str | None:
    """The package a dotted module name belongs to, ``core`` for top-level modules."""
    parts = module.split(".")
    if parts[0] != "powerx":
        return None
    if len(parts) == 1 or not (SOURCE / parts[1]).is_dir():
        return "core"
    return parts[1]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def import_edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE)
        if "templates" in relative.parts:  # scaffolded plugin code, not the DevKit's
            continue
        source = "core" if len(relative.parts) == 1 else relative.parts[0]
        for module in imported_modules(path):
            target = layer_of(module)
            if target is not None and target != source:
                edges[(source, target)].append(f"{relative}: {module}")
    return edges


def test_every_package_is_in_the_layer_table() -> None:
    packages = {p.name for p in SOURCE.iterdir() if (p / "__init__.py").exists()}
    assert packages - {"dashboard"} <= set(ALLOWED), "add the new package to ALLOWED"


def test_every_import_runs_one_way() -> None:
    wrong = [
        where
        for (source, target), places in import_edges().items()
        if target not in ALLOWED[source]
        for where in places
    ]
    assert wrong == [], "imports against the layers:\n" + "\n".join(wrong)


def test_the_table_is_acyclic() -> None:
    """The table itself must not allow a cycle, or 'one way' means nothing."""
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(layer: str, path: list[str]) -> None:
        assert layer not in visiting, " -> ".join([*path, layer])
        if layer in done:
            return
        visiting.add(layer)
        for below in ALLOWED.get(layer, set()):
            visit(below, [*path, layer])
        visiting.discard(layer)
        done.add(layer)

    for layer in ALLOWED:
        visit(layer, [])
