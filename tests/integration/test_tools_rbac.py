"""RBAC as PowerX's host applies it: a request to a tool's endpoint, and a host API call the
plugin makes while serving a request, are refused when the request's identity lacks the
permission; the refusal names it, the identity and who has it, and is counted and audited.

One real simulator runs the notes backend (tests/plugins/notes-backend, a program on PORT)
with three identities: ``developer`` (``*``), ``viewer`` (reads notes and contacts) and
``writer`` (``note:*``, no contacts).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from powerx.testing import wait_until
from tests.conftest import REPO, RunningSimulator, Workspace, make_workspace

NOTES_PLUGIN = REPO / "tests/plugins/notes-backend"
NOTES_ID = "com.test.notes"
NOTES = f"/_p/{NOTES_ID}/api/v1/notes"
IDENTITIES = {
    "viewer": {
        "tenant_id": 2,
        "user_id": 7,
        "roles": ["viewer"],
        "perms": ["note:read", "contacts:read"],
    },
    "writer": {"tenant_id": 2, "user_id": 8, "roles": ["editor"], "perms": ["note:*"]},
}


def notes_workspace(tmp: Path) -> Workspace:
    """A logged-in workspace whose config adds the viewer and writer identities, with a
    copy of the notes plugin in ``notes/``."""
    workspace = make_workspace(tmp)
    config = yaml.safe_load((REPO / "config/plugins/debug/host_simulator.yaml").read_text())
    config["identities"].update(IDENTITIES)
    path = tmp / "host_simulator.yaml"
    path.write_text(yaml.safe_dump(config))
    workspace.env["POWERX_CONFIG"] = str(path)
    workspace.login()
    shutil.copytree(NOTES_PLUGIN, workspace.root / "notes")
    return workspace


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    workspace = notes_workspace(tmp_path_factory.mktemp("tools-rbac"))
    simulator = RunningSimulator(workspace, [workspace.root / "notes"])
    yield simulator
    simulator.stop()


def as_identity(sim: RunningSimulator, name: str) -> dict[str, str]:
    return {"x-powerx-identity": name, **sim.debug_headers()}


def seen_by_plugin(sim: RunningSimulator) -> list[str]:
    response = sim.get(f"/_p/{NOTES_ID}/api/v1/seen")
    assert response.status_code == 200, response.text
    return list(response.json())


def audit_rows(sim: RunningSimulator, **match: str) -> list[dict[str, Any]]:
    result = sim.workspace.powerx("audit", "list", "--action", "permission.denied", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return [r for r in rows if all(r["details"].get(k) == v for k, v in match.items())]


def denials_counted(sim: RunningSimulator, scope: str) -> float:
    text = sim.get("/metrics", headers=sim.debug_headers()).text
    prefix = f'debug_permission_denied_total{{plugin="{NOTES_ID}",scope="{scope}"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def test_a_tool_endpoint_refuses_an_identity_lacking_its_permission(sim: RunningSimulator) -> None:
    before = seen_by_plugin(sim)

    refused = sim.post(NOTES, json={"title": "not mine"}, headers=as_identity(sim, "viewer"))

    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/json")
    body = refused.json()
    assert body["error"] == "rbac_denied"
    assert (body["identity"], body["permission"], body["tool"]) == (
        "viewer",
        "note:create",
        "note.note.create",
    )
    assert body["reason"] == "permission required: note:create"  # PowerX's own words
    assert "'viewer' lacks permission 'note:create'" in body["message"]
    # Who has it, and how to give it to this identity.
    assert "developer, writer" in body["fix"] and "--as developer" in body["fix"]
    assert "identities.viewer.perms in host_simulator.yaml" in body["fix"]
    # Refused before the plugin: it never saw the request.
    assert seen_by_plugin(sim) == before

    # The same request as an identity holding note:create (note:*) reaches the plugin.
    allowed = sim.post(NOTES, json={"title": "mine"}, headers=as_identity(sim, "writer"))
    assert allowed.status_code == 201, allowed.text
    assert seen_by_plugin(sim)[-1] == "POST /api/v1/notes"
    # Reading is the viewer's: GET maps to note:read, and a path parameter matches.
    assert sim.get(NOTES, headers=as_identity(sim, "viewer")).status_code == 200
    one = sim.get(f"{NOTES}/{allowed.json()['id']}", headers=as_identity(sim, "viewer"))
    assert one.status_code == 200, one.text

    rows = wait_until(lambda: audit_rows(sim, identity="viewer", scope="note:create"))
    assert rows[0]["plugin"] == NOTES_ID
    assert "note.note.create" in rows[0]["details"]["api"]
    assert denials_counted(sim, "note:create") >= 1


def test_the_host_api_refuses_a_call_made_for_an_identity_lacking_the_scope(
    sim: RunningSimulator,
) -> None:
    contacts = f"/_p/{NOTES_ID}/api/v1/contacts"

    refused = sim.get(contacts, headers=as_identity(sim, "writer"))

    # The plugin has contacts:read; the identity it serves does not.
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert body["error"] == "rbac_denied"
    # The plugin's helper passes the host's refusal on as its answer (error, message, fix).
    assert (
        "Identity 'writer' lacks permission 'contacts:read', needed by host API contacts.list"
        in body["message"]
    )
    assert "developer, viewer" in body["fix"]
    assert seen_by_plugin(sim)[-1] == "GET /api/v1/contacts"  # the plugin asked the host

    for identity in ("viewer", "developer"):
        allowed = sim.get(contacts, headers=as_identity(sim, identity))
        assert allowed.status_code == 200, (identity, allowed.text)
        assert isinstance(allowed.json(), list) and allowed.json()
    # Without a header the run's identity (developer, "*") is used.
    assert sim.get(contacts).status_code == 200

    rows = wait_until(lambda: audit_rows(sim, identity="writer", scope="contacts:read"))
    assert rows[0]["details"]["api"] == "host API contacts.list"
    assert denials_counted(sim, "contacts:read") >= 1
