"""What a plugin is handed for the host's gRPC services, and a listener that cannot be."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from powerx.config import Identity, SimulatorConfig
from powerx.errors import PowerXError
from powerx.host.simulator import Simulator


def simulator(tmp_path: Path, config: SimulatorConfig | None = None) -> Simulator:
    return Simulator(config or SimulatorConfig(), tmp_path / "state", "http://127.0.0.1:9")


def test_a_plugin_gets_the_names_powerxpluginbase_reads(tmp_path: Path) -> None:
    config = SimulatorConfig(
        identities={"ops": Identity(tenant="globex", tenant_id=7)}, identity="ops"
    )
    sim = simulator(tmp_path, config)

    async def environment() -> dict[str, str]:
        await sim.upstream.start()
        try:
            return sim._plugin_environment("com.example.notes", "pxp_generation-token")
        finally:
            await sim.upstream.stop()

    env = asyncio.run(environment())
    assert env["PX_GRPC_UPSTREAM_ADDRESS"].startswith("unix:///")
    assert env["PX_GRPC_UPSTREAM_ADDRESS"].endswith("/grpc.sock")
    assert env["PX_GRPC_UPSTREAM_TOKEN"] == "pxp_generation-token"
    # The run's identity's tenant: its number, and the client id made of it.
    assert env["PX_GRPC_UPSTREAM_TENANT_ID"] == "7"
    assert env["PX_STS_CLIENT_ID"] == "com.example.notes.7"
    client = sim.upstream.tokens.check_client(env["PX_STS_CLIENT_ID"], env["PX_STS_CLIENT_SECRET"])
    assert (client.plugin, client.tenant_id) == ("com.example.notes", 7)
    tenant = sim.tenant_ids.get(7)
    assert tenant is not None and tenant.name == "globex"
    assert (env["PX_STS_AUDIENCE"], env["PX_STS_SCOPE"], env["PX_STS_TTL"]) == (
        "powerx:api",
        "access",
        "300s",
    )
    # The signed context's settings are still there beside them.
    assert env["PLUGIN_CTX_HMAC_SECRET"]
    # Stopped, the listener's folder is gone.
    assert not Path(env["PX_GRPC_UPSTREAM_ADDRESS"].removeprefix("unix://")).parent.exists()


def test_a_socket_path_too_long_for_the_os_is_an_error_with_a_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / ("x" * 110)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    sim = simulator(tmp_path)
    with pytest.raises(PowerXError) as caught:
        asyncio.run(sim.upstream.start())
    assert caught.value.code == "grpc_listen_failed" and "TMPDIR" in (caught.value.fix or "")
    assert list(deep.iterdir()) == []  # nothing left behind
