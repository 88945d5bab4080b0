"""Seeded, deterministic mock tenant data: the same tenant always sees the same contacts."""

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


class TenantData:
    """Contacts, messages and a key-value store per tenant (kv also per plugin), in memory."""

    def __init__(self) -> None:
        self._contacts: dict[str, list[dict[str, Any]]] = {}
        self._messages: dict[str, list[dict[str, Any]]] = {}
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

    def kv(self, tenant: str, plugin_id: str) -> dict[str, Any]:
        return self._kv.setdefault((tenant, plugin_id), {"greeting": f"hello from {tenant}"})
