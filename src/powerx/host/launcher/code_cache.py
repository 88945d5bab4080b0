"""V8's code cache of a Node plugin's dependencies, for its warm spares to compile from.

Made once per install and set of preloaded packages (``NodePreload.code_cache`` names the
folder) by ``runtimes/node_code_cache.js``, run where the spare runs (in the plugin's
sandbox, which sees node_modules read-only): it prints each module file's cache and this
module writes the files, then renames the folder into place, so a spare finds a whole
cache or none. Measured on the heavy benchmark plugin: its spare's require() of express,
lodash and typescript drops from ~230 ms to ~130 ms.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from powerx.bundling.toolchain import node_executable
from powerx.host.launcher.process import NodePreload, spawn
from powerx.runtimes import CONTROL_PREFIX, NODE_CODE_CACHE

if TYPE_CHECKING:
    from powerx.host.sandbox import Sandbox

_KEY = re.compile(r"^[0-9a-f]{40}$")
# Loading a plugin's packages takes well under a second; one that hangs at load is not
# waited for by every spare.
MAKE_TIMEOUT_S = 30.0


def code_cache_command(preload: NodePreload) -> list[str]:
    return [
        node_executable(),
        str(NODE_CODE_CACHE),
        preload.node_modules,
        json.dumps(preload.modules),
    ]


def cache_entries(output: bytes) -> dict[str, bytes]:
    """The cache files in the maker's output: its control lines (other lines are what a
    package printed as it loaded); a key that is not a plain hash is not a file name."""
    entries: dict[str, bytes] = {}
    prefix = CONTROL_PREFIX.encode()
    for line in output.splitlines():
        if not line.startswith(prefix):
            continue
        try:
            message = json.loads(line[len(prefix) :])
            key, data = message["key"], base64.b64decode(message["data"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            continue
        if isinstance(key, str) and _KEY.match(key):
            entries[key] = data
    return entries


async def ensure_code_cache(
    preload: NodePreload, env: Mapping[str, str], cwd: str, sandbox: Sandbox | None
) -> bool:
    """Make ``preload``'s code cache unless it is there; False when there is none (a
    spare then compiles from source, as before). Once per install and package set, in a
    spare's start-up (the first spare after an install waits for it, ~0.3 s). A maker
    that fails or hangs leaves an empty cache, so it is not tried again for each spare."""
    folder = preload.code_cache
    if folder.is_dir() or not preload.modules:
        return folder.is_dir()
    output = b""
    try:
        maker = await spawn(code_cache_command(preload), env, cwd, sandbox)
    except OSError:
        pass
    else:
        maker.close_stdin()
        try:
            async with asyncio.timeout(MAKE_TIMEOUT_S):
                output, _ = await asyncio.gather(maker.stdout.read(), maker.stderr.read())
                if await maker.wait() != 0:
                    output = b""
        except TimeoutError:
            maker.kill()
            await maker.wait()
            output = b""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=folder.parent))
    except OSError:  # node_modules not writable: spares compile from source
        return False
    try:
        for key, data in cache_entries(output).items():
            (partial / key).write_bytes(data)
        os.replace(partial, folder)
    except OSError:  # another simulator on this folder made it meanwhile
        shutil.rmtree(partial, ignore_errors=True)
    return folder.is_dir()
