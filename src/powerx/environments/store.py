"""Per-plugin Python environments, built by uv and kept by what they contain.

An environment is a virtualenv under ``<state>/envs/<key>``; the key hashes the plugin's
declaration (its files' bytes) and the Python it is built on, so plugins declaring the
same dependencies share one, an edit of the declaration gives a new one beside the old
(which keeps serving until the new one is ready), and a restart finds what it built
before. An environment is complete once its ``powerx-env.json`` is written (last); a
folder without it is what an interrupted install left and is built again.

uv does the work: ``uv venv`` + ``uv pip install -r`` for requirements (pins are honoured
as pins), ``uv sync --frozen`` for a ``uv.lock``. From uv's warm cache a ten-package
environment takes well under a second (its files are hard links into the cache).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from powerx.environments.bytecode import BytecodeCompiler
from powerx.environments.declaration import Declaration
from powerx.environments.interpreter import Interpreter
from powerx.environments.registries import uv_environment
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

__all__ = ["EnvironmentStore", "Installed", "PythonEnvironment", "find_uv"]

MARKER = "powerx-env.json"
# Bumped when what an environment holds changes shape, so old folders are not reused.
_FORMAT = b"powerx-env/2"
# A declaration that failed is not tried again for this long unless it changes: reloads of
# code edits meanwhile fail at once with the same message, not after another resolve.
FAILED_RETRY_S = 30.0
INSTALL_TIMEOUT_S = 900.0
_RESOLVED = re.compile(r"^Resolved (\d+) packages?")
_INSTALLED = re.compile(r"^\s*\+ (\S+)")
_NOISE = ("Using Python", "Using CPython", "Creating virtual environment", "Activate with")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PythonEnvironment:
    """A complete environment: its interpreter, its ``site-packages`` and what it holds."""

    key: str
    path: Path
    python: Path
    site_packages: Path
    declared_in: str  # the file to add a package to ("requirements.txt" ...)
    packages: tuple[str, ...]  # "name==version"
    interpreter_note: str | None = None


@dataclass(frozen=True)
class Installed:
    environment: PythonEnvironment
    installed: bool  # built now (False: found complete)
    install_ms: float = 0.0


def find_uv() -> str:
    """The uv that came with the DevKit (the ``uv`` wheel ships its binary), else one on
    PATH."""
    with contextlib.suppress(ImportError, FileNotFoundError):
        import uv

        return str(uv.find_uv_bin())
    found = shutil.which("uv")
    if found is None:
        raise PowerXError(
            ErrorCode.UV_MISSING,
            "uv, which installs plugins' dependencies, is not installed.",
            "reinstall the DevKit (`pip install -e .` or `make setup`), which brings uv; "
            "or install uv (`pip install uv`).",
            status=503,
        )
    return found


def _packages(count: int) -> str:
    return f"{count} package" if count == 1 else f"{count} packages"


def _clean(lines: list[str]) -> str:
    """uv's own words, without its chatter about which Python it used."""
    kept = [line.rstrip() for line in lines if line.strip() and not line.startswith(_NOISE)]
    return "\n".join(kept[-20:])


class EnvironmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()  # uv runs in the plugin's folder: not relative to it
        self._locks: dict[str, asyncio.Lock] = {}
        self._failed: dict[str, tuple[float, PowerXError]] = {}
        # Set by a long-lived owner (the simulator): a one-shot command (doctor) leaves
        # the compile to the simulator that first runs the environment.
        self.bytecode: BytecodeCompiler | None = None

    def key_for(self, declaration: Declaration, interpreter: Interpreter) -> str:
        material = f"{declaration.digest}\0{interpreter.path}\0{interpreter.version}".encode()
        return hashlib.sha256(_FORMAT + b"\0" + material).hexdigest()[:24]

    def ready(self, key: str) -> PythonEnvironment | None:
        """The complete environment under ``key``, if there is one (a stat and a read)."""
        folder = self.root / key
        try:
            data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return PythonEnvironment(
            key,
            folder,
            Path(data["python"]),
            Path(data["site_packages"]),
            str(data["declared_in"]),
            tuple(data["packages"]),
            data.get("interpreter_note"),
        )

    def remove_except(self, keep: set[str]) -> tuple[int, int]:
        """Remove every environment but those in ``keep`` (and any being built now):
        (how many, bytes freed)."""
        removed, freed = 0, 0
        if not self.root.is_dir():
            return 0, 0
        for folder in self.root.iterdir():
            if folder.name in keep or not folder.is_dir() or folder.name.startswith("."):
                continue
            if self._locks.get(folder.name, asyncio.Lock()).locked():
                continue  # being built
            if self.bytecode is not None and self.bytecode.busy(folder.name):
                continue  # being compiled
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(folder, ignore_errors=True)
            (self.root / f".{folder.name}.lock").unlink(missing_ok=True)
            removed, freed = removed + 1, freed + size
        return removed, freed

    async def ensure(
        self,
        declaration: Declaration,
        interpreter: Interpreter,
        progress: Progress = lambda _: None,
    ) -> Installed:
        """The environment for ``declaration``: found, or built now (``progress`` hears
        each step). Raises ``dependencies_failed`` with uv's message when uv fails."""
        installed = await self._ensure(declaration, interpreter, progress)
        if self.bytecode is not None:
            self.bytecode.start(installed.environment)
        return installed

    async def _ensure(
        self, declaration: Declaration, interpreter: Interpreter, progress: Progress
    ) -> Installed:
        key = self.key_for(declaration, interpreter)
        found = self.ready(key)
        if found is not None:
            return Installed(found, False)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            found = self.ready(key)
            if found is not None:
                return Installed(found, False)
            failed = self._failed.get(key)
            if failed is not None and time.monotonic() - failed[0] < FAILED_RETRY_S:
                raise failed[1]
            started = time.perf_counter()
            self.root.mkdir(parents=True, exist_ok=True)
            # Another simulator (another project sharing POWERX_ENV_DIR) may build it too.
            lock_file = os.open(self.root / f".{key}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                await asyncio.to_thread(fcntl.flock, lock_file, fcntl.LOCK_EX)
                found = self.ready(key)
                if found is None:
                    try:
                        found = await self._build(key, declaration, interpreter, progress)
                    except PowerXError as error:
                        self._failed[key] = (time.monotonic(), error)
                        raise
                    self._failed.pop(key, None)
                    elapsed = (time.perf_counter() - started) * 1000
                    return Installed(found, True, elapsed)
                return Installed(found, False)
            finally:
                os.close(lock_file)  # releases the lock

    async def _build(
        self, key: str, declaration: Declaration, interpreter: Interpreter, progress: Progress
    ) -> PythonEnvironment:
        started = time.perf_counter()
        folder = self.root / key
        shutil.rmtree(folder, ignore_errors=True)  # what an interrupted build left
        uv = find_uv()
        env = uv_environment(os.environ)
        env.update({"NO_COLOR": "1", "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"})
        # Bytecode comes after, in the background (environments/bytecode.py).
        env.pop("UV_COMPILE_BYTECODE", None)
        if interpreter.note:
            progress(interpreter.note)
        what = f"{declaration.file} (uv.lock)" if declaration.locked else declaration.file
        progress(f"resolving {what} ...")
        packages: list[str] = []
        # Relocatable: a sandbox shows it at another path (its scripts then still run).
        venv = [uv, "venv", str(folder), "--python", interpreter.path, "--relocatable"]
        await self._run([*venv, "--no-project"], env, declaration, progress, packages)
        if declaration.locked:
            env["UV_PROJECT_ENVIRONMENT"] = str(folder)
            command = [uv, "sync", "--frozen", "--no-install-project", "--no-dev"]
            command += ["--python", interpreter.path]
            await self._run(command, env, declaration, progress, packages)
        else:
            # Absolute: uv runs in the plugin's folder (`powerx doctor my-plugin` gives a
            # relative one, which uv would look for inside itself).
            requirements = (declaration.root / declaration.file).absolute()
            if declaration.file != "requirements.txt":  # pyproject's dependencies
                requirements = folder / "powerx-requirements.txt"
                requirements.write_text(declaration.requirements + "\n", encoding="utf-8")
            python = folder / "bin" / "python"
            command = [uv, "pip", "install", "--python", str(python), "-r", str(requirements)]
            await self._run(command, env, declaration, progress, packages)
        major_minor = ".".join(interpreter.version.split(".")[:2])
        site_packages = folder / "lib" / f"python{major_minor}" / "site-packages"
        record = {
            "key": key,
            "python": str(folder / "bin" / "python"),
            "site_packages": str(site_packages),
            "declared_in": declaration.file,
            "packages": sorted(packages),
            "interpreter": interpreter.path,
            "interpreter_note": interpreter.note,
            "built_at": time.time(),
        }
        partial = folder / f".{MARKER}.tmp"
        partial.write_text(json.dumps(record, indent=2), encoding="utf-8")
        os.replace(partial, folder / MARKER)
        built = self.ready(key)
        assert built is not None
        took = time.perf_counter() - started
        progress(f"installed {_packages(len(packages))} in {took:.1f} s")
        return built

    async def _run(
        self,
        command: list[str],
        env: dict[str, str],
        declaration: Declaration,
        progress: Progress,
        packages: list[str],
    ) -> None:
        """One uv command; its stderr is read line by line for progress and for the
        packages it installed, and quoted when it fails."""
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=declaration.root,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as error:
            raise _failed(declaration, f"uv could not start: {error}") from None
        assert process.stdout is not None
        lines: list[str] = []
        try:
            async with asyncio.timeout(INSTALL_TIMEOUT_S):
                async for raw in process.stdout:
                    line = raw.decode(errors="replace").rstrip()
                    lines.append(line)
                    resolved = _RESOLVED.match(line)
                    if resolved:
                        progress(f"installing {_packages(int(resolved.group(1)))} ...")
                    installed = _INSTALLED.match(line)
                    if installed:
                        packages.append(installed.group(1))
                code = await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise _failed(declaration, f"uv took longer than {INSTALL_TIMEOUT_S:g} s") from None
        if code != 0:
            raise _failed(declaration, _clean(lines) or f"uv exited with code {code}")


def _failed(declaration: Declaration, message: str) -> PowerXError:
    return PowerXError(
        ErrorCode.DEPENDENCIES_FAILED,
        f"Installing the plugin's dependencies from {declaration.file} failed:\n{message}",
        f"fix {declaration.file} as the resolver's message says (a misspelt name, a version "
        "that does not exist, two pins that conflict) and save again; the generation that "
        "serves keeps serving.",
        status=422,
        details={"file": declaration.file, "resolver": message},
    )
