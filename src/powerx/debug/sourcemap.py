"""Source maps (v3), both ways: a TypeScript line to a place in the bundle, and back.

The Node inspector knows only the bundle esbuild wrote; breakpoints and stacks are in
the plugin's TypeScript. Decoding is small (base64 VLQ), and the Python source-map
packages on PyPI are unmaintained, so it is written here.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from pathlib import Path

_BASE64 = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}


def _vlq(segment: str) -> list[int]:
    values, shift, value = [], 0, 0
    for char in segment:
        digit = _BASE64[char]
        value += (digit & 31) << shift
        if digit & 32:
            shift += 5
            continue
        values.append(-(value >> 1) if value & 1 else value >> 1)
        shift, value = 0, 0
    return values


@dataclass
class SourceMap:
    """Lines and columns are 0-based here, as in the map and in CDP."""

    sources: list[str]  # absolute paths
    # per generated line: sorted (generated column, source index, source line, source column)
    lines: list[list[tuple[int, int, int, int]]] = field(default_factory=list)
    # (source index, source line) -> the first generated (line, column) for it
    first: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> SourceMap:
        data = json.loads(path.read_text(encoding="utf-8"))
        root = path.parent
        base = data.get("sourceRoot") or ""
        sources = [str((root / base / s).resolve()) for s in data.get("sources", [])]
        result = cls(sources)
        source = line = column = 0
        for generated_line, text in enumerate(str(data.get("mappings", "")).split(";")):
            segments: list[tuple[int, int, int, int]] = []
            generated_column = 0
            for raw in text.split(","):
                if not raw:
                    continue
                values = _vlq(raw)
                generated_column += values[0]
                if len(values) < 4:
                    continue
                source, line, column = source + values[1], line + values[2], column + values[3]
                segments.append((generated_column, source, line, column))
                key = (source, line)
                if (
                    key not in result.first
                    or (generated_line, generated_column) < result.first[key]
                ):
                    result.first[key] = (generated_line, generated_column)
            result.lines.append(sorted(segments))
        return result

    def generated(self, source_path: str, line: int) -> tuple[int, int] | None:
        """Where 0-based ``line`` of ``source_path`` starts in the bundle (None: no code)."""
        try:
            index = self.sources.index(source_path)
        except ValueError:
            return None
        return self.first.get((index, line))

    def original(self, line: int, column: int) -> tuple[str, int] | None:
        """The source path and 0-based line of a place in the bundle."""
        if not 0 <= line < len(self.lines) or not self.lines[line]:
            return None
        segments = self.lines[line]
        at = bisect.bisect_right(segments, (column, 1 << 30, 0, 0)) - 1
        _, source, source_line, _ = segments[max(at, 0)]
        return self.sources[source], source_line
