"""`powerx doctor`: is this machine ready to run these plugins? Each check says how to fix it."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from powerx import auth
from powerx.bundling.go import go_build_for
from powerx.bundling.node_imports import undeclared_imports
from powerx.bundling.toolchain import dlv_version, go_version, node_executable
from powerx.config import OBSERVABILITY_FLAG, SIMULATOR_FLAG, SimulatorConfig, load_config
from powerx.environments import EnvironmentStore, find_declaration, interpreter_for
from powerx.environments.imports import ImportWorld, missing_imports, toolkit_imports
from powerx.errors import PowerXError, Problem
from powerx.host.containment import containment
from powerx.host.dev_vars import read_dev_vars
from powerx.host.preflight import check_plugin, check_runtime
from powerx.images import get_image
from powerx.manifest import MANIFEST_FILES, Manifest, ManifestError, find_manifest, load_manifest
from powerx.paths import environments_dir, state_dir
from powerx.running import simulator_on_port

Status = Literal["ok", "warn", "fail"]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None
    # What ``fix`` points at when there are several things to fix (a manifest's fields).
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _runtimes(needs_node: bool) -> list[Check]:
    checks = [Check("python", "ok", f"Python {sys.version.split()[0]} ({sys.executable})")]
    try:
        node = check_runtime("node18")
        checks.append(
            Check(
                "node",
                "warn" if node.warning else "ok",
                node.warning or f"Node {node.found} ({node_executable()})",
            )
        )
    except PowerXError as error:
        checks.append(Check("node", "fail" if needs_node else "warn", error.message, error.fix))
    return checks


def _go_tools(needs_go: bool) -> list[Check]:
    """go builds Go plugins, dlv debugs them: missing, each fails only where a Go plugin
    was named (a Python or Node project needs neither)."""
    checks = []
    for name, probe, purpose in (
        ("go", go_version, "builds Go plugins"),
        ("dlv", dlv_version, "debugs Go plugins"),
    ):
        try:
            found = probe()
        except PowerXError as error:
            status: Status = "fail" if needs_go else "warn"
            checks.append(Check(name, status, f"{error.message} (it {purpose})", error.fix))
            continue
        checks.append(Check(name, "ok", f"{name} {found.version} ({found.path})"))
    return checks


def _login() -> Check:
    try:
        credential = auth.load_credential()
    except PowerXError as error:
        return Check("login", "fail", error.message, error.fix)
    if credential is None:
        return Check("login", "fail", "not logged in", "run `powerx login --mock`")
    if not credential.has_scope(auth.DEBUG_SCOPE):
        return Check(
            "login",
            "fail",
            f"credential lacks {auth.DEBUG_SCOPE}",
            "run `powerx login --mock` again",
        )
    return Check("login", "ok", f"{credential.mode} credential with {', '.join(credential.scopes)}")


def _containment(config: SimulatorConfig) -> Check:
    """Whether plugins will run inside an OS sandbox, or only behind in-process guards."""
    found = containment(config.sandbox)
    if found.contained:
        return Check("containment", "ok", f"contained: {found.reason}")
    status: Status = "fail" if config.sandbox == "required" else "warn"
    return Check(
        "containment",
        status,
        f"not contained: {found.reason}; plugins run behind in-process guards only, "
        "which code in the plugin can get around",
        found.fix,
    )


def _flags(config: SimulatorConfig) -> list[Check]:
    sim = config.flag(SIMULATOR_FLAG)
    return [
        Check(
            f"flag {SIMULATOR_FLAG}",
            "ok" if sim else "fail",
            "on" if sim else "off",
            None if sim else f"set {SIMULATOR_FLAG}=1",
        ),
        Check(
            f"flag {OBSERVABILITY_FLAG}", "ok", "on" if config.flag(OBSERVABILITY_FLAG) else "off"
        ),
    ]


def _port(config: SimulatorConfig) -> Check:
    where = f"{config.bind}:{config.ports.http}"
    with socket.socket(socket.AF_INET6 if ":" in config.bind else socket.AF_INET) as sock:
        # As the simulator binds: a port whose last connection is still in TIME-WAIT
        # is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((config.bind, config.ports.http))
        except OSError:
            pass
        else:
            return Check("port", "ok", f"{where} is free")
    owner = simulator_on_port(config.ports.http)
    if owner is not None and owner["own"]:
        return Check(
            "port", "ok", f"{where} is used by this project's simulator (pid {owner['pid']})"
        )
    if owner is not None:
        project = Path(str(owner["state_dir"])).parent
        return Check(
            "port",
            "warn",
            f"{where} is used by the simulator of {project} (pid {owner['pid']})",
            f"stop it (`powerx host stop` in {project}), or use --port / POWERX_HTTP_PORT",
        )
    return Check(
        "port",
        "warn",
        f"{where} is in use",
        "stop what holds it, or use --port / POWERX_HTTP_PORT",
    )


def _dependencies(
    path: Path, manifest: Manifest, progress: Progress
) -> tuple[ImportWorld | None, list[Check]]:
    """The plugin's own environment, built as the simulator would (or found built), so
    its imports are checked against what it will run with; None if it cannot be."""
    name = f"dependencies {path}"
    try:
        declaration = find_declaration(path)
        if declaration is None:
            toolkit = sorted(toolkit_imports(path, manifest.entry_file))
            if not toolkit:
                return ImportWorld(), []
            listed = ", ".join(toolkit)
            return ImportWorld(), [
                Check(
                    name,
                    "warn",
                    f"{manifest.id} declares no dependencies, so it imports {listed} from "
                    "the DevKit's own copy (the real host installs only what a plugin declares)",
                    f"add {listed} to a requirements.txt beside the manifest",
                )
            ]
        interpreter = interpreter_for(manifest.runtime)
        store = EnvironmentStore(environments_dir(state_dir()))
        environment = asyncio.run(store.ensure(declaration, interpreter, progress)).environment
    except PowerXError as error:
        return None, [Check(name, "fail", error.message, error.fix)]
    detail = (
        f"{len(environment.packages)} package(s) from {declaration.file}, installed in "
        f"{environment.path}"
    )
    checks = [Check(name, "ok", detail)]
    if interpreter.note:
        checks.append(Check(f"python {path}", "warn", interpreter.note))
    return ImportWorld(environment.site_packages, declaration), checks


def _plugins(paths: list[Path], config: SimulatorConfig, progress: Progress) -> list[Check]:
    image = get_image(config.image)
    checks = []
    for path in paths:
        try:
            plan = check_plugin(path, image, config)
        except PowerXError as error:
            checks.append(
                Check(
                    f"plugin {path}",
                    "fail",
                    f"[{error.code}] {error.message}",
                    error.fix,
                    error.problems,
                )
            )
            continue
        manifest = plan.manifest
        if not manifest.is_backend and manifest.runtime != "python3.11":
            undeclared = undeclared_imports(path)
            if undeclared:
                checks.append(
                    Check(
                        f"plugin {path}",
                        "fail",
                        f"{manifest.id} imports {len(undeclared)} package(s) its package.json "
                        "does not give it; it would fail to build or start.",
                        "fix each import listed below.",
                        undeclared,
                    )
                )
                continue
        if manifest.needs_esbuild:
            try:
                import subprocess

                subprocess.run(
                    [node_executable(), "-e", "require.resolve('esbuild')"],
                    cwd=path,
                    check=True,
                    capture_output=True,
                    timeout=20,
                )
            except (PowerXError, OSError, subprocess.SubprocessError):
                checks.append(
                    Check(
                        f"plugin {path}",
                        "fail",
                        f"{manifest.id}: esbuild is not installed",
                        f"run `npm install` in {path}",
                    )
                )
                continue
        if manifest.runtime == "python3.11":
            world, dependencies = _dependencies(path, manifest, progress)
            checks += dependencies
            if world is None:
                continue
            missing = missing_imports(path, manifest.entry_file, world)
            if missing:
                checks.append(
                    Check(
                        f"plugin {path}",
                        "fail",
                        f"{manifest.id} imports {len(missing)} module(s) that nothing provides; "
                        "it would fail to start.",
                        "fix each import listed below.",
                        missing,
                    )
                )
                continue
        status: Status = "warn" if plan.warnings else "ok"
        checks.append(
            Check(
                f"plugin {path}",
                status,
                "; ".join(plan.warnings)
                or f"{manifest.id} {manifest.version} ({manifest.runtime}) fits {image.name}",
            )
        )
        checks += _settings(path, config.identity)
    return checks


def _settings(path: Path, identity: str | None) -> list[Check]:
    """The names (never the values) a plugin's .dev.vars give it."""
    settings = read_dev_vars(path, identity)
    if not settings.files:
        return []
    files = ", ".join(f.name for f in settings.files)
    names = ", ".join(sorted(settings.values)) or "none"
    if settings.ignored:
        return [
            Check(
                f"settings {path}",
                "warn",
                f"{files}: {names}; ignored: {', '.join(settings.ignored)}",
                "rename the ignored ones: powerx sets them itself.",
            )
        ]
    return [Check(f"settings {path}", "ok", f"{files}: {names} (values hidden)")]


def diagnose(
    paths: list[Path], config_path: Path | None = None, progress: Progress = lambda _: None
) -> list[Check]:
    """Run every check; never raises for a problem it can describe. ``progress`` hears
    the steps of installing a plugin's dependencies (which may take a while)."""
    if not paths and any((Path.cwd() / name).is_file() for name in MANIFEST_FILES):
        paths = [Path.cwd()]
    try:
        config = load_config(config_path)
    except PowerXError as error:
        return [Check("config", "fail", error.message, error.fix)]
    needs_node = any(_is_node(p) for p in paths)
    checks = [Check("config", "ok", f"image {config.image}, {config.bind}:{config.ports.http}")]
    checks += _runtimes(needs_node) + _go_tools(any(_is_go(p) for p in paths))
    checks += [*_flags(config), _login(), _port(config)]
    checks.append(_containment(config))
    checks += _plugins(paths, config, progress)
    return checks


def _is_node(path: Path) -> bool:
    try:
        return "node18" in find_manifest(path).read_text(encoding="utf-8")
    except (OSError, ManifestError):
        return False


def _is_go(path: Path) -> bool:
    try:
        return go_build_for(load_manifest(path), path.resolve()) is not None
    except (OSError, PowerXError):
        return False
