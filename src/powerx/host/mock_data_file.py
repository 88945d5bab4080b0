"""A tenant's mock data file: how it is named, written and read back.

``.powerx/mock-data/<tenant>.yaml`` (or ``.json``) holds what the host API and the gRPC
IAM services answer for that tenant: ``tenant`` (name, plan), ``contacts``, ``messages``,
``members`` and ``teams``. Reading one checks every value a plugin could trip over (a
contact without an id, a member status that is not 1-3, two teams with one id); what is
wrong is named by file and line, with a fix.

Only tenant names that are safe file names (letters, digits, ``.``, ``_``, ``-``) get a
file; any other name a request carries keeps its seeded data in memory only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, Problem

__all__ = ["SUFFIXES", "file_name", "parse", "render", "tenant_of"]

SUFFIXES = (".yaml", ".yml", ".json")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HEADER = """\
# Mock data of tenant {tenant!r}: what the host API (/host/api: contacts, messages,
# tenant) and the gRPC IAM services (members, teams) answer for it. Edit and save: the
# simulator applies it at once, no restart. An edit it cannot use is refused with file
# and line (`powerx data list`, the dashboard), and the last good data stays in use.
# `powerx data reset {tenant}` writes the seed back. What plugins write (sent messages,
# the kv store) lives in memory for the run.
#
# members[].status: 1 active, 2 inactive, 3 suspended. teams[].kind: 1 project,
# 2 functional. A team's member_count, when left out, counts the members naming it.
"""


def file_name(tenant: str) -> str | None:
    """``<tenant>.yaml``, or None when the name is no safe file name."""
    if not _SAFE_NAME.match(tenant) or tenant.endswith(SUFFIXES) or ".." in tenant:
        return None
    return f"{tenant}.yaml"


def tenant_of(path: Path) -> str | None:
    """The tenant a mock data file is for (None: not such a file)."""
    if path.suffix not in SUFFIXES or path.name.startswith("."):
        return None
    return path.stem if file_name(path.stem) is not None else None


def render(tenant: str, data: dict[str, Any]) -> str:
    """The file's text for ``data``: YAML, with a header saying how it is used."""
    shown = {
        **data,
        # Counted from the members when left out: written, it would go stale on an edit.
        "teams": [{k: v for k, v in t.items() if k != "member_count"} for t in data["teams"]],
    }
    body = yaml.safe_dump(shown, sort_keys=False, allow_unicode=True, width=100)
    return _HEADER.format(tenant=tenant) + body


# -- reading ---------------------------------------------------------------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _TenantInfo(_Open):
    name: str = Field(min_length=1)
    plan: str = "developer"


class _Contact(_Open):
    id: str = Field(min_length=1)
    name: str
    email: str = ""


class _Message(_Open):
    id: str = Field(min_length=1)
    to: str
    text: str


class _Member(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=1)
    user_id: int = Field(ge=0)
    username: str = Field(min_length=1)
    display_name: str = ""
    avatar_url: str = ""
    status: int = Field(default=1, ge=1, le=3)
    email: str = ""
    phone: str = ""
    department_id: int = Field(default=0, ge=0)
    team_ids: list[int] = Field(default_factory=list)
    contact_id: str = ""
    created_at: int = Field(default=0, ge=0)
    updated_at: int = Field(default=0, ge=0)


class _Team(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=1)
    name: str = Field(min_length=1)
    kind: int = Field(default=1, ge=1, le=2)
    description: str = ""
    sort: int = Field(default=0, ge=0)
    owner_member_id: int = Field(default=0, ge=0)
    member_count: int | None = Field(default=None, ge=0)
    labels: dict[str, str] = Field(default_factory=dict)
    created_at: int = Field(default=0, ge=0)
    updated_at: int = Field(default=0, ge=0)


class _TenantFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: _TenantInfo
    contacts: list[_Contact] = Field(default_factory=list)
    messages: list[_Message] = Field(default_factory=list)
    members: list[_Member] = Field(default_factory=list)
    teams: list[_Team] = Field(default_factory=list)


_UNTIL = (
    "save again; until then the last good data stays in use (`powerx data reset {tenant}` "
    "writes the seed back)."
)


def _fix_for(kind: str, where: Sequence[str | int], model: type[BaseModel] | None) -> str:
    """What to do about one problem, by pydantic's error type."""
    name = str(where[-1]) if where else ""
    if kind == "missing":
        return f"add `{name}` there"
    if kind == "extra_forbidden":
        known = ", ".join(model.model_fields) if model is not None else ""
        return f"remove `{name}` or fix its spelling (known keys: {known})"
    if kind == "duplicate":
        return f"change {name} to one no other entry has"
    return "correct the value at that line"


