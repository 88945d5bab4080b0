"""Seeded, deterministic mock tenant data: the same tenant always sees the same contacts
until the developer edits them (host/mock_data.py keeps each tenant's data in a file).

The host API's contacts and IAM's members (host/upstream) are the same people: member N
is contact N, so a plugin sees one tenant whichever way it asks.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

_FIRST = (
    "Ada",
    "Grace",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Alan",
    "Radia",
    "Guido",
    "Katherine",
    "Edsger",
    "Hedy",
    "Tim",
    "Sophie",
)
_LAST = (
    "Lovelace",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Turing",
    "Perlman",
    "van Rossum",
    "Johnson",
    "Dijkstra",
    "Lamarr",
    "Berners-Lee",
    "Wilson",
)


# IAM's statuses (powerx.iam.v1.MemberStatus) and team kinds (TeamKind), by number.
ACTIVE, INACTIVE, SUSPENDED = 1, 2, 3
PROJECT, FUNCTIONAL = 1, 2
_TEAMS = (
    ("Platform", PROJECT, "Builds and runs the product."),
    ("Support", FUNCTIONAL, "Answers customers."),
    ("Growth", PROJECT, "Finds new customers."),
)
_FIRST_DAY = 1735689600  # 2025-01-01T00:00:00Z: member N joined N - 1 days later
_DAY_S = 86400


def _seed_contacts(tenant: str) -> list[dict[str, Any]]:
    rng = random.Random(f"contacts:{tenant}")
    people = []
    for index in range(5 + rng.randrange(6)):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        handle = f"{first}.{last}".lower().replace(" ", "")
        people.append(
            {
                "id": f"c_{index + 1:03d}",
                "name": f"{first} {last}",
                "email": f"{handle}@{tenant}.example",
                "tenant": tenant,
            }
        )
    return people


def _seed_members(contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One IAM member per contact; member 1 owns every team, the others are in one team
    each; every fifth is inactive and every seventh suspended."""
    people, taken = [], set()
    for index, contact in enumerate(contacts):
        number = index + 1
        username = contact["email"].split("@")[0]
        if username in taken:  # two contacts of the same name
            username = f"{username}{number}"
        taken.add(username)
        joined = _FIRST_DAY + index * _DAY_S
        people.append(
            {
                "id": number,
                "user_id": 1000 + number,
                "username": username,
                "display_name": contact["name"],
                "avatar_url": f"https://avatars.example/{username}.png",
                "status": SUSPENDED if number % 7 == 0 else INACTIVE if number % 5 == 0 else ACTIVE,
                "email": contact["email"],
                "phone": f"+1-555-01{number:02d}",
                "department_id": 1 + index % 2,
                "team_ids": [t + 1 for t in range(len(_TEAMS))]
                if number == 1
                else [1 + index % len(_TEAMS)],
                "contact_id": contact["id"],
                "created_at": joined,
                "updated_at": joined + _DAY_S // 2,
            }
        )
    return people


def count_team_members(data: dict[str, Any]) -> None:
    """Give each team without a ``member_count`` the number of members naming it."""
    for team in data["teams"]:
        if team.get("member_count") is None:
            team["member_count"] = sum(team["id"] in m["team_ids"] for m in data["members"])


def seed(tenant: str) -> dict[str, Any]:
    """The tenant's data as a fresh simulator makes it, the same for the same name:
    ``tenant`` (name, plan), ``contacts``, ``messages``, ``members`` and ``teams``."""
    contacts = _seed_contacts(tenant)
    data: dict[str, Any] = {
        "tenant": {"name": tenant.title(), "plan": "developer"},
        "contacts": contacts,
        "messages": [
            {
                "id": f"m_{i + 1:03d}",
                "to": contacts[i]["id"],
                "text": f"Welcome, {contacts[i]['name']}!",
            }
            for i in range(2)
        ],
        "members": _seed_members(contacts),
        "teams": [
            {
                "id": index + 1,
                "name": name,
                "kind": kind,
                "description": description,
                "sort": index + 1,
                "owner_member_id": 1,
                "labels": {"area": name.lower()},
                "created_at": _FIRST_DAY - (len(_TEAMS) - index) * _DAY_S,
                "updated_at": _FIRST_DAY,
            }
            for index, (name, kind, description) in enumerate(_TEAMS)
        ],
    }
    count_team_members(data)
    return data


class TenantData:
    """Each tenant's contacts, messages, members and teams, and a key-value store per
    tenant and plugin, in memory.

    A tenant's data is made from its seed when it is first used (``on_first_use`` then
    hears of it: the simulator writes it to the tenant's mock data file), or put in place
    by ``replace`` (the developer edited that file). The key-value store is the plugins'
    own: ``replace`` leaves it alone.
    """

    def __init__(self, on_first_use: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self._tenants: dict[str, dict[str, Any]] = {}
        self._kv: dict[tuple[str, str], dict[str, Any]] = {}
        self.on_first_use = on_first_use

    def tenant(self, tenant: str) -> dict[str, Any]:
        """All of ``tenant``'s data (seeded now if it was never used)."""
        found = self._tenants.get(tenant)
        if found is None:
            found = self._tenants[tenant] = seed(tenant)
            if self.on_first_use is not None:
                self.on_first_use(tenant, found)
        return found

    def known(self) -> list[str]:
        return sorted(self._tenants)

    def replace(self, tenant: str, data: dict[str, Any]) -> None:
        """Serve ``data`` for ``tenant`` from now on (its kv stores stay)."""
        count_team_members(data)
        self._tenants[tenant] = data

    def info(self, tenant: str) -> dict[str, Any]:
        return {"id": tenant, **self.tenant(tenant)["tenant"]}

    def contacts(self, tenant: str) -> list[dict[str, Any]]:
        contacts: list[dict[str, Any]] = self.tenant(tenant)["contacts"]
        return contacts

    def contact(self, tenant: str, contact_id: str) -> dict[str, Any] | None:
        return next((c for c in self.contacts(tenant) if c["id"] == contact_id), None)

    def search_contacts(self, tenant: str, query: str) -> list[dict[str, Any]]:
        needle = query.lower()
        return [c for c in self.contacts(tenant) if needle in c["name"].lower()]

    def messages(self, tenant: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.tenant(tenant)["messages"]
        return messages

    def send_message(self, tenant: str, to: str, text: str) -> dict[str, Any]:
        box = self.messages(tenant)
        message = {"id": f"m_{len(box) + 1:03d}", "to": to, "text": text}
        box.append(message)
        return message

    def members(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's IAM members (by default one per contact; see ``seed``)."""
        members: list[dict[str, Any]] = self.tenant(tenant)["members"]
        return members

    def teams(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's teams, with how many members each has."""
        teams: list[dict[str, Any]] = self.tenant(tenant)["teams"]
        return teams

    def kv(self, tenant: str, plugin_id: str) -> dict[str, Any]:
        return self._kv.setdefault((tenant, plugin_id), {"greeting": f"hello from {tenant}"})
