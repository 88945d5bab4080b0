"""Packages a Node plugin imports that its package.json does not give it, for `powerx doctor`.

Read from the plugin's own sources (its ``.ts``/``.js`` files outside node_modules), not
run: each ``import ... from "x"``, ``import "x"``, ``export ... from "x"`` and
``require("x")`` of a bare name. Type-only imports are left out (the build erases them),
and so are Node's own modules. A package is fine when package.json declares it and it is
installed in the plugin's node_modules.
"""

from __future__ import annotations

import re
from pathlib import Path

from powerx.bundling.node_packages import NodeDeclaration, find_node_declaration, package_name
from powerx.errors import Problem

__all__ = ["undeclared_imports"]

_SOURCES = (".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs")
_SKIPPED_DIRS = {"node_modules", "dist", "build", ".git", ".powerx"}
_MAX_FILES = 500
_SPECIFIER = re.compile(
    r"""(?:^|[^\w$.])(?:"""
    r"""import\s+(?!type\s)(?:[\w$*{}\s,]+?\s+from\s+)?|export\s+(?!type\s)[\w$*{}\s,]+?\s+from\s+|"""
    r"""(?:require|import)\s*\(\s*)["']([^"'\s]+)["']""",
    re.MULTILINE,
)
# Node's own modules, also without the node: prefix (what `require('node:module')`
# lists as builtinModules, stable for years; kept here so doctor does not start node).
_BUILTINS = frozenset(
    {
        "assert",
        "async_hooks",
        "buffer",
        "child_process",
        "cluster",
        "console",
        "constants",
        "crypto",
        "dgram",
        "diagnostics_channel",
        "dns",
        "domain",
        "events",
        "fs",
        "http",
        "http2",
        "https",
        "inspector",
        "module",
        "net",
        "os",
        "path",
        "perf_hooks",
        "process",
        "punycode",
        "querystring",
        "readline",
        "repl",
        "stream",
        "string_decoder",
        "sys",
        "timers",
        "tls",
        "trace_events",
        "tty",
        "url",
        "util",
        "v8",
        "vm",
        "wasi",
        "worker_threads",
        "zlib",
        "test",
    }
)


def _sources(root: Path) -> list[Path]:
    found: list[Path] = []
    pending = [root]
    while pending and len(found) < _MAX_FILES:
        folder = pending.pop()
        try:
            children = sorted(folder.iterdir())
        except OSError:
            continue
        for child in children:
            if child.is_dir() and child.name not in _SKIPPED_DIRS and not child.is_symlink():
                pending.append(child)
            elif child.is_file() and child.name.endswith(_SOURCES):
                found.append(child)
    return found


def _bare(specifier: str) -> bool:
    if specifier.startswith((".", "/", "node:")) or ":" in specifier:
        return False
    return specifier.split("/")[0] not in _BUILTINS


def undeclared_imports(root: Path) -> list[Problem]:
    """Each import of a package the plugin does not declare in package.json, or declares
    but has not installed, as a problem naming the file and line and the fix."""
    root = root.resolve()
    declaration = find_node_declaration(root)
    declared = declaration.dependencies if declaration is not None else {}
    problems: list[Problem] = []
    reported: set[str] = set()
    for path in _sources(root):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for match in _SPECIFIER.finditer(text):
            specifier = match.group(1)
            if not _bare(specifier):
                continue
            package = package_name(specifier)
            installed = (root / "node_modules" / package / "package.json").is_file()
            if package in reported or (package in declared and installed):
                continue
            reported.add(package)
            line = text.count("\n", 0, match.start(1)) + 1
            where = f"{path.relative_to(root)}:{line}"
            if package in declared:
                message = f"{where} imports '{package}': in package.json, but not installed"
                fix = f"run `npm install` in {root} (the simulator does at the next start)."
            else:
                message = f"{where} imports '{package}', which is not in package.json"
                fix = NodeDeclaration.add_fix(package)
            problems.append(Problem(where, message, fix))
    return problems
