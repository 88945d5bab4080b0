"""Which Go build a backend plugin gets, and how go build's errors read."""

from __future__ import annotations

from pathlib import Path

from powerx.bundling.go import DEBUG_GCFLAGS, GoBuild, compile_error, go_build_for
from powerx.manifest import parse_manifest

MANIFEST = """
id: com.example.go
name: Go
version: 1.0.0
backend:
  entry: backend/bin/plugin
"""


def go_plugin(root: Path, module_dir: str, extra: str = "") -> Path:
    (root / module_dir / "cmd" / "plugin").mkdir(parents=True)
    (root / module_dir / "go.mod").write_text("module example.com/p\n\ngo 1.19\n")
    (root / "plugin.yaml").write_text(MANIFEST + extra)
    return root


def build_of(root: Path) -> GoBuild | None:
    manifest = parse_manifest((root / "plugin.yaml").read_text(), str(root / "plugin.yaml"))
    return go_build_for(manifest, root)


def test_powerxpluginbase_layout_builds_in_the_backend_module(tmp_path: Path) -> None:
    build = build_of(go_plugin(tmp_path, "backend"))
    assert build is not None
    assert build.module_dir == "backend"
    assert build.argv("go", debug=False) == ["go", "build", "-o", "bin/plugin", "./cmd/plugin"]
    assert build.command == "cd backend && go build -o bin/plugin ./cmd/plugin"


def test_a_module_at_the_root_builds_the_backend_package_from_there(tmp_path: Path) -> None:
    (tmp_path / "backend" / "cmd" / "plugin").mkdir(parents=True)
    (tmp_path / "go.mod").write_text("module example.com/p\n")
    (tmp_path / "plugin.yaml").write_text(MANIFEST)
    build = build_of(tmp_path)
    assert build is not None and build.module_dir == ""
    # The default the issue names, for a go.mod at the root.
    assert build.command == "go build -o backend/bin/plugin ./backend/cmd/plugin"


def test_a_debug_build_turns_off_optimisation_and_inlining(tmp_path: Path) -> None:
    build = build_of(go_plugin(tmp_path, "backend"))
    assert build is not None
    assert build.argv("/usr/bin/go", debug=True)[:3] == ["/usr/bin/go", "build", DEBUG_GCFLAGS]
    assert DEBUG_GCFLAGS == "-gcflags=all=-N -l"


def test_a_go_build_command_is_run_as_a_go_build(tmp_path: Path) -> None:
    root = go_plugin(tmp_path, "", "build:\n  command: go build -o backend/bin/plugin ./x\n")
    build = build_of(root)
    assert build is not None and build.arguments == ("build", "-o", "backend/bin/plugin", "./x")


def test_plugins_that_are_not_go_get_no_go_build(tmp_path: Path) -> None:
    (tmp_path / "plugin.yaml").write_text(MANIFEST)
    assert build_of(tmp_path) is None  # no go.mod
    go_plugin(tmp_path / "other", "backend", "build:\n  command: make plugin\n")
    assert build_of(tmp_path / "other") is None  # its own build command


GO_OUTPUT = """# example.com/powerx/hello-go/cmd/plugin
cmd/plugin/main.go:40:2: undefined: greting
cmd/plugin/main.go:52:9: missing return
"""


def test_compile_errors_name_file_line_column_from_the_plugin_folder(tmp_path: Path) -> None:
    build = GoBuild(("build",), "backend", "go build")
    error = compile_error(build, GO_OUTPUT, tmp_path)
    assert error.code == "build_failed"
    assert error.message == (
        "Build error in backend/cmd/plugin/main.go:40:2: undefined: greting (and 1 more)"
    )
    assert [p.where for p in error.problems] == [
        "backend/cmd/plugin/main.go:40:2",
        "backend/cmd/plugin/main.go:52:9",
    ]
    assert error.details == {"file": "backend/cmd/plugin/main.go", "line": 40, "column": 2}


def test_a_failure_without_a_located_error_shows_what_go_said(tmp_path: Path) -> None:
    build = GoBuild(("build",), "", "go build ./x")
    error = compile_error(build, "no required module provides package ./x\n", tmp_path)
    assert error.code == "build_failed" and "no required module provides" in error.message
    assert "go build ./x" in (error.fix or "")
