"""Tenants as PowerX's gRPC services name them: by number (``x-powerx-tenant-id``,
``client_id=<plugin id>.<tenant id>``) and by UUID (``ResourceRef.tenant_uuid``), where
the simulator's mock data knows them by name (``acme``).

The numbers come from the config's identities (``tenant_id``, with the identity's
``tenant`` or the config's); the run's own tenant is the one of the identity requests are
made as. A number no identity names is no tenant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from powerx.config import SimulatorConfig

# Fixed, so a tenant's UUID is the same in every run and on every machine.
_NAMESPACE = uuid.UUID("5c0f8e0a-6f0e-4d52-9a53-7e3c1f1f7a11")


@dataclass(frozen=True)
class Tenant:
    id: int
    name: str  # the mock data's key

    @property
    def uuid(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, self.name))


class TenantDirectory:
    def __init__(self, config: SimulatorConfig) -> None:
        names: dict[int, str] = {}
        home = config.identities[config.identity]
        # The run's identity first: where two identities give one number two tenants,
        # the run's wins, then the order of the config.
        for identity in (home, *config.identities.values()):
            names.setdefault(identity.tenant_id, identity.tenant or config.tenant)
        self._tenants = {number: Tenant(number, name) for number, name in names.items()}
        self.home = self._tenants[home.tenant_id]

    def get(self, number: int) -> Tenant | None:
        return self._tenants.get(number)
