"""The Node SDK (``packages/powerx-plugin``, ``@powerx/plugin``) types what a handler plugin
gets, checked by a real ``tsc``: the example uses the package (no copied ``.d.ts``), a
misuse is an error, and the types match the runtime that builds ``env.host``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from powerx.runtimes import NODE_SHIM

REPO = Path(__file__).resolve().parents[2]
HELLO_NODE = REPO / "examples" / "hello-node"
PACKAGE = REPO / "packages" / "powerx-plugin"
TSC = HELLO_NODE / "node_modules" / ".bin" / "tsc"
COMPILER_OPTIONS = {
    "target": "ES2022",
    "module": "ESNext",
    "moduleResolution": "Bundler",
    "strict": True,
    "lib": ["ES2022", "DOM"],
    "noEmit": True,
    "allowJs": True,
    "paths": {
        "@powerx/plugin": [str(PACKAGE / "index.d.ts")],
        "@powerx/plugin/testing": [str(PACKAGE / "testing.d.ts")],
    },
}

MISUSE = """import type { Handler } from "@powerx/plugin";

export default {
  async fetch(request, env) {
    const contacts = await env.host.contacts.list();
    await env.host.kv.put("when", new Date());
    return Response.json({ first: contacts[0]?.nmae, who: env.TENANT.toFixed() });
  },
} satisfies Handler;
"""

# The object the runtime hands a plugin as env.host, assigned to the package's Host type:
# a method the runtime lacks (or names differently) is an error.
RUNTIME_MATCHES_TYPES = f"""import type {{ Host }} from "@powerx/plugin";
import {{ createHost }} from "{NODE_SHIM.with_name("powerx_host.js")}";

const options = {{ baseUrl: "", token: "", tenant: "acme", grant: "", socketPath: "" }};
const host: Host = createHost(options);
export default host;
"""


TESTING_USE = """import { LocalSimulator, waitUntil } from "@powerx/plugin/testing";

export async function greets(): Promise<string> {
  const sim = await LocalSimulator.start(["."], { watch: true, args: ["--image", "3.0.0"] });
  try {
    const response: Response = await sim.fetch("/plugins/com.example.p/", { method: "GET" });
    const serving = await sim.waitGeneration("com.example.p", 2);
    const armed: boolean = serving.watch.armed;
    await waitUntil(async () => (await sim.pluginStatus("com.example.p"))?.state === "running");
    return `${response.status} ${armed} ${sim.url} ${sim.output().length}`;
  } finally {
    await sim.stop();
  }
}
"""


def tsc(folder: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    for name, text in files.items():
        (folder / name).write_text(text)
    config = {"compilerOptions": COMPILER_OPTIONS, "files": sorted(files)}
    (folder / "tsconfig.json").write_text(json.dumps(config))
    return subprocess.run(
        [str(TSC), "--noEmit", "--pretty", "false", "-p", "tsconfig.json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_package_is_ready_to_publish() -> None:
    manifest = json.loads((PACKAGE / "package.json").read_text())
    assert manifest["name"] == "@powerx/plugin" and not manifest.get("private")
    assert manifest["exports"]["."]["types"] == "./index.d.ts"
    for name in manifest["files"]:
        assert (PACKAGE / name).is_file(), name
    assert (PACKAGE / "README.md").is_file()


def test_the_example_uses_the_package_instead_of_a_copy_and_type_checks() -> None:
    manifest = json.loads((HELLO_NODE / "package.json").read_text())
    assert manifest["devDependencies"]["@powerx/plugin"] == "file:../../packages/powerx-plugin"
    assert not list(HELLO_NODE.glob("src/*.d.ts"))
    assert '"@powerx/plugin"' in (HELLO_NODE / "src" / "index.ts").read_text()
    result = subprocess.run(
        [str(TSC), "--noEmit", "--pretty", "false"],
        cwd=HELLO_NODE,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_misuse_of_env_is_a_type_error_with_file_and_line(tmp_path: Path) -> None:
    result = tsc(tmp_path, {"index.ts": MISUSE})
    assert result.returncode != 0
    errors = result.stdout.splitlines()
    assert any(line.startswith("index.ts(6,") and "'Date'" in line for line in errors), errors
    assert any(line.startswith("index.ts(7,") and "'nmae'" in line for line in errors), errors
    assert any(line.startswith("index.ts(7,") and "'toFixed'" in line for line in errors), errors


def test_the_types_describe_the_host_the_runtime_builds(tmp_path: Path) -> None:
    result = tsc(tmp_path, {"check.ts": RUNTIME_MATCHES_TYPES})
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_testing_helper_is_typed_for_a_typescript_test(tmp_path: Path) -> None:
    manifest = json.loads((PACKAGE / "package.json").read_text())
    assert manifest["exports"]["./testing"] == {
        "types": "./testing.d.ts",
        "default": "./testing.js",
    }
    result = tsc(tmp_path, {"plugin.test.ts": TESTING_USE})
    assert result.returncode == 0, result.stdout + result.stderr
    misuse = TESTING_USE.replace('waitGeneration("com.example.p", 2)', "waitGeneration(2)")
    result = tsc(tmp_path, {"plugin.test.ts": misuse})
    assert "plugin.test.ts(7," in result.stdout and "TS2554" in result.stdout, result.stdout
