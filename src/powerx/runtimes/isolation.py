"""What a Python plugin can import: its own files, the standard library, ``powerx_plugin``
and its declared dependencies, not the DevKit's own packages.

The shim and the zygote run in the plugin's process and need the DevKit's runtime
(uvicorn, powerx, debugpy ...). They import it first, with the DevKit's folders on
``sys.path`` after the plugin environment's ``site-packages``: a package both have is
the plugin's copy, used by both (one copy per name, as in any one environment). Then
:func:`seal` takes the DevKit's folders off ``sys.path``, moves every module loaded from
them out of ``sys.modules`` and puts :class:`RuntimeOnly` first on ``sys.meta_path``.
From then on:

- plugin code importing a DevKit package finds the plugin's own copy or nothing
  (``ModuleNotFoundError``, which the simulator turns into "add it to requirements.txt");
- the runtime's own later imports (uvicorn loads its protocol classes per server, debugpy
  loads pydevd's parts when a debugger attaches) still get the runtime's modules: who
  imports is read from the importing frame's file. What they put back in ``sys.modules``
  is taken out again by :func:`reseal` once the server runs.

Measured: sealing costs ~2 ms once per zygote; an import the finder passes on costs a set
lookup. Standard library only: this runs before anything else in the plugin's process.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType, ModuleType
from typing import Any

ENV = "POWERX_ISOLATION"
# The DevKit's folders, for a process started on a plugin environment's interpreter.
RUNTIME_PATH_ENV = "POWERX_RUNTIME_PATH"
_STDLIB = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)
_IMPORTLIB = os.path.dirname(importlib.__file__) + os.sep


@dataclass(frozen=True)
class Isolation:
    """``runtime``: the DevKit's folders; ``site``: the plugin environment's
    ``site-packages`` (empty: the plugin declares no dependencies); ``visible``: names of
    the DevKit's packages that plugin code may import all the same (``powerx_plugin``;
    for a plugin without a declaration also the handler toolkit, starlette and httpx)."""

    runtime: tuple[str, ...]
    site: tuple[str, ...] = ()
    visible: frozenset[str] = frozenset()

    def to_json(self) -> str:
        return json.dumps(
            {"runtime": self.runtime, "site": self.site, "visible": sorted(self.visible)}
        )

    @classmethod
    def from_json(cls, text: str) -> Isolation:
        data = json.loads(text)
        return cls(tuple(data["runtime"]), tuple(data["site"]), frozenset(data["visible"]))


class _Reinsert(importlib.abc.Loader):
    """Gives the runtime back a module of its own that :func:`seal` took out of
    ``sys.modules``: the same object, not a second copy."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.spec  # the import system set ours; the original stays


class RuntimeOnly(importlib.abc.MetaPathFinder):
    """Serves the DevKit's modules to the runtime and to no one else."""

    def __init__(self, isolation: Isolation, hidden: dict[str, ModuleType]) -> None:
        self.roots = tuple(os.path.join(path, "") for path in isolation.runtime)
        self.search = list(isolation.runtime)
        self.visible = isolation.visible
        self.hidden = hidden
        self._as_plugin = threading.local()

    def _runtime_imports(self) -> bool:
        """Whether the code running the import statement is the DevKit's own."""
        if getattr(self._as_plugin, "on", False):
            return False
        frame: FrameType | None = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith("<frozen importlib") or name.startswith(_IMPORTLIB):
                frame = frame.f_back
                continue
            return name.startswith(self.roots)
        return False

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top in _STDLIB:
            return None
        module = self.hidden.get(fullname)
        if module is not None:
            if not self._runtime_imports():
                return None  # the plugin's own copy, if its environment has one
            spec = importlib.machinery.ModuleSpec(
                fullname, _Reinsert(module), is_package=hasattr(module, "__path__")
            )
            return spec
        if path is not None:
            return None  # a submodule: its parent's __path__ says where
        if top in self.visible or self._runtime_imports():
            return importlib.machinery.PathFinder.find_spec(fullname, self.search)
        return None

    @contextlib.contextmanager
    def as_plugin(self) -> Iterator[None]:
        """Imports made inside count as the plugin's (the zygote warming its modules)."""
        self._as_plugin.on = True
        try:
            yield
        finally:
            self._as_plugin.on = False


_finder: RuntimeOnly | None = None


def _origin(module: Any) -> str | None:
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        return file
    path = getattr(module, "__path__", None)  # a namespace package
    with contextlib.suppress(TypeError, IndexError):
        return str(next(iter(path))) if path is not None else None
    return None


def from_env() -> Isolation | None:
    raw = os.environ.get(ENV)
    return Isolation.from_json(raw) if raw else None


def seal(isolation: Isolation) -> RuntimeOnly:
    """Take the runtime's folders and modules out of the plugin's sight (see above)."""
    global _finder
    if _finder is not None:
        return _finder
    roots = tuple(os.path.join(path, "") for path in isolation.runtime)
    # debugpy (and the pydevd it carries) stays: it looks its own modules up in
    # sys.modules while it runs, from its own threads.
    debugger = tuple(os.path.join(path, "debugpy", "") for path in isolation.runtime)
    visible = isolation.visible
    hidden: dict[str, ModuleType] = {}
    for name, module in list(sys.modules.items()):
        if name == "__main__" or name.partition(".")[0] in visible or module is None:
            continue
        origin = _origin(module)
        if origin is not None and origin.startswith(roots) and not origin.startswith(debugger):
            hidden[name] = sys.modules.pop(name)
    runtime = {os.path.normpath(p) for p in isolation.runtime}
    sys.path[:] = [p for p in sys.path if os.path.normpath(p or ".") not in runtime]
    _finder = RuntimeOnly(isolation, hidden)
    sys.meta_path.insert(0, _finder)
    importlib.invalidate_caches()
    return _finder


def reseal() -> None:
    """Take out of ``sys.modules`` again the runtime's modules its own imports put back."""
    if _finder is None:
        return
    for name, module in _finder.hidden.items():
        if sys.modules.get(name) is module:
            del sys.modules[name]


def import_as_plugin(names: Iterable[str]) -> list[str]:
    """Import modules as plugin code would (from the plugin's environment); the names
    that failed are returned (the generation that needs one reports it properly)."""
    failed: list[str] = []
    context = _finder.as_plugin() if _finder is not None else contextlib.nullcontext()
    with context:
        for name in names:
            try:
                importlib.import_module(name)
            except BaseException:  # whatever a third-party import raises, even SystemExit
                failed.append(name)
    return failed


_imported_before: frozenset[str] = frozenset()


def mark_imported() -> None:
    """What is imported now (in a zygote: what its children start with) is not news."""
    global _imported_before
    _imported_before = frozenset(sys.modules)


def environment_modules(isolation: Isolation) -> list[str]:
    """The modules from the plugin's environment loaded since :func:`mark_imported`."""
    roots = tuple(os.path.join(path, "") for path in isolation.site)
    if not roots:
        return []
    found = []
    for name, module in list(sys.modules.items()):
        if name in _imported_before:
            continue
        origin = _origin(module)
        if origin is not None and origin.startswith(roots):
            found.append(name)
    return sorted(found)
