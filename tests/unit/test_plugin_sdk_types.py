"""The Python SDK (``powerx_plugin``) is typed for the plugins that use it: ``mypy --strict``
on a plugin sees what each host call answers, and flags a misuse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import powerx_plugin

TYPED_USE = """
from typing import assert_type

from starlette.requests import Request
from starlette.responses import JSONResponse

from powerx_plugin import Contact, HostApiError, HostClient, JSONValue, Message, Tenant, host_for


async def home(request: Request) -> JSONResponse:
    host = host_for(request)
    assert_type(host, HostClient)
    assert_type(host.tenant, str)
    contacts = await host.list_contacts()
    assert_type(contacts, list[Contact])
    assert_type(contacts[0]["email"], str)
    assert_type(await host.get_contact("c_001"), Contact)
    assert_type(await host.search_contacts("ada"), list[Contact])
    assert_type(await host.list_messages(), list[Message])
    assert_type(await host.send_message("c_001", "hi"), Message)
    assert_type(await host.get_tenant(), Tenant)
    assert_type(await host.kv_get("visits"), JSONValue)
    settings: dict[str, str] = {"theme": "dark"}
    await host.kv_put("settings", settings)  # a plain dict of JSON values is accepted
    await host.kv_put("contacts", contacts)
    await host.kv_delete("settings")
    try:
        await host.call("GET", "/tenant")
    except HostApiError as error:
        assert_type(error.code, str)
        assert_type(error.status, int)
        assert_type(error.fix, str | None)
    return JSONResponse({"n": len(contacts)})
"""

MISUSE = """
from starlette.requests import Request

from powerx_plugin import host_for


async def home(request: Request) -> str:
    contacts = await host_for(request).list_contacts()
    await host_for(request).kv_put("when", object())
    return contacts[0]["nmae"]
"""


def mypy(folder: Path, source: str) -> subprocess.CompletedProcess[str]:
    (folder / "app.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "app.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_package_says_it_is_typed() -> None:
    assert (Path(powerx_plugin.__file__).parent / "py.typed").is_file()


def test_mypy_strict_sees_what_each_host_call_answers(tmp_path: Path) -> None:
    result = mypy(tmp_path, TYPED_USE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 source file" in result.stdout


def test_mypy_strict_flags_a_misspelt_field_and_a_value_that_is_not_json(tmp_path: Path) -> None:
    result = mypy(tmp_path, MISUSE)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'app.py:10: error: TypedDict "Contact" has no key "nmae"' in result.stdout
    assert 'app.py:9: error: Argument 2 to "kv_put" of "HostClient" has incompatible type' in (
        result.stdout
    )
