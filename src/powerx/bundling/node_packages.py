"""Node plugins' own dependencies: ``package.json`` (and ``package-lock.json``), installed
by npm into the plugin's ``node_modules``, where esbuild and the plugin's tools find them.

A build first reads the declaration (two small files) and the stamp npm's install left
(``node_modules/.powerx-dependencies``: the hash of the files it installed from); equal,
nothing runs. Otherwise ``npm ci`` (a lockfile, and package.json unchanged since the last
install) or ``npm install`` (no lockfile, or package.json edited), offline
from npm's cache where it can (``--prefer-offline``), with a progress line ("installing 3
packages ..."). A failed install raises ``dependencies_failed`` with npm's own words, so
the build fails and the generation that serves keeps serving, as a Python plugin's does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

__all__ = [
    "NODE_DECLARATION_FILES",
    "NodeDeclaration",
    "NodeInstall",
    "ensure_node_modules",
    "find_node_declaration",
    "package_name",
    "undeclared_package",
]

PACKAGE_JSON = "package.json"
PACKAGE_LOCK = "package-lock.json"
# Saving either changes what the plugin runs with.
NODE_DECLARATION_FILES = frozenset({PACKAGE_JSON, PACKAGE_LOCK})
STAMP = ".powerx-dependencies"
# Held (flock) in the plugin's .powerx/ while npm runs in its folder.
INSTALL_LOCK = "npm.lock"
# What npm itself writes into node_modules after every install (npm >= 7).
_NPM_HIDDEN_LOCK = ".package-lock.json"
INSTALL_TIMEOUT_S = 900.0
_NPM_NOISE = re.compile(r"^npm (warn|notice)", re.IGNORECASE)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class NodeDeclaration:
    """``dependencies``: every package.json dependency (runtime and dev) by name;
    ``digest``: the hash of package.json and the lockfile, what the stamp records."""

    root: Path
    locked: bool
    dependencies: dict[str, str]
    digest: str
    manifest_digest: str  # package.json's alone: edited by hand, the lockfile is behind

    @staticmethod
    def add_fix(package: str) -> str:
        """How to give the plugin ``package``."""
        return (
            f"add {package} to package.json dependencies (`npm install {package}`); the "
            "simulator installs it into the plugin's node_modules and reloads."
        )


@dataclass(frozen=True)
class NodeInstall:
    declaration: NodeDeclaration  # as installed (with the lockfile npm wrote, if it did)
    installed: bool  # npm ran now (False: node_modules was current)
    install_ms: float = 0.0


def package_name(specifier: str) -> str:
    """The package a bare import names: ``lodash/fp`` -> ``lodash``, ``@a/b/c`` -> ``@a/b``."""
    parts = specifier.split("/")
    return "/".join(parts[:2]) if specifier.startswith("@") else parts[0]


def _invalid(root: Path, why: str) -> PowerXError:
    return PowerXError(
        ErrorCode.DEPENDENCIES_INVALID,
        f"The plugin's package.json cannot be read: {why}.",
        "fix package.json and save again; what serves keeps serving.",
        status=422,
        details={"file": PACKAGE_JSON, "plugin_dir": str(root)},
    )


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256(b"powerx-node-deps/1")
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big") + part)
    return hasher.hexdigest()[:32]


def find_node_declaration(root: Path) -> NodeDeclaration | None:
    """The plugin folder's package.json and lockfile, or None without a package.json."""
    try:
        manifest = (root / PACKAGE_JSON).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise _invalid(root, str(error.strerror)) from None
    try:
        data = json.loads(manifest)
    except ValueError as error:
        raise _invalid(root, f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise _invalid(root, "it must be a JSON object")
    dependencies: dict[str, str] = {}
    for key in ("dependencies", "devDependencies", "optionalDependencies"):
        listed = data.get(key) or {}
        if not isinstance(listed, dict):
            raise _invalid(root, f'"{key}" must be an object of name: version')
        dependencies.update({str(name): str(version) for name, version in listed.items()})
    try:
        lock = (root / PACKAGE_LOCK).read_bytes()
    except OSError:
        lock = None
    digest = _digest(manifest, lock if lock is not None else b"no lockfile")
    return NodeDeclaration(root, lock is not None, dependencies, digest, _digest(manifest))


def installed_from(root: Path) -> dict[str, str]:
    """What the plugin's node_modules was installed from, by the stamp: ``digest`` (of
    package.json and the lockfile) and ``package_json`` (its own); empty without one."""
    try:
        stamp = json.loads((root / "node_modules" / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in stamp.items()} if isinstance(stamp, dict) else {}


def _installed_by_hand(declaration: NodeDeclaration) -> bool:
    """node_modules that npm installed after the last edit of the declaration, before
    the DevKit stamped it (the developer ran `npm install`): taken as current."""
    try:
        installed = (declaration.root / "node_modules" / _NPM_HIDDEN_LOCK).stat().st_mtime
        declared = [(declaration.root / PACKAGE_JSON).stat().st_mtime]
        if declaration.locked:
            declared.append((declaration.root / PACKAGE_LOCK).stat().st_mtime)
    except OSError:
        return False
    return installed >= max(declared)


def _installed_count(root: Path) -> int:
    """The packages in node_modules now (each ``@scope/name`` counts one); the lockfile
    lists other platforms' optional ones too."""
    count = 0
    with contextlib.suppress(OSError):
        for entry in (root / "node_modules").iterdir():
            if entry.name.startswith("."):
                continue
            if entry.name.startswith("@") and entry.is_dir():
                count += sum(1 for child in entry.iterdir() if not child.name.startswith("."))
            else:
                count += 1
    return count


def _locked_count(declaration: NodeDeclaration) -> int:
    """How many packages the install will bring: the lockfile's, else the declared ones.
    Read only for the progress line (a lockfile can be megabytes: not on every build)."""
    if declaration.locked:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            lock = json.loads((declaration.root / PACKAGE_LOCK).read_bytes())
            return sum(1 for name in lock.get("packages") or {} if name)  # "": the plugin
    return len(declaration.dependencies)


def _packages(count: int) -> str:
    return f"{count} package" if count == 1 else f"{count} packages"


def _stamp(declaration: NodeDeclaration) -> NodeDeclaration:
    """Record what node_modules now holds; read after the install, as `npm install` may
    have written the lockfile it lacked."""
    current = find_node_declaration(declaration.root) or declaration
    folder = declaration.root / "node_modules"
    folder.mkdir(exist_ok=True)
    partial = folder / f"{STAMP}.tmp"
    stamp = {"digest": current.digest, "package_json": current.manifest_digest}
    partial.write_text(json.dumps(stamp) + "\n", encoding="utf-8")
    os.replace(partial, folder / STAMP)
    return current


def npm_executable() -> str:
    """npm beside the node on PATH (it comes with it), else whichever npm PATH has."""
    node = shutil.which("node")
    beside = Path(node).with_name("npm") if node else None
    return str(beside) if beside is not None and beside.exists() else "npm"


@contextlib.contextmanager
def _install_lock(root: Path, progress: Progress) -> Iterator[None]:
    """One npm run at a time in a plugin folder (two simulators on it, a rebuild while an
    install runs): npm writes node_modules and the lockfile in place, and two at once
    leave either broken. The lock file is in the plugin's .powerx/ (never packed or
    watched), not in node_modules, which `npm ci` empties while it runs."""
    folder = root / ".powerx"
    folder.mkdir(exist_ok=True)
    with open(folder / INSTALL_LOCK, "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("waiting for the npm run another powerx started in this folder ...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_node_modules(declaration: NodeDeclaration, progress: Progress) -> NodeInstall:
    """Install what ``declaration`` lists into the plugin's node_modules unless the stamp
    says it is there already (read again once no other npm runs in the folder: that one
    may have installed it). Raises ``dependencies_failed`` with npm's message."""
    if installed_from(declaration.root).get("digest") == declaration.digest:
        return NodeInstall(declaration, False)
    with _install_lock(declaration.root, progress):
        return _install(declaration, progress)


def _install(declaration: NodeDeclaration, progress: Progress) -> NodeInstall:
    # Read again: an npm run that held the lock may have written the lockfile.
    declaration = find_node_declaration(declaration.root) or declaration
    current = installed_from(declaration.root)
    if current.get("digest") == declaration.digest:
        return NodeInstall(declaration, False)
    if not current and _installed_by_hand(declaration):
        return NodeInstall(_stamp(declaration), False)
    started = time.perf_counter()
    # The lockfile alone changed (a pull, a checkout): installed exactly as locked. An
    # edit of package.json itself (a dependency added while watching) leaves the lockfile
    # behind, which `npm ci` would install as it is (or refuse): `npm install` updates it.
    edited = bool(current) and current.get("package_json") != declaration.manifest_digest
    verb = "ci" if declaration.locked and not edited else "install"
    what = "package-lock.json" if verb == "ci" else "package.json"
    count = _locked_count(declaration) if verb == "ci" else len(declaration.dependencies)
    progress(f"installing {_packages(count)} from {what} (npm {verb}) ...")
    failure = _npm(declaration.root, verb)
    if failure is not None:
        raise _failed(what, failure)
    installed = _stamp(declaration)
    took = time.perf_counter() - started
    progress(f"installed {_packages(_installed_count(declaration.root))} in {took:.1f} s")
    return NodeInstall(installed, True, took * 1000)


def _npm(root: Path, verb: str) -> str | None:
    """Run ``npm <verb>`` in ``root``: None, or what went wrong in npm's own words."""
    command = [npm_executable(), verb, "--no-audit", "--no-fund", "--prefer-offline"]
    env = {**os.environ, "NO_COLOR": "1", "npm_config_update_notifier": "false"}
    try:
        completed = subprocess.run(
            command,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        return "npm is not installed (it comes with Node.js)"
    except subprocess.TimeoutExpired:
        return f"npm took longer than {INSTALL_TIMEOUT_S:g} s"
    if completed.returncode == 0:
        return None
    lines = [
        line.rstrip()
        for line in (completed.stderr or completed.stdout).splitlines()
        if line.strip() and not _NPM_NOISE.match(line)
    ]
    return "\n".join(lines[-20:]) or f"npm exited with code {completed.returncode}"


def _failed(what: str, message: str) -> PowerXError:
    return PowerXError(
        ErrorCode.DEPENDENCIES_FAILED,
        f"Installing the plugin's dependencies from {what} failed:\n{message}",
        "fix package.json as npm's message says (a misspelt name, a version that does not "
        "exist, a local path that is not there; after an edit by hand run `npm install` to "
        "update package-lock.json) and save again; the generation that serves keeps serving.",
        status=422,
        details={"file": PACKAGE_JSON, "resolver": message},
    )


def undeclared_package(root: Path, package: str, file: str | None, line: object) -> PowerXError:
    """``package`` is imported (at ``file``:``line``) but not installed for the plugin."""
    declaration = find_node_declaration(root)
    declared = declaration is not None and package in declaration.dependencies
    where = f"{file}:{line}" if file else "the plugin"
    why = (
        f"it is in package.json but not installed in {root / 'node_modules'}"
        if declared
        else "it is not in the plugin's package.json"
    )
    fix = (
        f"run `npm install` in {root}, then save again."
        if declared
        else NodeDeclaration.add_fix(package)
    )
    return PowerXError(
        ErrorCode.MODULE_NOT_FOUND,
        f"{where} imports '{package}', which the plugin cannot find: {why}.",
        fix,
        status=422,
        details={"module": package, "file": file, "line": line},
    )
