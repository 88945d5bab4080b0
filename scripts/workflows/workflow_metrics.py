"""Print this project's hot-reload summary: reloads, success rate, p50/p95, failures by
reason, version mismatches (from .powerx/telemetry.db; the simulator need not be running).

Usage: python scripts/workflows/workflow_metrics.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

from powerx.client.telemetry import project_summary
from powerx.errors import PowerXError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    try:
        data = project_summary()
    except PowerXError as error:
        print(f"error [{error.code}] {error.message}\n  fix: {error.fix}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(data, indent=2))
        return 0

    def ms(value: object) -> str:
        return f"{value:.0f} ms" if isinstance(value, int | float) else "-"

    print("| reloads | ok | failed | blocked | success | p50 | p95 | mismatches |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {data['reloads']} | {data['ok']} | {data['failed']} | {data['blocked']} | "
        f"{data['success_rate']:.1%} | {ms(data['p50_ms'])} | {ms(data['p95_ms'])} | "
        f"{data['mismatches']} |"
    )
    if data["failures_by_reason"]:
        print("\nfailures by reason:")
        for reason, count in sorted(data["failures_by_reason"].items(), key=lambda kv: -kv[1]):
            print(f"  {reason}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