def _model_at(where: Sequence[str | int]) -> type[BaseModel] | None:
    """The model a path into the file ends in (for the keys it knows)."""
    sections: dict[str, type[BaseModel]] = {
        "tenant": _TenantInfo,
        "contacts": _Contact,
        "messages": _Message,
        "members": _Member,
        "teams": _Team,
    }
    if len(where) <= 1:
        return _TenantFile
    return sections.get(str(where[0]))


def _line_of(root: yaml.Node | None, where: Sequence[str | int]) -> int:
    """The line of the node at path ``where`` (as deep as the file goes), 1-based."""
    if root is None:
        return 1
    node, line = root, root.start_mark.line + 1
    for part in where:
        found: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    found, line = value, key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            found = node.value[part]
            line = found.start_mark.line + 1
        if found is None:
            break
        node = found
    return line


def _path_text(where: Sequence[str | int]) -> str:
    text = ""
    for part in where:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the file"


def _syntax_error(path: Path, tenant: str, line: int, problem: str) -> PowerXError:
    return PowerXError(
        ErrorCode.MOCK_DATA_INVALID,
        f"{path}:{line}: {problem}",
        "fix the syntax at that line (indentation, a missing colon, quote or bracket), then "
        + _UNTIL.format(tenant=tenant),
        problems=[Problem(f"{path}:{line}", problem)],
        details={"tenant": tenant, "file": str(path), "line": line},
    )


def _load(path: Path, tenant: str, text: str) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree (for line numbers)."""
    if path.suffix == ".json":
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            line = getattr(exc, "lineno", 1)
            message = getattr(exc, "msg", str(exc))
            raise _syntax_error(path, tenant, line, f"not valid JSON: {message}") from None
        try:
            return loaded, yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            return loaded, None  # JSON that YAML cannot read: lines from the top only
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or "the parser gave up"
        # Where the parser gave up can be a line after the slip (an unclosed bracket): say
        # where what it was reading began.
        context, begun = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and begun is not None and begun.line + 1 != line:
            reason += f" ({context} that begins on line {begun.line + 1})"
        raise _syntax_error(path, tenant, line, f"not valid YAML: {reason}") from None
    return loaded, root


def _duplicates(data: _TenantFile) -> list[tuple[tuple[str | int, ...], str, str]]:
    """Ids that must be unique but are not (a get by id would find the first only)."""
    found: list[tuple[tuple[str | int, ...], str, str]] = []
    for section, key in (
        ("contacts", "id"),
        ("messages", "id"),
        ("members", "id"),
        ("members", "username"),
        ("teams", "id"),
    ):
        seen: set[object] = set()
        for index, item in enumerate(getattr(data, section)):
            value = getattr(item, key)
            if value in seen:
                found.append(((section, index, key), f"{key} {value!r} is used twice", "duplicate"))
            seen.add(value)
    return found


def parse(path: Path, tenant: str, text: str) -> dict[str, Any]:
    """The tenant's data in ``text`` (the file at ``path``); PowerXError
    ``mock_data_invalid`` naming file and line when it cannot be used."""
    loaded, root = _load(path, tenant, text)
    if not isinstance(loaded, dict):
        raise _syntax_error(
            path, tenant, 1, "the file must be a mapping with tenant, contacts, members, ..."
        )
    problems: list[tuple[tuple[str | int, ...], str, str]] = []
    try:
        checked = _TenantFile.model_validate(loaded)
    except ValidationError as exc:
        problems = [(tuple(e["loc"]), e["msg"], e["type"]) for e in exc.errors()]
    else:
        problems = _duplicates(checked)
    if problems:
        listed = [
            Problem(
                f"{path}:{_line_of(root, where)}",
                f"{_path_text(where)}: {message}",
                _fix_for(kind, where, _model_at(where)),
            )
            for where, message, kind in problems
        ]
        first = listed[0]
        more = f" (and {len(listed) - 1} more)" if len(listed) > 1 else ""
        raise PowerXError(
            ErrorCode.MOCK_DATA_INVALID,
            f"{first.where}: {first.message}{more}",
            f"{first.fix}, then {_UNTIL.format(tenant=tenant)}",
            problems=listed,
            details={
                "tenant": tenant,
                "file": str(path),
                "line": int(first.where.rpartition(":")[2]),
            },
        )
    data: dict[str, Any] = checked.model_dump(mode="json")
    return data
