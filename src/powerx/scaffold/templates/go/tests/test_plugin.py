"""Runs the plugin in a real host simulator: `pytest` in this folder."""

from pathlib import Path

from powerx.testing import LocalSimulator

PLUGIN = Path(__file__).resolve().parent.parent
PLUGIN_ID = "__PLUGIN_ID__"


def test_it_greets_the_tenant_of_the_signed_context() -> None:
    with LocalSimulator([PLUGIN]) as sim:
        response = sim.get(f"/_p/{PLUGIN_ID}/api/v1/hello")
        assert response.status_code == 200, response.text
        assert response.json()["greeting"] == "hello from __PLUGIN_NAME__"
        assert response.json()["tenant"] is not None
