"""RBAC and tool calls, the pure parts: the permission a tool's request needs (PowerX's
method-to-action mapping and its synonyms), how perms grant it, which requests are a
tool's, the grant that carries a request's identity to the host API, and how a tool's
input and answer are checked and placed."""

from __future__ import annotations

from typing import Any

import pytest

from powerx.config import Identity, PermissionPolicy
from powerx.errors import PowerXError
from powerx.host.gateway import Gateway
from powerx.host.rbac import Permission, RbacDenial, RbacGate, has_permission, tool_permission
from powerx.host.tools import schema_violations, tool_request
from powerx.images import get_image
from powerx.manifest import Manifest, parse_manifest

MANIFEST = """
id: com.test.notes
name: Notes
version: 0.1.0
backend: {entry: server}
permissions:
  - resource: note:note
    actions: [read, create]
  - resource: Board
    actions: [view, write, edit, remove]
tools:
  - {id: create, name: c, endpoint: /api/v1/notes, method: POST, rbac_resource: note:note}
  - {id: list, name: l, endpoint: /api/v1/notes, method: GET, rbac_resource: note:note}
  - {id: get, name: g, endpoint: "/api/v1/notes/{id}", method: GET, rbac_resource: note:note}
  - {id: patch, name: p, endpoint: "/api/v1/notes/:id", method: PATCH, rbac_resource: note:note}
  - {id: board, name: b, endpoint: /api/v1/boards, rbac_resource: board}
  - {id: open, name: o, endpoint: /api/v1/open, method: GET}
"""
IDENTITIES = {
    "developer": Identity(perms=["*"]),
    "viewer": Identity(perms=["note:read"]),
    "writer": Identity(perms=["NOTE:*"]),
    "full-name": Identity(perms=["note:note:create"]),
}


@pytest.fixture
def manifest() -> Manifest:
    return parse_manifest(MANIFEST, "plugin.yaml")


def tool(manifest: Manifest, tool_id: str) -> Any:
    return next(t for t in manifest.tools if t.id == tool_id)


def test_the_method_gives_the_action_and_a_declared_synonym_wins(manifest: Manifest) -> None:
    needs = {t.id: str(tool_permission(manifest, t)) for t in manifest.tools}
    assert needs == {
        "create": "note:create",
        "list": "note:read",
        "get": "note:read",
        "patch": "note:update",  # not declared, no synonym declared: asked for as is
        "board": "board:write",  # no method: POST; 'create' undeclared, 'write' is
        "open": "None",
    }
    board = tool(manifest, "board")
    assert str(tool_permission(manifest, board, "GET")) == "board:view"
    assert str(tool_permission(manifest, board, "PUT")) == "board:edit"
    assert str(tool_permission(manifest, board, "DELETE")) == "board:remove"


def test_perms_grant_exactly_wildcards_and_any_case() -> None:
    need = Permission("note", "create")
    assert has_permission(["note:create"], need)
    assert has_permission(["Note:*"], need)
    assert has_permission(["*"], need)
    assert not has_permission(["note:read", "board:*"], need)
    # PowerX checks the resource's short name: the full one does not grant it.
    assert not has_permission(["note:note:create"], need)
    assert not has_permission([], need)
    assert Permission.of_scope("contacts:read") == Permission("contacts", "read")


def test_requests_to_a_tools_endpoint_are_the_tools(manifest: Manifest) -> None:
    gate = RbacGate(IDENTITIES)
    assert gate.tool_at(manifest, "POST", "/api/v1/notes").id == "create"  # type: ignore[union-attr]
    assert gate.tool_at(manifest, "GET", "/api/v1/notes/").id == "list"  # type: ignore[union-attr]
    assert gate.tool_at(manifest, "GET", "/api/v1/notes/7").id == "get"  # type: ignore[union-attr]
    assert gate.tool_at(manifest, "PATCH", "/api/v1/notes/7").id == "patch"  # type: ignore[union-attr]
    assert gate.tool_at(manifest, "DELETE", "/api/v1/boards").id == "board"  # type: ignore[union-attr]
    assert gate.tool_at(manifest, "GET", "/api/v1/notes/7/extra") is None
    assert gate.tool_at(manifest, "PUT", "/api/v1/notes") is None
    assert gate.tool_at(manifest, "GET", "/api/v1/open") is None  # no rbac_resource


