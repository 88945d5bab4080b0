"""Attempts that go around this process's guard, which only an operating-system boundary
(the plugin's own network, mount and PID view) can stop: libc's socket calls through
ctypes, children that do not load the guard, the simulator's secrets through /proc, the
other plugin's run tree and process.

Each attempt answers evidence besides its own verdict, and the harness decides on that
(what a victim server saw, the bytes of a file it reads too, a pid it knows): a
connection refused inside an empty network namespace, say, was not on the network.
The other plugin is known by its id, as any plugin's is; nothing else is given.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

AREA = "containment (Python plugin)"
OTHER_PLUGIN = "com.powerx.attack-node"
NETWORK: dict[str, Any] = {"kind": "network"}  # the victim servers decide

Outcome = tuple[str, dict[str, Any]]  # (detail, evidence)


# -- the network, around the guard ------------------------------------------------------


def libc_connect(host: str, port: int, marker: str) -> Outcome:
    """socket(2), connect(2) and send(2) called in libc: no Python socket, no audit event."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "socket")
    try:
        timeout = struct.pack("ll", 3, 0)  # a struct timeval: connect gives up after 3 s
        libc.setsockopt(fd, socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout, len(timeout))
        address = (
            struct.pack("=H", socket.AF_INET)
            + struct.pack("!H", port)
            + socket.inet_aton(host)
            + bytes(8)
        )
        if libc.connect(fd, address, len(address)) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))
        data = marker.encode() + b"\n"
        libc.send(fd, data, len(data), 0)
    finally:
        libc.close(fd)
    return f"libc connected to {host}:{port}", NETWORK


def child(command: list[str]) -> Outcome:
    done = subprocess.run(command, capture_output=True, text=True, timeout=15, check=False)
    output = " ".join((done.stdout + done.stderr).split())[-150:]  # an error's last line
    return f"exit {done.returncode} {output}".strip(), NETWORK


def python_connect(host: str, port: int, marker: str) -> str:
    data = (marker + "\n").encode()
    return f"import socket; socket.create_connection(({host!r}, {port}), 3).sendall({data!r})"


def python_datagram(port: int, marker: str) -> str:
    return (
        "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
        f".sendto({marker.encode()!r}, ('127.0.0.1', {port}))"
    )


def node_connect(host: str, port: int, marker: str) -> str:
    line = json.dumps(marker + "\n")
    on_connect = f"function () {{ this.end({line}); }}"
    return f"require('net').connect({port}, {json.dumps(host)}, {on_connect})"


# -- processes ----------------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process this one can see in /proc."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        with contextlib.suppress(OSError):  # gone, or not ours to read
            stat = Path(f"/proc/{name}/stat").read_text()
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            command = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ")
            table[int(name)] = (parent, command.decode(errors="replace").strip())
    return table


def lineage(pid: int, table: dict[int, tuple[int, str]]) -> list[int]:
    """``pid`` and its ancestors, nearest first."""
    found = []
    while pid in table and pid not in found:
        found.append(pid)
        pid = table[pid][0]
    return found


def powerx_processes(table: dict[int, tuple[int, str]]) -> list[tuple[int, str]]:
    """Processes whose command line mentions powerx, but this one and its descendants:
    its ancestors first (its simulator among them), then those under its simulator."""
    me = os.getpid()
    mine = lineage(me, table)
    simulator = next((p for p in mine if "host start" in table[p][1]), None)

    def rank(pid: int) -> int:
        return (
            mine.index(pid) if pid in mine else len(mine) + (simulator not in lineage(pid, table))
        )

    found = [p for p, (_, command) in table.items() if "powerx" in command]
    return [(p, table[p][1]) for p in sorted(found, key=rank) if me not in lineage(p, table)]


