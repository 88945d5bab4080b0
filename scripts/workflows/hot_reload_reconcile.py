"""Compare reload telemetry with the audit log of this project's simulator; repair with --fix.

Usage: python scripts/workflows/hot_reload_reconcile.py [--fix] [--json]
Exit code 0 when both sides agree (after --fix: when every difference was repaired).
Run it from the project folder (or set POWERX_STATE_DIR); it goes through the running
simulator when there is one, else it opens .powerx/telemetry.db and .powerx/audit.db.
"""

from __future__ import annotations

import argparse
import json
import sys

from powerx.client.telemetry import reconcile_project
from powerx.errors import PowerXError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fix", action="store_true", help="repair what is missing")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    try:
        report = reconcile_project(args.fix)
    except PowerXError as error:
        print(f"error [{error.code}] {error.message}\n  fix: {error.fix}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"telemetry rows {report['telemetry_rows']}, audited reloads {report['audit_rows']}, "
            f"differences {len(report['differences'])}, repaired {report['repaired']}"
        )
        for difference in report["differences"]:
            print(f"  [{difference['kind']}] {difference['message']}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
