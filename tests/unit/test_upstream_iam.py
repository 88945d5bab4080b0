"""IAM over the mock tenant data (host/upstream/iam.py): views, filters, pagination and
order as powerx.iam.v1 describes them, on the same people as the host API's contacts."""

from __future__ import annotations

from typing import Any

import pytest

from powerx.errors import PowerXError
from powerx.host.tenants import TenantData
from powerx.host.upstream.contracts import contracts
from powerx.host.upstream.iam import Iam
from powerx.host.upstream.tenancy import Tenant

ACME = Tenant(1, "acme")
PROFILE, BASIC = 2, 1


@pytest.fixture(scope="module")
def iam() -> Iam:
    return Iam(contracts(), TenantData())


def request(name: str, **fields: Any) -> Any:
    return contracts().new(f"powerx.iam.v1.{name}", **fields)


def usernames(response: Any) -> list[str]:
    return [m.username for m in response.data.items]


def test_members_are_the_tenants_contacts(iam: Iam) -> None:
    contacts = iam.data.contacts("acme")
    response: Any = iam.list_members(ACME, request("ListMembersRequest", view=PROFILE))
    assert response.meta.code == 200
    emails = sorted(m.email for m in response.data.items)
    assert emails == sorted(c["email"] for c in contacts)
    assert response.data.page.total == len(contacts)
    other: Any = iam.list_members(Tenant(2, "globex"), request("ListMembersRequest", view=PROFILE))
    assert {m.email.split("@")[1] for m in other.data.items} == {"globex.example"}


def test_newest_first_by_default_and_other_orders_on_request(iam: Iam) -> None:
    records = iam.data.members("acme")
    newest_first = [m["username"] for m in sorted(records, key=lambda m: -m["created_at"])]
    assert usernames(iam.list_members(ACME, request("ListMembersRequest"))) == newest_first
    by_name = usernames(
        iam.list_members(ACME, request("ListMembersRequest", order_by="username", asc=True))
    )
    assert by_name == sorted(m["username"] for m in records)
    with pytest.raises(PowerXError) as caught:
        iam.list_members(ACME, request("ListMembersRequest", order_by="email"))
    assert (caught.value.code, caught.value.status) == ("invalid_argument", 400)


def test_pages_follow_each_other_by_offset_or_token_until_the_last(iam: Iam) -> None:
    everyone = usernames(iam.list_members(ACME, request("ListMembersRequest")))
    seen: list[str] = []
    token = ""
    while True:
        page = {"page_size": 2, "page_token": token}
        response: Any = iam.list_members(ACME, request("ListMembersRequest", page=page))
        seen += usernames(response)
        assert response.data.page.total == len(everyone)
        token = response.data.page.next_page_token
        if not token:
            break
    assert seen == everyone
    second: Any = iam.list_members(
        ACME, request("ListMembersRequest", page={"page_size": 3, "offset": 3})
    )
    assert usernames(second) == everyone[3:6]


def test_the_basic_view_leaves_out_the_profile(iam: Iam) -> None:
    basic: Any = iam.list_members(ACME, request("ListMembersRequest", view=BASIC))
    profile: Any = iam.list_members(ACME, request("ListMembersRequest", view=PROFILE))
    for member in basic.data.items:
        assert member.username and member.display_name and member.status
        assert (member.email, member.phone, list(member.team_ids)) == ("", "", [])
    for member in profile.data.items:
        assert member.email.endswith("@acme.example") and member.phone and member.team_ids


def test_filters_by_keyword_status_team_and_ids(iam: Iam) -> None:
    records = iam.data.members("acme")
    first = records[0]
    name = first["display_name"].split()[0]
    matching = {
        m["username"]
        for m in records
        if any(name.lower() in m[k].lower() for k in ("username", "display_name", "email"))
    }
    by_keyword = iam.list_members(ACME, request("ListMembersRequest", keyword=name.upper()))
    assert first["username"] in matching and set(usernames(by_keyword)) == matching
    active: Any = iam.list_members(ACME, request("ListMembersRequest", status=1))
    assert {m.status for m in active.data.items} == {1}
    assert len(active.data.items) == sum(m["status"] == 1 for m in records)
    team: Any = iam.list_members(ACME, request("ListMembersRequest", team_id=2, view=PROFILE))
    assert team.data.items and all(2 in m.team_ids for m in team.data.items)
    chosen = iam.list_members(ACME, request("ListMembersRequest", ids=[3, 1, 99, 2]))
    assert [int(m.ref.id) for m in chosen.data.items] == [3, 1, 2]  # in the asked order


def test_get_member_by_id_username_or_prn_and_with_a_field_mask(iam: Iam) -> None:
    first = iam.data.members("acme")[0]
    by_id: Any = iam.get_member(ACME, request("GetMemberRequest", id=1, view=PROFILE))
    member = by_id.data.member
    assert member.username == first["username"] and member.email == first["email"]
    assert member.ref.tenant_uuid == ACME.uuid and member.ref.entity == "member"
    by_name: Any = iam.get_member(ACME, request("GetMemberRequest", username=first["username"]))
    assert by_name.data.member.ref.id == "1"
    by_prn: Any = iam.get_member(ACME, request("GetMemberRequest", prn=member.ref.prn))
    assert by_prn.data.member.username == first["username"]
    masked: Any = iam.get_member(
        ACME,
        request("GetMemberRequest", id=1, view=PROFILE, field_mask={"paths": ["username"]}),
    )
    assert masked.data.member.username == first["username"] and masked.data.member.email == ""
    for bad, code in (
        (request("GetMemberRequest", id=999), "not_found"),
        (request("GetMemberRequest"), "invalid_argument"),
        (request("GetMemberRequest", id=1, field_mask={"paths": ["salary"]}), "invalid_argument"),
    ):
        with pytest.raises(PowerXError) as caught:
            iam.get_member(ACME, bad)
        assert caught.value.code == code


def test_batch_get_keeps_the_order_and_skips_unknown_ids(iam: Iam) -> None:
    response: Any = iam.batch_get_members(ACME, request("BatchGetMembersRequest", ids=[2, 42, 1]))
    assert [m.ref.id for m in response.data.members] == ["2", "1"]


def test_teams_their_members_and_a_members_teams(iam: Iam) -> None:
    teams: Any = iam.list_teams(ACME, request("ListTeamsRequest", order_by="name", asc=True))
    names = [t.name for t in teams.data.items]
    assert names == sorted(names) and teams.data.page.total == len(names)
    support: Any = iam.list_teams(ACME, request("ListTeamsRequest", keyword="SUPP"))
    assert [t.name for t in support.data.items] == ["Support"]
    team = support.data.items[0]
    members: Any = iam.list_team_members(
        ACME, request("ListTeamMembersRequest", team_id=int(team.ref.id), member_view=PROFILE)
    )
    assert len(members.data.items) == team.member_count
    assert all(int(team.ref.id) in m.member.team_ids for m in members.data.items)
    assert {m.role for m in members.data.items} <= {"owner", "member"}
    own: Any = iam.list_member_teams(ACME, request("ListMemberTeamsRequest", member_id=1))
    assert len(own.data.items) == len(teams.data.items)  # member 1 owns every team
    got: Any = iam.get_team(ACME, request("GetTeamRequest", prn=team.ref.prn))
    assert got.data.team.name == "Support"
    with pytest.raises(PowerXError) as caught:
        iam.get_team(ACME, request("GetTeamRequest", id=77))
    assert caught.value.code == "not_found" and caught.value.status == 404
