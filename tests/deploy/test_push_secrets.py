"""``python -m deploy push -v`` never prints a secret: a real process, real boto3 clients
against the moto server, a stand-in ``docker`` on PATH; its whole output is searched for the
ECR token, the registry password and the AWS credentials."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.aws import AwsClients
from devtools.paths import REPO_ROOT
from tests.deploy.support import common_flags

SECRET_KEY = "sEcReTkEy0123456789abcdefSECRETKEY012345"
SESSION_TOKEN = "SeSsIoNtOkEn0123456789SESSIONTOKEN0123456789"

# Records nothing, answers `image inspect`, reads the password from stdin on `login`, and
# "pushes" by uploading a Docker v2 manifest to the moto ECR, as a registry client would.
FAKE_DOCKER = """\
import json, os, sys
import boto3
args = sys.argv[1:]
if args[:2] == ["image", "inspect"]:
    print("amd64")
elif args[0] == "login":
    sys.stdin.read()
    print("Login Succeeded")
elif args[0] == "push":
    repository, _, tag = args[1].partition("/")[2].rpartition(":")
    config = {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
              "digest": "sha256:" + "0" * 64}
    media_type = "application/vnd.docker.distribution.manifest.v2+json"
    manifest = {"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": []}
    boto3.client("ecr", endpoint_url=os.environ["FAKE_ECR_URL"], region_name="us-east-1",
                 aws_access_key_id="x", aws_secret_access_key="x").put_image(
        repositoryName=repository, imageTag=tag, imageManifest=json.dumps(manifest),
        imageManifestMediaType=media_type)
"""


@pytest.fixture
def docker_on_path(tmp_path: Path) -> str:
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "docker"
    script.write_text(f"#!{sys.executable}\n{FAKE_DOCKER}")
    script.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def test_verbose_push_prints_no_token_password_or_credentials(
    aws: AwsClients, moto_url: str, docker_on_path: str, tmp_path: Path
) -> None:
    token = aws.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    password = base64.b64decode(token).decode().partition(":")[2]
    env = {
        "PATH": docker_on_path,
        "PYTHONPATH": str(REPO_ROOT),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "FAKE_ECR_URL": moto_url,
    }

    argv = ["push", "-v", *common_flags(moto_url), "--target", "train"]

    result = subprocess.run(
        [sys.executable, "-m", "deploy", *argv],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "pushed train" in result.stdout
    assert "DEBUG" in output or "running docker login" in output  # -v still says more
    for secret in (token, password, SECRET_KEY, SESSION_TOKEN):
        assert secret not in output
