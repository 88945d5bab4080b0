"""Where a plugin's manifest is, reading its YAML text safely, and the files it names that
must exist in the plugin folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from powerx.error_codes import ErrorCode
from powerx.errors import Problem
from powerx.manifest_problems import FIXES, ManifestError

if TYPE_CHECKING:
    from powerx.manifest import Manifest

PLUGIN_YAML = "plugin.yaml"  # PowerX's own manifest, first-class
MANIFEST_FILE = "powerx.plugin.yaml"  # the simulator's older manifest, still read
MANIFEST_FILES = (PLUGIN_YAML, MANIFEST_FILE)  # looked for in this order
# A manifest is a few hundred bytes; the YAML loader is pure Python (about 5 s per MiB of
# keys), and admission runs on the simulator's event loop.
MAX_MANIFEST_CHARS = 64 * 1024


def load_yaml_mapping(text: str, source: str) -> dict[str, Any]:
    """The manifest text as a mapping; bounded in size, and no YAML tag is ever run."""
    if len(text) > MAX_MANIFEST_CHARS:
        raise ManifestError(
            ErrorCode.MANIFEST_TOO_LARGE,
            f"{source}: the manifest is {len(text)} characters; the cap is {MAX_MANIFEST_CHARS}.",
            "a manifest is a short mapping of fields; see examples/hello-python.",
            status=413,
        )
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ManifestError(
            ErrorCode.MANIFEST_YAML,
            f"{where}: the manifest is not valid YAML ({problem}).",
            "fix the YAML syntax at that line (indentation, quotes, a missing ':').",
        ) from None
    # Not every failure of the loader is a YAMLError: it recurses once per nesting level,
    # int() refuses more than 4300 digits, and an explicit tag on a value it does not fit
    # (`!!bool x`, `!!timestamp x`, `!!int ""`) raises KeyError, AttributeError, IndexError.
    except Exception as exc:
        reason = (
            "nested too deeply"
            if isinstance(exc, RecursionError)
            else "a value the YAML loader cannot build"
        )
        raise ManifestError(
            ErrorCode.MANIFEST_YAML,
            f"{source}: the manifest is not valid YAML ({reason}).",
            "a manifest is a flat mapping of short fields; see examples/hello-python.",
        ) from None
    if not isinstance(raw, dict):
        raise ManifestError(
            ErrorCode.MANIFEST_INVALID,
            f"{source}: the manifest must be a mapping of fields, got {type(raw).__name__}.",
            "start from the example: id, name, version, runtime, entry, host.api, permissions.",
        )
    return raw


_warned_both: set[Path] = set()


def find_manifest(plugin_dir: Path) -> Path:
    """The plugin folder's manifest file: ``plugin.yaml``, else ``powerx.plugin.yaml``.

    A folder with both uses ``plugin.yaml`` and says so once (on stderr) per folder."""
    if not plugin_dir.is_dir():
        raise ManifestError(
            ErrorCode.PLUGIN_NOT_FOUND,
            f"{plugin_dir}: no such plugin folder.",
            f"pass the folder that holds {PLUGIN_YAML} (or {MANIFEST_FILE}).",
        )
    found = [plugin_dir / name for name in MANIFEST_FILES if (plugin_dir / name).is_file()]
    if not found:
        raise ManifestError(
            ErrorCode.MANIFEST_MISSING,
            f"{plugin_dir}: no {PLUGIN_YAML} (or {MANIFEST_FILE}) in this folder.",
            f"create {PLUGIN_YAML} (see examples/hello-python) or pass the plugin's folder.",
        )
    if len(found) > 1 and plugin_dir.resolve() not in _warned_both:
        _warned_both.add(plugin_dir.resolve())
        sys.stderr.write(
            f"warning: {plugin_dir} holds both {PLUGIN_YAML} and {MANIFEST_FILE}; "
            f"using {PLUGIN_YAML} (delete {MANIFEST_FILE} to silence this)\n"
        )
    return found[0]


def check_files(manifest: Manifest, plugin_dir: Path) -> list[Problem]:
    """Problems the model cannot see: files that must exist inside the plugin folder."""
    problems: list[Problem] = []
    if manifest.entry is None:  # a backend program is often a build output: not checked here
        return problems
    entry = Path(manifest.entry_file)
    root = plugin_dir.resolve()
    target = (plugin_dir / entry).resolve()
    if entry.is_absolute() or not target.is_relative_to(root):
        problems.append(
            Problem(
                "entry",
                f"entry: bad value {manifest.entry!r}: must stay inside the plugin folder",
                "use a path relative to the plugin folder",
            )
        )
    elif not target.is_file():
        problems.append(
            Problem(
                "entry",
                f"entry: bad value {manifest.entry!r}: file {entry} does not exist",
                FIXES["entry"],
            )
        )
    if manifest.runtime == "python3.11" and not manifest.entry_file.endswith(".py"):
        problems.append(
            Problem(
                "entry",
                f"entry: bad value {manifest.entry!r}: a python3.11 entry is a .py file",
                "use e.g. 'app.py:app'",
            )
        )
    if manifest.runtime == "node18" and not manifest.entry.endswith(
        (".js", ".cjs", ".mjs", ".ts", ".tsx", ".mts")
    ):
        problems.append(
            Problem(
                "entry",
                f"entry: bad value {manifest.entry!r}: a node18 entry is a .js or .ts file",
                "use e.g. 'src/index.ts'",
            )
        )
    if manifest.build and manifest.build.command and not manifest.build.output:
        problems.append(
            Problem(
                "build.output",
                "build.output is required with build.command",
                "name the file the command writes, e.g. 'dist/index.js'",
            )
        )
    return problems
