"""The shapes the host API answers with, as the simulator's host images emulate them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any, Protocol, TypeAlias, TypedDict

# Any JSON document: what the host stores under a kv key and what ``call`` answers.
JSONValue: TypeAlias = "str | int | float | bool | list[JSONValue] | dict[str, JSONValue] | None"
# What may be sent as JSON: read-only containers, so a ``dict[str, str]``, a ``Contact`` or a
# ``list[Contact]`` is accepted as it is (a mapping's values as ``object``: a TypedDict is
# only a ``Mapping[str, object]`` to a type checker).
JSONInput: TypeAlias = (
    "str | int | float | bool | Sequence[JSONInput] | Mapping[str, object] | None"
)


class Contact(TypedDict):
    """A contact of the tenant (``contacts:read``)."""

    id: str  # e.g. "c_001"
    name: str
    email: str
    tenant: str


class Message(TypedDict):
    """A message sent to a contact (``messages:read``, ``messages:write``)."""

    id: str  # e.g. "m_003"
    to: str  # a contact id
    text: str


class Tenant(TypedDict):
    """The tenant a call is made for (``tenant:read``; host API 3.0)."""

    id: str
    name: str
    plan: str


class RequestWithHeaders(Protocol):
    """What :func:`~powerx_plugin.host_for` reads of a request: its headers (a Starlette
    or FastAPI ``Request``, or anything else with a ``headers`` mapping)."""

    @property
    def headers(self) -> Mapping[str, str]: ...


# ASGI, as ``answer_denials`` wraps an app (the same shapes Starlette and uvicorn use).
ASGIMessage: TypeAlias = MutableMapping[str, Any]
Scope: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[ASGIMessage]]
Send: TypeAlias = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
