"""Reading docker/Dockerfile and laying out what an image would hold, without a Docker engine.

The container tests run the exact script the image runs (its ENTRYPOINT), with the exact
environment its ENV lines set, in a directory tree that holds exactly what its COPY lines
copy. Two image paths are mapped to local ones, and nothing else is changed:

- ``/opt/program`` (WORKDIR and PYTHONPATH) -> a temporary directory of symlinks to the
  folders the target COPYs;
- ``/opt/venv`` (the image's virtual environment, first on PATH) -> a local virtual
  environment: for the serving targets one that holds only the serving dependency closure.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import venv
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
REQUIREMENTS_SCRIPT = REPO_ROOT / "docker" / "requirements.py"
IMAGE_VENV = "/opt/venv"
IMAGE_PROGRAM = "/opt/program"
_KEPT_FROM_HOST = frozenset({"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ"})

# The hyperparameters of a training job of seconds (two steps of a tiny model, 64 rows).
TINY_JOB = {
    "max_steps": "2",
    "max_train_rows": "64",
    "max_eval_rows": "64",
    "batch_size": "16",
    "max_length": "32",
    "run_baseline": "false",
    "eda": "false",
    "misclassified_examples": "0",
}

# Packages that only training (or the AWS tooling) needs: none may reach the serving image.
TRAINING_ONLY = (
    "scikit-learn",
    "matplotlib",
    "pyarrow",
    "sagemaker",
    "boto3",
    "locust",
    "onnx",
    "onnxscript",
)


@dataclass
class Stage:
    """One FROM ... AS name block of the Dockerfile."""

    name: str
    base: str
    env: list[tuple[str, str]] = field(default_factory=list)
    copies: list[tuple[str, str]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    healthcheck: str | None = None
    user: str | None = None
    workdir: str | None = None


def logical_lines(text: str) -> list[str]:
    """Dockerfile instructions, with continuation lines joined and comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def _pairs(arguments: str) -> list[tuple[str, str]]:
    """The KEY=VALUE pairs of an ENV or LABEL instruction (quotes removed)."""
    pairs = []
    for token in shlex.split(arguments):
        key, sep, value = token.partition("=")
        if not sep:
            raise ValueError(f"only the KEY=VALUE form is supported: {arguments!r}")
        pairs.append((key, value))
    return pairs


def parse_dockerfile(path: Path = DOCKERFILE) -> dict[str, Stage]:
    """The named stages of a Dockerfile, in order."""
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for line in logical_lines(path.read_text(encoding="utf-8")):
        instruction, _, arguments = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", arguments.strip(), flags=re.IGNORECASE)
            if not match:
                raise ValueError(f"every stage must be named: {line!r}")
            stage = Stage(name=match.group(2), base=match.group(1))
            stages[stage.name] = stage
            continue
        if stage is None:
            continue  # global ARGs
        if instruction == "ENV":
            stage.env.extend(_pairs(arguments))
        elif instruction == "LABEL":
            stage.labels.update(_pairs(arguments))
        elif instruction == "COPY":
            words = [word for word in shlex.split(arguments) if not word.startswith("--chmod")]
            if any(word.startswith("--from") for word in words):
                continue
            *sources, dest = words
            stage.copies.extend((source, dest) for source in sources)
        elif instruction == "ENTRYPOINT":
            stage.entrypoint = json.loads(arguments)
        elif instruction == "CMD":
            stage.cmd = json.loads(arguments)
        elif instruction == "HEALTHCHECK":
            stage.healthcheck = arguments
        elif instruction == "USER":
            stage.user = arguments.strip()
        elif instruction == "WORKDIR":
            stage.workdir = arguments.strip()
    return stages


def stage_chain(stages: dict[str, Stage], target: str) -> list[Stage]:
    """The target and the stages it is built FROM, base first."""
    chain = [stages[target]]
    while chain[0].base in stages:
        chain.insert(0, stages[chain[0].base])
    return chain


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)


