"""Seeded, deterministic mock tenant data: the same tenant always sees the same contacts.

The host API's contacts and IAM's members (host/upstream) are the same people: member N
is contact N, so a plugin sees one tenant whichever way it asks.
"""

from __future__ import annotations

import random
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


class TenantData:
    """Contacts, messages, members, teams and a key-value store per tenant (kv also per
    plugin), in memory."""

    def __init__(self) -> None:
        self._contacts: dict[str, list[dict[str, Any]]] = {}
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._members: dict[str, list[dict[str, Any]]] = {}
        self._teams: dict[str, list[dict[str, Any]]] = {}
        self._kv: dict[tuple[str, str], dict[str, Any]] = {}

    def contacts(self, tenant: str) -> list[dict[str, Any]]:
        if tenant not in self._contacts:
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
            self._contacts[tenant] = people
        return self._contacts[tenant]

    def contact(self, tenant: str, contact_id: str) -> dict[str, Any] | None:
        return next((c for c in self.contacts(tenant) if c["id"] == contact_id), None)

    def search_contacts(self, tenant: str, query: str) -> list[dict[str, Any]]:
        needle = query.lower()
        return [c for c in self.contacts(tenant) if needle in c["name"].lower()]

    def messages(self, tenant: str) -> list[dict[str, Any]]:
        if tenant not in self._messages:
            contacts = self.contacts(tenant)
            self._messages[tenant] = [
                {
                    "id": f"m_{i + 1:03d}",
                    "to": contacts[i]["id"],
                    "text": f"Welcome, {contacts[i]['name']}!",
                }
                for i in range(2)
            ]
        return self._messages[tenant]

    def send_message(self, tenant: str, to: str, text: str) -> dict[str, Any]:
        box = self.messages(tenant)
        message = {"id": f"m_{len(box) + 1:03d}", "to": to, "text": text}
        box.append(message)
        return message

    def members(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's IAM members, one per contact; member 1 owns every team, the others
        are in one team each; every fifth is inactive and every seventh suspended."""
        if tenant not in self._members:
            people, taken = [], set()
            for index, contact in enumerate(self.contacts(tenant)):
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
                        "status": SUSPENDED
                        if number % 7 == 0
                        else INACTIVE
                        if number % 5 == 0
                        else ACTIVE,
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
            self._members[tenant] = people
        return self._members[tenant]

    def teams(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's teams, with how many members each has."""
        if tenant not in self._teams:
            members = self.members(tenant)
            self._teams[tenant] = [
                {
                    "id": index + 1,
                    "name": name,
                    "kind": kind,
                    "description": description,
                    "sort": index + 1,
                    "owner_member_id": 1,
                    "member_count": sum(index + 1 in m["team_ids"] for m in members),
                    "labels": {"area": name.lower()},
                    "created_at": _FIRST_DAY - (len(_TEAMS) - index) * _DAY_S,
                    "updated_at": _FIRST_DAY,
                }
                for index, (name, kind, description) in enumerate(_TEAMS)
            ]
        return self._teams[tenant]

    def kv(self, tenant: str, plugin_id: str) -> dict[str, Any]:
        return self._kv.setdefault((tenant, plugin_id), {"greeting": f"hello from {tenant}"})
