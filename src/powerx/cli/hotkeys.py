"""Single-key commands while `powerx host start` or `powerx dev` runs in a terminal, as
`wrangler dev` has them: open the plugin or the dashboard in the browser, show how to
debug, restart the plugins, clear the screen, quit. Listed on one line at start; off when
stdin or stdout is not a terminal (piped output stays clean, and a script's stdin is not
read).

What a key does is the command's (:class:`Actions`): `host start` acts on the simulator in
its own process (``cli/foreground/``), `powerx dev` over HTTP on the running one.

The terminal is put in cbreak mode (keys arrive one by one, unechoed; Ctrl-C still
interrupts) and restored however the command stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import tty
import webbrowser
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Protocol

KEYS = (
    ("b", "open plugin"),
    ("d", "dashboard"),
    ("x", "debug"),
    ("r", "restart plugins"),
    ("c", "clear"),
    ("q", "quit"),
)


class Actions(Protocol):
    """What the keys act on."""

    def plugin_ids(self) -> list[str]: ...

    async def plugin_urls(self) -> list[str]: ...

    async def dashboard_url(self) -> str: ...

    async def restart(self, plugin: str) -> str:
        """Start a new generation of the plugin's serving code; say which."""
        ...

    def quit(self) -> None: ...


def legend() -> str:
    return "  ".join(f"[{key}] {what}" for key, what in KEYS)


def wanted() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty() and os.environ.get("POWERX_NO_HOTKEYS") != "1"


class Hotkeys:
    def __init__(self, actions: Actions, say: Callable[[str], None]) -> None:
        self.actions = actions
        self.say = say
        self._tasks: set[asyncio.Task[None]] = set()

    def on_key(self, key: str) -> None:
        if key == "b":
            self._spawn(self._open_plugins())
        elif key == "d":
            self._spawn(self._open_dashboard())
        elif key == "x":
            for plugin in self.actions.plugin_ids():
                self.say(
                    f"debug {plugin}: powerx debug attach {plugin}   (VS Code: "
                    f"powerx debug vscode {plugin} --write)"
                )
        elif key == "r":
            for plugin in self.actions.plugin_ids():
                self._spawn(self._restart(plugin))
        elif key == "c":
            sys.stdout.write("\x1b[2J\x1b[H")  # clear, cursor home
            sys.stdout.flush()
            self.say(legend())
        elif key == "q":
            self.say("quitting ...")
            self.actions.quit()

    async def _open_plugins(self) -> None:
        urls = await self.actions.plugin_urls()
        for url in urls:
            webbrowser.open(url)
        self.say("opening " + (", ".join(urls) or "nothing: no plugin is mounted"))

    async def _open_dashboard(self) -> None:
        url = await self.actions.dashboard_url()
        webbrowser.open(url)
        self.say(f"opening {url}")

    async def _restart(self, plugin: str) -> None:
        self.say(await self.actions.restart(plugin))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(self._said(coroutine))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _said(self, coroutine: Coroutine[Any, Any, None]) -> None:
        try:
            await coroutine
        except Exception as error:  # shown, never a traceback in the terminal
            self.say(f"that did not work: {error}")


@contextlib.contextmanager
def listening(hotkeys: Hotkeys) -> Iterator[None]:
    """Read keys from the terminal while the block runs; the terminal is restored after."""
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    loop = asyncio.get_running_loop()

    def read() -> None:
        data = os.read(fd, 32)
        if not data:  # the terminal went away
            loop.remove_reader(fd)
            return
        for char in data.decode(errors="ignore"):
            hotkeys.on_key(char.lower())

    tty.setcbreak(fd)
    loop.add_reader(fd, read)
    try:
        yield
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