def neighbours(table: dict[int, tuple[int, str]]) -> list[tuple[int, str]]:
    """The other plugins' processes: under this one's simulator, not its ancestors (every
    powerx process but its ancestors where no simulator is among them)."""
    mine = lineage(os.getpid(), table)
    simulator = next((p for p in mine if "host start" in table[p][1]), None)
    return [
        (pid, command)
        for pid, command in powerx_processes(table)
        if pid not in mine and (simulator is None or simulator in lineage(pid, table))
    ]


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def file_evidence(path: Path | str, data: bytes, owner: str = "") -> dict[str, Any]:
    evidence = {"kind": "file", "path": str(path), "sha256": hashlib.sha256(data).hexdigest()}
    return {**evidence, "owner": owner} if owner else evidence


def simulator_environ() -> Outcome:
    for pid, command in powerx_processes(process_table()):
        path = Path(f"/proc/{pid}/environ")
        with contextlib.suppress(OSError):
            data = path.read_bytes()
            if b"POWERX_STATE_DIR=" in data or b"POWERX_CONFIG_HOME=" in data:
                return f"read {path} of {command[:60]!r}", file_evidence(path, data)
    raise PermissionError("no powerx process's environment could be read")


def config_homes() -> list[Path]:
    """Where ``powerx login`` writes, for this process's environment and every readable
    environment of a powerx process."""
    environments = [dict(os.environ)]
    for pid, _ in powerx_processes(process_table()):
        with contextlib.suppress(OSError):
            environments.append(environ(pid))
    homes = []
    for env in environments:
        if env.get("POWERX_CONFIG_HOME"):
            homes.append(Path(env["POWERX_CONFIG_HOME"]))
        if env.get("XDG_CONFIG_HOME"):
            homes.append(Path(env["XDG_CONFIG_HOME"]) / "powerx")
        if env.get("HOME"):
            homes.append(Path(env["HOME"]) / ".config" / "powerx")
    return list(dict.fromkeys(homes))


def credential() -> Outcome:
    tried = config_homes()
    for home in tried:
        path = home / "credentials.json"
        with contextlib.suppress(OSError, ValueError):
            data = path.read_bytes()
            if "token" in json.loads(data):
                return f"read {path}: a token", file_evidence(path, data)
    raise PermissionError(f"no credentials.json readable in {len(tried)} config homes")


def signal_other() -> Outcome:
    """Signal 0: delivered or refused, and nothing else happens to the process."""
    reached = []
    for pid, command in neighbours(process_table()):
        with contextlib.suppress(OSError):
            os.kill(pid, 0)
            reached.append([pid, command[:120]])
    if not reached:
        raise ProcessLookupError("no other powerx process could be signalled")
    return f"signal 0 delivered to {len(reached)} process(es)", {
        "kind": "signalled",
        "processes": reached,
    }


def visible_processes() -> Outcome:
    seen = [[pid, command[:120]] for pid, command in powerx_processes(process_table())]
    if not seen:
        raise ProcessLookupError("no powerx process visible in /proc but this one's own")
    return f"{len(seen)} other powerx process(es) visible", {"kind": "visible", "processes": seen}


# -- run trees ----------------------------------------------------------------------------


def tree_owner(folder: Path) -> str | None:
    with contextlib.suppress(OSError, ValueError):
        return str(json.loads((folder / "artefact.json").read_text())["plugin"])
    return None


def own_tree() -> Path:
    """Found from this file (the plugin's working folder is the simulator's, not its tree)."""
    here = Path(__file__).resolve().parent
    for folder in (here, *here.parents):
        if tree_owner(folder) is not None:
            return folder
    raise FileNotFoundError("no run tree above this plugin's files")


def trees_under(folder: Path, depth: int, plugin: str) -> list[Path]:
    """Run trees of ``plugin`` at most ``depth`` folders below ``folder``."""
    if tree_owner(folder) == plugin:
        return [folder]
    if depth == 0:
        return []
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []
    return [tree for child in children for tree in trees_under(child, depth - 1, plugin)]


