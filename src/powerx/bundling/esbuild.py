"""A long-lived esbuild worker (``runtimes/node_build.js``) for incremental rebuilds.

The first build creates an esbuild context; every later one is ``context.rebuild()``,
which after a one-file edit takes tens of ms instead of a cold start.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

from powerx.bundling.toolchain import node_executable
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.runtimes import NODE_BUILD


class EsbuildWorker:
    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [node_executable(), str(NODE_BUILD)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        return self._process

    def build(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            process = self._ensure()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps(request) + "\n")
                process.stdin.flush()
                line = process.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if not line:
                stderr = process.stderr.read() if process.stderr else ""
                self._process = None
                raise PowerXError(
                    ErrorCode.BUILD_FAILED,
                    f"The esbuild worker stopped: {stderr[-400:]}",
                    "run `npm install` in the plugin folder and retry.",
                )
            answer: dict[str, Any] = json.loads(line)
            return answer

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None


def esbuild_request(
    root: Path, entry: str, outfile: Path, options: dict[str, Any]
) -> dict[str, Any]:
    return {"root": str(root), "entry": entry, "outfile": str(outfile), "options": options}
