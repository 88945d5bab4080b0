"""Editable mock data against a real simulator and the hello-python example: each tenant's
data is a file; an edit changes what the plugin's next host API call returns, with no
restart; an edit that cannot be used is refused with file:line and a fix while the old
data keeps serving; `powerx data reset` puts the seed back."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from powerx.host.mock_data_file import render
from powerx.host.tenants import seed
from powerx.testing import wait_until
from tests.conftest import HELLO_PYTHON, RunningSimulator, Workspace
from tests.integration.test_hot_reload import PY_ID, start_example


def _file(workspace: Workspace, tenant: str = "acme") -> Path:
    return workspace.state_dir / "mock-data" / f"{tenant}.yaml"


def _state(simulator: RunningSimulator, tenant: str = "acme") -> dict[str, Any]:
    response = simulator.get(
        f"/internal/debug/mock-data/{tenant}", headers=simulator.debug_headers()
    )
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


def _applied(simulator: RunningSimulator, text: str, tenant: str = "acme") -> dict[str, Any]:
    """Until the simulator serves ``text`` (the file's new content) for ``tenant``."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return wait_until(
        lambda: _state(simulator, tenant),
        accept=lambda state: state["digest"] == digest and state["problem"] is None,
        what=f"{tenant}'s mock data {digest[:12]} to be served",
    )


def _refused(simulator: RunningSimulator, tenant: str = "acme") -> dict[str, Any]:
    state = wait_until(
        lambda: _state(simulator, tenant),
        accept=lambda state: state["problem"],
        what=f"{tenant}'s mock data to be refused",
    )
    problem: dict[str, Any] = state["problem"]
    return problem


def _home(simulator: RunningSimulator, **kwargs: Any) -> dict[str, Any]:
    response = simulator.get(f"/plugins/{PY_ID}/", **kwargs)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _edit_contacts(path: Path, names: list[str]) -> str:
    data = yaml.safe_load(path.read_text())
    data["contacts"] = [
        {"id": f"c_{n:03d}", "name": name, "email": f"{n}@acme.example"}
        for n, name in enumerate(names, 1)
    ]
    text = yaml.safe_dump(data, sort_keys=False)
    path.write_text(text)
    return text


def test_an_edit_changes_the_next_host_call_without_a_restart(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, _ = start_example(workspace, start_simulator, HELLO_PYTHON, tmp_path / "p")
    path = _file(workspace)
    assert path.read_text() == render("acme", seed("acme"))  # seeded on first use
    before = _home(simulator)
    assert before["first_contact"] == seed("acme")["contacts"][0]["name"]
    serving = simulator.plugin_status(PY_ID)

    text = _edit_contacts(path, ["Edited Person", "Second Person"])
    state = _applied(simulator, text)

    after = _home(simulator)
    assert (after["first_contact"], after["contacts"]) == ("Edited Person", 2)
    assert state["revision"] == 1 and state["file"] == str(path)
    now = simulator.plugin_status(PY_ID)
    assert (now["generation"], now["pid"]) == (serving["generation"], serving["pid"])
    assert "mock data of tenant acme applied" in simulator.stderr()


def test_a_bad_edit_is_refused_with_file_and_line_and_the_old_data_stays(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, _ = start_example(workspace, start_simulator, HELLO_PYTHON, tmp_path / "p")
    path = _file(workspace)
    _applied(simulator, _edit_contacts(path, ["Good Data"]))

    lines = path.read_text().splitlines()
    broken = next(n for n, line in enumerate(lines) if line.strip() == "- id: c_001")
    lines[broken] = "- identifier: c_001"
    path.write_text("\n".join(lines) + "\n")
    problem = _refused(simulator)

    assert problem["code"] == "mock_data_invalid"
    assert problem["line"] == broken + 1
    assert problem["message"].startswith(f"{path}:{broken + 1}: contacts[0].")
    assert "last good data stays" in problem["fix"]
    assert _home(simulator)["first_contact"] == "Good Data"
    listed = workspace.powerx("data", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"acme.yaml:{broken + 1}" in listed.stdout and "fix:" in listed.stdout
    wait_until(simulator.stderr, accept=lambda err: "mock data refused" in err, what="the refusal")

    path.write_text("contacts: [\n")  # not even YAML
    assert wait_until(
        lambda: "not valid YAML" in (_state(simulator)["problem"] or {}).get("message", "")
    )
    assert _home(simulator)["first_contact"] == "Good Data"


def test_data_reset_restores_the_seed_with_and_without_a_simulator(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, _ = start_example(workspace, start_simulator, HELLO_PYTHON, tmp_path / "p")
    path = _file(workspace)
    seeded = render("acme", seed("acme"))
    _applied(simulator, _edit_contacts(path, ["Someone Else"]))

    reset = workspace.powerx("data", "reset", "acme")

    assert reset.returncode == 0, reset.stderr
    assert "acme reset to its seed" in reset.stdout
    assert path.read_text() == seeded
    assert _home(simulator)["first_contact"] == seed("acme")["contacts"][0]["name"]
    unknown = workspace.powerx("data", "reset", "nobody")
    assert unknown.returncode == 1 and "mock_data_tenant_unknown" in unknown.stderr

    _applied(simulator, _edit_contacts(path, ["Edited Offline"]))
    simulator.stop()
    offline = workspace.powerx("data", "reset")
    assert offline.returncode == 0, offline.stderr
    assert path.read_text() == seeded


def test_a_tenant_first_named_by_a_request_gets_a_file_that_edits_apply_to(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, _ = start_example(workspace, start_simulator, HELLO_PYTHON, tmp_path / "p")
    path = _file(workspace, "newco")
    headers = {"x-powerx-tenant": "newco"}
    assert _home(simulator, headers=headers)["tenant"] == "newco"
    wait_until(path.exists, what=f"{path} for the new tenant")

    _applied(simulator, _edit_contacts(path, ["New Co Person"]), "newco")
    assert _home(simulator, headers=headers)["first_contact"] == "New Co Person"
    assert _home(simulator)["first_contact"] != "New Co Person"  # acme is untouched

    path.unlink()  # gone: the seed again, written back
    assert wait_until(lambda: path.exists() and path.read_text() == render("newco", seed("newco")))
    assert (
        _home(simulator, headers=headers)["first_contact"] == seed("newco")["contacts"][0]["name"]
    )
    odd = simulator.get(f"/plugins/{PY_ID}/", headers={"x-powerx-tenant": "../escape"})
    assert odd.status_code == 200 and odd.json()["tenant"] == "../escape"
    assert not (workspace.state_dir / "escape.yaml").exists()
    listed = {
        t["tenant"]: t
        for t in simulator.get(
            "/internal/debug/mock-data", headers=simulator.debug_headers()
        ).json()["tenants"]
    }
    assert listed["../escape"]["editable"] is False and listed["newco"]["editable"] is True
