"""Hot-reload smoke drill: the positive path and the version-mismatch path.

Runs a real simulator with `--watch` on copies of both examples, then
1. edits each plugin and checks the new code serves (positive path);
2. narrows the Python plugin's host.api to exclude the image and checks the reload is
   refused as version_mismatch while the previous generation keeps serving.
Exit code 0 only when both behave.  Usage: python scripts/workflows/hot_reload_smoke.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from powerx.testing import LocalSimulator

REPO = Path(__file__).resolve().parents[2]
PY_ID, NODE_ID = "com.example.hello-python", "com.example.hello-node"


def replace_line(path: Path, prefix: str, new: str) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(new if line.startswith(prefix) else line for line in lines) + "\n")


def check(label: str, ok: bool, detail: str = "") -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {label}" + (f"  ({detail})" if detail else ""))
    return ok


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="powerx-smoke-") as tmp:
        work = Path(tmp)
        python_plugin = work / "hello-python"
        node_plugin = work / "hello-node"
        shutil.copytree(REPO / "examples/hello-python", python_plugin)
        shutil.copytree(REPO / "examples/hello-node", node_plugin, symlinks=True)
        results = []
        with LocalSimulator([python_plugin, node_plugin], watch=True, workdir=work) as sim:
            time.sleep(0.3)  # let the watchers arm
            started = time.perf_counter()
            replace_line(python_plugin / "app.py", "GREETING =", 'GREETING = "smoke python"')
            served = sim.wait_for(
                f"/plugins/{PY_ID}/", lambda r: r.status_code == 200 and "smoke python" in r.text
            )
            results.append(
                check(
                    "python edit is served",
                    served is not None,
                    f"{(time.perf_counter() - started) * 1000:.0f} ms",
                )
            )
            started = time.perf_counter()
            replace_line(
                node_plugin / "src/index.ts", "const GREETING", 'const GREETING = "smoke node";'
            )
            served = sim.wait_for(
                f"/plugins/{NODE_ID}/", lambda r: r.status_code == 200 and "smoke node" in r.text
            )
            results.append(
                check(
                    "node edit is served",
                    served is not None,
                    f"{(time.perf_counter() - started) * 1000:.0f} ms",
                )
            )

            manifest = python_plugin / "plugin.yaml"
            replace_line(manifest, "  api:", '  api: "^3.0"')
            replace_line(python_plugin / "app.py", "GREETING =", 'GREETING = "must not serve"')
            deadline = time.monotonic() + 10
            while "version_mismatch" not in sim.output() and time.monotonic() < deadline:
                time.sleep(0.05)
            results.append(
                check("mismatch is refused as version_mismatch", "version_mismatch" in sim.output())
            )
            response = sim.get(f"/plugins/{PY_ID}/")
            results.append(
                check(
                    "previous generation keeps serving",
                    response.status_code == 200 and "smoke python" in response.text,
                    response.text[:60],
                )
            )
            status = sim.powerx("host", "status", "--json")
            mismatches = '"version_mismatch": 1' in status.stdout
            results.append(check("mismatch is counted", mismatches))
        if not all(results):
            print("\n--- simulator output ---")
            print(sim.output())
        return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
