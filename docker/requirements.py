"""Requirement lists and the hash-pinned lock files of the images, from pyproject.toml.

The images install their dependencies before their code, so that a code change rebuilds one
small layer and never reinstalls torch. Each image installs torch on its own, from the CUDA
or CPU wheel index named by a build argument, then everything else from its lock file
(docker/locks/IMAGE.txt) with ``pip install --require-hashes``: two builds a month apart get
the same packages, byte for byte.

    python docker/requirements.py extras pyproject.toml serve --exclude torch
    python docker/requirements.py constraints constraints.txt --exclude torch
    python docker/requirements.py lock           # `make locks`: rewrite the lock files
    python docker/requirements.py lock --upgrade # the same, to the newest allowed versions
    python docker/requirements.py check-locks    # are they made from the current inputs?

`lock` runs `uv pip compile --generate-hashes --universal` (uv from PyPI: `make locks`
installs it) against PyPI; it keeps the versions already locked unless the inputs or
``--upgrade`` ask otherwise. Each lock file starts with the SHA-256 of its inputs (the
extras' requirement lines, the constraints and the compile options), which `check-locks`
compares offline, in a fraction of a second: CI fails when pyproject.toml changed and the
locks were not made again.

Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCK_DIR = REPO_ROOT / "docker" / "locks"
# The lock file of each image, and the extras it installs (torch apart: see above).
LOCKS = {
    "train": ("train",),
    "serve": ("serve",),  # serve and serve-cpu
    # The API front (devtools.local_api: the Lambda's modules and boto3) and locust; not the
    # deploy CLI, so not the `aws` extra and its SageMaker SDK parts (mlflow among them).
    "tools": ("client", "loadtest"),
}
# The oldest Python the images run (the Debian bookworm stand-in base of `make images-test`);
# --universal adds markers for every newer one (the python:3.12 and Ubuntu 24.04 bases).
LOCK_OPTIONS = (
    "--generate-hashes",
    "--universal",
    "--python-version",
    "3.11",
    "--index-url",
    "https://pypi.org/simple",
)
_FINGERPRINT = re.compile(r"^# inputs-sha256: ([0-9a-f]{64})$", flags=re.MULTILINE)
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


def lock_inputs(image: str) -> tuple[list[str], list[str]]:
    """The requirement and constraint lines an image's lock file is made from."""
    extras = extra_requirements(REPO_ROOT / "pyproject.toml", LOCKS[image])
    requirements = without(extras, ["torch"])
    constraints = without(constraint_lines(REPO_ROOT / "constraints.txt"), ["torch"])
    return requirements, constraints


def fingerprint(image: str) -> str:
    requirements, constraints = lock_inputs(image)
    text = "\n".join([*requirements, "--", *constraints, "--", *LOCK_OPTIONS])
    return hashlib.sha256(text.encode()).hexdigest()


def lock_path(image: str) -> Path:
    return LOCK_DIR / f"{image}.txt"


def write_lock(image: str, uv: str, upgrade: bool) -> None:
    requirements, constraints = lock_inputs(image)
    path = lock_path(image)
    with tempfile.TemporaryDirectory() as folder:
        inputs = Path(folder) / f"{image}.in"
        inputs.write_text("".join(f"{line}\n" for line in requirements), encoding="utf-8")
        pins = Path(folder) / "constraints.txt"
        pins.write_text("".join(f"{line}\n" for line in constraints), encoding="utf-8")
        output = Path(folder) / f"{image}.txt"
        if path.exists():  # the versions already locked are kept unless they must change
            output.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        command = [
            uv, "pip", "compile", *LOCK_OPTIONS, "--quiet", "--no-progress",
            "--custom-compile-command", "make locks", "--constraint", str(pins),
            "--output-file", output.name, inputs.name,
        ]  # fmt: skip
        if upgrade:
            command.append("--upgrade")
        subprocess.run(command, check=True, timeout=600, cwd=folder)
        extras = ", ".join(LOCKS[image])
        header = (
            f"# The {image} image's dependencies (extras: {extras}; torch apart), hash-pinned.\n"
            "# Made by `make locks` (docker/requirements.py); do not edit by hand.\n"
            f"# inputs-sha256: {fingerprint(image)}\n"
        )
        body = _FINGERPRINT.sub("", output.read_text(encoding="utf-8"))
        body = "\n".join(line for line in body.splitlines() if not _is_own_header(line))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + body.lstrip("\n") + "\n", encoding="utf-8")
    sys.stderr.write(f"wrote {path.relative_to(REPO_ROOT)}\n")


def _is_own_header(line: str) -> bool:
    return line.startswith(("# The ", "# Made by `make locks`", "# inputs-sha256:"))


def stale_locks() -> list[str]:
    """The images whose lock file is missing or was made from other inputs."""
    stale = []
    for image in LOCKS:
        path = lock_path(image)
        found = _FINGERPRINT.search(path.read_text(encoding="utf-8")) if path.exists() else None
        if found is None or found.group(1) != fingerprint(image):
            stale.append(image)
    return stale


def find_uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(found).exists():
        raise SystemExit("uv is not installed: `make locks` installs it into .venv")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    extras = commands.add_parser("extras", help="requirement lines of some extras")
    extras.add_argument("pyproject", type=Path)
    extras.add_argument("extras", nargs="+")
    constraints = commands.add_parser("constraints", help="lines of a constraints file")
    constraints.add_argument("constraints", type=Path)
    lock = commands.add_parser("lock", help="rewrite docker/locks/*.txt (uv pip compile)")
    lock.add_argument("--upgrade", action="store_true", help="to the newest allowed versions")
    lock.add_argument("images", nargs="*", choices=[[], *LOCKS], help="default: all")
    commands.add_parser("check-locks", help="exit 1 if a lock file is older than its inputs")
    for sub in (extras, constraints):
        sub.add_argument(
            "--exclude", action="append", default=[], help="project to leave out (repeatable)"
        )
    args = parser.parse_args(argv)

    if args.command == "lock":
        uv = find_uv()
        for image in args.images or LOCKS:
            write_lock(image, uv, args.upgrade)
        return 0
    if args.command == "check-locks":
        stale = stale_locks()
        for image in stale:
            sys.stderr.write(
                f"{lock_path(image).relative_to(REPO_ROOT)} is not made from the current "
                "pyproject.toml/constraints.txt: run `make locks` and commit the result\n"
            )
        return 1 if stale else 0
    if args.command == "extras":
        lines = extra_requirements(args.pyproject, args.extras)
    else:
        lines = constraint_lines(args.constraints)
    sys.stdout.write("".join(f"{line}\n" for line in without(lines, args.exclude)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
