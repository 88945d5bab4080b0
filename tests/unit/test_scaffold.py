"""How a Node scaffold names the ``@powerx/plugin`` package."""

from __future__ import annotations

import json
from pathlib import Path

from powerx.scaffold import NODE_SDK_DIR, NODE_SDK_VERSION, node_sdk_spec


def test_from_the_source_tree_the_scaffold_uses_the_devkits_own_copy() -> None:
    assert node_sdk_spec() == f"file:{NODE_SDK_DIR}"


def test_without_the_source_tree_it_asks_npm_for_the_version_the_devkit_carries(
    tmp_path: Path,
) -> None:
    published = json.loads((NODE_SDK_DIR / "package.json").read_text())["version"]
    assert published == NODE_SDK_VERSION
    assert node_sdk_spec(tmp_path / "not-there") == f"^{published}"
