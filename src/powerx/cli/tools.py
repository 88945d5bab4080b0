"""`powerx tools`: list a plugin's tools and call one, schema-checked both ways."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.markup import escape
from rich.table import Table

from powerx.cli.render import console, err_console
from powerx.client import sync as client
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, Problem

app = typer.Typer(
    help="The tools plugins declare in plugin.yaml: list them, call one as an identity.",
    no_args_is_help=True,
)


@app.command("list")
def list_tools(
    plugin: Annotated[
        str | None, typer.Argument(help="Plugin id; all mounted plugins when left out.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per tool, one per line (for jq).")
    ] = False,
) -> None:
    """List the tools of the running simulator's plugins: how each is called, the
    permission it needs (its rbac_resource and the method's action, as PowerX works it
    out) and the identities in host_simulator.yaml that hold it.

    Examples:

      powerx tools list

      powerx tools list com.powerx.plugins.note --json | jq .input_schema
    """
    params = f"?plugin={quote(plugin, safe='')}" if plugin else ""
    data = client.request("GET", f"/internal/debug/tools{params}")
    tools = [tool for entry in data["plugins"] for tool in entry["tools"]]
    if as_json:
        for tool in tools:
            print(json.dumps(tool), flush=True)
        return
    if not tools:
        where = plugin or "the mounted plugins"
        err_console.print(f"no tools: {escape(where)} declare none (tools: in plugin.yaml)")
        return
    table = Table(show_edge=False, header_style="bold")
    table.add_column("plugin", no_wrap=True)
    table.add_column("tool", no_wrap=True)
    for column in ("call", "needs", "identities", "description"):
        table.add_column(column, overflow="fold")
    for tool in tools:
        table.add_row(
            escape(tool["plugin"]),
            escape(tool["id"]),
            escape(f"{tool['method']} {tool['endpoint']}"),
            escape(tool["permission"] or "-"),
            escape(", ".join(tool["identities"]) or "none"),
            escape(tool["description"] or tool["name"]),
        )
    console.print(table)


def _parse_input(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PowerXError(
            ErrorCode.TOOL_INPUT_NOT_JSON,
            f"--input is not JSON: {exc}.",
            'pass a JSON document, e.g. --input \'{"title": "hello"}\' (quote it for the shell).',
        ) from None


@app.command()
def call(
    plugin: Annotated[str, typer.Argument(help="Plugin id, e.g. com.powerx.plugins.note.")],
    tool: Annotated[str, typer.Argument(help="Tool id, e.g. note.note.create.")],
    input_json: Annotated[
        str, typer.Option("--input", "-i", help="The tool's input as JSON.")
    ] = "{}",
    identity: Annotated[
        str | None,
        typer.Option(
            "--as", help="Identity from host_simulator.yaml to call as (default: the run's)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole result as one JSON object.")
    ] = False,
) -> None:
    """Call a tool through the running simulator: the input is checked against the tool's
    input_schema before anything is sent, the request goes to the plugin as the identity
    (refused with rbac_denied when its perms lack the tool's permission), and the answer is
    checked against output_schema. Exits 1 on any violation or an error answer.

    Examples:

      powerx tools call com.powerx.plugins.note note.note.create --input '{"title": "hi"}'

      powerx tools call com.powerx.plugins.note note.note.query --as viewer --json
    """
    given = _parse_input(input_json)
    body: dict[str, Any] = {"plugin": plugin, "tool": tool, "input": given}
    if identity:
        body["identity"] = identity
    result = client.request("POST", "/internal/debug/tools/call", json_body=body, timeout=60)
    if as_json:
        print(json.dumps(result), flush=True)
    else:
        _render_result(result)
    _fail_unless_ok(result)


def _render_result(result: dict[str, Any]) -> None:
    status = result["status"]
    mark = "[green]✓[/]" if result["ok"] else "[red]✗[/]"
    console.print(
        f"{mark} {escape(result['tool'])} as {escape(result['identity'])}: "
        f"{result['method']} {escape(result['path'])} -> {status} "
        f"[dim]({result['duration_ms']:.0f} ms)[/]"
    )
    output = result["output"]
    text = output if isinstance(output, str) else json.dumps(output, indent=2)
    if text:
        console.print(escape(text), soft_wrap=True)


def _fail_unless_ok(result: dict[str, Any]) -> None:
    if result["status"] >= 400:
        raise PowerXError(
            ErrorCode.TOOL_FAILED,
            f"Tool '{result['tool']}' answered {result['status']}.",
            f"see the answer above and the plugin's log: `powerx logs {result['plugin']}`.",
        )
    violations = [Problem(v["where"], v["message"]) for v in result["violations"]]
    if violations:
        raise PowerXError(
            ErrorCode.TOOL_OUTPUT_INVALID,
            f"The answer of tool '{result['tool']}' breaks its output_schema in "
            f"{len(violations)} place(s).",
            "fix the plugin's answer, or the tool's output_schema in plugin.yaml, at each "
            "place listed below.",
            problems=violations,
        )
