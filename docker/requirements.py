"""Requirement lists for the image layers, read from pyproject.toml and constraints.txt.

The images install their dependencies before their code, so that a code change rebuilds one
small layer and never reinstalls torch. This script turns the project's extras into plain
requirement lines for ``pip install -r``, and keeps torch out of them: each image installs
torch on its own, from the CUDA or CPU wheel index named by a build argument.

    python requirements.py extras pyproject.toml serve --exclude torch
    python requirements.py constraints constraints.txt --exclude torch

Standard library only: it runs on the bare Python of a build stage.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """The PEP 503 form of a distribution name: ``Foo_Bar`` and ``foo-bar`` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str | None:
    """The normalized project name a requirement or constraint line is about, if any."""
    match = _NAME.match(line.split("#", 1)[0])
    return normalize(match.group(1)) if match else None


def extra_requirements(pyproject: Path, extras: Iterable[str]) -> list[str]:
    """The requirement strings of the given extras, in file order, without duplicates."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    lines = list(project.get("dependencies", []))
    for extra in extras:
        if extra not in optional:
            known = ", ".join(sorted(optional))
            raise SystemExit(f"unknown extra {extra!r} in {pyproject} (known: {known})")
        lines.extend(optional[extra])
    return list(dict.fromkeys(lines))


def constraint_lines(constraints: Path) -> list[str]:
    """The non-empty, non-comment lines of a pip constraints file."""
    lines = (line.strip() for line in constraints.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def without(lines: Iterable[str], excluded: Iterable[str]) -> list[str]:
    drop = {normalize(name) for name in excluded}
    return [line for line in lines if requirement_name(line) not in drop]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    extras = commands.add_parser("extras", help="requirement lines of some extras")
    extras.add_argument("pyproject", type=Path)
    extras.add_argument("extras", nargs="+")
    constraints = commands.add_parser("constraints", help="lines of a constraints file")
    constraints.add_argument("constraints", type=Path)
    for sub in (extras, constraints):
        sub.add_argument(
            "--exclude", action="append", default=[], help="project to leave out (repeatable)"
        )
    args = parser.parse_args(argv)

    if args.command == "extras":
        lines = extra_requirements(args.pyproject, args.extras)
    else:
        lines = constraint_lines(args.constraints)
    sys.stdout.write("".join(f"{line}\n" for line in without(lines, args.exclude)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
