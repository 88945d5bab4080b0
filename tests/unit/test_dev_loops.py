"""What dev loops told the simulator, on its own: armed, pending, what ends a pending
reload, and the last type check."""

from __future__ import annotations

from typing import Any

from powerx.host.dev_loops import DevLoops


def recorder() -> tuple[DevLoops, list[tuple[str, dict[str, Any]]]]:
    published: list[tuple[str, dict[str, Any]]] = []
    return DevLoops(lambda kind, data: published.append((kind, data))), published


def test_a_plugin_no_loop_spoke_of_is_not_watched() -> None:
    loops, published = recorder()
    assert loops.status("p", uploading=False, held=0) == {
        "armed": False,
        "folders": [],
        "mode": "",
        "reload_pending": False,
        "changed": [],
        "held_requests": 0,
        "type_check": None,
    }
    assert published == []


def test_an_announced_reload_stays_pending_until_its_upload_is_handled() -> None:
    """Even past the gate's hold cap (``uploading`` false again): it is still being built."""
    loops, published = recorder()
    loops.watching("p", True, ["src"], "inotify")
    loops.announced("p", True, ["src/a.js"])
    loops.announced("p", True, ["src/a.js", "src/b.js"])  # a save during the build
    status = loops.status("p", uploading=False, held=0)
    assert status["reload_pending"] and status["changed"] == ["src/a.js", "src/b.js"]
    loops.settled("p")
    assert loops.status("p", uploading=False, held=0)["reload_pending"] is False
    assert [kind for kind, _ in published] == [
        "plugin.debug.watch",
        "plugin.debug.reload_pending",
        "plugin.debug.reload_pending",
    ]
    assert published[0][1] == {"plugin": "p", "armed": True, "folders": ["src"], "mode": "inotify"}


def test_a_failed_build_or_a_stopped_loop_ends_the_pending_reload() -> None:
    loops, published = recorder()
    loops.announced("p", True, ["app.py"])
    loops.announced("p", False, [])
    assert not loops.status("p", uploading=False, held=0)["reload_pending"]
    assert published[-1] == (
        "plugin.debug.reload_pending",
        {"plugin": "p", "pending": False, "changed": []},
    )
    loops.announced("p", True, ["app.py"])
    loops.watching("p", False, [], "")
    status = loops.status("p", uploading=False, held=0)
    assert (status["armed"], status["reload_pending"], status["changed"]) == (False, False, [])


def test_a_type_check_is_kept_until_the_next_and_a_stopped_loop_drops_it() -> None:
    loops, published = recorder()
    problem = {"file": "a.ts", "line": 3, "column": 1, "code": "TS2322", "message": "no"}
    loops.type_checked(
        {"plugin": "p", "tool": "tsc", "state": "errors", "problems": [problem] * 60}
    )
    kept = loops.status("p", uploading=False, held=0)["type_check"]
    assert (kept["state"], kept["errors"], len(kept["problems"])) == ("errors", 60, 50)
    assert published[-1] == ("plugin.debug.type_check", kept)
    loops.type_checked({"plugin": "p", "tool": "tsc", "state": "clean", "problems": []})
    assert loops.status("p", uploading=False, held=0)["type_check"]["state"] == "clean"
    loops.watching("p", False, [], "")
    assert loops.status("p", uploading=False, held=0)["type_check"] is None
