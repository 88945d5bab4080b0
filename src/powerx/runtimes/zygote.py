"""A warm parent that forks Python plugin generations (Linux).

Starting a generation from a fresh interpreter costs ~250 ms (interpreter + server stack);
forking this process, which has the stack imported already, costs a few ms, so a reload
pays only for importing the plugin's own code.

Protocol, over a SOCK_SEQPACKET unix socket inherited as fd ``argv[1]``:
- supervisor -> zygote: one message ``{"id": n, "argv": [...], "env": {...}}`` carrying
  three fds (the child's stdin, stdout, stderr) as SCM_RIGHTS; ``{"warm": [names]}``,
  modules of the plugin's environment a generation loaded, to import here too; or
  ``{"prefork": true}``: fork the next child now, to wait for its order (see below);
- zygote -> supervisor: ``{"id": n, "pid": p}`` once forked, and ``{"exited": p, "code": c}``
  when a child ends (the zygote is its parent, so it reaps it and reports the code).

A plugin's own dependencies are imported here too (``POWERX_WARM``, then each ``warm``
message), as plugin code would import them (``runtimes/isolation.py``), so a generation
imports only the plugin's own modules.

A forked child first copies every page it writes to (copy-on-write): touching the
inherited heap, as importing the plugin does, costs it ~1 ms per 400 pages, ~8 ms of the
~21 ms a FastAPI + SQLAlchemy plugin takes to import (measured). A child forked ahead
(``prefork``, sent once a generation has settled) takes those copies while nobody waits,
then waits for its order; the order that finds it is served by it.

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


def _detach(closing: list[socket.socket], wake: int) -> None:
    """A new child lets go of the zygote's ends and signals, in a session of its own."""
    for sock in closing:
        sock.close()
    os.close(wake)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()


def _run_order(order: dict[str, Any], fds: list[int]) -> None:
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


def _touch_heap() -> None:
    """Write to (take a private copy of) the pages of every object the garbage collector
    knows: their reference counts change as they are listed and let go."""
    gc.unfreeze()
    every = gc.get_objects()
    del every
    gc.freeze()


class Zygote:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)
        self.ahead: tuple[int, socket.socket] | None = None  # a child waiting for an order

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            message = {"exited": pid, "code": os.waitstatus_to_exitcode(status)}
            self.control.send(json.dumps(message).encode())

    def _fork(self) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        return os.fork()

    def _fork_ahead(self) -> None:
        if self.ahead is not None:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = self._fork()
        if pid == 0:
            _detach([self.control, ours], self.wake_read)
            _touch_heap()
            data, fds, _, _ = socket.recv_fds(theirs, 1 << 20, 3)
            if not data:
                os._exit(0)  # not needed after all
            theirs.close()
            _run_order(json.loads(data), fds)
        theirs.close()
        self.ahead = (pid, ours)

    def _drop_ahead(self) -> None:
        """The child forked ahead lacks what was imported since: it ends (unused)."""
        if self.ahead is not None:
            self.ahead[1].close()
            self.ahead = None

    def _start(self, data: bytes, order: dict[str, Any], fds: list[int]) -> int:
        """A child for the order: the one forked ahead if it is there, else a new one."""
        if self.ahead is not None:
            pid, sock = self.ahead
            self.ahead = None
            try:
                socket.send_fds(sock, [data], fds)
                return pid
            except OSError:
                pass  # it died meanwhile: fork one now
            finally:
                sock.close()
        pid = self._fork()
        if pid == 0:
            _detach([self.control], self.wake_read)
            _run_order(order, fds)
        return pid

    def _warm(self, names: list[str]) -> None:
        before = len(sys.modules)
        _warm(names)
        if len(sys.modules) != before and self.ahead is not None:
            self._drop_ahead()
            self._fork_ahead()

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake select via the wakeup fd
        self.control.send(json.dumps({"ready": os.getpid()}).encode())
        while True:
            readable, _, _ = select.select([self.control.fileno(), self.wake_read], [], [])
            if self.wake_read in readable:
                while True:
                    try:
                        if not os.read(self.wake_read, 512):
                            break
                    except BlockingIOError:
                        break
                self._reap()
            if self.control.fileno() not in readable:
                continue
            data, fds, _, _ = socket.recv_fds(self.control, 1 << 20, 3)
            if not data:
                self._drop_ahead()
                return  # the supervisor is gone
            order = json.loads(data)
            if "warm" in order:
                self._warm(order["warm"])
                continue
            if "prefork" in order:
                self._fork_ahead()
                continue
            pid = self._start(data, order, fds)
            for fd in fds:
                os.close(fd)
            self.control.send(json.dumps({"id": order["id"], "pid": pid}).encode())


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
    Zygote(control).serve()


if __name__ == "__main__":
    main()
