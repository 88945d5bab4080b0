"""Single-key commands while `powerx host start` runs in a terminal, as `wrangler dev` has
them: open the plugin or the dashboard in the browser, show how to debug, restart the
plugins, clear the screen, quit. Listed on one line at start; off when stdin or stdout is
not a terminal (piped output stays clean, and a script's stdin is not read).

The terminal is put in cbreak mode (keys arrive one by one, unechoed; Ctrl-C still
interrupts) and restored however the simulator stops.
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
from typing import Any

from powerx.host.simulator import Simulator

KEYS = (
    ("b", "open plugin"),
    ("d", "dashboard"),
    ("x", "debug"),
    ("r", "restart plugins"),
    ("c", "clear"),
    ("q", "quit"),
)


def legend() -> str:
    return "  ".join(f"[{key}] {what}" for key, what in KEYS)


def wanted() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty() and os.environ.get("POWERX_NO_HOTKEYS") != "1"


class Hotkeys:
    def __init__(self, simulator: Simulator, say: Callable[[str], None]) -> None:
        self.simulator = simulator
        self.say = say
        self._tasks: set[asyncio.Task[None]] = set()

    def plugin_urls(self) -> list[str]:
        urls = []
        for plugin in self.simulator.status()["plugins"]:
            slot = self.simulator.supervisor.slots.get(plugin["id"])
            backend = slot is not None and slot.manifest.is_backend
            path = f"/_p/{plugin['id']}/api/v1/" if backend else f"/plugins/{plugin['id']}/"
            urls.append(self.simulator.url + path)
        return urls

    def on_key(self, key: str) -> None:
        if key == "b":
            urls = self.plugin_urls()
            for url in urls:
                webbrowser.open(url)
            self.say("opening " + (", ".join(urls) or "nothing: no plugin is mounted"))
        elif key == "d":
            url = f"{self.simulator.url}/dashboard?key={self.simulator.dashboard_key}"
            webbrowser.open(url)
            self.say(f"opening {url}")
        elif key == "x":
            for plugin in self.simulator.supervisor.slots:
                self.say(
                    f"debug {plugin}: powerx debug attach {plugin}   (VS Code: "
                    f"powerx debug vscode {plugin} --write)"
                )
        elif key == "r":
            for plugin in list(self.simulator.supervisor.slots):
                self._spawn(self._restart(plugin))
        elif key == "c":
            sys.stdout.write("\x1b[2J\x1b[H")  # clear, cursor home
            sys.stdout.flush()
            self.say(legend())
        elif key == "q":
            self.say("quitting ...")
            self.simulator.shutdown_requested.set()

    async def _restart(self, plugin: str) -> None:
        try:
            await self.simulator.restart_generation(plugin)
        except Exception as error:  # shown, never a traceback in the terminal
            self.say(f"restart of {plugin} failed: {error}")
            return
        slot = self.simulator.supervisor.slots.get(plugin)
        number = slot.active.number if slot is not None and slot.active is not None else "?"
        self.say(f"restarted {plugin}: generation {number}")

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


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