def sibling_trees() -> list[Path]:
    """The other plugin's run trees at the nearest level up from this plugin's own: the
    run root lays them out as <project>/<digest> or <project>/<plugin id>/<digest>."""
    for level, ancestor in enumerate(own_tree().parents[:3], start=1):
        found = trees_under(ancestor, level, OTHER_PLUGIN)
        if found:
            return found
    raise FileNotFoundError("no run tree of the other plugin beside this plugin's own")


def prefix_trees() -> list[Path]:
    found = trees_under(Path(f"/dev/shm/powerx-{os.getuid()}"), 3, OTHER_PLUGIN)
    if not found:
        raise FileNotFoundError("no run tree of the other plugin under /dev/shm/powerx-<uid>")
    return found


def listed(trees: list[Path]) -> Outcome:
    names = sorted(os.listdir(trees[0]))
    detail = f"listed {trees[0]}: {names}"
    return detail, {"kind": "tree", "paths": [str(t) for t in trees]}


def read_other() -> Outcome:
    tree = sibling_trees()[0]
    path = tree / json.loads((tree / "artefact.json").read_text())["runnable"]
    data = path.read_bytes()
    return f"read {len(data)} bytes of {path}", file_evidence(path, data, owner="other")


def write_marker(tree: Path, marker: str, owner: str) -> Outcome:
    """A marker file only (the harness removes it), never a change to the plugin's files."""
    path = tree / f".powerx-attack-{marker}"
    path.write_text(marker)
    return f"wrote {path}", {"kind": "written", "path": str(path), "owner": owner}


# -- the run ------------------------------------------------------------------------------


def attempts(targets: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []

    def attempt(name: str, action: Callable[[str], Outcome]) -> None:
        marker = name + "_from_python"  # unique across both plugins: the victims tell them apart
        try:
            (detail, evidence), through = action(marker), True
        except Exception as error:
            detail, evidence, through = f"{type(error).__name__}: {error}", {}, False
        results.append(
            {
                "area": AREA,
                "attempt": marker,
                "through": through,
                "detail": detail[:300],
                "evidence": evidence,
            }
        )

    victim, victim_udp = targets["victim_tcp"], targets["victim_udp"]
    machine = targets.get("machine_address")
    bare = ["env", "-i"]  # no PYTHONPATH, no NODE_OPTIONS, no proxy: no guard loads
    isolated = [sys.executable, "-I", "-S", "-c"]  # ignores PYTHONPATH and site

    attempt("ctypes_connect_loopback", lambda m: libc_connect("127.0.0.1", victim, m))
    if machine:
        attempt("ctypes_connect_machine", lambda m: libc_connect(machine, victim, m))
    attempt("isolated_python", lambda m: child([*isolated, python_connect("127.0.0.1", victim, m)]))
    attempt(
        "curl_empty_env",
        lambda m: child(
            [*bare, "curl", "--noproxy", "*", "-sS", "-m", "5", f"http://127.0.0.1:{victim}/{m}"]
        ),
    )
    attempt(
        "node_empty_env",
        lambda m: child([*bare, "node", "-e", node_connect("127.0.0.1", victim, m)]),
    )
    attempt("udp_bare_child", lambda m: child([*bare, *isolated, python_datagram(victim_udp, m)]))
    attempt("simulator_environ", lambda m: simulator_environ())
    attempt("credentials_file", lambda m: credential())
    attempt("other_tree_walking_up", lambda m: listed(sibling_trees()))
    attempt("other_tree_by_prefix", lambda m: listed(prefix_trees()))
    attempt("other_tree_read", lambda m: read_other())
    attempt("other_tree_write", lambda m: write_marker(sibling_trees()[0], m, "other"))
    attempt("own_tree_write", lambda m: write_marker(own_tree(), m, "own"))
    attempt("signal_other_plugin", lambda m: signal_other())
    attempt("proc_other_processes", lambda m: visible_processes())
    return results
