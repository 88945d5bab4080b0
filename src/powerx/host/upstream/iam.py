"""IAM as PowerX serves it to plugins (``powerx.iam.v1`` ``MemberService`` and
``TeamService``), over the simulator's per-tenant mock data (host/tenants.py).

What the definitions describe, done here: members in the BASIC view (ref, user id,
username, display name, avatar, status) or the PROFILE view (plus email, phone,
department, teams), a field mask on GetMember; filters (keyword in username, display
name, email or phone, any case; status; department; team; a list of ids, kept in its
order); offset pagination (``page_size`` 20 by default and 200 at most; ``next_page_token``
is the next offset, accepted back as ``page_token``); order by ``created_at`` (the
default), ``username`` or ``display_name``, descending unless ``asc``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.tenants import TenantData
from powerx.host.upstream.contracts import MEMBER_SERVICE, TEAM_SERVICE, Contracts
from powerx.host.upstream.tenancy import Tenant

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 200
PROFILE_VIEW = 2  # MemberView.MEMBER_VIEW_PROFILE
_BASIC_FIELDS = ("user_id", "username", "display_name", "avatar_url", "status")
_PROFILE_FIELDS = ("email", "phone", "department_id", "team_ids")
_MEMBER_ORDERS = ("created_at", "username", "display_name")
_TEAM_ORDERS = ("created_at", "name")

Handler = Callable[[Tenant, Any], Message]

__all__ = ["Iam"]


def _invalid(message: str, fix: str) -> PowerXError:
    return PowerXError(ErrorCode.INVALID_ARGUMENT, message, fix, status=400)


def _not_found(what: str, tenant: Tenant) -> PowerXError:
    return PowerXError(
        ErrorCode.NOT_FOUND,
        f"No {what} in tenant {tenant.id} ({tenant.name}).",
        "list them first (ListMembers, ListTeams) to get valid ids.",
        status=404,
    )


def _page(records: list[dict[str, Any]], page: Any) -> tuple[list[dict[str, Any]], int, str]:
    """One page of ``records``: the slice, the total and the next page's token."""
    size = page.page_size if page.page_size > 0 else DEFAULT_PAGE_SIZE
    size = min(size, MAX_PAGE_SIZE)
    offset = page.offset
    if not offset and page.page_token:
        if not page.page_token.isdigit():
            raise _invalid(
                f"page_token {page.page_token[:50]!r} is not one this service handed out.",
                "send back the next_page_token of the previous page, or use offset.",
            )
        offset = int(page.page_token)
    if offset < 0:
        raise _invalid("page.offset must not be negative.", "start at offset 0.")
    chunk = records[offset : offset + size]
    following = offset + size
    return chunk, len(records), str(following) if following < len(records) else ""


def _ordered(
    records: list[dict[str, Any]], order_by: str, asc: bool, allowed: tuple[str, ...]
) -> list[dict[str, Any]]:
    key = order_by.strip() or "created_at"
    if key not in allowed:
        raise _invalid(
            f"order_by {order_by[:50]!r} is not one of {', '.join(allowed)}.",
            f"order by {' or '.join(allowed)} (descending unless asc is true).",
        )
    # Ties (two members who joined the same day) keep id order, so pages never overlap.
    return sorted(records, key=lambda r: (r[key], r["id"]), reverse=not asc)


