"""Node plugins: bundle with esbuild (resolved from the plugin's node_modules) or a command."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

from powerx.bundling.esbuild import EsbuildWorker, esbuild_request
from powerx.bundling.node_packages import package_name, undeclared_package
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, Problem
from powerx.manifest import EsbuildSettings, Manifest


def _run_esbuild(
    manifest: Manifest, root: Path, outfile: Path, worker: EsbuildWorker | None
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The bundle and its source map, as (file name, contents), from memory; and the
    packages it left external."""
    settings = (manifest.build.esbuild if manifest.build else None) or EsbuildSettings()
    request = esbuild_request(root, manifest.handler_entry, outfile, settings.model_dump())
    if worker is not None:
        answer = worker.build(request)
    else:
        one_shot = EsbuildWorker()
        try:
            answer = one_shot.build(request)
        finally:
            one_shot.close()
    if answer.get("code") == "esbuild_missing":
        raise PowerXError(
            ErrorCode.ESBUILD_MISSING,
            f"esbuild is not installed for {root}; it bundles the plugin's TypeScript.",
            f"run `npm install --save-dev esbuild` in {root} "
            "(or `npm install` if it is in package.json).",
        )
    if not answer["ok"]:
        undeclared = _undeclared_package(root, answer["errors"])
        if undeclared is not None:
            raise undeclared
        problems = [
            Problem(
                f"{e['file']}:{e['line']}", f"{e['file']}:{e['line']}:{e['column']}: {e['text']}"
            )
            for e in answer["errors"]
        ]
        first = answer["errors"][0]
        raise PowerXError(
            ErrorCode.BUILD_FAILED,
            f"Build error in {problems[0].message}",
            "fix the code at that line and save again.",
            problems=problems,
            details={"file": first["file"], "line": first["line"]},
        )
    files = [(f["name"], f["text"].encode()) for f in answer["files"]]
    return files, [str(name) for name in answer.get("externals", [])]


# esbuild's words for an import nothing in node_modules provides.
_UNRESOLVED = re.compile(r'^Could not resolve "([^"]+)"')


def _undeclared_package(root: Path, errors: list[dict[str, Any]]) -> PowerXError | None:
    """A bare import that does not resolve: a package to add to package.json (not code
    to fix at that line), named with the file and line that imports it."""
    for error in errors:
        match = _UNRESOLVED.match(str(error.get("text", "")))
        if match is None or match.group(1).startswith((".", "/")):
            continue
        return undeclared_package(
            root, package_name(match.group(1)), str(error["file"]), error.get("line")
        )
    return None


def _run_command(manifest: Manifest, root: Path) -> tuple[list[tuple[str, bytes]], list[str]]:
    assert manifest.build is not None and manifest.build.command and manifest.build.output
    completed = subprocess.run(
        shlex.split(manifest.build.command),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip()[-600:]
        raise PowerXError(
            ErrorCode.BUILD_FAILED,
            f"Build command failed ({completed.returncode}): {tail}",
            f"run `{manifest.build.command}` in {root} and fix what it reports.",
        )
    output = root / manifest.build.output
    if not output.is_file():
        raise PowerXError(
            ErrorCode.BUILD_FAILED,
            f"The build command did not write {manifest.build.output}.",
            "set build.output to the file the command produces.",
        )
    outputs = [output]
    source_map = output.with_name(output.name + ".map")
    if source_map.is_file():
        outputs.append(source_map)
    return [(path.name, path.read_bytes()) for path in outputs], []


def node_members(
    manifest: Manifest, root: Path, build_dir: Path, worker: EsbuildWorker | None = None
) -> tuple[list[tuple[str, bytes]], str, list[str]]:
    """The artefact's members, its runnable, and the packages it ``require()``s from the
    plugin's node_modules (left out of the bundle; a warm spare loads them ahead)."""
    if manifest.needs_esbuild:
        outputs, externals = _run_esbuild(manifest, root, build_dir / "index.js", worker)
    elif manifest.build and manifest.build.command:
        outputs, externals = _run_command(manifest, root)
    else:
        # Plain JavaScript entry: ship the sources as they are.
        from powerx.bundling.pack import source_files

        files = source_files(root)
        members = [(f"src/{f.as_posix()}", (root / f).read_bytes()) for f in files]
        return members, f"src/{manifest.handler_entry}", []
    members = [(f"bundle/{name}", content) for name, content in outputs]
    runnable = next(name for name, _ in members if name.endswith(".js"))
    return members, runnable, externals