def test_a_refusal_names_the_permission_the_identity_and_who_has_it(manifest: Manifest) -> None:
    denied: list[RbacDenial] = []
    gate = RbacGate(IDENTITIES, on_denied=denied.append)
    gate.check_request(manifest, "GET", "/api/v1/notes", "viewer", IDENTITIES["viewer"])
    gate.check_request(manifest, "POST", "/api/v1/notes", "writer", IDENTITIES["writer"])
    gate.check_request(manifest, "GET", "/api/v1/open", "viewer", IDENTITIES["viewer"])
    assert denied == []

    with pytest.raises(PowerXError) as refused:
        gate.check_request(manifest, "POST", "/api/v1/notes", "viewer", IDENTITIES["viewer"])

    error = refused.value
    assert (error.code, error.status) == ("rbac_denied", 403)
    assert error.details["permission"] == "note:create"
    assert error.details["identity"] == "viewer" and error.details["tool"] == "create"
    assert "its perms: note:read" in error.message
    assert error.fix is not None and "(developer, writer)" in error.fix
    assert denied == [
        RbacDenial("com.test.notes", "viewer", Permission("note", "create"), denied[0].what)
    ]

    with pytest.raises(PowerXError) as nobody:
        gate.check_request(manifest, "PATCH", "/api/v1/notes/1", "viewer", IDENTITIES["viewer"])
    assert nobody.value.fix is not None and "developer" in nobody.value.fix
    lonely = RbacGate({"viewer": IDENTITIES["viewer"]})
    with pytest.raises(PowerXError) as alone:
        lonely.check_request(manifest, "POST", "/api/v1/notes", "viewer", IDENTITIES["viewer"])
    assert alone.value.fix is not None and "no configured identity has it" in alone.value.fix


def test_the_grant_carries_the_identity_under_the_simulators_mac() -> None:
    gateway = Gateway(get_image("2.4.0"), PermissionPolicy(), None, "acme")  # type: ignore[arg-type]
    grant = gateway.grant("token-1", "globex", "viewer")

    assert gateway._granted_identity("token-1", "globex", grant) == "viewer"
    # Another tenant, another generation's token, or a renamed identity: not this grant.
    assert gateway._granted_identity("token-1", "acme", grant) is None
    assert gateway._granted_identity("token-2", "globex", grant) is None
    _, _, mac = grant.rpartition(".")
    renamed = gateway.grant("token-1", "globex", "developer").split(".")[0] + "." + mac
    assert gateway._granted_identity("token-1", "globex", renamed) is None
    assert gateway._granted_identity("token-1", "globex", "garbage") is None


def test_violations_are_named_by_json_path() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "integer"}},
            "odd key": {"type": "boolean"},
        },
        "required": ["title", "owner"],
    }
    found = schema_violations(schema, {"tags": [1, "two"], "odd key": 3})
    assert [p.where for p in found] == ["$.title", "$.owner", '$["odd key"]', "$.tags[1]"]
    assert found[0].message == "$.title: required, but missing"
    assert found[3].message == "$.tags[1]: 'two' is not of type 'integer'"
    assert schema_violations(schema, {"title": "x", "owner": 1}) == []


def test_input_becomes_path_query_or_body(manifest: Manifest) -> None:
    get = tool_request("com.test.notes", tool(manifest, "get"), {"id": 7, "full": True})
    assert (get.method, get.path, get.query) == (
        "GET",
        "/_p/com.test.notes/api/v1/notes/7",
        [("full", "true")],
    )
    listed = tool_request("com.test.notes", tool(manifest, "list"), {"status": ["a", "b"]})
    assert listed.query == [("status", "a"), ("status", "b")] and not listed.has_body
    created = tool_request("com.test.notes", tool(manifest, "create"), {"title": "x"})
    assert (created.body, created.has_body) == ({"title": "x"}, True)
    patched = tool_request("com.test.notes", tool(manifest, "patch"), {"id": "a/b", "title": "y"})
    assert (patched.path, patched.body) == ("/_p/com.test.notes/api/v1/notes/a%2Fb", {"title": "y"})

    with pytest.raises(PowerXError) as missing:
        tool_request("com.test.notes", tool(manifest, "get"), {})
    assert missing.value.code == "tool_input_invalid"
    assert [p.where for p in missing.value.problems] == ["$.id"]
