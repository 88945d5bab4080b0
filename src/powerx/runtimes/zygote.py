"""A warm parent that forks Python plugin generations (Linux).

Starting a generation from a fresh interpreter costs ~250 ms (interpreter + server stack);
forking this process, which has the stack imported already, costs a few ms, so a reload
pays only for importing the plugin's own code.

Protocol, over a SOCK_SEQPACKET unix socket inherited as fd ``argv[1]``:
- supervisor -> zygote: one message ``{"id": n, "argv": [...], "env": {...}}`` carrying
  three fds (the child's stdin, stdout, stderr) as SCM_RIGHTS; or ``{"warm": [names]}``,
  modules of the plugin's environment a generation loaded, to import here too;
- zygote -> supervisor: ``{"id": n, "pid": p}`` once forked, and ``{"exited": p, "code": c}``
  when a child ends (the zygote is its parent, so it reaps it and reports the code).

A plugin's own dependencies are imported here too (``POWERX_WARM``, then each ``warm``
message), as plugin code would import them (``runtimes/isolation.py``), so a generation
imports only the plugin's own modules.

The zygote stays single-threaded and runs no event loop, so forking it is safe. It exits
when the supervisor's end of the socket closes.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys
import threading
from typing import Any

from powerx.runtimes import WARM_ENV, isolation, python_shim


def _run_child(order: dict[str, Any], fds: list[int], control: socket.socket, wake: int) -> None:
    control.close()
    os.close(wake)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(order["env"])
    try:
        python_shim.main(list(order["argv"]))
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
        sys.stdout.flush()
        os._exit(code)
    except BaseException:
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        message = {"exited": pid, "code": os.waitstatus_to_exitcode(status)}
        control.send(json.dumps(message).encode())


def serve(control: socket.socket) -> None:
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake select via the wakeup fd
    control.send(json.dumps({"ready": os.getpid()}).encode())
    while True:
        readable, _, _ = select.select([control.fileno(), wake_read], [], [])
        if wake_read in readable:
            while True:
                try:
                    if not os.read(wake_read, 512):
                        break
                except BlockingIOError:
                    break
            _reap(control)
        if control.fileno() not in readable:
            continue
        data, fds, _, _ = socket.recv_fds(control, 1 << 20, 3)
        if not data:
            return  # the supervisor is gone
        order = json.loads(data)
        if "warm" in order:
            _warm(order["warm"])
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _run_child(order, fds, control, wake_read)
        for fd in fds:
            os.close(fd)
        control.send(json.dumps({"id": order["id"], "pid": pid}).encode())


def _freeze() -> None:
    """Move everything imported so far out of the garbage collector's sight: a child's
    collections would otherwise walk (and, touching each object, copy) the whole inherited
    heap, tens of ms with a heavy plugin's dependencies loaded."""
    gc.collect()
    gc.freeze()
    isolation.mark_imported()  # a child reports only what it imported beyond this


def _warm(names: list[str]) -> None:
    """Import the plugin's third-party modules (as the plugin would). A module that starts
    a thread when imported would make forking unsafe: it is said once, on stderr."""
    threads = threading.active_count()
    isolation.import_as_plugin(name for name in names if name not in sys.modules)
    _freeze()
    if threading.active_count() > threads:
        sys.stderr.write(
            "powerx zygote: a dependency started a thread when imported; generations forked "
            "from here will not have it\n"
        )


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    python_shim.preload()
    sealed = isolation.from_env()
    if sealed is not None:
        isolation.seal(sealed)
    _warm(json.loads(os.environ.pop(WARM_ENV, "[]")))  # freezes what it has, even if none
    serve(control)


if __name__ == "__main__":
    main()
