"""PowerX's own plugin.yaml, read as its host reads it: every section checked field by
field, every problem named with its path and a fix, the simulator's keys optional."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from powerx.bundling.session import BuildSession
from powerx.images import check_compatible, get_image, unknown_permissions
from powerx.manifest import ManifestError, find_manifest, json_schema, load_manifest

REPO = Path(__file__).resolve().parents[2]
HELLO_PYTHON = REPO / "examples" / "hello-python"

SCHEMA_FILE = REPO / "schemas" / "powerx.plugin.schema.json"  # scripts/write_schemas.py

# The shapes of PowerXPluginBase's plugin.yaml (backend, routes, {resource, actions}
# permissions, nested menus, assets, agents, tools with JSON Schemas), with our own values.
PLUGIN: dict[str, Any] = {
    "id": "com.example.plugins.notes",
    "name": "Notes",
    "version": "0.1.0",
    "description": "Keeps notes for a tenant",
    "backend": {"entry": "backend/bin/plugin", "port": 8091, "health": "/healthz"},
    "routes": {
        "basePath": "/v1",
        "adminManifest": "/api/v1/admin/manifest",
        "rbac": "/api/v1/admin/rbac",
    },
    "permissions": [{"resource": "notes:note", "actions": ["read", "create", "delete"]}],
    "menus": [
        {
            "id": "notes",
            "title": "menu.notes",
            "icon": "i-heroicons-clipboard",
            "path": "/plugins/notes",
            "order": 20,
            "children": [{"id": "notes.list", "title": "menu.notes.list", "order": 1}],
        }
    ],
    "assets": {"webAdminPath": "web-admin/.output"},
    "agents": [
        {
            "id": "notes.assistant",
            "plugin_id": "com.example.plugins.notes",
            "name": "Notes assistant",
            "description": "Writes notes",
            "default_tools": ["notes.note.create"],
        }
    ],
    "tools": [
        {
            "id": "notes.note.create",
            "plugin_id": "com.example.plugins.notes",
            "name": "Create a note",
            "description": "Creates a note",
            "transport": "http",
            "endpoint": "/api/v1/notes",
            "method": "POST",
            "rbac_resource": "notes:note",
            "input_schema": {
                "type": "object",
                "properties": {
                    "title": {"type": "string"},
                    "status": {"type": "string", "enum": ["todo", "done"]},
                    "page": {"type": "integer", "minimum": 1, "default": 1},
                },
                "required": ["title"],
            },
            "output_schema": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "created": {"format": "date-time"}},
            },
        }
    ],
    "events": {"topics": ["notes.created", {"name": "notes.deleted"}]},
}


def _plugin(tmp_path: Path, data: dict[str, Any], name: str = "plugin.yaml") -> Path:
    folder = tmp_path / "plugin"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return folder


def _problems(tmp_path: Path, data: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    with pytest.raises(ManifestError) as caught:
        load_manifest(_plugin(tmp_path, data))
    assert caught.value.code == "manifest_invalid"
    return {p.where: (p.message, p.fix) for p in caught.value.problems}


def test_a_pluginbase_style_plugin_yaml_validates(tmp_path: Path) -> None:
    manifest = load_manifest(_plugin(tmp_path, PLUGIN))
    assert manifest.is_backend and manifest.runtime == "program" and manifest.entry is None
    assert manifest.backend is not None
    assert (manifest.backend.entry, manifest.backend.port, manifest.backend.health) == (
        "backend/bin/plugin",
        8091,
        "/healthz",
    )
    assert manifest.description == "Keeps notes for a tenant"
    assert manifest.routes is not None and manifest.routes.basePath == "/v1"
    assert manifest.menus[0].children[0].id == "notes.list"
    assert [tool.id for tool in manifest.tools] == ["notes.note.create"]
    assert manifest.tools[0].input_schema == PLUGIN["tools"][0]["input_schema"]
    assert manifest.rbac_resources[0].resource == "notes:note"
    # The host checks 'note:read' for resource 'notes:note' (the part after the last ':').
    assert manifest.permissions == ["note:read", "note:create", "note:delete"]
    assert manifest.host is None


def test_a_backend_plugin_needs_no_host_range_and_no_host_api_scope(tmp_path: Path) -> None:
    manifest = load_manifest(_plugin(tmp_path, PLUGIN))
    image = get_image("powerx/host-simulator:2.4.0")
    check_compatible(manifest, image)  # no host.api: any version
    assert unknown_permissions(manifest, image) == []  # its own resources, not host scopes


def test_missing_backend_health_defaults_to_healthz(tmp_path: Path) -> None:
    manifest = load_manifest(_plugin(tmp_path, {**PLUGIN, "backend": {"entry": "bin/run"}}))
    assert manifest.backend is not None and manifest.backend.health == "/healthz"
    assert manifest.backend.port is None


BAD_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("id", {"id": "Notes Plugin"}, "id"),
    ("version", {"version": "v1"}, "version"),
    ("port", {"backend": {"entry": "bin/run", "port": 70000}}, "backend.port"),
    ("health", {"backend": {"entry": "bin/run", "health": "healthz"}}, "backend.health"),
    ("empty entry", {"backend": {"entry": ""}}, "backend.entry"),
    ("basePath", {"routes": {"basePath": "v1"}}, "routes.basePath"),
    ("actions", {"permissions": [{"resource": "note", "actions": []}]}, "permissions.0.actions"),
    ("resource", {"permissions": [{"resource": "no tes", "actions": ["read"]}]},
     "permissions.0.resource"),
    ("menu title", {"menus": [{"id": "a", "title": "A", "children": [{"id": "b"}]}]},
     "menus.0.children.0.title"),
    ("transport", {"tools": [{**PLUGIN["tools"][0], "transport": "smtp"}]},
     "tools.0.transport"),
    ("method", {"tools": [{**PLUGIN["tools"][0], "method": "FETCH"}]}, "tools.0.method"),
    ("tool endpoint", {"tools": [{**PLUGIN["tools"][0], "endpoint": ""}]}, "tools.0.endpoint"),
    ("rbac_resource", {"tools": [{**PLUGIN["tools"][0], "rbac_resource": "billing"}]},
     "tools.0.rbac_resource"),
    ("tool plugin_id", {"tools": [{**PLUGIN["tools"][0], "plugin_id": "com.powerx.plugins.note"}]},
     "tools.0.plugin_id"),
    ("agent tools", {"agents": [{**PLUGIN["agents"][0], "default_tools": ["nope"]}]},
     "agents.0.default_tools"),
    ("events", {"events": {"topics": [{"description": "no name"}]}}, "events.topics.0"),
    ("runtime", {"runtime": "python2"}, "runtime"),
    ("host.api", {"host": {"api": "newest"}}, "host.api"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "where"), [(c, w) for _, c, w in BAD_FIELDS],
                         ids=[name for name, _, _ in BAD_FIELDS])  # fmt: skip
def test_each_bad_field_is_named_with_its_path_and_a_fix(
    tmp_path: Path, change: dict[str, Any], where: str
) -> None:
    problems = _problems(tmp_path, {**PLUGIN, **change})
    assert any(w == where or w.startswith(where + ".") for w in problems), problems
    message, fix = next(v for w, v in problems.items() if w.startswith(where))
    assert where in message and fix


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    data = {
        **PLUGIN,
        "version": "one",
        "backend": {"entry": "bin/run", "port": 0},
        "permissions": ["contacts:read", {"resource": "notes", "actions": ["read", "wr ite"]}],
    }
    problems = _problems(tmp_path, data)
    # The resource item is the second of permissions as written.
    assert set(problems) >= {"version", "backend.port", "permissions.1.actions"}


def test_a_tool_with_an_invalid_input_schema_is_refused_naming_the_tool(tmp_path: Path) -> None:
    tool = {**PLUGIN["tools"][0], "input_schema": {"type": "object", "required": "title"}}
    problems = _problems(tmp_path, {**PLUGIN, "tools": [tool]})
    message, fix = problems["tools.0.input_schema"]
    assert "tool 'notes.note.create'" in message and "not a valid JSON Schema" in message
    assert "required" in message and fix and "JSON Schema" in fix


def test_the_simulators_keys_are_optional_and_kept(tmp_path: Path) -> None:
    handler = {
        **PLUGIN,
        "runtime": "python3.11",
        "entry": "app.py:app",
        "host": {"api": ">=2.3 <3"},
        "egress": ["api.example.com"],
    }
    folder = _plugin(tmp_path, handler)
    (folder / "app.py").write_text("app = None\n")
    manifest = load_manifest(folder)
    assert not manifest.is_backend and manifest.entry_file == "app.py"
    assert manifest.host is not None and manifest.host.api == ">=2.3 <3"
    assert manifest.egress == ["api.example.com"]


def test_keys_the_real_host_knows_are_accepted_and_typos_are_not(tmp_path: Path) -> None:
    known = {
        "author": "ArtisanCloud",
        "license": "Apache-2.0",
        "tags": ["notes"],
        "frontend": {"entry": "web/index.html"},
        "workflows": [{"id": "w"}],
        "dependencies": [{"name": "core", "version": "1", "type": "service"}],
        "config_schema": {"type": "object"},
        "metadata": {"category": "tools"},
    }
    manifest = load_manifest(_plugin(tmp_path, {**PLUGIN, **known}))
    assert manifest.author == "ArtisanCloud" and manifest.tags == ["notes"]
    problems = _problems(tmp_path, {**PLUGIN, "permisions": PLUGIN["permissions"]})
    assert problems["permisions"][1] == "did you mean 'permissions'?"


def test_powerx_runtime_mapping_names_the_backend(tmp_path: Path) -> None:
    data = {k: v for k, v in PLUGIN.items() if k != "backend"}
    data["runtime"] = {"kind": "process", "entry": "bin/plugin", "health": {"http": "/ready"}}
    manifest = load_manifest(_plugin(tmp_path, data))
    assert manifest.is_backend and manifest.backend is not None
    assert (manifest.backend.entry, manifest.backend.health) == ("bin/plugin", "/ready")
    data["runtime"] = {"kind": "static", "entry": "bin/plugin"}
    assert "runtime.kind" in _problems(tmp_path, data)


@pytest.mark.parametrize(
    ("change", "where"),
    [({"backend": None}, "backend"), ({"entry": "app.py:app"}, "runtime")],
    ids=["nothing to run", "entry without runtime"],
)
def test_how_the_plugin_runs_must_be_clear(
    tmp_path: Path, change: dict[str, Any], where: str
) -> None:
    data = {k: v for k, v in {**PLUGIN, **change}.items() if v is not None}
    message, fix = _problems(tmp_path, data)[where]
    assert where in message and fix and "backend.entry" in fix


def test_a_folder_with_both_files_uses_plugin_yaml_and_warns_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _plugin(tmp_path, PLUGIN)
    (folder / "powerx.plugin.yaml").write_text((HELLO_PYTHON / "plugin.yaml").read_text())
    assert find_manifest(folder).name == "plugin.yaml"
    assert load_manifest(folder).id == PLUGIN["id"]
    warned = capsys.readouterr().err
    assert warned.count("holds both plugin.yaml and powerx.plugin.yaml") == 1


def test_a_folder_with_neither_file_names_both(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "empty")
    assert caught.value.code == "manifest_missing"
    assert "plugin.yaml" in caught.value.message and "powerx.plugin.yaml" in caught.value.message


def test_the_artefact_carries_the_plugins_own_manifest_file(tmp_path: Path) -> None:
    folder = tmp_path / "hello"
    folder.mkdir()
    (folder / "app.py").write_text((HELLO_PYTHON / "app.py").read_text())
    (folder / "plugin.yaml").write_text((HELLO_PYTHON / "plugin.yaml").read_text())
    session = BuildSession(folder, tmp_path / "build")
    try:
        artefact = session.build()
    finally:
        session.close()
    assert "plugin.yaml" in artefact.members and "powerx.plugin.yaml" not in artefact.members


def test_the_schema_in_schemas_is_current_and_covers_both_files() -> None:
    import jsonschema

    written = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    assert SCHEMA_FILE.read_text() == written, "run `make schemas`"
    schema = json.loads(written)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(json.loads(json.dumps(PLUGIN)))
    validator.validate(yaml.safe_load((HELLO_PYTHON / "plugin.yaml").read_text()))
    bad = {**PLUGIN, "backend": {"entry": "bin/run", "port": "eighty"}}
    assert not validator.is_valid(json.loads(json.dumps(bad)))
