"""Run one Python plugin generation: import its ASGI app and serve it on a loopback port.

Usage: ``python -m powerx.runtimes.python_shim ROOT ENTRY_FILE ATTRIBUTE``, or
``python -m powerx.runtimes.python_shim --spare``: a warm spare that has imported the
server stack already and waits for one JSON line on stdin, ``{"argv": [...], "env": {...}}``.
The fork zygote (``zygote.py``) calls :func:`main` in a forked child instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import secrets
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from powerx.runtimes import LISTEN_DIR_ENV, egress_guard, isolation
from powerx_plugin import answer_denials

CONTROL_PREFIX = "@@powerx "
HEALTH_PATH = "/__powerx/health"
PREFIX_HEADER = b"x-forwarded-prefix"
DEBUG_ENV = "POWERX_DEBUGGER"


def _control(event: str, **fields: Any) -> None:
    sys.stdout.write(CONTROL_PREFIX + json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _fail(kind: str, exc: BaseException, root: Path) -> None:
    """Report where the plugin's code broke (deepest frame inside the plugin) and exit."""
    file, line, source = None, None, None
    if isinstance(exc, SyntaxError) and exc.filename:
        file, line = exc.filename, exc.lineno
    else:
        for frame in traceback.extract_tb(exc.__traceback__):
            if Path(frame.filename).resolve().is_relative_to(root):
                file, line, source = frame.filename, frame.lineno, frame.line
    if file is not None and Path(file).resolve().is_relative_to(root):
        file = str(Path(file).resolve().relative_to(root))
    _control(
        "error",
        kind=kind,
        file=file,
        line=line,
        message=f"{type(exc).__name__}: {exc}",
        source=source,  # the line's text, e.g. the import statement
        # A module nothing provides: the simulator says how to provide it.
        module=exc.name if isinstance(exc, ModuleNotFoundError) else None,
        traceback="".join(traceback.format_exception(exc)),
    )
    sys.exit(1)


def _exit_when_parent_goes() -> None:
    """The simulator holds our stdin open; EOF means it is gone, so we go too."""

    def wait() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=wait, name="powerx-parent-watch", daemon=True).start()