@dataclass
class Image:
    """What one Dockerfile target holds, as seen from its ENTRYPOINT."""

    target: str
    env: list[tuple[str, str]]
    copies: list[tuple[str, str]]
    labels: dict[str, str]
    entrypoint: list[str]
    cmd: list[str]
    healthcheck: str | None
    user: str | None
    workdir: str | None

    @classmethod
    def load(cls, target: str, path: Path = DOCKERFILE) -> Image:
        chain = stage_chain(parse_dockerfile(path), target)
        labels: dict[str, str] = {}
        entrypoint: list[str] = []
        cmd: list[str] = []
        user = workdir = None
        for stage in chain:  # a later stage overrides what it inherits, as in Docker
            labels.update(stage.labels)
            entrypoint = stage.entrypoint if stage.entrypoint is not None else entrypoint
            cmd = stage.cmd if stage.cmd is not None else cmd
            user = stage.user or user
            workdir = stage.workdir or workdir
        return cls(
            target=target,
            env=[pair for stage in chain for pair in stage.env],
            copies=[pair for stage in chain for pair in stage.copies],
            labels=labels,
            entrypoint=entrypoint,
            cmd=cmd,
            healthcheck=chain[-1].healthcheck,
            user=user,
            workdir=workdir,
        )

    def source_of(self, image_path: str) -> Path:
        """The repository file that a COPY puts at ``image_path``."""
        for source, dest in self.copies:
            if dest == image_path:
                return REPO_ROOT / source
        raise LookupError(f"nothing is copied to {image_path} in target {self.target}")

    def environment(self, venv_dir: Path, program_dir: Path) -> dict[str, str]:
        """The process environment the image's ENV lines give, with the two paths mapped."""
        # A container starts from an almost empty environment: the caller's HF_*, SERVE_*,
        # PYTHONPATH... must not stand in for what the image does not set. OPENBLAS_* stay:
        # this machine needs them for numpy (see the environment notes of the project).
        env = {
            key: value
            for key, value in os.environ.items()
            if key in _KEPT_FROM_HOST or key.startswith("OPENBLAS_")
        }
        for key, value in self.env:
            expanded = _expand(value, env)
            expanded = expanded.replace(IMAGE_VENV, str(venv_dir))
            env[key] = expanded.replace(IMAGE_PROGRAM, str(program_dir))
        return env

    def lay_out_program(self, program_dir: Path) -> Path:
        """Create the image's /opt/program: one symlink per folder the target copies there."""
        program_dir.mkdir(parents=True, exist_ok=True)
        for source, dest in self.copies:
            if dest.startswith(IMAGE_PROGRAM + "/"):
                link = program_dir / dest.removeprefix(IMAGE_PROGRAM + "/")
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(REPO_ROOT / source, target_is_directory=True)
        return program_dir

    def command(self, *arguments: str) -> list[str]:
        """The argv `docker run IMAGE ARGUMENTS...` starts, with the script from the repo.

        As with Docker, arguments replace the image's CMD; none means the CMD.
        """
        script = self.source_of(self.entrypoint[0])  # run through its own shebang
        return [str(script), *self.entrypoint[1:], *(arguments or self.cmd)]


def image_requirements(*extras: str) -> list[str]:
    """The requirement lines of these extras (torch apart): the inputs of the lock files."""
    output = subprocess.run(
        [
            sys.executable,
            str(REQUIREMENTS_SCRIPT),
            "extras",
            str(REPO_ROOT / "pyproject.toml"),
            *extras,
            "--exclude",
            "torch",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return output.splitlines()


def dependency_closure(requirements: list[str]) -> dict[str, metadata.Distribution]:
    """Every installed distribution the requirements pull in, by canonical name.

    The resolution pip does for an install, answered from this environment's metadata (the
    development install of all extras, so every candidate is there), markers and extras
    included.
    """
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    # (requirement, extras requested of the distribution that declares it)
    pending = [(Requirement(line), frozenset({""})) for line in requirements]
    while pending:
        requirement, requested = pending.pop()
        marker = requirement.marker
        if marker is not None and not any(marker.evaluate({"extra": e}) for e in requested):
            continue
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        distribution = found.get(name) or metadata.distribution(name)
        found[name] = distribution
        extras = frozenset(requirement.extras) | {""}
        pending.extend((Requirement(line), extras) for line in distribution.requires or [])
    return found


def build_closure_venv(venv_dir: Path, distributions: dict[str, metadata.Distribution]) -> Path:
    """A virtual environment whose site-packages holds only ``distributions`` (as symlinks)."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(venv_dir)
    site_packages = next(venv_dir.glob("lib/python*/site-packages"))
    owners: dict[str, list[Path]] = {}
    for name, distribution in distributions.items():
        if distribution.files is None:
            raise LookupError(f"{name} has no RECORD: cannot tell which files are its own")
        root = Path(str(distribution.locate_file("")))
        for top in {f.parts[0] for f in distribution.files if f.parts}:
            if top not in ("..", "__pycache__") and root / top not in owners.get(top, []):
                owners.setdefault(top, []).append(root / top)
    for top, sources in owners.items():
        if len(sources) == 1:
            (site_packages / top).symlink_to(sources[0])
            continue
        # A namespace folder that several distributions share (e.g. nvidia/): merge them.
        (site_packages / top).mkdir()
        for source in sources:
            for child in source.iterdir():
                if not (site_packages / top / child.name).exists():
                    (site_packages / top / child.name).symlink_to(child)
    return venv_dir
