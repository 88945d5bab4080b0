"""What ``create_app`` puts on ``app.state``, typed for the endpoints that read it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

if TYPE_CHECKING:
    from powerx.host.debug_connection import HeldConnection
    from powerx.host.dev_sessions import DevSessions
    from powerx.host.plugin_proxy import PluginProxy
    from powerx.host.routes.observe import CachedVerification
    from powerx.host.simulator import Simulator

__all__ = ["audit_verification", "dev_sessions", "held_connections", "plugin_proxy", "simulator"]


def simulator(request: Request) -> Simulator:
    found: Simulator = request.app.state.simulator
    return found


def dev_sessions(request: Request) -> DevSessions:
    found: DevSessions = request.app.state.dev_sessions
    return found


def plugin_proxy(request: Request) -> PluginProxy:
    found: PluginProxy = request.app.state.plugin_proxy
    return found


def held_connections(request: Request) -> dict[str, HeldConnection]:
    """The console connections open now, by id (``.../detach?connection=ID`` ends one)."""
    found: dict[str, HeldConnection] = request.app.state.held_connections
    return found


def audit_verification(request: Request) -> CachedVerification:
    found: CachedVerification = request.app.state.audit_verification
    return found