def load_app(root: Path, entry_file: str, attribute: str) -> Any:
    sys.path.insert(0, str(root))
    module_name = Path(entry_file).with_suffix("").as_posix().replace("/", ".")
    spec = importlib.util.spec_from_file_location(module_name, root / entry_file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {entry_file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise AttributeError(
            f"{entry_file} defines no '{attribute}' (the manifest's entry names it)"
        ) from None


def with_health_route(app: Any) -> Any:
    """Answer the supervisor's health probe in the shim, whatever routes the plugin has."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == HEALTH_PATH:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"ok":true}'})
            return
        await app(scope, receive, send)

    return wrapped


def kept_alive_after_errors(app: Any) -> Any:
    """An exception the app raises after its response went out in full (Starlette's error
    middleware sends its 500, then raises again) is logged here, as uvicorn would log it,
    and not passed on: uvicorn would close the kept-alive connection, and the simulator's
    next request, already on its way over it, would fail (a 502 instead of the answer)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        done = False

        async def tracked(message: Any) -> None:
            nonlocal done
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done = True

        try:
            await app(scope, receive, tracked)
        except Exception:
            if not done:
                raise
            sys.stderr.write("Exception in ASGI application\n" + traceback.format_exc())
            sys.stderr.flush()

    return wrapped


def with_root_path(app: Any) -> Any:
    """Mount the app where the simulator says it is (``X-Forwarded-Prefix``, sent only by
    the simulator, the one caller of this loopback port): ASGI ``root_path`` is the prefix
    and ``path`` includes it, as uvicorn's ``--root-path`` does, so redirects, ``url_for``
    and FastAPI's ``/docs`` (which fetches ``openapi.json`` under ``root_path``) point
    at the simulator's URLs, not at this process's."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            prefix = next((v for k, v in scope["headers"] if k == PREFIX_HEADER), b"")
            prefix = prefix.rstrip(b"/")
            if prefix.startswith(b"/") and prefix.isascii():
                root = prefix.decode("ascii")
                raw_path = scope.get("raw_path") or scope["path"].encode()
                scope = {
                    **scope,
                    "root_path": root,
                    "path": root + scope["path"],
                    "raw_path": prefix + raw_path,
                }
        await app(scope, receive, send)

    return wrapped


def _listening_socket() -> tuple[socket.socket, dict[str, Any]]:
    """A loopback port, or (in a sandbox) a unix socket in the folder the simulator
    reaches directly; and how to tell the simulator where."""
    folder = os.environ.get(LISTEN_DIR_ENV)
    if folder:
        path = os.path.join(folder, f"http-{os.getpid()}-{secrets.token_hex(4)}.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(128)
        return sock, {"unix": path}
    # IPPROTO_TCP so asyncio turns on TCP_NODELAY (see cli/foreground: bind_socket).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock, {"port": sock.getsockname()[1]}


def reporting_modules(app: Any, sealed: isolation.Isolation) -> Any:
    """After the plugin's first answer, tell the simulator which modules of its own
    environment it has loaded (at import and for that request): its zygote imports them
    too, so the next generation finds them loaded."""
    reported = False

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        nonlocal reported
        try:
            await app(scope, receive, send)
        finally:
            if not reported and scope["type"] == "http":
                reported = True
                names = isolation.environment_modules(sealed)
                if names:
                    _control("modules", names=names)

    return wrapped


async def serve(app: Any, sealed: isolation.Isolation | None = None) -> None:
    import uvicorn

    if sealed is not None and sealed.site:
        app = reporting_modules(app, sealed)
    sock, where = _listening_socket()
    config = uvicorn.Config(
        with_health_route(kept_alive_after_errors(answer_denials(with_root_path(app)))),
        log_level="warning",
        lifespan="auto",
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the plugin's startup failed")
        await asyncio.sleep(0.002)
    isolation.reseal()  # what the server's own start imported again
    _control("ready", **where, pid=os.getpid())
    await task


def preload() -> None:
    """Import ahead of time what every generation needs, including what its first request
    imports lazily (httpx's async transport via anyio, idna); a generation then pays only
    for its own code. Measured: the first request of a fresh process drops from ~30-60 ms
    to a few ms."""
    import encodings.idna  # noqa: F401
    import importlib.resources  # noqa: F401

    import anyio._backends._asyncio  # noqa: F401
    import httpcore  # noqa: F401
    import httpx
    import starlette.applications
    import starlette.responses
    import starlette.routing  # noqa: F401
    import uvicorn
    import uvicorn.lifespan.on
    import uvicorn.loops.auto
    import uvicorn.protocols.http.auto
    import uvicorn.protocols.http.h11_impl
    import uvicorn.protocols.websockets.auto  # noqa: F401

    import powerx_plugin  # noqa: F401

    _preload_debugger()

    # Build (and drop) one client: resolves httpx's transport and httpcore's async pool.
    httpx.AsyncClient(verify=False)


def _preload_debugger() -> None:
    """debugpy's server side costs ~80 ms to import; a generation that debugs then starts
    listening in ~40 ms. Importing starts no thread, so the zygote stays safe to fork."""
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # no frozen-modules warning
    import debugpy.server.api  # noqa: F401


def _send_each_message_in_one_write() -> None:
    """pydevd writes a message as two sends (header, body) on a socket with Nagle's
    algorithm on: the second waits for the client's delayed ACK, ~40 ms per message.
    Measured: the breakpoint handshake drops from ~175 ms to ~5 ms of messaging."""
    from _pydevd_bundle import pydevd_net_command  # vendored by debugpy, importable now
    from _pydevd_bundle.pydevd_constants import HTTP_JSON_PROTOCOL, HTTP_PROTOCOL, get_protocol

    def send(self: Any, sock: socket.socket) -> None:
        body = self._as_bytes
        if get_protocol() in (HTTP_PROTOCOL, HTTP_JSON_PROTOCOL):
            body = b"Content-Length: %d\r\n\r\n" % len(body) + body
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(body)
        for callback in self._after_send or ():
            callback(sock)

    pydevd_net_command.NetCommand.send = send


def start_debugger() -> None:
    """With POWERX_DEBUGGER=1: listen for the simulator's DAP connection and wait until it
    has replayed the breakpoints (configurationDone) before any plugin code runs.

    The port is on loopback, where any local process can reach it, and pydevd would run
    whatever a client asks. So the listener wants an access token (made here, told only
    to the simulator on the private control pipe, never put in the environment), and it
    is closed once the simulator is in: pydevd would otherwise let a second client take
    the session over."""
    if os.environ.get(DEBUG_ENV) == "1":
        listen_for_debugger()


def listen_for_debugger() -> None:
    """:func:`start_debugger`'s work, also done by a backend program's sitecustomize."""
    _preload_debugger()  # a cold start has not: it puts pydevd's own modules on the path
    import debugpy

    _send_each_message_in_one_write()
    token = secrets.token_urlsafe(32)
    with _pydevd_access_token(token):
        _, port = debugpy.listen(("127.0.0.1", 0), in_process_debug_adapter=True)
    _control("debug", port=port, token=token, pid=os.getpid())
    debugpy.wait_for_client()
    _stop_listening()


@contextlib.contextmanager
def _pydevd_access_token(token: str) -> Iterator[None]:
    """debugpy.listen() has no token argument in its in-process mode, but hands its keyword
    arguments to pydevd.settrace(), which has one: pass it there, so the token is in
    place before the socket listens (set afterwards, a fast client could slip in first)."""
    from debugpy.server import api

    listen_settrace: Callable[..., Any] = api._settrace

    def settrace(*args: Any, **kwargs: Any) -> Any:
        return listen_settrace(*args, access_token=token, **kwargs)

    api._settrace = settrace
    try:
        yield
    finally:
        api._settrace = listen_settrace


def _stop_listening() -> None:
    """The simulator is connected: accept nobody else (a new client would replace it)."""
    import pydevd

    waiting = getattr(pydevd.get_global_debugger(), "_waiting_for_connection_thread", None)
    server = getattr(waiting, "_server_socket", None)
    if waiting is None or server is None:
        return
    try:
        listening = server.dup()
    except OSError:
        listening = None
    waiting.do_kill_pydev_thread()  # marks the thread done and closes its socket object
    if listening is not None:
        # The thread is still blocked in accept() on the socket; this wakes it (and the
        # port stops listening at once), and it sees that it is done.
        with contextlib.suppress(OSError):
            listening.shutdown(socket.SHUT_RDWR)
        listening.close()


def wait_as_spare() -> list[str]:
    """Block until the supervisor hands this warm process a generation to run."""
    preload()
    _control("spare", pid=os.getpid())
    line = sys.stdin.buffer.readline()
    if not line:
        sys.exit(0)
    order = json.loads(line)
    os.environ.clear()
    os.environ.update(order["env"])
    return list(order["argv"])


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--spare":
        argv = wait_as_spare()
    sealed = isolation.from_env()
    os.environ.pop(isolation.ENV, None)  # the runtime's, not the plugin's
    os.environ.pop(isolation.RUNTIME_PATH_ENV, None)
    root, entry_file, attribute = Path(argv[0]).resolve(), argv[1], argv[2]
    os.chdir(root)
    _exit_when_parent_goes()
    start_debugger()  # before the egress guard: debugpy resolves its own listen address
    egress_guard.install_from_env()  # before any plugin code runs
    if sealed is not None:
        isolation.seal(sealed)  # done already in a zygote's child
    try:
        app = load_app(root, entry_file, attribute)
    except SyntaxError as exc:
        _fail("syntax_error", exc, root)
    except BaseException as exc:
        _fail("import_error", exc, root)
    try:
        asyncio.run(serve(app, sealed))
    except KeyboardInterrupt:
        pass
    except BaseException as exc:
        _fail("startup_error", exc, root)


if __name__ == "__main__":
    main(sys.argv[1:])
