"""`powerx tools list` and `powerx tools call` against a real simulator running the notes
backend (a real program): input and output checked against the tools' JSON Schemas, each
violation named by its JSON path, calls made as an identity and refused when it lacks the
tool's permission."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import EXAMPLES, RunningSimulator
from tests.integration.test_tools_rbac import NOTES_ID, notes_workspace, seen_by_plugin

HELLO_BACKEND_ID = "com.example.hello-backend-python"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    workspace = notes_workspace(tmp_path_factory.mktemp("tools-cli"))
    hello = shutil.copytree(EXAMPLES / "hello-backend-python", workspace.root / "hello")
    simulator = RunningSimulator(workspace, [workspace.root / "notes", hello])
    yield simulator
    simulator.stop()


def tools(sim: RunningSimulator, *args: str) -> Any:
    return sim.workspace.powerx("tools", *args)


def test_tools_list_json_is_one_tool_per_line(sim: RunningSimulator) -> None:
    result = tools(sim, "list", NOTES_ID, "--json")

    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == [
        "note.note.create",
        "note.note.query",
        "note.note.get",
        "note.note.broken",
    ]
    create = rows[0]
    assert (create["method"], create["endpoint"], create["path"]) == (
        "POST",
        "/api/v1/notes",
        f"/_p/{NOTES_ID}/api/v1/notes",
    )
    assert (create["rbac_resource"], create["permission"]) == ("note:note", "note:create")
    assert create["identities"] == ["developer", "writer"]
    assert create["input_schema"]["required"] == ["title"]
    assert rows[1]["permission"] == "note:read"
    assert rows[1]["identities"] == ["developer", "viewer", "writer"]

    table = tools(sim, "list")
    assert table.returncode == 0, table.stderr
    line = next(x for x in table.stdout.splitlines() if "note.note.create" in x)
    assert "POST /api/v1/notes" in line and "note:create" in line and "developer, writer" in line


def test_a_call_with_bad_input_is_refused_naming_each_field(sim: RunningSimulator) -> None:
    before = seen_by_plugin(sim)

    result = tools(sim, "call", NOTES_ID, "note.note.create", "--input", '{"status": "later"}')

    assert result.returncode == 1
    assert "error [tool_input_invalid]" in result.stderr
    assert "$.title: required, but missing" in result.stderr
    assert "$.status: 'later' is not one of" in result.stderr
    assert "Traceback" not in result.stderr
    assert seen_by_plugin(sim) == before  # nothing was sent

    not_json = tools(sim, "call", NOTES_ID, "note.note.create", "--input", "{title: x}")
    assert not_json.returncode == 1
    assert "error [tool_input_not_json]" in not_json.stderr


def test_a_call_returns_the_answer_checked_against_the_output_schema(
    sim: RunningSimulator,
) -> None:
    created = tools(
        sim, "call", NOTES_ID, "note.note.create", "--input", '{"title": "hi"}', "--json"
    )

    assert created.returncode == 0, created.stderr
    result = json.loads(created.stdout)
    assert (result["status"], result["ok"], result["violations"]) == (201, True, [])
    assert (result["identity"], result["method"]) == ("developer", "POST")
    assert result["output"]["title"] == "hi"

    # A GET takes the input as its query; {id} in the endpoint comes from the input.
    found = tools(sim, "call", NOTES_ID, "note.note.query", "--input", '{"status": "todo"}')
    assert found.returncode == 0, found.stderr
    assert f"GET /_p/{NOTES_ID}/api/v1/notes -> 200" in found.stdout
    assert seen_by_plugin(sim)[-1] == "GET /api/v1/notes?status=todo"
    one = tools(sim, "call", NOTES_ID, "note.note.get", "--input", json.dumps({"id": 1}), "--json")
    assert json.loads(one.stdout)["path"] == f"/_p/{NOTES_ID}/api/v1/notes/1"


def test_an_answer_that_breaks_the_output_schema_is_named(sim: RunningSimulator) -> None:
    result = tools(sim, "call", NOTES_ID, "note.note.broken", "--json")

    assert result.returncode == 1
    answer = json.loads(result.stdout)  # the answer is still printed, whole
    assert answer["status"] == 201 and answer["ok"] is False
    assert [v["where"] for v in answer["violations"]] == ["$.id", "$.title"]
    assert "error [tool_output_invalid]" in result.stderr
    assert "$.id: 'seven' is not of type 'integer'" in result.stderr
    assert "$.title: 5 is not of type 'string'" in result.stderr


def test_a_call_as_an_identity_lacking_the_permission_gets_403(sim: RunningSimulator) -> None:
    before = seen_by_plugin(sim)

    result = tools(
        sim, "call", NOTES_ID, "note.note.create", "--input", '{"title": "x"}', "--as", "viewer"
    )

    assert result.returncode == 1
    assert "error [rbac_denied]" in result.stderr
    assert "'viewer' lacks permission 'note:create'" in result.stderr
    assert "--as developer" in result.stderr
    assert seen_by_plugin(sim) == before

    writer = tools(
        sim, "call", NOTES_ID, "note.note.create", "--input", '{"title": "x"}', "--as", "writer"
    )
    assert writer.returncode == 0, writer.stderr
    assert "as writer" in writer.stdout

    unknown = tools(sim, "call", NOTES_ID, "note.note.query", "--as", "nobody")
    assert unknown.returncode == 1 and "error [identity_unknown]" in unknown.stderr
    missing = tools(sim, "call", NOTES_ID, "note.nothing")
    assert missing.returncode == 1 and "error [tool_not_found]" in missing.stderr


def test_the_backend_example_has_a_tool_that_answers_as_its_schema_says(
    sim: RunningSimulator,
) -> None:
    listed = tools(sim, "list", HELLO_BACKEND_ID, "--json")
    assert [json.loads(line)["permission"] for line in listed.stdout.splitlines()] == ["hello:read"]

    result = tools(sim, "call", HELLO_BACKEND_ID, "hello.greet", "--json")

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["ok"], answer["violations"]) == (True, [])
    assert answer["output"]["greeting"] == "hello from a backend"
    assert answer["output"]["tenant"] == "1"  # the developer identity's tenant id, signed

    refused = tools(sim, "call", HELLO_BACKEND_ID, "hello.greet", "--as", "viewer")
    assert refused.returncode == 1 and "lacks permission 'hello:read'" in refused.stderr
