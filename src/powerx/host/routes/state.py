"""What ``create_app`` puts on ``app.state``, typed for the endpoints that read it."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import Request

if TYPE_CHECKING:
    from powerx.host.debug_connection import HeldConnection
    from powerx.host.dev_sessions import DevSessions
    from powerx.host.plugin_proxy import PluginProxy
    from powerx.host.routes.observe import CachedVerification
    from powerx.host.simulator import Simulator

__all__ = [
    "AppControls",
    "audit_verification",
    "controls",
    "dev_sessions",
    "held_connections",
    "plugin_proxy",
    "simulator",
]


@dataclass
class AppControls:
    """What the endpoints share with the process that serves the app: the dashboard's key
    (that process prints the link) and the request to stop (``POST /internal/shutdown``
    sets it, a hotkey too; that process stops the server when it is set)."""

    dashboard_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    shutdown_requested: asyncio.Event = field(default_factory=asyncio.Event)


def simulator(request: Request) -> Simulator:
    found: Simulator = request.app.state.simulator
    return found


def controls(request: Request) -> AppControls:
    found: AppControls = request.app.state.controls
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
