"""What plugin code can import once the runtime is sealed: a real interpreter, a made-up
DevKit folder and a made-up plugin environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from powerx.runtimes.isolation import Isolation

RUNTIME_CODE = """
def lazy():
    import devonly.lazy  # a submodule the runtime loads only later
    return devonly.lazy.WHERE
"""

CHECK = """
import importlib, json, sys
sys.path.extend({runtime!r})
import devonly, shared, runtime_code  # the runtime's start: before sealing
from powerx.runtimes import isolation
isolation.seal(isolation.Isolation.from_json({config!r}))
seen = {{}}
plugin = compile('''
import importlib
for name in ("devonly", "shared", "plugonly", "json"):
    try:
        seen[name] = importlib.import_module(name).WHERE if name != "json" else "stdlib"
    except ModuleNotFoundError as error:
        seen[name] = "missing: " + error.name
''', {plugin_file!r}, "exec")
exec(plugin, {{"seen": seen}})
seen["runtime lazy"] = runtime_code.lazy()
isolation.reseal()
exec(plugin, {{"seen": (after := {{}})}})
seen["devonly after reseal"] = after["devonly"]
seen["runtime kept its own"] = devonly.WHERE
print(json.dumps(seen))
"""


def package(folder: Path, name: str, where: str, lazy: bool = False) -> None:
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text(f"WHERE = {where!r}\n")
    if lazy:
        (folder / name / "lazy.py").write_text(f"WHERE = {where + ' lazy'!r}\n")


def test_plugin_code_sees_its_environment_and_not_the_runtimes_packages(tmp_path: Path) -> None:
    runtime, site = tmp_path / "devkit", tmp_path / "env"
    package(runtime, "devonly", "devkit", lazy=True)
    package(runtime, "shared", "devkit")
    (runtime / "runtime_code.py").write_text(RUNTIME_CODE)
    package(site, "shared", "env")
    package(site, "plugonly", "env")
    config = Isolation((str(runtime),), (str(site),), frozenset({"powerx_plugin"}))
    script = CHECK.format(
        runtime=[str(runtime)],
        config=config.to_json(),
        plugin_file=str(tmp_path / "plugin" / "app.py"),
    )
    # The environment first on sys.path, as in a plugin's environment; then the DevKit's.
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(site)!r})\n" + script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen == {
        "devonly": "missing: devonly",
        "shared": "env",  # one copy per name: the environment's, for the runtime too
        "plugonly": "env",
        "json": "stdlib",
        "runtime lazy": "devkit lazy",
        "devonly after reseal": "missing: devonly",
        "runtime kept its own": "devkit",
    }
