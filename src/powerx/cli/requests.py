"""`powerx requests`: the requests the running simulator sent to plugins (the request
inspector), live with --follow; `show ID` for one in full, `replay ID` to send it again."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import typer
from rich.markup import escape

from powerx.cli.logs import format_record
from powerx.cli.render import console
from powerx.client import sync as client
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

_ACTIONS = ("show", "replay")


def _status_style(status: object) -> str:
    if not isinstance(status, int):
        return "dim"
    return "green" if status < 400 else "yellow" if status < 500 else "red"


def format_request(item: dict[str, Any]) -> str:
    """One line: time, id, plugin#generation, method path, status, time taken, and who."""
    stamp = time.strftime("%H:%M:%S", time.localtime(float(item.get("ts", 0))))
    status = item.get("status")
    path = str(item.get("path", "")) + (f"?{item['query']}" if item.get("query") else "")
    line = (
        f"[dim]{stamp}[/] {escape(str(item.get('id')))} "
        f"{escape(str(item.get('plugin')))}[dim]#{item.get('generation') or '-'}[/] "
        f"{escape(str(item.get('method')))} {escape(path)} "
        f"[{_status_style(status)}]{status if status is not None else '…'}[/]"
    )
    if item.get("duration_ms") is not None:
        line += f" [dim]{item['duration_ms']:.1f} ms[/]"
    line += f" [dim]as {escape(str(item.get('identity')))}"
    if item.get("tenant"):
        line += f" @ {escape(str(item['tenant']))}"
    line += "[/]"
    if item.get("held"):
        line += f" [yellow]held {item['held_ms']:.0f} ms (reload)[/]"
    if item.get("error"):
        line += f" [red]({escape(str(item['error']))})[/]"
    if item.get("replay_of"):
        line += f" [dim]replay of {escape(str(item['replay_of']))}[/]"
    return line


def _show_detail(item: dict[str, Any]) -> None:
    console.print(format_request(item))
    for side in ("request", "response"):
        part = item[side]
        console.print(f"[bold]{side}[/] [dim]({part['body_size']} bytes of body)[/]")
        for name, value in part["headers"]:
            console.print(f"  [dim]{escape(name)}:[/] {escape(value)}")
        body = part["body"]
        if body["text"]:
            console.print(escape(body["text"]), soft_wrap=True)
            if body["truncated"]:
                console.print("  [dim]… (preview cut)[/]")
    if item["host_calls"]:
        console.print("[bold]host API calls[/]")
        for call in item["host_calls"]:
            console.print(
                f"  {escape(call['method'])} {escape(call['path'])} -> {call['status']} "
                f"[dim]{call['duration_ms']:.1f} ms {escape(call['api'])}[/]"
                + (f" [red]({escape(call['error'])})[/]" if call.get("error") else "")
            )
    console.print(f"[bold]log lines[/] [dim]({len(item['logs'])})[/]")
    for record in item["logs"]:
        console.print("  " + format_record(record))


def _replay(request_id: str, as_json: bool) -> None:
    answer = client.request(
        "POST", f"/internal/debug/requests/{quote(request_id, safe='')}/replay", timeout=120
    )
    if as_json:
        print(json.dumps(answer), flush=True)
        return
    same = "same status" if answer["same_status"] else f"was {answer['original_status']}"
    console.print(
        f"[{_status_style(answer['status'])}]{answer['status']}[/] "
        f"{escape(answer['method'])} {escape(answer['path'])} as {escape(answer['identity'])} "
        f"[dim]generation {answer['generation']} · {answer['duration_ms']:.0f} ms · {same} · "
        f"replay {escape(str(answer['replay_id']))} of {escape(answer['id'])}[/]"
    )
    if answer.get("body") is not None:
        print(answer["body"], flush=True)
    else:
        console.print(f"[dim]<{answer.get('body_bytes', 0)} bytes of binary data>[/]")


def requests(
    target: Annotated[
        str | None,
        typer.Argument(
            help="A plugin id to list its requests only; or `show` / `replay` with an ID.",
            metavar="PLUGIN|show|replay",
        ),
    ] = None,
    request_id: Annotated[
        str | None, typer.Argument(help="The request's id (with show or replay).", metavar="ID")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing requests as they are answered.")
    ] = False,
    tail: Annotated[
        int, typer.Option("--tail", "-n", help="Requests shown from the past.", min=0)
    ] = 50,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object per request and line, in full: masked headers, body "
            "previews, host API calls, log lines (for jq and scripts).",
        ),
    ] = False,
) -> None:
    """Show the requests the simulator sent to plugins: method, path, identity, status,
    time taken, generation, whether a reload held it; `show ID` adds the masked headers,
    body previews, host API calls and the plugin's log lines for it. The simulator keeps
    the last 500 (observability.request_buffer) in memory.

    Examples:

      powerx requests

      powerx requests com.example.hello-python --follow

      powerx requests --json | jq 'select(.status >= 500) | .logs[].message'

      powerx requests show 3fa9c1-12

      powerx requests replay 3fa9c1-12
    """
    if target in _ACTIONS:
        if not request_id:
            raise PowerXError(
                ErrorCode.REQUEST_ID_MISSING,
                f"`powerx requests {target}` needs the id of a request.",
                "list the ids with `powerx requests`, then e.g. "
                f"`powerx requests {target} 3fa9c1-12`.",
            )
        if target == "replay":
            _replay(request_id, as_json)
            return
        item = client.request("GET", f"/internal/debug/requests/{quote(request_id, safe='')}")
        if as_json:
            print(json.dumps(item), flush=True)
        else:
            _show_detail(item)
        return
    if request_id is not None:
        raise PowerXError(
            ErrorCode.UNEXPECTED_ARGUMENT,
            f"`powerx requests {target}` takes no second argument ({request_id!r}).",
            "pass a plugin id to list its requests, or `show ID` / `replay ID`.",
        )

    def show(item: dict[str, Any]) -> None:
        if as_json:
            print(json.dumps(item), flush=True)
        else:
            console.print(format_request(item))

    params = {"detail": "1" if as_json else "0"}
    if target:
        params["plugin"] = target
    if follow:
        for event in client.stream(
            "/internal/debug/requests/stream", {**params, "tail": str(tail)}
        ):
            if event.event == "request":
                show(json.loads(event.data))
        return
    if tail == 0:
        return
    found = client.request(
        "GET", f"/internal/debug/requests?{urlencode({**params, 'limit': tail})}"
    )
    for item in found["requests"]:
        show(item)
