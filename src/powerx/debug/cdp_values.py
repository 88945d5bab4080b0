"""Node values as the console shows them: a CDP ``RemoteObject`` to one line of text.

Primitives as JavaScript writes them (strings quoted); objects and arrays with their
first level opened (V8's ``preview``), as DevTools' console shows them before a click:
``{id: "c1", name: "Margaret Allen", tags: Array(2)}``, ``Array(7) [{…}, {…}, …]``.
A nested object stays closed (``{…}``); ``p obj.inner`` opens it.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["describe", "object_literal"]

Message = dict[str, Any]


def describe(value: Message) -> str:
    if "value" in value:
        return _primitive(value["value"])
    if value.get("type") == "undefined":
        return "undefined"
    preview = value.get("preview")
    if isinstance(preview, dict) and value.get("type") == "object":
        return _preview(preview, str(value.get("description") or ""))
    return str(value.get("description") or value.get("type"))


def _primitive(raw: object) -> str:
    if isinstance(raw, str):
        return json.dumps(raw)
    if isinstance(raw, bool):
        return str(raw).lower()
    if raw is None:
        return "null"
    return str(raw)


def _property(prop: Message) -> str:
    kind, text = prop.get("type"), str(prop.get("value", ""))
    if kind == "string":
        return json.dumps(text)
    if kind == "object" and prop.get("subtype") not in {"null", "date", "regexp"}:
        return text if text.startswith("Array(") else "{…}"
    return text


def _preview(preview: Message, description: str) -> str:
    properties = [p for p in preview.get("properties") or [] if isinstance(p, dict)]
    more = ", …" if preview.get("overflow") else ""
    if preview.get("subtype") == "array":
        items = ", ".join(_property(p) for p in properties)
        return f"{description} [{items}{more}]"
    if preview.get("subtype") in {"null", "date", "regexp", "error"}:
        return description or str(preview.get("description"))
    fields = ", ".join(f"{p.get('name')}: {_property(p)}" for p in properties)
    prefix = "" if description in {"", "Object"} else f"{description} "
    return f"{prefix}{{{fields}{more}}}"


def object_literal(expression: str) -> str:
    """``{a: 1}`` typed at a prompt means an object, not a block (as DevTools reads it)."""
    text = expression.strip()
    return f"({text})" if text.startswith("{") and text.endswith("}") else expression