class Iam:
    def __init__(self, contracts: Contracts, data: TenantData) -> None:
        self.contracts = contracts
        self.data = data

    def handlers(self) -> dict[str, Handler]:
        """Each method this module serves, by its full gRPC name."""
        return {
            f"/{MEMBER_SERVICE}/GetMember": self.get_member,
            f"/{MEMBER_SERVICE}/BatchGetMembers": self.batch_get_members,
            f"/{MEMBER_SERVICE}/ListMembers": self.list_members,
            f"/{TEAM_SERVICE}/GetTeam": self.get_team,
            f"/{TEAM_SERVICE}/ListTeams": self.list_teams,
            f"/{TEAM_SERVICE}/ListTeamMembers": self.list_team_members,
            f"/{TEAM_SERVICE}/ListMemberTeams": self.list_member_teams,
        }

    # -- building messages ----------------------------------------------------------------

    def _response(self, name: str, request: Any, **data: Any) -> Message:
        request_id = request.ctx.request_id or uuid.uuid4().hex
        response = self.contracts.new(name)
        meta: Any = getattr(response, "meta")  # noqa: B009 - a field of a dynamic class
        meta.code, meta.message = 200, "success"
        meta.timestamp, meta.request_id = int(time.time()), request_id
        target: Any = getattr(response, "data")  # noqa: B009
        for key, value in data.items():
            field = getattr(target, key)
            if isinstance(value, list):
                field.extend(value)
            else:
                field.CopyFrom(value)
        return response

    def _page_response(self, total: int, next_token: str) -> Message:
        return self.contracts.new("common.v1.PageResponse", total=total, next_page_token=next_token)

    def _ref(self, tenant: Tenant, entity: str, number: int) -> Message:
        return self.contracts.new(
            "common.v1.ResourceRef",
            tenant_uuid=tenant.uuid,
            domain="iam",
            entity=entity,
            id=str(number),
            prn=f"prn:powerx:local:{tenant.uuid}:iam.{entity}:{number}",
        )

    def _member(self, tenant: Tenant, record: dict[str, Any], view: int) -> Message:
        member: Any = self.contracts.new("powerx.iam.v1.Member")
        member.ref.CopyFrom(self._ref(tenant, "member", record["id"]))
        fields = _BASIC_FIELDS + (_PROFILE_FIELDS if view == PROFILE_VIEW else ())
        for name in fields:
            value = record[name]
            if isinstance(value, list):
                getattr(member, name).extend(value)
            else:
                setattr(member, name, value)
        member.labels["contact_id"] = record["contact_id"]
        member.created_at.seconds = record["created_at"]
        member.updated_at.seconds = record["updated_at"]
        return member  # type: ignore[no-any-return]

    def _team(self, tenant: Tenant, record: dict[str, Any]) -> Message:
        team: Any = self.contracts.new("powerx.iam.v1.Team")
        team.ref.CopyFrom(self._ref(tenant, "team", record["id"]))
        for name in ("name", "kind", "description", "sort", "owner_member_id", "member_count"):
            setattr(team, name, record[name])
        team.path = f"/{record['id']}"
        team.labels.update(record["labels"])
        team.created_at.seconds = record["created_at"]
        team.updated_at.seconds = record["updated_at"]
        return team  # type: ignore[no-any-return]

    # -- finding records --------------------------------------------------------------------

    def _find_member(self, tenant: Tenant, number: int, prn: str, username: str) -> dict[str, Any]:
        members = self.data.members(tenant.name)
        if prn:
            entity, _, found = prn.rpartition(":")
            if not entity.endswith(f"{tenant.uuid}:iam.member") or not found.isdigit():
                raise _not_found(f"member {prn[:120]!r}", tenant)
            number = int(found)
        if username:
            match = next((m for m in members if m["username"] == username), None)
            if match is None:
                raise _not_found(f"member named {username[:100]!r}", tenant)
            return match
        if not number:
            raise _invalid(
                "Name the member: id, prn or username.", "set one of the selector's fields."
            )
        match = next((m for m in members if m["id"] == number), None)
        if match is None:
            raise _not_found(f"member {number}", tenant)
        return match

    def _find_team(self, tenant: Tenant, number: int, prn: str) -> dict[str, Any]:
        if prn:
            entity, _, found = prn.rpartition(":")
            if not entity.endswith(f"{tenant.uuid}:iam.team") or not found.isdigit():
                raise _not_found(f"team {prn[:120]!r}", tenant)
            number = int(found)
        if not number:
            raise _invalid("Name the team: id or prn.", "set one of the selector's fields.")
        match = next((t for t in self.data.teams(tenant.name) if t["id"] == number), None)
        if match is None:
            raise _not_found(f"team {number}", tenant)
        return match

    # -- MemberService ----------------------------------------------------------------------

    def get_member(self, tenant: Tenant, request: Any) -> Message:
        record = self._find_member(tenant, request.id, request.prn, request.username)
        member: Any = self._member(tenant, record, request.view)
        paths = list(request.field_mask.paths)
        if paths:
            known = {field.name for field in member.DESCRIPTOR.fields}
            unknown = [p for p in paths if p not in known]
            if unknown:
                raise _invalid(
                    f"field_mask names fields a Member does not have: {', '.join(unknown)}.",
                    f"use fields of powerx.iam.v1.Member ({', '.join(sorted(known))}).",
                )
            for name in known - set(paths):
                member.ClearField(name)
        return self._response("powerx.iam.v1.GetMemberResponse", request, member=member)

    def batch_get_members(self, tenant: Tenant, request: Any) -> Message:
        by_id = {m["id"]: m for m in self.data.members(tenant.name)}
        found = [
            self._member(tenant, by_id[number], request.view)
            for number in request.ids
            if number in by_id  # as PowerX: ids that are not there are left out
        ]
        return self._response("powerx.iam.v1.BatchGetMembersResponse", request, members=found)

    def list_members(self, tenant: Tenant, request: Any) -> Message:
        records = self.data.members(tenant.name)
        keyword = request.keyword.strip().lower()
        if keyword:
            records = [
                m
                for m in records
                if any(keyword in str(m[k]).lower() for k in ("username", "display_name", "email"))
                or keyword in m["phone"]
            ]
        if request.status:
            records = [m for m in records if m["status"] == request.status]
        if request.department_id:
            records = [m for m in records if m["department_id"] == request.department_id]
        if request.team_id:
            records = [m for m in records if request.team_id in m["team_ids"]]
        if request.ids:
            by_id = {m["id"]: m for m in records}
            records = [by_id[number] for number in request.ids if number in by_id]
        else:
            records = _ordered(records, request.order_by, request.asc, _MEMBER_ORDERS)
        chunk, total, next_token = _page(records, request.page)
        return self._response(
            "powerx.iam.v1.ListMembersResponse",
            request,
            items=[self._member(tenant, m, request.view) for m in chunk],
            page=self._page_response(total, next_token),
        )

    # -- TeamService ------------------------------------------------------------------------

    def get_team(self, tenant: Tenant, request: Any) -> Message:
        team = self._team(tenant, self._find_team(tenant, request.id, request.prn))
        return self._response("powerx.iam.v1.GetTeamResponse", request, team=team)

    def list_teams(self, tenant: Tenant, request: Any) -> Message:
        records = self.data.teams(tenant.name)
        keyword = request.keyword.strip().lower()
        if keyword:
            records = [
                t
                for t in records
                if keyword in t["name"].lower()
                or any(keyword in v.lower() for v in t["labels"].values())
            ]
        if request.kind:
            records = [t for t in records if t["kind"] == request.kind]
        if request.parent_id:  # the mock's teams are all top-level
            records = []
        records = _ordered(records, request.order_by, request.asc, _TEAM_ORDERS)
        chunk, total, next_token = _page(records, request.page)
        return self._response(
            "powerx.iam.v1.ListTeamsResponse",
            request,
            items=[self._team(tenant, t) for t in chunk],
            page=self._page_response(total, next_token),
        )

    def list_team_members(self, tenant: Tenant, request: Any) -> Message:
        team = self._find_team(tenant, request.team_id, request.team_prn)
        records = [m for m in self.data.members(tenant.name) if team["id"] in m["team_ids"]]
        keyword = request.keyword.strip().lower()
        if keyword:
            records = [
                m
                for m in records
                if keyword in m["username"].lower() or keyword in m["display_name"].lower()
            ]
        if request.status:
            records = [m for m in records if m["status"] == request.status]

        def role(member: dict[str, Any]) -> str:
            return "owner" if member["id"] == team["owner_member_id"] else "member"

        if request.role:
            records = [m for m in records if role(m) == request.role]
        chunk, total, next_token = _page(records, request.page)
        items = []
        for record in chunk:
            item: Any = self.contracts.new("powerx.iam.v1.TeamMember", role=role(record))
            item.member.CopyFrom(self._member(tenant, record, request.member_view))
            item.joined_at.seconds = max(record["created_at"], team["created_at"])
            items.append(item)
        return self._response(
            "powerx.iam.v1.ListTeamMembersResponse",
            request,
            items=items,
            page=self._page_response(total, next_token),
        )

    def list_member_teams(self, tenant: Tenant, request: Any) -> Message:
        member = self._find_member(tenant, request.member_id, request.member_prn, request.username)
        records = [t for t in self.data.teams(tenant.name) if t["id"] in member["team_ids"]]
        chunk, total, next_token = _page(records, request.page)
        return self._response(
            "powerx.iam.v1.ListMemberTeamsResponse",
            request,
            items=[self._team(tenant, t) for t in chunk],
            page=self._page_response(total, next_token),
        )
