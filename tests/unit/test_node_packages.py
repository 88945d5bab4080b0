"""A Node plugin's package.json: read, stamped, and its imports checked without running npm
(an install that would run here fails the test: npm is pointed at a path that is not there)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from powerx.bundling.node_imports import undeclared_imports
from powerx.bundling.node_packages import (
    STAMP,
    ensure_node_modules,
    find_node_declaration,
    package_name,
)
from powerx.errors import PowerXError


def plugin(tmp_path: Path, dependencies: dict[str, str], lock: bool = False) -> Path:
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": dependencies}))
    if lock:
        (tmp_path / "package-lock.json").write_text('{"packages": {"": {}}}')
    return tmp_path


@pytest.fixture
def no_npm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("powerx.bundling.node_packages.npm_executable", lambda: "/nonexistent/npm")


@pytest.mark.parametrize(
    ("specifier", "package"),
    [("lodash", "lodash"), ("lodash/fp", "lodash"), ("@scope/pkg/sub/file", "@scope/pkg")],
)
def test_a_bare_import_names_its_package(specifier: str, package: str) -> None:
    assert package_name(specifier) == package


def test_the_digest_changes_with_package_json_and_with_the_lockfile(tmp_path: Path) -> None:
    first = find_node_declaration(plugin(tmp_path, {"a": "1"}))
    assert first is not None and not first.locked
    locked = find_node_declaration(plugin(tmp_path, {"a": "1"}, lock=True))
    assert locked is not None and locked.locked and locked.digest != first.digest
    assert locked.manifest_digest == first.manifest_digest  # package.json itself is the same
    edited = find_node_declaration(plugin(tmp_path, {"a": "2"}, lock=True))
    assert edited is not None and edited.manifest_digest != locked.manifest_digest


def test_no_package_json_declares_nothing_and_a_broken_one_says_so(tmp_path: Path) -> None:
    assert find_node_declaration(tmp_path) is None
    (tmp_path / "package.json").write_text("{not json")
    with pytest.raises(PowerXError) as raised:
        find_node_declaration(tmp_path)
    assert raised.value.code == "dependencies_invalid"
    assert "package.json" in raised.value.message and raised.value.fix


def test_a_current_stamp_installs_nothing(tmp_path: Path, no_npm: None) -> None:
    declaration = find_node_declaration(plugin(tmp_path, {"a": "1"}))
    assert declaration is not None
    (tmp_path / "node_modules").mkdir()
    stamp = {"digest": declaration.digest, "package_json": declaration.manifest_digest}
    (tmp_path / "node_modules" / STAMP).write_text(json.dumps(stamp))
    said: list[str] = []
    assert ensure_node_modules(declaration, said.append).installed is False
    assert said == []


def test_node_modules_npm_installed_after_the_last_edit_is_taken_as_current(
    tmp_path: Path, no_npm: None
) -> None:
    declaration = find_node_declaration(plugin(tmp_path, {"a": "1"}))
    assert declaration is not None
    (tmp_path / "node_modules").mkdir()
    hidden_lock = tmp_path / "node_modules" / ".package-lock.json"
    hidden_lock.write_text("{}")
    edited = (tmp_path / "package.json").stat().st_mtime
    os.utime(hidden_lock, (edited + 5, edited + 5))
    assert ensure_node_modules(declaration, lambda _line: None).installed is False
    assert json.loads((tmp_path / "node_modules" / STAMP).read_text())["digest"] == (
        declaration.digest
    )


def test_an_install_that_cannot_run_is_dependencies_failed(tmp_path: Path, no_npm: None) -> None:
    declaration = find_node_declaration(plugin(tmp_path, {"a": "1"}))
    assert declaration is not None
    said: list[str] = []
    with pytest.raises(PowerXError) as raised:
        ensure_node_modules(declaration, said.append)
    assert raised.value.code == "dependencies_failed"
    assert "keeps serving" in (raised.value.fix or "")
    assert said == ["installing 1 package from package.json (npm install) ..."]


def test_doctor_reads_every_kind_of_import_but_types_builtins_and_relative_ones(
    tmp_path: Path,
) -> None:
    plugin(tmp_path, {"declared": "1"})
    (tmp_path / "node_modules" / "declared").mkdir(parents=True)
    (tmp_path / "node_modules" / "declared" / "package.json").write_text("{}")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.ts").write_text(
        'import type { T } from "types-only";\n'
        'import fs from "node:fs";\n'
        'import path from "path";\n'
        'import { a } from "./local";\n'
        'import d from "declared/sub";\n'
        'import { b, c } from "@scope/named";\n'
        'const r = require("required");\n'
        'import "side-effect";\n'
        'export * from "re-exported";\n'
        'const lazy = await import("dynamic");\n'
    )
    (tmp_path / "node_modules" / "ignored.js").write_text('require("never-read");\n')
    found = {p.where: p.message for p in undeclared_imports(tmp_path)}
    assert found == {
        "src/index.ts:6": "src/index.ts:6 imports '@scope/named', which is not in package.json",
        "src/index.ts:7": "src/index.ts:7 imports 'required', which is not in package.json",
        "src/index.ts:8": "src/index.ts:8 imports 'side-effect', which is not in package.json",
        "src/index.ts:9": "src/index.ts:9 imports 're-exported', which is not in package.json",
        "src/index.ts:10": "src/index.ts:10 imports 'dynamic', which is not in package.json",
    }
