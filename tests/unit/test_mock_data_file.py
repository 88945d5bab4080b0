"""A tenant's mock data file: the seed written and read back whole; every edit a plugin
could trip over refused with the file's line and a fix; only safe names get a file; the
gRPC IAM services answer from the data a file put in place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from powerx.errors import PowerXError
from powerx.host.mock_data_file import file_name, parse, render, tenant_of
from powerx.host.tenants import TenantData, seed
from powerx.host.upstream.contracts import contracts
from powerx.host.upstream.iam import Iam
from powerx.host.upstream.tenancy import Tenant

FILE = Path("/state/mock-data/acme.yaml")


def refused(text: str, path: Path = FILE) -> PowerXError:
    with pytest.raises(PowerXError) as caught:
        parse(path, "acme", text)
    assert caught.value.code == "mock_data_invalid"
    return caught.value


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_seed_is_written_and_read_back_whole() -> None:
    text = render("acme", seed("acme"))

    assert text.startswith("# Mock data of tenant 'acme'")
    assert "powerx data reset acme" in text
    assert "member_count:" not in text  # counted from the members, never stale
    data = TenantData()
    data.replace("acme", parse(FILE, "acme", text))
    assert data.tenant("acme") == seed("acme")
    assert data.info("acme") == {"id": "acme", "name": "Acme", "plan": "developer"}


def test_broken_yaml_is_refused_at_its_line() -> None:
    text = render("acme", seed("acme")).replace("contacts:\n- id:", "contacts:\n- id: [", 1)

    error = refused(text)

    line = line_of(text, "- id: [") + 1  # the parser notices on the next line
    assert error.message.startswith(f"{FILE}:")
    assert "not valid YAML" in error.message
    assert abs(error.details["line"] - line) <= 1
    assert error.fix and "syntax" in error.fix and "last good data stays" in error.fix


EDITS = [
    # (replace what, with what), the line to point at (its text, which occurrence),
    # what the message says after file:line, how the fix starts
    (
        ("  name: Acme", "  plan: developer"),
        ("tenant:", 0),
        "tenant.name: Field required",
        "add `name`",
    ),
    (("contacts:", "contact:"), ("contact:", 0), "contact: Extra inputs", "remove `contact`"),
    (("  status: 1", "  status: 9"), ("status: 9", 0), "members[0].status", "correct the value"),
    (
        ("- id: c_002", "- id: c_001"),
        ("- id: c_001", 1),
        "contacts[1].id: id 'c_001' is used twice",
        "change id to one",
    ),
    (
        ("  team_ids:", "  teams_ids:"),
        ("teams_ids:", 0),
        "members[0].teams_ids: Extra",
        "remove `teams_ids`",
    ),
]


@pytest.mark.parametrize(("edit", "at", "said", "fix"), EDITS)
def test_an_edit_that_cannot_be_used_is_refused_with_its_line_and_a_fix(
    edit: tuple[str, str], at: tuple[str, int], said: str, fix: str
) -> None:
    text = render("acme", seed("acme")).replace(*edit, 1)
    needle, occurrence = at
    expected = [n for n, line in enumerate(text.splitlines(), 1) if needle in line][occurrence]

    error = refused(text)

    assert error.message.startswith(f"{FILE}:{expected}: {said}"), error.message
    assert error.details == {"tenant": "acme", "file": str(FILE), "line": expected}
    assert error.fix is not None and error.fix.startswith(fix), error.fix
    assert "powerx data reset acme" in error.fix


def test_a_misspelt_key_is_told_the_known_ones() -> None:
    text = render("acme", seed("acme")).replace("  team_ids:", "  teams_ids:", 1)
    assert "known keys: id, user_id, username" in str(refused(text).fix)


def test_every_problem_is_listed_with_its_own_line() -> None:
    data: dict[str, Any] = seed("acme")
    data["contacts"][0].pop("id")
    data["teams"][1]["kind"] = 7
    text = render("acme", data)

    error = refused(text)

    assert [p.message.split(":")[0] for p in error.problems] == ["contacts[0].id", "teams[1].kind"]
    assert "(and 1 more)" in error.message
    assert error.problems[1].where == f"{FILE}:{line_of(text, 'kind: 7')}"


def test_json_files_are_read_too_and_point_at_their_lines() -> None:
    path = FILE.with_suffix(".json")
    data = seed("acme")
    text = json.dumps(data, indent=2)
    assert parse(path, "acme", text)["contacts"] == data["contacts"]

    broken = refused(text.replace('"plan": "developer"', '"plan": "developer",', 1), path)
    assert "not valid JSON" in broken.message and broken.details["line"] > 1

    data["members"][2]["user_id"] = -1
    text = json.dumps(data, indent=2)
    invalid = refused(text, path)
    where = line_of(text, '"user_id": -1')
    assert invalid.message.startswith(f"{path}:{where}: members[2]")


def test_a_file_must_be_a_mapping() -> None:
    assert "must be a mapping" in refused("- just\n- a list\n").message


@pytest.mark.parametrize("name", ["acme", "globex-2", "tenant_1", "a.b"])
def test_safe_names_get_a_file(name: str) -> None:
    assert file_name(name) == f"{name}.yaml"
    assert tenant_of(Path(f"/x/{name}.yaml")) == name
    assert tenant_of(Path(f"/x/{name}.json")) == name


@pytest.mark.parametrize(
    "name", ["", "../etc", "a/b", ".hidden", "x" * 65, "acme.yaml", "a..b", "é"]
)
def test_other_names_stay_in_memory(name: str) -> None:
    assert file_name(name) is None


def test_editor_scratch_files_are_no_tenants() -> None:
    for scratch in (".acme.yaml.swp", ".acme.yaml.123.tmp", "acme.yaml~", "notes.txt"):
        assert tenant_of(Path("/x") / scratch) is None


def test_iam_answers_from_the_data_an_edit_put_in_place() -> None:
    data = TenantData()
    edited = yaml.safe_load(render("acme", seed("acme")))
    edited["members"][0]["username"] = "edited.user"
    edited["members"][1]["team_ids"] = [3]
    data.replace("acme", parse(FILE, "acme", yaml.safe_dump(edited)))
    iam = Iam(contracts(), data)

    listed: Any = iam.list_members(
        Tenant(1, "acme"), contracts().new("powerx.iam.v1.ListMembersRequest")
    )
    teams: Any = iam.list_teams(
        Tenant(1, "acme"), contracts().new("powerx.iam.v1.ListTeamsRequest")
    )

    assert "edited.user" in [m.username for m in listed.data.items]
    counts = {t.name: t.member_count for t in teams.data.items}
    expected = {
        t["name"]: sum(t["id"] in m["team_ids"] for m in edited["members"]) for t in edited["teams"]
    }
    assert counts == expected
