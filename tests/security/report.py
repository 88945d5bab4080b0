"""Run the attack plugins against a real simulator and print what got through.

    python -m tests.security.report [--verbose]      # or: make security

One row per area (egress through each runtime's guard, tampering with the guards, the
tenant binding, containment of each plugin, uploads, the HTTP surface): attempts and how
many got through. Exits 1 when anything got through. ``--verbose`` lists every attempt
with what it met.
"""

from __future__ import annotations

import argparse
import sys

from tests.security.attacks import Findings, run_attacks


def table(findings: Findings) -> str:
    rows = [(area, str(count), str(through)) for area, (count, through) in findings.areas().items()]
    total = (
        "total",
        str(len(findings.attempts)),
        str(sum(a.through for a in findings.attempts)),
    )
    header = ("area", "attempts", "got through")
    widths = [max(len(row[i]) for row in [header, *rows, total]) for i in range(3)]

    def line(row: tuple[str, str, str]) -> str:
        return f"| {row[0]:<{widths[0]}} | {row[1]:>{widths[1]}} | {row[2]:>{widths[2]}} |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *map(line, rows), rule, line(total)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true", help="list every attempt")
    args = parser.parse_args()
    findings = run_attacks()
    if args.verbose:
        for attempt in findings.attempts:
            verdict = "THROUGH" if attempt.through else "stopped"
            print(f"{verdict:8} {attempt.area} / {attempt.name}: {attempt.detail}")
        print()
    print(table(findings))
    through = [a for a in findings.attempts if a.through]
    for attempt in through:
        print(f"got through: {attempt.area} / {attempt.name}: {attempt.detail}", file=sys.stderr)
    return 1 if through else 0


if __name__ == "__main__":
    sys.exit(main())
