"""``push``: ECR repositories created when missing, login from the token, architecture guard,
and the pushed manifest's media type as ECR (the moto server) stores it."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deploy import cli, ecr
from deploy.aws import AwsClients
from deploy.errors import ImageError
from tests.deploy.support import ACCOUNT, IMAGE_TAG, REGION, common_flags, factory, make_settings

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def manifest(media_type: str) -> str:
    """A manifest of that media type, as a registry client uploads it (ECR's PutImage)."""
    if media_type == OCI_INDEX:  # what BuildKit's default provenance attestation produces
        return json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": []})
    config = {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2}
    config["digest"] = "sha256:" + "0" * 64
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": []})


@dataclass
class FakeDocker:
    """A hand-written ``DockerRunner``: records calls, reports a chosen architecture, and
    "pushes" by uploading a manifest of ``media_type`` to the (moto) ECR registry."""

    ecr: Any
    arch: str = "amd64"
    media_type: str = DOCKER_V2
    calls: list[tuple[str, ...]] = field(default_factory=list)
    built: dict[str, str] = field(default_factory=dict)  # image -> target

    def build(
        self,
        *,
        context: Path,
        dockerfile: Path,
        target: str,
        tags: Sequence[str],
        platform: str,
        build_args: Mapping[str, str],
    ) -> None:
        args = ",".join(f"{k}={v}" for k, v in sorted(build_args.items()))
        self.calls.append(("build", target, platform, str(dockerfile), args, *tags))
        self.built.update(dict.fromkeys(tags, target))

    def architecture(self, image: str) -> str:
        assert image in self.built, "inspected an image that was never built"
        return self.arch

    def login(self, registry: str, username: str, password: str) -> None:
        self.calls.append(("login", registry, username, password))

    def push(self, image: str) -> None:
        assert image in self.built, "pushed an image that was never built"
        self.calls.append(("push", image))
        repository, _, tag = image.partition("/")[2].rpartition(":")
        self.ecr.put_image(
            repositoryName=repository,
            imageTag=tag,
            imageManifest=manifest(self.media_type),
            imageManifestMediaType=self.media_type,
        )


def registry() -> str:
    return f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


def test_push_creates_repositories_logs_in_with_the_token_and_pushes_both_tags(
    aws: AwsClients, moto_url: str
) -> None:
    docker = FakeDocker(aws.ecr)
    out = io.StringIO()
    argv = ["push", *common_flags(moto_url), "--build-arg", "TORCH_VERSION=2.13.0"]

    assert cli.main(argv, aws=factory(aws), docker=docker, stdout=out) == 0

    repos = aws.ecr.describe_repositories()["repositories"]
    assert sorted(r["repositoryName"] for r in repos) == [
        "news-classifier-serve",
        "news-classifier-train",
    ]
    train = f"{registry()}/news-classifier-train"
    serve = f"{registry()}/news-classifier-serve"
    # The token moto issued, decoded into docker login's user and password, once.
    token = aws.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    logins = [c for c in docker.calls if c[0] == "login"]
    assert logins == [("login", registry(), user, password)]
    assert user == "AWS" and password
    builds = [c for c in docker.calls if c[0] == "build"]
    assert [b[1] for b in builds] == ["train", "serve", "serve-cpu"]
    assert {b[2] for b in builds} == {"linux/amd64"}
    assert {b[4] for b in builds} == {"TORCH_VERSION=2.13.0"}
    pushes = [c[1] for c in docker.calls if c[0] == "push"]
    assert pushes == [
        f"{train}:{IMAGE_TAG}",
        f"{train}:0.1.0",
        f"{serve}:{IMAGE_TAG}",
        f"{serve}:0.1.0",
        f"{serve}:{IMAGE_TAG}-cpu",
        f"{serve}:0.1.0-cpu",
    ]
    # Login happens before the first push.
    kinds = [c[0] for c in docker.calls]
    assert kinds.index("login") < kinds.index("push")
    assert f"pushed train {train}:{IMAGE_TAG}" in out.getvalue()


def test_push_reuses_an_existing_repository(aws: AwsClients) -> None:
    aws.ecr.create_repository(repositoryName="news-classifier-train")
    settings = make_settings()
    docker = FakeDocker(aws.ecr)

    pushed = ecr.push_images(
        settings=settings, ecr=aws.ecr, docker=docker, targets=["train"], tags=[IMAGE_TAG]
    )

    assert pushed[0].uris == (f"{registry()}/news-classifier-train:{IMAGE_TAG}",)
    assert len(aws.ecr.describe_repositories()["repositories"]) == 1


def test_push_refuses_an_image_built_for_another_architecture(aws: AwsClients) -> None:
    docker = FakeDocker(aws.ecr, arch="arm64")

    with pytest.raises(ImageError, match="built for arm64"):
        ecr.push_images(
            settings=make_settings(), ecr=aws.ecr, docker=docker, targets=["serve"], tags=["x"]
        )

    assert [c[0] for c in docker.calls] == ["build"]  # no login, no push


def test_push_cli_exits_with_the_image_error_code(aws: AwsClients, moto_url: str) -> None:
    argv = ["push", *common_flags(moto_url), "--target", "train"]
    code = cli.main(
        argv, aws=factory(aws), docker=FakeDocker(aws.ecr, arch="arm64"), stdout=io.StringIO()
    )
    assert code == ImageError.exit_code


@pytest.mark.parametrize("media_type", [OCI_INDEX, OCI_MANIFEST])
def test_push_refuses_a_manifest_sagemaker_cannot_pull(
    aws: AwsClients, moto_url: str, media_type: str
) -> None:
    # SageMaker: "Unsupported manifest media type ..." for both (issue #15).
    argv = ["push", *common_flags(moto_url), "--target", "serve"]
    out = io.StringIO()

    code = cli.main(
        argv, aws=factory(aws), docker=FakeDocker(aws.ecr, media_type=media_type), stdout=out
    )

    assert code == ImageError.exit_code
    assert "pushed" not in out.getvalue()
    with pytest.raises(ImageError, match="SageMaker refuses"):
        ecr.check_manifest_media_types(aws.ecr, "news-classifier-serve", [IMAGE_TAG])


def test_a_docker_v2_manifest_passes_the_check(aws: AwsClients) -> None:
    ecr.push_images(
        settings=make_settings(), ecr=aws.ecr, docker=FakeDocker(aws.ecr), targets=["serve-cpu"],
        tags=[IMAGE_TAG],
    )  # fmt: skip
    (image,) = aws.ecr.describe_images(repositoryName="news-classifier-serve")["imageDetails"]
    assert image["imageManifestMediaType"] == ecr.SAGEMAKER_MANIFEST_MEDIA_TYPE == DOCKER_V2
