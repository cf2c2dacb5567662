"""The last line of `make test`: every check that was skipped, or that none was.

Usage: skipped_checks.py DIR   (DIR holds pytest's --skip-report file and the other checks' logs)
A skipped check is a line of the pytest skip report, or a "... SKIPPED: reason" line in a log.
"""

from __future__ import annotations

import sys
from pathlib import Path


def skipped(report_dir: Path) -> list[str]:
    """'check: reason' for every skip recorded under report_dir."""
    found = []
    for path in sorted(report_dir.glob("*")):
        for line in path.read_text(errors="replace").splitlines():
            if path.suffix == ".txt" and line.strip():
                found.append(line.strip())
            elif " SKIPPED: " in line:
                check, reason = line.split(" SKIPPED: ", 1)
                found.append(f"{check.strip()}: {reason.strip()}")
    return found


def main() -> int:
    found = skipped(Path(sys.argv[1]))
    if found:
        print(f"skipped checks ({len(found)}): " + " | ".join(found))
    else:
        print("skipped checks: none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
