"""What runs inside a plugin process, and the line protocol it speaks to the supervisor.

A shim writes control messages to stdout as single lines starting with ``@@powerx ``
followed by JSON (``{"event": "ready", "port": N}``, or ``"unix": PATH`` when it listens
on a unix socket, or ``{"event": "error", ...}``);
every other line is the plugin's own output. When its stdin closes (the simulator went
away, however abruptly) the shim exits, so no plugin process outlives its simulator.
"""

from pathlib import Path

CONTROL_PREFIX = "@@powerx "
# Set (in a sandbox): listen on a unix socket in this folder, not on a loopback port.
LISTEN_DIR_ENV = "POWERX_LISTEN_DIR"
# A zygote's first modules to import as the plugin would (JSON list of names).
WARM_ENV = "POWERX_WARM"
# A Node spare's: {"node_path": a plugin's node_modules, "modules": [what to require()]}.
NODE_PRELOAD_ENV = "POWERX_NODE_PRELOAD"
NODE_SHIM = Path(__file__).with_name("node_shim.js")
# Writes the V8 code cache of a Node spare's preloaded dependencies (run by the simulator).
NODE_CODE_CACHE = Path(__file__).with_name("node_code_cache.js")
NODE_BUILD = Path(__file__).with_name("node_build.js")
# Preloaded (NODE_OPTIONS) by every Node process a Node plugin starts: the same guard.
NODE_EGRESS_PRELOAD = Path(__file__).with_name("egress_preload.js")
# On PYTHONPATH of Python plugins, so the Python processes they start load the guard.
PYTHON_CHILD_PATH = Path(__file__).with_name("python_child")
# Set for a backend program that starts a Python: its sitecustomize loads the debugger and
# waits for the simulator's breakpoints before the program's own code runs.
DEBUG_PROGRAM_ENV = "POWERX_DEBUG_PROGRAM"
