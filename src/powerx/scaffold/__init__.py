"""`powerx init`: write a new plugin from a template, ready to run and test.

Templates are folders of files under ``templates/``; ``__PLUGIN_ID__`` and
``__PLUGIN_NAME__`` in them become the plugin's id and name, ``__POWERX_PLUGIN_SDK__``
how a Node plugin's ``package.json`` names the ``@powerx/plugin`` package (its types and
its test helper; see :func:`node_sdk_spec`). Every plugin also gets a
``.gitignore``, a ``.vscode/launch.json`` and a README that say how to run, test and debug
it. Nothing is overwritten: a file that exists stops the whole write before it starts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

TEMPLATES_DIR = Path(__file__).with_name("templates")
# The Node SDK in the DevKit's source tree (packages/powerx-plugin), and its version on npm.
NODE_SDK_DIR = Path(__file__).resolve().parents[3] / "packages" / "powerx-plugin"
NODE_SDK_VERSION = "0.1.0"


@dataclass(frozen=True)
class Template:
    name: str
    summary: str
    url_path: str  # where the plugin answers, after the simulator's address
    debugger: str  # the VS Code debug type that attaches to it
    test_file: str  # its own test, which runs it in a real simulator
    test_command: str  # how to run that test, in the plugin folder
    readme_note: str = ""  # what else its README says


PYTEST = ("tests/test_plugin.py", "pytest")
# powerx.testing.LocalSimulator's Node twin: @powerx/plugin/testing, installed from the
# package.json's devDependencies (offline: a file: dependency on the DevKit's copy).
NODE_TEST = "npm install && npm test"
NODE_TEST_NOTE = (
    "The test uses `@powerx/plugin/testing` (in `devDependencies`), which runs `powerx` from\n"
    "PATH (or the command in `POWERX_CLI`) with a throwaway login and state.\n"
)
NODE_TYPES_NOTE = (
    "`src/index.js` is typed by `@powerx/plugin` (`// @ts-check`, `tsconfig.json`): your editor\n"
    "checks it once `npm install` has run; the plugin itself runs without it. After\n"
    "`npm install --save-dev typescript`, each save is also checked with `tsc --noEmit`,\n"
    "beside the reload, and type errors follow the reload line.\n"
)

TEMPLATES = {
    t.name: t
    for t in (
        Template(
            "python", "Python handler (ASGI, Starlette)", "/plugins/{id}/", "debugpy", *PYTEST
        ),
        Template(
            "node",
            "Node handler (fetch, JavaScript)",
            "/plugins/{id}/",
            "node",
            "tests/plugin.test.mjs",
            NODE_TEST,
            NODE_TYPES_NOTE + "\n" + NODE_TEST_NOTE,
        ),
        Template(
            "python-backend",
            "Python backend program on PORT",
            "/_p/{id}/api/v1/hello",
            "debugpy",
            *PYTEST,
        ),
        Template(
            "node-backend",
            "Node backend program on PORT",
            "/_p/{id}/api/v1/hello",
            "node",
            "tests/plugin.test.js",
            NODE_TEST,
            NODE_TEST_NOTE,
        ),
        Template(
            "go",
            "Go backend program on PORT (PowerXPluginBase's layout, standard library)",
            "/_p/{id}/api/v1/hello",
            "go",
            *PYTEST,
        ),
    )
}
_ID = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$")

GITIGNORE = """# powerx state, local settings and secrets, build output
.powerx/
.dev.vars
.env
__pycache__/
.venv/
node_modules/
dist/
backend/bin/
"""


def default_id(folder: Path) -> str:
    """``com.example.<folder name>``, lowercased, other characters as dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", folder.resolve().name.lower()).strip("-") or "plugin"
    if not slug[0].isalpha():
        slug = f"p-{slug}"
    return f"com.example.{slug}"


def default_name(folder: Path) -> str:
    words = re.split(r"[^A-Za-z0-9]+", folder.resolve().name)
    return " ".join(w.capitalize() for w in words if w) or "Plugin"


def check_id(plugin_id: str) -> None:
    if not _ID.match(plugin_id):
        raise PowerXError(
            ErrorCode.INIT_ID_INVALID,
            f"{plugin_id!r} is not a plugin id.",
            "use reverse-DNS in lowercase, e.g. --id com.acme.notes.",
        )


def node_sdk_spec(sdk_dir: Path = NODE_SDK_DIR) -> str:
    """The ``@powerx/plugin`` dependency a Node scaffold gets: the DevKit's own copy
    (``file:``, installed offline) when the DevKit runs from its source tree, else the
    version published on npm."""
    if (sdk_dir / "package.json").is_file():
        return f"file:{sdk_dir}"
    return f"^{NODE_SDK_VERSION}"


def planned_files(template: str, plugin_id: str, name: str) -> dict[str, str]:
    """Relative path -> content of every file the plugin gets."""
    chosen = TEMPLATES.get(template)
    if chosen is None:
        raise PowerXError(
            ErrorCode.INIT_TEMPLATE_UNKNOWN,
            f"No template {template!r}.",
            f"pick one of: {', '.join(TEMPLATES)}.",
        )
    root = TEMPLATES_DIR / template
    files = {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        .replace("__PLUGIN_ID__", plugin_id)
        .replace("__PLUGIN_NAME__", name)
        .replace("__POWERX_PLUGIN_SDK__", json.dumps(node_sdk_spec())[1:-1])
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    files[".gitignore"] = GITIGNORE
    files[".vscode/launch.json"] = _launch_json(chosen, plugin_id)
    files["README.md"] = _readme(chosen, plugin_id, name)
    return files


def write_plugin(folder: Path, template: str, plugin_id: str, name: str) -> list[Path]:
    """Write the plugin into ``folder`` (made if missing); refuse if any file exists."""
    check_id(plugin_id)
    files = planned_files(template, plugin_id, name)
    existing = sorted(rel for rel in files if (folder / rel).exists())
    if existing:
        raise PowerXError(
            ErrorCode.INIT_WOULD_OVERWRITE,
            f"{folder} already has {', '.join(existing)}; nothing was written.",
            "choose an empty or new folder: powerx init NEW-FOLDER.",
        )
    written = []
    for relative, content in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def _launch_json(template: Template, plugin_id: str) -> str:
    """VS Code's attach configuration. Its port and secret are the running simulator's
    (the secret changes each start), so `powerx debug vscode --write` fills them in."""
    entry: dict[str, object] = {
        "name": f"PowerX: {plugin_id}",
        "type": template.debugger,
        "request": "attach",
    }
    body = json.dumps({"version": "0.2.0", "configurations": [entry]}, indent=2)
    return (
        f"// With the simulator running, `powerx debug vscode {plugin_id} --write` fills in\n"
        "// where to attach (the port and this run's secret).\n" + body + "\n"
    )


def _readme(template: Template, plugin_id: str, name: str) -> str:
    url = template.url_path.format(id=plugin_id)
    note = f"\n{template.readme_note}" if template.readme_note else ""
    return f"""# {name}

A PowerX plugin ({template.summary}), made with `powerx init --template {template.name}`.

```sh
powerx login --mock                 # once: a local credential for the simulator
powerx host start --mock . --watch  # serve it; every save reloads it
curl http://127.0.0.1:8787{url}
{template.test_command:<36}# its test ({template.test_file}) runs it in a real simulator
```
{note}
Debug: set a breakpoint with `powerx debug attach {plugin_id}` (a terminal debugger), or
run `powerx debug vscode {plugin_id} --write` and start "PowerX: {plugin_id}" in VS Code.
Breakpoints survive every reload.
"""
