"""``SubprocessDocker`` against a stand-in ``docker`` executable, and the git commit tag."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import ecr
from deploy.errors import ImageError

# A stand-in for the docker CLI: records argv and stdin, answers `image inspect`.
FAKE_DOCKER = """\
import json, os, sys
record = {"argv": sys.argv[1:], "stdin": "" if sys.stdin.isatty() else sys.stdin.read()}
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
if sys.argv[1:3] == ["image", "inspect"]:
    print(os.environ.get("FAKE_DOCKER_ARCH", "amd64"))
if sys.argv[1] == "push" and "fail" in sys.argv[2]:
    print("denied: requested access to the resource is denied", file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    script = tmp_path / "docker"
    script.write_text(f"#!{sys.executable}\n{FAKE_DOCKER}")
    script.chmod(0o755)
    log = tmp_path / "docker.log"
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    return str(script), log


def _records(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_subprocess_docker_builds_inspects_logs_in_via_stdin_and_pushes(
    fake_docker: tuple[str, Path],
) -> None:
    executable, log = fake_docker
    docker = ecr.SubprocessDocker(executable)

    docker.build(
        context=Path("."), dockerfile=Path("docker/Dockerfile"), target="serve",
        tags=["repo:1", "repo:2"], platform="linux/amd64", build_args={"TORCH_VERSION": "2.13.0"},
    )  # fmt: skip
    arch = docker.architecture("repo:1")
    docker.login("123.dkr.ecr.us-east-1.amazonaws.com", "AWS", "s3cret-token")
    docker.push("repo:1")

    assert arch == "amd64"
    build, inspect, login, push = _records(log)
    # No attestations and Docker media types: SageMaker refuses OCI indexes and manifests.
    assert build["argv"] == [
        "build", "--file", "docker/Dockerfile", "--target", "serve", "--platform", "linux/amd64",
        "--provenance=false", "--sbom=false", "--output", "type=docker,oci-mediatypes=false",
        "--build-arg", "TORCH_VERSION=2.13.0", "--tag", "repo:1", "--tag", "repo:2", ".",
    ]  # fmt: skip
    assert inspect["argv"] == ["image", "inspect", "--format", "{{.Architecture}}", "repo:1"]
    # The token goes through stdin, never on the command line.
    assert login["argv"] == [
        "login", "--username", "AWS", "--password-stdin", "123.dkr.ecr.us-east-1.amazonaws.com",
    ]  # fmt: skip
    assert login["stdin"] == "s3cret-token"
    assert push["argv"] == ["push", "repo:1"]


def test_subprocess_docker_failure_is_an_image_error(fake_docker: tuple[str, Path]) -> None:
    with pytest.raises(ImageError, match="docker push failed"):
        ecr.SubprocessDocker(fake_docker[0]).push("repo:fail")


def test_missing_docker_cli_is_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not installed"):
        ecr.SubprocessDocker(str(tmp_path / "no-docker")).push("repo:1")


def test_git_commit_tags_dirty_trees(tmp_path: Path) -> None:
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "file.txt").write_text("one")
    subprocess.run([*git, "add", "file.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "--short=12", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()

    assert ecr.git_commit(tmp_path) == head
    (tmp_path / "file.txt").write_text("two")
    assert ecr.git_commit(tmp_path) == f"{head}-dirty"


def test_no_git_commit_asks_for_an_explicit_tag(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="--image-tag"):
        ecr.git_commit(tmp_path)
