"""V8's code cache of a Node plugin's dependencies: made once (by a real Node process, as
in a sandbox: printed, written by the simulator), then a spare's preload compiles the
packages from it; a file with its own source map is left to Node, so its stacks map."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

from powerx.bundling.toolchain import node_executable
from powerx.host.launcher import NodePreload, SpareLauncher, code_cache
from powerx.host.launcher.code_cache import ensure_code_cache
from powerx.host.launcher.process import LaunchSpec
from powerx.runtimes import NODE_CODE_CACHE

LOAD = """
const { withCodeCache, requireAll } = require(process.argv[1]);
const [cache, nodeModules, modules] = process.argv.slice(2);
const load = () => requireAll(nodeModules, JSON.parse(modules));
const counts = withCodeCache(cache || null, null, load);
const dep = require(require.resolve('dep', { paths: [require('path').dirname(nodeModules)] }));
console.log(JSON.stringify({ ...counts, answer: dep.answer(), mapped: dep.mapped }));
"""


def package(root: Path, mapped: bool = False) -> Path:
    """node_modules with `dep` (two files); ``mapped``: its second file names a source map
    it ships."""
    folder = root / "node_modules" / "dep"
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": "dep", "main": "index.js"}))
    (folder / "index.js").write_text(
        "const lib = require('./lib.js');\n"
        "module.exports = { answer: () => lib.twice(21), mapped: lib.mapped };\n"
    )
    lib = "exports.twice = (n) => n * 2;\nexports.mapped = false;\n"
    if mapped:
        lib = lib.replace("false", "true") + "//# sourceMappingURL=lib.js.map\n"
        source_map = {"version": 3, "sources": ["lib.ts"], "names": [], "mappings": "AAAA"}
        (folder / "lib.js.map").write_text(json.dumps(source_map))
    (folder / "lib.js").write_text(lib)
    return root / "node_modules"


def load(node_modules: Path, cache: Path | None) -> dict[str, object]:
    ran = subprocess.run(
        [
            node_executable(),
            "-e",
            LOAD,
            str(NODE_CODE_CACHE),
            str(cache or ""),
            str(node_modules),
            '["dep"]',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(ran.stdout)  # type: ignore[no-any-return]


def make(node_modules: Path) -> tuple[bool, Path]:
    preload = NodePreload(str(node_modules), "installed-1", ("dep",))
    made = asyncio.run(ensure_code_cache(preload, dict(os.environ), str(node_modules.parent), None))
    return made, preload.code_cache


def test_a_spares_packages_compile_from_the_code_cache_made_for_them(tmp_path: Path) -> None:
    node_modules = package(tmp_path)
    assert load(node_modules, None) == {"cached": 0, "compiled": 2, "answer": 42, "mapped": False}
    made, cache = make(node_modules)
    assert made and cache.is_relative_to(node_modules)
    assert len(list(cache.iterdir())) == 2  # one file per module file
    assert load(node_modules, cache) == {"cached": 2, "compiled": 0, "answer": 42, "mapped": False}


def test_a_cache_for_another_file_is_rejected_and_the_file_compiles_from_source(
    tmp_path: Path,
) -> None:
    node_modules = package(tmp_path)
    _, cache = make(node_modules)
    lib = node_modules / "dep" / "lib.js"
    lib.write_text(lib.read_text().replace("n * 2", "n + n + 0 /* edited by hand */"))
    assert load(node_modules, cache) == {"cached": 1, "compiled": 1, "answer": 42, "mapped": False}


def test_a_file_with_a_source_map_it_ships_is_compiled_by_node(tmp_path: Path) -> None:
    node_modules = package(tmp_path, mapped=True)
    _, cache = make(node_modules)
    assert len(list(cache.iterdir())) == 1  # index.js only
    assert load(node_modules, cache) == {"cached": 1, "compiled": 0, "answer": 42, "mapped": True}


def test_a_spare_that_preloads_packages_starts_the_next_one_at_launch(tmp_path: Path) -> None:
    """Not after the first request: at an editor's pace that is too late for its ~0.2 s.
    A spare with nothing to preload still waits (it would slow the request saved for)."""
    node_modules = package(tmp_path)
    root = tmp_path / "run"
    (root / "bundle").mkdir(parents=True)
    (root / "bundle" / "index.js").write_text(
        "module.exports = { fetch: async () => new Response('hi') };\n"
    )

    async def next_spare_started(preload: NodePreload | None) -> bool:
        launcher = SpareLauncher("node18", dict(os.environ), str(tmp_path))
        argv = [str(root), "bundle/index.js", str(root)]
        process = await launcher.launch(LaunchSpec("node18", argv, {}, str(root), node=preload))
        try:
            return len(launcher._spares) == 2
        finally:
            process.kill()
            await process.wait()
            await launcher.close()

    preload = NodePreload(str(node_modules), "installed-1", ("dep",))
    assert asyncio.run(next_spare_started(preload))
    assert not asyncio.run(next_spare_started(None))


def test_a_package_that_hangs_at_load_leaves_an_empty_cache_not_a_hung_spare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its maker is stopped; the empty cache says "none" to every later spare, which
    then does not make one again."""
    node_modules = package(tmp_path)
    (node_modules / "dep" / "index.js").write_text("for (;;) {}\n")
    monkeypatch.setattr(code_cache, "MAKE_TIMEOUT_S", 1.0)
    made, cache = make(node_modules)
    assert made and list(cache.iterdir()) == []
    monkeypatch.setattr(code_cache, "spawn", None)  # a second maker would fail here
    assert make(node_modules) == (True, cache)
