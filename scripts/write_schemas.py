"""Write the manifest's JSON Schema to schemas/ (``make schemas``; a test checks it is current)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from powerx.manifest import json_schema

TARGET = Path(__file__).resolve().parent.parent / "schemas" / "powerx.plugin.schema.json"


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {TARGET}\n")
